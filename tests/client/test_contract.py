"""The client follows openapi.yaml: its generated models are not stale, and it has every kind the server has.

Regenerate with ``python client/scripts/generate_models.py`` when the first test fails (after ``interp openapi``).
"""

from __future__ import annotations

import inspect
import runpy
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from interp_client import AsyncClient, Client, fields, models
from interp_client.cli import build_parser
from interp_client.kinds import KINDS, JobStatus

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPO_ROOT / "client" / "scripts" / "generate_models.py"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    return loaded


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def test_generated_models_match_openapi_yaml() -> None:
    generator = runpy.run_path(str(GENERATOR))
    assert generator["stale"]() == [], "stale: run python client/scripts/generate_models.py"


def test_the_client_has_every_kind_of_the_spec(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    mapping = {kind: _schema_name(ref) for kind, ref in body["discriminator"]["mapping"].items()}
    assert set(mapping) == set(KINDS), "openapi.yaml and interp_client.kinds.KINDS list different kinds"
    jobs = {_schema_name(ref) for ref in document["components"]["schemas"]["JobPage"]["properties"]["items"]["items"]
            ["discriminator"]["mapping"].values()}
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    run_kinds = next(a for a in commands["run"]._actions if a.dest == "kind").choices
    for kind, spec in mapping.items():
        table = KINDS[kind]
        assert table.spec.__name__ == spec and table.job.__name__ in jobs
        result = document["components"]["schemas"][table.job.__name__]["properties"]["result"]["oneOf"][0]["$ref"]
        assert table.result.__name__ == _schema_name(result)
        for client in (Client, AsyncClient):
            method = getattr(client, kind)
            assert inspect.signature(method).return_annotation.endswith(f"[wire.{table.result.__name__}]")
        assert kind in run_kinds  # type: ignore[operator]


def test_keyword_arguments_are_the_spec_fields_less_kind() -> None:
    for table in KINDS.values():
        typed = getattr(fields, table.spec.__name__)
        assert set(typed.__annotations__) == set(table.spec.model_fields) - {"kind"}
        hints = {name: getattr(hint, "__forward_arg__", str(hint)) for name, hint in typed.__annotations__.items()}
        required = {name for name, hint in hints.items() if not hint.startswith("NotRequired[")}
        assert required == {name for name, field in table.spec.model_fields.items() if field.is_required()}


def test_job_statuses_are_the_spec_statuses() -> None:
    assert set(get_args(JobStatus)) == set(get_args(models.JobEvent.model_fields["status"].annotation))
    for table in KINDS.values():
        assert set(get_args(table.job.model_fields["status"].annotation)) == set(get_args(JobStatus))
