"""Patching on the real Gemma 3 270M: the IOI pair's known structure, TransformerLens parity at a few points,
and how well attribution patching tracks exact patching."""

from __future__ import annotations

import pytest
import torch

from workers.core.hooked_model import HookedModel
from workers.core.patching import PatchingRequest, PatchingResult, run_patching

pytestmark = pytest.mark.gemma

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"
"""15 tokens each with BOS; they differ at position 10 (the second name)."""


def _request(method: str, targets: tuple[str, ...]) -> PatchingRequest:
    return PatchingRequest(CLEAN, CORRUPTED, answer=" Mary", wrong_answer=" John", targets=targets, method=method)


@pytest.fixture(scope="module")
def exact(gemma: HookedModel) -> PatchingResult:
    return run_patching(gemma, _request("exact", ("resid_pre", "attn_out", "head_out")))


@pytest.fixture(scope="module")
def attribution(gemma: HookedModel) -> PatchingResult:
    return run_patching(gemma, _request("attribution", ("attn_out", "head_out")))


def test_ioi_structure_of_the_residual_stream(exact: PatchingResult) -> None:
    """The second name's position carries the whole effect early; the last position carries it late."""
    assert exact.clean_metric == pytest.approx(5.22, abs=0.01)
    assert exact.corrupted_metric == pytest.approx(-3.61, abs=0.01)
    resid = exact.target("resid_pre").normalised
    assert resid is not None and resid.shape == (18, 15)
    assert resid[0, 10].item() == pytest.approx(1.0, abs=1e-4)  # the only differing token: the whole clean run
    assert torch.all(resid[:, :10] == 0.0)  # identical in both runs before position 10
    assert resid[17, 14].item() == pytest.approx(1.01, abs=0.01)
    assert resid[:9, 10].min().item() > 0.98  # early layers: the name's position
    assert resid[16:, 10].abs().max().item() < 0.05  # late layers: moved to the last position
    assert resid[16:, 14].min().item() > 0.98
    crossing = int(torch.nonzero(resid[:, 14] > resid[:, 10])[0])
    assert 10 <= crossing <= 14  # the hand-over happens in the middle-to-late layers


def test_head_outputs_match_the_known_ioi_heads(exact: PatchingResult) -> None:
    heads = exact.target("head_out").normalised
    assert heads is not None
    assert heads[15, 1].item() == pytest.approx(-0.47, abs=0.02)
    assert heads[11, 3].item() == pytest.approx(0.41, abs=0.02)
    strongest = heads.abs().flatten().topk(6).indices // 4
    assert strongest.min().item() >= 10


@pytest.fixture(scope="module")
def tl_clean_cache(gemma: HookedModel, gemma_tl: object) -> dict[str, torch.Tensor]:
    _, cache = gemma_tl.run_with_cache(  # type: ignore[attr-defined]
        gemma.tokenize(CLEAN), names_filter=lambda name: name.endswith("hook_resid_pre")
    )
    return dict(cache.items())


@pytest.mark.parametrize(("layer", "position"), [(7, 10), (12, 14), (12, 10)])
def test_resid_pre_matches_transformer_lens_at_points(
    gemma: HookedModel,
    gemma_tl: object,
    tl_clean_cache: dict[str, torch.Tensor],
    exact: PatchingResult,
    layer: int,
    position: int,
) -> None:
    """TransformerLens's full sweep takes minutes here (see bench/bench_patching.py); check cells in the middle
    of the hand-over, where both positions matter, with one TransformerLens forward each."""
    tl, cache = gemma_tl, tl_clean_cache
    corrupted = gemma.tokenize(CORRUPTED)
    name = f"blocks.{layer}.hook_resid_pre"

    def patch(activation: torch.Tensor, hook: object) -> torch.Tensor:
        activation[:, position] = cache[name][:, position]
        return activation

    with torch.no_grad():
        logits = tl.run_with_hooks(corrupted, fwd_hooks=[(name, patch)])  # type: ignore[attr-defined]
    expected = float(logits[0, -1, gemma.token_id(" Mary")] - logits[0, -1, gemma.token_id(" John")])
    assert exact.target("resid_pre").raw[layer, position].item() == pytest.approx(expected, abs=1e-3)


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def test_attribution_patching_tracks_exact_patching(exact: PatchingResult, attribution: PatchingResult) -> None:
    """Measured on this pair: Pearson 0.964 over the 72 heads (head_out) and 0.937 over the 270 attention
    outputs by (layer, position). The linear estimate is good for single heads and attention layers, whose
    patches move the residual a little; it is known to fail for big moves (the residual at the swapped name,
    the first MLP: 0.08 and −0.76 here), which is why those are not asserted."""
    assert attribution.clean_metric == pytest.approx(exact.clean_metric, abs=1e-4)
    assert attribution.corrupted_metric == pytest.approx(exact.corrupted_metric, abs=1e-4)
    heads_exact, heads_attr = exact.target("head_out").normalised, attribution.target("head_out").normalised
    attn_exact, attn_attr = exact.target("attn_out").normalised, attribution.target("attn_out").normalised
    assert heads_exact is not None and heads_attr is not None and attn_exact is not None and attn_attr is not None
    assert _correlation(heads_exact, heads_attr) > 0.93
    assert _correlation(attn_exact, attn_attr) > 0.9
    assert heads_attr[15, 1].item() < -0.2 and heads_attr[11, 3].item() > 0.2  # same sign on the top heads
