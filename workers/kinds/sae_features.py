"""``sae_features``: one SAE feature, where it fires over a few prompts and which tokens its decoder promotes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from workers.core.defaults import LOGIT_EFFECTS_TOP_N
from workers.core.memory import dtype_bytes, row_bytes
from workers.kinds.base import Kind, ResultBase, ResultPart
from workers.kinds.sae_prompts import SaePromptsSpec

if TYPE_CHECKING:
    from workers.core.progress import Progress
    from workers.core.sae import FeatureActivationsRequest, FeatureLogitEffectsRequest
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = ["KIND", "MAX_TOP_N", "SaeFeaturesResult", "SaeFeaturesSpec"]

MAX_TOP_N = 200


class SaeFeaturesSpec(SaePromptsSpec):
    """One feature of an SAE: its activation at every token of each prompt, and its direct logit effects."""

    kind: Literal["sae_features"] = "sae_features"
    feature: int = Field(ge=0, le=10_000_000, description="the feature id, 0..d_sae−1 (GET /v1/models)")
    top_n: int = Field(
        default=LOGIT_EFFECTS_TOP_N,
        ge=0,
        le=MAX_TOP_N,
        description="tokens the decoder direction promotes most and suppresses most; 0 leaves logit effects out "
        "(SAEs that do not read a d_model-wide hook have none)",
    )

    def check(self, view: ModelView) -> None:
        super().check(view)
        view.sae_feature(self.sae, self.feature)

    def working_memory(self, view: ModelView) -> int:
        """The prompts run one at a time, each a no-grad forward that stops after the SAE's layer."""
        return row_bytes(view.card, max(self.prompt_lengths(view)), dtype_bytes(view.card.dtype))

    def to_requests(self) -> tuple[list[FeatureActivationsRequest], FeatureLogitEffectsRequest | None]:
        """One activations request per prompt, and the logit-effects request (``None`` when ``top_n`` is 0)."""
        from workers.core.sae import FeatureActivationsRequest, FeatureLogitEffectsRequest

        activations = [FeatureActivationsRequest(prompt=prompt, feature=self.feature) for prompt in self.all_prompts]
        effects = FeatureLogitEffectsRequest(feature=self.feature, top_n=self.top_n) if self.top_n else None
        return activations, effects


class PromptActivations(ResultPart):
    tokens: list[str] = Field(description="the prompt's tokens, BOS first")
    activations: list[float] = Field(description="the feature's activation at each token")
    max_activation: float
    max_position: int = Field(description="the token where the feature is largest (the first, on ties)")


class TokenEffect(ResultPart):
    token: str
    token_id: int
    effect: float = Field(description="change in the token's logit per unit of the feature's activation")


class LogitEffects(ResultPart):
    """The decoder direction through the final norm's gain and the unembedding: the direct path only."""

    promoted: list[TokenEffect] = Field(description="largest effect first")
    suppressed: list[TokenEffect] = Field(description="most negative effect first")


class SaeFeaturesResult(ResultBase):
    model: str
    sae: str
    hook: str
    feature: int
    prompts: list[PromptActivations] = Field(description="one per prompt, in request order")
    logit_effects: LogitEffects | None = Field(description="null when top_n is 0")


def _share(progress: Progress, done: int, total: int) -> Progress:
    """Progress of one of ``total`` equal steps, ``done`` finished before it."""
    return lambda fraction: progress((done + fraction) / total)


def run(ctx: JobContext, spec: SaeFeaturesSpec) -> SaeFeaturesResult:
    from workers.core.sae import feature_activations, feature_logit_effects

    sae = ctx.load_sae(spec.sae)
    requests, effects_request = spec.to_requests()
    steps = len(requests) + (effects_request is not None)
    effects = None
    if effects_request is not None:  # first: it refuses an SAE that has no logit effects before any forward
        effects = feature_logit_effects(
            ctx.model, sae, effects_request, progress=_share(ctx.progress, 0, steps), should_cancel=ctx.should_cancel
        )
    done = steps - len(requests)
    activations = [
        feature_activations(
            ctx.model,
            sae,
            request,
            reader=ctx.reader,
            progress=_share(ctx.progress, done + i, steps),
            should_cancel=ctx.should_cancel,
        )
        for i, request in enumerate(requests)
    ]
    first = activations[0]
    return SaeFeaturesResult.model_validate(
        {
            "model": first.model,
            "sae": first.sae,
            "hook": first.hook,
            "feature": first.feature,
            "prompts": activations,
            "logit_effects": effects,
        }
    )


KIND = Kind(spec=SaeFeaturesSpec, result=SaeFeaturesResult, run=run, soft_limit_s=120.0, hard_limit_s=150.0)
