# Generated from openapi.yaml by client/scripts/generate_models.py: do not edit; regenerate instead.

from __future__ import annotations

from typing import Annotated, Any, Literal

from interp_client.result_methods import (
    AttributionMethods,
    GridMethods,
    PatchGridMethods,
    PatchingMethods,
    SaeEncodeMethods,
    SaeFeaturesMethods,
    SteerMethods,
)
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypeAliasType

TopK = TypeAliasType("TopK", Annotated[int, Field(ge=1, le=1024)])
"""
keep the k largest |values| of the last axis, with their indices
"""


class ActivationsSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    dims: list[int] | None = None
    """
    indices of the feature axis to keep: d_model, d_mlp or d_head (all when absent)
    """
    heads: list[int] | None = None
    """
    heads to keep at per-head hooks (all when absent)
    """
    hooks: Annotated[list[str], Field(max_length=256, min_length=1)]
    """
    TransformerLens hook names; blocks.*.site means that site at every layer of `layers`
    """
    kind: Literal["activations"] = "activations"
    layers: list[int] | None = None
    """
    the layers a blocks.*. hook expands to (all when absent)
    """
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    output: Literal["auto", "json", "safetensors"] = "auto"
    """
    auto: JSON up to 1000000 bytes of values, else a safetensors file the result links to; json: refuse a larger result; safetensors: always the file
    """
    positions: list[int] | None = None
    """
    positions to keep, negative from the end (all when absent)
    """
    prompt: str | None = None
    prompts: list[str] | None = None
    """
    a batch: each prompt read on its own, results in the same order
    """
    top_k: TopK | None = None
    """
    keep the k largest |values| of the last axis, with their indices
    """


class ArtifactLink(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    bytes: Annotated[int, Field(ge=0)]
    """
    the file's size
    """
    expires_at: float
    """
    when the file is deleted (Unix seconds); the job record lasts longer
    """
    format: str = "safetensors"
    """
    always safetensors: tensors by name, no code in the file
    """
    name: str
    """
    the file's name, unique within the job
    """
    url: str
    """
    the path to GET it from, with the job's API key
    """


class AttentionSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    heads: list[int] | None = None
    """
    heads to keep in every layer (all when absent)
    """
    kind: Literal["attention"] = "attention"
    layers: list[int] | None = None
    """
    layers to read (all when absent)
    """
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    prompt: Annotated[str, Field(max_length=20000, min_length=1)]
    """
    text; BOS is prepended
    """
    summaries: bool = True
    """
    add per-head entropy, BOS and previous-token attention
    """


Hook = TypeAliasType("Hook", Annotated[str, Field(max_length=64)])
"""
layer methods: a TransformerLens hook name, blocks.3.hook_resid_pre
"""


InternalBatchSize = TypeAliasType(
    "InternalBatchSize", Annotated[int, Field(ge=1, le=512)]
)
"""
IG steps per forward
"""


Position = TypeAliasType("Position", Annotated[int, Field(ge=-4096, le=4096)])
"""
position of the prediction; negative from the end; last
"""


class Completeness(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    attribution_sum: float
    baseline_value: float
    converged: bool | None = None
    """
    relative_error is within tolerance
    """
    delta: float
    evaluations: int | None = None
    """
    gradients computed (auto with Gauss-Legendre: more)
    """
    expected: float
    input_value: float
    relative_error: float
    steps_used: int | None = None
    """
    points of the final quadrature rule
    """
    tolerance: float | None = None
    """
    max_relative_error
    """


class ContrastTarget(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    contrast: Annotated[list[str], Field(max_length=2, min_length=2)]


class CreatedKey(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    created_at: AwareDatetime
    key: str
    """
    the key itself, `isk_…`: shown in this answer only, store it now
    """
    key_id: str
    scope: Literal["jobs", "admin"]
    tenant: str


class Decomposition(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    component_sum: float
    residual_error: float
    target_value: float


class ErrorInfo(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    code: str
    """
    stable snake_case code: unknown_model, prompt_too_long, invalid_request, …
    """
    field: str | None = None
    """
    the request field at fault, when there is one
    """
    message: str


class FeatureActivation(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    activation: float
    feature: int


class Grid(GridMethods):
    """
    axes layer, head, query_position (destination), key_position (source)
    """

    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    axes: list[str]
    """
    axis names, outermost first: layer, position, head, component, …
    """
    labels: dict[str, list[str | int]]
    """
    for each axis, the label of every index
    """
    units: str
    """
    what a value measures: a chart's colour-bar or axis title
    """
    values: list[Any]
    """
    nested lists of numbers, one level per axis in `axes` order; null where undefined
    """


class HeadScoresResult(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    error_measure: str
    model: str
    schema_version: int = 1
    scores: dict[str, Grid]
    token_ids: list[list[int]]
    """
    each sequence's token ids (repeated_random: the draws)
    """
    tokens: list[list[str]]
    """
    each sequence's tokens, BOS first
    """


CustomPattern = TypeAliasType(
    "CustomPattern", Annotated[list[float], Field(max_length=4096)]
)


class HookValues(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    axes: list[str]
    """
    position, head, d_head, d_model, d_mlp, query_position, key_position, top_k
    """
    indices: list[Any] | None = None
    """
    with top_k: each value's index on the sliced axis
    """
    labels: dict[str, list[str | int]]
    """
    per axis the label of every index: token strings for positions, the kept index otherwise, the rank for top_k
    """
    shape: list[int]
    sliced_axis: str | None = None
    """
    with top_k: the axis top_k replaced
    """
    tensor: str | None = None
    """
    with an artifact: the values' tensor name in the file (the indices are `{tensor}.indices`)
    """
    values: list[Any] | None
    """
    the numbers; null when they are in the result's `artifact`
    """


class JobError(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    code: str
    field: str | None = None
    message: str
    retryable: bool = False


class JobEvent(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    at: float
    progress: float
    seq: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JointEffect(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    raw_value: float
    """
    the metric with every head patched at once
    """
    value: float | None
    """
    its normalised effect; null when clean equals corrupted
    """


class KeyInfo(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    created_at: AwareDatetime
    key_id: str
    scope: Literal["jobs", "admin"]
    tenant: str


class KeyList(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    items: list[KeyInfo]


class KeyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    scope: Literal["jobs", "admin"] = "jobs"
    """
    `jobs`, or `admin` to manage keys as well
    """
    tenant: str
    """
    the tenant the key's jobs belong to
    """


class Limits(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    active_jobs: int | None
    """
    the tenant's queued and running jobs now; null without a limit (they are not counted then)
    """
    key_id: str | None
    """
    the caller's key; null where the server checks none (auth off)
    """
    max_active_jobs: int
    """
    queued and running jobs per tenant (0: no limit); over it, 429 `too_many_active_jobs` with `Retry-After`
    """
    rate_limit: int
    """
    requests per key per `rate_window_s` (0: no limit); over it, 429 `rate_limited` with `Retry-After`
    """
    rate_window_s: int
    scope: Literal["jobs", "admin"]
    tenant: str
    """
    whose jobs this caller sees and submits
    """


class LossRecovered(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    clean_loss: float
    loss_recovered: float | None
    predictions: int
    sae_loss: float
    zero_ablation_loss: float


class PatchGrid(PatchGridMethods):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    axes: list[str]
    """
    axis names, outermost first: layer, position, head, component, …
    """
    labels: dict[str, list[str | int]]
    """
    for each axis, the label of every index
    """
    normalised: bool
    """
    values are (patched − corrupted) / (clean − corrupted); false when clean equals corrupted
    """
    raw_units: str
    """
    what `raw_values` measure: the metric
    """
    raw_values: list[Any]
    """
    the patched metric itself
    """
    units: str
    """
    what a value measures: a chart's colour-bar or axis title
    """
    values: list[Any]
    """
    nested lists of numbers, one level per axis in `axes` order; null where undefined
    """


class PatchingSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    answer: Annotated[str, Field(max_length=256, min_length=1)]
    """
    text that must be exactly one token
    """
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    clean_prompt: Annotated[str, Field(max_length=20000, min_length=1)]
    """
    text; BOS is prepended
    """
    corrupted_prompt: Annotated[str, Field(max_length=20000, min_length=1)]
    """
    text; BOS is prepended
    """
    direction: Literal["denoise", "noise"] | None = None
    """
    denoise patches clean activations into the corrupted run, noise corrupted into clean; absent: denoise for exact and attribution, noise for path (Wang et al. 2022)
    """
    freeze_mlps: bool = False
    """
    path: also freeze MLP outputs at their base values
    """
    kind: Literal["patching"] = "patching"
    layers: list[int] | None = None
    """
    exact and attribution: restrict the sweep to these layers (all when absent)
    """
    method: Literal["exact", "attribution", "path"] = "exact"
    metric: Literal["logit_diff", "logprob"] = "logit_diff"
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    positions: list[int] | None = None
    """
    exact and attribution: restrict the sweep to these positions (all when absent)
    """
    receiver_inputs: Annotated[
        list[Literal["q", "k", "v"]] | None, Field(max_length=3, min_length=1)
    ] = None
    """
    path: which inputs of the receivers carry the senders' effect
    """
    receivers: list[list[int]] | Literal["logits"] | None = None
    """
    path: the receiver heads, [[layer, head], …], or "logits" for each sender's direct path into the final residual (name movers); required by method path
    """
    senders: list[list[int]] | None = None
    """
    path: the sender heads swept one at a time (every head when absent)
    """
    targets: Annotated[
        list[Literal["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "attn_out_all_pos", "mlp_out_all_pos", "head_out", "head_out_by_pos", "head_q", "head_k", "head_v", "head_q_by_pos", "head_k_by_pos", "head_v_by_pos", "head_pattern", "head_pattern_by_pos", "head_pattern_dest_src", "every_block"]] | None,
        Field(max_length=19),
    ] = None
    """
    exact and attribution: granularities; each gives one layer×position(×head) grid (may be empty when `together` is given)
    """
    together: list[list[int]] | None = None
    """
    exact: heads whose outputs (attn.hook_z) are also patched all at once, at `positions` (all when absent): a circuit's joint effect, in the result's `together`
    """
    wrong_answer: str | None = None
    """
    required by metric logit_diff
    """


class PathDetails(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    joint: JointEffect
    receiver_inputs: list[str]
    receivers: list[list[int]] | Literal["logits"]
    """
    [[layer, head], …] whose inputs carried the senders' effect, or "logits" (the direct path)
    """


class PromptActivations(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    activations: list[float]
    """
    the feature's activation at each token
    """
    max_activation: float
    max_position: int
    """
    the token where the feature is largest (the first, on ties)
    """
    tokens: list[str]
    """
    the prompt's tokens, BOS first
    """


class PromptHooks(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    hooks: dict[str, HookValues]
    """
    by hook name, in request order (blocks.*. in `layers` order)
    """
    tokens: list[str]
    """
    the prompt's tokens, BOS first
    """


class RankedToken(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    probability: float
    rank: int
    """
    1 is the most likely token
    """
    token: str
    token_id: int


class ReadinessReport(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checks: dict[str, str]
    """
    per dependency (store, broker): "ok", or why not
    """
    status: Literal["ready", "unavailable"]


class Reconstruction(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    explained_variance: float | None
    mse: float
    tokens: int


class RepeatedRandom(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    batch: Annotated[int, Field(ge=1, le=64)] = 1
    """
    sequences; the scores are their mean
    """
    length: Annotated[int, Field(ge=1, le=4096)]
    """
    random tokens before the repeat; the sequence is 2·length + 1
    """
    seed: Annotated[int, Field(ge=0, le=4294967295)] = 0


class SaeEncodeSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    exclude_bos: bool = True
    """
    leave BOS out of the pooled reconstruction figures
    """
    include_loss: bool = False
    """
    also report the LM loss with the reconstruction spliced in
    """
    kind: Literal["sae_encode"] = "sae_encode"
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    prompt: str | None = None
    prompts: list[str] | None = None
    """
    a batch: each prompt read on its own, results in the same order
    """
    sae: Annotated[str, Field(max_length=128, min_length=1)]
    """
    an SAE id of the model (GET /v1/models)
    """
    top_k: Annotated[int, Field(ge=1, le=1024)] = 10
    """
    features kept per token, largest first
    """


class SaeFeaturesSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    feature: Annotated[int, Field(ge=0, le=10000000)]
    """
    the feature id, 0..d_sae−1 (GET /v1/models)
    """
    kind: Literal["sae_features"] = "sae_features"
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    prompt: str | None = None
    prompts: list[str] | None = None
    """
    a batch: each prompt read on its own, results in the same order
    """
    sae: Annotated[str, Field(max_length=128, min_length=1)]
    """
    an SAE id of the model (GET /v1/models)
    """
    top_n: Annotated[int, Field(ge=0, le=200)] = 10
    """
    tokens the decoder direction promotes most and suppresses most; 0 leaves logit effects out (SAEs that do not read a d_model-wide hook have none)
    """


class SaeInfo(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    hook: str
    id: str


class SteerResult(SteerMethods):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    clamp: float | None
    coefficient: float
    feature: int
    hook: str
    model: str
    prompt: str
    sae: str
    schema_version: int = 1
    steered_text: str
    steered_tokens: list[str]
    tokens: list[str]
    """
    the prompt's tokens
    """
    unsteered_text: str
    unsteered_tokens: list[str]


Clamp = TypeAliasType("Clamp", Annotated[float, Field(ge=-1000.0, le=1000.0)])
"""
hold the feature at this value
"""


class SteerSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    clamp: Clamp | None = None
    """
    hold the feature at this value
    """
    coefficient: Annotated[float, Field(ge=-1000.0, le=1000.0)] = 0.0
    """
    times the decoder direction
    """
    feature: Annotated[int, Field(ge=0, le=10000000)]
    kind: Literal["steer"] = "steer"
    max_new_tokens: Annotated[int, Field(ge=1, le=256)] = 20
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    prompt: Annotated[str, Field(max_length=20000, min_length=1)]
    """
    text; BOS is prepended
    """
    sae: Annotated[str, Field(max_length=128, min_length=1)]
    """
    an SAE id of the model (GET /v1/models)
    """
    seed: Annotated[int, Field(ge=0, le=2147483647)] = 0
    temperature: Annotated[float, Field(ge=0.0, le=5.0)] = 0.0
    """
    0: greedy
    """


class TargetReport(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    description: str
    kind: str
    position: int
    token_ids: list[int]
    tokens: list[str]
    value: float


class TokenEffect(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    effect: float
    """
    change in the token's logit per unit of the feature's activation
    """
    token: str
    token_id: int


class TokenTarget(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    token: Annotated[str, Field(max_length=256, min_length=1)]
    """
    text that must be exactly one token
    """


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    prepend_bos: bool = True
    prompt: Annotated[str, Field(max_length=20000, min_length=1)]
    """
    text; BOS is prepended
    """


class TokenizeResponse(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    model: str
    n_tokens: int
    token_ids: list[int]
    tokens: list[str]
    """
    each id decoded on its own: axis labels
    """


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    attempts: Annotated[int, Field(ge=0)]
    """
    POSTs tried so far, at most 1 + INTERP_WEBHOOK_MAX_RETRIES
    """
    last_error: str | None = None
    """
    why the last attempt did not deliver
    """
    last_status_code: int | None = None
    """
    the receiver's last HTTP status, if it answered
    """
    status: Literal["pending", "delivered", "failed", "refused"]


class ActivationsResult(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    artifact: ArtifactLink | None = None
    """
    the safetensors file holding the values, when they were too many for JSON
    """
    model: str
    prompts: list[PromptHooks]
    """
    one per prompt, in request order
    """
    schema_version: int = 1


class AttentionResult(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    bos_attention: Grid | None
    """
    layer × head: mean attention paid to the first token (BOS)
    """
    entropy: Grid | None
    """
    layer × head: mean entropy of a destination's pattern, in nats
    """
    model: str
    patterns: Grid
    """
    axes layer, head, query_position (destination), key_position (source)
    """
    previous_token_attention: Grid | None
    """
    layer × head: mean attention to the previous token over destinations 1..n−1
    """
    schema_version: int = 1
    tokens: list[str]
    """
    the prompt's tokens, BOS first
    """


class AttributionSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    baseline: Literal["zero", "pad", "bos"] = "pad"
    """
    integrated gradients' baseline: pad-token embeddings with BOS kept (default: it converges on RMSNorm models, where a zero embedding is a near-singular point), BOS-token embeddings, or zero
    """
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    hook: Hook | None = None
    """
    layer methods: a TransformerLens hook name, blocks.3.hook_resid_pre
    """
    internal_batch_size: InternalBatchSize | None = None
    """
    IG steps per forward
    """
    kind: Literal["attribution"] = "attribution"
    max_relative_error: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01
    """
    n_steps auto: the completeness error to reach; every result reports converged against it
    """
    max_steps: Annotated[int, Field(ge=2, le=2048)] = 1024
    """
    n_steps auto: the most steps tried
    """
    method: Literal["saliency", "input_x_gradient", "integrated_gradients", "layer_integrated_gradients", "gradient_x_activation", "direct_logit_attribution", "logit_lens"] = (
        "integrated_gradients"
    )
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    n_steps: int | str = 50
    """
    integrated gradients: quadrature steps, or "auto": grow them until the completeness error is within max_relative_error (or max_steps is reached)
    """
    position: Position | None = None
    """
    position of the prediction; negative from the end; last
    """
    prompt: Annotated[str, Field(max_length=20000, min_length=1)]
    """
    text; BOS is prepended
    """
    step_rule: Literal["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"] | None = (
        None
    )
    """
    absent: gausslegendre, or riemann_middle with n_steps auto (tripling its steps reuses every earlier point; the left, right and trapezoid sums nest by doubling; Gauss-Legendre's points do not nest, so auto re-evaluates them at each size)
    """
    target: TokenTarget | ContrastTarget
    target_kind: Literal["logit", "logprob"] = "logit"
    """
    attribute the logit or log-prob
    """
    top_k: Annotated[int, Field(ge=1, le=100)] = 10
    """
    logit lens: tokens listed per layer
    """


class Checks(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    completeness: Completeness | None = None
    decomposition: Decomposition | None = None


class ErrorBody(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    error: ErrorInfo


class HeadScoresJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["head_scores"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: HeadScoresResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class HeadScoresSpec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
    )
    callback_url: str | None = None
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    custom_patterns: (
        dict[
            Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")],
            list[CustomPattern],
        ]
        | None
    ) = None
    """
    name → destination × source pattern, its size the sequence's token count (BOS included)
    """
    detectors: Annotated[
        list[Literal["previous_token", "duplicate_token", "induction"]] | None,
        Field(max_length=3),
    ] = None
    """
    built-in detection patterns
    """
    error_measure: Literal["mul", "abs"] = "mul"
    """
    mul: share of attention on the pattern; abs: 1 − mean absolute difference (TL rounds to 3 places)
    """
    exclude_bos: bool = False
    """
    leave attention to BOS out of the comparison
    """
    exclude_current_token: bool = False
    """
    leave attention to the token itself out
    """
    kind: Literal["head_scores"] = "head_scores"
    model: Annotated[str, Field(max_length=128, min_length=1)]
    """
    a served model id (GET /v1/models)
    """
    prompt: str | None = None
    prompts: list[str] | None = None
    """
    a batch: each scored on its own, the scores averaged (as TransformerLens)
    """
    repeated_random: RepeatedRandom | None = None


class LensLayer(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    hook: str
    targets: list[RankedToken]
    top_k: list[RankedToken]
    value: float


class LogitEffects(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    promoted: list[TokenEffect]
    """
    largest effect first
    """
    suppressed: list[TokenEffect]
    """
    most negative effect first
    """


class ModelInfo(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    architecture: str | None = None
    d_head: int | None = None
    d_mlp: int | None = None
    d_model: int | None = None
    d_vocab: int | None = None
    dtype: str
    family: str | None = None
    hook_names: list[str] | None = None
    id: str
    max_artifact_bytes: int
    """
    bytes of the file a job may link to when its result is too large for JSON (0: none)
    """
    max_patches: int
    """
    patches per patching job (layers × positions × heads over its targets)
    """
    max_tokens: int
    """
    tokens per prompt, BOS included
    """
    n_ctx: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    n_layers: int | None = None
    ready: bool
    saes: list[SaeInfo]
    weights_revision: str


class ModelList(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    items: list[ModelInfo]


class PatchingResult(PatchingMethods):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    clean_metric: float
    corrupted_metric: float
    corrupted_tokens: list[str]
    direction: str
    method: str
    metric: str
    normalised: bool
    """
    false when the clean and corrupted metrics are equal
    """
    path: PathDetails | None = None
    """
    method path only
    """
    schema_version: int = 1
    targets: dict[str, PatchGrid]
    together: JointEffect | None = None
    """
    exact with the spec's `together`: the metric with those heads patched at once
    """
    tokens: list[str]
    """
    the clean prompt's tokens, BOS first
    """
    warnings: list[str] | None = None


class PromptEncoding(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    features: list[list[FeatureActivation]]
    """
    per token, its top features, largest first
    """
    l0: list[int]
    """
    per token, how many features are active
    """
    loss: LossRecovered | None = None
    prompt: str
    reconstruction: Reconstruction
    token_mse: list[float]
    tokens: list[str]


class SaeEncodeResult(SaeEncodeMethods):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    hook: str
    loss: LossRecovered | None = None
    model: str
    prompts: list[PromptEncoding]
    """
    one encoding per prompt, in request order
    """
    reconstruction: Reconstruction
    """
    pooled over every prompt
    """
    sae: str
    schema_version: int = 1
    top_k: int


class SaeFeaturesResult(SaeFeaturesMethods):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    feature: int
    hook: str
    logit_effects: LogitEffects | None
    """
    null when top_n is 0
    """
    model: str
    prompts: list[PromptActivations]
    """
    one per prompt, in request order
    """
    sae: str
    schema_version: int = 1


class SteerJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["steer"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: SteerResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class ActivationsJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["activations"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: ActivationsResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class AttentionJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["attention"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: AttentionResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class AttributionResult(AttributionMethods):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checks: Checks
    grids: dict[str, Grid] | None = None
    logit_lens: list[LensLayer] | None = None
    method: str
    model: str
    options: dict[str, Any]
    schema_version: int = 1
    scores: list[Any] | None = None
    """
    one score per token of `tokens`
    """
    target: TargetReport
    token_ids: list[int]
    tokens: list[str]
    warnings: list[str] | None = None


class PatchingJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["patching"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: PatchingResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class SaeEncodeJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["sae_encode"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: SaeEncodeResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class SaeFeaturesJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["sae_features"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: SaeFeaturesResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class AttributionJob(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    checked: bool = True
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: AwareDatetime
    error: JobError | None = None
    finished_at: AwareDatetime | None = None
    id: str
    kind: Literal["attribution"]
    model: str
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    queue_position: int | None = None
    """
    jobs ahead of this one while queued
    """
    request_id: str | None = None
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: AttributionResult | None = None
    """
    present once the job succeeded
    """
    started_at: AwareDatetime | None = None
    stats: dict[str, float] | None = None
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: WebhookDelivery | None = None
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class JobPage(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
    )
    items: list[
        Annotated[
            ActivationsJob | AttentionJob | AttributionJob | HeadScoresJob | PatchingJob | SaeEncodeJob | SaeFeaturesJob | SteerJob,
            Field(discriminator="kind"),
        ]
    ]
    limit: int
    offset: int
    total: int
