"""``/v1/jobs``: submit, read, list, cancel, and stream a job's events. Thin: records, queue and checks do the work."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from service.deps import Services
from service.errors import ApiError, JobNotFoundError
from service.metrics import JOBS_SUBMITTED
from service.preflight import preflight
from service.schemas import ERROR_RESPONSES, JobOut, JobPage
from workers.records import JobError, JobRecord, new_job_id
from workers.specs import JobSubmission

__all__ = ["JobController"]

Wait = Annotated[
    float | None, Parameter(query="wait", ge=0, le=600, description="long-poll: seconds to wait for the job to end")
]
IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", required=False, min_length=1, max_length=200,
              description="a retried submission with the same key returns the first job"),
]


def _out(services: Services, record: JobRecord) -> JobOut:
    return JobOut.from_record(record, services.store.queue_position(record))


def _wait(services: Services, record: JobRecord, seconds: float | None) -> JobRecord:
    """Block until the job ends or ``seconds`` (capped by config) pass; returns the latest record."""
    if not seconds or record.terminal:
        return record
    deadline = time.monotonic() + min(seconds, services.settings.max_wait_s)
    seen = -1
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        events = services.store.wait_for_events(record.id, seen, remaining)
        if events:
            seen = events[-1].seq
            if events[-1].status in ("succeeded", "failed", "cancelled"):
                break
    return services.store.get(record.id) or record


def _owned(services: Services, job_id: str) -> JobRecord:
    record = services.store.get(job_id)
    if record is None or record.owner != services.settings.default_tenant:
        raise JobNotFoundError(f"no job {job_id!r} (jobs expire after their TTL)", field="job_id")
    return record


def _cancel(record: JobRecord) -> JobRecord | None:
    if record.terminal:
        return None
    record.cancel_requested = True
    if record.status == "queued":
        record.status, record.finished_at = "cancelled", time.time()
    return record


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post(
        "/",
        responses=ERROR_RESPONSES,
        status_code=202,
        sync_to_thread=True,
        summary="Submit a job",
        response_description="the job; 200 when it ended within `wait` seconds, else 202",
    )
    def submit(
        self, data: JobSubmission, services: Services, wait: Wait = None, idempotency_key: IdempotencyKey = None
    ) -> Response[JobOut]:
        spec = data.root
        settings = services.settings
        preflight(services.catalog, spec, memory_limit=settings.workers.job_memory_bytes)
        queue = settings.workers.queue_for(spec.model)
        record = JobRecord(
            id=new_job_id(),
            kind=spec.kind,
            model=spec.model,
            owner=settings.default_tenant,
            queue=queue,
            created_at=time.time(),
            spec=spec.model_dump(mode="json"),
        )
        submitted = record
        record, created = services.store.create(record, idempotency_key=idempotency_key)
        if not created and record.spec != submitted.spec:
            raise ApiError(
                f"Idempotency-Key {idempotency_key!r} was used for job {record.id} with a different body",
                field="Idempotency-Key",
                code="idempotency_key_reused",
            )
        if created:
            try:
                services.queue.submit(record.id, record.kind, queue)
            except Exception:
                services.store.update(record.id, _failed_to_queue)
                raise
            JOBS_SUBMITTED.labels(kind=record.kind, model=record.model).inc()
        record = _wait(services, record, wait)
        status = 200 if record.terminal else 202
        return Response(_out(services, record), status_code=status, headers={"Location": f"/v1/jobs/{record.id}"})

    @get(
        "/",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="The caller's jobs, newest first",
    )
    def list_jobs(
        self,
        services: Services,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> JobPage:
        records, total = services.store.page(services.settings.default_tenant, offset=offset, limit=limit)
        return JobPage(items=[_out(services, r) for r in records], total=total, offset=offset, limit=limit)

    @get(
        "/{job_id:str}",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="A job: status, progress, result or error",
    )
    def get_job(self, job_id: str, services: Services, wait: Wait = None) -> JobOut:
        return _out(services, _wait(services, _owned(services, job_id), wait))

    @delete(
        "/{job_id:str}",
        responses=ERROR_RESPONSES,
        status_code=202,
        sync_to_thread=True,
        summary="Cancel a queued or running job",
    )
    def cancel(self, job_id: str, services: Services) -> Response[JobOut]:
        _owned(services, job_id)
        record = services.store.update(job_id, _cancel)
        if record is None:
            raise JobNotFoundError(f"no job {job_id!r}", field="job_id")
        return Response(_out(services, record), status_code=200 if record.terminal else 202)

    @get(
        "/{job_id:str}/events",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="Server-sent events: every status/progress change",
    )
    def events(self, job_id: str, services: Services) -> ServerSentEvent:
        _owned(services, job_id)
        heartbeat = services.settings.sse_heartbeat_s

        def stream() -> Iterator[ServerSentEventMessage]:
            seen = -1
            while True:
                events = services.store.wait_for_events(job_id, seen, heartbeat)
                if not events:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                for event in events:
                    seen = event.seq
                    yield ServerSentEventMessage(
                        data=json.dumps(event.model_dump(mode="json")), event=event.status, id=str(event.seq)
                    )
                if events[-1].status in ("succeeded", "failed", "cancelled"):
                    return

        return ServerSentEvent(stream())


def _failed_to_queue(record: JobRecord) -> JobRecord:
    record.status, record.finished_at = "failed", time.time()
    record.error = JobError(code="unavailable", message="the broker was unreachable; resubmit", retryable=True)
    return record
