"""Requests from concurrent jobs run together: one caller leads a batch, the others wait for their share.

A worker runs several jobs of one model at once (threads of one process). When a job's work is a forward over
its own prompts, it hands the forward to the model's :class:`Combiner` and blocks. The caller that finds no batch
running leads: it waits up to ``max_wait_s`` while other running jobs (``member``) are still to hand theirs in,
takes the queued requests that share the first one's key and fit the budget (``key`` and ``fits`` must not
raise), runs them as one batch and gives each caller its own result, or its own exception. A batch that raises
runs again one request at a time, so one bad request fails alone. ``max_wait_s`` 0 turns combining off: each
request runs alone, at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Combiner", "Shared"]

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Shared(Generic[ResultT]):
    """A caller's result, and how many requests its batch held (1: it ran alone)."""

    value: ResultT
    batch_size: int


class _Pending(Generic[RequestT, ResultT]):
    def __init__(self, request: RequestT) -> None:
        self.request = request
        self.done = False
        self.value: ResultT | None = None
        self.error: BaseException | None = None
        self.batch_size = 1

    def outcome(self) -> Shared[ResultT]:
        if self.error is not None:
            raise self.error
        return Shared(self.value, self.batch_size)  # type: ignore[arg-type]


class Combiner(Generic[RequestT, ResultT]):
    """Runs concurrent callers' requests as batches of ``run_batch``, one batch at a time."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[RequestT]], Sequence[ResultT]],
        *,
        max_wait_s: float,
        fits: Callable[[Sequence[RequestT]], bool],
        key: Callable[[RequestT], Hashable],
    ) -> None:
        self._run_batch = run_batch
        self._max_wait_s = max_wait_s
        self._fits = fits
        self._key = key
        self._cond = threading.Condition()
        self._queue: list[_Pending[RequestT, ResultT]] = []
        self._leading = False
        self._members = 0

    @contextmanager
    def member(self) -> Iterator[None]:
        """Count a running job that may hand in requests: a leader waits for company only while one is away."""
        with self._cond:
            self._members += 1
        try:
            yield
        finally:
            with self._cond:
                self._members -= 1
                self._cond.notify_all()

    def submit(self, request: RequestT) -> Shared[ResultT]:
        """Run ``request``, batched with whatever other callers hand in meanwhile; its result or its exception."""
        pending: _Pending[RequestT, ResultT] = _Pending(request)
        if self._max_wait_s <= 0:
            self._execute([pending])
            return pending.outcome()
        with self._cond:
            self._queue.append(pending)
            self._cond.notify_all()
            while not pending.done and self._leading:
                self._cond.wait()
            if pending.done:
                return pending.outcome()
            self._leading = True
        try:
            while not pending.done:
                self._execute(self._gather())
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()
        return pending.outcome()

    def _gather(self) -> list[_Pending[RequestT, ResultT]]:
        """The next batch: after waiting for absent members, the oldest request and those that join it."""
        deadline = time.monotonic() + self._max_wait_s
        with self._cond:
            while len(self._queue) < self._members:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            first = self._queue[0]
            key = self._key(first.request)
            batch = [first]
            for pending in self._queue[1:]:
                if self._key(pending.request) == key and self._fits([p.request for p in (*batch, pending)]):
                    batch.append(pending)
            taken = {id(p) for p in batch}
            self._queue = [p for p in self._queue if id(p) not in taken]
            return batch

    def _execute(self, batch: list[_Pending[RequestT, ResultT]]) -> None:
        try:
            try:
                values = self._run_batch([p.request for p in batch])
                for pending, value in zip(batch, values, strict=True):
                    pending.value, pending.batch_size = value, len(batch)
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                else:  # find the request at fault: each runs alone
                    for pending in batch:
                        try:
                            (pending.value,) = self._run_batch([pending.request])
                        except Exception as alone:
                            pending.error = alone
        except BaseException as exc:  # an interrupt: no caller may wait for ever
            for pending in batch:
                if pending.value is None and pending.error is None:
                    pending.error = exc
            raise
        finally:
            with self._cond:
                for pending in batch:
                    pending.done = True
                self._cond.notify_all()
