"""The chart as shipped (values.yaml, and values.yaml + values-gpu.yaml): lint, schemas, and what it deploys.

Core kinds are validated against the Kubernetes JSON schemas bundled with kubernetes-validate; KEDA's and the
Prometheus operator's custom resources have no schema there, so their required fields are checked here. What
the processes will make of the rendered variables is checked with the application's own settings classes.
"""

from __future__ import annotations

import base64
import math
import tomllib
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest

from service.settings import ServiceSettings
from tests.deploy.conftest import (
    CHART,
    FULLNAME,
    GPU_VALUES,
    REPO_ROOT,
    InstallSecrets,
    Manifest,
    Rendering,
    container,
    env_of,
    matches,
    merged,
    values_file,
)
from workers.core.registry import Registry
from workers.settings import WorkerSettings, kind_limits

KUBE_VERSION = "1.36"
"""A current release among the schemas kubernetes-validate ships (and Helm's own default for rendering)."""
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"}
SECRET_VARIABLES = ("INTERP_WEBHOOK_SECRET", "INTERP_KEY_PEPPER", "REDIS_PASSWORD")


def _settings(rendering: Rendering, install_secrets: InstallSecrets) -> ServiceSettings:
    """The settings an API or worker pod builds: the ConfigMap's variables plus the Secrets' values."""
    env = {
        **rendering.config(),
        "REDIS_URL": "redis://:password@redis:6379/0",
        "INTERP_WEBHOOK_SECRET": install_secrets.webhook_secret,
        "INTERP_KEY_PEPPER": install_secrets.key_pepper,
    }
    return ServiceSettings.from_env(env)


def _registry(rendering: Rendering, tmp_path: Path) -> Registry:
    """The registry file exactly as mounted at /etc/interp/registry.toml, read by the workers' loader."""
    path = tmp_path / "registry.toml"
    path.write_text(rendering.config()["registry.toml"], encoding="utf-8")
    return Registry.from_toml(path)


def _queues(deployment: Manifest) -> list[str]:
    command: list[str] = container(deployment)["command"]
    assert command[:2] == ["interp", "worker"]
    return command[command.index("--queues") + 1].split(",")


def _pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("gpu", [False, True], ids=["default", "gpu"])
def test_helm_lint_is_clean_in_strict_mode(gpu: bool, install_secrets: InstallSecrets) -> None:
    values = merged(values_file(GPU_VALUES) if gpu else {}, install_secrets.values())
    report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    # Severity 1 is informational (Chart.yaml: "icon is recommended"); warnings (2) and errors (3) fail.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_matches_the_kubernetes_schemas(rendering: Rendering) -> None:
    core = [m for m in rendering.manifests if m["kind"] not in CUSTOM_KINDS]
    for manifest in core:
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    kinds = {m["kind"] for m in core}
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount"} <= kinds


def test_custom_resources_have_their_required_fields(rendering: Rendering) -> None:
    deployments = {d["metadata"]["name"] for d in rendering.of_kind("Deployment")}
    auths = {a["metadata"]["name"]: a for a in rendering.of_kind("TriggerAuthentication")}
    secrets = {s["metadata"]["name"]: s for s in rendering.of_kind("Secret")}
    for auth in auths.values():
        assert auth["apiVersion"] == "keda.sh/v1alpha1"
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["parameter"] == "password"
            assert ref["key"] in secrets[ref["name"]]["data"]
    scaled = rendering.of_kind("ScaledObject")
    assert scaled
    for obj in scaled:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments
        assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["triggers"]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis"
            metadata = trigger["metadata"]
            # The CRD types trigger metadata as a map of strings; KEDA's redis scaler needs these three.
            assert all(isinstance(v, str) for v in metadata.values()), metadata
            host, _, port = metadata["address"].rpartition(":")
            assert host and port.isdigit()
            assert metadata["listName"] and int(metadata["listLength"]) >= 1
            assert trigger["authenticationRef"]["name"] in auths
    services = rendering.of_kind("Service")
    for monitor in rendering.of_kind("ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selected = [s for s in services if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        assert len(selected) == 1, monitor["metadata"]["name"]
        ports = {p["name"] for p in selected[0]["spec"]["ports"]}
        assert monitor["spec"]["endpoints"]
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"


def test_gpu_workers_ask_for_a_gpu_on_gpu_nodes(gpu_rendering: Rendering, tmp_path: Path) -> None:
    workers = gpu_rendering.worker_deployments()
    assert set(workers) == {"gemma-gpu"}
    pod = _pod_spec(workers["gemma-gpu"])
    resources = container(workers["gemma-gpu"])["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert container(workers["gemma-gpu"])["image"] == "interp-service-worker:0.1.0"
    entry = _registry(gpu_rendering, tmp_path).get("gemma-3-270m")
    assert (entry.device, entry.dtype) == ("cuda", "float32")


def test_cpu_defaults_ask_for_no_gpu(default_rendering: Rendering, tmp_path: Path) -> None:
    for deployment in default_rendering.workloads():
        assert "nvidia.com/gpu" not in str(container(deployment)["resources"])
    registry = _registry(default_rendering, tmp_path)
    assert {registry.get(m).device for m in registry.model_ids} == {"cpu"}


def test_each_worker_group_gets_a_scaledobject_on_its_own_queue(
    rendering: Rendering, install_secrets: InstallSecrets, tmp_path: Path
) -> None:
    settings = _settings(rendering, install_secrets).workers
    registry = _registry(rendering, tmp_path)
    groups = {g["name"]: g for g in rendering.values["workerGroups"]}
    workers = rendering.worker_deployments()
    assert set(workers) == set(groups)
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in rendering.of_kind("ScaledObject")}
    assert set(scaled) == {d["metadata"]["name"] for d in workers.values()}
    # The queues `interp worker` accepts with this registry and these groups (service/cli.py refuses others).
    webhooks = settings.webhook_queue
    accepted = {settings.queue_for(m) for m in registry.model_ids} | {webhooks}
    for name, group in groups.items():
        deployment = workers[name]
        queue = f"interp.models.{name}"
        # Where the API sends these models' jobs: the same queue for every model of the group.
        assert {settings.queue_for(m) for m in group["models"]} == {queue}
        consumed = _queues(deployment)
        assert set(consumed) <= accepted
        assert consumed == [queue, webhooks] if group.get("webhooks", True) else [queue]
        spec = scaled[deployment["metadata"]["name"]]["spec"]
        lists = [t["metadata"]["listName"] for t in spec["triggers"]]
        assert lists[0] == queue
        assert set(lists) <= set(consumed)
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
            group["autoscaling"]["minReplicas"], group["autoscaling"]["maxReplicas"])
        # KEDA owns the replica count: a Deployment that set one would be reset on every `helm upgrade`.
        assert "replicas" not in deployment["spec"]


def test_the_api_has_health_probes_and_outlives_its_longest_long_poll(
    rendering: Rendering, install_secrets: InstallSecrets
) -> None:
    api = rendering.get("Deployment", f"{FULLNAME}-api")
    main = container(api)
    assert main["command"][:2] == ["interp", "api"]
    port = {p["name"]: p["containerPort"] for p in main["ports"]}["http"]
    assert main["command"][main["command"].index("--port") + 1] == str(port)
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    max_wait = _settings(rendering, install_secrets).max_wait_s
    assert max_wait == 60
    pre_stop = int(main["lifecycle"]["preStop"]["exec"]["command"][1])
    assert _pod_spec(api)["terminationGracePeriodSeconds"] > pre_stop + max_wait


def test_workers_outlive_the_longest_hard_time_limit(rendering: Rendering, install_secrets: InstallSecrets) -> None:
    limits = _settings(rendering, install_secrets).workers.time_limits
    longest = max(limit.hard for limit in limits.values())
    assert longest == 660  # patching, from workers/kinds/patching.py
    for deployment in rendering.worker_deployments().values():
        pre_stop = container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        assert _pod_spec(deployment)["terminationGracePeriodSeconds"] > int(pre_stop[1]) + math.ceil(longest)


def test_values_carry_the_kinds_default_limits_and_the_longest_one() -> None:
    """Listed kinds hold their defaults from workers/kinds/*.py; a kind not listed keeps its default, which the
    grace period must still cover, so no kind may have a longer default hard limit than the values' longest."""
    listed = values_file(CHART / "values.yaml")["worker"]["timeLimits"]
    defaults = kind_limits()
    assert set(listed) <= set(defaults)
    assert {kind: (v["soft"], v["hard"]) for kind, v in listed.items()} == {
        kind: (defaults[kind].soft, defaults[kind].hard) for kind in listed
    }
    assert max(v["hard"] for v in listed.values()) >= max(limit.hard for limit in defaults.values()), (
        "a kind's default hard limit exceeds every one in values.yaml: add the kind to worker.timeLimits"
    )


def test_every_variable_the_chart_sets_parses(rendering: Rendering, install_secrets: InstallSecrets) -> None:
    settings = _settings(rendering, install_secrets)
    config = rendering.config()
    assert settings.workers.registry_path == Path("/etc/interp/registry.toml")
    assert settings.workers.cache_max_bytes == rendering.values["worker"]["cacheMaxBytes"]
    assert settings.workers.visibility_timeout_s > max(limit.hard for limit in settings.workers.time_limits.values())
    assert settings.workers.model_groups == {
        model: group["name"] for group in rendering.values["workerGroups"] for model in group["models"]
    }
    assert config["INTERP_CACHE_DIR"].startswith("/var/cache/interp/")
    for deployment in rendering.worker_deployments().values():
        WorkerSettings.from_env({**config, **{k: v["value"] for k, v in env_of(deployment).items() if "value" in v},
                                 "REDIS_URL": "redis://redis:6379/0",
                                 "INTERP_WEBHOOK_SECRET": install_secrets.webhook_secret})


def test_pods_run_as_the_images_non_root_user_without_privileges(rendering: Rendering) -> None:
    for workload in rendering.workloads():
        pod = _pod_spec(workload)
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert isinstance(context["runAsUser"], int) and context["runAsUser"] > 0
        assert isinstance(context["runAsGroup"], int) and context["runAsGroup"] > 0
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        writable = {v["name"] for v in pod.get("volumes", []) if "configMap" not in v}
        writable |= {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for main in pod["containers"]:
            security = main["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
            assert mounts["/tmp"] in writable
        if workload["metadata"]["name"] != f"{FULLNAME}-redis":
            assert (context["runAsUser"], context["runAsGroup"]) == (10001, 10001)  # deploy/Dockerfile's USER
    for deployment in rendering.worker_deployments().values():
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        assert rendering.config()["INTERP_CACHE_DIR"].startswith("/var/cache/interp/")
        assert mounts["/var/cache/interp"] == "model-cache"


def test_only_the_api_workers_and_keda_reach_redis(rendering: Rendering) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in rendering.of_kind("NetworkPolicy")}
    redis_pod = rendering.get("StatefulSet", f"{FULLNAME}-redis")["spec"]["template"]["metadata"]["labels"]
    redis_policy = policies[f"{FULLNAME}-redis"]
    assert matches(redis_policy["podSelector"]["matchLabels"], redis_pod)
    assert redis_policy["egress"] == []
    (rule,) = redis_policy["ingress"]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    peers = rule["from"]
    release_pods = [w["spec"]["template"]["metadata"]["labels"] for w in rendering.workloads()]
    in_namespace = [p["podSelector"]["matchLabels"] for p in peers if "namespaceSelector" not in p]
    allowed = {pod["app.kubernetes.io/component"] for pod in release_pods if any(matches(s, pod) for s in in_namespace)}
    assert allowed == {"api", "worker"}
    assert all(p["podSelector"]["matchLabels"] for p in peers)  # no peer selects every pod
    (keda,) = [p for p in peers if "namespaceSelector" in p]
    assert keda["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}

    worker_policy = policies[f"{FULLNAME}-worker"]
    worker_ports = sorted((r["ports"][0]["port"], "ipBlock" in r["to"][0]) for r in worker_policy["egress"])
    assert worker_ports == [(53, False), (443, True), (6379, False)]
    (webhooks,) = [r for r in worker_policy["egress"] if "ipBlock" in r["to"][0]]
    assert webhooks["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert "169.254.0.0/16" in webhooks["to"][0]["ipBlock"]["except"]  # cloud metadata stays unreachable
    api_policy = policies[f"{FULLNAME}-api"]
    assert sorted(r["ports"][0]["port"] for r in api_policy["egress"]) == [53, 6379]
    for workload in rendering.workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(matches(p["podSelector"]["matchLabels"], labels) for p in policies.values()), labels


def test_secrets_are_referenced_never_inlined(rendering: Rendering, install_secrets: InstallSecrets) -> None:
    values = (install_secrets.webhook_secret, install_secrets.key_pepper, install_secrets.redis_password)
    secrets = {s["metadata"]["name"]: s for s in rendering.of_kind("Secret")}
    for manifest in rendering.manifests:
        if manifest["kind"] == "Secret":
            continue
        text = str(manifest)
        for value in values:
            assert value not in text and base64.b64encode(value.encode()).decode() not in text
    for workload in rendering.workloads():
        for name, entry in env_of(workload).items():
            if name in SECRET_VARIABLES:
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secrets[ref["name"]]["data"]
            if name == "REDIS_URL":
                assert "$(REDIS_PASSWORD)" in entry["value"]
    api_env = env_of(rendering.get("Deployment", f"{FULLNAME}-api"))
    assert {"INTERP_WEBHOOK_SECRET", "INTERP_KEY_PEPPER", "REDIS_PASSWORD"} <= set(api_env)
    for deployment in rendering.worker_deployments().values():
        assert "INTERP_KEY_PEPPER" not in env_of(deployment)  # only the API checks keys


def test_a_disruption_budget_covers_every_interp_deployment(rendering: Rendering) -> None:
    budgets = rendering.of_kind("PodDisruptionBudget")
    for deployment in rendering.of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if matches(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(covering) == 1, deployment["metadata"]["name"]
        assert covering[0]["spec"]["maxUnavailable"] == 1


def test_the_worker_metrics_port_is_wired(rendering: Rendering) -> None:
    port = rendering.values["metrics"]["workerPort"]
    for deployment in rendering.worker_deployments().values():
        main = container(deployment)
        assert env_of(deployment)["INTERP_WORKER_METRICS_PORT"]["value"] == str(port)
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in main["ports"]
    service = rendering.get("Service", f"{FULLNAME}-worker-metrics")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_the_gpu_rendering_has_service_monitors_for_api_and_workers(gpu_rendering: Rendering) -> None:
    monitors = {m["metadata"]["name"] for m in gpu_rendering.of_kind("ServiceMonitor")}
    assert monitors == {f"{FULLNAME}-api", f"{FULLNAME}-worker"}


def test_images_are_pinned_and_split_by_role(rendering: Rendering) -> None:
    for workload in rendering.workloads():
        for main in _pod_spec(workload)["containers"]:
            repository, _, tag = main["image"].rpartition(":")
            assert repository and tag and tag != "latest"
    # An empty tag is the chart's appVersion, which is the project's version.
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert values_file(CHART / "Chart.yaml")["appVersion"] == version
    assert container(rendering.get("Deployment", f"{FULLNAME}-api"))["image"] == f"interp-service-api:{version}"
