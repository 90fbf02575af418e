"""Progress and cancellation as plain callables, so the core reports to a job record without knowing it."""

from __future__ import annotations

from collections.abc import Callable

from workers.core.errors import JobCancelledError

Progress = Callable[[float], None]
"""Called with the fraction of the work done, 0..1, after each chunk."""

ShouldCancel = Callable[[], bool]
"""Polled between chunks; ``True`` stops the work with :class:`JobCancelledError`."""


def no_progress(_: float) -> None:
    """The default reporter: reports nowhere."""


def never_cancel() -> bool:
    """The default canceller: never cancels."""
    return False


def check_cancelled(should_cancel: ShouldCancel) -> None:
    """Raise :class:`JobCancelledError` if the caller asked to stop."""
    if should_cancel():
        raise JobCancelledError("the job was cancelled")
