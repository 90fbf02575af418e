"""The API's reaper loop: every half lease, requeue the jobs whose worker is gone (:mod:`workers.reaper`).

Every API replica runs one; the store's atomic updates make a job move once however many reap it. A pass that
fails (Redis or the broker away) is logged once per outage and tried again at the next beat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from litestar import Litestar
from litestar.concurrency import sync_to_thread

from service.queue import JobQueue
from workers.reaper import reap
from workers.records import JobStore
from workers.settings import WorkerSettings

__all__ = ["Reaper"]

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, store: JobStore, queue: JobQueue, settings: WorkerSettings) -> None:
        self._store, self._queue, self._settings = store, queue, settings

    def run_once(self) -> list[str]:
        settings = self._settings
        hard_limits = {kind: limits.hard for kind, limits in settings.time_limits.items()}
        return reap(self._store, self._queue.submit, max_deliveries=settings.max_deliveries, hard_limits=hard_limits)

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._settings.lease_s / 2)
            try:
                await sync_to_thread(self.run_once)
            except Exception:  # an outage: the next beat tries again
                if not failing:
                    log.warning("the reaper could not reach the store or the broker; retrying", exc_info=True)
                failing = True
            else:
                failing = False

    @asynccontextmanager
    async def lifespan(self, _: Litestar | None = None) -> AsyncIterator[None]:
        """Litestar's lifespan hook: the loop runs while the app serves."""
        task = asyncio.create_task(self._loop(), name="reaper")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
