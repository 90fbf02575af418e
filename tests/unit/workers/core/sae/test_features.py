"""Where a feature fires, and its decoder direction's direct logit effects (formula oracle)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.unit.workers.core.sae.tiny import HOOK, tiny_hooked, tiny_sae
from workers.core.errors import InvalidRequestError
from workers.core.sae.features import (
    FeatureActivationsRequest,
    FeatureLogitEffectsRequest,
    feature_activations,
    feature_logit_effects,
)


def test_feature_activations_are_the_encode_column(tmp_path: Path) -> None:
    model = tiny_hooked("gpt2")
    sae = tiny_sae(tmp_path, model, "jumprelu")
    tokens = model.tokenize("feature fires here")
    act = model.run(tokens, cache=[HOOK], logits="none").cache[HOOK][0]
    column = sae.encode(act)
    feature = int((column != 0).sum(0).argmax())  # the feature that fires most often
    result = feature_activations(model, sae, FeatureActivationsRequest(prompt="feature fires here", feature=feature))
    torch.testing.assert_close(torch.tensor(result.activations), column[:, feature], atol=1e-5, rtol=0)
    assert result.max_position == int(column[:, feature].argmax())
    assert result.tokens == tuple(model.token_strings(tokens))
    assert (result.sae, result.hook, result.feature) == ("rand", HOOK, feature)


@pytest.mark.parametrize("family", ["gpt2", "gemma3"])
def test_logit_effects_are_the_direction_through_norm_gain_and_unembedding(tmp_path: Path, family: str) -> None:
    model = tiny_hooked(family)
    sae = tiny_sae(tmp_path, model, "standard")
    result = feature_logit_effects(model, sae, FeatureLogitEffectsRequest(feature=5, top_n=4))
    d = sae.W_dec[5]
    hf = model.model
    if family == "gpt2":
        centred = d - d.mean()
        expected = hf.lm_head.weight @ (centred * hf.transformer.ln_f.weight)
    else:
        expected = hf.lm_head.weight @ (d * (1 + hf.model.norm.weight))
    top = expected.topk(4)
    assert [e.token_id for e in result.promoted] == top.indices.tolist()
    assert [e.effect for e in result.promoted] == pytest.approx(top.values.tolist(), abs=1e-4)
    bottom = (-expected).topk(4)
    assert [e.token_id for e in result.suppressed] == bottom.indices.tolist()
    assert [e.effect for e in result.suppressed] == pytest.approx((-bottom.values).tolist(), abs=1e-4)
    assert result.promoted[0].token == model.token_strings([top.indices[0]])[0]


def test_top_n_out_of_range(tmp_path: Path) -> None:
    model = tiny_hooked("gpt2")
    sae = tiny_sae(tmp_path, model)
    with pytest.raises(InvalidRequestError) as info:
        feature_logit_effects(model, sae, FeatureLogitEffectsRequest(feature=0, top_n=0))
    assert info.value.field == "top_n"
