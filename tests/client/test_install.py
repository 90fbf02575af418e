"""``pip install ./client`` into a fresh virtualenv pulls httpx and pydantic (and the extras' packages), never
torch, Celery or Redis: the client runs where the service's stack is absent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "client"
VENV_S, RESOLVE_S = 60, 300
SERVICE_STACK = {"torch", "celery", "redis", "kombu", "litestar", "transformers", "interp-service"}


def test_the_client_installs_without_the_service_stack(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=VENV_S)
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--dry-run", "--quiet",
         "--report", str(report), f"{CLIENT}[numpy,pandas,plotly]"],
        check=True, timeout=RESOLVE_S, capture_output=True,
    )
    installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    names = {item["metadata"]["name"].lower().replace("_", "-") for item in installs}
    assert {"interp-client", "httpx", "pydantic", "numpy", "pandas", "plotly"} <= names
    assert not names & SERVICE_STACK, sorted(names & SERVICE_STACK)
    client = next(item for item in installs if item["metadata"]["name"] == "interp-client")
    plain = [r for r in client["metadata"]["requires_dist"] if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("<")[0].strip() for r in plain) == ["httpx", "pydantic"]
