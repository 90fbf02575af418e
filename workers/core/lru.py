"""Loaded objects kept in memory, least recently used first out, bounded by their total size in bytes.

One mechanism for everything a worker loads and cannot hold all of, models
(:class:`~workers.core.model_pool.ModelPool`) and SAEs (:class:`~workers.core.sae.loading.SaeStore`): the caller
says how to load a key and what the loaded value weighs, and this class decides what stays.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from workers.core.errors import InvalidRequestError

__all__ = ["BytesLru"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    value: T
    nbytes: int


class BytesLru(Generic[K, T]):
    """An LRU whose values' total size stays under ``max_bytes``.

    ``get`` is thread-safe; concurrent requests for the same key share one load, and loads of different keys run
    in parallel. Only successful loads are kept. Eviction happens after a load, so memory briefly peaks at
    ``max_bytes`` plus the new value. A value larger than ``max_bytes`` on its own is still kept (refusing it
    would make it unservable) but evicts every other one; it is itself evicted by the next load.
    """

    def __init__(self, max_bytes: int, *, field: str = "max_bytes") -> None:
        if max_bytes <= 0:
            raise InvalidRequestError(f"{field} must be positive", field=field)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._slots: OrderedDict[K, _Slot[T]] = OrderedDict()
        self._load_locks: dict[K, threading.Lock] = {}

    @property
    def keys(self) -> tuple[K, ...]:
        """Keys in memory, least recently used first."""
        with self._lock:
            return tuple(self._slots)

    @property
    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(slot.nbytes for slot in self._slots.values())

    def get(self, key: K, load: Callable[[], tuple[T, int]]) -> T:
        """The value for ``key``, calling ``load() -> (value, its bytes)`` on a miss."""
        with self._lock:
            hit = self._touch(key)
            if hit is not None:
                return hit.value
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                hit = self._touch(key)  # another thread may have loaded it while this one waited
                if hit is not None:
                    return hit.value
            value, nbytes = load()
            with self._lock:
                self._slots[key] = _Slot(value, nbytes)
                self._evict_over_budget(keep=key)
            return value

    def evict(self, key: K) -> bool:
        """Drop ``key`` if loaded; in-flight users keep their reference until they finish."""
        with self._lock:
            return self._slots.pop(key, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)

    def _touch(self, key: K) -> _Slot[T] | None:
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
        return slot

    def _evict_over_budget(self, *, keep: K) -> None:
        total = sum(slot.nbytes for slot in self._slots.values())
        for key in list(self._slots):
            if total <= self._max_bytes:
                break
            if key != keep:
                total -= self._slots.pop(key).nbytes
