"""Job state changes: one typed transition function, used by the API (cancel, queueing failure) and the workers.

``queued → running → succeeded | failed | cancelled``; ``queued → cancelled | failed``; ``running → running`` is a
redelivery (the worker that had it died). A terminal job never changes again. Each change stamps its time. The
mutators here are what :meth:`JobStore.update <workers.records.JobStore.update>` applies atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workers.records import JobError, JobRecord, JobStatus

__all__ = ["ALLOWED", "cancel", "fail", "finish", "start", "transition"]

ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    "queued": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"running", "succeeded", "failed", "cancelled"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}

Mutator = Callable[[JobRecord], JobRecord | None]


def transition(
    record: JobRecord,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: JobError | None = None,
    stats: dict[str, float] | None = None,
) -> JobRecord | None:
    """``record`` moved to ``status`` (changed in place), or ``None`` when that move is not allowed."""
    if status not in ALLOWED[record.status]:
        return None
    now = time.time()
    record.status = status
    if status == "running":
        record.started_at, record.progress = now, 0.0
    elif status in ("succeeded", "failed", "cancelled"):
        record.finished_at = now
        record.result, record.error = result, error
        if status == "succeeded":
            record.progress = 1.0
        if stats:
            record.stats = stats
    return record


def start(max_deliveries: int) -> Mutator:
    """A worker takes the job: running, unless cancelled meanwhile or delivered more often than allowed."""

    def mutate(record: JobRecord) -> JobRecord | None:
        if record.terminal:
            return None
        if record.cancel_requested:
            return transition(record, "cancelled")
        record.deliveries += 1
        if record.deliveries > max_deliveries:
            return transition(record, "failed", error=JobError(
                code="worker_lost",
                message=f"the worker died {max_deliveries} times running this job (out of memory?); retry later",
                retryable=True,
            ))
        return transition(record, "running")

    return mutate


def finish(
    status: JobStatus, *, result: dict[str, Any] | None = None, stats: dict[str, float] | None = None
) -> Mutator:
    """The job ended (``succeeded`` with its result, or ``cancelled``)."""
    return lambda record: transition(record, status, result=result, stats=stats)


def fail(error: JobError) -> Mutator:
    return lambda record: transition(record, "failed", error=error)


def cancel(record: JobRecord) -> JobRecord | None:
    """The caller asks to cancel: a queued job ends at once, a running one when its worker next polls."""
    if record.terminal:
        return None
    record.cancel_requested = True
    if record.status == "queued":
        return transition(record, "cancelled")
    return record
