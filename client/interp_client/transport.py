"""What the sync and async clients share: headers, the retry policy, and reading responses into models or errors.

Every request is retried on connection errors and 503 with exponential backoff and full jitter, a bounded number
of times. That is safe for submissions because each carries an ``Idempotency-Key`` (one per logical submission,
the same on every retry), so the server answers a retry with the job the first attempt created.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar, overload

import httpx
import pydantic

from interp_client.errors import ConnectionFailedError, InterpError, error_for, retry_after

__all__ = ["DEFAULT_URL", "LONG_POLL_S", "RetryPolicy", "Settings", "decode", "json_body", "raise_for_status"]

DEFAULT_URL = "http://127.0.0.1:8000"
LONG_POLL_S = 60.0
"""Longest single ``?wait=`` asked for; the server caps it too (``INTERP_MAX_WAIT_S``), and we loop."""
RETRY_STATUSES = frozenset({503})

try:
    USER_AGENT = f"interp-client/{version('interp-client')}"
except PackageNotFoundError:  # run from a source tree
    USER_AGENT = "interp-client"

M = TypeVar("M")
B = TypeVar("B", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; before try n+1, a uniform delay in [0, min(max_delay_s, base_delay_s·2ⁿ)]."""

    attempts: int = 5
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0

    def delay(self, attempt: int, server_hint: float | None = None) -> float:
        """Seconds to sleep after failed try ``attempt`` (0-based); a Retry-After from the server wins, capped."""
        if server_hint is not None:
            return min(server_hint, self.max_delay_s)
        return random.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2**attempt))

    def after_error(self, attempt: int, exc: httpx.TransportError) -> float:
        """The delay before the next try, or :class:`ConnectionFailedError` when this was the last one."""
        if attempt + 1 >= self.attempts:
            raise ConnectionFailedError(
                f"{type(exc).__name__} after {self.attempts} attempts: {exc}", code="connection_failed"
            ) from exc
        return self.delay(attempt)

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """The delay before retrying this response, or ``None`` to take it as it is."""
        if response.status_code in RETRY_STATUSES and attempt + 1 < self.attempts:
            return self.delay(attempt, retry_after(response.headers))
        return None


@dataclass(frozen=True)
class Settings:
    """How to reach the service, shared by a client and its job handles."""

    base_url: str = DEFAULT_URL
    api_key: str | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    events_read_timeout: float = 60.0
    """Seconds of silence before an event stream counts as dropped (the server sends keep-alives every 15 s)."""

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def wait_timeout(self, wait: float | None) -> httpx.Timeout:
        """A long-poll holds the response for ``wait`` seconds: read for that long and then some."""
        return httpx.Timeout(self.timeout + (wait or 0.0))


def raise_for_status(response: httpx.Response) -> None:
    if response.is_error:
        raise error_for(response.status_code, response.content, response.headers)


@overload
def decode(response: httpx.Response, model: type[B]) -> B: ...
@overload
def decode(response: httpx.Response, model: pydantic.TypeAdapter[M]) -> M: ...
def decode(response: httpx.Response, model: type[B] | pydantic.TypeAdapter[M]) -> B | M:
    """The body of a successful response as ``model``; an error response as its typed exception."""
    raise_for_status(response)
    try:
        if isinstance(model, pydantic.TypeAdapter):
            return model.validate_json(response.content)
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise InterpError(f"the server's answer does not match the client's models: {exc}",
                          code="unexpected_response", status=response.status_code) from exc


def json_body(value: Any) -> Any:
    """A pydantic model as the JSON the server expects: only the fields that were set, plus ``kind``."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", exclude_unset=True) | value.model_dump(mode="json", include={"kind"})
    return value
