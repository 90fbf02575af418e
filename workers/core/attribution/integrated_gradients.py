"""Integrated gradients over any hook's activation, batched; input IG is the ``hook_embed`` case.

For each batch of steps one forward runs the interpolated activations ``start + α (end − start)`` through the
decoder layers, the :class:`Readout` takes the target at its position only, and one backward takes the gradient
of ``Σ wᵢ f(xᵢ)``: the quadrature weights are folded into the backward, so the gradients summed over the batch
are already the integral. Attributions are ``(end − start) ⊙ ∫ ∇f``, as Captum's, and the completeness check
compares their sum with ``f(end) − f(start)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.embeddings import EMBED_HOOK, baseline_embedding, embedding_of
from workers.core.attribution.forward import replace_with, step_batches, target_values
from workers.core.attribution.quadrature import quadrature
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
    """
    options = context.options
    alphas, weights = quadrature(options.step_rule, options.n_steps)
    dtype = end.dtype
    alphas, weights = alphas.to(end.device, dtype), weights.to(end.device, torch.float32)
    start, end = start.detach(), end.detach()
    diff = end - start
    total = torch.zeros_like(end[0])
    done = 0
    for steps in step_batches(options.n_steps, context.n_positions, options.internal_batch_size):
        check_cancelled(context.should_cancel)
        alpha = alphas[steps].view(-1, *([1] * (end.dim() - 1)))
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
        context.progress(done / options.n_steps)
    attributions = diff[0] * total
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
    attribution_sum = float(attributions.double().sum())
    expected = input_value - baseline_value
    delta = attribution_sum - expected
    scale = max(abs(expected), torch.finfo(torch.float32).tiny)
    return PathIntegral(
        attributions=attributions,
        completeness=Completeness(
            attribution_sum=attribution_sum,
            input_value=input_value,
            baseline_value=baseline_value,
            delta=delta,
            relative_error=abs(delta) / scale,
        ),
    )


COMPLETENESS_WARNING = 0.05
"""Relative completeness error above which a result warns: the integral is not converged (or the path crosses
a near-singular point, as a zero embedding does for RMSNorm models)."""


def completeness_warnings(completeness: Completeness) -> tuple[str, ...]:
    if completeness.relative_error <= COMPLETENESS_WARNING:
        return ()
    return (
        f"attributions sum to {completeness.attribution_sum:.4g} but f(input) − f(baseline) is "
        f"{completeness.expected:.4g} (relative error {completeness.relative_error:.1%}): raise n_steps, or use "
        "the pad baseline (a zero embedding is a near-singular point for RMSNorm models)",
    )


def integration_options(context: AttributionContext) -> dict[str, object]:
    options = context.options
    return {
        "n_steps": options.n_steps,
        "step_rule": options.step_rule,
        "baseline": options.baseline,
        "internal_batch_size": options.internal_batch_size,
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
            warnings=completeness_warnings(integral.completeness),
            options=integration_options(context),
        )
