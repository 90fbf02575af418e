"""Patching granularities: which hook a patch replaces, and which slice of it, named as TransformerLens names them.

A granularity is data: a block site, the result axes it sweeps, and how each axis selects into the activation.
Every patch is a :class:`PatchUnit` (one hook, one selection, one cell of the result grid), so exact and
attribution patching share one enumeration and never special-case a granularity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import ModelFacts
from workers.core.hooks import HookName

Selector = tuple[int | slice, ...]


@dataclass(frozen=True)
class Granularity:
    """One way of cutting a model into patches.

    ``index_axes`` names, for each leading axis of the activation's index shape (see :func:`index_shape`), the
    result axis that picks it, or ``None`` where the patch covers the whole axis.
    """

    name: str
    site: str
    axes: tuple[str, ...]
    index_axes: tuple[str | None, ...]
    description: str


def _g(name: str, site: str, axes: tuple[str, ...], index_axes: tuple[str | None, ...], text: str) -> Granularity:
    return Granularity(name, site, axes, index_axes, text)


_BY_POS = ("layer", "position")
_HEAD_ALL = ("layer", "head")
_HEAD_POS = ("layer", "position", "head")

GRANULARITIES: dict[str, Granularity] = {
    g.name: g
    for g in (
        _g("resid_pre", "hook_resid_pre", _BY_POS, ("position",), "residual entering each block, per position"),
        _g("resid_mid", "hook_resid_mid", _BY_POS, ("position",), "residual between attention and MLP"),
        _g("resid_post", "hook_resid_post", _BY_POS, ("position",), "residual leaving each block, per position"),
        _g("attn_out", "hook_attn_out", _BY_POS, ("position",), "attention output, per position"),
        _g("mlp_out", "hook_mlp_out", _BY_POS, ("position",), "MLP output, per position"),
        _g("attn_out_all_pos", "hook_attn_out", ("layer",), (None,), "attention output, all positions at once"),
        _g("mlp_out_all_pos", "hook_mlp_out", ("layer",), (None,), "MLP output, all positions at once"),
        _g("head_out", "attn.hook_z", _HEAD_ALL, (None, "head"), "each head's output (hook_z), all positions"),
        _g("head_out_by_pos", "attn.hook_z", _HEAD_POS, ("position", "head"), "each head's output per position"),
        _g("head_q", "attn.hook_q", _HEAD_ALL, (None, "head"), "each head's query, all positions"),
        _g("head_k", "attn.hook_k", _HEAD_ALL, (None, "head"), "each key head, all positions"),
        _g("head_v", "attn.hook_v", _HEAD_ALL, (None, "head"), "each value head, all positions"),
        _g("head_q_by_pos", "attn.hook_q", _HEAD_POS, ("position", "head"), "each head's query per position"),
        _g("head_k_by_pos", "attn.hook_k", _HEAD_POS, ("position", "head"), "each key head per position"),
        _g("head_v_by_pos", "attn.hook_v", _HEAD_POS, ("position", "head"), "each value head per position"),
        _g("head_pattern", "attn.hook_pattern", _HEAD_ALL, ("head",), "each head's whole attention pattern"),
        _g(
            "head_pattern_by_pos",
            "attn.hook_pattern",
            ("layer", "head", "position"),
            ("head", "position"),
            "each head's pattern row of one destination position",
        ),
        _g(
            "head_pattern_dest_src",
            "attn.hook_pattern",
            ("layer", "head", "dest_position", "src_position"),
            ("head", "dest_position", "src_position"),
            "each head's attention weight from one destination to one source position",
        ),
    )
}
"""Every single granularity, by name."""

COMPOSITES: dict[str, tuple[str, ...]] = {"every_block": ("resid_pre", "attn_out", "mlp_out")}
"""Summaries that stack several granularities along a leading ``component`` axis."""

TARGET_NAMES: tuple[str, ...] = (*GRANULARITIES, *COMPOSITES)


def check_target(name: str) -> str:
    """Refuse an unknown granularity, listing the valid ones."""
    if name not in GRANULARITIES and name not in COMPOSITES:
        raise InvalidRequestError(
            f"unknown patching target {name!r}; valid: {', '.join(TARGET_NAMES)}", field="targets"
        )
    return name


def expand_targets(names: Sequence[str]) -> list[str]:
    """Single granularities needed by ``names`` (composites expanded), each once, in request order."""
    out: list[str] = []
    for name in names:
        for single in COMPOSITES.get(check_target(name), (name,)):
            if single not in out:
                out.append(single)
    return out


def index_shape(site: str, facts: ModelFacts, n_pos: int) -> tuple[int, ...]:
    """Shape of a patch mask for one batch row: the activation's shape with the feature axis cut to 1.

    Residual-like ``[pos, 1]``, per head ``[pos, head, 1]``, patterns ``[head, query_pos, key_pos]``.
    """
    if site == "attn.hook_pattern":
        return (facts.n_heads, n_pos, n_pos)
    if site in ("attn.hook_k", "attn.hook_v"):
        return (n_pos, facts.n_kv_heads, 1)
    if site in ("attn.hook_q", "attn.hook_z"):
        return (n_pos, facts.n_heads, 1)
    return (n_pos, 1)


def reduce_to_index(tensor: torch.Tensor, site: str) -> torch.Tensor:
    """Sum a per-element quantity of one row (``[*activation shape without batch]``) to the index shape."""
    return tensor if site == "attn.hook_pattern" else tensor.sum(-1, keepdim=True)


@dataclass(frozen=True)
class PatchUnit:
    """One patch: replace ``selector`` of ``hook``'s index shape; its value goes to ``cell`` of the result."""

    hook: HookName
    selector: Selector
    cell: tuple[int, ...]


@dataclass(frozen=True)
class TargetPlan:
    """A granularity swept over the requested layers and positions."""

    granularity: Granularity
    axis_values: dict[str, list[int]]
    units: list[PatchUnit]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.axis_values[axis]) for axis in self.granularity.axes)


def plan_target(
    granularity: Granularity, facts: ModelFacts, layers: Sequence[int], positions: Sequence[int]
) -> TargetPlan:
    """Every patch of a granularity over ``layers`` × ``positions`` (and every head)."""
    n_heads = facts.n_kv_heads if granularity.site in ("attn.hook_k", "attn.hook_v") else facts.n_heads
    values: dict[str, list[int]] = {
        "layer": list(layers),
        "position": list(positions),
        "dest_position": list(positions),
        "src_position": list(positions),
        "head": list(range(n_heads)),
    }
    axis_values = {axis: values[axis] for axis in granularity.axes}
    units: list[PatchUnit] = []
    cells: list[tuple[int, ...]] = [()]
    for axis in granularity.axes:
        cells = [(*cell, i) for cell in cells for i in range(len(axis_values[axis]))]
    for cell in cells:
        chosen = {axis: axis_values[axis][i] for axis, i in zip(granularity.axes, cell, strict=True)}
        selector: Selector = tuple(slice(None) if axis is None else chosen[axis] for axis in granularity.index_axes)
        hook = HookName(chosen["layer"], granularity.site)
        units.append(PatchUnit(hook, selector, cell))
    return TargetPlan(granularity, axis_values, units)
