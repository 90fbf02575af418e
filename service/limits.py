"""Limits that hold across API replicas: requests per key per window, and unfinished jobs per tenant.

State lives in Redis, never in one process, so every replica counts the same requests and jobs; embedded mode
(no Redis) keeps the same counters in memory.

- **Rate**: a fixed window per key that opens at the key's first request (one Lua script: ``INCR``, ``PEXPIRE`` on
  the first hit, ``PTTL``), so the count and the time to the window's end come from one atomic step and replicas'
  clocks never matter. Over the limit: 429 ``rate_limited`` with ``Retry-After`` the seconds left.
- **Active jobs**: a sorted set of the tenant's unfinished job ids. A submission reserves its id with one Lua script
  (``ZCARD`` < limit, then ``ZADD``), so concurrent submissions on several replicas never overshoot. Jobs leave the
  set lazily: when a tenant looks full, ids whose records are terminal or gone are pruned first. Nothing has to
  remember to decrement when a job ends (a worker, a cancel, an expiry or a crash all end it the same way).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

import redis
from litestar.concurrency import sync_to_thread
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from service.errors import ApiError
from workers.records import JobStore

if TYPE_CHECKING:
    from service.settings import ServiceSettings

__all__ = [
    "ACTIVE_RETRY_AFTER_S",
    "ActiveJobs",
    "MemoryActiveJobs",
    "MemoryRateLimiter",
    "RateLimitMiddleware",
    "RateLimitedError",
    "RateLimiter",
    "RedisActiveJobs",
    "RedisRateLimiter",
    "TooManyActiveJobsError",
    "build_limits",
]

ACTIVE_RETRY_AFTER_S = 5
"""What a full tenant is told to wait: no one knows when its jobs end, so a short, fixed hint."""
RESERVATION_GRACE_S = 30.0
"""A reserved id whose record is not written yet is being submitted: pruned only once older than this."""

IsActive = Callable[[str], bool | None]
"""A job id → whether its record is unfinished; ``None`` when there is no record."""


class _RetryLaterError(ApiError):
    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.headers = {"Retry-After": str(self.retry_after)}


class RateLimitedError(_RetryLaterError):
    code = "rate_limited"


class TooManyActiveJobsError(_RetryLaterError):
    code = "too_many_active_jobs"


class RateLimiter(Protocol):
    limit: int
    window_s: int

    def hit(self, identity: str) -> int | None:
        """Count one request; ``None`` when admitted, else the seconds until the window ends."""
        ...


_RATE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
"""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, *, prefix: str, limit: int, window_s: int) -> None:
        self.limit, self.window_s = limit, window_s
        self._prefix = f"{prefix}rate:"
        self._script = client.register_script(_RATE_SCRIPT)

    def hit(self, identity: str) -> int | None:
        if not self.limit:
            return None
        count, left_ms = cast(list[int], self._script(keys=[self._prefix + identity], args=[self.window_s * 1000]))
        return None if int(count) <= self.limit else math.ceil(int(left_ms) / 1000)


class MemoryRateLimiter:
    def __init__(self, *, limit: int, window_s: int) -> None:
        self.limit, self.window_s = limit, window_s
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # identity → (window end, count)

    def hit(self, identity: str) -> int | None:
        if not self.limit:
            return None
        now = time.monotonic()
        with self._lock:
            end, count = self._windows.get(identity, (0.0, 0))
            if end <= now:
                end, count = now + self.window_s, 0
            self._windows[identity] = (end, count + 1)
        return None if count + 1 <= self.limit else math.ceil(end - now)


class ActiveJobs(Protocol):
    limit: int

    def reserve(self, tenant: str, job_id: str) -> bool:
        """Count ``job_id`` as one of the tenant's unfinished jobs, unless the tenant already has ``limit``."""
        ...

    def release(self, tenant: str, job_id: str) -> None:
        """Forget a reservation that made no job (an idempotent retry returned an existing one)."""
        ...

    def count(self, tenant: str) -> int:
        """The tenant's unfinished jobs, ended ones pruned first."""
        ...


def _stale(job_id: str, reserved_at: float, is_active: IsActive, now: float) -> bool:
    active = is_active(job_id)
    return active is False or (active is None and now - reserved_at > RESERVATION_GRACE_S)


_RESERVE_SCRIPT = """
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class RedisActiveJobs:
    """``{prefix}active:{tenant}``: job id → when it was reserved; expires with the jobs' TTL when left alone."""

    def __init__(self, client: redis.Redis, *, prefix: str, limit: int, ttl_s: int, is_active: IsActive) -> None:
        self.limit = limit
        self._r = client
        self._prefix = f"{prefix}active:"
        self._ttl = ttl_s
        self._is_active = is_active
        self._script = client.register_script(_RESERVE_SCRIPT)

    def _reserve(self, tenant: str, job_id: str) -> bool:
        args: list[Any] = [self.limit, job_id, time.time(), self._ttl]
        return bool(self._script(keys=[self._prefix + tenant], args=args))

    def reserve(self, tenant: str, job_id: str) -> bool:
        if not self.limit:
            return True
        if self._reserve(tenant, job_id):
            return True
        self._prune(tenant)
        return self._reserve(tenant, job_id)

    def release(self, tenant: str, job_id: str) -> None:
        if self.limit:
            self._r.zrem(self._prefix + tenant, job_id)

    def count(self, tenant: str) -> int:
        self._prune(tenant)
        return int(self._r.zcard(self._prefix + tenant))

    def _prune(self, tenant: str) -> None:
        key, now = self._prefix + tenant, time.time()
        self._r.zremrangebyscore(key, "-inf", now - self._ttl)  # records expired long ago
        members = cast(list[tuple[bytes, float]], self._r.zrange(key, 0, -1, withscores=True))
        stale = [m for m, at in members if _stale(m.decode(), at, self._is_active, now)]
        if stale:
            self._r.zrem(key, *stale)


class MemoryActiveJobs:
    def __init__(self, *, limit: int, is_active: IsActive) -> None:
        self.limit = limit
        self._is_active = is_active
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, float]] = {}

    def reserve(self, tenant: str, job_id: str) -> bool:
        if not self.limit:
            return True
        with self._lock:
            jobs = self._jobs.setdefault(tenant, {})
            if len(jobs) >= self.limit:
                self._prune(jobs)
            if len(jobs) >= self.limit:
                return False
            jobs[job_id] = time.time()
            return True

    def release(self, tenant: str, job_id: str) -> None:
        with self._lock:
            self._jobs.get(tenant, {}).pop(job_id, None)

    def count(self, tenant: str) -> int:
        with self._lock:
            jobs = self._jobs.get(tenant, {})
            self._prune(jobs)
            return len(jobs)

    def _prune(self, jobs: dict[str, float]) -> None:
        now = time.time()
        for job_id, at in list(jobs.items()):
            if _stale(job_id, at, self._is_active, now):
                del jobs[job_id]


class RateLimitMiddleware(ASGIMiddleware):
    """Counts each authenticated request against its key (or, with auth off, its tenant) before the handler runs.

    After the authentication middleware, which puts the caller in ``scope["user"]``; routes it leaves open (health,
    metrics, the results page's files) have no caller and are never counted.
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        caller = scope.get("user")
        if self.limiter.limit and caller is not None:
            retry_after = await sync_to_thread(self.limiter.hit, caller.rate_identity)
            if retry_after is not None:
                raise RateLimitedError(
                    f"more than {self.limiter.limit} requests in {self.limiter.window_s} s with this key; "
                    f"retry after {retry_after} s",
                    retry_after=retry_after,
                )
        await next_app(scope, receive, send)


def build_limits(
    settings: ServiceSettings, client: redis.Redis | None, store: JobStore
) -> tuple[RateLimiter, ActiveJobs]:
    """Redis-backed limits where the deployment has Redis (shared by every replica), else in-process ones."""

    def is_active(job_id: str) -> bool | None:
        record = store.get(job_id)
        return None if record is None else not record.terminal

    rate, window = settings.rate_limit_per_minute, settings.rate_limit_window_s
    if client is None:
        return (MemoryRateLimiter(limit=rate, window_s=window),
                MemoryActiveJobs(limit=settings.max_active_jobs, is_active=is_active))
    prefix = settings.workers.key_prefix
    return (RedisRateLimiter(client, prefix=prefix, limit=rate, window_s=window),
            RedisActiveJobs(client, prefix=prefix, limit=settings.max_active_jobs, ttl_s=settings.workers.job_ttl_s,
                            is_active=is_active))
