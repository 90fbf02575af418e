"""Attribution: which tokens, activations and components drive a target logit.

The one entry point is :func:`run_attribution`; each method lives in its own module over
:class:`~workers.core.attribution.base.AttributionMethod`. Gradient methods run their own batched engine
(decoder layers, then the final norm and only the needed unembedding rows at the target position; one backward
per batch of steps with the quadrature weights folded in); Captum is their oracle in the tests.

Captum is not called at run time: its layer methods attribute to a module's input or output, while requests
name TransformerLens hooks (``hook_resid_mid``, per-head ``attn.hook_z``) that are not one module's tensor, and
its forward computes every logit where the target needs one position and one or two unembedding rows (the
benchmark measures the difference). It is a test and benchmark dependency, the oracle of every gradient method.

Half precision: gradient methods refuse float16/bfloat16 models (``InvalidRequestError``, code
``unreliable_dtype``, field ``model``). Measured on the tiny test models (pad baseline, 64 steps), integrated
gradients' completeness error grows from 1e-9..1e-6 in float32 to 2e-4..1e-2 in bfloat16 and float16, and bfloat16
keeps about three significant digits of each gradient; a service should not return those as attributions. Direct
logit attribution and the logit lens are forward-only: they run in any dtype, finish in float32 and warn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from workers.core.activations import ActivationReader, forward_reader
from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.direct_logit import DirectLogitAttribution
from workers.core.attribution.input_x_gradient import InputXGradient
from workers.core.attribution.integrated_gradients import IntegratedGradients
from workers.core.attribution.layer import GradientXActivation, LayerIntegratedGradients
from workers.core.attribution.logit_lens import LogitLens
from workers.core.attribution.request import AttributionOptions, AttributionRequest, TargetSpec, validate_request
from workers.core.attribution.results import AttributionResult
from workers.core.attribution.saliency import Saliency
from workers.core.attribution.targets import Readout, resolve_target
from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel
from workers.core.progress import Progress, ShouldCancel, check_cancelled, never_cancel, no_progress
from workers.core.shared_forwards import EmbeddingGradient, GradientRequest, embedding_gradients_together

__all__ = [
    "METHODS",
    "AttributionOptions",
    "AttributionRequest",
    "AttributionResult",
    "TargetSpec",
    "run_attribution",
]

_REGISTRY: dict[str, AttributionMethod] = {
    method.name: method
    for method in (
        Saliency(),
        InputXGradient(),
        IntegratedGradients(),
        LayerIntegratedGradients(),
        GradientXActivation(),
        DirectLogitAttribution(),
        LogitLens(),
    )
}

METHODS: tuple[str, ...] = tuple(_REGISTRY)
"""Every method :func:`run_attribution` accepts, by name: the registry's keys."""

_HALF = (torch.float16, torch.bfloat16)


def run_attribution(
    model: HookedModel,
    request: AttributionRequest,
    *,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
    reader: ActivationReader | None = None,
    gradient: Callable[[GradientRequest], EmbeddingGradient] | None = None,
) -> AttributionResult:
    """Run one attribution method on one prompt; bad input raises a ``CoreError`` naming the field.

    ``reader`` and ``gradient`` run the method's plain forwards (a worker passes ones it shares between jobs);
    by default the model runs them alone.
    """
    method = _REGISTRY.get(request.method)
    if method is None:
        raise InvalidRequestError(
            f"unknown method {request.method!r}; valid methods: {', '.join(METHODS)}", field="method"
        )
    validate_request(request)
    if method.needs_hook and not request.options.hook:
        raise InvalidRequestError(f"{request.method} needs options.hook (a hook name)", field="options.hook")
    if method.uses_gradients and model.dtype in _HALF:
        raise InvalidRequestError(
            f"{request.method} needs gradients, which are unreliable in {model.dtype}; serve the model in float32 "
            "or use direct_logit_attribution or logit_lens",
            field="model",
            code="unreliable_dtype",
        )
    tokens = model.tokenize(request.prompt)
    target = resolve_target(model, request.target, int(tokens.shape[1]))
    check_cancelled(should_cancel)
    context = AttributionContext(
        model=model,
        request=request,
        tokens=tokens,
        target=target,
        readout=Readout(model, target),
        progress=progress,
        should_cancel=should_cancel,
        reader=reader or forward_reader(model),
        gradient=gradient or (lambda one: embedding_gradients_together(model, [one])[0]),
    )
    # Gradient methods work whatever grad mode the caller (a worker) runs in; the others never need a graph.
    with torch.enable_grad() if method.uses_gradients else torch.no_grad():
        result = method.attribute(context)
    if model.dtype in _HALF:
        warning = f"the model runs in {model.dtype}; values carry its rounding"
        result = replace(result, warnings=(*result.warnings, warning))
    return result
