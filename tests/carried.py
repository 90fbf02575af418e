"""The oracle of the wire results: every field of a core result object is on the wire model, with its value.

It walks the core's own dataclass fields, not the wire model's, so a field the wire drops or renames fails; it
knows where the wire files the fields it does not keep under their own name (:data:`ON_THE_WIRE`), written here
independently of the kind modules. Tensors must arrive as nested lists with NaN as ``None`` (JSON null), floats
within ``atol`` (0 in-process; a stated tolerance across processes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
import torch

__all__ = ["ON_THE_WIRE", "assert_carried"]

ON_THE_WIRE: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("AttributionResult", "model_id"): lambda w: w.model,
    ("AttributionResult", "lens"): lambda w: w.logit_lens,
    ("AttributionResult", "completeness"): lambda w: w.checks.completeness,
    ("AttributionResult", "decomposition"): lambda w: w.checks.decomposition,
    ("PatchingResult", "targets"): lambda w: list(w.targets.values()),
    ("PathPatchingResult", "senders"): lambda w: w.targets["senders"],
    ("PathPatchingResult", "receivers"): lambda w: w.path.receivers,
    ("PathPatchingResult", "receiver_inputs"): lambda w: w.path.receiver_inputs,
    ("PathPatchingResult", "joint"): lambda w: w.path.joint,
    ("TargetResult", "raw"): lambda w: w.raw_values,
}
"""Where a core field lives on the wire when not under its own name: (core class, field) → its wire value."""

_DERIVED: dict[tuple[str, str], Callable[[Any, Any], tuple[Any, Any]]] = {
    ("Completeness", "expected"): lambda w, c: (w.expected, c.expected),
    ("Decomposition", "residual_error"): lambda w, c: (w.residual_error, c.residual_error),
    ("PatchingResult", "normalised"): lambda w, c: (w.normalised, c.normalised),
    ("PathPatchingResult", "normalised"): lambda w, c: (w.normalised, c.normalised),
    ("TargetResult", "values"): lambda w, c: (w.values, c.values),
    ("TargetResult", "normalised"): lambda w, c: (w.normalised, c.normalised is not None),
    ("TargetResult", "units"): lambda w, c: (w.units, c.units),
    ("TargetResult", "raw_units"): lambda w, c: (w.raw_units, c.raw_units),
}
"""Properties of the core objects that the wire carries as fields, and what ``normalised`` means per grid."""

_SKIPPED = {("TargetResult", "name"), ("TargetResult", "normalised"), ("TargetResult", "metric")}
"""A grid's name is the key it is filed under; its normalised tensor is ``values`` when defined, and its metric is
the result's and named in its units (see above)."""


def _no_nan(value: Any, path: str) -> None:
    if isinstance(value, list):
        for item in value:
            _no_nan(item, path)
    else:
        assert not (isinstance(value, float) and math.isnan(value)), f"{path}: NaN must be sent as null"


def _tensor(value: Any) -> torch.Tensor:
    def nan(v: Any) -> Any:
        return [nan(x) for x in v] if isinstance(v, list) else (math.nan if v is None else v)

    return torch.tensor(nan(value), dtype=torch.float64)


def assert_carried(wire: Any, core: Any, *, atol: float = 0.0, path: str = "result") -> None:
    """Every dataclass field of ``core`` (and the properties in ``_DERIVED``) is on ``wire`` with the same value."""
    if is_dataclass(core) and not isinstance(core, type):
        owner = type(core).__name__
        for f in fields(core):
            if (owner, f.name) in _SKIPPED:
                continue
            lookup = ON_THE_WIRE.get((owner, f.name))
            on_wire = lookup(wire) if lookup is not None else getattr(wire, f.name)
            assert_carried(on_wire, getattr(core, f.name), atol=atol, path=f"{path}.{f.name}")
        for (cls, name), pair in _DERIVED.items():
            if cls == owner:
                got, want = pair(wire, core)
                assert_carried(got, want, atol=atol, path=f"{path}.{name}")
    elif isinstance(core, torch.Tensor):
        assert isinstance(wire, list), path
        _no_nan(wire, path)
        got = _tensor(wire)
        assert tuple(got.shape) == tuple(core.shape), path
        torch.testing.assert_close(got, core.detach().cpu().double(), atol=atol, rtol=0, equal_nan=True, msg=path)
    elif isinstance(core, bool) or core is None:
        assert wire is core, path
    elif isinstance(core, float):
        if math.isnan(core):
            assert wire is None, f"{path}: NaN must be sent as null"
        else:
            assert isinstance(wire, float) and wire == pytest.approx(core, abs=atol, rel=0), path
    elif isinstance(core, tuple | list):
        assert isinstance(wire, list) and len(wire) == len(core), path
        for i, (w, c) in enumerate(zip(wire, core, strict=True)):
            assert_carried(w, c, atol=atol, path=f"{path}[{i}]")
    elif isinstance(core, Mapping):
        assert isinstance(wire, dict) and list(wire) == list(core), path
        for key in core:
            assert_carried(wire[key], core[key], atol=atol, path=f"{path}[{key!r}]")
    else:
        assert wire == core and type(wire) is type(core), path
