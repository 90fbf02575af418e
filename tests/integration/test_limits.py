"""Limits that hold across replicas: TWO ``interp api`` processes on one Redis share each key's rate window and each
tenant's count of unfinished jobs; over either, 429 with ``Retry-After``; both recover. Per-model limits show on
``GET /v1/models/{id}`` (a job over ``max_patches`` is refused: see test_submission_checks.py, at submission and by
the worker alike). No worker runs: submitted jobs stay queued until the test ends them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Deployment, make_deployment
from workers.core.registry import DEFAULT_MAX_PATCHES
from workers.lifecycle import fail, start
from workers.records import JobError, RedisJobStore

pytestmark = pytest.mark.integration

PATCHING = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd",
            "answer": "a", "wrong_answer": "b"}
RATE, WINDOW_S, ACTIVE = 6, 3, 2


@dataclass
class Replicas:
    dep: Deployment
    urls: tuple[str, str]

    def client(self, replica: int, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[replica], headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _replicas(redis_url: str, directory: Path, **env: str) -> Iterator[Replicas]:
    dep = make_deployment(redis_url, directory, **env)
    try:
        urls = (dep.start_api(), dep.start_api())
        yield Replicas(dep, urls)
    finally:
        dep.stop()


@pytest.fixture(scope="module")
def rated(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    yield from _replicas(redis_url, tmp_path_factory.mktemp("rate"), INTERP_RATE_LIMIT_PER_MINUTE=str(RATE),
                         INTERP_RATE_LIMIT_WINDOW_S=str(WINDOW_S), INTERP_MAX_ACTIVE_JOBS="0")


@pytest.fixture(scope="module")
def bounded(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    yield from _replicas(redis_url, tmp_path_factory.mktemp("active"), INTERP_MAX_ACTIVE_JOBS=str(ACTIVE))


def _too_many(response: httpx.Response, code: str) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    return int(response.headers["retry-after"])


def test_a_keys_rate_window_is_shared_by_both_replicas_and_recovers(rated: Replicas) -> None:
    key, other = rated.dep.key("rates"), rated.dep.key("rates")
    with rated.client(0, key) as one, rated.client(1, key) as two, rated.client(1, other) as fresh:
        started = time.monotonic()
        answers = [(one, two)[i % 2].get("/v1/limits") for i in range(RATE)]
        assert [a.status_code for a in answers] == [200] * RATE
        assert answers[0].json()["rate_limit"] == RATE and answers[0].json()["rate_window_s"] == WINDOW_S
        retry_after = _too_many(one.get("/v1/limits"), "rate_limited")
        assert 1 <= retry_after <= WINDOW_S
        _too_many(two.post("/v1/jobs", json=PATCHING), "rate_limited")  # every route, on the other replica too
        assert time.monotonic() - started < WINDOW_S, "too slow to test the window"
        assert fresh.get("/v1/limits").status_code == 200  # per key, not per tenant
        assert all(httpx.get(f"{url}/healthz").status_code == 200 for url in rated.urls for _ in range(10))
        time.sleep(retry_after + 0.2)
        assert one.get("/v1/limits").status_code == 200 and two.get("/v1/limits").status_code == 200


def test_unfinished_jobs_per_tenant_are_counted_across_replicas(bounded: Replicas) -> None:
    dep = bounded.dep
    key = dep.key("busy")
    with bounded.client(0, key) as one, bounded.client(1, key) as two:
        first = one.post("/v1/jobs", json=PATCHING).json()
        second = two.post("/v1/jobs", json=PATCHING).json()
        assert first["status"] == second["status"] == "queued"
        limits = one.get("/v1/limits").json()
        assert (limits["max_active_jobs"], limits["active_jobs"]) == (ACTIVE, ACTIVE)
        assert _too_many(one.post("/v1/jobs", json=PATCHING), "too_many_active_jobs") >= 1
        _too_many(two.post("/v1/jobs", json=PATCHING), "too_many_active_jobs")
        with bounded.client(1, dep.key("idle")) as idle:
            assert idle.post("/v1/jobs", json=PATCHING).status_code == 202  # another tenant's count

        # A cancel through one replica frees a place the other sees.
        assert one.delete(f"/v1/jobs/{first['id']}").json()["status"] == "cancelled"
        third = two.post("/v1/jobs", json=PATCHING)
        assert third.status_code == 202, third.text
        _too_many(one.post("/v1/jobs", json=PATCHING), "too_many_active_jobs")

        # A job a worker ends (written to the store as a worker writes it, no API involved) frees its place too.
        store = RedisJobStore(dep.redis, prefix=dep.prefix, ttl_s=600)
        store.update(second["id"], start(max_deliveries=3, lease_s=60, hard_limit_s=600))
        assert two.post("/v1/jobs", json=PATCHING).status_code == 429  # running still counts
        store.update(second["id"], fail(JobError(code="internal_error", message="the test's worker gave up")))
        assert one.post("/v1/jobs", json=PATCHING).status_code == 202


def test_an_idempotent_retry_takes_no_second_place(bounded: Replicas) -> None:
    key = bounded.dep.key("retries")
    retry = {"Idempotency-Key": "once"}
    with bounded.client(0, key) as one, bounded.client(1, key) as two:
        job = one.post("/v1/jobs", json=PATCHING, headers=retry).json()
        assert two.post("/v1/jobs", json=PATCHING, headers=retry).json()["id"] == job["id"]
        assert one.get("/v1/limits").json()["active_jobs"] == 1
        assert two.post("/v1/jobs", json=PATCHING).status_code == 202
        _too_many(one.post("/v1/jobs", json=PATCHING), "too_many_active_jobs")


def test_concurrent_submissions_on_two_replicas_never_overshoot(bounded: Replicas) -> None:
    key = bounded.dep.key("burst")
    clients = [bounded.client(i % 2, key) for i in range(12)]
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda c: c.post("/v1/jobs", json=PATCHING).status_code, clients))
    finally:
        for client in clients:
            client.close()
    assert sorted(answers) == [202] * ACTIVE + [429] * (12 - ACTIVE)


def test_model_limits_are_on_the_model(bounded: Replicas) -> None:
    with bounded.client(0, bounded.dep.key("reader")) as http:
        model = http.get("/v1/models/tiny-gpt2").json()
    assert (model["max_tokens"], model["max_patches"]) == (128, DEFAULT_MAX_PATCHES)
