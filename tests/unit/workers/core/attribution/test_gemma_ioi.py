"""Properties of attribution on Gemma 3 270M's IOI prompt, measured once and explained here.

Prompt "When Mary and John went to the store, John gave a drink to" (15 tokens with BOS), target
logit(" Mary") − logit(" John") at the last position, which is 5.22 on the clean prompt (reference facts).
"""

from __future__ import annotations

import pytest

from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.core.attribution.results import AttributionResult
from workers.core.hooked_model import HookedModel

pytestmark = pytest.mark.gemma

IOI = "When Mary and John went to the store, John gave a drink to"
TARGET = TargetSpec(contrast=(" Mary", " John"))


def _run(gemma: HookedModel, method: str, **options: object) -> AttributionResult:
    return run_attribution(gemma, AttributionRequest(IOI, TARGET, method, AttributionOptions(**options)))  # type: ignore[arg-type]


def _argmax_abs(result: AttributionResult) -> tuple[int, str]:
    assert result.scores is not None
    position = int(result.scores.abs().argmax())
    return position, result.tokens[position]


def test_input_attribution_points_at_the_names(gemma: HookedModel) -> None:
    """Measured: the gradient is largest at the first " Mary" (position 2, norm 1.43; BOS next at 1.01); integrated
    gradients from the pad baseline put the largest attribution on the repeated " John" (position 10, −4.9), the
    token that decides which name is the indirect object, with completeness off by 1.7% at 50 Gauss-Legendre steps
    (the integrand is rough: 65% at 16 steps, 6% at 24, 0.3% at 100; Captum's convergence delta is the same).
    """
    saliency = _run(gemma, "saliency")
    assert saliency.target.value == pytest.approx(5.22, abs=0.01)
    assert _argmax_abs(saliency) == (2, " Mary")

    ig = _run(gemma, "integrated_gradients", n_steps=50, baseline="pad")
    assert _argmax_abs(ig) == (10, " John")
    assert ig.completeness is not None
    assert ig.completeness.relative_error < 0.03
    assert ig.completeness.attribution_sum == pytest.approx(ig.completeness.expected, rel=0.03)


def test_direct_logit_attribution_finds_the_name_mover_heads(gemma: HookedModel) -> None:
    """Measured: L11H3 (+4.37) and L12H1 (+3.68) write " Mary" − " John" directly; L15H1 (−2.62) pushes back, as
    head patching on this prompt also ranks L11H3 positive and L15H1 negative (reference facts). Layers 0–10 add
    almost nothing directly. With every norm scale frozen the components sum to the logit difference to 2e-6."""
    result = _run(gemma, "direct_logit_attribution")
    components = result.grids["components"]
    pairs = zip(components.values.tolist(), components.labels["component"], strict=True)
    ranked = sorted(pairs, key=lambda pair: -abs(pair[0]))
    assert [label for _, label in ranked[:3]] == ["L11H3", "L12H1", "L15H1"]
    assert ranked[0][0] > 4.0 and ranked[2][0] < -2.0
    layers = result.grids["layers"].values
    assert float(layers[:11].abs().max()) < 0.2
    assert result.decomposition is not None
    assert abs(result.decomposition.residual_error) < 1e-3


def test_logit_lens_ranks_mary_first_from_layer_13(gemma: HookedModel) -> None:
    """Measured: " Mary" is far down the ranking until layer 12's residual (rank 6100), first from the residual
    entering layer 13 (probability 0.97), right after the name movers of layers 11–12, and stays first to the end."""
    result = _run(gemma, "logit_lens", top_k=3)
    ranks = [layer.targets[0].rank for layer in result.lens]
    first = ranks.index(1)
    assert result.lens[first].hook == "blocks.13.hook_resid_pre"
    assert all(rank == 1 for rank in ranks[first:])
    assert result.lens[first - 1].targets[0].rank > 100
    assert result.lens[-1].top_k[0].token == " Mary"
