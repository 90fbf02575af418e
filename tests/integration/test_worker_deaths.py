"""Worker deaths with real processes: the job runs again on a live worker within seconds, and says why.

Kills: a pool child (SIGKILL: its parent sees it die and hands the message back); a worker's whole process group
(what an OOM kill of the pod or a lost node does), with another worker standing by. Brokers: Redis, where only the
job's lapsed lease tells (the reaper sends it again), and RabbitMQ (quorum queues), which hands an unacknowledged
message to another consumer the moment the dead one's connection drops. A job that kills its worker every time fails as
``worker_lost`` after ``INTERP_MAX_DELIVERIES`` and the job behind it still runs.

``INTERP_KILL_ROUNDS=N`` repeats each kill N times (the stress run for docs/reliability.md); each recovery time is
printed.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from kombu import Connection

from tests.integration.conftest import Deployment, make_deployment

pytestmark = pytest.mark.integration

RABBITMQ_URL = os.environ.get("INTERP_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
LEASE_S = 3
ROUNDS = int(os.environ.get("INTERP_KILL_ROUNDS", "1"))
RECOVERY_BOUND_S = 3 * LEASE_S + 5
"""Lease lapse (at most one lease after the last renewal) + a reaper beat (half a lease) + a worker taking it."""
SLOW = {"kind": "patching", "model": "slow-gpt2", "clean_prompt": "a" * 60, "corrupted_prompt": "b" * 60,
        "answer": "a", "wrong_answer": "b", "targets": ["resid_pre", "attn_out", "mlp_out", "head_out_by_pos"]}
FAST = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd", "answer": "a",
        "wrong_answer": "b"}


def _rabbitmq_answers() -> bool:
    try:
        with Connection(RABBITMQ_URL, connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


@pytest.fixture(params=["redis", "rabbitmq"])
def dep(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    env = {"INTERP_LEASE_S": str(LEASE_S)}
    if request.param == "rabbitmq":
        if not _rabbitmq_answers():
            if os.environ.get("CI"):
                pytest.fail(f"no RabbitMQ at {RABBITMQ_URL}")
            pytest.skip(f"no RabbitMQ at {RABBITMQ_URL}")
        env["BROKER_URL"] = RABBITMQ_URL
    deployment = make_deployment(redis_url, tmp_path_factory.mktemp(f"deaths-{request.param}"), **env)
    try:
        yield deployment
    finally:
        deployment.stop()
        if request.param == "rabbitmq":
            _delete_queues(deployment)


def _delete_queues(dep: Deployment) -> None:
    with Connection(RABBITMQ_URL) as connection:
        channel = connection.default_channel
        for queue in (*(f"interp.models.{dep.group(m)}" for m in ("tiny-gpt2", "slow-gpt2")),
                      dep.env["INTERP_WEBHOOK_QUEUE"]):
            channel.queue_delete(queue)


def _record(dep: Deployment, job_id: str) -> dict[str, Any]:
    raw = dep.redis.get(f"{dep.prefix}job:{job_id}")
    assert raw is not None
    record: dict[str, Any] = json.loads(raw)
    return record


def _wait_running(dep: Deployment, job_id: str, delivery: int, timeout: float = 120) -> float:
    """Seconds until the job is running its ``delivery``-th time."""
    started = time.monotonic()
    while (record := _record(dep, job_id))["deliveries"] < delivery or record["status"] != "running":
        assert record["status"] in ("queued", "running"), record
        assert time.monotonic() - started < timeout, f"delivery {delivery} never started: {record}"
        time.sleep(0.02)
    return time.monotonic() - started


def _busy_child(worker: subprocess.Popen[bytes]) -> psutil.Process:
    (child,) = psutil.Process(worker.pid).children()  # concurrency 1: one pool child
    return child


def _report(what: str, seconds: list[float]) -> None:
    print(f"{what}: running again after {[round(s, 2) for s in seconds]} s "
          f"(median {statistics.median(seconds):.2f}, max {max(seconds):.2f})")


def test_a_killed_pool_child_hands_the_job_back(dep: Deployment) -> None:
    worker = dep.start_worker(models=("slow-gpt2",))
    dep.start_api()
    recoveries = []
    with dep.http(timeout=30) as client:
        for _ in range(ROUNDS):
            job = client.post("/v1/jobs", json=SLOW).json()
            _wait_running(dep, job["id"], 1)
            _busy_child(worker).kill()
            killed = time.monotonic()
            _wait_running(dep, job["id"], 2)
            recoveries.append(time.monotonic() - killed)
            done = client.get(f"/v1/jobs/{job['id']}", params={"wait": 120}).json()
            assert done["status"] == "succeeded", done
            record = _record(dep, job["id"])
            assert record["deliveries"] == 2 and record["note"].startswith("delivery 2 of at most 3")
    _report(f"{dep.env.get('BROKER_URL', 'redis')[:4]} pool child SIGKILL", recoveries)
    assert max(recoveries) < RECOVERY_BOUND_S


def test_a_killed_worker_group_job_runs_on_the_standby(dep: Deployment) -> None:
    workers = [dep.start_worker(models=("slow-gpt2",)), dep.start_worker(models=("slow-gpt2",))]
    dep.start_api()
    recoveries = []
    with dep.http(timeout=30) as client:
        for _ in range(ROUNDS):
            job = client.post("/v1/jobs", json=SLOW).json()
            _wait_running(dep, job["id"], 1)
            busy = next(w for w in workers if _cpu_of(w) > 0)  # the one computing
            dep.kill(busy, signal.SIGKILL)
            killed = time.monotonic()
            _wait_running(dep, job["id"], 2)
            recoveries.append(time.monotonic() - killed)
            done = client.get(f"/v1/jobs/{job['id']}", params={"wait": 120}).json()
            assert done["status"] == "succeeded", done
            workers[workers.index(busy)] = dep.start_worker(models=("slow-gpt2",))  # a new standby
    _report(f"{dep.env.get('BROKER_URL', 'redis')[:4]} worker group SIGKILL", recoveries)
    assert max(recoveries) < RECOVERY_BOUND_S


def _cpu_of(worker: subprocess.Popen[bytes]) -> float:
    children = psutil.Process(worker.pid).children()
    return sum(child.cpu_percent(interval=0.3) for child in children)


def test_a_job_that_kills_every_worker_fails_promptly_and_blocks_nothing(dep: Deployment) -> None:
    """The poison job is killed each time it starts (as an out-of-memory kill would); the job behind it waits in
    the same queue on the same single worker."""
    worker = dep.start_worker(models=("slow-gpt2", "tiny-gpt2"), loglevel="INFO")  # concurrency 1: the second job waits
    dep.start_api()
    with dep.http(timeout=30) as client:
        poison = client.post("/v1/jobs", json=SLOW).json()
        behind = client.post("/v1/jobs", json=FAST).json()
        submitted = time.monotonic()
        for delivery in (1, 2, 3):
            _wait_running(dep, poison["id"], delivery)
            _busy_child(worker).kill()
        failed = client.get(f"/v1/jobs/{poison['id']}", params={"wait": 60}).json()
        took = time.monotonic() - submitted
        assert failed["status"] == "failed" and failed["error"]["code"] == "worker_lost", failed
        assert client.get(f"/v1/jobs/{behind['id']}", params={"wait": 60}).json()["status"] == "succeeded"
    print(f"{dep.env.get('BROKER_URL', 'redis')[:4]} poison job: failed as worker_lost {took:.1f} s after submission")
    assert took < 3 * RECOVERY_BOUND_S + 30


def test_every_job_a_killed_threads_worker_held_runs_again(dep: Deployment) -> None:
    """A threads worker holds several jobs at once, their forwards shared: killed, every one of them comes back."""
    dep.env["INTERP_JOB_MEMORY_BYTES"] = str(4 * 1024**3)  # long prompts, to be still running when killed
    worker = dep.start_worker(models=("slow-gpt2",), pool="threads")
    dep.start_api()
    prompts = [chr(97 + i % 26) * 500 for i in range(16)]
    body = {"kind": "activations", "model": "slow-gpt2", "prompts": prompts, "hooks": ["blocks.3.hook_resid_post"],
            "positions": [-1], "top_k": 2}
    with dep.http(timeout=30) as client:
        answers = [client.post("/v1/jobs", json={**body, "prompts": [f"{n}{p}" for p in prompts]}) for n in range(4)]
        assert [a.status_code for a in answers] == [202] * 4, answers[0].text
        ids = [answer.json()["id"] for answer in answers]
        for job_id in ids:
            _wait_running(dep, job_id, 1)
        dep.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        dep.start_worker(models=("slow-gpt2",), pool="threads")
        jobs = [client.get(f"/v1/jobs/{job_id}", params={"wait": 120}).json() for job_id in ids]
    took = time.monotonic() - killed
    assert [job["status"] for job in jobs] == ["succeeded"] * 4, [job.get("error") for job in jobs]
    deliveries = [_record(dep, job_id)["deliveries"] for job_id in ids]
    assert deliveries == [2] * 4, deliveries
    print(f"{dep.env.get('BROKER_URL', 'redis')[:4]} threads worker SIGKILL with 4 jobs: all done {took:.1f} s later")
