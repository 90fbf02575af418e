"""A grid's cells one by one, with their axis indexes and labels: what tidy frames and figures are built from.

Pure Python (no numpy or pandas), so the extras import only what they draw with.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

__all__ = ["GridLike", "axis_labels", "cells", "shape", "value_at"]


class GridLike(Protocol):
    axes: list[str]
    labels: dict[str, list[str | int]]
    values: list[Any]


def shape(values: list[Any], depth: int) -> tuple[int, ...]:
    """The sizes of ``depth`` nested list levels (a ragged grid is read by its first rows)."""
    sizes: list[int] = []
    level: Any = values
    for _ in range(depth):
        sizes.append(len(level))
        level = level[0] if level else []
    return tuple(sizes)


def value_at(values: list[Any], index: Sequence[int]) -> Any:
    for i in index:
        values = values[i]
    return values


def axis_labels(grid: GridLike, axis: str, size: int) -> list[str | int] | None:
    """The labels of ``axis`` when they say more than the index (``"3: Mary"``, a hook name), else ``None``."""
    labels = grid.labels.get(axis)
    if not labels or len(labels) != size:
        return None
    if list(labels) == list(range(size)) or [str(label) for label in labels] == [str(i) for i in range(size)]:
        return None
    return labels


def cells(grid: GridLike, *values: list[Any]) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """For every cell: its coordinates (``{axis: index, axis_label: label}``) and its entry in each of ``values``
    (default: the grid's own values)."""
    arrays = values or (grid.values,)
    sizes = shape(arrays[0], len(grid.axes))
    labels = {axis: axis_labels(grid, axis, size) for axis, size in zip(grid.axes, sizes, strict=True)}
    for index in itertools.product(*(range(size) for size in sizes)):
        coords: dict[str, Any] = {}
        for axis, i in zip(grid.axes, index, strict=True):
            coords[axis] = i
            axis_label = labels[axis]
            if axis_label is not None:
                coords[f"{axis}_label"] = axis_label[i]
        yield coords, [value_at(array, index) for array in arrays]
