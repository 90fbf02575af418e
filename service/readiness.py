"""Readiness checks that answer within a deadline whatever Redis or the broker does (down, or frozen).

The job store and the broker are synchronous clients, so each ping runs in a thread of its own check. A frozen
server can hold a ping for its socket timeout or longer; the check then answers "no answer" at its deadline,
and the next ``/readyz`` shares the ping still in flight instead of stacking up another thread behind it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import suppress

__all__ = ["Probe", "Readiness"]


class Probe:
    """One synchronous ping, at most one in flight, in a daemon thread of its own (not the request pool's).

    Daemon, so a ping stuck on a frozen server never holds up the process's exit.
    """

    def __init__(self, name: str, ping: Callable[[], object]) -> None:
        self.name = name
        self._ping = ping
        self._in_flight: asyncio.Future[None] | None = None

    async def check(self, deadline_s: float) -> str:
        """``"ok"``, or why not; never takes longer than ``deadline_s``."""
        loop = asyncio.get_running_loop()
        ping = self._in_flight
        if ping is None or ping.done() or ping.get_loop() is not loop:
            ping = self._in_flight = self._start(loop)
        try:
            await asyncio.wait_for(asyncio.shield(ping), deadline_s)
        except TimeoutError:
            return f"unreachable: no answer within {deadline_s:g} s"
        except Exception as exc:  # any failure means not ready; the reason is reported, not raised
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    def _start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(_retrieve)

        def run() -> None:
            error: Exception | None = None
            try:
                self._ping()
            except Exception as exc:
                error = exc
            with suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, future, error)

        threading.Thread(target=run, name=f"readyz-{self.name}", daemon=True).start()
        return future


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _retrieve(ping: asyncio.Future[None]) -> None:
    """A ping that ended after its callers gave up: read its outcome so asyncio does not log it as lost."""
    if not ping.cancelled():
        ping.exception()


class Readiness:
    """The checks of ``/readyz``, run concurrently, each bounded by ``deadline_s`` (well under a second)."""

    def __init__(self, probes: list[Probe], *, deadline_s: float = 0.5) -> None:
        self._probes = probes
        self._deadline_s = deadline_s

    async def checks(self) -> dict[str, str]:
        results = await asyncio.gather(*(probe.check(self._deadline_s) for probe in self._probes))
        return {probe.name: result for probe, result in zip(self._probes, results, strict=True)}
