"""Build the job store and the activation cache a deployment uses: Redis in production, in-process embedded."""

from __future__ import annotations

import redis

from workers.activation_cache import ActivationCache, MemoryActivationCache, RedisActivationCache
from workers.records import JobStore, MemoryJobStore, RedisJobStore
from workers.settings import WorkerSettings

__all__ = ["API_REDIS_TIMEOUT_S", "WORKER_REDIS_TIMEOUT_S", "build_stores", "redis_durability_problem"]

API_REDIS_TIMEOUT_S = 1.0
"""The API answers in about a second or says 503: a frozen Redis must fail its calls fast, not hang the route."""
WORKER_REDIS_TIMEOUT_S = 5.0
"""Workers write cached activations (megabytes) and have no client waiting on each call: more slack."""


def build_stores(
    settings: WorkerSettings, *, timeout_s: float = WORKER_REDIS_TIMEOUT_S
) -> tuple[JobStore, ActivationCache]:
    """Redis-backed stores when ``redis_url`` is set, else in-process ones (embedded mode).

    ``timeout_s`` bounds every Redis call (connecting included, at most 2 s); the API passes
    :data:`API_REDIS_TIMEOUT_S`.
    """
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 2.0)
        )
        store: JobStore = RedisJobStore(client, prefix=settings.key_prefix, ttl_s=settings.job_ttl_s)
        cache: ActivationCache = RedisActivationCache(
            client,
            prefix=settings.key_prefix,
            max_bytes=settings.cache_max_bytes,
            ttl_s=settings.cache_ttl_s,
            max_entry_bytes=settings.cache_max_entry_bytes,
        )
        return store, cache
    return MemoryJobStore(), MemoryActivationCache(
        max_bytes=settings.cache_max_bytes, ttl_s=settings.cache_ttl_s, max_entry_bytes=settings.cache_max_entry_bytes
    )


def redis_durability_problem(redis_url: str) -> str | None:
    """``None`` when Redis logs every write to its append-only file; else what a restart would lose.

    Job records and the Redis broker's queues live there: without AOF a restarted Redis forgets every job
    accepted before it (their ids answer 404). Unreachable or unreadable (``INFO`` refused): ``None``, the
    service starts and answers 503 until Redis is back.
    """
    try:
        info = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0).info("persistence")
    except redis.RedisError:
        return None
    if int(info.get("aof_enabled", 0)) == 1:
        return None
    return ("Redis at REDIS_URL has no append-only file (appendonly no): a restart loses every job record and "
            "queued job accepted before it; run Redis with --appendonly yes")
