"""Loaded SAEs: a byte-bounded LRU shared in mechanism with the model pool; widths read from cfg.json alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.workers.core.sae.random_saes import write_random_sae
from tests.unit.workers.core.sae.tiny import HOOK, tiny_hooked
from workers.core.errors import InvalidRequestError, UnknownSaeError
from workers.core.hooked_model import HookedModel
from workers.core.registry import ModelEntry, RandomSource, SaeEntry
from workers.core.sae.formats import SAE_WEIGHTS_FILENAME
from workers.core.sae.loading import SaeStore, sae_bytes, sae_width


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return tiny_hooked("gpt2")


def _model_entry(tmp_path: Path, *sae_ids: str, d_sae: int = 96) -> ModelEntry:
    for seed, sae_id in enumerate(sae_ids):
        write_random_sae(tmp_path / sae_id, "standard", seed=seed, d_in=64, d_sae=d_sae)
    saes = tuple(SaeEntry(id=s, hook=HOOK, path=tmp_path / s) for s in sae_ids)
    return ModelEntry(id="tiny", source=RandomSource(family="gpt2", seed=0), saes=saes)


def test_sae_bytes_counts_every_tensor(tmp_path: Path, model: HookedModel) -> None:
    entry = _model_entry(tmp_path, "a")
    sae = SaeStore(max_bytes=2**30).get(entry, "a", model_facts=model.facts)
    # standard: W_enc [64, 96], b_enc [96], W_dec [96, 64], b_dec [64], float32
    assert sae_bytes(sae) == 4 * (64 * 96 + 96 + 96 * 64 + 64)


def test_hits_return_the_same_sae_and_the_total_stays_under_the_bound(tmp_path: Path, model: HookedModel) -> None:
    entry = _model_entry(tmp_path, "a", "b", "c")
    one = 4 * (64 * 96 + 96 + 96 * 64 + 64)
    store = SaeStore(max_bytes=2 * one)
    a = store.get(entry, "a", model_facts=model.facts)
    assert store.get(entry, "a", model_facts=model.facts) is a
    store.get(entry, "b", model_facts=model.facts)
    store.get(entry, "a", model_facts=model.facts)  # a is now the most recently used
    store.get(entry, "c", model_facts=model.facts)  # over the bound: b goes, not a
    assert store.loaded == (("tiny", "a"), ("tiny", "c"))
    assert store.loaded_bytes == 2 * one and len(store) == 2
    assert store.get(entry, "a", model_facts=model.facts) is a
    reloaded = store.get(entry, "b", model_facts=model.facts)
    assert reloaded.id == "b" and store.loaded == (("tiny", "a"), ("tiny", "b"))


def test_an_sae_larger_than_the_bound_is_served_alone(tmp_path: Path, model: HookedModel) -> None:
    entry = _model_entry(tmp_path, "a", "b")
    store = SaeStore(max_bytes=1)
    assert store.get(entry, "a", model_facts=model.facts).id == "a"
    store.get(entry, "b", model_facts=model.facts)
    assert store.loaded == (("tiny", "b"),)


def test_unknown_ids_load_nothing_and_the_bound_must_be_positive(tmp_path: Path, model: HookedModel) -> None:
    entry = _model_entry(tmp_path, "a")
    store = SaeStore(max_bytes=2**30)
    with pytest.raises(UnknownSaeError, match="served: a"):
        store.get(entry, "zzz", model_facts=model.facts)
    assert len(store) == 0
    with pytest.raises(InvalidRequestError):
        SaeStore(max_bytes=0)


def test_sae_width_reads_cfg_json_only(tmp_path: Path) -> None:
    write_random_sae(tmp_path / "a", "topk", d_in=64, d_sae=80)
    (tmp_path / "a" / SAE_WEIGHTS_FILENAME).write_bytes(b"not read")
    assert sae_width(SaeEntry(id="a", hook=HOOK, path=tmp_path / "a")) == 80
    assert sae_width(SaeEntry(id="gone", hook=HOOK, path=tmp_path / "gone")) is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cfg.json").write_text('{"d_sae": "wide"}')
    assert sae_width(SaeEntry(id="bad", hook=HOOK, path=tmp_path / "bad")) is None
    hub = SaeEntry(id="hub", hook=HOOK, repo="nobody/no-such-sae", revision="0" * 40)
    assert sae_width(hub, allow_downloads=False, cache_dir=tmp_path / "hub") is None
