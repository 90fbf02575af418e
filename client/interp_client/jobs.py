"""Handles on submitted jobs: ``wait`` (server-side long-polls, looped), ``result``, ``cancel``, ``events``.

:class:`Job` (sync) and :class:`AsyncJob` share everything but I/O through :class:`JobState`. A handle is generic
in its kind's result model, so ``client.patching(...).result()`` is typed as a ``PatchingResult``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from interp_client.errors import InterpError, JobCancelledError, JobFailedError, WaitTimeoutError
from interp_client.events import MessageDecoder
from interp_client.kinds import TERMINAL, JobRecord, JobStatus
from interp_client.models import JobEvent
from interp_client.transport import LONG_POLL_S

if TYPE_CHECKING:
    from interp_client.async_client import AsyncClient
    from interp_client.client import Client

__all__ = ["AsyncJob", "Job", "JobState"]

R = TypeVar("R", bound=BaseModel)


class JobState(Generic[R]):
    """The last known record of a job, and what can be read from it without asking the server."""

    def __init__(self, record: JobRecord, result_type: type[R]):
        self.record = record
        self.result_type = result_type

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.kind} {self.status} {self.progress:.0%}>"

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def status(self) -> JobStatus:
        return self.record.status

    @property
    def progress(self) -> float:
        return self.record.progress

    @property
    def queue_position(self) -> int | None:
        return self.record.queue_position

    @property
    def done(self) -> bool:
        return self.record.status in TERMINAL

    def _apply(self, event: JobEvent) -> None:
        """An event's status and progress into the cached record (the result needs a refresh)."""
        self.record = self.record.model_copy(update={"status": event.status, "progress": event.progress})

    def _result(self) -> R:
        record = self.record
        if record.status == "failed":
            raise JobFailedError(record)
        if record.status == "cancelled":
            raise JobCancelledError(record)
        if record.status != "succeeded":
            raise WaitTimeoutError(f"job {record.id} is still {record.status}", code="timeout")
        if not isinstance(record.result, self.result_type):
            raise InterpError(f"job {record.id} succeeded without a {self.result_type.__name__}",
                              code="unexpected_response")
        return record.result

    def _poll_seconds(self, deadline: float | None) -> float | None:
        """Seconds for the next long-poll, or ``None`` when the deadline has passed."""
        if deadline is None:
            return LONG_POLL_S
        remaining = deadline - time.monotonic()
        return min(remaining, LONG_POLL_S) if remaining > 0 else None


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _event(data: str, seen: int) -> JobEvent | None:
    """The event in a message's data, or ``None`` for one already seen (a replay after reconnecting)."""
    try:
        event = JobEvent.model_validate_json(data)
    except ValidationError as exc:
        raise InterpError(f"unreadable job event: {exc}", code="unexpected_response") from exc
    return event if event.seq > seen else None


class Job(JobState[R]):
    """A submitted job, read and steered through its :class:`~interp_client.Client`."""

    def __init__(self, client: Client, record: JobRecord, result_type: type[R]):
        super().__init__(record, result_type)
        self._client = client

    def refresh(self) -> Job[R]:
        self.record = self._client._get_record(self.id)
        return self

    def wait(self, timeout: float | None = None) -> Job[R]:
        """Until the job ends or ``timeout`` seconds pass (``None``: no limit), in long-polls held by the server."""
        deadline = _deadline(timeout)
        while not self.done and (seconds := self._poll_seconds(deadline)) is not None:
            self.record = self._client._get_record(self.id, wait=seconds)
        return self

    def result(self, timeout: float | None = None) -> R:
        """The typed result, waiting for it first; :class:`JobFailedError` (with the job's error) if it failed,
        :class:`JobCancelledError` if cancelled, :class:`WaitTimeoutError` if still running at ``timeout``."""
        return self.wait(timeout)._result()

    def cancel(self) -> Job[R]:
        """Cancel a queued or running job (a running one stops between chunks of work); a no-op once ended."""
        self.record = self._client._cancel(self.id)
        return self

    def events(self) -> Iterator[JobEvent]:
        """Every status and progress change from the first, until the job ends; reconnects after a drop."""
        seen, failures = -1, 0
        policy = self._client.settings.retry
        while True:
            try:
                with self._client._event_stream(self.id) as response:
                    decoder = MessageDecoder()
                    for line in response.iter_lines():
                        for message in decoder.feed(line):
                            event = _event(message.data, seen)
                            if event is None:
                                continue
                            seen, failures = event.seq, 0
                            self._apply(event)
                            yield event
                            if event.status in TERMINAL:
                                return
                error: httpx.TransportError = httpx.RemoteProtocolError("the event stream ended early")
            except httpx.TransportError as exc:
                error = exc
            time.sleep(policy.after_error(failures, error))
            failures += 1


class AsyncJob(JobState[R]):
    """A submitted job, read and steered through its :class:`~interp_client.AsyncClient`."""

    def __init__(self, client: AsyncClient, record: JobRecord, result_type: type[R]):
        super().__init__(record, result_type)
        self._client = client

    async def refresh(self) -> AsyncJob[R]:
        self.record = await self._client._get_record(self.id)
        return self

    async def wait(self, timeout: float | None = None) -> AsyncJob[R]:
        """Until the job ends or ``timeout`` seconds pass (``None``: no limit), in long-polls held by the server."""
        deadline = _deadline(timeout)
        while not self.done and (seconds := self._poll_seconds(deadline)) is not None:
            self.record = await self._client._get_record(self.id, wait=seconds)
        return self

    async def result(self, timeout: float | None = None) -> R:
        """As :meth:`Job.result`."""
        return (await self.wait(timeout))._result()

    async def cancel(self) -> AsyncJob[R]:
        self.record = await self._client._cancel(self.id)
        return self

    async def events(self) -> AsyncIterator[JobEvent]:
        """As :meth:`Job.events`."""
        seen, failures = -1, 0
        policy = self._client.settings.retry
        while True:
            try:
                async with self._client._event_stream(self.id) as response:
                    decoder = MessageDecoder()
                    async for line in response.aiter_lines():
                        for message in decoder.feed(line):
                            event = _event(message.data, seen)
                            if event is None:
                                continue
                            seen, failures = event.seq, 0
                            self._apply(event)
                            yield event
                            if event.status in TERMINAL:
                                return
                error: httpx.TransportError = httpx.RemoteProtocolError("the event stream ended early")
            except httpx.TransportError as exc:
                error = exc
            await asyncio.sleep(policy.after_error(failures, error))
            failures += 1
