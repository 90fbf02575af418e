"""Waiting for job events without holding a thread: one subscription per API process, fanned out to waiters.

A long-poll or an event stream that blocked a thread (and opened a Redis pub/sub of its own) starved every other
route of the small thread pool. Here a waiter is an ``asyncio.Event`` keyed by job id, and one feed per process
sets them: a Redis pattern subscription on the store's wake channels, started with the app and re-established
with backoff, or, in embedded mode, a listener on the memory store, which the worker thread calls and which hands
the job id to the loop (``call_soon_threadsafe``). A wake only says "look again": the job's event list stays the
one source of truth, read again after the waiter is registered, so an event written in between is never missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from typing import Any, Protocol

import redis
import redis.asyncio
from litestar import Litestar
from litestar.concurrency import sync_to_thread
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from workers.records import JobEvent, JobStore, MemoryJobStore, RedisJobStore
from workers.stores import API_REDIS_TIMEOUT_S

__all__ = ["JobEvents", "MemoryWakeFeed", "RedisWakeFeed", "Waiters", "WakeFeed", "job_events_for"]

log = logging.getLogger(__name__)


class Waiters:
    """The events of the requests waiting on each job; touched on the event loop only."""

    def __init__(self) -> None:
        self._by_job: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def __len__(self) -> int:
        return sum(len(events) for events in self._by_job.values())

    @contextmanager
    def register(self, job_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._by_job[job_id].add(event)
        try:
            yield event
        finally:
            events = self._by_job[job_id]
            events.discard(event)
            if not events:
                del self._by_job[job_id]

    def wake(self, job_id: str) -> None:
        for event in self._by_job.get(job_id, ()):
            event.set()

    def wake_all(self) -> None:
        """After a gap in the feed: every waiter reads its list again, since wakes may have been lost."""
        for events in self._by_job.values():
            for event in events:
                event.set()


class WakeFeed(Protocol):
    def feed(self, waiters: Waiters) -> AbstractAsyncContextManager[None]:
        """While entered, call ``waiters.wake(job_id)`` on the loop whenever a job gets an event."""
        ...


class MemoryWakeFeed:
    """Embedded mode: the memory store is written from the worker thread; its listener crosses to the loop."""

    def __init__(self, store: MemoryJobStore) -> None:
        self._store = store

    @asynccontextmanager
    async def feed(self, waiters: Waiters) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def listener(job_id: str) -> None:
            with suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(waiters.wake, job_id)

        self._store.add_listener(listener)
        try:
            yield
        finally:
            self._store.remove_listener(listener)


class RedisWakeFeed:
    """One ``PSUBSCRIBE {prefix}wake:*`` per process, in a background task, reconnecting with backoff.

    Pub/sub is at most once: whenever the subscription is (re)confirmed, every waiter is woken to read its list
    again, since events written while it was down were announced to nobody.
    """

    def __init__(self, url: str, wake_prefix: str, *, min_backoff_s: float = 0.1, max_backoff_s: float = 5.0) -> None:
        self._url = url
        self._prefix = wake_prefix
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self.subscribed = False

    @asynccontextmanager
    async def feed(self, waiters: Waiters) -> AsyncIterator[None]:
        task = asyncio.create_task(self._run(waiters), name="interp-job-wakes")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self, waiters: Waiters) -> None:
        backoff = self._min_backoff_s
        while True:
            try:
                await self._listen(waiters)
            except (redis.RedisError, OSError) as exc:
                log.warning("job wakes: subscription lost or refused (%s: %s)", type(exc).__name__, exc)
            if self.subscribed:  # it had worked: retry soon
                backoff = self._min_backoff_s
            self.subscribed = False
            waiters.wake_all()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _listen(self, waiters: Waiters) -> None:
        # This loop reconnects and wakes everyone; redis-py's own retries would resubscribe behind its back.
        client = redis.asyncio.Redis.from_url(
            self._url,
            socket_connect_timeout=API_REDIS_TIMEOUT_S,
            socket_timeout=API_REDIS_TIMEOUT_S,  # listen() itself waits for messages without a timeout
            retry=Retry(NoBackoff(), 0),
        )
        try:
            async with client.pubsub() as pubsub:
                await pubsub.psubscribe(f"{self._prefix}*")
                async for message in pubsub.listen():
                    self._dispatch(waiters, message)
        finally:
            await client.aclose()

    def _dispatch(self, waiters: Waiters, message: dict[str, Any]) -> None:
        if message["type"] == "psubscribe":  # from now on every wake reaches us
            self.subscribed = True
            waiters.wake_all()
        elif message["type"] == "pmessage":
            channel = message["channel"]
            name = channel.decode() if isinstance(channel, bytes) else str(channel)
            waiters.wake(name.removeprefix(self._prefix))


class JobEvents:
    """The API's one way to wait for a job's events; built per app, its feed runs for the app's lifespan."""

    def __init__(self, store: JobStore, feed: WakeFeed) -> None:
        self._store = store
        self._feed = feed
        self.waiters = Waiters()
        self.draining = False
        """Set when the server is stopping: every wait returns what it has, streams end (``service/shutdown.py``)."""

    def drain(self) -> None:
        """On the loop: end every wait now, so the server's graceful shutdown finds no request left open."""
        self.draining = True
        self.waiters.wake_all()

    def lifespan(self, _: Litestar | None = None) -> AbstractAsyncContextManager[None]:
        """Litestar's lifespan hook (the app is not needed): the feed runs while it is entered."""
        return self._feed.feed(self.waiters)

    async def wait(self, job_id: str, after: int, timeout: float) -> list[JobEvent]:
        """Events with ``seq > after``, waiting up to ``timeout`` seconds for the first; ``[]`` when none came.

        The list is read in a thread (the store is synchronous, every call bounded by its socket timeout); the
        wait between reads holds no thread at all.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self.waiters.register(job_id) as woken:
            while True:
                woken.clear()  # before reading: a wake that comes during the read is kept for the wait below
                found = await sync_to_thread(self._store.events, job_id, after)
                remaining = deadline - loop.time()
                if found or remaining <= 0 or self.draining:
                    return found
                with suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), remaining)


def job_events_for(store: JobStore, redis_url: str | None) -> JobEvents:
    """The feed that matches the store: Redis pub/sub for :class:`RedisJobStore`, a listener for memory."""
    if isinstance(store, RedisJobStore):
        if redis_url is None:
            raise ValueError("a Redis job store needs the Redis URL to subscribe to its wakes")
        return JobEvents(store, RedisWakeFeed(redis_url, store.wake_prefix))
    if isinstance(store, MemoryJobStore):
        return JobEvents(store, MemoryWakeFeed(store))
    raise TypeError(f"no wake feed for a {type(store).__name__}")
