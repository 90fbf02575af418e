"""Head detectors on the real Gemma 3 270M equal TransformerLens's ``detect_head`` on the same weights and tokens;
its induction heads on repeated random tokens are printed (layer, head, score)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformer_lens.head_detector import detect_head

from workers.core.head_detection import HeadScoresRequest, head_scores, random_token_pool, repeated_random_tokens
from workers.core.hooked_model import HookedModel

pytestmark = pytest.mark.gemma

TOL = 1e-5
TL_NAMES = {
    "previous_token": "previous_token_head",
    "duplicate_token": "duplicate_token_head",
    "induction": "induction_head",
}


def tl_head_scores(tl: Any, tokens: torch.Tensor, detector: str, **options: Any) -> torch.Tensor:
    """``detect_head`` on exactly these tokens (it tokenizes its input itself: hand it ours).

    The cache is TL's own run, of the patterns only: ``detect_head``'s default cache (every hook, batch axis
    removed) fails on Gemma 3's query/key norms, whose hooks see a flattened ``[batch·pos·head, d_head]``."""
    _, cache = tl.run_with_cache(tokens, remove_batch_dim=True, names_filter=lambda name: name.endswith("hook_pattern"))
    original = tl.to_tokens
    tl.to_tokens = lambda seq, **_: tokens
    try:
        return detect_head(tl, "ignored", detector, cache=cache, **options).float()
    finally:
        tl.to_tokens = original


@pytest.mark.parametrize(
    "options",
    [{}, {"exclude_bos": True, "error_measure": "abs"}, {"exclude_current_token": True}],
    ids=["defaults", "no-bos-abs", "no-current"],
)
def test_detectors_equal_detect_head_on_repeated_random_tokens(
    gemma: HookedModel, gemma_tl: Any, options: dict[str, Any]
) -> None:
    vocab, excluded = random_token_pool(gemma)
    sequences = repeated_random_tokens(length=24, seed=11, batch=2, vocab_size=vocab, excluded=excluded,
                                       bos=gemma.tokenizer.bos_token_id)
    request = HeadScoresRequest(sequences=tuple(tuple(s) for s in sequences), detectors=tuple(TL_NAMES), **options)
    got = {grid.name: grid.values for grid in head_scores(gemma, request).scores}
    for name, tl_name in TL_NAMES.items():
        expected = torch.stack([tl_head_scores(gemma_tl, torch.tensor([s]), tl_name, **options) for s in sequences])
        torch.testing.assert_close(got[name], expected.mean(0), atol=TOL, rtol=0, msg=name)
    if not options:
        induction = got["induction"]
        order = induction.flatten().argsort(descending=True)[:6]
        n_heads = induction.shape[1]
        top = [(int(i) // n_heads, int(i) % n_heads, round(induction.flatten()[i].item(), 3)) for i in order]
        print(f"gemma-3-270m induction heads (layer, head, score): {top}")
        assert top[0][2] > 0.3  # a real induction head: a third of its attention or more one after the last copy


def test_detectors_equal_detect_head_on_text(gemma: HookedModel, gemma_tl: Any) -> None:
    prompt = "The cat sat on the mat. The cat sat on the mat, and the dog sat by the door."
    tokens = gemma.tokenize(prompt)
    request = HeadScoresRequest(sequences=(tuple(tokens[0].tolist()),), detectors=tuple(TL_NAMES))
    got = {grid.name: grid.values for grid in head_scores(gemma, request).scores}
    for name, tl_name in TL_NAMES.items():
        torch.testing.assert_close(got[name], tl_head_scores(gemma_tl, tokens, tl_name), atol=TOL, rtol=0, msg=name)
