"""The README's dashboard examples, run as written on a real job: a Plotly heatmap and a Vega-Lite specification
from the job's JSON alone, and a polling loop through the client."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from interp_client import Client

from tests.client.conftest import PATCHING, Service
from tests.integration.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def example(name: str) -> str:
    """The code block under ``<!-- dashboard-example: NAME -->`` in the README."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- dashboard-example: {re.escape(name)} -->\n```python\n(.*?)```", readme, re.S)
    assert found is not None, f"no dashboard example {name!r} in the README"
    return found.group(1)


@pytest.fixture(scope="module")
def job(service: Service) -> dict[str, Any]:
    """A finished patching job as ``GET /v1/jobs/{id}`` serves it, read with plain HTTP: the JSON alone."""
    with Client(service.url, api_key=service.api_key) as client:
        job_id = client.patching(**PATCHING).wait(60).id
    with httpx.Client(base_url=service.url, timeout=30, headers=service.deployment.headers) as http:
        record: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
    assert record["status"] == "succeeded"
    return record


def test_the_plotly_example_draws_layers_by_tokens(job: dict[str, Any]) -> None:
    namespace: dict[str, Any] = {"job": job}
    exec(example("plotly"), namespace)
    trace = namespace["figure"]["data"][0]
    grid = job["result"]["targets"]["resid_pre"]
    assert trace["type"] == "heatmap" and trace["z"] == grid["values"]
    assert trace["x"] == [f"{i}: {token}" for i, token in enumerate(job["result"]["tokens"])]
    assert trace["y"] == [0, 1] and len(trace["z"]) == 2 and len(trace["z"][0]) == len(job["result"]["tokens"])
    assert namespace["figure"]["data"][0]["colorbar"]["title"]["text"].startswith("normalised effect")
    json.dumps(namespace["figure"], allow_nan=False)  # plain JSON, as a browser takes it
    plotly = pytest.importorskip("plotly.graph_objects")
    plotly.Figure(namespace["figure"])  # and a figure Plotly itself accepts


def test_the_vega_lite_example_has_one_row_per_cell(job: dict[str, Any]) -> None:
    namespace: dict[str, Any] = {"job": job}
    exec(example("vega-lite"), namespace)
    spec = namespace["spec"]
    grid = job["result"]["targets"]["resid_pre"]
    rows = spec["data"]["values"]
    assert len(rows) == len(grid["labels"]["layer"]) * len(grid["labels"]["position"])
    last = rows[-1]
    assert last == {"layer": 1, "position": grid["labels"]["position"][-1], "value": grid["values"][-1][-1]}
    assert spec["encoding"]["x"]["field"] == "position" and spec["encoding"]["y"]["field"] == "layer"
    json.dumps(spec)


def test_the_polling_example_lists_the_newest_jobs(service: Service, job: dict[str, Any]) -> None:
    with Client(service.url, api_key=service.api_key) as client:
        namespace: dict[str, Any] = {"client": client}
        exec(example("polling"), namespace)
    rows = namespace["rows"]
    assert 0 < len(rows) <= 50 and {"id", "kind", "model", "status", "progress", "created_at"} <= set(rows[0])
    mine = next(row for row in rows if row["id"] == job["id"])
    assert (mine["kind"], mine["status"], mine["progress"]) == ("patching", "succeeded", 1.0)
