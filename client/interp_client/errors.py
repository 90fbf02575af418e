"""Typed exceptions carrying the server's ``{code, message, field}``, one class per status (and per common code).

``error_for(status, body, headers)`` is the one place an HTTP error becomes an exception, so code that catches
``UnknownModelError`` or ``RateLimitedError`` never parses bodies itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interp_client.kinds import JobRecord

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "ConnectionFailedError",
    "InterpError",
    "InvalidRequestError",
    "JobCancelledError",
    "JobFailedError",
    "JobTooLargeError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "ServerError",
    "UnavailableError",
    "UnknownJobError",
    "UnknownModelError",
    "UnknownSaeError",
    "WaitTimeoutError",
    "error_for",
]


class InterpError(Exception):
    """Anything the service refused or could not do: its stable ``code``, ``message``, the ``field`` at fault."""

    def __init__(self, message: str, *, code: str = "error", field: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field and self.field not in self.message else ""
        return f"{self.code}: {self.message}{where}"


class InvalidRequestError(InterpError):
    """400: a malformed body, an unknown field or an out-of-range value; ``field`` names it."""


class AuthenticationError(InterpError):
    """401/403: a missing or refused API key."""


class NotFoundError(InterpError):
    """404: an unknown id; the message lists what exists."""


class UnknownModelError(NotFoundError):
    """404 ``unknown_model``."""


class UnknownSaeError(NotFoundError):
    """404 ``unknown_sae``."""


class UnknownJobError(NotFoundError):
    """404 ``unknown_job``: never existed, or expired after its TTL."""


class ConflictError(InterpError):
    """409, or ``idempotency_key_reused`` (an ``Idempotency-Key`` sent again with a different body)."""


class PayloadTooLargeError(InterpError):
    """413: a body over the size limit, or a prompt over the model's token limit."""


class JobTooLargeError(InterpError):
    """``job_too_large`` (422): the job's estimated memory can never fit a worker; the message names the bytes."""


class RateLimitedError(InterpError):
    """429: slow down; ``retry_after`` is the server's Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(InterpError):
    """5xx: a fault on the server's side, reported by code only."""


class UnavailableError(ServerError):
    """503: Redis or the broker is unreachable, or no worker has loaded the model yet; retried before raised."""


class ConnectionFailedError(InterpError):
    """The service could not be reached (or kept dropping the connection) after every retry."""


class WaitTimeoutError(InterpError, TimeoutError):
    """The job had not ended when the caller's timeout ran out; it goes on running on the server."""


class JobFailedError(InterpError):
    """A job that ended ``failed``: the job's stored error, and the job itself."""

    def __init__(self, job: JobRecord):
        error = job.error
        super().__init__(
            error.message if error else f"job {job.id} failed",
            code=error.code if error else "failed",
            field=error.field if error else None,
        )
        self.job = job
        self.retryable = bool(error and error.retryable)


class JobCancelledError(InterpError):
    """A job that ended ``cancelled``: it has no result."""

    def __init__(self, job: JobRecord):
        super().__init__(f"job {job.id} was cancelled", code="cancelled")
        self.job = job


_BY_STATUS: dict[int, type[InterpError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: JobTooLargeError,
    429: RateLimitedError,
    503: UnavailableError,
}
_BY_CODE: dict[str, type[InterpError]] = {
    "unknown_model": UnknownModelError,
    "unknown_sae": UnknownSaeError,
    "unknown_job": UnknownJobError,
    "job_too_large": JobTooLargeError,
    "idempotency_key_reused": ConflictError,
}
"""Codes whose class is decided by the code, whatever status the server's table gives them."""


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds (the delta form; an HTTP date is ignored)."""
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_for(status: int, content: bytes, headers: Mapping[str, str]) -> InterpError:
    """The exception for an error response: the envelope's fields when it has one, the status otherwise."""
    code, message, field = f"http_{status}", f"HTTP {status}", None
    try:
        body = json.loads(content)
        error = body["error"] if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            field = str(error["field"]) if error.get("field") is not None else None
    except (ValueError, KeyError):
        if content:
            message = f"HTTP {status}: {content[:200].decode('utf-8', 'replace')}"
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or (ServerError if status >= 500 else InterpError)
    kwargs: dict[str, Any] = {"code": code, "field": field, "status": status}
    if cls is RateLimitedError:
        kwargs["retry_after"] = retry_after(headers)
    return cls(message, **kwargs)
