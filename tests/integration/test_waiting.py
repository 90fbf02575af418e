"""Waiting never blocks the API: with 200 long-polls and 50 event streams open, other routes answer within a second.

The API runs alone (no worker), so jobs stay queued until the test ends them: half by ``DELETE`` through the API,
half by writing to the store from this process as a failing worker would. Redis is a server of the module's own, so the
load and the SIGSTOP touch nobody else's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.job_events import JobEvents, RedisWakeFeed
from tests.integration.conftest import Deployment, make_deployment, start_redis
from workers.lifecycle import fail, start
from workers.records import JobError, JobRecord, RedisJobStore

pytestmark = pytest.mark.integration

PATCHING = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd",
            "answer": "a", "wrong_answer": "b"}
ANSWER_S = 1.0  # what "answers at once" means for /readyz, the model list and a new submission
N_GET_POLLS, N_POST_POLLS, N_SHORT_POLLS, N_STREAMS = 180, 10, 10, 50


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = start_redis(tmp_path_factory.mktemp("own-redis"))
    try:
        yield proc, url
    finally:
        os.kill(proc.pid, signal.SIGCONT)  # in case a test left it frozen
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def api(
    own_redis: tuple[subprocess.Popen[bytes], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The API alone: no worker consumes its queues."""
    # No limit of unfinished jobs: the test holds some 150 queued at once.
    dep = make_deployment(own_redis[1], tmp_path_factory.mktemp("waiting"), INTERP_MAX_ACTIVE_JOBS="0")
    try:
        dep.start_api()
        yield dep
    finally:
        dep.stop()


async def _timed(request: Any) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await request
    return response, time.monotonic() - start


async def _submit(http: httpx.AsyncClient, *, wait: float | None = None, key: str | None = None) -> dict[str, Any]:
    response = await http.post("/v1/jobs", json=PATCHING, params={"wait": wait} if wait else None,
                               headers={"Idempotency-Key": key} if key else None)
    assert response.status_code in (200, 202), response.text
    job: dict[str, Any] = response.json()
    return job


async def _stream(http: httpx.AsyncClient, job_id: str, opened: asyncio.Event) -> list[dict[str, Any]]:
    """Every event of the job's stream, in order; sets ``opened`` at the first."""
    events: list[dict[str, Any]] = []
    async with http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line.removeprefix("data:").strip()))
                opened.set()
    return events


async def _many_waiters(dep: Deployment) -> None:
    store = RedisJobStore(dep.redis, prefix=dep.prefix, ttl_s=600)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=dep.api_url, timeout=60, limits=limits, headers=dep.headers) as http:
        n_ended = N_GET_POLLS + N_STREAMS
        jobs = [await _submit(http) for _ in range(n_ended + N_SHORT_POLLS)]
        ended, short = [j["id"] for j in jobs[:n_ended]], [j["id"] for j in jobs[n_ended:]]
        polled, streamed = ended[:N_GET_POLLS], ended[N_GET_POLLS:]

        started = time.monotonic()
        get_polls = [asyncio.create_task(http.get(f"/v1/jobs/{i}", params={"wait": 30})) for i in polled]
        keys = [f"wait-{n}" for n in range(N_POST_POLLS)]
        post_polls = [asyncio.create_task(_submit(http, wait=30, key=k)) for k in keys]
        short_polls = [asyncio.create_task(_timed(http.get(f"/v1/jobs/{i}", params={"wait": 3}))) for i in short]
        opened = [asyncio.Event() for _ in streamed]
        streams = [asyncio.create_task(_stream(http, i, o)) for i, o in zip(streamed, opened, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 10)
        await asyncio.sleep(0.5)  # the long-polls, sent before the streams, have reached their waits
        assert not any(t.done() for t in (*get_polls, *post_polls, *streams))

        ready, ready_s = await _timed(http.get("/readyz"))
        models, models_s = await _timed(http.get("/v1/models"))
        submitted, submit_s = await _timed(http.post("/v1/jobs", json=PATCHING))
        health, health_s = await _timed(http.get("/healthz"))
        timings = {"/healthz": health_s, "/readyz": ready_s, "/v1/models": models_s, "a submission": submit_s}
        print(f"with {N_GET_POLLS + N_POST_POLLS + N_SHORT_POLLS} long-polls and {N_STREAMS} streams open: "
              + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in timings.items()))
        assert ready.status_code == 200 and health.status_code == 200, ready.text
        assert models.status_code == 200 and submitted.status_code == 202
        assert max(ready_s, models_s, submit_s, health_s) < ANSWER_S, (ready_s, models_s, submit_s, health_s)
        assert not any(t.done() for t in (*get_polls, *post_polls, *streams))

        # The POST long-polls' jobs: the same key and body name the same job.
        post_ids = [(await _submit(http, key=k))["id"] for k in keys]
        to_end = [*polled, *post_ids, *streamed]
        to_cancel, to_fail = to_end[::2], to_end[1::2]
        cancelled = await asyncio.gather(*(http.delete(f"/v1/jobs/{i}") for i in to_cancel))
        assert all(r.status_code == 200 for r in cancelled)
        await asyncio.to_thread(lambda: [_run_and_fail(store, i) for i in to_fail])
        ended_at = time.monotonic()

        polls = await asyncio.wait_for(asyncio.gather(*get_polls), 10)
        posted = await asyncio.wait_for(asyncio.gather(*post_polls), 10)
        done_s = time.monotonic() - ended_at
        want = dict.fromkeys(to_cancel, "cancelled") | dict.fromkeys(to_fail, "failed")
        for response in polls:
            assert response.status_code == 200, response.text
            assert response.json()["status"] == want[response.json()["id"]]
        assert all(job["status"] == want[job["id"]] for job in posted)
        assert done_s < 5, f"long-polls took {done_s:.1f} s to see their jobs end"

        for job_id, events in zip(streamed, await asyncio.wait_for(asyncio.gather(*streams), 10), strict=True):
            assert [e["seq"] for e in events] == list(range(len(events)))
            assert events[0]["status"] == "queued" and events[-1]["status"] == want[job_id]

        for response, seconds in await asyncio.wait_for(asyncio.gather(*short_polls), 10):
            assert response.status_code == 200 and response.json()["status"] == "queued"
            assert 3 <= seconds < 3 + 5
        assert time.monotonic() - started < 25


def test_many_long_polls_and_streams_leave_the_api_responsive(api: Deployment) -> None:
    asyncio.run(_many_waiters(api))


def test_readyz_answers_503_at_once_with_redis_frozen(
    own_redis: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    proc, url = own_redis
    dep = make_deployment(url, tmp_path)
    try:
        with httpx.Client(base_url=dep.start_api(), timeout=10) as http:
            assert http.get("/readyz").status_code == 200
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                for _ in range(3):  # the second and third share the first's ping, still stuck
                    start = time.monotonic()
                    ready = http.get("/readyz")
                    assert time.monotonic() - start < ANSWER_S
                    assert ready.status_code == 503
                    assert ready.json()["checks"]["store"].startswith("unreachable")
                assert http.get("/healthz").status_code == 200
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            deadline = time.monotonic() + 10
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "not ready again after Redis resumed"
                time.sleep(0.2)
    finally:
        dep.stop()


def test_wake_feed_resubscribes_and_wakes_waiters_after_redis_restarts(tmp_path: Path) -> None:
    proc, url = start_redis(tmp_path)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    store = RedisJobStore(redis.Redis.from_url(url, socket_timeout=1), prefix="feed:", ttl_s=60)
    feed = RedisWakeFeed(url, store.wake_prefix, min_backoff_s=1.0)  # a gap long enough to write into
    events = JobEvents(store, feed)

    async def until(condition: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        nonlocal proc
        async with events.lifespan():
            await until(lambda: feed.subscribed, 5)
            record = _queued_record()
            store.create(record)
            waiter = asyncio.create_task(events.wait(record.id, 0, 10))
            await until(lambda: len(events.waiters) == 1, 5)
            _run_and_fail(store, record.id)
            assert [e.status for e in await asyncio.wait_for(waiter, 2)] == ["running", "failed"]

            proc.kill()
            proc.wait(timeout=10)
            await until(lambda: not feed.subscribed, 5)
            proc, _ = start_redis(tmp_path, port)
            record = _queued_record()
            store.create(record)
            waiter = asyncio.create_task(events.wait(record.id, 0, 10))
            await until(lambda: len(events.waiters) == 1, 5)
            _run_and_fail(store, record.id)  # published while the feed is still down: heard by nobody
            assert not feed.subscribed
            found = await asyncio.wait_for(waiter, 5)  # the resubscription wakes every waiter to read again
            assert [e.status for e in found] == ["running", "failed"] and feed.subscribed

    try:
        asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _run_and_fail(store: RedisJobStore, job_id: str) -> None:
    """What a worker writes for a job that fails: running, then failed."""
    store.update(job_id, start(max_deliveries=3, lease_s=60, hard_limit_s=600))
    store.update(job_id, fail(JobError(code="internal_error", message="the test's worker gave up")))


def _queued_record() -> JobRecord:
    return JobRecord(id=os.urandom(8).hex(), kind="patching", model="tiny-gpt2", owner="default", queue="q",
                     created_at=time.time(), spec=PATCHING)
