"""``/v1/jobs``: submit, read, list, cancel, stream a job's events and fetch its files. Thin: records, queue and
checks do the work."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.concurrency import sync_to_thread
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from service.auth import Principal
from service.deps import Services
from service.errors import ApiError, ArtifactNotFoundError, JobNotFoundError
from service.job_body import JobSubmission, decode_submission, is_submission
from service.limits import ACTIVE_RETRY_AFTER_S, TooManyActiveJobsError
from service.metrics import JOBS_SUBMITTED
from service.preflight import preflight
from service.schemas import (
    ARTIFACT_RESPONSES,
    CANCEL_RESPONSES,
    ERROR_RESPONSES,
    EVENTS_RESPONSES,
    LOCATION,
    SUBMIT_RESPONSES,
    JobOut,
    JobPage,
    job_out,
)
from workers.core.checks import quote
from workers.kinds import JobSpec
from workers.kinds.artifacts import ARTIFACT_MEDIA_TYPE
from workers.lifecycle import cancel, fail
from workers.records import TERMINAL, JobError, JobRecord, new_job_id

__all__ = ["JobController"]

log = logging.getLogger(__name__)

_UNQUEUED = JobError(code="unavailable", message="the broker was unreachable; resubmit", retryable=True)

Wait = Annotated[
    float | None, Parameter(query="wait", ge=0, le=600, description="long-poll: seconds to wait for the job to end")
]
ArtifactName = Annotated[
    str, Parameter(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="as the result's `artifact.name` says")
]
IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", required=False, min_length=1, max_length=200,
              description="a retried submission with the same key returns the first job"),
]


def _out(services: Services, record: JobRecord) -> JobOut:
    return job_out(record, services.store.queue_position(record))


async def _wait(services: Services, record: JobRecord, seconds: float | None) -> JobRecord:
    """Until the job ends or ``seconds`` (capped by config) pass, holding no thread; returns the latest record."""
    if not seconds or record.terminal:
        return record
    deadline = time.monotonic() + min(seconds, services.settings.max_wait_s)
    seen = -1
    while (remaining := deadline - time.monotonic()) > 0 and not services.events.draining:
        events = await services.events.wait(record.id, seen, remaining)
        if events:
            seen = events[-1].seq
            if events[-1].status in TERMINAL:
                break
    return await sync_to_thread(services.store.get, record.id) or record


def _no_job(job_id: str) -> JobNotFoundError:
    """The one answer for a job that does not exist, has expired or is another tenant's: nothing tells them apart."""
    return JobNotFoundError(f"no job {quote(job_id)} (jobs expire after their TTL)", field="job_id")


def _owned(services: Services, job_id: str, tenant: str) -> JobRecord:
    record = services.store.get(job_id)
    if record is None or record.owner != tenant:
        raise _no_job(job_id)
    return record


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post(
        "/",
        operation_id="submit_job",
        responses=SUBMIT_RESPONSES,
        status_code=202,
        response_headers=[LOCATION],
        type_decoders=[(is_submission, decode_submission)],
        summary="Submit a job",
        response_description="the job, queued or running; 200 instead when it ended within `wait` seconds",
    )
    async def submit(
        self, data: JobSubmission, services: Services, principal: Principal, request_id: str, wait: Wait = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[JobOut]:
        """Checked, recorded and queued in a thread (the clients are synchronous), then waited for in none."""
        record = await sync_to_thread(self._accept, data.spec, services, principal.tenant, idempotency_key, request_id)
        record = await _wait(services, record, wait)
        status = 200 if record.terminal else 202
        out = await sync_to_thread(_out, services, record)
        return Response(out, status_code=status, headers={"Location": f"/v1/jobs/{record.id}"})

    def _accept(
        self, spec: JobSpec, services: Services, tenant: str, idempotency_key: str | None,
        request_id: str | None = None,
    ) -> JobRecord:
        settings = services.settings
        checked = preflight(services.catalog, spec, memory_limit=settings.workers.job_memory_bytes,
                            webhooks=settings.workers.webhook_policy)
        queue = settings.workers.queue_for(spec.model)
        record = JobRecord(
            id=new_job_id(),
            kind=spec.kind,
            model=spec.model,
            owner=tenant,
            queue=queue,
            created_at=time.time(),
            checked=checked,
            request_id=request_id,
            spec=spec.model_dump(mode="json"),
        )
        submitted = record
        if not services.active_jobs.reserve(tenant, record.id):
            raise TooManyActiveJobsError(
                f"tenant {tenant!r} has {services.active_jobs.limit} queued or running jobs, its limit; "
                "retry once one has ended", retry_after=ACTIVE_RETRY_AFTER_S,
            )
        record, created = services.store.create(record, idempotency_key=idempotency_key)
        if not created:  # the key named an earlier job: it holds its own place
            services.active_jobs.release(tenant, submitted.id)
        if not created and record.spec != submitted.spec:
            raise ApiError(
                f"Idempotency-Key {quote(idempotency_key)} was used for job {record.id} with a different body",
                field="Idempotency-Key",
                code="idempotency_key_reused",
            )
        if created:
            try:
                services.queue.submit(record.id, record.kind, queue)
            except Exception:
                # Nothing was queued: the record says why, and a retry with the same key makes a new job.
                services.store.update(record.id, fail(_UNQUEUED))
                services.active_jobs.release(tenant, record.id)
                if idempotency_key is not None:
                    services.store.release_idempotency_key(record.owner, idempotency_key, record.id)
                raise
            JOBS_SUBMITTED.labels(kind=record.kind, model=record.model).inc()
            log.info("job submitted", extra={"job_id": record.id, "kind": record.kind, "model": record.model,
                                             "queue": queue, "checked": checked})
        return record

    @get(
        "/",
        operation_id="list_jobs",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="The caller's jobs, newest first",
    )
    def list_jobs(
        self,
        services: Services,
        principal: Principal,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> JobPage:
        records, total = services.store.page(principal.tenant, offset=offset, limit=limit)
        return JobPage(items=[_out(services, r) for r in records], total=total, offset=offset, limit=limit)

    @get(
        "/{job_id:str}",
        operation_id="get_job",
        responses=ERROR_RESPONSES,
        summary="A job: status, progress, result or error",
    )
    async def get_job(self, job_id: str, services: Services, principal: Principal, wait: Wait = None) -> JobOut:
        record = await _wait(services, await sync_to_thread(_owned, services, job_id, principal.tenant), wait)
        return await sync_to_thread(_out, services, record)

    @delete(
        "/{job_id:str}",
        operation_id="cancel_job",
        responses=CANCEL_RESPONSES,
        status_code=202,
        sync_to_thread=True,
        summary="Cancel a queued or running job",
        response_description="cancellation requested: the running job stops at its next check",
    )
    def cancel(self, job_id: str, services: Services, principal: Principal) -> Response[JobOut]:
        _owned(services, job_id, principal.tenant)
        record = services.store.update(job_id, cancel)
        if record is None:
            raise _no_job(job_id)
        return Response(_out(services, record), status_code=200 if record.terminal else 202)

    @get(
        "/{job_id:str}/events",
        operation_id="stream_job_events",
        responses=EVENTS_RESPONSES,
        summary="Server-sent events: every status/progress change",
    )
    async def events(self, job_id: str, services: Services, principal: Principal) -> ServerSentEvent:
        await sync_to_thread(_owned, services, job_id, principal.tenant)
        heartbeat = services.settings.sse_heartbeat_s

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            seen = -1
            while True:
                events = await services.events.wait(job_id, seen, heartbeat)
                if not events and services.events.draining:
                    yield ServerSentEventMessage(comment="the server is stopping: reconnect to go on")
                    return
                if not events:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                for event in events:
                    seen = event.seq
                    yield ServerSentEventMessage(
                        data=json.dumps(event.model_dump(mode="json")), event=event.status, id=str(event.seq)
                    )
                if events[-1].status in TERMINAL:
                    return

        return ServerSentEvent(stream())

    @get(
        "/{job_id:str}/artifacts/{name:str}",
        operation_id="get_job_artifact",
        responses=ARTIFACT_RESPONSES,
        media_type=ARTIFACT_MEDIA_TYPE,
        sync_to_thread=True,
        summary="A file the job's result links to (safetensors), until it expires",
    )
    def artifact(self, job_id: str, name: ArtifactName, services: Services, principal: Principal) -> Response[bytes]:
        _owned(services, job_id, principal.tenant)
        data = services.store.get_artifact(job_id, name)
        if data is None:
            link = "the result's `artifact` says its name and when it expires"
            raise ArtifactNotFoundError(f"job {job_id!r} has no file {name!r} (now): {link}", field="name")
        return Response(data, media_type=ARTIFACT_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
