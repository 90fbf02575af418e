"""A worker killed with SIGKILL mid-job: the unacknowledged job is redelivered to the next worker and succeeds."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Deployment, make_deployment

pytestmark = pytest.mark.integration

SLOW = {
    "kind": "patching",
    "model": "slow-gpt2",
    "clean_prompt": "a" * 40,
    "corrupted_prompt": "b" * 40,
    "answer": "a",
    "wrong_answer": "b",
    "targets": ["resid_pre", "attn_out", "mlp_out"],
}


@pytest.fixture
def short_visibility(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Unacknowledged messages come back after 2 s, so the test need not wait an hour."""
    dep = make_deployment(redis_url, tmp_path_factory.mktemp("redelivery"), INTERP_VISIBILITY_TIMEOUT_S="2")
    try:
        yield dep
    finally:
        dep.stop()


def test_sigkilled_worker_job_is_redelivered_and_succeeds(short_visibility: Deployment) -> None:
    dep = short_visibility
    first_worker = dep.start_worker(models=("slow-gpt2",))
    url = dep.start_api()
    with dep.http(url, timeout=30) as client:
        job = client.post("/v1/jobs", json=SLOW).json()
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{job['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        dep.kill(first_worker, signal.SIGKILL)  # the whole process group: main process and pool child
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"

        dep.start_worker(models=("slow-gpt2",))
        done = client.get(f"/v1/jobs/{job['id']}", params={"wait": 120}).json()
    assert done["status"] == "succeeded", done
    assert done["result"]["targets"]["resid_pre"]["axes"] == ["layer", "position"]
    stored = json.loads(dep.redis.get(f"{dep.prefix}job:{job['id']}") or b"{}")
    assert stored["deliveries"] == 2
