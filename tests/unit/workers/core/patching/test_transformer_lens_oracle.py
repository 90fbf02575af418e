"""Exact patching against TransformerLens's ``patching.get_act_patch_*`` on the same tiny GPT-2 weights."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
import torch
from transformer_lens import HookedTransformer, patching

from tests.oracles.transformer_lens_oracle import hooked_transformer_from_hf
from tests.unit.workers.core.patching.conftest import CLEAN, CORRUPTED
from workers.core.hooked_model import HookedModel
from workers.core.patching import PatchingRequest, run_patching

TOLERANCE = 1e-4
"""Absolute, on logit differences of a float32 tiny model: both libraries agree to ~1e-6 here."""

TL_SWEEPS: dict[str, Callable[..., torch.Tensor]] = {
    "resid_pre": patching.get_act_patch_resid_pre,
    "resid_mid": patching.get_act_patch_resid_mid,
    "attn_out": patching.get_act_patch_attn_out,
    "mlp_out": patching.get_act_patch_mlp_out,
    "head_out": patching.get_act_patch_attn_head_out_all_pos,
    "head_out_by_pos": patching.get_act_patch_attn_head_out_by_pos,
    "head_q": patching.get_act_patch_attn_head_q_all_pos,
    "head_k": patching.get_act_patch_attn_head_k_all_pos,
    "head_v": patching.get_act_patch_attn_head_v_all_pos,
    "head_q_by_pos": patching.get_act_patch_attn_head_q_by_pos,
    "head_k_by_pos": patching.get_act_patch_attn_head_k_by_pos,
    "head_v_by_pos": patching.get_act_patch_attn_head_v_by_pos,
    "head_pattern": patching.get_act_patch_attn_head_pattern_all_pos,
    "head_pattern_by_pos": patching.get_act_patch_attn_head_pattern_by_pos,
    "every_block": patching.get_act_patch_block_every,
}


@pytest.fixture(scope="module")
def tl(gpt2: HookedModel) -> HookedTransformer:
    return hooked_transformer_from_hf(gpt2.model)


def _tl_sweep(gpt2: HookedModel, tl: HookedTransformer, name: str, direction: str) -> tuple[torch.Tensor, float, float]:
    """TransformerLens's raw patched metrics and its clean/corrupted metrics."""
    clean = gpt2.tokenize(CLEAN)
    corrupted = gpt2.tokenize(CORRUPTED)
    answer, wrong = gpt2.token_id("b"), gpt2.token_id("a")

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[0, -1, answer] - logits[0, -1, wrong]

    donor, base = (clean, corrupted) if direction == "denoise" else (corrupted, clean)
    _, donor_cache = tl.run_with_cache(donor)
    with torch.no_grad():
        clean_metric = float(metric(tl(clean)))
        corrupted_metric = float(metric(tl(corrupted)))
        values = TL_SWEEPS[name](tl, base, donor_cache, metric)
    return values, clean_metric, corrupted_metric


@pytest.mark.parametrize("name", list(TL_SWEEPS))
def test_exact_patching_equals_transformer_lens(gpt2: HookedModel, tl: HookedTransformer, name: str) -> None:
    expected, clean_metric, corrupted_metric = _tl_sweep(gpt2, tl, name, "denoise")
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=(name,))
    result = run_patching(gpt2, request)
    assert abs(result.clean_metric - clean_metric) < TOLERANCE
    assert abs(result.corrupted_metric - corrupted_metric) < TOLERANCE
    assert abs(result.clean_metric - result.corrupted_metric) > 0.05  # the pair has an effect to patch
    target = result.target(name)
    assert target.raw.shape == expected.shape
    assert (target.raw - expected.double()).abs().max().item() < TOLERANCE
    assert target.normalised is not None
    normalised = (expected.double() - corrupted_metric) / (clean_metric - corrupted_metric)
    assert (target.normalised - normalised).abs().max().item() < 10 * TOLERANCE


@pytest.mark.parametrize("name", ["resid_pre", "head_out", "head_pattern_by_pos"])
def test_noising_equals_transformer_lens_with_runs_swapped(gpt2: HookedModel, tl: HookedTransformer, name: str) -> None:
    expected, _, _ = _tl_sweep(gpt2, tl, name, "noise")
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=(name,), direction="noise")
    result = run_patching(gpt2, request)
    assert (result.target(name).raw - expected.double()).abs().max().item() < TOLERANCE


def test_pattern_dest_src_equals_transformer_lens_on_sampled_cells(gpt2: HookedModel, tl: HookedTransformer) -> None:
    """Every (layer, head, dest, src) cell is a forward in TransformerLens; compare a seeded sample of cells."""
    clean, corrupted = gpt2.tokenize(CLEAN), gpt2.tokenize(CORRUPTED)
    answer, wrong = gpt2.token_id("b"), gpt2.token_id("a")

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[0, -1, answer] - logits[0, -1, wrong]

    _, clean_cache = tl.run_with_cache(clean)
    n_pos = clean.shape[1]
    generator = torch.Generator().manual_seed(0)
    rows = [
        [int(torch.randint(0, high, (1,), generator=generator)) for high in (3, 4, n_pos, n_pos)] for _ in range(40)
    ]
    rows += [[layer, 1, n_pos - 1, 4] for layer in range(3)]  # cells that differ between the runs
    index_df = pd.DataFrame(rows, columns=["layer", "head_index", "dest_pos", "src_pos"])
    with torch.no_grad():
        expected = patching.generic_activation_patch(
            tl,
            corrupted,
            clean_cache,
            metric,
            patch_setter=patching.layer_head_dest_src_pos_pattern_patch_setter,
            activation_name="pattern",
            index_df=index_df,
        )
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=("head_pattern_dest_src",))
    grid = run_patching(gpt2, request).target("head_pattern_dest_src").raw
    ours = torch.stack([grid[tuple(row)] for row in rows])
    assert (ours - expected.double()).abs().max().item() < TOLERANCE
    assert ours.std().item() > 1e-3  # the sample includes cells with an effect
