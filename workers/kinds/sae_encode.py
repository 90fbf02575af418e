"""``sae_encode``: SAE features of every token of a prompt or a batch, with reconstruction quality."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workers.core.defaults import SAE_EXCLUDE_BOS, SAE_INCLUDE_LOSS, SAE_TOP_K
from workers.kinds.base import JobSpecBase, Kind, Prompt, ResultBase, SaeId

if TYPE_CHECKING:
    from workers.core.registry import ModelEntry
    from workers.core.sae import SaeEncodeRequest
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = ["KIND", "SaeEncodeResult", "SaeEncodeSpec"]

MAX_PROMPTS = 64


class SaeEncodeSpec(JobSpecBase):
    """SAE features of every token of a prompt, or of each prompt of a batch (figures pooled over the batch)."""

    kind: Literal["sae_encode"] = "sae_encode"
    prompt: Prompt | None = None
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)] | None = Field(
        default=None, description="a batch: one encoding per prompt, in order"
    )
    sae: SaeId
    top_k: int = Field(default=SAE_TOP_K, ge=1, le=1024, description="features kept per token, largest first")
    include_loss: bool = Field(
        default=SAE_INCLUDE_LOSS, description="also report the LM loss with the reconstruction spliced in"
    )
    exclude_bos: bool = Field(
        default=SAE_EXCLUDE_BOS, description="leave BOS out of the pooled reconstruction figures"
    )

    @model_validator(mode="after")
    def _one_of_prompt_or_prompts(self) -> SaeEncodeSpec:
        if (self.prompt is None) == (self.prompts is None):
            raise ValueError("give exactly one of prompt or prompts")
        return self

    @property
    def all_prompts(self) -> list[str]:
        return [self.prompt] if self.prompt is not None else list(self.prompts or [])

    def _fields(self) -> list[tuple[str, str]]:
        if self.prompt is not None:
            return [("prompt", self.prompt)]
        return [(f"prompts.{i}", p) for i, p in enumerate(self.prompts or [])]

    def check_entry(self, entry: ModelEntry) -> None:
        entry.get_sae(self.sae)

    def check(self, view: ModelView) -> None:
        view.hook(view.sae_hook(self.sae), field="sae")
        self.prompt_lengths(view)

    def prompt_lengths(self, view: ModelView) -> list[int]:
        return [len(view.tokenize(prompt, field=field)) for field, prompt in self._fields()]

    def to_request(self) -> SaeEncodeRequest:
        from workers.core.sae import SaeEncodeRequest

        return SaeEncodeRequest(
            prompts=tuple(self.all_prompts),
            top_k=self.top_k,
            include_loss=self.include_loss,
            exclude_bos=self.exclude_bos,
        )


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class FeatureActivation(_Part):
    feature: int
    activation: float


class Reconstruction(_Part):
    """Over the counted tokens: mean squared error per value, and 1 − SSE / total sum of squares."""

    mse: float
    explained_variance: float | None
    tokens: int


class LossRecovered(_Part):
    """Mean next-token loss clean, with the reconstruction spliced in, and with the hook zeroed;
    ``loss_recovered`` = (zero − sae) / (zero − clean)."""

    clean_loss: float
    sae_loss: float
    zero_ablation_loss: float
    loss_recovered: float | None
    predictions: int


class PromptEncoding(_Part):
    prompt: str
    tokens: list[str]
    features: list[list[FeatureActivation]] = Field(description="per token, its top features, largest first")
    l0: list[int] = Field(description="per token, how many features are active")
    token_mse: list[float]
    reconstruction: Reconstruction
    loss: LossRecovered | None = None


class SaeEncodeResult(ResultBase):
    model: str
    sae: str
    hook: str
    top_k: int
    prompts: list[PromptEncoding] = Field(description="one encoding per prompt, in request order")
    reconstruction: Reconstruction = Field(description="pooled over every prompt")
    loss: LossRecovered | None = None


def run(ctx: JobContext, spec: SaeEncodeSpec) -> SaeEncodeResult:
    from workers.core.sae import encode_sae

    result = encode_sae(
        ctx.model,
        ctx.load_sae(spec.sae),
        spec.to_request(),
        reader=ctx.reader,
        progress=ctx.progress,
        should_cancel=ctx.should_cancel,
    )
    return SaeEncodeResult.model_validate(result)


KIND = Kind(spec=SaeEncodeSpec, result=SaeEncodeResult, run=run, soft_limit_s=120.0, hard_limit_s=150.0)
