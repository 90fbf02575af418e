"""``steer``: generation with and without one SAE feature's decoder direction added at its hook (or clamped)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from workers.core.defaults import STEER_COEFFICIENT, STEER_MAX_NEW_TOKENS, STEER_SEED, STEER_TEMPERATURE
from workers.core.errors import InvalidRequestError
from workers.kinds.base import JobSpecBase, Kind, Prompt, ResultBase, SaeId

if TYPE_CHECKING:
    from workers.core.registry import ModelEntry
    from workers.core.steering import SteerRequest
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = ["KIND", "SteerResult", "SteerSpec"]


class SteerSpec(JobSpecBase):
    """Generation with and without one SAE feature's decoder direction added at its hook (or the feature clamped)."""

    kind: Literal["steer"] = "steer"
    prompt: Prompt
    sae: SaeId
    feature: int = Field(ge=0, le=10_000_000)
    coefficient: float = Field(
        default=STEER_COEFFICIENT, ge=-1000.0, le=1000.0, description="times the decoder direction"
    )
    clamp: float | None = Field(default=None, ge=-1000.0, le=1000.0, description="hold the feature at this value")
    max_new_tokens: int = Field(default=STEER_MAX_NEW_TOKENS, ge=1, le=256)
    temperature: float = Field(default=STEER_TEMPERATURE, ge=0.0, le=5.0, description="0: greedy")
    seed: int = Field(default=STEER_SEED, ge=0, le=2**31 - 1)

    def check_entry(self, entry: ModelEntry) -> None:
        entry.get_sae(self.sae)

    def check(self, view: ModelView) -> None:
        view.hook(view.sae_hook(self.sae), field="sae")
        view.sae_feature(self.sae, self.feature)
        total = self.prompt_lengths(view)[0]
        if total > view.card.max_tokens:
            raise InvalidRequestError(
                f"prompt plus max_new_tokens is {total} tokens; {view.model_id} accepts at most {view.card.max_tokens}",
                field="max_new_tokens",
                code="prompt_too_long",
            )

    def prompt_lengths(self, view: ModelView) -> list[int]:
        """Generation runs the plain and the steered sequence side by side, up to the last new token."""
        return [len(view.tokenize(self.prompt)) + self.max_new_tokens] * 2

    def to_request(self) -> SteerRequest:
        from workers.core.steering import SteerRequest

        return SteerRequest(
            prompt=self.prompt,
            feature=self.feature,
            coefficient=self.coefficient,
            clamp=self.clamp,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            seed=self.seed,
        )


class SteerResult(ResultBase):
    model: str
    sae: str
    hook: str
    feature: int
    coefficient: float
    clamp: float | None
    prompt: str
    tokens: list[str] = Field(description="the prompt's tokens")
    steered_text: str
    unsteered_text: str
    steered_tokens: list[str]
    unsteered_tokens: list[str]


def run(ctx: JobContext, spec: SteerSpec) -> SteerResult:
    from workers.core.steering import steer

    result = steer(
        ctx.model, ctx.load_sae(spec.sae), spec.to_request(), progress=ctx.progress, should_cancel=ctx.should_cancel
    )
    return SteerResult.model_validate(result)


KIND = Kind(spec=SteerSpec, result=SteerResult, run=run, soft_limit_s=300.0, hard_limit_s=330.0)
