"""Frozen result types of the attribution methods.

Every result carries the prompt's tokens as strings and the target with its value, so a dashboard can draw it
without a second request. Tensors stay tensors (tests compare them directly); :mod:`workers.kinds.attribution`
reads these objects into the wire form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class TargetReport:
    """The quantity attributed, echoed back with its value on the unmodified prompt."""

    description: str
    kind: str
    position: int
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    value: float


@dataclass(frozen=True, eq=False)
class Grid:
    """Scores over named axes; ``labels[axis]`` names every index of that axis."""

    axes: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]]
    values: torch.Tensor
    units: str


@dataclass(frozen=True)
class Completeness:
    """Integrated gradients' completeness: attributions should sum to f(input) − f(baseline).

    ``delta`` is Captum's convergence delta (sum − expected); ``relative_error`` is ``|delta| / |expected|``.
    ``steps_used`` is the final rule's number of points, ``evaluations`` the gradients computed to get there
    (more than ``steps_used`` only for ``n_steps: "auto"`` with a rule that does not nest); ``converged`` is
    whether ``relative_error`` is within ``tolerance``.
    """

    attribution_sum: float
    input_value: float
    baseline_value: float
    delta: float
    relative_error: float
    steps_used: int = 0
    evaluations: int = 0
    tolerance: float = 0.0
    converged: bool = False

    @property
    def expected(self) -> float:
        return self.input_value - self.baseline_value


@dataclass(frozen=True)
class Decomposition:
    """Direct logit attribution's check: components should sum to the target value."""

    component_sum: float
    target_value: float

    @property
    def residual_error(self) -> float:
        return self.target_value - self.component_sum


@dataclass(frozen=True)
class RankedToken:
    """A token as the logit lens sees it at one layer; ``rank`` 1 is the most likely token."""

    token_id: int
    token: str
    probability: float
    rank: int


@dataclass(frozen=True)
class LensLayer:
    """The logit lens read of one residual stream: its top tokens, the target tokens, the target value."""

    hook: str
    top_k: tuple[RankedToken, ...]
    targets: tuple[RankedToken, ...]
    value: float


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

    @property
    def checks(self) -> dict[str, Completeness | Decomposition]:
        """The method's self-checks by name, as the wire groups them."""
        found = {"completeness": self.completeness, "decomposition": self.decomposition}
        return {name: check for name, check in found.items() if check is not None}
