"""Attribution patching against gradients taken by TransformerLens's backward hooks on the same weights."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer

from tests.oracles.transformer_lens_oracle import hooked_transformer_from_hf
from tests.unit.workers.core.patching.conftest import CLEAN, CORRUPTED, tiny_hooked
from workers.core.hooked_model import HookedModel
from workers.core.patching import GRANULARITIES, PatchingRequest, run_patching

TOLERANCE = 1e-4
"""Absolute, on first-order estimates of logit differences (values of order 1) of a float32 tiny model."""

SUMS = {
    "resid_pre": "bp d -> bp",
    "attn_out_all_pos": "all",
    "head_out": "heads",
    "head_pattern": "pattern",
    "mlp_out": "bp d -> bp",
    "resid_mid": "bp d -> bp",
}


@pytest.fixture(scope="module")
def tl(gpt2: HookedModel) -> HookedTransformer:
    return hooked_transformer_from_hf(gpt2.model)


def _tl_attribution(
    gpt2: HookedModel, tl: HookedTransformer, site: str, direction: str
) -> tuple[dict[str, torch.Tensor], float]:
    """Per layer, (donor − base) · ∂metric/∂activation from TransformerLens, and the base metric."""
    clean, corrupted = gpt2.tokenize(CLEAN), gpt2.tokenize(CORRUPTED)
    base, donor = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    answer, wrong = gpt2.token_id("b"), gpt2.token_id("a")
    _, donor_cache = tl.run_with_cache(donor)
    grads: dict[str, torch.Tensor] = {}
    activations: dict[str, torch.Tensor] = {}

    def forward_hook(activation: torch.Tensor, hook: object) -> None:
        activations[hook.name] = activation.detach()  # type: ignore[attr-defined]

    def backward_hook(gradient: torch.Tensor, hook: object) -> None:
        grads[hook.name] = gradient.detach()  # type: ignore[attr-defined]

    def chosen(name: str) -> bool:
        return name.endswith(site)

    with tl.hooks(fwd_hooks=[(chosen, forward_hook)], bwd_hooks=[(chosen, backward_hook)]):
        logits = tl(base)
        value = logits[0, -1, answer] - logits[0, -1, wrong]
        value.backward()
    products = {name: ((donor_cache[name] - activations[name]) * grads[name])[0] for name in activations}
    return products, float(value.detach())


@pytest.mark.parametrize("name", list(SUMS))
@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_attribution_equals_transformer_lens_gradients(
    gpt2: HookedModel, tl: HookedTransformer, name: str, direction: str
) -> None:
    site = GRANULARITIES[name].site
    products, base_metric = _tl_attribution(gpt2, tl, site, direction)
    request = PatchingRequest(
        CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=(name,), method="attribution", direction=direction
    )
    result = run_patching(gpt2, request)
    ours = result.target(name).raw - base_metric
    per_layer = [products[f"blocks.{layer}.{site}"] for layer in range(3)]
    if GRANULARITIES[name].axes == ("layer", "position"):
        expected = torch.stack([p.sum(-1) for p in per_layer])
    elif name == "attn_out_all_pos":
        expected = torch.stack([p.sum() for p in per_layer])
    elif name == "head_out":
        expected = torch.stack([p.sum((0, 2)) for p in per_layer])
    else:
        expected = torch.stack([p.sum((1, 2)) for p in per_layer])
    assert ours.shape == expected.shape
    assert (ours - expected.double()).abs().max().item() < TOLERANCE
    assert expected.abs().max().item() > 0.01


def test_attribution_and_exact_agree_where_the_metric_cannot_see_the_patch() -> None:
    """The metric reads only the last position of the last residual: a patch at another position of it has no
    effect, exactly 0 in the estimate (zero gradient) and 0 up to float rounding in exact patching."""
    model = tiny_hooked("llama")
    targets = ("resid_post",)
    exact = run_patching(model, PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=targets))
    attribution = run_patching(
        model, PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=targets, method="attribution")
    )
    last_layer_exact = exact.target("resid_post").raw[-1]
    last_layer_attribution = attribution.target("resid_post").raw[-1]
    assert torch.equal(last_layer_attribution[:-1], torch.full((5,), attribution.corrupted_metric, dtype=torch.float64))
    assert (last_layer_exact[:-1] - exact.corrupted_metric).abs().max().item() < 1e-5
    assert abs(attribution.clean_metric - exact.clean_metric) < TOLERANCE
    assert abs(attribution.corrupted_metric - exact.corrupted_metric) < TOLERANCE
