"""The limiters behave the same in memory and in Redis: a fixed window per key, and unfinished jobs per tenant that
leave the count when their records end or vanish, never beyond the limit under concurrent reservations."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from service.limits import (
    RESERVATION_GRACE_S,
    ActiveJobs,
    MemoryActiveJobs,
    MemoryRateLimiter,
    RateLimiter,
    RedisActiveJobs,
    RedisRateLimiter,
)

URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    yield client


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    prefix = f"unit-{uuid.uuid4().hex[:8]}:"
    yield prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _rate(kind: str, client: redis.Redis, prefix: str, limit: int, window_s: int) -> RateLimiter:
    if kind == "memory":
        return MemoryRateLimiter(limit=limit, window_s=window_s)
    return RedisRateLimiter(client, prefix=prefix, limit=limit, window_s=window_s)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_window_admits_the_limit_then_says_how_long_to_wait(kind: str, client: redis.Redis, prefix: str) -> None:
    limiter = _rate(kind, client, prefix, limit=3, window_s=2)
    assert [limiter.hit("k") for _ in range(3)] == [None, None, None]
    assert limiter.hit("k") in (1, 2) and limiter.hit("k") in (1, 2)  # seconds to the window's end, rounded up
    assert limiter.hit("other") is None  # per identity
    time.sleep(2.1)
    assert limiter.hit("k") is None  # a new window


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_limit_zero_counts_nothing(kind: str, client: redis.Redis, prefix: str) -> None:
    limiter = _rate(kind, client, prefix, limit=0, window_s=60)
    assert all(limiter.hit("k") is None for _ in range(50))
    assert not list(client.scan_iter(f"{prefix}*"))


def test_two_replicas_share_one_window(client: redis.Redis, prefix: str) -> None:
    one, other = (RedisRateLimiter(redis.Redis.from_url(URL), prefix=prefix, limit=4, window_s=30) for _ in range(2))
    admitted = [limiter.hit("k") is None for limiter in (one, other) * 4]
    assert admitted == [True] * 4 + [False] * 4
    assert 0 < client.pttl(f"{prefix}rate:k") <= 30_000


class Records:
    """What the job store would say of each id: unfinished, ended (``False``) or gone (absent)."""

    def __init__(self) -> None:
        self.state: dict[str, bool] = {}

    def __call__(self, job_id: str) -> bool | None:
        return self.state.get(job_id)


def _active(kind: str, client: redis.Redis, prefix: str, limit: int, records: Records) -> ActiveJobs:
    if kind == "memory":
        return MemoryActiveJobs(limit=limit, is_active=records)
    return RedisActiveJobs(client, prefix=prefix, limit=limit, ttl_s=600, is_active=records)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_ended_and_vanished_jobs_free_their_places(kind: str, client: redis.Redis, prefix: str) -> None:
    records = Records()
    active = _active(kind, client, prefix, 2, records)
    assert active.reserve("t", "a") and active.reserve("t", "b")
    records.state.update(a=True, b=True)
    assert not active.reserve("t", "c")
    assert active.reserve("other", "x")  # per tenant
    records.state["a"] = False  # a ended (succeeded, failed or cancelled)
    assert active.reserve("t", "c")
    records.state["c"] = True
    assert active.count("t") == 2 and not active.reserve("t", "d")
    del records.state["b"]  # no record: as for an id reserved a moment ago, presumed mid-submission
    assert not active.reserve("t", "d") and active.count("t") == 2


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_id_reserved_before_its_record_exists_keeps_its_place(
    kind: str, client: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records()
    active = _active(kind, client, prefix, 1, records)
    assert active.reserve("t", "new")  # its record is being written
    assert not active.reserve("t", "second") and active.count("t") == 1
    later = time.time() + RESERVATION_GRACE_S + 1
    monkeypatch.setattr(time, "time", lambda: later)  # the record never came (its creation failed)
    assert active.reserve("t", "second")


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_released_reservation_frees_its_place(kind: str, client: redis.Redis, prefix: str) -> None:
    records = Records()
    active = _active(kind, client, prefix, 1, records)
    assert active.reserve("t", "retry")
    active.release("t", "retry")
    assert active.count("t") == 0 and active.reserve("t", "next")


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_concurrent_reservations_never_overshoot(kind: str, client: redis.Redis, prefix: str) -> None:
    records = Records()
    limit, n = 5, 40
    actives: list[Any] = [_active(kind, client, prefix, limit, records)]
    if kind == "redis":  # several replicas, each with its own connection
        actives += [RedisActiveJobs(redis.Redis.from_url(URL), prefix=prefix, limit=limit, ttl_s=600,
                                    is_active=records) for _ in range(3)]
    barrier = threading.Barrier(n)
    won: list[str] = []

    def submit(i: int) -> None:
        barrier.wait()
        if actives[i % len(actives)].reserve("t", f"job-{i}"):
            won.append(f"job-{i}")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == limit
    assert actives[0].count("t") == limit
