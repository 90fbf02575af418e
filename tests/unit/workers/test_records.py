"""Job records behave the same in memory and in Redis: lifecycle, events, queue positions, idempotency, owners."""

from __future__ import annotations

import time

from tests.unit.workers.conftest import job_record as _record
from workers.records import JobRecord, JobStore


def _start(record: JobRecord) -> JobRecord:
    record.status, record.started_at = "running", time.time()
    return record


def _progress(value: float):  # type: ignore[no-untyped-def]
    def mutate(record: JobRecord) -> JobRecord:
        record.progress = value
        return record

    return mutate


def test_lifecycle_events_in_order(store: JobStore) -> None:
    record, created = store.create(_record())
    assert created
    store.update(record.id, _start)
    store.update(record.id, _progress(0.5))
    store.update(record.id, _progress(0.5))  # no change: no event
    done = store.update(record.id, lambda r: r.model_copy(update={"status": "succeeded", "progress": 1.0}))
    assert done is not None and done.status == "succeeded"
    events = store.events(record.id, -1)
    assert [(e.seq, e.status, e.progress) for e in events] == [
        (0, "queued", 0.0), (1, "running", 0.0), (2, "running", 0.5), (3, "succeeded", 1.0)
    ]
    assert [e.seq for e in store.events(record.id, 1)] == [2, 3]


def test_queue_positions_follow_submission_order(store: JobStore) -> None:
    now = time.time()
    first, _ = store.create(_record(created=now))
    second, _ = store.create(_record(created=now + 1))
    other_queue, _ = store.create(_record(queue="other", created=now + 2))
    assert store.queue_position(second) == 1
    assert store.queue_position(other_queue) == 0
    running = store.update(first.id, _start)
    assert running is not None and store.queue_position(running) is None
    assert store.queue_position(second) == 0


def test_idempotency_key_is_per_owner(store: JobStore) -> None:
    first, _ = store.create(_record(owner="a"), idempotency_key="k")
    again, created = store.create(_record(owner="a"), idempotency_key="k")
    assert not created and again.id == first.id
    other, created = store.create(_record(owner="b"), idempotency_key="k")
    assert created and other.id != first.id


def test_pages_are_owner_scoped_newest_first(store: JobStore) -> None:
    now = time.time()
    ids = [store.create(_record(owner="p", created=now + i))[0].id for i in range(5)]
    store.create(_record(owner="someone-else"))
    page, total = store.page("p", offset=1, limit=2)
    assert total == 5
    assert [r.id for r in page] == [ids[3], ids[2]]


def test_update_of_unknown_job_is_none(store: JobStore) -> None:
    assert store.update("missing", _start) is None
    assert store.get("missing") is None


def test_a_released_idempotency_key_makes_a_new_job(store: JobStore) -> None:
    first, created = store.create(_record(), idempotency_key="k")
    assert created
    store.release_idempotency_key("t1", "k", "some-other-job")  # names another job: kept
    assert store.create(_record(), idempotency_key="k") == (first, False)
    store.release_idempotency_key("t1", "k", first.id)
    second, created = store.create(_record(), idempotency_key="k")
    assert created and second.id != first.id
    assert store.create(_record(), idempotency_key="k") == (second, False)
