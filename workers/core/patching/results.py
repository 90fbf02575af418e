"""Patching results: frozen and tensor-backed; :mod:`workers.kinds.patching` reads them into the wire form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from workers.core.errors import InvalidRequestError
from workers.core.metrics import METRIC_UNITS, MetricKind

Label = str | int


def position_labels(tokens: Sequence[str]) -> list[str]:
    """``"3: Mary"``: index and token, so repeated tokens stay distinguishable on an axis."""
    return [f"{i}: {token}" for i, token in enumerate(tokens)]


@dataclass(frozen=True)
class TargetResult:
    """One granularity's sweep: raw patched metrics and, when defined, their normalised effects."""

    name: str
    axes: tuple[str, ...]
    labels: Mapping[str, Sequence[Label]]
    raw: torch.Tensor
    normalised: torch.Tensor | None
    metric: MetricKind

    @property
    def values(self) -> torch.Tensor:
        """What a dashboard draws: the normalised effect, or the raw metric when normalisation is undefined."""
        return self.raw if self.normalised is None else self.normalised

    @property
    def raw_units(self) -> str:
        return METRIC_UNITS[self.metric]

    @property
    def units(self) -> str:
        """What :attr:`values` measure: a chart's colour-bar title."""
        if self.normalised is None:
            return self.raw_units
        return f"normalised effect on the {self.raw_units}: 1 restores clean, 0 leaves corrupted"


@dataclass(frozen=True)
class JointEffect:
    """Several heads patched at once (path: all senders): the metric, and its normalised effect (``None`` when
    undefined)."""

    raw_value: float
    value: float | None


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
    together: JointEffect | None = None
    """With the request's ``together``: the metric with all those heads patched at once."""

    @property
    def normalised(self) -> bool:
        return self.clean_metric != self.corrupted_metric

    def target(self, name: str) -> TargetResult:
        for result in self.targets:
            if result.name == name:
                return result
        raise InvalidRequestError(f"no result for target {name!r}", field="targets")


@dataclass(frozen=True)
class PathPatchingResult:
    """Per sender head (``[layer, head]``, NaN where not swept) and all senders jointly, through the receivers."""

    direction: str
    metric: str
    tokens: tuple[str, ...]
    corrupted_tokens: tuple[str, ...]
    clean_metric: float
    corrupted_metric: float
    receivers: tuple[tuple[int, int], ...] | Literal["logits"]
    receiver_inputs: tuple[str, ...]
    senders: TargetResult
    joint: JointEffect
    warnings: tuple[str, ...] = ()

    method: str = "path"

    @property
    def targets(self) -> tuple[TargetResult, ...]:
        """The sender grid, in the same form as a sweep's targets."""
        return (self.senders,)

    @property
    def normalised(self) -> bool:
        return self.joint.value is not None

    @property
    def path(self) -> PathPatchingResult:
        """The path-specific facts (receivers, joint effect) are this object's own."""
        return self
