"""Saliency, input × gradient and integrated gradients over the embeddings, against Captum on the HF modules."""

from __future__ import annotations

import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients, LayerIntegratedGradients, Saliency

from tests.unit.workers.core.attribution.conftest import (
    CONTRAST,
    PROMPT,
    close_to_largest,
    embedding_module,
    embeds_forward,
    ids_forward,
)
from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.core.attribution.embeddings import baseline_tokens
from workers.core.hooked_model import HookedModel


def _request(method: str, **options: object) -> AttributionRequest:
    return AttributionRequest(PROMPT, TargetSpec(contrast=CONTRAST), method, AttributionOptions(**options))  # type: ignore[arg-type]


def _embeds(model: HookedModel) -> torch.Tensor:
    return embedding_module(model)(model.tokenize(PROMPT)).detach()


def test_saliency_equals_captum_gradient_norm(tiny: HookedModel) -> None:
    result = run_attribution(tiny, _request("saliency"))
    grads = Saliency(embeds_forward(tiny)).attribute(_embeds(tiny), abs=False)
    close_to_largest(result.scores, grads[0].norm(dim=-1))  # type: ignore[arg-type]


def test_input_x_gradient_equals_captum(tiny: HookedModel) -> None:
    result = run_attribution(tiny, _request("input_x_gradient"))
    expected = InputXGradient(embeds_forward(tiny)).attribute(_embeds(tiny))
    close_to_largest(result.scores, expected[0].sum(-1))  # type: ignore[arg-type]


def test_target_value_is_the_model_logit_difference(tiny: HookedModel) -> None:
    result = run_attribution(tiny, _request("saliency"))
    expected = float(ids_forward(tiny)(tiny.tokenize(PROMPT)).detach()[0])
    assert result.target.value == pytest.approx(expected, abs=1e-5)
    assert result.target.token_ids == tuple(tiny.token_id(t) for t in CONTRAST)


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_middle", "riemann_left"])
def test_integrated_gradients_zero_baseline_equals_captum(tiny: HookedModel, rule: str) -> None:
    result = run_attribution(tiny, _request("integrated_gradients", n_steps=24, step_rule=rule, baseline="zero"))
    embeds = _embeds(tiny)
    expected, delta = IntegratedGradients(embeds_forward(tiny)).attribute(
        embeds, baselines=torch.zeros_like(embeds), n_steps=24, method=rule, return_convergence_delta=True
    )
    close_to_largest(result.scores, expected[0].sum(-1))  # type: ignore[arg-type]
    assert result.completeness is not None
    assert result.completeness.delta == pytest.approx(float(delta), rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("baseline", ["pad", "bos"])
def test_integrated_gradients_token_baseline_equals_captum_layer_ig(tiny: HookedModel, baseline: str) -> None:
    """Captum's LayerIntegratedGradients on the embedding module, with the baseline prompt's ids (BOS kept)."""
    result = run_attribution(tiny, _request("integrated_gradients", n_steps=20, baseline=baseline))
    tokens = tiny.tokenize(PROMPT)
    expected = LayerIntegratedGradients(ids_forward(tiny), embedding_module(tiny)).attribute(
        tokens, baselines=baseline_tokens(tiny, tokens, baseline), n_steps=20
    )
    close_to_largest(result.scores, expected[0].sum(-1))  # type: ignore[arg-type]
    assert result.scores is not None
    assert float(result.scores[0]) == 0.0  # BOS is kept, so it has no path and no attribution


def test_steps_in_small_batches_equal_one_batch(gpt2: HookedModel) -> None:
    whole = run_attribution(gpt2, _request("integrated_gradients", n_steps=30))
    chunked = run_attribution(gpt2, _request("integrated_gradients", n_steps=30, internal_batch_size=7))
    close_to_largest(chunked.scores, whole.scores, 1e-6)  # type: ignore[arg-type]


def test_trapezoid_weights_sum_to_one_unlike_captums(gpt2: HookedModel) -> None:
    """Captum weights n trapezoid points by 1/n (summing to (n−1)/n); ours by 1/(n−1), so ours = Captum · n/(n−1)."""
    n = 16
    request = _request("integrated_gradients", n_steps=n, step_rule="riemann_trapezoid", baseline="zero")
    result = run_attribution(gpt2, request)
    embeds = _embeds(gpt2)
    captum = IntegratedGradients(embeds_forward(gpt2)).attribute(
        embeds, baselines=torch.zeros_like(embeds), n_steps=n, method="riemann_trapezoid"
    )
    close_to_largest(result.scores, captum[0].sum(-1) * n / (n - 1))  # type: ignore[arg-type]


def test_completeness_converges_with_steps(gpt2: HookedModel) -> None:
    few = run_attribution(gpt2, _request("integrated_gradients", n_steps=2, baseline="pad"))
    many = run_attribution(gpt2, _request("integrated_gradients", n_steps=64, baseline="pad"))
    assert few.completeness is not None and many.completeness is not None
    assert many.completeness.relative_error < 1e-4
    assert many.completeness.relative_error < few.completeness.relative_error
    assert many.completeness.attribution_sum == pytest.approx(many.completeness.expected, rel=1e-4)


def test_logprob_target_equals_captum(gpt2: HookedModel) -> None:
    target = TargetSpec(token="a", kind="logprob", position=5)
    request = AttributionRequest(PROMPT, target, "input_x_gradient")
    result = run_attribution(gpt2, request)
    a = gpt2.token_id("a")

    def forward(embeds: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(gpt2.model(inputs_embeds=embeds).logits[:, 5], -1)[:, a]

    embeds = _embeds(gpt2)
    close_to_largest(result.scores, InputXGradient(forward).attribute(embeds)[0].sum(-1))  # type: ignore[arg-type]
    assert result.target.value == pytest.approx(float(forward(embeds)[0]), abs=1e-5)
    assert result.target.position == 5
