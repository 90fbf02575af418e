"""Waiting for job events on the loop: a worker thread's write wakes every waiter of that job, and only those."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
import redis

from service.job_events import JobEvents, job_events_for
from workers.lifecycle import start
from workers.records import JobRecord, MemoryJobStore, RedisJobStore


def _record() -> JobRecord:
    return JobRecord(id=uuid.uuid4().hex, kind="patching", model="m", owner="t", queue="q", created_at=time.time(),
                     spec={"kind": "patching"})


def _memory() -> tuple[MemoryJobStore, JobEvents]:
    store = MemoryJobStore()
    return store, job_events_for(store, None)


def test_a_write_from_another_thread_wakes_every_waiter_of_that_job() -> None:
    store, events = _memory()

    async def scenario() -> None:
        async with events.lifespan():
            job, other = store.create(_record())[0], store.create(_record())[0]
            waiting = [asyncio.create_task(events.wait(job.id, 0, 10)) for _ in range(20)]
            bystander = asyncio.create_task(events.wait(other.id, 0, 0.5))
            while len(events.waiters) < 21:
                await asyncio.sleep(0.01)
            began = time.monotonic()
            threading.Thread(target=store.update, args=(job.id, start(3, 60, 600))).start()
            woken = await asyncio.wait_for(asyncio.gather(*waiting), 2)
            assert time.monotonic() - began < 0.5
            assert all([e.status for e in found] == ["running"] for found in woken)
            assert await bystander == []
            assert len(events.waiters) == 0

    asyncio.run(scenario())


def test_wait_answers_at_once_with_what_is_there_and_empty_at_its_deadline() -> None:
    store, events = _memory()

    async def scenario() -> None:
        async with events.lifespan():
            job = store.create(_record())[0]
            assert [e.seq for e in await asyncio.wait_for(events.wait(job.id, -1, 10), 1)] == [0]
            began = time.monotonic()
            assert await events.wait(job.id, 0, 0.2) == []
            assert 0.2 <= time.monotonic() - began < 1

    asyncio.run(scenario())


def test_the_store_decides_the_feed() -> None:
    with pytest.raises(ValueError, match="Redis URL"):
        job_events_for(RedisJobStore(redis.Redis(), prefix="p:", ttl_s=1), None)
    with pytest.raises(TypeError):
        job_events_for(object(), None)  # type: ignore[arg-type]
