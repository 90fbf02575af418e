"""Celery tasks: one per job kind, all declared through :func:`job_task`, plus the webhook sender.

``job_task`` fixes the task name (``interp.<kind>``), late acks with redelivery when the worker process dies,
the kind's soft and hard time limits, JSON arguments ``(job_id, spec)``, and the record lifecycle: mark running
(skipping a job cancelled or already finished), report progress, poll cancellation between chunks, store the
result, or store ``{code, message, field}`` on failure — never a traceback. Nothing is rebuilt across the queue
but JSON.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from workers.cached_reader import CacheContext, cached_reader
from workers.celery_app import task_name
from workers.core.errors import CoreError, JobCancelledError
from workers.kinds import KINDS, job_spec_adapter
from workers.kinds.artifacts import ArtifactLink, artifact_url
from workers.kinds.context import JobContext
from workers.lifecycle import fail, finish, renew, start, time_limit_error
from workers.log_context import log_context
from workers.metrics import JOB_DURATION, JOB_ERRORS, JOB_QUEUE_WAIT, JOBS_FINISHED, sample_gpu_memory
from workers.records import JobError, JobRecord, WebhookDelivery, WebhookStatus
from workers.runtime import WorkerRuntime
from workers.settings import WorkerSettings
from workers.webhook_delivery import DeliveryOutcome, post_webhook
from workers.webhooks import CallbackUnresolvedError, InvalidCallbackUrlError, resolve_callback

__all__ = ["DeliveryRetryError", "RuntimeHolder", "deliver_webhook", "job_task", "register_tasks"]

log = logging.getLogger(__name__)

_PROGRESS_INTERVAL_S = 0.1
_CANCEL_POLL_S = 0.2


class RuntimeHolder:
    """Builds the :class:`WorkerRuntime` on first use in each process (a prefork child builds its own)."""

    def __init__(self, factory: Callable[[], WorkerRuntime]) -> None:
        self._factory = factory
        self._runtime: WorkerRuntime | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def get(self) -> WorkerRuntime:
        with self._lock:
            if self._runtime is None or self._pid != os.getpid():
                self._runtime = self._factory()
                self._pid = os.getpid()
            return self._runtime


class _Reporter:
    """Throttled progress writes and cancellation polls for one running job."""

    def __init__(self, runtime: WorkerRuntime, job_id: str, soft_limit_s: float) -> None:
        self._runtime = runtime
        self._job_id = job_id
        self._soft_limit_s = soft_limit_s
        self._deadline = time.monotonic() + soft_limit_s
        self.timed_out = False
        self._last_write = time.monotonic()  # the first write waits one interval: fast jobs write none
        self._last_poll = 0.0
        self._cancelled = False
        self.progress_value = 0.0

    def begin(self) -> None:
        """Start the soft time limit's clock: when the job's turn comes, not while it waits for it."""
        self._deadline = time.monotonic() + self._soft_limit_s

    def progress(self, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        now = time.monotonic()
        # 1.0 is written with the result; other values at most every _PROGRESS_INTERVAL_S.
        if fraction <= self.progress_value or fraction >= 1.0 or now - self._last_write < _PROGRESS_INTERVAL_S:
            return
        self.progress_value, self._last_write = fraction, now

        def mutate(record: JobRecord) -> JobRecord | None:
            if record.status != "running" or fraction <= record.progress:
                return None
            record.progress = round(fraction, 4)
            return record

        self._runtime.store.update(self._job_id, mutate)

    def should_cancel(self) -> bool:
        """True once the job is cancelled, or past its soft time limit (checked here too, so every pool honours it)."""
        now = time.monotonic()
        if now > self._deadline:
            self.timed_out = True
            return True
        if not self._cancelled and now - self._last_poll >= _CANCEL_POLL_S:
            self._last_poll = now
            record = self._runtime.store.get(self._job_id)
            self._cancelled = record is None or record.cancel_requested
        return self._cancelled


class _LeaseKeeper:
    """Renews a running job's lease every third of ``lease_s`` from a thread of its own, so a long forward (which
    polls nothing) keeps it; a failed renewal (the store away) is tried again at the next beat."""

    def __init__(self, runtime: WorkerRuntime, job_id: str, delivery: int) -> None:
        self._runtime, self._job_id, self._delivery = runtime, job_id, delivery
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        lease_s = self._runtime.settings.lease_s
        while not self._stop.wait(lease_s / 3):
            try:
                self._runtime.store.update(self._job_id, renew(lease_s, self._delivery))
            except Exception:  # an outage: the next beat tries again, the reaper covers the rest
                log.warning("could not renew the lease of job %s", self._job_id, exc_info=True)


def execute_job(runtime: WorkerRuntime, kind: str, job_id: str, *, redelivered: bool = False) -> JobRecord | None:
    """Run one job through its record's lifecycle; the record is the only output.

    ``redelivered``: the broker says this message's earlier consumer is gone, so a live lease on the job is a dead
    worker's. Every kind's metrics and log context are set here, once: queue wait on the first start, then
    duration, final status and error code of each job this worker ends; every log line of the execution carries
    ``job_id``, ``request_id``, ``kind`` and ``model``.
    """
    settings = runtime.settings
    begin = start(settings.max_deliveries, settings.lease_s, settings.time_limits[kind].hard, redelivered=redelivered)
    moved = False

    def take(record: JobRecord) -> JobRecord | None:
        nonlocal moved
        changed = begin(record)
        moved = changed is not None
        return changed

    record = runtime.store.update(job_id, take)
    if record is None:
        return None
    with log_context(job_id=job_id, request_id=record.request_id, kind=kind, model=record.model):
        if not moved:  # ended already, or a live worker holds it (this message is a duplicate): nothing to do
            log.info("job not taken", extra={"status": record.status, "delivery": record.deliveries})
            return record
        if record.status != "running":  # ended as it was taken: cancelled before it started, or failed
            _finished(kind, record, None)
            return record
        waited = max((record.started_at or record.created_at) - record.created_at, 0.0)
        if record.deliveries == 1:  # a redelivery's wait says how long the dead worker held it, not the queue
            JOB_QUEUE_WAIT.labels(kind=kind, model=record.model).observe(waited)
        log.info("job started", extra={"queue_wait_s": round(waited, 4), "delivery": record.deliveries,
                                       "redelivered": redelivered})
        started = time.perf_counter()
        with _LeaseKeeper(runtime, job_id, record.deliveries):
            final = _run(runtime, kind, record)
        if final is not None and final.terminal:
            _finished(kind, final, time.perf_counter() - started)
        sample_gpu_memory()  # a prefork child cannot answer a scrape: what it holds after each job
        return final


def _finished(kind: str, record: JobRecord, seconds: float | None) -> None:
    labels = {"kind": kind, "model": record.model}
    JOBS_FINISHED.labels(status=record.status, **labels).inc()
    if seconds is not None:
        JOB_DURATION.labels(**labels).observe(seconds)
    code = record.error.code if record.error is not None else None
    if record.status == "failed" and code is not None:
        JOB_ERRORS.labels(code=code, **labels).inc()
    level = logging.WARNING if record.status == "failed" else logging.INFO
    log.log(level, "job finished", extra={"status": record.status, "code": code,
                                          "seconds": None if seconds is None else round(seconds, 4)})


def _save_artifact(runtime: WorkerRuntime, job_id: str, name: str, data: bytes) -> ArtifactLink:
    ttl_s = runtime.settings.artifact_ttl_s
    runtime.store.put_artifact(job_id, name, data, ttl_s)
    return ArtifactLink(name=name, url=artifact_url(job_id, name), bytes=len(data), expires_at=time.time() + ttl_s)


def _run(runtime: WorkerRuntime, kind: str, record: JobRecord) -> JobRecord | None:
    """The running job's work, and the record it ends with."""
    store, job_id = runtime.store, record.id
    limit = runtime.settings.time_limits[kind].soft
    reporter = _Reporter(runtime, job_id, limit)
    started = time.perf_counter()
    context: CacheContext | None = None
    try:
        spec = job_spec_adapter.validate_python(record.spec)
        hooked = runtime.model(spec.model)
        entry = runtime.registry.get(spec.model)
        spec.check_entry(entry)
        spec.check(runtime.view(spec.model))  # the API's submission checks, again, on the loaded model
        context = CacheContext(entry.id, entry.weights_revision, entry.dtype)
        forwards = runtime.shared_forwards(hooked)
        batch_sizes: list[int] = []
        ctx = JobContext(
            model=hooked,
            entry=entry,
            reader=cached_reader(runtime.cache, context, forwards.reader(batch_sizes)),
            progress=reporter.progress,
            should_cancel=reporter.should_cancel,
            load_sae=lambda sae_id: runtime.sae(hooked, sae_id),
            save_artifact=partial(_save_artifact, runtime, job_id),
            gradient=forwards.gradient(batch_sizes),
        )
        with forwards.member() if spec.shares_forwards else runtime.exclusive:
            reporter.begin()
            core_started = time.perf_counter()
            result = KINDS[kind].run(ctx, spec).model_dump(mode="json")
            finished = time.perf_counter()
        stats = {
            **context.stats.as_dict(),
            "shared_forward_jobs": max(batch_sizes, default=0),
            "core_seconds": finished - core_started,
            "compute_seconds": finished - started,
        }
        return store.update(job_id, finish("succeeded", result=result, stats=stats))
    except JobCancelledError:
        if reporter.timed_out:
            return store.update(job_id, fail(time_limit_error(kind, limit)))
        return store.update(job_id, finish("cancelled"))
    except CoreError as exc:
        if exc.server_fault:
            log.error("job %s (%s) failed: %s: %s", job_id, kind, exc.code, exc.message)
        return store.update(job_id, fail(JobError(**exc.to_dict())))
    except SoftTimeLimitExceeded:
        return store.update(job_id, fail(time_limit_error(kind, limit)))
    except MemoryError:
        error = JobError(code="out_of_memory", message="the worker ran out of memory; retry later", retryable=True)
        return store.update(job_id, fail(error))
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError / torch.OutOfMemoryError
            error = JobError(code="out_of_memory", message="the device ran out of memory; retry later", retryable=True)
            return store.update(job_id, fail(error))
        log.exception("job %s (%s) failed", job_id, kind)
        error = JobError(code="internal_error", message="the job failed on the worker; the error was logged")
        return store.update(job_id, fail(error))


def job_task(app: Celery, settings: WorkerSettings, kind: str) -> Callable[[Callable[..., Any]], Task]:
    """Declare the Celery task of ``kind``: stable name, late acks, time limits from config."""
    limits = settings.time_limits[kind]
    return app.task(  # type: ignore[no-any-return]
        name=task_name(kind),
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=limits.soft,
        time_limit=limits.hard,
        serializer="json",
        ignore_result=True,
        max_retries=0,
    )


class DeliveryRetryError(Exception):
    """An attempt a later one may get through (a 5xx answer, a network error): Celery retries the task."""


_NOT_SENT = {"spec", "cancel_requested", "deliveries", "queue", "webhook"}
"""Record fields a receiver never gets: the request (it has it), the worker's bookkeeping, the delivery itself."""


def _record_delivery(
    runtime: WorkerRuntime, job_id: str, status: WebhookStatus, outcome: DeliveryOutcome
) -> WebhookDelivery | None:
    """Count the attempt and store how it went, atomically with any other write to the record."""

    def mutate(record: JobRecord) -> JobRecord:
        attempts = (record.webhook.attempts if record.webhook is not None else 0) + 1
        record.webhook = WebhookDelivery(attempts=attempts, status=status, last_status_code=outcome.status_code,
                                         last_error=outcome.error)
        return record

    record = runtime.store.update(job_id, mutate)
    return None if record is None else record.webhook


def deliver_webhook(runtime: WorkerRuntime, job_id: str, *, last_attempt: bool) -> WebhookDelivery | None:
    """One attempt to POST a finished job to its ``callback_url``, recorded on the job; ``None`` without one.

    The URL is checked again here, on a fresh lookup whose addresses the POST then connects to (a name re-pointed
    at a private address since submission is refused now). The ``webhook-id`` is the job id on every attempt, so
    a receiver can drop a retry it already handled.
    """
    record = runtime.store.get(job_id)
    if record is None or not record.spec.get("callback_url"):
        return None
    settings = runtime.settings
    try:
        if settings.webhook_secret is None:
            raise InvalidCallbackUrlError("this worker sends no webhooks: INTERP_WEBHOOK_SECRET is not set")
        target = resolve_callback(str(record.spec["callback_url"]), settings.webhook_policy)
        body = json.dumps(record.model_dump(mode="json", exclude=_NOT_SENT), separators=(",", ":")).encode()
        outcome = post_webhook(target, body, msg_id=job_id, secret=settings.webhook_secret.get_secret_value(),
                               timeout_s=settings.webhook_timeout_s)
    except CallbackUnresolvedError as exc:  # DNS trouble now: the name may resolve again later
        outcome = DeliveryOutcome(delivered=False, retryable=True, error=exc.message)
    except InvalidCallbackUrlError as exc:
        return _record_delivery(runtime, job_id, "refused", DeliveryOutcome(delivered=False, error=exc.message))
    except Exception:
        log.exception("webhook for job %s failed on the worker", job_id)
        outcome = DeliveryOutcome(delivered=False, error="the delivery failed on the worker; the error was logged")
    status: WebhookStatus = "delivered" if outcome.delivered else "failed"
    if not outcome.delivered and outcome.retryable and not last_attempt:
        status = "pending"
    return _record_delivery(runtime, job_id, status, outcome)


def register_tasks(app: Celery, settings: WorkerSettings, holder: RuntimeHolder) -> None:
    """Register every kind's task and the webhook task on ``app``."""
    for kind in KINDS:

        def body(task: Task, job_id: str, _kind: str = kind) -> None:
            runtime = holder.get()
            redelivered = bool((task.request.delivery_info or {}).get("redelivered"))
            record = execute_job(runtime, _kind, job_id, redelivered=redelivered)
            if record is not None and record.terminal and record.spec.get("callback_url"):
                app.send_task(task_name("webhook"), args=[job_id], queue=settings.webhook_queue)

        job_task(app, settings, kind)(body)

    @app.task(  # type: ignore[untyped-decorator]
        name=task_name("webhook"), bind=True, acks_late=True, ignore_result=True, serializer="json",
        # Celery computes each retry's countdown: random in [0, backoff·2ⁿ] (full jitter), capped at backoff_max.
        autoretry_for=(DeliveryRetryError,), max_retries=settings.webhook_max_retries,
        retry_backoff=settings.webhook_backoff_s, retry_backoff_max=settings.webhook_backoff_max_s, retry_jitter=True,
    )
    def webhook(task: Task, job_id: str) -> None:
        """At most ``1 + INTERP_WEBHOOK_MAX_RETRIES`` attempts; only 5xx answers and network errors are retried."""
        last_attempt = task.request.retries >= settings.webhook_max_retries
        delivery = deliver_webhook(holder.get(), job_id, last_attempt=last_attempt)
        if delivery is None or delivery.status == "delivered":
            return
        if delivery.status == "pending":
            raise DeliveryRetryError(delivery.last_error)
        log.warning("webhook for job %s %s after %d attempts: %s", job_id, delivery.status, delivery.attempts,
                    delivery.last_error)
