"""``attribution``: per-token scores (gradient methods), per-component scores (direct logit attribution) or
per-layer reads (logit lens) of one target logit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, get_args

from pydantic import AliasChoices, Field

from workers.core.checks import check_position
from workers.core.defaults import (
    IG_AUTO_STEP_RULE,
    IG_BASELINE,
    IG_MAX_RELATIVE_ERROR,
    IG_MAX_STEPS,
    IG_N_STEPS,
    IG_STEP_RULE,
    LENS_TOP_K,
    TARGET_KIND,
)
from workers.core.errors import InvalidRequestError
from workers.core.memory import dtype_bytes, forward_bytes, steps_per_batch
from workers.kinds.base import JobSpecBase, Kind, Prompt, ResultBase, ResultPart, TokenText, WireModel
from workers.kinds.grids import Grid, Values

if TYPE_CHECKING:
    from workers.core.attribution import AttributionRequest
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = ["ATTRIBUTION_METHODS", "KIND", "AttributionResult", "AttributionSpec", "ContrastTarget", "TokenTarget"]


class TokenTarget(WireModel):
    """Attribute the logit (or log-prob) of one token."""

    token: TokenText


class ContrastTarget(WireModel):
    """Attribute the logit difference between two tokens (first minus second)."""

    contrast: list[TokenText] = Field(min_length=2, max_length=2)


AttributionMethod: TypeAlias = Literal[
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "layer_integrated_gradients",
    "gradient_x_activation",
    "direct_logit_attribution",
    "logit_lens",
]
ATTRIBUTION_METHODS: tuple[str, ...] = get_args(AttributionMethod)
LAYER_METHODS = ("layer_integrated_gradients", "gradient_x_activation")
SHARED_METHODS = ("saliency", "input_x_gradient", "direct_logit_attribution", "logit_lens")
"""Methods whose work is one forward (and one backward) of the prompt: a worker batches them with other jobs'."""


class AttributionSpec(JobSpecBase):
    """Per-token (gradient methods) or per-component (direct logit attribution, logit lens) scores."""

    kind: Literal["attribution"] = "attribution"

    @property
    def shares_forwards(self) -> bool:
        return self.method in SHARED_METHODS

    prompt: Prompt
    target: TokenTarget | ContrastTarget
    target_kind: Literal["logit", "logprob"] = Field(default=TARGET_KIND, description="attribute the logit or log-prob")
    position: int | None = Field(
        default=None, ge=-4096, le=4096, description="position of the prediction; negative from the end; last"
    )
    method: AttributionMethod = "integrated_gradients"
    # Each step costs a forward and a backward of the prompt; past a few hundred steps the quadrature error is
    # below float32 noise.
    # "auto" is a string matching ^auto$ rather than a Literal: the generated clients mis-parse a const in a union.
    n_steps: Annotated[int, Field(ge=1, le=512)] | Annotated[str, Field(pattern="^auto$")] = Field(
        default=IG_N_STEPS,
        description='integrated gradients: quadrature steps, or "auto": grow them until the completeness error is '
        "within max_relative_error (or max_steps is reached)",
    )
    step_rule: (
        Literal["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"] | None
    ) = Field(
        default=None,
        description=f"absent: {IG_STEP_RULE}, or {IG_AUTO_STEP_RULE} with n_steps auto (tripling its steps reuses "
        "every earlier point; the left, right and trapezoid sums nest by doubling; Gauss-Legendre's points do not "
        "nest, so auto re-evaluates them at each size)",
    )
    max_relative_error: float = Field(
        default=IG_MAX_RELATIVE_ERROR,
        gt=0,
        le=1,
        description="n_steps auto: the completeness error to reach; every result reports converged against it",
    )
    max_steps: int = Field(default=IG_MAX_STEPS, ge=2, le=2048, description="n_steps auto: the most steps tried")
    baseline: Literal["zero", "pad", "bos"] = Field(
        default=IG_BASELINE,
        description=(
            "integrated gradients' baseline: pad-token embeddings with BOS kept (default: it converges on RMSNorm "
            "models, where a zero embedding is a near-singular point), BOS-token embeddings, or zero"
        ),
    )
    internal_batch_size: int | None = Field(default=None, ge=1, le=512, description="IG steps per forward")
    hook: str | None = Field(
        default=None, max_length=64, description="layer methods: a TransformerLens hook name, blocks.3.hook_resid_pre"
    )
    top_k: int = Field(default=LENS_TOP_K, ge=1, le=100, description="logit lens: tokens listed per layer")

    def check(self, view: ModelView) -> None:
        tokens = view.tokenize(self.prompt)
        if isinstance(self.target, TokenTarget):
            view.token_id(self.target.token, field="target.token")
        else:
            ids = [view.token_id(text, field="target.contrast") for text in self.target.contrast]
            if ids[0] == ids[1]:
                raise InvalidRequestError("the two contrast tokens are the same token", field="target.contrast")
        check_position(self.position, len(tokens))
        if self.method in LAYER_METHODS:
            if self.hook is None:
                raise InvalidRequestError(f"{self.method} needs hook (a hook name)", field="hook")
            view.hook(self.hook)
        if self.step_rule == "riemann_trapezoid" and self.n_steps != "auto" and int(self.n_steps) < 2:
            raise InvalidRequestError("the trapezoid rule needs at least 2 steps", field="n_steps")

    def prompt_lengths(self, view: ModelView) -> list[int]:
        return [len(view.tokenize(self.prompt))]

    def working_memory(self, view: ModelView) -> int:
        """Gradient methods hold every layer's activations and their gradients (about three copies) for each
        sequence of a batch (integrated gradients: one batch of steps); the others, one forward read at every
        layer."""
        n_pos, card = self.prompt_lengths(view)[0], view.card
        kept = forward_bytes(card, n_pos, dtype_bytes(card.dtype), kept_layers=card.n_layers)
        if self.method in ("direct_logit_attribution", "logit_lens"):
            return kept
        if self.method in ("integrated_gradients", "layer_integrated_gradients"):
            steps = self.max_steps if self.n_steps == "auto" else int(self.n_steps)
            return 3 * kept * min(steps, steps_per_batch(n_pos, self.internal_batch_size))
        return 3 * kept

    def to_request(self) -> AttributionRequest:
        from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec

        if isinstance(self.target, TokenTarget):
            target = TargetSpec(token=self.target.token, kind=self.target_kind, position=self.position)
        else:
            first, second = self.target.contrast
            target = TargetSpec(contrast=(first, second), kind=self.target_kind, position=self.position)
        options = AttributionOptions(
            n_steps="auto" if self.n_steps == "auto" else int(self.n_steps),
            step_rule=self.step_rule or (IG_AUTO_STEP_RULE if self.n_steps == "auto" else IG_STEP_RULE),
            max_relative_error=self.max_relative_error,
            max_steps=self.max_steps,
            baseline=self.baseline,
            internal_batch_size=self.internal_batch_size,
            hook=self.hook,
            top_k=self.top_k,
        )
        return AttributionRequest(prompt=self.prompt, target=target, method=self.method, options=options)


class TargetReport(ResultPart):
    """The quantity attributed, echoed back with its value on the unmodified prompt."""

    description: str
    kind: str
    position: int
    token_ids: list[int]
    tokens: list[str]
    value: float


class Completeness(ResultPart):
    """Integrated gradients: attributions should sum to f(input) − f(baseline); ``delta`` is Captum's."""

    attribution_sum: float
    input_value: float
    baseline_value: float
    expected: float
    delta: float
    relative_error: float
    steps_used: int | None = Field(default=None, description="points of the final quadrature rule")
    evaluations: int | None = Field(default=None, description="gradients computed (auto with Gauss-Legendre: more)")
    tolerance: float | None = Field(default=None, description="max_relative_error")
    converged: bool | None = Field(default=None, description="relative_error is within tolerance")


class Decomposition(ResultPart):
    """Direct logit attribution: components should sum to the target value."""

    component_sum: float
    target_value: float
    residual_error: float


class Checks(ResultPart):
    completeness: Completeness | None = None
    decomposition: Decomposition | None = None


class RankedToken(ResultPart):
    token_id: int
    token: str
    probability: float
    rank: int = Field(description="1 is the most likely token")


class LensLayer(ResultPart):
    """The logit lens read of one residual stream."""

    hook: str
    top_k: list[RankedToken]
    targets: list[RankedToken]
    value: float


class AttributionResult(ResultBase):
    """``scores`` per prompt token (gradient methods), ``grids`` over components or layer × head (direct logit
    attribution, per-head layer methods), ``logit_lens`` per layer; ``checks`` the method's self-checks."""

    model: str = Field(validation_alias=AliasChoices("model", "model_id"))
    method: str
    options: dict[str, Any]
    tokens: list[str]
    token_ids: list[int]
    target: TargetReport
    scores: Values | None = Field(default=None, description="one score per token of `tokens`")
    grids: dict[str, Grid] = Field(default_factory=dict)
    logit_lens: list[LensLayer] = Field(default_factory=list, validation_alias=AliasChoices("logit_lens", "lens"))
    checks: Checks
    warnings: list[str] = Field(default_factory=list)


def run(ctx: JobContext, spec: AttributionSpec) -> AttributionResult:
    from workers.core.attribution import run_attribution

    result = run_attribution(ctx.model, spec.to_request(), progress=ctx.progress, should_cancel=ctx.should_cancel,
                             reader=ctx.reader, gradient=ctx.gradient)
    return AttributionResult.model_validate(result)


KIND = Kind(spec=AttributionSpec, result=AttributionResult, run=run, soft_limit_s=300.0, hard_limit_s=330.0)
