"""The chart with RabbitMQ as the broker: every interp pod gets BROKER_URL from the operator's Secret, KEDA counts
the RabbitMQ queues the workers consume, and the network policies let the pods (only) reach the broker's port;
the settings the chart always sets (the lease, durable Redis) parse as the processes read them."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.deploy.conftest import FULLNAME, InstallSecrets, Render, Rendering, container, env_of
from tests.deploy.test_chart import KUBE_VERSION, _settings

BROKER = {"rabbitmq": {"existingSecret": "interp-broker", "existingSecretUrlKey": "amqp-url"}}


@pytest.fixture(scope="module")
def with_rabbitmq(render: Render) -> Rendering:
    return render(BROKER)


def test_every_interp_pod_reads_the_broker_url_from_the_secret(with_rabbitmq: Rendering) -> None:
    interp = with_rabbitmq.of_kind("Deployment")
    assert interp
    for deployment in interp:
        ref = env_of(deployment)["BROKER_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "interp-broker", "key": "amqp-url"}, deployment["metadata"]["name"]


def test_keda_counts_the_rabbitmq_queues_the_workers_consume(with_rabbitmq: Rendering) -> None:
    auth = with_rabbitmq.get("TriggerAuthentication", f"{FULLNAME}-rabbitmq")
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "host", "name": "interp-broker", "key": "amqp-url"}]
    workers = {d["metadata"]["name"]: d for d in with_rabbitmq.worker_deployments().values()}
    for scaled in with_rabbitmq.of_kind("ScaledObject"):
        command = container(workers[scaled["spec"]["scaleTargetRef"]["name"]])["command"]
        consumed = command[command.index("--queues") + 1].split(",")
        triggers = scaled["spec"]["triggers"]
        assert [t["metadata"]["queueName"] for t in triggers] == consumed
        for trigger in triggers:
            assert trigger["type"] == "rabbitmq" and trigger["authenticationRef"]["name"] == f"{FULLNAME}-rabbitmq"
            metadata = trigger["metadata"]
            assert all(isinstance(v, str) for v in metadata.values()), metadata
            assert metadata["protocol"] == "amqp" and metadata["mode"] == "QueueLength" and int(metadata["value"]) >= 1


def test_the_api_and_workers_may_reach_the_broker(with_rabbitmq: Rendering) -> None:
    port = with_rabbitmq.values["networkPolicy"]["rabbitmq"]["port"]
    for component in ("api", "worker"):
        policy = with_rabbitmq.get("NetworkPolicy", f"{FULLNAME}-{component}")
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
        assert port in ports, component
    redis = with_rabbitmq.get("NetworkPolicy", f"{FULLNAME}-redis")  # Redis still: job store and cache
    assert redis["spec"]["ingress"]


def test_the_manifests_validate(with_rabbitmq: Rendering) -> None:
    for manifest in with_rabbitmq.manifests:
        if manifest["kind"] not in ("ScaledObject", "TriggerAuthentication", "ServiceMonitor"):
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_lease_and_durability_reach_the_settings(with_rabbitmq: Rendering, install_secrets: InstallSecrets) -> None:
    settings = _settings(with_rabbitmq, install_secrets).workers
    assert settings.lease_s == with_rabbitmq.values["worker"]["leaseSeconds"]
    assert settings.redis_durability == "require"
