"""The Helm chart rendered offline by Helm's own Go code (helm-python-sdk), for a given stack of values files.

Nothing here needs a cluster, a ``helm`` binary or the network. Install-time secrets are made per test session,
as an operator would make them, so no test depends on a value written down anywhere.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "interp-service"
GPU_VALUES = CHART / "values-gpu.yaml"
RELEASE = "interp-service"
NAMESPACE = "ml"
FULLNAME = "interp-service"
"""The release name contains the chart's, so resources are named ``interp-service-…``."""

Manifest = dict[str, Any]
Values = dict[str, Any]


def merged(*layers: Mapping[str, Any]) -> Values:
    """Helm's merge of ``-f`` files: maps merge key by key, anything else (lists too) is replaced by later layers."""
    out: Values = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = merged(value) if isinstance(value, Mapping) else value
    return out


def values_file(path: Path) -> Values:
    loaded: Values = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A ``matchLabels`` selector against a label set (the chart uses no ``matchExpressions``)."""
    return all(labels.get(key) == value for key, value in selector.items())


@dataclass(frozen=True)
class Rendering:
    """Every manifest of one rendering, with the values that produced it."""

    values: Values
    manifests: tuple[Manifest, ...]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> Manifest:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def workloads(self) -> list[Manifest]:
        """Deployments and StatefulSets: everything with a pod template."""
        return self.of_kind("Deployment") + self.of_kind("StatefulSet")

    def config(self) -> dict[str, str]:
        """The ConfigMap every interp container reads its variables from."""
        data: dict[str, str] = self.get("ConfigMap", FULLNAME)["data"]
        return data

    def worker_deployments(self) -> dict[str, Manifest]:
        """Worker group name → its Deployment."""
        return {
            d["spec"]["template"]["metadata"]["labels"]["interp-service/model-group"]: d
            for d in self.of_kind("Deployment")
            if d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
        }


def container(workload: Manifest, name: str | None = None) -> dict[str, Any]:
    """The workload's only container, or the one called ``name``."""
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def env_of(workload: Manifest) -> dict[str, dict[str, Any]]:
    """The container's ``env`` entries by name."""
    return {entry["name"]: entry for entry in container(workload).get("env", [])}


@dataclass(frozen=True)
class InstallSecrets:
    """What an operator generates before `helm install` (deploy/README.md, "Secrets")."""

    webhook_secret: str
    key_pepper: str
    redis_password: str

    @classmethod
    def generate(cls) -> InstallSecrets:
        return cls(
            webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
            key_pepper=secrets.token_urlsafe(32),
            redis_password=secrets.token_hex(16),
        )

    def values(self) -> Values:
        return {
            "secrets": {"webhookSecret": self.webhook_secret, "keyPepper": self.key_pepper},
            "redis": {"auth": {"password": self.redis_password}},
        }


Render = Callable[..., Rendering]


@pytest.fixture(scope="session")
def install_secrets() -> InstallSecrets:
    return InstallSecrets.generate()


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm_python.Chart, install_secrets: InstallSecrets) -> Render:
    """``render(*layers, secrets=True)``: the chart's defaults, then each layer, then the install secrets."""

    def _render(*layers: Mapping[str, Any], secrets: bool = True) -> Rendering:
        values = merged(*layers, install_secrets.values()) if secrets else merged(*layers)
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        manifests = tuple(
            doc
            for path, text in sorted(files.items())
            if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text)
            if doc
        )
        return Rendering(values=merged(chart.values, values), manifests=manifests)

    return _render


@pytest.fixture(scope="session")
def default_rendering(render: Render) -> Rendering:
    return render()


@pytest.fixture(scope="session")
def gpu_rendering(render: Render) -> Rendering:
    return render(values_file(GPU_VALUES))


@pytest.fixture(scope="session", params=["default", "gpu"])
def rendering(request: pytest.FixtureRequest, default_rendering: Rendering, gpu_rendering: Rendering) -> Rendering:
    """Each shipped values file: values.yaml alone, and values.yaml + values-gpu.yaml."""
    return default_rendering if request.param == "default" else gpu_rendering
