"""A live progress line on a terminal, fed by the job's event stream; the queue position while it waits.

The stream is read on a thread that hands events over a queue, so the line can also tick (elapsed time, a fresh
queue position: jobs ahead starting send this job no event) while no event arrives. Drawn with ``\\r`` on
stderr, so stdout stays the result alone.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, TextIO

from interp_client.client import Client
from interp_client.jobs import Job
from interp_client.kinds import TERMINAL
from interp_client.models import JobEvent

__all__ = ["ProgressLine", "follow"]

TICK_S = 1.0
WIDTH = 30


class ProgressLine:
    """``[#########---------]  42%  running  3.1s`` redrawn in place."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._started = time.monotonic()
        self._width = 0

    def draw(self, status: str, progress: float, queue_position: int | None = None) -> None:
        filled = round(WIDTH * min(max(progress, 0.0), 1.0))
        where = f" (position {queue_position})" if status == "queued" and queue_position is not None else ""
        text = (f"[{'#' * filled}{'-' * (WIDTH - filled)}] {progress:4.0%}  {status}{where}  "
                f"{time.monotonic() - self._started:.1f}s")
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def close(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def _read(job: Job[Any], out: queue.Queue[JobEvent | BaseException | None]) -> None:
    try:
        for event in job.events():
            out.put(event)
    except BaseException as exc:  # handed to the drawing thread, which decides
        out.put(exc)
    finally:
        out.put(None)


def follow(client: Client, job: Job[Any], stream: TextIO, timeout: float | None) -> None:
    """Draw the job's progress until it ends (or ``timeout`` passes), then refresh it for its result."""
    stream.write(f"job {job.id}: {job.kind} on {job.record.model}\n")
    line = ProgressLine(stream)
    events: queue.Queue[JobEvent | BaseException | None] = queue.Queue()
    reader = threading.Thread(target=_read, args=(client.job(job.id), events), daemon=True, name="interp-events")
    reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    status, progress, position = job.status, job.progress, job.queue_position
    line.draw(status, progress, position)
    try:
        while status not in TERMINAL and (deadline is None or time.monotonic() < deadline):
            try:
                item = events.get(timeout=TICK_S)
            except queue.Empty:
                if status == "queued":
                    position = client.job(job.id).queue_position
            else:
                if item is None or isinstance(item, BaseException):
                    break  # the stream gave up: wait below without a bar
                status, progress = item.status, item.progress
            line.draw(status, progress, position)
    finally:
        line.close()
    job.refresh().wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
