"""What a caller asks for: the prompt, the target, the method and its options, and the invariants they keep.

Wire limits (how many steps, how large a top-k) are the job spec's, :mod:`workers.kinds.attribution`; defaults
are :mod:`workers.core.defaults`, which the spec reads too. Here only what would make a computation wrong or
crash is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from workers.core.defaults import (
    IG_BASELINE,
    IG_MAX_RELATIVE_ERROR,
    IG_MAX_STEPS,
    IG_N_STEPS,
    IG_STEP_RULE,
    LENS_TOP_K,
    TARGET_KIND,
)
from workers.core.errors import InvalidRequestError

STEP_RULES: tuple[str, ...] = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
"""Integral approximations of integrated gradients, named as Captum names them."""

BASELINES: tuple[str, ...] = ("zero", "pad", "bos")

TargetKind = Literal["logit", "logprob"]


@dataclass(frozen=True)
class TargetSpec:
    """One token (``token``) or the difference of two (``contrast``: first minus second) at ``position``.

    ``kind`` is ``logit`` or ``logprob``; a log-prob contrast equals the logit contrast (the normaliser cancels).
    ``position`` counts from 0, negative values from the end; ``None`` is the last token.
    """

    token: str | None = None
    contrast: tuple[str, str] | None = None
    kind: TargetKind = TARGET_KIND
    position: int | None = None


@dataclass(frozen=True)
class AttributionOptions:
    """Method options; each method reads the ones it needs.

    - ``n_steps``, ``step_rule``, ``internal_batch_size``: integrated gradients (input and layer); steps are
      evaluated ``internal_batch_size`` at a time (default: as many as fit a budget of prompt positions).
      ``n_steps="auto"`` grows the steps until the completeness error is within ``max_relative_error`` or
      ``max_steps`` is reached; ``max_relative_error`` is also the tolerance ``converged`` reports.
    - ``baseline``: ``zero`` (zero embedding or zero activation), ``pad`` (pad-token embeddings, BOS kept) or
      ``bos`` (BOS-token embeddings, BOS kept); for layer methods the baseline activation is the hook's
      activation on the baseline input (zero: a zero activation).
    - ``hook``: the hook of the layer methods (TransformerLens name).
    - ``top_k``: tokens listed per layer by the logit lens.
    """

    n_steps: int | Literal["auto"] = IG_N_STEPS
    step_rule: str = IG_STEP_RULE
    max_relative_error: float = IG_MAX_RELATIVE_ERROR
    max_steps: int = IG_MAX_STEPS
    baseline: str = IG_BASELINE
    internal_batch_size: int | None = None
    hook: str | None = None
    top_k: int = LENS_TOP_K


@dataclass(frozen=True)
class AttributionRequest:
    """One attribution job for :func:`workers.core.attribution.run_attribution`."""

    prompt: str
    target: TargetSpec
    method: str
    options: AttributionOptions = field(default_factory=AttributionOptions)


def validate_request(request: AttributionRequest) -> None:
    """Refuse what no method can compute (the method itself is checked against the registry by the caller)."""
    target = request.target
    if (target.token is None) == (target.contrast is None):
        raise InvalidRequestError("give exactly one of target.token and target.contrast", field="target")
    if target.kind not in ("logit", "logprob"):
        raise InvalidRequestError(f"unknown target kind {target.kind!r}; valid: logit, logprob", field="target.kind")
    options = request.options
    if options.n_steps != "auto" and options.n_steps < 1:
        raise InvalidRequestError(f"n_steps must be at least 1, got {options.n_steps}", field="options.n_steps")
    if not options.max_relative_error > 0:
        raise InvalidRequestError(
            f"max_relative_error must be above 0, got {options.max_relative_error}", field="options.max_relative_error"
        )
    if options.max_steps < 2:
        raise InvalidRequestError(f"max_steps must be at least 2, got {options.max_steps}", field="options.max_steps")
    if options.step_rule not in STEP_RULES:
        raise InvalidRequestError(
            f"unknown step rule {options.step_rule!r}; valid: {', '.join(STEP_RULES)}", field="options.step_rule"
        )
    if options.step_rule == "riemann_trapezoid" and options.n_steps != "auto" and options.n_steps < 2:
        raise InvalidRequestError("the trapezoid rule needs at least 2 steps", field="options.n_steps")
    if options.baseline not in BASELINES:
        raise InvalidRequestError(
            f"unknown baseline {options.baseline!r}; valid: {', '.join(BASELINES)}", field="options.baseline"
        )
    batch = options.internal_batch_size
    if batch is not None and batch < 1:
        raise InvalidRequestError(
            f"internal_batch_size must be at least 1, got {batch}", field="options.internal_batch_size"
        )
    if options.top_k < 1:
        raise InvalidRequestError(f"top_k must be at least 1, got {options.top_k}", field="options.top_k")
