"""Every error becomes one JSON envelope, ``{"error": {"code", "message", "field"}}``, in one place.

Three sources, one mapper: :class:`CoreError` (and the service's own :class:`ApiError`) carry their code, field and
status; Litestar's validation errors become 400 with the field from ``extra[0]["key"]``; Redis or broker outages
become 503; anything else is a 500 ``internal_error`` with a generic message, the traceback going to the log only.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import redis
from kombu.exceptions import OperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from workers.core.errors import CoreError
from workers.settings import KIND_NAMES

__all__ = [
    "ApiError",
    "JobNotFoundError",
    "JobTooLargeError",
    "ModelNotReadyError",
    "error_response",
    "exception_handlers",
]

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(CoreError):
    """An error raised by the HTTP layer itself."""

    code = "bad_request"


class JobNotFoundError(ApiError):
    code = "unknown_job"
    status = 404


class ModelNotReadyError(ApiError):
    """No worker has described the model yet (its card is missing): retry once a worker has started."""

    code = "model_not_ready"
    status = 503


class JobTooLargeError(ApiError):
    code = "job_too_large"
    status = 422


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response[dict[str, Any]]:
    return Response({"error": {"code": code, "message": message, "field": field}}, status_code=status)


def _core_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    error = cast(CoreError, exc)  # registered for CoreError only
    return error_response(error.status, error.code, error.message, error.field)


def _validation_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    extra = getattr(exc, "extra", None)
    field: str | None = None
    message = getattr(exc, "detail", "invalid request")
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        key = extra[0].get("key")
        field = _strip_kind(str(key)) if key not in (None, "") else None
        message = str(extra[0].get("message", message)).removeprefix("Value error, ")
        if field is None and "'kind'" in message:
            field = "kind"
        message += f" (field {field})" if field else ""
    return error_response(400, "invalid_request", message, field)


def _strip_kind(key: str) -> str | None:
    """``patching.targets.0`` → ``targets.0``: the discriminated union puts the job kind first."""
    head, _, rest = key.partition(".")
    if head in KIND_NAMES:
        return rest or None
    return key


def _http_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    error = cast(HTTPException, exc)  # registered for HTTPException only
    status = error.status_code
    if status >= 500:
        log.error("HTTP %s: %s", status, error.detail)
        return error_response(status, "internal_error", "internal server error")
    return error_response(status, _HTTP_CODES.get(status, "bad_request"), str(error.detail))


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
