"""Bad SAEs and bad requests raise CoreErrors with a field, and a failed load leaves nothing cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.workers.core.sae.random_saes import write_random_sae
from tests.unit.workers.core.sae.tiny import tiny_hooked, tiny_sae
from workers.core.errors import (
    InvalidRequestError,
    SaeFormatError,
    ShapeMismatchError,
    UnknownHookError,
    UnknownSaeError,
)
from workers.core.hooked_model import HookedModel
from workers.core.registry import ModelEntry, RandomSource, SaeEntry
from workers.core.sae.autoencoder import Sae
from workers.core.sae.encode import SaeEncodeRequest, encode_sae
from workers.core.sae.features import FeatureActivationsRequest, feature_activations
from workers.core.sae.formats import SAE_WEIGHTS_FILENAME
from workers.core.sae.loading import SaeStore, load_sae
from workers.core.steering import SteerRequest, steer


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return tiny_hooked("gpt2")


def _entry(directory: Path, hook: str = "blocks.1.hook_resid_post", sae_id: str = "rand") -> SaeEntry:
    return SaeEntry(id=sae_id, hook=hook, path=directory)


def test_d_in_that_does_not_match_the_hook_width(tmp_path: Path, model: HookedModel) -> None:
    write_random_sae(tmp_path, "standard", d_in=32)
    with pytest.raises(ShapeMismatchError, match=r"d_in 32.*64") as info:
        load_sae(_entry(tmp_path), model_facts=model.facts)
    assert info.value.field == "sae"


def test_hook_the_model_lacks(tmp_path: Path, model: HookedModel) -> None:
    write_random_sae(tmp_path, "standard", d_in=64, hook_name="blocks.7.hook_resid_post")
    with pytest.raises(UnknownHookError, match=r"layers 0\.\.2") as info:
        load_sae(_entry(tmp_path, hook="blocks.7.hook_resid_post"), model_facts=model.facts)
    assert info.value.field == "sae"
    # An SAE built by hand for a missing hook is refused by encode too.
    cfg_sae = tiny_sae(tmp_path / "ok", model)
    from dataclasses import replace

    bad = Sae(id="bad", cfg=replace(cfg_sae.cfg, hook_name="blocks.9.hook_resid_post"), tensors=cfg_sae.tensors)
    with pytest.raises(UnknownHookError):
        encode_sae(model, bad, SaeEncodeRequest.single("x"))


def test_registry_hook_must_match_the_config(tmp_path: Path, model: HookedModel) -> None:
    write_random_sae(tmp_path, "standard", d_in=64)
    with pytest.raises(SaeFormatError, match=r"listed at blocks\.0\.hook_resid_post"):
        load_sae(_entry(tmp_path, hook="blocks.0.hook_resid_post"), model_facts=model.facts)


def test_unknown_sae_id_lists_the_model_saes(tmp_path: Path, model: HookedModel) -> None:
    entry = ModelEntry(
        id="tiny",
        source=RandomSource(family="gpt2", seed=0),
        saes=(_entry(tmp_path, sae_id="res-1"), _entry(tmp_path, sae_id="res-2")),
    )
    with pytest.raises(UnknownSaeError, match="res-1, res-2") as info:
        SaeStore(max_bytes=2**30).get(entry, "res-9", model_facts=model.facts)
    assert info.value.field == "sae"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_corrupt_or_truncated_weights_are_refused_and_not_cached(
    tmp_path: Path, model: HookedModel, damage: str
) -> None:
    write_random_sae(tmp_path, "topk", d_in=64)
    weights = tmp_path / SAE_WEIGHTS_FILENAME
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json" + data[16:])
    else:
        weights.unlink()
    entry = ModelEntry(id="tiny", source=RandomSource(family="gpt2", seed=0), saes=(_entry(tmp_path),))
    store = SaeStore(max_bytes=2**30)
    with pytest.raises(SaeFormatError, match=r"safetensors|missing") as info:
        store.get(entry, "rand", model_facts=model.facts)
    assert info.value.field == "sae"
    assert len(store) == 0
    # Repaired files load on the next request: nothing stale was kept.
    weights.unlink(missing_ok=True)
    write_random_sae(tmp_path, "topk", d_in=64)
    assert store.get(entry, "rand", model_facts=model.facts).d_sae == 48
    assert len(store) == 1


def test_weights_that_disagree_with_the_config(tmp_path: Path, model: HookedModel) -> None:
    write_random_sae(tmp_path, "standard", d_in=64)
    cfg = (tmp_path / "cfg.json").read_text().replace('"d_sae": 48', '"d_sae": 40')
    (tmp_path / "cfg.json").write_text(cfg)
    with pytest.raises(SaeFormatError, match="shape"):
        load_sae(_entry(tmp_path), model_facts=model.facts)


def test_unknown_architecture_lists_the_known_ones(tmp_path: Path, model: HookedModel) -> None:
    write_random_sae(tmp_path, "standard", d_in=64)
    cfg = (tmp_path / "cfg.json").read_text().replace('"standard"', '"matryoshka"')
    (tmp_path / "cfg.json").write_text(cfg)
    with pytest.raises(SaeFormatError, match="standard, topk, jumprelu, gated"):
        load_sae(_entry(tmp_path), model_facts=model.facts)


@pytest.mark.parametrize("feature", [-1, 96, 10_000])
def test_feature_id_out_of_range(tmp_path: Path, model: HookedModel, feature: int) -> None:
    sae = tiny_sae(tmp_path, model)
    with pytest.raises(InvalidRequestError, match=r"0\.\.95") as info:
        feature_activations(model, sae, FeatureActivationsRequest(prompt="x", feature=feature))
    assert info.value.field == "feature"
    with pytest.raises(InvalidRequestError) as info:
        steer(model, sae, SteerRequest(prompt="x", feature=feature, coefficient=1.0))
    assert info.value.field == "feature"
