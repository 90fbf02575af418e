"""The reaper on both stores: a lapsed lease sends the job again and puts it back in line; nothing is lost when
the broker refuses; a job out of deliveries fails as worker_lost; a live or renewed lease is left alone."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.unit.workers.conftest import job_record
from workers.lifecycle import renew, start
from workers.reaper import reap
from workers.records import JobStore

LEASE_S, HARD_S = 6.0, 600.0
HARD = {"patching": HARD_S}


class Sent:
    """A queue that records what it was asked to send, or refuses like a broker that is down."""

    def __init__(self, *, down: bool = False) -> None:
        self.down, self.messages = down, []

    def __call__(self, job_id: str, kind: str, queue: str) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.messages.append((job_id, kind, queue))


@pytest.fixture
def running(store: JobStore) -> Iterator[tuple[JobStore, str]]:
    record, _ = store.create(job_record())
    store.update(record.id, start(3, LEASE_S, HARD_S))
    yield store, record.id


def _lapse(store: JobStore, job_id: str) -> None:
    def mutate(record):  # type: ignore[no-untyped-def]
        record.lease_until = time.time() - 1
        return record

    store.update(job_id, mutate)


def test_a_live_lease_is_left_alone(running: tuple[JobStore, str]) -> None:
    store, _ = running
    sent = Sent()
    assert reap(store, sent, max_deliveries=3, hard_limits=HARD) == [] and sent.messages == []
    assert store.lapsed(time.time()) == []


def test_a_lapsed_lease_is_sent_again_and_queued(running: tuple[JobStore, str]) -> None:
    store, job_id = running
    _lapse(store, job_id)
    assert store.lapsed(time.time()) == [job_id]
    sent = Sent()
    assert reap(store, sent, max_deliveries=3, hard_limits=HARD) == [job_id]
    record = store.get(job_id)
    assert record is not None and record.status == "queued" and record.lease_until is None
    assert sent.messages == [(job_id, "patching", "q")]
    assert store.queue_position(record) == 0 and store.lapsed(time.time()) == []
    assert [e.status for e in store.events(job_id, -1)] == ["queued", "running", "queued"]
    again = store.update(job_id, start(3, LEASE_S, HARD_S))  # the message sent again
    assert again is not None and again.status == "running" and again.deliveries == 2
    assert again.note is not None and "requeued" in again.note and again.note.startswith("delivery 2 of at most 3")


def test_a_refusing_broker_loses_nothing(running: tuple[JobStore, str]) -> None:
    store, job_id = running
    _lapse(store, job_id)
    with pytest.raises(ConnectionError):
        reap(store, Sent(down=True), max_deliveries=3, hard_limits=HARD)
    record = store.get(job_id)
    assert record is not None and record.status == "running" and store.lapsed(time.time()) == [job_id]
    assert reap(store, Sent(), max_deliveries=3, hard_limits=HARD) == [job_id]  # the next pass


def test_out_of_deliveries_fails_as_worker_lost_without_sending(running: tuple[JobStore, str]) -> None:
    store, job_id = running
    _lapse(store, job_id)
    sent = Sent()
    assert reap(store, sent, max_deliveries=1, hard_limits=HARD) == [job_id]
    record = store.get(job_id)
    assert record is not None and record.status == "failed" and record.error is not None
    assert record.error.code == "worker_lost" and sent.messages == []


def test_a_renewal_wins_over_a_lapse(running: tuple[JobStore, str]) -> None:
    store, job_id = running
    _lapse(store, job_id)
    store.update(job_id, renew(LEASE_S, delivery=1))
    assert reap(store, Sent(), max_deliveries=3, hard_limits=HARD) == []
    record = store.get(job_id)
    assert record is not None and record.status == "running"
