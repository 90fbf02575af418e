"""The default SAE of Gemma 3 270M: it loads from the registry, reproduces its measured quality, and steers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workers.core.hooked_model import HookedModel
from workers.core.registry import Registry
from workers.core.sae.autoencoder import Sae
from workers.core.sae.encode import SaeEncodeRequest, encode_sae
from workers.core.sae.features import FeatureLogitEffectsRequest, feature_logit_effects
from workers.core.sae.loading import load_registered_sae
from workers.core.steering import SteerRequest, steer

pytestmark = pytest.mark.gemma

SAE_ID = "res-6"
FIGURE_TOL = 2e-3  # same float32 weights; the script splices with its own code, batched differently


@pytest.fixture(scope="module")
def default_sae(gemma: HookedModel) -> Sae:
    return load_registered_sae(Registry.default().get("gemma-3-270m"), SAE_ID, model_facts=gemma.facts)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    entry = Registry.default().get("gemma-3-270m").get_sae(SAE_ID)
    assert entry.path is not None
    data: dict[str, Any] = json.loads((entry.path / "quality.json").read_text())
    return data


def test_default_sae_reproduces_its_measured_quality(
    gemma: HookedModel, default_sae: Sae, report: dict[str, Any]
) -> None:
    request = SaeEncodeRequest(prompts=tuple(report["probe_prompts"]), top_k=5, include_loss=True)
    result = encode_sae(gemma, default_sae, request)
    probe = report["probe"]
    assert result.reconstruction.tokens == probe["tokens"]
    assert result.reconstruction.explained_variance == pytest.approx(probe["explained_variance"], abs=FIGURE_TOL)
    assert result.reconstruction.mse == pytest.approx(probe["mse"], rel=FIGURE_TOL)
    assert result.loss is not None
    assert result.loss.clean_loss == pytest.approx(probe["ce_loss_clean"], abs=FIGURE_TOL)
    assert result.loss.sae_loss == pytest.approx(probe["ce_loss_with_sae"], abs=FIGURE_TOL)
    assert result.loss.loss_recovered == pytest.approx(probe["loss_recovered"], abs=FIGURE_TOL)
    l0 = [n for p in result.prompts for n in p.l0[1:]]
    assert sum(l0) / len(l0) == pytest.approx(probe["l0"], abs=1e-6)
    # And the SAE is a useful one: the held-out figures the script measured.
    heldout = report["heldout"]
    assert heldout["explained_variance"] > 0.6
    assert heldout["loss_recovered"] > 0.6


def test_steering_with_an_interpretable_feature_changes_the_generation(
    gemma: HookedModel, default_sae: Sae, report: dict[str, Any]
) -> None:
    feature = report["interpretable_features"][0]
    effects = feature_logit_effects(gemma, default_sae, FeatureLogitEffectsRequest(feature=feature["feature"]))
    assert len(effects.promoted) == 10
    request = SteerRequest(
        prompt="My favourite thing to do on a Sunday is", feature=feature["feature"], coefficient=200.0,
        max_new_tokens=8,
    )
    result = steer(gemma, default_sae, request)
    assert result.steered_text != result.unsteered_text
