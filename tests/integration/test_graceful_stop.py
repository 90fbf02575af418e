"""Stopping processes the way Kubernetes does (SIGTERM): nothing a client holds is cut off or lost.

An API replica answers its open long-polls with the job as it is and ends its event streams with a comment saying
to reconnect, then exits at once rather than after the longest wait; a worker finishes the job it is running
before it exits (Celery's warm shutdown), and the job succeeds.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Deployment, make_deployment

pytestmark = pytest.mark.integration

FAST = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd", "answer": "a",
        "wrong_answer": "b"}
SLOW = {"kind": "patching", "model": "slow-gpt2", "clean_prompt": "a" * 50, "corrupted_prompt": "b" * 50,
        "answer": "a", "wrong_answer": "b", "targets": ["resid_pre", "attn_out", "mlp_out"]}


@pytest.fixture
def dep(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = make_deployment(redis_url, tmp_path_factory.mktemp("stop"))
    try:
        yield deployment
    finally:
        deployment.stop()


def test_a_stopped_api_answers_its_waits_and_exits_at_once(dep: Deployment) -> None:
    url = dep.start_api()  # no worker: the job stays queued, so only the stop can end the waits
    api = dep.procs[-1]
    with dep.http(url, timeout=30) as client:
        job = client.post("/v1/jobs", json=FAST).json()
    seen: dict[str, object] = {}

    def long_poll() -> None:
        seen["poll"] = httpx.get(f"{url}/v1/jobs/{job['id']}", params={"wait": 50}, headers=dep.headers, timeout=60)

    def stream() -> None:
        with httpx.stream("GET", f"{url}/v1/jobs/{job['id']}/events", headers=dep.headers, timeout=60) as response:
            seen["stream"] = list(response.iter_lines())

    waiting = [threading.Thread(target=long_poll), threading.Thread(target=stream)]
    for thread in waiting:
        thread.start()
    time.sleep(1.0)  # both are waiting now
    stopped = time.monotonic()
    api.send_signal(signal.SIGTERM)
    api.wait(timeout=20)
    exit_s = time.monotonic() - stopped
    for thread in waiting:
        thread.join(timeout=10)
    poll = seen["poll"]
    assert isinstance(poll, httpx.Response) and poll.status_code == 200 and poll.json()["status"] == "queued"
    lines = seen["stream"]
    assert isinstance(lines, list) and "event: queued" in lines
    assert lines.index(": the server is stopping: reconnect to go on") > lines.index("event: queued")
    print(f"the API exited {exit_s:.2f} s after SIGTERM with a 50 s long-poll and a stream open")
    assert exit_s < 5


def test_a_stopped_worker_finishes_its_job_first(dep: Deployment) -> None:
    worker = dep.start_worker(models=("slow-gpt2",))
    with dep.http(dep.start_api(), timeout=30) as client:
        job = client.post("/v1/jobs", json=SLOW).json()
        while client.get(f"/v1/jobs/{job['id']}").json()["status"] != "running":
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)  # the main process: Celery's warm shutdown
        worker.wait(timeout=120)
        done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done
    assert done["progress"] == 1.0
