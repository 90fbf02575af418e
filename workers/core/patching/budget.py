"""How many patched rows one batched forward may carry within a memory budget.

The estimate counts the transient tensors of one decoder layer for one row (residual copies, MLP hidden states,
q/k/v and attention scores); a no-grad forward frees each layer's tensors before the next, so the peak of a
chunk is about one layer's worth times the rows. The benchmark measures the real peak against this figure.
"""

from __future__ import annotations

from workers.core.hooked_model import ModelFacts

DEFAULT_MEMORY_BUDGET = 512 * 2**20
"""512 MiB of transient activations per chunk: hundreds of rows for short prompts, tens at 256 tokens."""

_RESIDUAL_COPIES = 8
_MLP_COPIES = 3
_HEAD_COPIES = 4
_SCORE_COPIES = 3


def bytes_per_row(facts: ModelFacts, n_pos: int, itemsize: int) -> int:
    """Estimated peak bytes of one row's forward through one layer."""
    width = (
        _RESIDUAL_COPIES * facts.d_model
        + _MLP_COPIES * facts.d_mlp
        + _HEAD_COPIES * facts.n_heads * facts.d_head
        + _SCORE_COPIES * facts.n_heads * n_pos
    )
    return itemsize * n_pos * width


def rows_per_chunk(facts: ModelFacts, n_pos: int, itemsize: int, memory_budget: int) -> int:
    """Rows per batched forward so that the estimated peak stays within ``memory_budget`` (at least one)."""
    return max(1, memory_budget // bytes_per_row(facts, n_pos, itemsize))


def chunks_by_start_layer(by_start: dict[int, list[int]], rows: int) -> list[tuple[int, list[int]]]:
    """``(start layer, indices)`` chunks of at most ``rows`` indices, in layer order: one batched forward each."""
    return [
        (layer, indices[k : k + rows])
        for layer in sorted(by_start)
        for indices in [by_start[layer]]
        for k in range(0, len(indices), rows)
    ]
