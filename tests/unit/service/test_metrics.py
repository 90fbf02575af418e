"""The metric names: the Grafana dashboard's queries use only (and all of) the defined ones; Litestar's HTTP families
are the ones named; queue depths come from the broker itself; GPU memory is torch's own figure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import torch
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.metrics import HTTP_METRIC_TYPES, QueueDepthCollector
from service.settings import ServiceSettings
from workers.celery_app import make_celery
from workers.metrics import METRIC_TYPES, GpuMemoryCollector
from workers.settings import WorkerSettings

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "interp-service.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$model": ".*"}
"""What Grafana substitutes before Prometheus sees a query, with values that parse."""
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def defined_series() -> dict[str, str]:
    """Every series name the code exports → its family."""
    families = {**METRIC_TYPES, **HTTP_METRIC_TYPES}
    return {name + suffix: name for name, kind in families.items() for suffix in SUFFIXES[kind]}


def selectors(node: Any) -> Iterator[str]:
    """The metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node.name
        return
    if isinstance(node, promql_parser.MatrixSelector):
        yield from selectors(node.vector_selector)
        return
    for child in ("lhs", "rhs", "expr", "param"):
        if (value := getattr(node, child, None)) is not None:
            yield from selectors(value)
    for arg in getattr(node, "args", None) or ():
        yield from selectors(arg)


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(metric, label) is Grafana's, not PromQL: keep the metric
            inner = variable["query"]["query"].removeprefix("label_values(").removesuffix(")")
            exprs.append(inner.split(",")[0].strip())
    return exprs


def test_dashboard_queries_use_only_and_all_defined_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    defined = defined_series()
    used: set[str] = set()
    for query in dashboard_queries(dashboard):
        expr = query
        for variable, stand_in in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, stand_in)
        names = set(selectors(promql_parser.parse(expr)))
        assert names, expr
        assert names <= set(defined), (expr, names - set(defined))
        used |= {defined[name] for name in names}
    assert used == set(METRIC_TYPES) | set(HTTP_METRIC_TYPES)  # every metric is on a panel


def test_dashboard_panels_read_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_litestar_exports_the_named_http_families() -> None:
    with TestClient(create_app(ServiceSettings())) as client:
        assert client.get("/healthz").status_code == 200
        text = client.get("/metrics").text
    families = {f.name: f.type for f in text_string_to_metric_families(text)
                if f.name.startswith("interp_request") and not f.name.endswith("_created")}  # creation times
    errors = HTTP_METRIC_TYPES.keys() - families.keys()
    assert errors <= {"interp_requests_error"}  # made at the first 5xx only
    assert families == {k: v for k, v in HTTP_METRIC_TYPES.items() if k not in errors}


def test_queue_depths_are_the_in_memory_brokers_own() -> None:
    celery = make_celery(WorkerSettings())
    queue = "interp.models.depth-test"
    for job in ("a", "b"):
        celery.send_task("interp.patching", args=[job], queue=queue)
    collector = QueueDepthCollector(celery, [queue, "interp.models.never-declared"])
    [family] = list(collector.collect())
    assert {s.labels["queue"]: s.value for s in family.samples} == {queue: 2, "interp.models.never-declared": 0}
    with celery.connection_for_read() as connection:  # drain, so the process-wide memory broker starts empty again
        connection.default_channel.queue_purge(queue)
    assert QueueDepthCollector(celery, [queue]).depths() == {queue: 0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU memory is reported only where CUDA runs")
def test_gpu_memory_is_torchs_figure() -> None:
    held = torch.ones(1024, 1024, device="cuda:0")
    families = {f.name: f for f in GpuMemoryCollector().collect()}
    allocated = {s.labels["device"]: s.value for s in families["interp_gpu_memory_allocated_bytes"].samples}
    reserved = {s.labels["device"]: s.value for s in families["interp_gpu_memory_reserved_bytes"].samples}
    assert allocated["cuda:0"] == torch.cuda.memory_allocated(0) >= held.numel() * 4
    assert reserved["cuda:0"] == torch.cuda.memory_reserved(0) >= allocated["cuda:0"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine may have started CUDA in this process")
def test_gpu_memory_is_absent_without_cuda() -> None:
    assert list(GpuMemoryCollector().collect()) == []
