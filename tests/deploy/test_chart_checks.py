"""What the chart refuses to render, and the other shapes it takes: existing Secrets, an external Redis, no KEDA."""

from __future__ import annotations

import base64
import re
from typing import Any

import helm_python
import kubernetes_validate
import pytest

from tests.deploy.conftest import FULLNAME, InstallSecrets, Render, container, env_of
from tests.deploy.test_chart import CUSTOM_KINDS, KUBE_VERSION

REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"worker": {"terminationGracePeriodSeconds": 600}}, "worker.terminationGracePeriodSeconds (600) must exceed"),
    # 10 s preStop + 660 s patching: exactly the floor is still too short for a job that runs to its hard limit.
    ({"worker": {"terminationGracePeriodSeconds": 670}}, "the longest hard time limit (670 s)"),
    ({"api": {"terminationGracePeriodSeconds": 30}}, "api.terminationGracePeriodSeconds (30) must exceed"),
    ({"worker": {"visibilityTimeoutSeconds": 600}}, "worker.visibilityTimeoutSeconds must exceed"),
    ({"worker": {"timeLimits": {"steer": {"soft": 300, "hard": 300}}}}, "worker.timeLimits.steer: the hard limit"),
    ({"workerGroups": [{"name": "gemma", "models": ["gemma-3-27b"], "resources": {}}]}, 'model "gemma-3-27b" is not'),
    ({"workerGroups": [{"name": "Gemma", "models": ["gemma-3-270m"], "resources": {}}]}, "is not a DNS label"),
    ({"workerGroups": [{"name": "a", "models": ["gemma-3-270m"], "resources": {}},
                       {"name": "b", "models": ["gemma-3-270m"], "resources": {}}]}, "one group per model"),
    ({"workerGroups": [{"name": "a", "models": ["gemma-3-270m"], "webhooks": False, "resources": {}}]},
     "no group consumes interp.webhooks"),
    ({"env": {"INTERP_WEBHOOK_SECRET": "x"}}, "env.INTERP_WEBHOOK_SECRET: set by the chart"),
    ({"env": {"INTERP_PATCHING_HARD_LIMIT_S": "900"}}, "env.INTERP_PATCHING_HARD_LIMIT_S: set by the chart"),
    ({"image": {"api": {"tag": "latest"}}}, "pin a version, not latest"),
    ({"redis": {"maxmemoryMb": 512}}, "redis.maxmemoryMb must exceed worker.cacheMaxBytes"),
    ({"secrets": {"webhookSecret": "change-me"}}, "secrets.webhookSecret: not a Standard Webhooks secret"),
    ({"secrets": {"keyPepper": "short"}}, "secrets.keyPepper: at least 16 characters"),
    ({"redis": {"auth": {"password": "p@ss/word"}}}, "redis.auth.password: letters, digits"),
    ({"redis": {"enabled": False}}, "externalRedis.url (or externalRedis.existingSecret) is required"),
    ({"redis": {"enabled": False}, "externalRedis": {"url": "rediss://:pw@redis.example:6380/0"}},
     "externalRedis.address (host:port) is required for KEDA"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_a_deployment_mistake_stops_the_rendering_with_a_named_value(
    render: Render, overrides: dict[str, Any], message: str
) -> None:
    # The install secrets go first here, so a case can replace one of them.
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        render(InstallSecrets.generate().values(), overrides, secrets=False)


@pytest.mark.parametrize("missing", ["secrets.webhookSecret", "secrets.keyPepper", "redis.auth.password"])
def test_no_secret_has_a_default(render: Render, install_secrets: InstallSecrets, missing: str) -> None:
    values = install_secrets.values()
    section, *path, key = missing.split(".")
    target = values[section]
    for part in path:
        target = target[part]
    del target[key]
    with pytest.raises(helm_python.HelmRenderError, match=rf"{missing} \(or .*existingSecret\) is required"):
        render(values, secrets=False)


def test_a_longer_hard_limit_lengthens_the_workers_grace_period(render: Render) -> None:
    rendering = render({"worker": {"timeLimits": {"patching": {"soft": 900, "hard": 960}}}})
    for deployment in rendering.worker_deployments().values():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 10 + 960 + 60
    assert rendering.config()["INTERP_PATCHING_HARD_LIMIT_S"] == "960"
    explicit = render({"worker": {"terminationGracePeriodSeconds": 800}})
    for deployment in explicit.worker_deployments().values():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 800


def test_existing_secrets_are_referenced_and_none_is_created(render: Render) -> None:
    rendering = render({
        "secrets": {"existingSecret": "interp-app"},
        "redis": {"auth": {"existingSecret": "interp-redis", "existingSecretPasswordKey": "password"}},
    }, secrets=False)
    assert rendering.of_kind("Secret") == []
    api = env_of(rendering.get("Deployment", f"{FULLNAME}-api"))
    assert api["INTERP_KEY_PEPPER"]["valueFrom"]["secretKeyRef"] == {"name": "interp-app", "key": "key-pepper"}
    assert api["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "interp-redis", "key": "password"}
    (auth,) = rendering.of_kind("TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "interp-redis", "key": "password"}]


def test_an_external_redis_replaces_the_statefulset(render: Render) -> None:
    rendering = render({
        "redis": {"enabled": False},
        "externalRedis": {"existingSecret": "managed-redis", "address": "redis.example.internal:6380",
                          "databaseIndex": 2, "enableTLS": True},
        "networkPolicy": {"externalRedis": {"cidr": "10.20.0.0/16", "port": 6380}},
    })
    assert rendering.of_kind("StatefulSet") == []
    assert [s["metadata"]["name"] for s in rendering.of_kind("Secret")] == [FULLNAME]  # the app's only
    for workload in rendering.workloads():
        env = env_of(workload)
        assert "REDIS_PASSWORD" not in env
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "managed-redis", "key": "redis-url"}
    for scaled in rendering.of_kind("ScaledObject"):
        metadata = scaled["spec"]["triggers"][0]["metadata"]
        assert (metadata["address"], metadata["databaseIndex"], metadata["enableTLS"]) == (
            "redis.example.internal:6380", "2", "true")
    policies = {p["metadata"]["name"]: p["spec"] for p in rendering.of_kind("NetworkPolicy")}
    assert f"{FULLNAME}-redis" not in policies
    redis_rule = policies[f"{FULLNAME}-worker"]["egress"][0]
    assert redis_rule == {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 6380, "protocol": "TCP"}]}
    for manifest in rendering.manifests:
        if manifest["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_without_keda_each_deployment_sets_its_replicas(render: Render) -> None:
    rendering = render({"keda": {"enabled": False}, "api": {"autoscaling": {"enabled": False}}})
    assert rendering.of_kind("ScaledObject") == []
    assert rendering.of_kind("TriggerAuthentication") == []
    assert rendering.of_kind("HorizontalPodAutoscaler") == []
    replicas = {name: d["spec"]["replicas"] for name, d in rendering.worker_deployments().items()}
    assert replicas == {"gemma": 1, "tiny": 1}
    assert rendering.get("Deployment", f"{FULLNAME}-api")["spec"]["replicas"] == 2
    redis = next(p for p in rendering.of_kind("NetworkPolicy") if p["metadata"]["name"] == f"{FULLNAME}-redis")
    assert all("namespaceSelector" not in peer for peer in redis["spec"]["ingress"][0]["from"])


def test_an_ingress_and_a_group_of_its_own_render_valid_manifests(render: Render) -> None:
    rendering = render({
        "api": {"ingress": {"enabled": True, "className": "nginx",
                            "tls": [{"hosts": ["interp.example.com"], "secretName": "interp-tls"}]}},
        "workerGroups": [
            {"name": "gemma", "models": ["gemma-3-270m"], "resources": {"limits": {"memory": "4Gi"}},
             "image": {"repository": "registry.example/interp-worker", "tag": "0.1.0-cuda"},
             "runtimeClassName": "nvidia", "modelCache": {"existingClaim": "interp-models"},
             "env": {"INTERP_POOL_MAX_BYTES": 2147483648}},
            {"name": "tiny", "models": ["tiny-gpt2"], "webhooks": False, "resources": {}},
        ],
    })
    ingress = rendering.get("Ingress", f"{FULLNAME}-api")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{FULLNAME}-api", "port": {"name": "http"}}
    gemma = rendering.worker_deployments()["gemma"]
    pod = gemma["spec"]["template"]["spec"]
    assert container(gemma)["image"] == "registry.example/interp-worker:0.1.0-cuda"
    assert pod["runtimeClassName"] == "nvidia"
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "interp-models"}} in pod["volumes"]
    # A number from a values file is written whole, not as 2.147483648e+09.
    assert env_of(gemma)["INTERP_POOL_MAX_BYTES"]["value"] == "2147483648"
    for manifest in rendering.manifests:
        if manifest["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_secrets_read_with_set_file_lose_their_trailing_newline(render: Render) -> None:
    made = InstallSecrets.generate()
    with_newlines = {"secrets": {"webhookSecret": made.webhook_secret + "\n", "keyPepper": made.key_pepper + "\n"},
                     "redis": {"auth": {"password": made.redis_password + "\n"}}}
    rendering = render(with_newlines, secrets=False)
    app = rendering.get("Secret", FULLNAME)["data"]
    assert base64.b64decode(app["webhook-secret"]).decode() == made.webhook_secret
    assert base64.b64decode(app["key-pepper"]).decode() == made.key_pepper
    redis_secret = rendering.get("Secret", f"{FULLNAME}-redis")["data"]
    assert base64.b64decode(redis_secret["redis-password"]).decode() == made.redis_password
