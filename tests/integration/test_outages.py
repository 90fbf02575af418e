"""Redis (job store, broker and cache in one) killed under load and started again, both ways; and RabbitMQ, as the
broker beside Redis, killed and started again.

While it is down the API answers 503 with the JSON error within a second and ``/readyz`` says not ready, while
``/healthz`` stays 200. With an append-only file every job accepted before the outage ends ``succeeded`` (a job
whose worker lost its writes is found by its lapsed lease and run again); none answers 404. Without persistence
the API warned at start-up that a restart loses the jobs (and the API keys), and they are gone, as it said;
either way the API and the workers recover without a restart: the worker publishes its model's card again and
new jobs succeed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Deployment, free_port, make_deployment, start_redis
from tests.integration.rabbitmq import RabbitMQ

pytestmark = pytest.mark.integration

SLOW = {"kind": "patching", "model": "slow-gpt2", "clean_prompt": "a" * 50, "corrupted_prompt": "b" * 50,
        "answer": "a", "wrong_answer": "b", "targets": ["resid_pre", "attn_out", "mlp_out"]}
FAST = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd", "answer": "a",
        "wrong_answer": "b"}
DOWN_S = 4


@dataclass
class Outage:
    dep: Deployment
    directory: Path
    port: int
    appendonly: bool
    api_log: Path
    server: object = None

    def start(self) -> None:
        self.server, _ = start_redis(self.directory, self.port, appendonly=self.appendonly)

    def kill(self) -> None:
        self.server.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        self.server.wait(timeout=10)  # type: ignore[attr-defined]


@pytest.fixture(params=[True, False], ids=["aof", "no-persistence"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    port = free_port()
    state = Outage(None, tmp_path / "redis", port, request.param, tmp_path / "api.log")  # type: ignore[arg-type]
    state.directory.mkdir()
    state.start()
    dep = make_deployment(f"redis://127.0.0.1:{port}/0", tmp_path / "dep", INTERP_LEASE_S="3")
    state.dep = dep
    try:
        dep.start_worker(models=("slow-gpt2", "tiny-gpt2"))
        with state.api_log.open("wb") as log:
            dep.start_api(output=log)
        yield state
    finally:
        dep.stop()
        state.kill()


def _timed(call: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = call.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - began


def test_redis_killed_under_load_and_restarted(outage: Outage) -> None:
    dep = outage.dep
    with dep.http(timeout=30) as client:
        accepted = [client.post("/v1/jobs", json=SLOW if i % 2 == 0 else FAST).json()["id"] for i in range(6)]
        while client.get(f"/v1/jobs/{accepted[0]}").json()["status"] != "running":
            time.sleep(0.05)
        outage.kill()
        submit, submit_s = _timed(client, "POST", "/v1/jobs", json=FAST)
        ready, ready_s = _timed(client, "GET", "/readyz")
        health, _ = _timed(client, "GET", "/healthz")
        status, status_s = _timed(client, "GET", f"/v1/jobs/{accepted[1]}")
        assert (submit.status_code, ready.status_code, health.status_code, status.status_code) == (503, 503, 200, 503)
        assert submit.json()["error"]["code"] == "unavailable" and status.json()["error"]["code"] == "unavailable"
        assert max(submit_s, ready_s, status_s) < 1.5, (submit_s, ready_s, status_s)
        time.sleep(DOWN_S)
        outage.start()
        back = time.monotonic()
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() - back < 30, "the API never became ready again"
            time.sleep(0.1)
        ready_again_s = time.monotonic() - back
        if not outage.appendonly:  # the API keys were in Redis too: the tenant needs a new one
            client.headers["Authorization"] = f"Bearer {dep.key()}"
        ends = {job_id: _end(client, job_id) for job_id in accepted}
        fresh = client.post("/v1/jobs", json=FAST, params={"wait": 60}).json()
        tokenized = _until_ok(client, "/v1/tokenize", {"model": "tiny-gpt2", "prompt": "ab"})
    print(f"{'AOF' if outage.appendonly else 'no persistence'}: submit {submit_s * 1000:.0f} ms, readyz "
          f"{ready_s * 1000:.0f} ms during the outage; ready {ready_again_s:.1f} s after Redis returned; "
          f"accepted jobs ended {sorted(ends.values())}")
    assert fresh["status"] == "succeeded", fresh
    assert tokenized["tokens"]
    warned = "no append-only file" in outage.api_log.read_text(encoding="utf-8", errors="replace")
    if outage.appendonly:
        assert set(ends.values()) == {"succeeded"} and not warned
    else:
        assert set(ends.values()) == {404} and warned  # what the start-up warning said would happen


def _end(client: httpx.Client, job_id: str) -> str | int:
    """The job's final status, or the HTTP status when it has none (404: lost)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}", params={"wait": 30})
        if response.status_code != 200:
            return response.status_code
        if response.json()["status"] in ("succeeded", "failed", "cancelled"):
            return str(response.json()["status"])
    return "never ended"


def _until_ok(client: httpx.Client, path: str, body: dict[str, str]) -> dict[str, list[str]]:
    """The worker publishes its card again within seconds of finding it gone: until then, 503."""
    deadline = time.monotonic() + 30
    while (response := client.post(path, json=body)).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)
    data: dict[str, list[str]] = response.json()
    return data


@pytest.fixture
def broker_outage(tmp_path: Path) -> Iterator[tuple[Deployment, RabbitMQ, Path]]:
    """RabbitMQ of the test's own as the broker, Redis (with an append-only file) as the store."""
    rabbit = RabbitMQ()
    rabbit.start()
    (tmp_path / "redis").mkdir()
    redis_proc, redis_url = start_redis(tmp_path / "redis", appendonly=True)
    dep = make_deployment(redis_url, tmp_path / "dep", INTERP_LEASE_S="3", BROKER_URL=rabbit.url)
    api_log = tmp_path / "api.log"
    try:
        dep.start_worker(models=("slow-gpt2", "tiny-gpt2"))
        with api_log.open("wb") as log:
            dep.start_api(output=log)
        yield dep, rabbit, api_log
    finally:
        dep.stop()
        rabbit.remove()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)


def test_rabbitmq_killed_under_load_and_restarted(broker_outage: tuple[Deployment, RabbitMQ, Path]) -> None:
    """Jobs accepted before the broker died sit in its durable (quorum) queues or run on the worker; after it
    returns every one succeeds. While it is down, a submission is a 503 (its record fails as ``unavailable``, its
    Idempotency-Key freed), reads of jobs still answer from Redis, and ``/readyz`` says the broker is away."""
    dep, rabbit, _ = broker_outage
    with dep.http(timeout=30) as client:
        accepted = [client.post("/v1/jobs", json=SLOW if i % 2 == 0 else FAST).json()["id"] for i in range(6)]
        while client.get(f"/v1/jobs/{accepted[0]}").json()["status"] != "running":
            time.sleep(0.05)
        rabbit.kill()
        submit, submit_s = _timed(client, "POST", "/v1/jobs", json=FAST, headers={"Idempotency-Key": "during"})
        ready, ready_s = _timed(client, "GET", "/readyz")
        status, _ = _timed(client, "GET", f"/v1/jobs/{accepted[1]}")
        assert (submit.status_code, ready.status_code, status.status_code) == (503, 503, 200), submit.text
        assert submit.json()["error"]["code"] == "unavailable" and ready.json()["checks"]["store"] == "ok"
        time.sleep(DOWN_S)
        rabbit.start()
        back = time.monotonic()
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() - back < 60, "the API never became ready again"
            time.sleep(0.1)
        ready_again_s = time.monotonic() - back
        ends = {job_id: _end(client, job_id) for job_id in accepted}
        retried = client.post("/v1/jobs", json=FAST, params={"wait": 60}, headers={"Idempotency-Key": "during"})
    print(f"RabbitMQ: submit {submit_s * 1000:.0f} ms, readyz {ready_s * 1000:.0f} ms during the outage; ready "
          f"{ready_again_s:.1f} s after it returned; accepted jobs ended {sorted(ends.values())}")
    assert set(ends.values()) == {"succeeded"}
    assert retried.json()["status"] == "succeeded", retried.text  # the key was freed: the retry made a new job
