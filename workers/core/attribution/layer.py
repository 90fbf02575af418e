"""Layer attribution with respect to any named hook: integrated gradients and gradient × activation.

Scores sum over the activation's feature axis: per position for residual-shaped hooks, per position and head for
``attn.hook_q|k|v|z``; attention patterns keep ``[head, query, key]``. The forward resumes at the hook's layer
from the clean residual (the layers before it are the same for every step); only the hook's activation changes,
as Captum's ``LayerIntegratedGradients`` replaces a layer's output while the rest runs on the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.embeddings import baseline_tokens
from workers.core.attribution.forward import replace_with, target_values
from workers.core.attribution.integrated_gradients import completeness_warnings, integrate, integration_options
from workers.core.attribution.results import AttributionResult, Grid
from workers.core.errors import InvalidRequestError
from workers.core.hooks import HEAD_SITES, HookName


@dataclass(frozen=True)
class LayerPoint:
    """The hook, its clean activation ``[1, ...]``, and where the forward can resume."""

    hook: HookName
    activation: torch.Tensor
    start_at_layer: int | None
    start_resid: torch.Tensor | None


def layer_point(context: AttributionContext) -> LayerPoint:
    model = context.model
    hook = model.hook(context.options.hook or "", field="options.hook")
    if hook.site.startswith("ln_final"):
        last = HookName(model.facts.n_layers - 1, "hook_resid_post")
        raise InvalidRequestError(
            f"{hook} is part of the target's own readout; attribute to {last} instead", field="options.hook"
        )
    names = [str(hook)]
    if hook.layer is not None:
        names.append(str(HookName(hook.layer, "hook_resid_pre")))
    cache = context.reader(context.tokens, names)
    resume = hook.layer is not None
    return LayerPoint(
        hook=hook,
        activation=cache[str(hook)],
        start_at_layer=hook.layer if resume else None,
        start_resid=cache[names[-1]] if resume else None,
    )


def scores_result(
    context: AttributionContext, point: LayerPoint, attributions: torch.Tensor, **fields: Any
) -> AttributionResult:
    """Per-position scores, or a grid for per-head and pattern hooks."""
    site = point.hook.site
    tokens = tuple(context.model.token_strings(context.tokens[0]))
    heads = tuple(f"H{h}" for h in range(attributions.shape[-3 if site == "attn.hook_pattern" else -2]))
    units = f"attribution to the target {context.target.kind}"
    if site == "attn.hook_pattern":
        grid = Grid(
            axes=("head", "query_position", "key_position"),
            labels={"head": heads, "query_position": tokens, "key_position": tokens},
            values=attributions.float(),
            units=units,
        )
        return context.result(grids={"attribution": grid}, **fields)
    reduced = attributions.float().sum(-1)
    if site in HEAD_SITES:
        grid = Grid(axes=("position", "head"), labels={"position": tokens, "head": heads}, values=reduced, units=units)
        return context.result(grids={"attribution": grid}, **fields)
    return context.result(scores=reduced, **fields)


class LayerIntegratedGradients(AttributionMethod):
    """Integrated gradients of the target with respect to ``options.hook``'s activation."""

    name = "layer_integrated_gradients"
    needs_hook = True

    def has_convergence_delta(self) -> bool:
        return True

    def attribute(self, context: AttributionContext) -> AttributionResult:
        point = layer_point(context)
        baseline = context.options.baseline
        if baseline == "zero":
            start = torch.zeros_like(point.activation)
        else:
            tokens = baseline_tokens(context.model, context.tokens, baseline)
            start = context.reader(tokens, [str(point.hook)])[str(point.hook)]
        integral = integrate(
            context,
            hook=str(point.hook),
            start=start,
            end=point.activation,
            start_at_layer=point.start_at_layer,
            start_resid=point.start_resid,
        )
        options = {**integration_options(context), "hook": str(point.hook)}
        return scores_result(
            context,
            point,
            integral.attributions,
            value=integral.completeness.input_value,
            completeness=integral.completeness,
            warnings=completeness_warnings(integral.completeness, auto=context.options.n_steps == "auto"),
            options=options,
        )


class GradientXActivation(AttributionMethod):
    """Activation ⊙ ∂f/∂activation at ``options.hook`` (Captum's ``LayerGradientXActivation``)."""

    name = "gradient_x_activation"
    needs_hook = True

    def attribute(self, context: AttributionContext) -> AttributionResult:
        point = layer_point(context)
        activation = point.activation.detach().requires_grad_(True)
        values = target_values(
            context,
            batch=1,
            hooks={str(point.hook): [replace_with(activation)]},
            grad=True,
            start_at_layer=point.start_at_layer,
            start_resid=point.start_resid,
        )
        (grad,) = torch.autograd.grad(values.sum(), activation)
        context.progress(1.0)
        attributions = (activation.detach() * grad)[0]
        return scores_result(
            context, point, attributions, value=float(values.detach()[0]), options={"hook": str(point.hook)}
        )
