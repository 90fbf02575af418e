"""Which chunks of patched rows share one forward."""

from __future__ import annotations

import itertools

from workers.core.patching.budget import LAYER_CALL_POSITIONS, merge_by_cost


def _cost(runs: list[range], layers: list[int], positions: list[int], n_layers: int) -> int:
    return sum((n_layers - layers[run[0]]) * (LAYER_CALL_POSITIONS + sum(positions[k] for k in run)) for run in runs)


def test_small_chunks_at_every_layer_share_forwards() -> None:
    """Fifteen positions per layer: recomputing a few layers costs less than calling every layer again."""
    layers, positions, rows = list(range(18)), [15] * 18, [5] * 18
    runs = merge_by_cost(layers, positions, rows, n_layers=18, max_rows=1000)
    assert len(runs) < 18
    assert [k for run in runs for k in run] == list(range(18))
    assert _cost(runs, layers, positions, 18) < _cost([range(k, k + 1) for k in range(18)], layers, positions, 18)


def test_large_chunks_keep_forwards_of_their_own() -> None:
    """Thousands of positions per chunk: recomputing a layer for them would cost more than a layer call."""
    runs = merge_by_cost([0, 1, 2], [5000, 5000, 5000], [100, 100, 100], n_layers=4, max_rows=1000)
    assert runs == [range(0, 1), range(1, 2), range(2, 3)]


def test_a_run_carries_at_most_max_rows() -> None:
    runs = merge_by_cost(list(range(6)), [2] * 6, [3] * 6, n_layers=6, max_rows=6)
    assert all(sum(3 for _ in run) <= 6 for run in runs)
    assert [k for run in runs for k in run] == list(range(6))


def test_the_merge_is_the_cheapest_partition() -> None:
    """Against every partition of five chunks into consecutive runs."""
    layers, positions, rows = [0, 1, 3, 3, 4], [10, 40, 3, 90, 8], [1, 4, 1, 6, 2]
    runs = merge_by_cost(layers, positions, rows, n_layers=6, max_rows=100)
    best = min(
        _cost(partition, layers, positions, 6)
        for cuts in range(16)
        for partition in [_partition(5, cuts)]
    )
    assert _cost(runs, layers, positions, 6) == best


def _partition(count: int, cuts: int) -> list[range]:
    """The partition of ``range(count)`` that cuts after chunk ``k`` where bit ``k`` of ``cuts`` is set."""
    bounds = [0, *[k + 1 for k in range(count - 1) if cuts >> k & 1], count]
    return [range(a, b) for a, b in itertools.pairwise(bounds)]
