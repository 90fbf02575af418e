"""A graceful stop: on SIGTERM (or SIGINT) the API ends its long-polls and event streams at once, so uvicorn's
shutdown, which waits for open requests, finishes in moments instead of after the longest wait.

uvicorn installs its own handler while it serves; the lifespan hook chains onto it: the app drains its waits,
then uvicorn's handler starts the shutdown as before. A long-poll answers with the job as it is; a stream ends
with a comment saying to reconnect (its events carry ids, so a client resumes without loss).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType

from litestar import Litestar

from service.job_events import JobEvents

__all__ = ["drain_on_stop"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def drain_on_stop(events: JobEvents):  # type: ignore[no-untyped-def]
    """The lifespan hook: while the app serves, a stop signal drains ``events`` before the server's handler runs."""

    @asynccontextmanager
    async def lifespan(_: Litestar | None = None) -> AsyncIterator[None]:
        if threading.current_thread() is not threading.main_thread():  # a test client's app: no signals here
            yield
            return
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

        def chained(sig: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(events.drain)
            handler = previous[signal.Signals(sig)]
            if callable(handler):
                handler(sig, frame)

        for sig in STOP_SIGNALS:
            signal.signal(sig, chained)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    return lifespan
