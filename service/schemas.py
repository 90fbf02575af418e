"""Response envelopes of the HTTP API (requests are :mod:`workers.specs`); the single source of openapi.yaml."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar.openapi import ResponseSpec
from pydantic import BaseModel, ConfigDict, Field

from workers.records import JobError, JobRecord, JobStatus

__all__ = [
    "ERROR_RESPONSES",
    "ErrorBody",
    "ErrorInfo",
    "JobOut",
    "JobPage",
    "ModelInfo",
    "ModelList",
    "SaeInfo",
    "TokenizeRequest",
    "TokenizeResponse",
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
        (404, "unknown model, SAE or job id; the message lists what exists"),
        (413, "body over the size limit, or a prompt over the model's token limit"),
        (422, "a job whose estimated memory can never fit a worker; the message names the bytes"),
        (503, "Redis or the broker is unreachable, or no worker has loaded the model yet"),
    )
}
"""Documents the error envelope on every route (Litestar's default 400 body is replaced by this one)."""


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


class JobOut(BaseModel):
    """A job as the client sees it: lifecycle, progress, result or error."""

    id: str
    kind: str
    model: str
    status: JobStatus
    queue_position: int | None = Field(default=None, description="jobs ahead of this one while queued")
    progress: float = Field(ge=0.0, le=1.0)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: JobError | None = None
    stats: dict[str, float] = Field(default_factory=dict, description="cache hits/misses, forwards, compute seconds")

    @classmethod
    def from_record(cls, record: JobRecord, queue_position: int | None = None) -> JobOut:
        return cls(
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
            stats=record.stats,
        )


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    offset: int
    limit: int


class SaeInfo(BaseModel):
    id: str
    hook: str


class ModelInfo(BaseModel):
    """A served model. ``ready`` is false until a worker has loaded it and published its facts."""

    id: str
    ready: bool
    max_tokens: int
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


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=128)
    prompt: str = Field(min_length=1, max_length=20_000)
    prepend_bos: bool = True


class TokenizeResponse(BaseModel):
    model: str
    token_ids: list[int]
    tokens: list[str] = Field(description="each id decoded on its own: axis labels")
    n_tokens: int
