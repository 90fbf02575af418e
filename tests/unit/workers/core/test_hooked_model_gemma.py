"""HookedModel on the real Gemma 3 270M against TransformerLens on the same weights."""

from __future__ import annotations

import pytest
import torch

from workers.core.hooked_model import HookedModel
from workers.core.hooks import parse_hook_name
from workers.core.writes import Write, apply_write

pytestmark = pytest.mark.gemma

IOI_PROMPT = "When Mary and John went to the store, John gave a drink to"
RELATIVE_TOLERANCE = 1e-4
"""Gemma's residual reaches ~1e5 (massive activations): two correct float32 implementations differ there by
~1e-2 absolute, ~1e-7 relative to the tensor's largest magnitude. Small tensors keep an absolute 1e-4 floor."""


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Max difference relative to the reference's largest magnitude (at least 1)."""
    return (ours - theirs).abs().max().item() / max(1.0, theirs.abs().max().item())


def test_every_hook_equals_transformer_lens(gemma: HookedModel, gemma_tl: object) -> None:
    tokens = gemma.tokenize(IOI_PROMPT)
    assert tokens.shape == (1, 15)
    tl_logits, tl_cache = gemma_tl.run_with_cache(tokens)  # type: ignore[attr-defined]
    ours = gemma.run(tokens, cache=gemma.hook_names)
    assert ours.logits is not None
    assert (ours.logits - tl_logits).abs().max().item() < 1e-3
    assert len(ours.cache) == 3 + 18 * 11
    worst = {name: _close(value, tl_cache[name]) for name, value in ours.cache.items()}
    assert max(worst.values()) < RELATIVE_TOLERANCE, sorted(worst.items(), key=lambda kv: -kv[1])[:3]
    assert gemma.token_strings(ours.logits[0, -1].argmax(-1, keepdim=True)) == [" Mary"]


@pytest.mark.parametrize(
    ("hook_name", "selection"),
    [
        ("blocks.3.hook_resid_pre", {"positions": [10]}),
        ("blocks.11.attn.hook_z", {"heads": [3]}),
        ("blocks.15.hook_attn_out", {}),
        ("blocks.7.attn.hook_pattern", {"heads": [0, 2]}),
    ],
)
def test_patched_forward_equals_transformer_lens(
    gemma: HookedModel, gemma_tl: object, hook_name: str, selection: dict[str, list[int]]
) -> None:
    """Patch the clean IOI prompt's activation into the corrupted one, in both libraries."""
    clean = gemma.tokenize(IOI_PROMPT)
    corrupted = gemma.tokenize(IOI_PROMPT.replace("John gave", "Mary gave"))
    donor = gemma.run(clean, cache=[hook_name], logits="none").cache[hook_name]
    hook = parse_hook_name(hook_name)
    value = donor
    if "positions" in selection:
        value = value[:, selection["positions"]]
    if "heads" in selection:
        value = value[:, :, selection["heads"]] if hook.site == "attn.hook_z" else value[:, selection["heads"]]
    write = Write(hook_name, value, **selection)  # type: ignore[arg-type]
    ours = gemma.run(corrupted, writes=[write], logits="last").logits
    def tl_hook(activation: torch.Tensor, hook: object) -> torch.Tensor:
        return apply_write(activation, parse_hook_name(hook_name), write)

    theirs = gemma_tl.run_with_hooks(corrupted, fwd_hooks=[(hook_name, tl_hook)])[:, -1:]  # type: ignore[attr-defined]
    baseline = gemma.run(corrupted, logits="last").logits
    assert ours is not None
    assert baseline is not None
    assert (ours - baseline).abs().max().item() > 1e-2, "the patch must move the logits"
    assert (ours - theirs).abs().max().item() < 1e-3
