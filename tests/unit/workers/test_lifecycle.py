"""Job state changes: every allowed move, every refused one, and what each stamps on the record."""

from __future__ import annotations

import time
import uuid

import pytest

from workers.lifecycle import ALLOWED, cancel, fail, finish, renew, requeue, start, transition
from workers.records import TERMINAL, JobError, JobRecord, JobStatus

STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
LEASE_S, HARD_S = 6.0, 600.0


def _record(status: JobStatus = "queued") -> JobRecord:
    return JobRecord(id=uuid.uuid4().hex, kind="patching", model="m", owner="t", queue="q", created_at=time.time(),
                     status=status, spec={})


@pytest.mark.parametrize("before", STATUSES)
@pytest.mark.parametrize("after", STATUSES)
def test_only_allowed_moves_happen(before: JobStatus, after: JobStatus) -> None:
    moved = transition(_record(before), after)
    if after in ALLOWED[before]:
        assert moved is not None and moved.status == after
    else:
        assert moved is None


def test_terminal_states_never_change() -> None:
    assert all(not ALLOWED[status] for status in TERMINAL)


def test_running_then_succeeded_stamps_times_progress_and_result() -> None:
    record = start(3, LEASE_S, HARD_S)(_record())
    assert record is not None and record.status == "running" and record.deliveries == 1
    assert record.started_at is not None and record.progress == 0.0
    done = finish("succeeded", result={"x": 1}, stats={"forwards": 1.0})(record)
    assert done is not None and done.status == "succeeded" and done.progress == 1.0
    assert done.result == {"x": 1} and done.stats == {"forwards": 1.0}
    assert done.finished_at is not None and done.finished_at >= record.started_at


def test_start_counts_deliveries_and_gives_up_as_worker_lost() -> None:
    record = _record()
    for delivery in (1, 2):
        moved = start(2, LEASE_S, HARD_S, redelivered=delivery > 1)(record)
        assert moved is not None and moved.status == "running" and moved.deliveries == delivery
    assert moved.note == "delivery 2 of at most 2: the worker running it before was lost"
    lost = start(2, LEASE_S, HARD_S, redelivered=True)(record)
    assert lost is not None and lost.status == "failed"
    assert lost.error is not None and lost.error.code == "worker_lost" and lost.error.retryable


def test_start_honours_a_cancel_requested_meanwhile() -> None:
    record = _record("running")
    record.cancel_requested = True
    moved = start(3, LEASE_S, HARD_S)(record)
    assert moved is not None and moved.status == "cancelled"


def test_cancel_ends_a_queued_job_and_flags_a_running_one() -> None:
    queued = cancel(_record("queued"))
    assert queued is not None and queued.status == "cancelled" and queued.cancel_requested
    running = cancel(_record("running"))
    assert running is not None and running.status == "running" and running.cancel_requested
    assert cancel(_record("succeeded")) is None


def test_fail_records_the_error() -> None:
    error = JobError(code="time_limit", message="too slow")
    failed = fail(error)(_record("running"))
    assert failed is not None and failed.status == "failed" and failed.error == error
    assert fail(error)(_record("cancelled")) is None


def test_a_live_lease_keeps_a_duplicate_message_off_unless_the_broker_redelivers() -> None:
    record = start(3, LEASE_S, HARD_S)(_record())
    assert record is not None and record.lease_until is not None
    assert record.lease_until == pytest.approx(time.time() + LEASE_S, abs=1)
    assert start(3, LEASE_S, HARD_S)(record.model_copy(deep=True)) is None  # a second message: the holder lives
    taken = start(3, LEASE_S, HARD_S, redelivered=True)(record.model_copy(deep=True))  # its consumer is gone
    assert taken is not None and taken.deliveries == 2
    record.lease_until = time.time() - 1  # lapsed: anyone may take it
    again = start(3, LEASE_S, HARD_S)(record.model_copy(deep=True))
    assert again is not None and again.status == "running" and again.deliveries == 2


def test_renew_extends_only_the_same_delivery() -> None:
    record = start(3, LEASE_S, HARD_S)(_record())
    assert record is not None
    record.lease_until = time.time()
    renewed = renew(30.0, delivery=1)(record.model_copy(deep=True))
    assert renewed is not None and renewed.lease_until is not None and renewed.lease_until > time.time() + 25
    assert renew(30.0, delivery=2)(record.model_copy(deep=True)) is None  # a later delivery took it over
    done = finish("succeeded")(record.model_copy(deep=True))
    assert done is not None and done.lease_until is None
    assert renew(30.0, delivery=1)(done) is None


def test_requeue_a_lapsed_lease_back_to_queued_or_fail_it() -> None:
    record = start(2, LEASE_S, HARD_S)(_record())
    assert record is not None
    now = time.time()
    assert requeue(now, 2, HARD_S)(record.model_copy(deep=True)) is None  # the lease still runs
    record.lease_until = now - 1
    back = requeue(now, 2, HARD_S)(record.model_copy(deep=True))
    assert back is not None and back.status == "queued" and back.lease_until is None and back.progress == 0.0
    assert back.note is not None and "requeued" in back.note
    record.deliveries = 2
    lost = requeue(now, 2, HARD_S)(record.model_copy(deep=True))
    assert lost is not None and lost.status == "failed" and lost.error is not None
    assert lost.error.code == "worker_lost"


def test_a_job_killed_for_its_hard_limit_fails_as_time_limit() -> None:
    record = start(3, LEASE_S, HARD_S)(_record())
    assert record is not None and record.started_at is not None
    record.started_at -= HARD_S + 1
    redelivered = start(3, LEASE_S, HARD_S, redelivered=True)(record.model_copy(deep=True))
    assert redelivered is not None and redelivered.status == "failed" and redelivered.error is not None
    assert redelivered.error.code == "time_limit" and "600 s" in redelivered.error.message
    record.lease_until = time.time() - 1
    reaped = requeue(time.time(), 3, HARD_S)(record.model_copy(deep=True))
    assert reaped is not None and reaped.error is not None and reaped.error.code == "time_limit"
