"""Attribution patching: the first-order estimate of every patch from two forwards and one backward.

``patched − base ≈ (donor − base) · ∂metric/∂activation`` at the base run, summed over the patched slice
(Nanda, "Attribution Patching", 2023). The donor activations come from the reader; the base run is the one
forward with gradients, and a single backward gives the gradient at every target hook at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workers.core.hooked_model import HookedModel, HookFn
from workers.core.hooks import HookName, sorted_hooks
from workers.core.metrics import AnswerMetric
from workers.core.patching.runs import final_resid
from workers.core.patching.targets import PatchUnit, reduce_to_index


@dataclass(frozen=True)
class GradientRun:
    """The base run's metric, and its activations and metric gradients (``[1, ...]``) at the target hooks."""

    metric: float
    activations: dict[str, torch.Tensor]
    gradients: dict[str, torch.Tensor]


def gradient_run(
    model: HookedModel, tokens: torch.Tensor, hooks: Sequence[HookName], metric: AnswerMetric
) -> GradientRun:
    """One forward with autograd through the activations only, and one backward to every hook in ``hooks``.

    Each hook's activation is passed on as a fresh graph node (a leaf when the weights are frozen), so the
    gradient at a hook is the total derivative of the metric through everything downstream of it.
    """
    n_layers = model.facts.n_layers
    last = final_resid(n_layers)
    stored: dict[str, torch.Tensor] = {}
    names = [str(hook) for hook in sorted_hooks([*hooks, last])]
    model.run(
        tokens,
        hooks={name: [_capture(name, stored)] for name in names},
        stop_at_layer=n_layers,
        logits="none",
        grad=True,
    )
    with torch.enable_grad():
        value = metric.from_final_resid(model, stored[str(last)]).sum()
    targets = [str(hook) for hook in hooks]
    grads = torch.autograd.grad(value, [stored[name] for name in targets], allow_unused=True)
    gradients = {
        name: torch.zeros_like(stored[name]) if grad is None else grad.detach()
        for name, grad in zip(targets, grads, strict=True)
    }
    activations = {name: stored[name].detach() for name in targets}
    return GradientRun(float(value.detach()), activations, gradients)


def attribution_patch_metrics(
    units: Sequence[PatchUnit], base: GradientRun, donor: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Estimated metric of the base run with each unit patched from the donor, ``[len(units)]`` (float64)."""
    products: dict[HookName, torch.Tensor] = {}
    for hook in {unit.hook for unit in units}:
        name = str(hook)
        product = ((donor[name] - base.activations[name]) * base.gradients[name])[0]
        products[hook] = reduce_to_index(product.double(), hook.site)
    values = torch.full((len(units),), base.metric, dtype=torch.float64)
    for i, unit in enumerate(units):
        values[i] += products[unit.hook][unit.selector].sum()
    return values


def _capture(name: str, stored: dict[str, torch.Tensor]) -> HookFn:
    def capture(activation: torch.Tensor) -> torch.Tensor:
        node = activation.clone() if activation.requires_grad else activation.detach().clone().requires_grad_(True)
        stored[name] = node
        return node

    return capture
