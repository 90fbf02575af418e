"""Job stores for the workers' unit tests: each test runs on the memory store and on a real Redis (database 12)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from workers.records import JobRecord, JobStore, MemoryJobStore, RedisJobStore


def job_record(owner: str = "t1", queue: str = "q", created: float | None = None) -> JobRecord:
    return JobRecord(id=uuid.uuid4().hex, kind="patching", model="m", owner=owner, queue=queue,
                     created_at=created if created is not None else time.time(), spec={"kind": "patching"})


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[JobStore]:
    if request.param == "memory":
        yield MemoryJobStore()
        return
    client = redis.Redis.from_url("redis://127.0.0.1:6379/12", socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"unit-{uuid.uuid4().hex[:8]}:"
    yield RedisJobStore(client, prefix=prefix, ttl_s=60)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


