"""The model pool: one load per id, least recently used out first, total bytes bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import MappingProxyType

import pytest
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.core.errors import InvalidRequestError, UnknownModelError
from workers.core.loading import load_model
from workers.core.model_pool import ModelPool, model_bytes
from workers.core.registry import ModelEntry, RandomSource, Registry


def _entry(model_id: str, n_embd: int) -> ModelEntry:
    config = MappingProxyType({"n_layer": 1, "n_embd": n_embd, "n_head": 2, "n_positions": 32})
    return ModelEntry(id=model_id, source=RandomSource(family="gpt2", seed=0, config=config))


REGISTRY = Registry(models=(_entry("a", 32), _entry("b", 32), _entry("c", 32), _entry("big", 128)))


class CountingLoader:
    """The real loader, counted, optionally slowed so concurrent callers overlap."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(
        self, entry: ModelEntry, *, cache_dir: Path, allow_downloads: bool = False
    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        with self.lock:
            self.calls.append(entry.id)
        time.sleep(self.delay)
        return load_model(entry, cache_dir=cache_dir, allow_downloads=allow_downloads)


def _wrap(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, entry: ModelEntry) -> tuple[str, int]:
    return entry.id, id(model)


def _size(model_id: str, tmp_path: Path) -> int:
    model, _ = load_model(REGISTRY.get(model_id), cache_dir=tmp_path)
    return model_bytes(model)


def test_model_bytes_counts_tied_weights_once(tmp_path: Path) -> None:
    model, _ = load_model(_entry("a", 32), cache_dir=tmp_path)
    unique = {p.data_ptr(): p.numel() * p.element_size() for p in [*model.parameters(), *model.buffers()]}
    assert model_bytes(model) == sum(unique.values())
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight


def test_hits_do_not_reload(tmp_path: Path) -> None:
    loader = CountingLoader()
    pool = ModelPool(REGISTRY, tmp_path, 10**9, _wrap, loader=loader)
    first = pool.get("a")
    assert pool.get("a") is first
    assert first[0] == "a"
    assert loader.calls == ["a"]


def test_unknown_id_is_refused_before_loading(tmp_path: Path) -> None:
    loader = CountingLoader()
    pool = ModelPool(REGISTRY, tmp_path, 10**9, _wrap, loader=loader)
    with pytest.raises(UnknownModelError, match="a, b, c, big"):
        pool.get("zzz")
    assert loader.calls == []


def test_lru_eviction_order_and_byte_bound(tmp_path: Path) -> None:
    small = _size("a", tmp_path)
    loader = CountingLoader()
    pool = ModelPool(REGISTRY, tmp_path, 2 * small, _wrap, loader=loader)
    pool.get("a")
    pool.get("b")
    assert pool.loaded_ids == ("a", "b")
    pool.get("a")  # a is now the most recently used
    assert pool.loaded_ids == ("b", "a")
    pool.get("c")  # over budget: b goes, not a
    assert pool.loaded_ids == ("a", "c")
    assert pool.loaded_bytes == 2 * small <= 2 * small
    pool.get("b")
    assert pool.loaded_ids == ("c", "b")
    assert loader.calls == ["a", "b", "c", "b"]


def test_model_larger_than_budget_loads_alone(tmp_path: Path) -> None:
    small, big = _size("a", tmp_path), _size("big", tmp_path)
    assert big > 2 * small
    pool = ModelPool(REGISTRY, tmp_path, 2 * small, _wrap, loader=CountingLoader())
    pool.get("a")
    pool.get("b")
    assert pool.get("big")[0] == "big"
    assert pool.loaded_ids == ("big",)
    assert pool.loaded_bytes == big
    pool.get("a")  # and the next load evicts it
    assert pool.loaded_ids == ("a",)


def test_concurrent_gets_share_one_load(tmp_path: Path) -> None:
    loader = CountingLoader(delay=0.2)
    pool = ModelPool(REGISTRY, tmp_path, 10**9, _wrap, loader=loader)
    results: list[tuple[str, int]] = []
    barrier = threading.Barrier(6)

    def worker(model_id: str) -> None:
        barrier.wait()
        results.append(pool.get(model_id))

    threads = [threading.Thread(target=worker, args=(mid,)) for mid in ["a", "a", "a", "a", "b", "b"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(loader.calls) == ["a", "b"]
    assert len({r for r in results if r[0] == "a"}) == 1
    assert len(results) == 6


def test_evict_and_clear(tmp_path: Path) -> None:
    pool = ModelPool(REGISTRY, tmp_path, 10**9, _wrap, loader=CountingLoader())
    pool.get("a")
    pool.get("b")
    assert pool.evict("a") is True
    assert pool.evict("a") is False
    assert pool.loaded_ids == ("b",)
    pool.clear()
    assert pool.loaded_ids == ()
    assert pool.loaded_bytes == 0


def test_budget_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError):
        ModelPool(REGISTRY, tmp_path, 0, _wrap)


def test_failed_load_is_not_cached_and_can_be_retried(tmp_path: Path) -> None:
    attempts: list[str] = []

    def flaky(
        entry: ModelEntry, *, cache_dir: Path, allow_downloads: bool = False
    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        attempts.append(entry.id)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return load_model(entry, cache_dir=cache_dir)

    pool = ModelPool(REGISTRY, tmp_path, 10**9, _wrap, loader=flaky)
    with pytest.raises(RuntimeError, match="transient"):
        pool.get("a")
    assert pool.loaded_ids == ()
    assert pool.get("a")[0] == "a"
    assert attempts == ["a", "a"]
