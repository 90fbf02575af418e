"""Build the job store and the activation cache a deployment uses: Redis in production, in-process embedded."""

from __future__ import annotations

import redis

from workers.activation_cache import ActivationCache, MemoryActivationCache, RedisActivationCache
from workers.records import JobStore, MemoryJobStore, RedisJobStore
from workers.settings import WorkerSettings

__all__ = ["build_stores"]


def build_stores(settings: WorkerSettings) -> tuple[JobStore, ActivationCache]:
    """Redis-backed stores when ``redis_url`` is set, else in-process ones (embedded mode)."""
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
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
