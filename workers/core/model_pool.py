"""Loaded models kept in memory, least recently used first out, bounded by their total size in bytes.

A worker serves several models but cannot hold them all: the pool loads a model on its first request, keeps it
while it is used, and drops the least recently used ones when the total of parameter and buffer bytes goes over
``max_bytes`` (the :class:`~workers.core.lru.BytesLru` the worker's SAEs share). What the pool hands out is
whatever ``wrap`` makes of (model, tokenizer, entry), so the hooked model wrapper plugs in without the pool
knowing it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.core.loading import load_model
from workers.core.lru import BytesLru
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


class ModelPool(Generic[T]):
    """Registry models loaded on first use into a :class:`BytesLru` of ``max_bytes``.

    Concurrent requests for the same id share one load; a model larger than ``max_bytes`` on its own still loads
    but evicts every other model (see :class:`BytesLru`).
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
        self._registry = registry
        self._cache_dir = cache_dir
        self._wrap = wrap
        self._loader = loader
        self._lru: BytesLru[str, T] = BytesLru(max_bytes)

    @property
    def loaded_ids(self) -> tuple[str, ...]:
        """Ids in memory, least recently used first."""
        return self._lru.keys

    @property
    def loaded_bytes(self) -> int:
        return self._lru.loaded_bytes

    def get(self, model_id: str) -> T:
        """The wrapped model for ``model_id``, loading it on a miss; ``UnknownModelError`` for unserved ids."""
        entry = self._registry.get(model_id)

        def load() -> tuple[T, int]:
            model, tokenizer = self._loader(
                entry, cache_dir=self._cache_dir, allow_downloads=self._registry.allow_downloads
            )
            return self._wrap(model, tokenizer, entry), model_bytes(model)

        return self._lru.get(model_id, load)

    def evict(self, model_id: str) -> bool:
        """Drop ``model_id`` if loaded; in-flight users keep their reference until they finish."""
        return self._lru.evict(model_id)

    def clear(self) -> None:
        self._lru.clear()
