"""What a caller asks for: the prompt, the target, the method and its options, with their documented limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from workers.core.errors import InvalidRequestError

METHODS: tuple[str, ...] = (
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "layer_integrated_gradients",
    "gradient_x_activation",
    "direct_logit_attribution",
    "logit_lens",
)
"""Every method :func:`workers.core.attribution.run_attribution` accepts."""

STEP_RULES: tuple[str, ...] = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
"""Integral approximations of integrated gradients, named as Captum names them."""

BASELINES: tuple[str, ...] = ("zero", "pad", "bos")

MAX_N_STEPS = 512
"""Integrated gradients' step limit: past a few hundred steps the quadrature error is below float32 noise, and
each step costs a forward and a backward of the whole prompt."""

MAX_TOP_K = 100
"""The logit lens's top-k limit: results stay small JSON."""

MAX_INTERNAL_BATCH = 512

TargetKind = Literal["logit", "logprob"]


@dataclass(frozen=True)
class TargetSpec:
    """One token (``token``) or the difference of two (``contrast``: first minus second) at ``position``.

    ``kind`` is ``logit`` or ``logprob``; a log-prob contrast equals the logit contrast (the normaliser cancels).
    ``position`` counts from 0, negative values from the end; ``None`` is the last token.
    """

    token: str | None = None
    contrast: tuple[str, str] | None = None
    kind: TargetKind = "logit"
    position: int | None = None


@dataclass(frozen=True)
class AttributionOptions:
    """Method options; each method reads the ones it needs.

    - ``n_steps``, ``step_rule``, ``internal_batch_size``: integrated gradients (input and layer); steps are
      evaluated ``internal_batch_size`` at a time (default: as many as fit a budget of prompt positions).
    - ``baseline``: ``zero`` (zero embedding or zero activation), ``pad`` (pad-token embeddings, BOS kept) or
      ``bos`` (BOS-token embeddings, BOS kept); for layer methods the baseline activation is the hook's
      activation on the baseline input (zero: a zero activation).
    - ``hook``: the hook of the layer methods (TransformerLens name).
    - ``top_k``: tokens listed per layer by the logit lens.
    """

    n_steps: int = 50
    step_rule: str = "gausslegendre"
    baseline: str = "zero"
    internal_batch_size: int | None = None
    hook: str | None = None
    top_k: int = 10


@dataclass(frozen=True)
class AttributionRequest:
    """One attribution job for :func:`workers.core.attribution.run_attribution`."""

    prompt: str
    target: TargetSpec
    method: str
    options: AttributionOptions = field(default_factory=AttributionOptions)


def validate_request(request: AttributionRequest) -> None:
    """Check what can be checked without the model; raise :class:`InvalidRequestError` naming the field."""
    if request.method not in METHODS:
        raise InvalidRequestError(
            f"unknown method {request.method!r}; valid methods: {', '.join(METHODS)}", field="method"
        )
    target = request.target
    if (target.token is None) == (target.contrast is None):
        raise InvalidRequestError("give exactly one of target.token and target.contrast", field="target")
    if target.kind not in ("logit", "logprob"):
        raise InvalidRequestError(f"unknown target kind {target.kind!r}; valid: logit, logprob", field="target.kind")
    options = request.options
    if not 1 <= options.n_steps <= MAX_N_STEPS:
        raise InvalidRequestError(
            f"n_steps must be between 1 and {MAX_N_STEPS}, got {options.n_steps}", field="options.n_steps"
        )
    if options.step_rule not in STEP_RULES:
        raise InvalidRequestError(
            f"unknown step rule {options.step_rule!r}; valid: {', '.join(STEP_RULES)}", field="options.step_rule"
        )
    if options.step_rule == "riemann_trapezoid" and options.n_steps < 2:
        raise InvalidRequestError("the trapezoid rule needs at least 2 steps", field="options.n_steps")
    if options.baseline not in BASELINES:
        raise InvalidRequestError(
            f"unknown baseline {options.baseline!r}; valid: {', '.join(BASELINES)}", field="options.baseline"
        )
    batch = options.internal_batch_size
    if batch is not None and not 1 <= batch <= MAX_INTERNAL_BATCH:
        raise InvalidRequestError(
            f"internal_batch_size must be between 1 and {MAX_INTERNAL_BATCH}", field="options.internal_batch_size"
        )
    if not 1 <= options.top_k <= MAX_TOP_K:
        raise InvalidRequestError(f"top_k must be between 1 and {MAX_TOP_K}", field="options.top_k")
    if request.method in ("layer_integrated_gradients", "gradient_x_activation") and not options.hook:
        raise InvalidRequestError(f"{request.method} needs options.hook (a hook name)", field="options.hook")
