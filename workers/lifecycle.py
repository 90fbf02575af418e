"""Job state changes: one typed transition function, used by the API (cancel, queueing failure) and the workers.

``queued → running → succeeded | failed | cancelled``; ``queued → cancelled | failed``; ``running → running`` is a
redelivery (the broker says the worker that had it is gone); ``running → queued`` a requeue (its lease lapsed:
the worker stopped renewing it). A terminal job never changes again. Each change stamps its time. The mutators
here are what :meth:`JobStore.update <workers.records.JobStore.update>` applies atomically.

A running job's lease is how a dead worker is told from a slow one: the worker renews it every third of
``lease_s`` while the job runs, and nobody else takes the job while it lasts, unless the broker redelivers its
message (it does so only once the consumer holding it is gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workers.records import JobError, JobRecord, JobStatus

__all__ = [
    "ALLOWED",
    "cancel",
    "fail",
    "finish",
    "past_hard_limit",
    "renew",
    "requeue",
    "start",
    "time_limit_error",
    "transition",
]

ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    "queued": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"running", "queued", "succeeded", "failed", "cancelled"}),
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
    elif status == "queued":
        record.progress, record.lease_until = 0.0, None
    elif status in ("succeeded", "failed", "cancelled"):
        record.finished_at, record.lease_until = now, None
        record.result, record.error = result, error
        if status == "succeeded":
            record.progress = 1.0
        if stats:
            record.stats = stats
    return record


def _worker_lost(max_deliveries: int) -> JobError:
    return JobError(
        code="worker_lost",
        message=f"the worker died {max_deliveries} times running this job (out of memory?); retry later",
        retryable=True,
    )


def time_limit_error(kind: str, limit: float) -> JobError:
    return JobError(code="time_limit", message=f"the job ran past the {kind} time limit of {limit:g} s")


def past_hard_limit(record: JobRecord, hard_limit_s: float, now: float) -> bool:
    """A redelivered job whose last run started a hard limit ago: the worker was killed for its time."""
    return record.status == "running" and record.started_at is not None and now - record.started_at >= hard_limit_s


def start(max_deliveries: int, lease_s: float, hard_limit_s: float, *, redelivered: bool = False) -> Mutator:
    """A worker takes the job: running under a lease of ``lease_s``, unless cancelled meanwhile, delivered more
    often than allowed, killed for its hard time limit last time, or held by a live worker (a duplicate message:
    left alone, ``None``)."""

    def mutate(record: JobRecord) -> JobRecord | None:
        if record.terminal:
            return None
        if record.cancel_requested:
            return transition(record, "cancelled")
        now = time.time()
        held = record.status == "running" and record.lease_until is not None and record.lease_until > now
        if held and not redelivered:
            return None
        if past_hard_limit(record, hard_limit_s, now):
            return transition(record, "failed", error=time_limit_error(record.kind, hard_limit_s))
        record.deliveries += 1
        if record.deliveries > max_deliveries:
            return transition(record, "failed", error=_worker_lost(max_deliveries))
        if record.deliveries > 1:
            record.note = (f"delivery {record.deliveries} of at most {max_deliveries}: "
                           + (record.note or "the worker running it before was lost"))
        started = transition(record, "running")
        if started is not None:
            started.lease_until = now + lease_s
        return started

    return mutate


def renew(lease_s: float, delivery: int) -> Mutator:
    """The worker running delivery ``delivery`` extends its lease; a job that moved on is left alone."""

    def mutate(record: JobRecord) -> JobRecord | None:
        if record.status != "running" or record.deliveries != delivery:
            return None
        record.lease_until = time.time() + lease_s
        return record

    return mutate


def requeue(now: float, max_deliveries: int, hard_limit_s: float) -> Mutator:
    """The reaper found the lease lapsed at ``now``: back to queued (to be sent again), or failed as
    ``worker_lost`` when it has had its deliveries (``time_limit`` when it ran past its hard limit); ``None`` when
    the lease was renewed meanwhile."""

    def mutate(record: JobRecord) -> JobRecord | None:
        if record.status != "running" or record.lease_until is None or record.lease_until >= now:
            return None
        if past_hard_limit(record, hard_limit_s, now):
            return transition(record, "failed", error=time_limit_error(record.kind, hard_limit_s))
        if record.deliveries >= max_deliveries:
            return transition(record, "failed", error=_worker_lost(max_deliveries))
        record.note = "its worker stopped renewing its lease (killed or lost); requeued"
        return transition(record, "queued")

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
