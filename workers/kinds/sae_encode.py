"""``sae_encode``: SAE features of every token of a prompt or a batch, with reconstruction quality."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from workers.core.defaults import SAE_EXCLUDE_BOS, SAE_INCLUDE_LOSS, SAE_TOP_K
from workers.kinds.base import Kind, ResultBase, ResultPart, SharesForwards
from workers.kinds.sae_prompts import SaePromptsSpec

if TYPE_CHECKING:
    from workers.core.sae import SaeEncodeRequest
    from workers.kinds.context import JobContext

__all__ = ["KIND", "SaeEncodeResult", "SaeEncodeSpec"]

class SaeEncodeSpec(SharesForwards, SaePromptsSpec):
    """SAE features of every token of a prompt, or of each prompt of a batch (figures pooled over the batch)."""

    kind: Literal["sae_encode"] = "sae_encode"

    top_k: int = Field(default=SAE_TOP_K, ge=1, le=1024, description="features kept per token, largest first")
    include_loss: bool = Field(
        default=SAE_INCLUDE_LOSS, description="also report the LM loss with the reconstruction spliced in"
    )
    exclude_bos: bool = Field(
        default=SAE_EXCLUDE_BOS, description="leave BOS out of the pooled reconstruction figures"
    )

    def to_request(self) -> SaeEncodeRequest:
        from workers.core.sae import SaeEncodeRequest

        return SaeEncodeRequest(
            prompts=tuple(self.all_prompts),
            top_k=self.top_k,
            include_loss=self.include_loss,
            exclude_bos=self.exclude_bos,
        )


class FeatureActivation(ResultPart):
    feature: int
    activation: float


class Reconstruction(ResultPart):
    """Over the counted tokens: mean squared error per value, and 1 − SSE / total sum of squares."""

    mse: float
    explained_variance: float | None
    tokens: int


class LossRecovered(ResultPart):
    """Mean next-token loss clean, with the reconstruction spliced in, and with the hook zeroed;
    ``loss_recovered`` = (zero − sae) / (zero − clean)."""

    clean_loss: float
    sae_loss: float
    zero_ablation_loss: float
    loss_recovered: float | None
    predictions: int


class PromptEncoding(ResultPart):
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
