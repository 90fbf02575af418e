"""Wire types shared by results: values over named axes, as dashboards draw them.

Results are built from the core's frozen result objects by attribute (``from_attributes``); tensors turn into
nested lists here, NaN (an undefined value) into ``null``. No torch import: a tensor is anything with ``tolist``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = ["Grid", "PatchGrid", "Values", "by_name", "plain"]


def plain(value: Any) -> Any:
    """Nested lists of numbers from a tensor, tuple or list; NaN becomes ``None``."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def by_name(value: Any) -> Any:
    """A sequence of objects with a ``name`` (the core's order) as a mapping by that name."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str):
        return {item.name: item for item in value}
    return value


Values = Annotated[
    list[Any],
    BeforeValidator(plain),
    Field(description="nested lists of numbers, one level per axis in `axes` order; null where undefined"),
]
Label = str | int


def _has_values(value: Any) -> bool:
    return value if isinstance(value, bool) else value is not None


class Grid(BaseModel):
    """Numbers over named axes: ``values[i][j]…`` sits at ``labels[axes[0]][i]``, ``labels[axes[1]][j]``, …"""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    axes: list[str] = Field(description="axis names, outermost first: layer, position, head, component, …")
    labels: dict[str, list[Label]] = Field(description="for each axis, the label of every index")
    values: Values
    units: str = Field(description="what a value measures: a chart's colour-bar or axis title")


class PatchGrid(Grid):
    """A patching sweep: ``values`` are normalised effects when ``normalised``, else the raw metric."""

    raw_values: Values = Field(
        validation_alias=AliasChoices("raw_values", "raw"), description="the patched metric itself"
    )
    raw_units: str = Field(description="what `raw_values` measure: the metric")
    normalised: Annotated[bool, BeforeValidator(_has_values)] = Field(
        description="values are (patched − corrupted) / (clean − corrupted); false when clean equals corrupted"
    )
