"""The small base every attribution method implements, and the context it runs in (Captum's ``Attribution``).

A method is a class with a ``name``, whether it needs gradients, whether it reports a convergence delta
(``has_convergence_delta``, as Captum's), and ``attribute(context) -> AttributionResult``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from workers.core.activations import ActivationReader
from workers.core.attribution.request import AttributionOptions, AttributionRequest
from workers.core.attribution.results import AttributionResult, TargetReport
from workers.core.attribution.targets import Readout, Target
from workers.core.hooked_model import HookedModel
from workers.core.progress import Progress, ShouldCancel
from workers.core.shared_forwards import EmbeddingGradient, GradientRequest


@dataclass(frozen=True)
class AttributionContext:
    """Everything a method needs: the model, the prompt's tokens ``[1, pos]``, the resolved target, and where
    its plain forwards run (``reader``: unpatched activations; ``gradient``: the embedding gradient), which a
    worker shares with other jobs' forwards."""

    model: HookedModel
    request: AttributionRequest
    tokens: torch.Tensor
    target: Target
    readout: Readout
    progress: Progress
    should_cancel: ShouldCancel
    reader: ActivationReader
    gradient: Callable[[GradientRequest], EmbeddingGradient]

    @property
    def options(self) -> AttributionOptions:
        return self.request.options

    @property
    def n_positions(self) -> int:
        return int(self.tokens.shape[1])

    def result(self, *, value: float, options: dict[str, Any] | None = None, **fields: Any) -> AttributionResult:
        """A result with the tokens, the target and its ``value`` filled in."""
        target = self.target
        report = TargetReport(
            description=target.description(),
            kind=target.kind,
            position=target.position,
            token_ids=target.token_ids,
            tokens=target.tokens,
            value=value,
        )
        ids = tuple(int(i) for i in self.tokens[0].tolist())
        return AttributionResult(
            method=self.request.method,
            model_id=self.model.model_id,
            tokens=tuple(self.model.token_strings(ids)),
            token_ids=ids,
            target=report,
            options=options or {},
            **fields,
        )


class AttributionMethod(ABC):
    """One attribution algorithm."""

    name: ClassVar[str]
    uses_gradients: ClassVar[bool] = True
    """Gradient methods refuse half-precision models (see :func:`workers.core.attribution.run_attribution`)."""
    needs_hook: ClassVar[bool] = False
    """Layer methods attribute to ``options.hook``, which the request must name."""

    def has_convergence_delta(self) -> bool:
        """Whether results carry a completeness check (integrated gradients do)."""
        return False

    @abstractmethod
    def attribute(self, context: AttributionContext) -> AttributionResult:
        """Attribute the context's target; report progress and honour cancellation between chunks."""
