"""The wire contract of jobs: pydantic specs discriminated on ``kind``, shared by the API and the workers.

Specs refuse unknown fields (``extra="forbid"``) and carry their limits as ``Field`` constraints, so a typo is a
400 naming the field and the OpenAPI document states every bound. This module imports pydantic only: the API
validates with it without importing torch; :mod:`workers.kinds` turns specs into core requests.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, RootModel, TypeAdapter, model_validator

__all__ = [
    "ATTRIBUTION_METHODS",
    "MAX_PROMPT_CHARS",
    "PATCHING_TARGETS",
    "AttributionSpec",
    "ContrastTarget",
    "JobSpec",
    "JobSubmission",
    "PatchingSpec",
    "SaeEncodeSpec",
    "SteerSpec",
    "TokenTarget",
    "job_spec_adapter",
]

MAX_PROMPT_CHARS = 20_000
ModelId = Annotated[str, Field(min_length=1, max_length=128, description="a served model id (GET /v1/models)")]
Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="text; BOS is prepended")]
TokenText = Annotated[str, Field(min_length=1, max_length=256, description="text that must be exactly one token")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _JobBase(_Spec):
    model: ModelId
    callback_url: HttpUrl | None = Field(
        default=None, description="POSTed the finished job, signed with X-Interp-Signature: sha256=HMAC(body)"
    )


class TokenTarget(_Spec):
    """Attribute the logit (or log-prob) of one token."""

    token: TokenText


class ContrastTarget(_Spec):
    """Attribute the logit difference between two tokens (first minus second)."""

    contrast: Annotated[list[TokenText], Field(min_length=2, max_length=2)]


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


class AttributionSpec(_JobBase):
    """Per-token (gradient methods) or per-component (direct logit attribution, logit lens) scores."""

    kind: Literal["attribution"] = "attribution"
    prompt: Prompt
    target: TokenTarget | ContrastTarget
    target_kind: Literal["logit", "logprob"] = Field(default="logit", description="attribute the logit or log-prob")
    position: int | None = Field(
        default=None, ge=-4096, le=4096, description="position of the prediction; negative from the end; last"
    )
    method: AttributionMethod = "integrated_gradients"
    n_steps: int = Field(default=50, ge=1, le=512, description="integrated gradients: quadrature steps")
    step_rule: Literal["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"] = (
        "gausslegendre"
    )
    baseline: Literal["zero", "pad", "bos"] = Field(
        default="pad",
        description=(
            "integrated gradients' baseline: pad-token embeddings with BOS kept (default: it converges on RMSNorm "
            "models, where a zero embedding is a near-singular point), BOS-token embeddings, or zero"
        ),
    )
    internal_batch_size: int | None = Field(default=None, ge=1, le=512, description="IG steps per forward")
    hook: str | None = Field(
        default=None, max_length=64, description="layer methods: a TransformerLens hook name, blocks.3.hook_resid_pre"
    )
    top_k: int = Field(default=10, ge=1, le=100, description="logit lens: tokens listed per layer")


PatchingTarget: TypeAlias = Literal[
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn_out",
    "mlp_out",
    "attn_out_all_pos",
    "mlp_out_all_pos",
    "head_out",
    "head_out_by_pos",
    "head_q",
    "head_k",
    "head_v",
    "head_q_by_pos",
    "head_k_by_pos",
    "head_v_by_pos",
    "head_pattern",
    "head_pattern_by_pos",
    "head_pattern_dest_src",
    "every_block",
]
PATCHING_TARGETS: tuple[str, ...] = get_args(PatchingTarget)
Index = Annotated[int, Field(ge=0, le=100_000)]


class PatchingSpec(_JobBase):
    """Activation patching between a clean and a corrupted prompt of the same token length."""

    kind: Literal["patching"] = "patching"
    clean_prompt: Prompt
    corrupted_prompt: Prompt
    answer: TokenText
    wrong_answer: TokenText | None = Field(default=None, description="required by metric logit_diff")
    metric: Literal["logit_diff", "logprob"] = "logit_diff"
    targets: Annotated[list[PatchingTarget], Field(min_length=1, max_length=len(PATCHING_TARGETS))] = Field(
        default_factory=lambda: cast(list[PatchingTarget], ["resid_pre"]),
        description="granularities; each gives one layer×position(×head) grid",
    )
    method: Literal["exact", "attribution"] = "exact"
    direction: Literal["denoise", "noise"] = "denoise"
    layers: Annotated[list[Index], Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="restrict the sweep to these layers (all when absent)"
    )
    positions: Annotated[list[Index], Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="restrict the sweep to these positions (all when absent)"
    )

    @model_validator(mode="after")
    def _wrong_answer_for_logit_diff(self) -> PatchingSpec:
        if self.metric == "logit_diff" and self.wrong_answer is None:
            raise ValueError("wrong_answer is required when metric is logit_diff")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets must not repeat")
        return self


class SaeEncodeSpec(_JobBase):
    """SAE features of every token of a prompt, or of each prompt of a batch (figures pooled over the batch)."""

    kind: Literal["sae_encode"] = "sae_encode"
    prompt: Prompt | None = None
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="a batch: one encoding per prompt, in order"
    )
    sae: Annotated[str, Field(min_length=1, max_length=128, description="an SAE id of the model")]
    top_k: int = Field(default=10, ge=1, le=1024, description="features kept per token, largest first")
    include_loss: bool = Field(default=False, description="also report the LM loss with the reconstruction spliced in")
    exclude_bos: bool = Field(default=True, description="leave BOS out of the pooled reconstruction figures")

    @model_validator(mode="after")
    def _one_of_prompt_or_prompts(self) -> SaeEncodeSpec:
        if (self.prompt is None) == (self.prompts is None):
            raise ValueError("give exactly one of prompt or prompts")
        return self

    @property
    def all_prompts(self) -> list[str]:
        return [self.prompt] if self.prompt is not None else list(self.prompts or [])


class SteerSpec(_JobBase):
    """Generation with and without one SAE feature's decoder direction added at its hook (or the feature clamped)."""

    kind: Literal["steer"] = "steer"
    prompt: Prompt
    sae: Annotated[str, Field(min_length=1, max_length=128)]
    feature: int = Field(ge=0, le=10_000_000)
    coefficient: float = Field(default=0.0, ge=-1000.0, le=1000.0, description="times the decoder direction")
    clamp: float | None = Field(default=None, ge=-1000.0, le=1000.0, description="hold the feature at this value")
    max_new_tokens: int = Field(default=20, ge=1, le=256)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0, description="0: greedy")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


JobSpec: TypeAlias = Annotated[AttributionSpec | PatchingSpec | SaeEncodeSpec | SteerSpec, Field(discriminator="kind")]

job_spec_adapter: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)
"""Validates and dumps a job spec of any kind (the worker re-validates what the API sent)."""


class JobSubmission(RootModel[JobSpec]):
    """The body of ``POST /v1/jobs``: one job spec, discriminated by ``kind``."""
