"""Normalisation: a full clean patch scores 1, a patch that changes nothing 0, in both directions."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.workers.core.patching.conftest import tiny_hooked
from workers.core.metrics import normalised_effect
from workers.core.patching import PatchingRequest, run_patching

MODEL = tiny_hooked("gpt2", seed=3)
LETTERS = "abcdefgh"


@given(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.floats(-1e3, 1e3, allow_nan=False),
)
def test_clean_maps_to_one_and_corrupted_to_zero(clean: float, corrupted: float) -> None:
    effect = normalised_effect(torch.tensor([clean, corrupted], dtype=torch.float64), clean, corrupted)
    if clean == corrupted:
        assert effect is None
    else:
        assert effect is not None
        assert effect.tolist() == [1.0, 0.0]


@settings(max_examples=12, deadline=None)
@given(
    prefix=st.text(LETTERS, min_size=1, max_size=4),
    suffix=st.text(LETTERS, max_size=3),
    swap=st.tuples(st.sampled_from(LETTERS), st.sampled_from(LETTERS)).filter(lambda pair: pair[0] != pair[1]),
)
def test_patching_the_only_differing_token_restores_the_clean_run(
    prefix: str, suffix: str, swap: tuple[str, str]
) -> None:
    """Prompts differing in one token: patching that position's residual at layer 0 (or the last residual at
    the last position) is the whole clean run, so it scores 1 denoising and 0 noising; earlier positions 0."""
    clean, corrupted = prefix + swap[0] + suffix + ":", prefix + swap[1] + suffix + ":"
    where = 1 + len(prefix)
    for direction, full in (("denoise", 1.0), ("noise", 0.0)):
        request = PatchingRequest(
            clean, corrupted, answer="x", wrong_answer="y", targets=("resid_pre", "resid_post"), direction=direction
        )
        result = run_patching(MODEL, request)
        if result.clean_metric == result.corrupted_metric:
            continue
        resid_pre = result.target("resid_pre").normalised
        resid_post = result.target("resid_post").normalised
        assert resid_pre is not None and resid_post is not None
        assert abs(resid_pre[0, where].item() - full) < 1e-4
        assert abs(resid_post[-1, -1].item() - full) < 1e-4
        assert torch.all(resid_pre[:, :where] == 1.0 - full)
