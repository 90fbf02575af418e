"""``python -m bench load`` for a few seconds against embedded mode: every accepted job ends, nothing answers 5xx.

The script starts ``interp serve`` itself; this runs it as a user would (its name through ``bench/__main__.py``)
and reads the figures it writes with ``--json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.load import KINDS
from tests.integration.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

CLIENTS, DURATION_S, DEADLINE_S = 4, 4, 30


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("load") / "report.json"
    subprocess.run(
        [sys.executable, "-m", "bench", "load", "--mode", "embedded", "--clients", str(CLIENTS), "--duration",
         str(DURATION_S), "--deadline", str(DEADLINE_S), "--json", str(out)],
        cwd=REPO_ROOT, check=True, timeout=180,
    )
    reports: list[dict[str, Any]] = json.loads(Path(out).read_text(encoding="utf-8"))
    assert [r["mode"] for r in reports] == ["embedded"]
    return reports[0]


def test_every_accepted_job_ends_and_none_is_lost(report: dict[str, Any]) -> None:
    assert report["lost"] == []
    assert report["jobs_accepted"] > 0
    # The mix is valid on the tiny model: every job succeeds, and the sweep saw each one end.
    assert report["final"] == {"succeeded": report["jobs_accepted"]}
    assert report["failed"] == {}
    assert set(report["kinds"]) == set(KINDS)


def test_no_error_answers(report: dict[str, Any]) -> None:
    assert report["server_errors"] == 0
    assert report["errors"] == {}


def test_throughput_and_latencies_are_measured(report: dict[str, Any]) -> None:
    assert report["jobs_per_s"] > 0 and report["requests_per_s"] > report["jobs_per_s"]
    assert report["jobs_ended"] <= report["jobs_accepted"]
    assert report["load_s"] >= DURATION_S
    assert report["requests"] >= 2 * report["jobs_accepted"]  # a submission and at least one status call each
    for name in ("submit", "poll", "long_poll", "queued", "running"):
        q = report["latency_ms"][name]
        assert q["n"] > 0, name
        assert 0 <= q["p50"] <= q["p95"] <= q["p99"], (name, q)
        assert name in ("queued", "running") or q["p50"] > 0, (name, q)  # a request takes time; a queue need not
    assert report["latency_ms"]["submit"]["n"] == report["jobs_accepted"]
