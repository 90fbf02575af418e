"""The ``activations`` and ``attention`` kinds on the real Gemma 3 270M against TransformerLens on the same weights."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.unit.workers.kinds.test_activations import context
from workers.core.hooked_model import HookedModel
from workers.kinds.activations import ActivationsSpec
from workers.kinds.activations import run as run_activations
from workers.kinds.attention import AttentionSpec
from workers.kinds.attention import run as run_attention

pytestmark = pytest.mark.gemma

PROMPT = "When Mary and John went to the store, John gave a drink to"
RELATIVE_TOLERANCE = 1e-5
"""Of the reference tensor's largest magnitude (at least 1): Gemma's residual reaches ~1e5, where two correct
float32 implementations differ by ~1e-2 absolute, ~1e-7 relative."""


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return (ours - theirs).abs().max().item() / max(1.0, theirs.abs().max().item())


def test_sliced_hooks_and_patterns_equal_transformer_lens(gemma: HookedModel, gemma_tl: Any) -> None:
    body = {
        "model": "gemma-3-270m",
        "prompt": PROMPT,
        "hooks": [
            "blocks.*.hook_resid_post",
            "blocks.11.attn.hook_z",
            "blocks.7.mlp.hook_post",
            "ln_final.hook_normalized",
        ],
        "layers": [3, 17],
        "positions": [0, -1, 5],
        "heads": [3, 1],
        "dims": [0, 9, 100],
    }
    got = run_activations(context(gemma), ActivationsSpec.model_validate(body)).prompts[0]
    tokens = gemma.tokenize(PROMPT)
    n = tokens.shape[1]
    _, cache = gemma_tl.run_with_cache(tokens)
    positions = [0, n - 1, 5]
    for name, part in got.hooks.items():
        reference = cache[name][0][positions]
        if name.endswith("attn.hook_z"):
            reference = reference[:, [3, 1]]
        want = reference[..., [0, 9, 100]]
        values = torch.tensor(part.values)
        assert values.shape == want.shape, name
        assert _close(values, want) < RELATIVE_TOLERANCE, name
    attention = run_attention(
        context(gemma), AttentionSpec.model_validate({"model": "m", "prompt": PROMPT, "layers": [5], "heads": [0, 2]})
    )
    want = cache["blocks.5.attn.hook_pattern"][0, [0, 2]]
    assert (torch.tensor(attention.patterns.values[0]) - want).abs().max().item() < 1e-5
