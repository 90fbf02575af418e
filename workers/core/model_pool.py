"""Loaded models kept in memory, least recently used first out, bounded by their total size in bytes.

A worker serves several models but cannot hold them all: the pool loads a model on its first request, keeps it
while it is used, and drops the least recently used ones when the total of parameter and buffer bytes goes over
``max_bytes``. What the pool hands out is whatever ``wrap`` makes of (model, tokenizer, entry), so the hooked
model wrapper plugs in without the pool knowing it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.core.errors import InvalidRequestError
from workers.core.loading import load_model
from workers.core.registry import ModelEntry, Registry

__all__ = ["Loader", "ModelPool", "model_bytes"]

T = TypeVar("T")


class Loader(Protocol):
    """The signature of :func:`workers.core.loading.load_model`, so tests can count or fake loads."""

    def __call__(
        self, entry: ModelEntry, *, cache_dir: Path, allow_downloads: bool = ...
    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]: ...


def model_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers; tied weights count once."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class _Slot(Generic[T]):
    value: T
    nbytes: int


class ModelPool(Generic[T]):
    """An LRU of loaded models whose total size stays under ``max_bytes``.

    ``get`` is thread-safe; concurrent requests for the same id share one load, and loads of different ids run in
    parallel. Eviction happens after a load, so memory briefly peaks at ``max_bytes`` plus the new model. A model
    larger than ``max_bytes`` on its own still loads (refusing it would make it unservable) but evicts every
    other model; it is itself evicted by the next load.
    """

    def __init__(
        self,
        registry: Registry,
        cache_dir: Path,
        max_bytes: int,
        wrap: Callable[[PreTrainedModel, PreTrainedTokenizerBase, ModelEntry], T],
        *,
        loader: Loader = load_model,
    ) -> None:
        if max_bytes <= 0:
            raise InvalidRequestError("max_bytes must be positive", field="max_bytes")
        self._registry = registry
        self._cache_dir = cache_dir
        self._max_bytes = max_bytes
        self._wrap = wrap
        self._loader = loader
        self._lock = threading.Lock()
        self._slots: OrderedDict[str, _Slot[T]] = OrderedDict()
        self._load_locks: dict[str, threading.Lock] = {}

    @property
    def loaded_ids(self) -> tuple[str, ...]:
        """Ids in memory, least recently used first."""
        with self._lock:
            return tuple(self._slots)

    @property
    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(slot.nbytes for slot in self._slots.values())

    def get(self, model_id: str) -> T:
        """The wrapped model for ``model_id``, loading it on a miss; ``UnknownModelError`` for unserved ids."""
        entry = self._registry.get(model_id)
        with self._lock:
            hit = self._touch(model_id)
            if hit is not None:
                return hit.value
            load_lock = self._load_locks.setdefault(model_id, threading.Lock())
        with load_lock:
            with self._lock:
                hit = self._touch(model_id)  # another thread may have loaded it while this one waited
                if hit is not None:
                    return hit.value
            model, tokenizer = self._loader(
                entry, cache_dir=self._cache_dir, allow_downloads=self._registry.allow_downloads
            )
            slot = _Slot(self._wrap(model, tokenizer, entry), model_bytes(model))
            with self._lock:
                self._slots[model_id] = slot
                self._evict_over_budget(keep=model_id)
            return slot.value

    def evict(self, model_id: str) -> bool:
        """Drop ``model_id`` if loaded; in-flight users keep their reference until they finish."""
        with self._lock:
            return self._slots.pop(model_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()

    def _touch(self, model_id: str) -> _Slot[T] | None:
        slot = self._slots.get(model_id)
        if slot is not None:
            self._slots.move_to_end(model_id)
        return slot

    def _evict_over_budget(self, *, keep: str) -> None:
        total = sum(slot.nbytes for slot in self._slots.values())
        for model_id in list(self._slots):
            if total <= self._max_bytes:
                break
            if model_id != keep:
                total -= self._slots.pop(model_id).nbytes
