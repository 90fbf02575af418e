"""How many patched rows one batched forward may carry within a memory budget.

A row costs :func:`workers.core.memory.row_bytes`: the transient tensors of one decoder layer for one sequence
(a no-grad forward frees each layer's tensors before the next, so the peak of a chunk is about one layer's worth
times the rows). The API's submission check counts a patching job's rows with the same figure.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.core.memory import ModelWidths, row_bytes

__all__ = ["DEFAULT_MEMORY_BUDGET", "LAYER_CALL_POSITIONS", "chunks_by_start_layer", "merge_by_cost", "rows_per_chunk"]

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


LAYER_CALL_POSITIONS = 64
"""What one decoder layer call costs beyond its positions, in positions: the layer's weights are read once per
call whatever its rows, which on a CPU costs about as much as computing 64 more positions (Gemma 3 270M, 2 cores;
a GPU's figure is larger still). :func:`merge_by_cost` weighs it against the positions a merged run recomputes."""


def merge_by_cost(
    layers: Sequence[int], positions: Sequence[int], rows: Sequence[int], *, n_layers: int, max_rows: int
) -> list[range]:
    """Consecutive chunks (sorted by start layer) grouped into runs of one forward each, at least total cost.

    A run resumes at its first chunk's layer, so every chunk in it also computes the layers before its own; it
    costs ``(n_layers − first layer) · (LAYER_CALL_POSITIONS + its positions)``. Runs carry at most ``max_rows``
    rows. Returns each run as a range of chunk indices.
    """
    count = len(layers)
    best = [0.0] + [float("inf")] * count
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        run_rows = run_positions = 0
        for begin in range(end - 1, -1, -1):
            run_rows += rows[begin]
            run_positions += positions[begin]
            if run_rows > max_rows and begin < end - 1:
                break
            cost = best[begin] + (n_layers - layers[begin]) * (LAYER_CALL_POSITIONS + run_positions)
            if cost < best[end]:
                best[end], cut[end] = cost, begin
    runs: list[range] = []
    end = count
    while end > 0:
        runs.append(range(cut[end], end))
        end = cut[end]
    return runs[::-1]
