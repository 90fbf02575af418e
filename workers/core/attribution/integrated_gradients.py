"""Integrated gradients over any hook's activation, batched; input IG is the ``hook_embed`` case.

For each batch of steps one forward runs the interpolated activations ``start + α (end − start)`` through the
decoder layers, the :class:`Readout` takes the target at its position only, and one backward takes the gradient
of ``Σ wᵢ f(xᵢ)``: the quadrature weights are folded into the backward, so the gradients summed over the batch
are already the integral. Attributions are ``(end − start) ⊙ ∫ ∇f``, as Captum's, and the completeness check
compares their sum with ``f(end) − f(start)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.embeddings import EMBED_HOOK, baseline_embedding, embedding_of
from workers.core.attribution.forward import replace_with, step_batches, target_values
from workers.core.attribution.quadrature import NESTED_RULES, auto_schedule, new_points, quadrature
from workers.core.attribution.results import AttributionResult, Completeness
from workers.core.progress import check_cancelled


@dataclass(frozen=True)
class PathIntegral:
    """Attributions (the shape of one activation, no batch axis) and the completeness check."""

    attributions: torch.Tensor
    completeness: Completeness


def integrate(
    context: AttributionContext,
    *,
    hook: str,
    start: torch.Tensor,
    end: torch.Tensor,
    start_at_layer: int | None = None,
    start_resid: torch.Tensor | None = None,
) -> PathIntegral:
    """Integrated gradients of the target with respect to ``hook``'s activation from ``start`` to ``end``.

    ``start`` and ``end`` have the activation's shape with batch 1. ``start_at_layer``/``start_resid`` (batch 1)
    resume the forward at the hook's layer, since the layers before it are the same for every step.

    With ``n_steps="auto"`` the rule runs at the sizes of :func:`auto_schedule` until the completeness error is
    within ``max_relative_error``; a nesting rule's weighted sum at the next size is the previous sum rescaled
    (its old points' weights all shrink by the same factor) plus the new points only.
    """
    options = context.options
    start, end = start.detach(), end.detach()
    diff = end - start
    ends = torch.cat([start, end])
    resid = None if start_resid is None else start_resid.expand(2, *start_resid.shape[1:])
    endpoint_values = target_values(
        context,
        batch=2,
        hooks={hook: [replace_with(ends)]},
        grad=False,
        start_at_layer=start_at_layer,
        start_resid=resid,
    )
    baseline_value, input_value = (float(v) for v in endpoint_values)
    sizes = [options.n_steps] if options.n_steps != "auto" else auto_schedule(options.step_rule, options.max_steps)
    budget = sum(sizes) if options.step_rule not in NESTED_RULES else sizes[-1]
    evaluated = torch.zeros(0, dtype=torch.float64)
    total = torch.zeros_like(end[0])
    previous_weight = 0.0
    evaluations = 0
    for n_steps in sizes:
        alphas, weights = quadrature(options.step_rule, n_steps)
        fresh = new_points(alphas, evaluated) if options.step_rule in NESTED_RULES else torch.ones_like(alphas).bool()
        if not bool(fresh.all()):  # nested: every old point's weight changed by one factor
            ratio = float(weights[~fresh][0]) / previous_weight
            total *= ratio
        else:
            total.zero_()
        total += _weighted_gradients(
            context,
            hook,
            start,
            diff,
            alphas[fresh],
            weights[fresh],
            start_at_layer,
            start_resid,
            progress=partial(_progress_of, context, before=evaluations, budget=budget),
        )
        evaluations += int(fresh.sum())
        evaluated, previous_weight = alphas, float(weights[-1])
        attributions = diff[0] * total
        completeness = _completeness(
            attributions,
            input_value,
            baseline_value,
            steps_used=n_steps,
            evaluations=evaluations,
            tolerance=options.max_relative_error,
        )
        if completeness.converged:
            break
    return PathIntegral(attributions=attributions, completeness=completeness)


def _progress_of(context: AttributionContext, done: int, *, before: int, budget: int) -> None:
    context.progress(min(1.0, (before + done) / budget))


def _weighted_gradients(
    context: AttributionContext,
    hook: str,
    start: torch.Tensor,
    diff: torch.Tensor,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    start_at_layer: int | None,
    start_resid: torch.Tensor | None,
    *,
    progress: Callable[[int], None],
) -> torch.Tensor:
    """``Σ wᵢ ∇f(start + αᵢ diff)`` over the given points, in batches of steps; the weights ride the backward."""
    alphas, weights = alphas.to(diff.device, diff.dtype), weights.to(diff.device, torch.float32)
    total = torch.zeros_like(diff[0])
    done = 0
    for steps in step_batches(int(alphas.shape[0]), context.n_positions, context.options.internal_batch_size):
        check_cancelled(context.should_cancel)
        alpha = alphas[steps].view(-1, *([1] * (diff.dim() - 1)))
        batch = int(alpha.shape[0])
        interp = (start + alpha * diff).requires_grad_(True)
        resid = None if start_resid is None else start_resid.expand(batch, *start_resid.shape[1:])
        values = target_values(
            context,
            batch=batch,
            hooks={hook: [replace_with(interp)]},
            grad=True,
            start_at_layer=start_at_layer,
            start_resid=resid,
        )
        (grads,) = torch.autograd.grad(values @ weights[steps], interp)
        total += grads.sum(0)
        done += batch
        progress(done)
    return total


def _completeness(
    attributions: torch.Tensor,
    input_value: float,
    baseline_value: float,
    *,
    steps_used: int,
    evaluations: int,
    tolerance: float,
) -> Completeness:
    attribution_sum = float(attributions.double().sum())
    expected = input_value - baseline_value
    delta = attribution_sum - expected
    scale = max(abs(expected), torch.finfo(torch.float32).tiny)
    relative_error = abs(delta) / scale
    return Completeness(
        attribution_sum=attribution_sum,
        input_value=input_value,
        baseline_value=baseline_value,
        delta=delta,
        relative_error=relative_error,
        steps_used=steps_used,
        evaluations=evaluations,
        tolerance=tolerance,
        converged=relative_error <= tolerance,
    )


COMPLETENESS_WARNING = 0.05
"""Relative completeness error above which a result warns: the integral is not converged (or the path crosses
a near-singular point, as a zero embedding does for RMSNorm models)."""


def completeness_warnings(completeness: Completeness, *, auto: bool = False) -> tuple[str, ...]:
    if auto and not completeness.converged:
        return (
            f"n_steps auto did not converge: {completeness.steps_used} steps leave a completeness error of "
            f"{completeness.relative_error:.2%}, above max_relative_error {completeness.tolerance:.2%}; raise "
            "max_steps or max_relative_error, or use the pad baseline",
        )
    if completeness.relative_error <= COMPLETENESS_WARNING:
        return ()
    return (
        f"attributions sum to {completeness.attribution_sum:.4g} but f(input) − f(baseline) is "
        f"{completeness.expected:.4g} (relative error {completeness.relative_error:.1%}): raise n_steps, or use "
        "the pad baseline (a zero embedding is a near-singular point for RMSNorm models)",
    )


def integration_options(context: AttributionContext) -> dict[str, object]:
    options = context.options
    auto = {"max_relative_error": options.max_relative_error, "max_steps": options.max_steps}
    return {
        "n_steps": options.n_steps,
        "step_rule": options.step_rule,
        "baseline": options.baseline,
        "internal_batch_size": options.internal_batch_size,
        **(auto if options.n_steps == "auto" else {}),
    }


class IntegratedGradients(AttributionMethod):
    """Integrated gradients over the embedding layer's output; per-token scores sum over ``d_model``."""

    name = "integrated_gradients"

    def has_convergence_delta(self) -> bool:
        return True

    def attribute(self, context: AttributionContext) -> AttributionResult:
        clean = embedding_of(context.model, context.tokens)
        integral = integrate(context, hook=EMBED_HOOK, start=baseline_embedding(context, clean), end=clean)
        return context.result(
            value=integral.completeness.input_value,
            scores=integral.attributions.sum(-1).float(),
            completeness=integral.completeness,
            warnings=completeness_warnings(integral.completeness, auto=context.options.n_steps == "auto"),
            options=integration_options(context),
        )
