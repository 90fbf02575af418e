"""The activation cache: clean-run activations keyed by model, weights, dtype, token ids and hook.

Keys follow design.md section 4 plus a format version (:data:`CACHE_FORMAT`), bumped whenever the code that
produces activations changes their numbers. Values are safetensors bytes. Redis holds them in production (TTL per
entry, total size bounded by evicting the oldest entries, ``maxmemory`` with LRU as a backstop); embedded mode
keeps an in-process LRU. This module holds bytes only (no torch, so the API can read the counters);
:mod:`workers.cached_reader` turns it into an activation reader.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import redis

__all__ = [
    "CACHE_FORMAT",
    "ActivationCache",
    "CacheStats",
    "MemoryActivationCache",
    "RedisActivationCache",
    "activation_key",
]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def activation_key(model_id: str, weights_revision: str, dtype: str, token_ids: Sequence[int], hook: str) -> str:
    """``act:v{format}:{model}:{revision}:{dtype}:{sha256(token ids)}:{hook}``."""
    digest = hashlib.sha256(",".join(str(int(i)) for i in token_ids).encode()).hexdigest()
    return f"act:v{CACHE_FORMAT}:{model_id}:{weights_revision}:{dtype}:{digest}:{hook}"


@dataclass
class CacheStats:
    """What one job (or the whole cache) saw: lookups answered, lookups missed, forwards run, bytes moved."""

    hits: int = 0
    misses: int = 0
    forwards: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def as_dict(self) -> dict[str, float]:
        return {
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "forwards": self.forwards,
            "cache_bytes_read": self.bytes_read,
            "cache_bytes_written": self.bytes_written,
        }


class ActivationCache(Protocol):
    """Bytes by key; both versions count hits, misses and bytes in :meth:`totals`."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def put_many(self, items: dict[str, bytes]) -> None: ...

    def totals(self) -> dict[str, int]: ...


class MemoryActivationCache:
    """An in-process LRU bounded by total bytes (embedded mode); entries also expire after ``ttl_s``."""

    def __init__(self, *, max_bytes: int, ttl_s: float, max_entry_bytes: int | None = None) -> None:
        self._max = max_bytes
        self._ttl = ttl_s
        self._max_entry = max_entry_bytes or max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._size = 0
        self._totals = {"hits": 0, "misses": 0, "bytes_read": 0, "bytes_written": 0}

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        out: list[bytes | None] = []
        with self._lock:
            for key in keys:
                item = self._items.get(key)
                if item is not None and item[0] < now:
                    self._size -= len(self._items.pop(key)[1])
                    item = None
                if item is None:
                    self._totals["misses"] += 1
                    out.append(None)
                else:
                    self._items.move_to_end(key)
                    self._totals["hits"] += 1
                    self._totals["bytes_read"] += len(item[1])
                    out.append(item[1])
        return out

    def put_many(self, items: dict[str, bytes]) -> None:
        expires = time.monotonic() + self._ttl
        with self._lock:
            for key, value in items.items():
                if len(value) > self._max_entry:
                    continue
                old = self._items.pop(key, None)
                if old is not None:
                    self._size -= len(old[1])
                self._items[key] = (expires, value)
                self._size += len(value)
                self._totals["bytes_written"] += len(value)
            while self._size > self._max and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._size -= len(dropped)

    def totals(self) -> dict[str, int]:
        with self._lock:
            return {**self._totals, "size_bytes": self._size, "entries": len(self._items)}


class RedisActivationCache:
    """Entries with a TTL, an index sorted by write time, and a running byte total kept under ``max_bytes``."""

    def __init__(
        self, client: redis.Redis, *, prefix: str, max_bytes: int, ttl_s: int, max_entry_bytes: int | None = None
    ) -> None:
        self._r = client
        self._p = prefix
        self._max = max_bytes
        self._ttl = ttl_s
        self._max_entry = max_entry_bytes or max_bytes
        self._index = f"{prefix}act-index"
        self._stats = f"{prefix}act-stats"

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The entries, ``None`` for each miss; all misses when Redis fails (the job recomputes, never errs)."""
        if not keys:
            return []
        try:
            return self._get_many(keys)
        except redis.RedisError as exc:
            log.warning("activation cache unreadable (%s): recomputing", type(exc).__name__)
            return [None] * len(keys)

    def put_many(self, items: dict[str, bytes]) -> None:
        """Store what fits; a full, evicting or unreachable Redis keeps nothing and says so in the log."""
        try:
            self._put_many(items)
        except redis.RedisError as exc:
            log.warning("activation cache unwritable (%s): entries not kept", type(exc).__name__)

    def _get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        values = cast(list[bytes | None], self._r.mget([self._p + k for k in keys]))
        hits = [v for v in values if v is not None]
        pipe = self._r.pipeline(transaction=False)
        pipe.hincrby(self._stats, "hits", len(hits))
        pipe.hincrby(self._stats, "misses", len(values) - len(hits))
        pipe.hincrby(self._stats, "bytes_read", sum(len(v) for v in hits))
        pipe.execute()
        return values

    def _put_many(self, items: dict[str, bytes]) -> None:
        kept = {k: v for k, v in items.items() if len(v) <= self._max_entry}
        if not kept:
            return
        now = time.time()
        pipe = self._r.pipeline(transaction=False)
        for key, value in kept.items():
            pipe.set(self._p + key, value, ex=self._ttl)
            pipe.zadd(self._index, {f"{len(value)}|{key}": now})
        pipe.hincrby(self._stats, "bytes_written", sum(len(v) for v in kept.values()))
        pipe.hincrby(self._stats, "size_bytes", sum(len(v) for v in kept.values()))
        pipe.execute()
        self._evict(now)

    def _evict(self, now: float) -> None:
        """Drop expired index entries, then the oldest ones while the byte total is over the bound."""
        expired = cast(list[bytes], self._r.zrangebyscore(self._index, "-inf", now - self._ttl))
        for member in expired:
            if self._r.zrem(self._index, member):
                self._forget(member, delete=False)  # the entry itself expired with its TTL
        while int(cast(bytes, self._r.hget(self._stats, "size_bytes") or b"0")) > self._max:
            oldest = cast(list[tuple[bytes, float]], self._r.zpopmin(self._index))
            if not oldest:
                break
            self._forget(oldest[0][0], delete=True)

    def _forget(self, member: bytes, *, delete: bool) -> None:
        """Account for an index member already removed from the index (by this caller only, so counted once)."""
        size, _, key = member.decode().partition("|")
        pipe = self._r.pipeline()
        if delete:
            pipe.delete(self._p + key)
        pipe.hincrby(self._stats, "size_bytes", -int(size))
        pipe.execute()

    def totals(self) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self._r.hgetall(self._stats))
        totals = {k.decode(): int(v) for k, v in raw.items()}
        totals["entries"] = int(self._r.zcard(self._index))
        return {"hits": 0, "misses": 0, "bytes_read": 0, "bytes_written": 0, "size_bytes": 0, **totals}
