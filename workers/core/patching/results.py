"""Patching results: frozen, tensor-backed, and JSON-ready through ``to_dict`` (axes, labels, nested values)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workers.core.errors import InvalidRequestError

SCHEMA_VERSION = 1
"""Bumped whenever the shape of ``to_dict`` changes."""

Label = str | int


def position_labels(tokens: Sequence[str]) -> list[str]:
    """``"3: Mary"``: index and token, so repeated tokens stay distinguishable on an axis."""
    return [f"{i}: {token}" for i, token in enumerate(tokens)]


def json_values(values: torch.Tensor) -> Any:
    """Nested lists of floats, ``None`` where a value is undefined (NaN)."""
    if values.dim() == 0:
        value = float(values)
        return None if math.isnan(value) else value
    return [json_values(row) for row in values]


@dataclass(frozen=True)
class TargetResult:
    """One granularity's sweep: raw patched metrics and, when defined, their normalised effects."""

    name: str
    axes: tuple[str, ...]
    labels: Mapping[str, Sequence[Label]]
    raw: torch.Tensor
    normalised: torch.Tensor | None

    @property
    def values(self) -> torch.Tensor:
        """What a dashboard draws: the normalised effect, or the raw metric when normalisation is undefined."""
        return self.raw if self.normalised is None else self.normalised

    def to_dict(self) -> dict[str, Any]:
        return {
            "axes": list(self.axes),
            "labels": {axis: list(self.labels[axis]) for axis in self.axes},
            "values": json_values(self.values),
            "raw_values": json_values(self.raw),
            "normalised": self.normalised is not None,
        }


@dataclass(frozen=True)
class PatchingResult:
    """Clean and corrupted metrics and one :class:`TargetResult` per requested target, in request order."""

    method: str
    direction: str
    metric: str
    tokens: tuple[str, ...]
    corrupted_tokens: tuple[str, ...]
    clean_metric: float
    corrupted_metric: float
    targets: tuple[TargetResult, ...]
    warnings: tuple[str, ...] = ()

    @property
    def normalised(self) -> bool:
        return self.clean_metric != self.corrupted_metric

    def target(self, name: str) -> TargetResult:
        for result in self.targets:
            if result.name == name:
                return result
        raise InvalidRequestError(f"no result for target {name!r}", field="targets")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "method": self.method,
            "direction": self.direction,
            "metric": self.metric,
            "tokens": list(self.tokens),
            "corrupted_tokens": list(self.corrupted_tokens),
            "clean_metric": self.clean_metric,
            "corrupted_metric": self.corrupted_metric,
            "normalised": self.normalised,
            "targets": {result.name: result.to_dict() for result in self.targets},
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class PathPatchingResult:
    """Per sender head (``[layer, head]``, NaN where not swept) and all senders jointly, through the receivers."""

    direction: str
    metric: str
    tokens: tuple[str, ...]
    corrupted_tokens: tuple[str, ...]
    clean_metric: float
    corrupted_metric: float
    receivers: tuple[tuple[int, int], ...]
    receiver_inputs: tuple[str, ...]
    senders: TargetResult
    joint_raw: float
    joint_normalised: float | None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "direction": self.direction,
            "metric": self.metric,
            "tokens": list(self.tokens),
            "corrupted_tokens": list(self.corrupted_tokens),
            "clean_metric": self.clean_metric,
            "corrupted_metric": self.corrupted_metric,
            "normalised": self.joint_normalised is not None,
            "receivers": [list(receiver) for receiver in self.receivers],
            "receiver_inputs": list(self.receiver_inputs),
            "senders": self.senders.to_dict(),
            "joint": {"raw_value": self.joint_raw, "value": self.joint_normalised},
            "warnings": list(self.warnings),
        }
