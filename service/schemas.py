"""Response envelopes of the HTTP API (job specs and results are :mod:`workers.kinds`); the source of openapi.yaml."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from pydantic import BaseModel, Field, create_model

from workers.kinds import KINDS
from workers.kinds.artifacts import ARTIFACT_MEDIA_TYPE
from workers.kinds.base import Kind, ModelId, Prompt, WireModel
from workers.records import JobError, JobRecord, JobStatus, WebhookDelivery

__all__ = [
    "ARTIFACT_RESPONSES",
    "BODY_ERROR_RESPONSES",
    "CANCEL_RESPONSES",
    "ERROR_RESPONSES",
    "EVENTS_RESPONSES",
    "JOB_OUT_MODELS",
    "LOCATION",
    "READINESS_RESPONSES",
    "SUBMIT_RESPONSES",
    "ArtifactFile",
    "ErrorBody",
    "ErrorInfo",
    "JobEventStream",
    "JobOut",
    "JobOutBase",
    "JobPage",
    "ModelInfo",
    "ModelList",
    "ReadinessReport",
    "SaeInfo",
    "TokenizeRequest",
    "TokenizeResponse",
    "job_out",
]


class ErrorInfo(BaseModel):
    code: str = Field(description="stable snake_case code: unknown_model, prompt_too_long, invalid_request, …")
    message: str
    field: str | None = Field(default=None, description="the request field at fault, when there is one")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    error: ErrorInfo


ERROR_RESPONSES: dict[int, ResponseSpec] = {
    status: ResponseSpec(data_container=ErrorBody, description=text, generate_examples=False)
    for status, text in (
        (400, "malformed body, unknown field or out-of-range value; `field` names it"),
        (401, "no API key, or one that is malformed, unknown or revoked (`unauthorized`, with `WWW-Authenticate`)"),
        (404, "unknown model, SAE or job id, or a job file that has expired; the message lists what exists"),
        (413, "body over the size limit, or a prompt over the model's token limit"),
        (422, "a job whose estimated memory can never fit a worker (the message names the bytes), a patching job "
              "over the model's `max_patches` (`too_many_patches`), a result over its size bound "
              "(`result_too_large`), or an `Idempotency-Key` used before with a "
              "different body"),
        (429, "over the key's rate limit (`rate_limited`) or the tenant's limit of unfinished jobs "
              "(`too_many_active_jobs`): retry after `Retry-After` seconds"),
        (500, "a server fault (`internal_error`, `model_load_failed`, …); the details go to the server log only"),
        (503, "Redis or the broker is unreachable, or no worker has loaded the model yet"),
    )
}
"""Documents the error envelope on every route (Litestar's default 400 body is replaced by this one)."""

BODY_ERROR_RESPONSES: dict[int, ResponseSpec] = {
    **ERROR_RESPONSES,
    415: ResponseSpec(
        ErrorBody, generate_examples=False,
        description="the body is not `application/json` in UTF-8 (`unsupported_media_type`)",
    ),
}
"""Routes that read a JSON body: also the 415 of :mod:`service.json_body`."""


class ReadinessReport(BaseModel):
    """The answer of ``/readyz``, 200 and 503 alike: what each dependency said."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description='per dependency (store, broker): "ok", or why not')


READINESS_RESPONSES: dict[int, ResponseSpec] = {
    200: ResponseSpec(
        ReadinessReport, description="ready: the job store and the broker answer", generate_examples=False
    ),
    503: ResponseSpec(
        ReadinessReport, description="not ready: `checks` says which dependency did not answer", generate_examples=False
    ),
}
"""``/readyz`` answers the same body with either status (a Response[dict] Litestar cannot read)."""


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


class JobOutBase(BaseModel):
    """A job as the client sees it: lifecycle, progress, result or error. Each kind has its own typed result."""

    id: str
    model: str
    status: JobStatus
    queue_position: int | None = Field(default=None, description="jobs ahead of this one while queued")
    progress: float = Field(ge=0.0, le=1.0)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: JobError | None = None
    checked: bool = Field(
        default=True,
        description=(
            "whether the submission checks ran in the API; false when no worker had described the model yet, "
            "so the worker's own checks (same codes) decide"
        ),
    )
    stats: dict[str, float] = Field(default_factory=dict, description="cache hits/misses, forwards, compute seconds")
    request_id: str | None = Field(
        default=None, description="the submission's `X-Request-ID`: its log lines in the API and the worker carry it"
    )
    webhook: WebhookDelivery | None = Field(
        default=None, description="the `callback_url` delivery: null without one, or until its first attempt"
    )


def _job_out_model(kind: Kind[Any]) -> type[JobOutBase]:
    """``PatchingJob``: a job of one kind, ``kind`` fixed and ``result`` that kind's result model."""
    name = "".join(part.title() for part in kind.name.split("_")) + "Job"
    model: type[JobOutBase] = create_model(
        name,
        __base__=JobOutBase,
        __doc__=f"A `{kind.name}` job.",
        kind=(Literal[kind.name], ...),  # type: ignore[arg-type]
        result=(kind.result | None, Field(default=None, description="present once the job succeeded")),  # type: ignore[arg-type]
    )
    return model


JOB_OUT_MODELS: dict[str, type[JobOutBase]] = {name: _job_out_model(kind) for name, kind in KINDS.items()}

if TYPE_CHECKING:
    JobOut = JobOutBase
else:
    JobOut = Annotated[Union[tuple(JOB_OUT_MODELS.values())], Field(discriminator="kind")]  # noqa: UP007


def job_out(record: JobRecord, queue_position: int | None = None) -> JobOutBase:
    """The wire form of a stored record, its result read into its kind's model."""
    return JOB_OUT_MODELS[record.kind](
        id=record.id,
        kind=record.kind,
        model=record.model,
        status=record.status,
        queue_position=queue_position,
        progress=record.progress,
        created_at=datetime.fromtimestamp(record.created_at, tz=UTC),
        started_at=_time(record.started_at),
        finished_at=_time(record.finished_at),
        result=record.result,
        error=record.error,
        checked=record.checked,
        stats=record.stats,
        request_id=record.request_id,
        webhook=record.webhook,
    )


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    offset: int
    limit: int


LOCATION = ResponseHeader(
    name="Location", value="/v1/jobs/{job_id}", documentation_only=True,
    description="the job's URL: poll it, long-poll it with `?wait=S`, or stream its `/events`",
)
"""Sent with the job by ``POST /v1/jobs`` (the handler sets it; this documents it)."""

SUBMIT_RESPONSES: dict[int, ResponseSpec] = {
    **BODY_ERROR_RESPONSES,
    200: ResponseSpec(JobOut, description="the job ended within `wait` seconds", generate_examples=False),
}
CANCEL_RESPONSES: dict[int, ResponseSpec] = {
    **ERROR_RESPONSES,
    200: ResponseSpec(
        JobOut, description="the job is over: it had already ended, or was queued and is cancelled now",
        generate_examples=False,
    ),
}


class ArtifactFile:
    """The body of ``GET /v1/jobs/{job_id}/artifacts/{name}``: a marker for the document, which says binary."""


ARTIFACT_RESPONSES: dict[int, ResponseSpec] = {
    **ERROR_RESPONSES,
    200: ResponseSpec(
        ArtifactFile, media_type=ARTIFACT_MEDIA_TYPE, generate_examples=False,
        description="the file: safetensors (an 8-byte header length, a JSON header naming each tensor, the data)",
    ),
}


class JobEventStream:
    """The body of ``GET /v1/jobs/{job_id}/events``: a text/event-stream whose events carry :class:`JobEvent` JSON.

    Only a marker for the document (the handler streams ``ServerSentEvent``); :mod:`service.openapi_fixes`
    documents it and puts ``JobEvent`` among the components, so a generated client has the event's model.
    """


EVENTS_RESPONSES: dict[int, ResponseSpec] = {
    **ERROR_RESPONSES,
    200: ResponseSpec(
        JobEventStream, media_type="text/event-stream", generate_examples=False,
        description="every status or progress change of the job, as server-sent events, until it ends",
    ),
}


class SaeInfo(BaseModel):
    id: str
    hook: str


class ModelInfo(BaseModel):
    """A served model. ``ready`` is false until a worker has loaded it and published its facts."""

    id: str
    ready: bool
    max_tokens: int = Field(description="tokens per prompt, BOS included")
    max_patches: int = Field(description="patches per patching job (layers × positions × heads over its targets)")
    max_artifact_bytes: int = Field(
        description="bytes of the file a job may link to when its result is too large for JSON (0: none)"
    )
    dtype: str
    weights_revision: str
    saes: list[SaeInfo]
    family: str | None = None
    architecture: str | None = None
    n_layers: int | None = None
    d_model: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    d_head: int | None = None
    d_mlp: int | None = None
    d_vocab: int | None = None
    n_ctx: int | None = None
    hook_names: list[str] | None = None


class ModelList(BaseModel):
    items: list[ModelInfo]


class TokenizeRequest(WireModel):
    model: ModelId
    prompt: Prompt
    prepend_bos: bool = True


class TokenizeResponse(BaseModel):
    model: str
    token_ids: list[int]
    tokens: list[str] = Field(description="each id decoded on its own: axis labels")
    n_tokens: int
