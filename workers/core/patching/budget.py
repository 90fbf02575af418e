"""How many patched rows one batched forward may carry within a memory budget.

A row costs :func:`workers.core.memory.row_bytes`: the transient tensors of one decoder layer for one sequence
(a no-grad forward frees each layer's tensors before the next, so the peak of a chunk is about one layer's worth
times the rows). The API's submission check counts a patching job's rows with the same figure.
"""

from __future__ import annotations

from workers.core.memory import ModelWidths, row_bytes

__all__ = ["DEFAULT_MEMORY_BUDGET", "chunks_by_start_layer", "rows_per_chunk"]

DEFAULT_MEMORY_BUDGET = 512 * 2**20
"""512 MiB of transient activations per chunk: hundreds of rows for short prompts, tens at 256 tokens."""


def rows_per_chunk(widths: ModelWidths, n_pos: int, itemsize: int, memory_budget: int) -> int:
    """Rows per batched forward so that the estimated peak stays within ``memory_budget`` (at least one)."""
    return max(1, memory_budget // row_bytes(widths, n_pos, itemsize))


def chunks_by_start_layer(by_start: dict[int, list[int]], rows: int) -> list[tuple[int, list[int]]]:
    """``(start layer, indices)`` chunks of at most ``rows`` indices, in layer order: one batched forward each."""
    return [
        (layer, indices[k : k + rows])
        for layer in sorted(by_start)
        for indices in [by_start[layer]]
        for k in range(0, len(indices), rows)
    ]
