"""An eager attention function that exposes the attention pattern as a hook point.

Fused attention kernels (SDPA, flash) never materialise the pattern, and HF's eager functions compute it in a
local variable. Rather than copying each family's attention code, this registers one generic eager function with
transformers' ``AttentionInterface``: every family passes it ``scaling`` (and Gemma 2 ``softcap``), so the same
function reproduces each family's eager attention. It is switched on only while a pattern is read or written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

PATTERN_ATTENTION = "interp_pattern_eager"
"""The name under which the function is registered with transformers."""

PATTERN_FN_ATTRIBUTE = "_interp_pattern_fn"
"""Attribute on an attention module holding the function applied to its pattern (set by a pattern site)."""

PatternFn = Callable[[torch.Tensor], torch.Tensor | None]


def _repeat_kv(states: torch.Tensor, groups: int) -> torch.Tensor:
    """Repeat key/value heads for grouped-query attention: [b, kv, pos, d] → [b, kv·groups, pos, d]."""
    if groups == 1:
        return states
    return states.repeat_interleave(groups, dim=1)


def pattern_eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    softcap: float | None = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention whose softmax output passes through the module's pattern function, if any."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    groups = int(getattr(module, "num_key_value_groups", 1))
    key = _repeat_kv(key, groups)
    value = _repeat_kv(value, groups)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    pattern = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    pattern_fn: PatternFn | None = getattr(module, PATTERN_FN_ATTRIBUTE, None)
    if pattern_fn is not None:
        replaced = pattern_fn(pattern)
        if replaced is not None:
            pattern = replaced
    pattern = nn.functional.dropout(pattern, p=dropout, training=module.training)
    output = torch.matmul(pattern, value).transpose(1, 2).contiguous()
    return output, pattern


AttentionInterface.register(PATTERN_ATTENTION, pattern_eager_attention)
AttentionMaskInterface.register(PATTERN_ATTENTION, eager_mask)


@contextmanager
def pattern_attention(model: PreTrainedModel, enabled: bool = True) -> Iterator[None]:
    """Run ``model`` with the pattern-exposing attention inside the block; restore the previous one after."""
    if not enabled:
        yield
        return
    previous = model.config._attn_implementation
    model.config._attn_implementation = PATTERN_ATTENTION
    try:
        yield
    finally:
        model.config._attn_implementation = previous
