"""openapi.yaml is generated from the app; regenerate with ``interp openapi`` when this fails."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import TestClient
from openapi_spec_validator import validate

from service.app import create_app
from service.openapi import openapi_document, render_openapi
from service.schemas import ERROR_RESPONSES, JOB_OUT_MODELS, ReadinessReport
from service.settings import ServiceSettings
from workers.activation_cache import MemoryActivationCache
from workers.kinds import KINDS
from workers.records import MemoryJobStore

REPO_ROOT = Path(__file__).resolve().parents[3]

OPERATION_IDS = {
    ("post", "/v1/jobs"): "submit_job",
    ("get", "/v1/jobs/{job_id}"): "get_job",
    ("delete", "/v1/jobs/{job_id}"): "cancel_job",
    ("get", "/v1/jobs"): "list_jobs",
    ("get", "/v1/jobs/{job_id}/events"): "stream_job_events",
    ("get", "/v1/models"): "list_models",
    ("get", "/v1/models/{model_id}"): "get_model",
    ("post", "/v1/tokenize"): "tokenize",
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("get", "/metrics"): "metrics",
}
"""What a generated client names its functions."""


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document exactly as written to openapi.yaml (YAML round trip included)."""
    loaded: dict[str, Any] = yaml.safe_load(render_openapi())
    return loaded


def _json(response: dict[str, Any]) -> Any:
    return response["content"]["application/json"]["schema"]


def test_openapi_yaml_is_in_sync_with_the_app() -> None:
    committed = (REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == render_openapi(), "openapi.yaml is stale: run `interp openapi`"


def test_openapi_documents_limits_errors_and_kinds() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    patching = schemas["PatchingSpec"]
    assert patching["additionalProperties"] is False
    assert "head_out_by_pos" in patching["properties"]["targets"]["items"]["enum"]
    attribution = schemas["AttributionSpec"]["properties"]
    assert [o["type"] for o in attribution["n_steps"]["oneOf"]] == ["integer", "string"]  # 1..512, or "auto"
    post = document["paths"]["/v1/jobs"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in post["parameters"]}
    assert set(document["paths"]) >= {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/models",
                                      "/v1/models/{model_id}", "/v1/tokenize", "/healthz", "/readyz"}


def test_the_api_process_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from service.app import create_app\n"
        "from service.settings import ServiceSettings\n"
        "from service.openapi import openapi_document\n"
        "openapi_document()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "False"


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises on the first violation of the OpenAPI 3.1 schema
    assert document["openapi"].startswith("3.1")


def test_operation_ids_read_as_method_names(document: dict[str, Any]) -> None:
    found = {(method, path): op["operationId"] for path, item in document["paths"].items()
             for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")}
    assert {key: found.get(key) for key in OPERATION_IDS} == OPERATION_IDS
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in found.values()), found


def test_job_bodies_and_jobs_are_discriminated_by_kind(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    specs = {name: f"#/components/schemas/{kind.spec.__name__}" for name, kind in KINDS.items()}
    jobs = {name: f"#/components/schemas/{model.__name__}" for name, model in JOB_OUT_MODELS.items()}
    paths = document["paths"]
    body = paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"] == {"propertyName": "kind", "mapping": specs}
    assert [one["$ref"] for one in body["oneOf"]] == list(specs.values())
    job_unions = [
        _json(paths["/v1/jobs"]["post"]["responses"]["200"]),
        _json(paths["/v1/jobs"]["post"]["responses"]["202"]),
        _json(paths["/v1/jobs/{job_id}"]["get"]["responses"]["200"]),
        _json(paths["/v1/jobs/{job_id}"]["delete"]["responses"]["200"]),
        _json(paths["/v1/jobs/{job_id}"]["delete"]["responses"]["202"]),
        schemas["JobPage"]["properties"]["items"]["items"],
    ]
    for union in job_unions:
        assert union["discriminator"] == {"propertyName": "kind", "mapping": jobs}
        assert sorted(one["$ref"] for one in union["oneOf"]) == sorted(jobs.values())
    for ref in (*specs.values(), *jobs.values()):
        member = schemas[ref.rsplit("/", 1)[-1]]
        assert "kind" in member["required"]  # the API refuses a body without it; a client picks the member by it
    for name, model in JOB_OUT_MODELS.items():  # each job's result is its kind's result model
        result = schemas[model.__name__]["properties"]["result"]["oneOf"]
        assert {"$ref": f"#/components/schemas/{KINDS[name].result.__name__}"} in result


def test_every_status_a_route_sends_is_documented_with_its_body(document: dict[str, Any]) -> None:
    paths = document["paths"]
    errors = {str(status) for status in ERROR_RESPONSES}
    assert errors >= {"400", "404", "413", "422", "429", "500", "503"}
    submit = paths["/v1/jobs"]["post"]["responses"]
    cancel = paths["/v1/jobs/{job_id}"]["delete"]["responses"]
    assert set(cancel) == {"200", "202", *errors}
    assert set(submit) == {*cancel, "415"}  # it reads a body: one that is not application/json is a 415
    bodies = [op for item in paths.values() for method, op in item.items() if method in ("post", "put", "patch")]
    assert all("415" in op["responses"] for op in bodies)
    assert _json(submit["415"]) == {"$ref": "#/components/schemas/ErrorBody"}
    for status in ("200", "202"):
        assert submit[status]["headers"]["Location"]["schema"] == {"type": "string"}
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation["responses"]
            if "429" in responses:
                assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer", (method, path)
            for status in errors & set(responses) - ({"503"} if path == "/readyz" else set()):
                assert _json(responses[status]) == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)

    readyz = paths["/readyz"]["get"]["responses"]
    assert set(readyz) == {"200", "503"}
    assert _json(readyz["200"]) == _json(readyz["503"]) == {"$ref": "#/components/schemas/ReadinessReport"}

    events = paths["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    assert events["text/event-stream"]["schema"]["type"] == "string"
    assert "`data:` one `JobEvent` as JSON" in events["text/event-stream"]["schema"]["description"]
    assert "#/components/schemas/JobEvent" in events["text/event-stream"]["schema"]["description"]
    event = document["components"]["schemas"]["JobEvent"]
    assert set(event["properties"]) == {"seq", "status", "progress", "at"}

    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics == {"text/plain": {"schema": {"type": "string"}}}


class _Queue:
    def __init__(self, up: bool) -> None:
        self.up = up

    def submit(self, job_id: str, kind: str, queue: str) -> None:
        return None

    def ping(self) -> None:
        if not self.up:
            raise ConnectionError("broker down")


@pytest.mark.parametrize(("broker_up", "status"), [(True, 200), (False, 503)])
def test_the_served_bodies_are_the_documented_ones(broker_up: bool, status: int) -> None:
    app = create_app(ServiceSettings(auth="off"),
                     store=MemoryJobStore(), cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
                     queue=_Queue(broker_up))
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == status
        report = ReadinessReport.model_validate(ready.json())
        assert report.status == ("ready" if broker_up else "unavailable")
        assert report.checks["store"] == "ok" and (report.checks["broker"] == "ok") is broker_up
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE interp_jobs_submitted_total counter" in metrics.text
