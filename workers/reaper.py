"""Jobs whose worker is gone: found by their lapsed lease, sent again, or failed once out of deliveries.

A worker renews the lease of the job it runs every third of ``INTERP_LEASE_S``; when the worker dies (a pool child
or its whole process group, an OOM kill, a lost node) the lease lapses. With the Redis broker nothing else would
tell: the unacknowledged message comes back only after the visibility timeout (an hour). The reaper sends the job
again first and moves the record back to ``queued`` after, so a broker outage leaves the record as it was for the
next pass; a second message for a job some worker has taken meanwhile is dropped by that worker's lease check.
Torch-free: the API runs it (``service/reaper.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from workers.lifecycle import past_hard_limit, requeue
from workers.records import JobStore

__all__ = ["reap"]

log = logging.getLogger(__name__)

Submit = Callable[[str, str, str], None]
"""``submit(job_id, kind, queue)``: send the job's message (``service.queue.JobQueue.submit``)."""


def reap(
    store: JobStore, submit: Submit, *, max_deliveries: int, hard_limits: Mapping[str, float], now: float | None = None
) -> list[str]:
    """Requeue every running job whose lease lapsed before ``now`` (fail it as ``worker_lost`` when it has had
    ``max_deliveries``, as ``time_limit`` past its kind's hard limit); returns the ids it moved. A store or broker
    error propagates: the next pass retries."""
    now = time.time() if now is None else now
    moved = []
    for job_id in store.lapsed(now):
        record = store.get(job_id)
        if record is None or record.status != "running" or record.lease_until is None or record.lease_until >= now:
            continue
        hard_limit = hard_limits[record.kind]
        if record.deliveries < max_deliveries and not past_hard_limit(record, hard_limit, now):
            submit(record.id, record.kind, record.queue)
        after = store.update(job_id, requeue(now, max_deliveries, hard_limit))
        if after is not None and after.status != "running":
            moved.append(job_id)
            log.warning("job %s: its worker stopped renewing the lease; %s", job_id,
                        "requeued" if after.status == "queued" else after.status,
                        extra={"job_id": job_id, "kind": record.kind, "model": record.model,
                               "delivery": record.deliveries})
    return moved
