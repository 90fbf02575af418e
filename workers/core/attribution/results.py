"""Frozen result types of the attribution methods, and their JSON wire form.

Every result carries the prompt's tokens as strings and the target with its value, so a dashboard can draw it
without a second request. Tensors stay tensors inside (tests compare them directly); ``to_dict`` turns them
into plain lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

SCHEMA_VERSION = 1
"""Bumped whenever a key of :meth:`AttributionResult.to_dict` changes meaning."""


@dataclass(frozen=True)
class TargetReport:
    """The quantity attributed, echoed back with its value on the unmodified prompt."""

    description: str
    kind: str
    position: int
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "kind": self.kind,
            "position": self.position,
            "token_ids": list(self.token_ids),
            "tokens": list(self.tokens),
            "value": self.value,
        }


@dataclass(frozen=True, eq=False)
class Grid:
    """Scores over named axes; ``labels[axis]`` names every index of that axis."""

    axes: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]]
    values: torch.Tensor

    def to_dict(self) -> dict[str, Any]:
        return {
            "axes": list(self.axes),
            "labels": {axis: list(names) for axis, names in self.labels.items()},
            "values": self.values.tolist(),
        }


@dataclass(frozen=True)
class Completeness:
    """Integrated gradients' completeness: attributions should sum to f(input) − f(baseline).

    ``delta`` is Captum's convergence delta (sum − expected); ``relative_error`` is ``|delta| / |expected|``.
    """

    attribution_sum: float
    input_value: float
    baseline_value: float
    delta: float
    relative_error: float

    @property
    def expected(self) -> float:
        return self.input_value - self.baseline_value

    def to_dict(self) -> dict[str, float]:
        return {
            "attribution_sum": self.attribution_sum,
            "input_value": self.input_value,
            "baseline_value": self.baseline_value,
            "expected": self.expected,
            "delta": self.delta,
            "relative_error": self.relative_error,
        }


@dataclass(frozen=True)
class Decomposition:
    """Direct logit attribution's check: components should sum to the target value."""

    component_sum: float
    target_value: float

    @property
    def residual_error(self) -> float:
        return self.target_value - self.component_sum

    def to_dict(self) -> dict[str, float]:
        return {
            "component_sum": self.component_sum,
            "target_value": self.target_value,
            "residual_error": self.residual_error,
        }


@dataclass(frozen=True)
class RankedToken:
    """A token as the logit lens sees it at one layer; ``rank`` 1 is the most likely token."""

    token_id: int
    token: str
    probability: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "token": self.token, "probability": self.probability, "rank": self.rank}


@dataclass(frozen=True)
class LensLayer:
    """The logit lens read of one residual stream: its top tokens, the target tokens, the target value."""

    hook: str
    top_k: tuple[RankedToken, ...]
    targets: tuple[RankedToken, ...]
    value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "top_k": [token.to_dict() for token in self.top_k],
            "targets": [token.to_dict() for token in self.targets],
            "value": self.value,
        }


@dataclass(frozen=True, eq=False)
class AttributionResult:
    """What every attribution method returns.

    ``scores`` holds one score per prompt token when the method gives that; ``grids`` holds scores over other
    axes (components, layers × heads); ``lens`` the logit lens's per-layer reads.
    """

    method: str
    model_id: str
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    target: TargetReport
    scores: torch.Tensor | None = None
    grids: Mapping[str, Grid] = field(default_factory=dict)
    lens: tuple[LensLayer, ...] = ()
    completeness: Completeness | None = None
    decomposition: Decomposition | None = None
    warnings: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form stored as the job's result."""
        checks: dict[str, Any] = {}
        if self.completeness is not None:
            checks["completeness"] = self.completeness.to_dict()
        if self.decomposition is not None:
            checks["decomposition"] = self.decomposition.to_dict()
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "model": self.model_id,
            "method": self.method,
            "options": dict(self.options),
            "tokens": list(self.tokens),
            "token_ids": list(self.token_ids),
            "target": self.target.to_dict(),
        }
        if self.scores is not None:
            out["scores"] = self.scores.tolist()
        if self.grids:
            out["grids"] = {name: grid.to_dict() for name, grid in self.grids.items()}
        if self.lens:
            out["logit_lens"] = [layer.to_dict() for layer in self.lens]
        out["checks"] = checks
        out["warnings"] = list(self.warnings)
        return out
