"""Direct logit attribution and the logit lens against TransformerLens on the same weights (no processing).

TransformerLens without ``fold_ln`` leaves the final norm's weight out of ``apply_ln_to_stack``; the oracle
multiplies it back in, then projects on ``W_U[:, a] − W_U[:, b]``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.oracles.transformer_lens_oracle import hooked_transformer_from_hf
from tests.unit.workers.core.attribution.conftest import CONTRAST, PROMPT, hooked
from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.core.hooked_model import HookedModel


@pytest.fixture(scope="module")
def gpt2_tl(gpt2: HookedModel) -> tuple[HookedModel, Any, Any]:
    tl = hooked_transformer_from_hf(gpt2.model)
    _, cache = tl.run_with_cache(gpt2.tokenize(PROMPT))
    return gpt2, tl, cache


def _direction(model: HookedModel, tl: Any) -> torch.Tensor:
    a, b = (model.token_id(t) for t in CONTRAST)
    return tl.W_U[:, a] - tl.W_U[:, b]


def _dla(model: HookedModel, **target: Any) -> Any:
    spec = TargetSpec(**target) if target else TargetSpec(contrast=CONTRAST)
    return run_attribution(model, AttributionRequest(PROMPT, spec, "direct_logit_attribution"))


def test_head_contributions_equal_transformer_lens(gpt2_tl: tuple[HookedModel, Any, Any]) -> None:
    model, tl, cache = gpt2_tl
    stack = cache.stack_head_results(layer=-1, pos_slice=-1)
    normed = cache.apply_ln_to_stack(stack, layer=-1, pos_slice=-1) * tl.ln_final.w
    expected = (normed @ _direction(model, tl))[:, 0].reshape(model.facts.n_layers, model.facts.n_heads)
    heads = _dla(model).grids["heads"]
    assert heads.axes == ("layer", "head")
    torch.testing.assert_close(heads.values, expected.float(), atol=1e-5, rtol=0)


def test_embeddings_and_mlps_equal_transformer_lens(gpt2_tl: tuple[HookedModel, Any, Any]) -> None:
    model, tl, cache = gpt2_tl
    stack, labels = cache.decompose_resid(layer=-1, pos_slice=-1, return_labels=True)
    normed = cache.apply_ln_to_stack(stack, layer=-1, pos_slice=-1) * tl.ln_final.w
    expected = dict(zip(labels, (normed @ _direction(model, tl))[:, 0].tolist(), strict=True))
    components = _dla(model).grids["components"]
    ours = dict(zip(components.labels["component"], components.values.tolist(), strict=True))
    assert ours["embed"] == pytest.approx(expected["embed"], abs=1e-5)
    assert ours["pos_embed"] == pytest.approx(expected["pos_embed"], abs=1e-5)
    for layer in range(model.facts.n_layers):
        assert ours[f"L{layer} mlp"] == pytest.approx(expected[f"{layer}_mlp_out"], abs=1e-5)
        attention = sum(ours[f"L{layer}H{h}"] for h in range(model.facts.n_heads)) + ours[f"L{layer} attn_bias"]
        assert attention == pytest.approx(expected[f"{layer}_attn_out"], abs=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2", "gemma3"])
def test_components_sum_to_the_target(family: str) -> None:
    """With every norm scale frozen the decomposition is linear: the error is float rounding (Gemma 2 caps its
    logits at 30 with tanh, so there the sum is the logit before the cap, and the cap is the residual error)."""
    model = hooked(family)
    for target in ({"contrast": CONTRAST}, {"token": "a", "position": 4}, {"token": "b", "kind": "logprob"}):
        result = _dla(model, **target)
        check = result.decomposition
        assert check is not None
        if family == "gemma2":
            assert any("caps its logits" in warning for warning in result.warnings)
            if target == {"token": "a", "position": 4}:
                cap = model.model.config.final_logit_softcapping
                uncapped = cap * torch.atanh(torch.tensor(check.target_value / cap))
                assert check.component_sum == pytest.approx(float(uncapped), abs=1e-4)
            continue
        assert abs(check.residual_error) < 1e-4, (target, check)


def test_gemma_heads_pass_through_the_post_attention_norm() -> None:
    """Gemma's head outputs go through a post-attention RMSNorm before the residual: frozen, they sum to it."""
    model = hooked("gemma3")
    components = _dla(model).grids["components"]
    ours = dict(zip(components.labels["component"], components.values.tolist(), strict=True))
    attn = _dla(model).grids["layers"].values[:, 0]
    for layer in range(model.facts.n_layers):
        assert attn[layer] == pytest.approx(sum(ours[f"L{layer}H{h}"] for h in range(model.facts.n_heads)), abs=1e-5)
    assert "L0 attn_bias" not in ours


def test_logit_lens_equals_transformer_lens(gpt2_tl: tuple[HookedModel, Any, Any]) -> None:
    model, tl, cache = gpt2_tl
    resid, _ = cache.accumulated_resid(layer=-1, pos_slice=-1, return_labels=True)
    normed = cache.apply_ln_to_stack(resid, layer=-1, pos_slice=-1, recompute_ln=True)
    logits = (normed @ tl.W_U + tl.b_U)[:, 0].detach()
    a, b = (model.token_id(t) for t in CONTRAST)
    request = AttributionRequest(PROMPT, TargetSpec(contrast=CONTRAST), "logit_lens", AttributionOptions(top_k=5))
    result = run_attribution(model, request)
    assert result.grids["value"].labels["layer"][0] == "blocks.0.hook_resid_pre"
    assert result.grids["value"].labels["layer"][-1] == "blocks.2.hook_resid_post"
    torch.testing.assert_close(result.grids["value"].values, (logits[:, a] - logits[:, b]).float(), atol=1e-5, rtol=0)
    probs = torch.softmax(logits, -1)
    for index, layer in enumerate(result.lens):
        assert [t.token_id for t in layer.top_k] == torch.topk(probs[index], 5).indices.tolist()
        expected = torch.topk(probs[index], 5).values.tolist()
        assert [t.probability for t in layer.top_k] == pytest.approx(expected, abs=1e-6)
        for token in layer.targets:
            assert token.rank == int((logits[index] > logits[index, token.token_id]).sum()) + 1
            assert token.probability == pytest.approx(float(probs[index, token.token_id].detach()), abs=1e-6)
    # the last entry is the model's own output
    assert result.lens[-1].value == pytest.approx(result.target.value, abs=1e-6)
