"""Every error becomes one JSON envelope, ``{"error": {"code", "message", "field"}}``, decided here once.

Errors carry a stable ``code`` and the ``field`` at fault; :data:`STATUS_BY_CODE` is the one table from codes to
HTTP statuses. Sources: :class:`CoreError` (and the service's own :class:`ApiError`); pydantic's and Litestar's
validation errors (400, ``field`` from the error's location); Redis or broker outages (503); server-side faults
(model loading, a bad registry or SAE file: ``CoreError.public_message``), which are logged in full and reach the
client as their code with a generic message; anything else is a 500 ``internal_error``, the traceback going to
the log only.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import pydantic
import redis
from kombu.exceptions import OperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from workers.core.checks import quote
from workers.core.errors import CoreError, InvalidRequestError
from workers.kinds import KINDS

__all__ = [
    "STATUS_BY_CODE",
    "ApiError",
    "ArtifactNotFoundError",
    "JobNotFoundError",
    "JobTooLargeError",
    "ModelNotReadyError",
    "UnsupportedMediaTypeError",
    "bounded_field",
    "error_response",
    "exception_handlers",
    "invalid_request_from",
    "status_for",
]

log = logging.getLogger(__name__)

STATUS_BY_CODE: dict[str, int] = {
    "unauthorized": 401,
    "forbidden": 403,
    "unknown_model": 404,
    "unknown_sae": 404,
    "unknown_job": 404,
    "unknown_artifact": 404,
    "unknown_key": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "cancelled": 409,
    "body_too_large": 413,
    "prompt_too_long": 413,
    "unsupported_media_type": 415,
    "job_too_large": 422,
    "result_too_large": 422,
    "idempotency_key_reused": 422,
    "too_many_patches": 422,
    "too_many_requests": 429,
    "rate_limited": 429,
    "too_many_active_jobs": 429,
    "internal_error": 500,
    "model_load_failed": 500,
    "invalid_registry": 500,
    "invalid_sae": 500,
    "unavailable": 503,
    "model_not_ready": 503,
}
"""HTTP status of every error code that is not a plain 400 (a request the client can fix)."""

_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}
"""Codes of Litestar's own HTTP errors (routing, body size, media type)."""


MAX_MESSAGE_CHARS = 1000
MAX_FIELD_CHARS = 128
"""Bounds of every answer's ``message`` and ``field``: a message quotes at most a short part of the input (see
:func:`workers.core.checks.quote`), and these cut whatever still would not (a key or an id of any length)."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_field(field: str | None) -> str | None:
    """``field`` cut to :data:`MAX_FIELD_CHARS` (it can be a key of the client's own, of any length)."""
    return None if field is None else _cut(field, MAX_FIELD_CHARS)


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, 400)


class ApiError(CoreError):
    """An error raised by the HTTP layer itself; ``headers`` go out with its answer (``Retry-After``, …)."""

    code = "bad_request"
    headers: dict[str, str] | None = None


class JobNotFoundError(ApiError):
    code = "unknown_job"


class ArtifactNotFoundError(ApiError):
    code = "unknown_artifact"


class ModelNotReadyError(ApiError):
    """No worker has described the model yet (its card is missing): retry once a worker has started."""

    code = "model_not_ready"


class JobTooLargeError(ApiError):
    code = "job_too_large"


class UnsupportedMediaTypeError(ApiError):
    code = "unsupported_media_type"


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    error = {"code": code, "message": _cut(message, MAX_MESSAGE_CHARS), "field": bounded_field(field)}
    return Response({"error": error}, status_code=status, headers=headers)


def _field_of(loc: tuple[int | str, ...]) -> str | None:
    """``("patching", "targets", 0)`` → ``targets.0``: a discriminated union puts the job kind first."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in KINDS:
        parts = parts[1:]
    # A union field's errors end in the member's tag ("constrained-int", "literal['auto']"): the field is before it.
    named = parts[: next((i for i, p in enumerate(parts) if not _is_key(p)), len(parts))]
    # A union of models names the member between the field and its own ("target.TokenTarget.token"): wire names
    # are snake_case, so a capitalised part is a member's class name, not a field.
    return ".".join(p for p in named if not p[0].isupper()) or None


def _is_key(part: str) -> bool:
    return part.isidentifier() or part.isdigit()


def invalid_request_from(exc: pydantic.ValidationError) -> InvalidRequestError:
    """The first problem of a pydantic validation error, as a 400 naming its field (``kind`` for the kind)."""
    error = exc.errors(include_url=False, include_input=False)[0]
    field = bounded_field(_field_of(tuple(error["loc"])))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field, message = "kind", f"kind must be one of {', '.join(KINDS)}"
    elif error["type"] == "model_attributes_type":
        message = "the body must be a JSON object"
    return InvalidRequestError(message + (f" (field {field})" if field else ""), field=field)


def _core_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    error = cast(CoreError, exc)  # registered for CoreError only
    if error.server_fault:
        log.error("%s: %s", error.code, error.message)
    body = error.to_dict()
    headers = error.headers if isinstance(error, ApiError) else None
    return error_response(status_for(error.code), error.code, body["message"] or "", error.field, headers)


def _validation_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Litestar's own validation (query and path parameters, headers): ``extra[0]`` names the key."""
    extra = getattr(exc, "extra", None)
    field: str | None = None
    message = str(getattr(exc, "detail", "invalid request"))
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        key = extra[0].get("key")
        field = str(key) if key not in (None, "") else None
        message = str(extra[0].get("message", message)).removeprefix("Value error, ")
        message += f" (field {field})" if field else ""
    return error_response(400, "invalid_request", message[:500], field)


def _http_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    error = cast(HTTPException, exc)  # registered for HTTPException only
    status = error.status_code
    if status >= 500:
        log.error("HTTP %s: %s", status, error.detail)
        return error_response(status, "internal_error", "internal server error")
    return error_response(status, _CODE_BY_STATUS.get(status, "bad_request"), quote(str(error.detail))[1:-1])


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("backend unavailable: %s", exc)
    return error_response(503, "unavailable", "the job store or broker (Redis) is unreachable; retry later")


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


exception_handlers: dict[type[Exception] | int, Any] = {
    CoreError: _core_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    redis.ConnectionError: _unavailable,
    redis.TimeoutError: _unavailable,
    OperationalError: _unavailable,
    Exception: _internal,
}
