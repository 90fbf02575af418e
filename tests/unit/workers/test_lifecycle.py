"""Job state changes: every allowed move, every refused one, and what each stamps on the record."""

from __future__ import annotations

import time
import uuid

import pytest

from workers.lifecycle import ALLOWED, cancel, fail, finish, start, transition
from workers.records import TERMINAL, JobError, JobRecord, JobStatus

STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "cancelled")


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
    record = start(max_deliveries=3)(_record())
    assert record is not None and record.status == "running" and record.deliveries == 1
    assert record.started_at is not None and record.progress == 0.0
    done = finish("succeeded", result={"x": 1}, stats={"forwards": 1.0})(record)
    assert done is not None and done.status == "succeeded" and done.progress == 1.0
    assert done.result == {"x": 1} and done.stats == {"forwards": 1.0}
    assert done.finished_at is not None and done.finished_at >= record.started_at


def test_start_counts_deliveries_and_gives_up_as_worker_lost() -> None:
    record = _record()
    for delivery in (1, 2):
        moved = start(max_deliveries=2)(record)
        assert moved is not None and moved.status == "running" and moved.deliveries == delivery
    lost = start(max_deliveries=2)(record)
    assert lost is not None and lost.status == "failed"
    assert lost.error is not None and lost.error.code == "worker_lost" and lost.error.retryable


def test_start_honours_a_cancel_requested_meanwhile() -> None:
    record = _record("running")
    record.cancel_requested = True
    moved = start(max_deliveries=3)(record)
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
