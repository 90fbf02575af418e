# Generated from openapi.yaml by client/scripts/generate_models.py: do not edit; regenerate instead.

from __future__ import annotations

from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict


class ActivationsSpec(TypedDict, closed=True):
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    dims: NotRequired[list[int] | None]
    """
    indices of the feature axis to keep: d_model, d_mlp or d_head (all when absent)
    """
    heads: NotRequired[list[int] | None]
    """
    heads to keep at per-head hooks (all when absent)
    """
    hooks: list[str]
    """
    TransformerLens hook names; blocks.*.site means that site at every layer of `layers`
    """
    layers: NotRequired[list[int] | None]
    """
    the layers a blocks.*. hook expands to (all when absent)
    """
    model: str
    """
    a served model id (GET /v1/models)
    """
    output: NotRequired[Literal["auto", "json", "safetensors"]]
    """
    auto: JSON up to 1000000 bytes of values, else a safetensors file the result links to; json: refuse a larger result; safetensors: always the file
    """
    positions: NotRequired[list[int] | None]
    """
    positions to keep, negative from the end (all when absent)
    """
    prompt: NotRequired[str | None]
    prompts: NotRequired[list[str] | None]
    """
    a batch: each prompt read on its own, results in the same order
    """
    top_k: NotRequired[int | None]
    """
    keep the k largest |values| of the last axis, with their indices
    """


class ArtifactLink(TypedDict):
    bytes: int
    """
    the file's size
    """
    expires_at: float
    """
    when the file is deleted (Unix seconds); the job record lasts longer
    """
    format: NotRequired[str]
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


class AttentionSpec(TypedDict, closed=True):
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    heads: NotRequired[list[int] | None]
    """
    heads to keep in every layer (all when absent)
    """
    layers: NotRequired[list[int] | None]
    """
    layers to read (all when absent)
    """
    model: str
    """
    a served model id (GET /v1/models)
    """
    prompt: str
    """
    text; BOS is prepended
    """
    summaries: NotRequired[bool]
    """
    add per-head entropy, BOS and previous-token attention
    """


class Completeness(TypedDict):
    attribution_sum: float
    baseline_value: float
    converged: NotRequired[bool | None]
    """
    relative_error is within tolerance
    """
    delta: float
    evaluations: NotRequired[int | None]
    """
    gradients computed (auto with Gauss-Legendre: more)
    """
    expected: float
    input_value: float
    relative_error: float
    steps_used: NotRequired[int | None]
    """
    points of the final quadrature rule
    """
    tolerance: NotRequired[float | None]
    """
    max_relative_error
    """


class ContrastTarget(TypedDict, closed=True):
    contrast: list[str]


class CreatedKey(TypedDict):
    created_at: str
    key: str
    """
    the key itself, `isk_…`: shown in this answer only, store it now
    """
    key_id: str
    scope: Literal["jobs", "admin"]
    tenant: str


class Decomposition(TypedDict):
    component_sum: float
    residual_error: float
    target_value: float


class ErrorInfo(TypedDict):
    code: str
    """
    stable snake_case code: unknown_model, prompt_too_long, invalid_request, …
    """
    field: NotRequired[str | None]
    """
    the request field at fault, when there is one
    """
    message: str


class FeatureActivation(TypedDict):
    activation: float
    feature: int


class Grid(TypedDict):
    """
    axes layer, head, query_position (destination), key_position (source)
    """

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


class HeadScoresResult(TypedDict):
    error_measure: str
    model: str
    schema_version: NotRequired[int]
    scores: dict[str, Grid]
    token_ids: list[list[int]]
    """
    each sequence's token ids (repeated_random: the draws)
    """
    tokens: list[list[str]]
    """
    each sequence's tokens, BOS first
    """


class HookValues(TypedDict):
    axes: list[str]
    """
    position, head, d_head, d_model, d_mlp, query_position, key_position, top_k
    """
    indices: NotRequired[list[Any] | None]
    """
    with top_k: each value's index on the sliced axis
    """
    labels: dict[str, list[str | int]]
    """
    per axis the label of every index: token strings for positions, the kept index otherwise, the rank for top_k
    """
    shape: list[int]
    sliced_axis: NotRequired[str | None]
    """
    with top_k: the axis top_k replaced
    """
    tensor: NotRequired[str | None]
    """
    with an artifact: the values' tensor name in the file (the indices are `{tensor}.indices`)
    """
    values: list[Any] | None
    """
    the numbers; null when they are in the result's `artifact`
    """


class JobError(TypedDict):
    code: str
    field: NotRequired[str | None]
    message: str
    retryable: NotRequired[bool]


class JobEvent(TypedDict):
    at: float
    progress: float
    seq: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JointEffect(TypedDict):
    raw_value: float
    """
    the metric with every head patched at once
    """
    value: float | None
    """
    its normalised effect; null when clean equals corrupted
    """


class KeyInfo(TypedDict):
    created_at: str
    key_id: str
    scope: Literal["jobs", "admin"]
    tenant: str


class KeyList(TypedDict):
    items: list[KeyInfo]


class KeyRequest(TypedDict, closed=True):
    scope: NotRequired[Literal["jobs", "admin"]]
    """
    `jobs`, or `admin` to manage keys as well
    """
    tenant: str
    """
    the tenant the key's jobs belong to
    """


class Limits(TypedDict):
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


class LossRecovered(TypedDict):
    clean_loss: float
    loss_recovered: float | None
    predictions: int
    sae_loss: float
    zero_ablation_loss: float


class PatchGrid(TypedDict):
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


class PatchingSpec(TypedDict, closed=True):
    answer: str
    """
    text that must be exactly one token
    """
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    clean_prompt: str
    """
    text; BOS is prepended
    """
    corrupted_prompt: str
    """
    text; BOS is prepended
    """
    direction: NotRequired[Literal["denoise", "noise"] | None]
    """
    denoise patches clean activations into the corrupted run, noise corrupted into clean; absent: denoise for exact and attribution, noise for path (Wang et al. 2022)
    """
    freeze_mlps: NotRequired[bool]
    """
    path: also freeze MLP outputs at their base values
    """
    layers: NotRequired[list[int] | None]
    """
    exact and attribution: restrict the sweep to these layers (all when absent)
    """
    method: NotRequired[Literal["exact", "attribution", "path"]]
    metric: NotRequired[Literal["logit_diff", "logprob"]]
    model: str
    """
    a served model id (GET /v1/models)
    """
    positions: NotRequired[list[int] | None]
    """
    exact and attribution: restrict the sweep to these positions (all when absent)
    """
    receiver_inputs: NotRequired[list[Literal["q", "k", "v"]]]
    """
    path: which inputs of the receivers carry the senders' effect
    """
    receivers: NotRequired[list[list[int]] | Literal["logits"] | None]
    """
    path: the receiver heads, [[layer, head], …], or "logits" for each sender's direct path into the final residual (name movers); required by method path
    """
    senders: NotRequired[list[list[int]] | None]
    """
    path: the sender heads swept one at a time (every head when absent)
    """
    targets: NotRequired[list[Literal["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "attn_out_all_pos", "mlp_out_all_pos", "head_out", "head_out_by_pos", "head_q", "head_k", "head_v", "head_q_by_pos", "head_k_by_pos", "head_v_by_pos", "head_pattern", "head_pattern_by_pos", "head_pattern_dest_src", "every_block"]]]
    """
    exact and attribution: granularities; each gives one layer×position(×head) grid (may be empty when `together` is given)
    """
    together: NotRequired[list[list[int]] | None]
    """
    exact: heads whose outputs (attn.hook_z) are also patched all at once, at `positions` (all when absent): a circuit's joint effect, in the result's `together`
    """
    wrong_answer: NotRequired[str | None]
    """
    required by metric logit_diff
    """


class PathDetails(TypedDict):
    joint: JointEffect
    receiver_inputs: list[str]
    receivers: list[list[int]] | Literal["logits"]
    """
    [[layer, head], …] whose inputs carried the senders' effect, or "logits" (the direct path)
    """


class PromptActivations(TypedDict):
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


class PromptHooks(TypedDict):
    hooks: dict[str, HookValues]
    """
    by hook name, in request order (blocks.*. in `layers` order)
    """
    tokens: list[str]
    """
    the prompt's tokens, BOS first
    """


class RankedToken(TypedDict):
    probability: float
    rank: int
    """
    1 is the most likely token
    """
    token: str
    token_id: int


class ReadinessReport(TypedDict):
    checks: dict[str, str]
    """
    per dependency (store, broker): "ok", or why not
    """
    status: Literal["ready", "unavailable"]


class Reconstruction(TypedDict):
    explained_variance: float | None
    mse: float
    tokens: int


class RepeatedRandom(TypedDict, closed=True):
    batch: NotRequired[int]
    """
    sequences; the scores are their mean
    """
    length: int
    """
    random tokens before the repeat; the sequence is 2·length + 1
    """
    seed: NotRequired[int]


class SaeEncodeSpec(TypedDict, closed=True):
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    exclude_bos: NotRequired[bool]
    """
    leave BOS out of the pooled reconstruction figures
    """
    include_loss: NotRequired[bool]
    """
    also report the LM loss with the reconstruction spliced in
    """
    model: str
    """
    a served model id (GET /v1/models)
    """
    prompt: NotRequired[str | None]
    prompts: NotRequired[list[str] | None]
    """
    a batch: each prompt read on its own, results in the same order
    """
    sae: str
    """
    an SAE id of the model (GET /v1/models)
    """
    top_k: NotRequired[int]
    """
    features kept per token, largest first
    """


class SaeFeaturesSpec(TypedDict, closed=True):
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    feature: int
    """
    the feature id, 0..d_sae−1 (GET /v1/models)
    """
    model: str
    """
    a served model id (GET /v1/models)
    """
    prompt: NotRequired[str | None]
    prompts: NotRequired[list[str] | None]
    """
    a batch: each prompt read on its own, results in the same order
    """
    sae: str
    """
    an SAE id of the model (GET /v1/models)
    """
    top_n: NotRequired[int]
    """
    tokens the decoder direction promotes most and suppresses most; 0 leaves logit effects out (SAEs that do not read a d_model-wide hook have none)
    """


class SaeInfo(TypedDict):
    hook: str
    id: str


class SteerResult(TypedDict):
    clamp: float | None
    coefficient: float
    feature: int
    hook: str
    model: str
    prompt: str
    sae: str
    schema_version: NotRequired[int]
    steered_text: str
    steered_tokens: list[str]
    tokens: list[str]
    """
    the prompt's tokens
    """
    unsteered_text: str
    unsteered_tokens: list[str]


class SteerSpec(TypedDict, closed=True):
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    clamp: NotRequired[float | None]
    """
    hold the feature at this value
    """
    coefficient: NotRequired[float]
    """
    times the decoder direction
    """
    feature: int
    max_new_tokens: NotRequired[int]
    model: str
    """
    a served model id (GET /v1/models)
    """
    prompt: str
    """
    text; BOS is prepended
    """
    sae: str
    """
    an SAE id of the model (GET /v1/models)
    """
    seed: NotRequired[int]
    temperature: NotRequired[float]
    """
    0: greedy
    """


class TargetReport(TypedDict):
    description: str
    kind: str
    position: int
    token_ids: list[int]
    tokens: list[str]
    value: float


class TokenEffect(TypedDict):
    effect: float
    """
    change in the token's logit per unit of the feature's activation
    """
    token: str
    token_id: int


class TokenTarget(TypedDict, closed=True):
    token: str
    """
    text that must be exactly one token
    """


class TokenizeRequest(TypedDict, closed=True):
    model: str
    """
    a served model id (GET /v1/models)
    """
    prepend_bos: NotRequired[bool]
    prompt: str
    """
    text; BOS is prepended
    """


class TokenizeResponse(TypedDict):
    model: str
    n_tokens: int
    token_ids: list[int]
    tokens: list[str]
    """
    each id decoded on its own: axis labels
    """


class WebhookDelivery(TypedDict):
    attempts: int
    """
    POSTs tried so far, at most 1 + INTERP_WEBHOOK_MAX_RETRIES
    """
    last_error: NotRequired[str | None]
    """
    why the last attempt did not deliver
    """
    last_status_code: NotRequired[int | None]
    """
    the receiver's last HTTP status, if it answered
    """
    status: Literal["pending", "delivered", "failed", "refused"]


class ActivationsResult(TypedDict):
    artifact: NotRequired[ArtifactLink | None]
    """
    the safetensors file holding the values, when they were too many for JSON
    """
    model: str
    prompts: list[PromptHooks]
    """
    one per prompt, in request order
    """
    schema_version: NotRequired[int]


class AttentionResult(TypedDict):
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
    schema_version: NotRequired[int]
    tokens: list[str]
    """
    the prompt's tokens, BOS first
    """


class AttributionSpec(TypedDict, closed=True):
    baseline: NotRequired[Literal["zero", "pad", "bos"]]
    """
    integrated gradients' baseline: pad-token embeddings with BOS kept (default: it converges on RMSNorm models, where a zero embedding is a near-singular point), BOS-token embeddings, or zero
    """
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    hook: NotRequired[str | None]
    """
    layer methods: a TransformerLens hook name, blocks.3.hook_resid_pre
    """
    internal_batch_size: NotRequired[int | None]
    """
    IG steps per forward
    """
    max_relative_error: NotRequired[float]
    """
    n_steps auto: the completeness error to reach; every result reports converged against it
    """
    max_steps: NotRequired[int]
    """
    n_steps auto: the most steps tried
    """
    method: NotRequired[Literal["saliency", "input_x_gradient", "integrated_gradients", "layer_integrated_gradients", "gradient_x_activation", "direct_logit_attribution", "logit_lens"]]
    model: str
    """
    a served model id (GET /v1/models)
    """
    n_steps: NotRequired[int | str]
    """
    integrated gradients: quadrature steps, or "auto": grow them until the completeness error is within max_relative_error (or max_steps is reached)
    """
    position: NotRequired[int | None]
    """
    position of the prediction; negative from the end; last
    """
    prompt: str
    """
    text; BOS is prepended
    """
    step_rule: NotRequired[Literal["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"] | None]
    """
    absent: gausslegendre, or riemann_middle with n_steps auto (tripling its steps reuses every earlier point; the left, right and trapezoid sums nest by doubling; Gauss-Legendre's points do not nest, so auto re-evaluates them at each size)
    """
    target: TokenTarget | ContrastTarget
    target_kind: NotRequired[Literal["logit", "logprob"]]
    """
    attribute the logit or log-prob
    """
    top_k: NotRequired[int]
    """
    logit lens: tokens listed per layer
    """


class Checks(TypedDict):
    completeness: NotRequired[Completeness | None]
    decomposition: NotRequired[Decomposition | None]


class ErrorBody(TypedDict):
    error: ErrorInfo


class HeadScoresJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["head_scores"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[HeadScoresResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class HeadScoresSpec(TypedDict, closed=True):
    callback_url: NotRequired[str | None]
    """
    https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at submission and again at delivery); redirects are not followed
    """
    custom_patterns: NotRequired[dict[str, list[list[float]]]]
    """
    name → destination × source pattern, its size the sequence's token count (BOS included)
    """
    detectors: NotRequired[list[Literal["previous_token", "duplicate_token", "induction"]]]
    """
    built-in detection patterns
    """
    error_measure: NotRequired[Literal["mul", "abs"]]
    """
    mul: share of attention on the pattern; abs: 1 − mean absolute difference (TL rounds to 3 places)
    """
    exclude_bos: NotRequired[bool]
    """
    leave attention to BOS out of the comparison
    """
    exclude_current_token: NotRequired[bool]
    """
    leave attention to the token itself out
    """
    model: str
    """
    a served model id (GET /v1/models)
    """
    prompt: NotRequired[str | None]
    prompts: NotRequired[list[str] | None]
    """
    a batch: each scored on its own, the scores averaged (as TransformerLens)
    """
    repeated_random: NotRequired[RepeatedRandom | None]


class LensLayer(TypedDict):
    hook: str
    targets: list[RankedToken]
    top_k: list[RankedToken]
    value: float


class LogitEffects(TypedDict):
    promoted: list[TokenEffect]
    """
    largest effect first
    """
    suppressed: list[TokenEffect]
    """
    most negative effect first
    """


class ModelInfo(TypedDict):
    architecture: NotRequired[str | None]
    d_head: NotRequired[int | None]
    d_mlp: NotRequired[int | None]
    d_model: NotRequired[int | None]
    d_vocab: NotRequired[int | None]
    dtype: str
    family: NotRequired[str | None]
    hook_names: NotRequired[list[str] | None]
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
    n_ctx: NotRequired[int | None]
    n_heads: NotRequired[int | None]
    n_kv_heads: NotRequired[int | None]
    n_layers: NotRequired[int | None]
    ready: bool
    saes: list[SaeInfo]
    weights_revision: str


class ModelList(TypedDict):
    items: list[ModelInfo]


class PatchingResult(TypedDict):
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
    path: NotRequired[PathDetails | None]
    """
    method path only
    """
    schema_version: NotRequired[int]
    targets: dict[str, PatchGrid]
    together: NotRequired[JointEffect | None]
    """
    exact with the spec's `together`: the metric with those heads patched at once
    """
    tokens: list[str]
    """
    the clean prompt's tokens, BOS first
    """
    warnings: NotRequired[list[str]]


class PromptEncoding(TypedDict):
    features: list[list[FeatureActivation]]
    """
    per token, its top features, largest first
    """
    l0: list[int]
    """
    per token, how many features are active
    """
    loss: NotRequired[LossRecovered | None]
    prompt: str
    reconstruction: Reconstruction
    token_mse: list[float]
    tokens: list[str]


class SaeEncodeResult(TypedDict):
    hook: str
    loss: NotRequired[LossRecovered | None]
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
    schema_version: NotRequired[int]
    top_k: int


class SaeFeaturesResult(TypedDict):
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
    schema_version: NotRequired[int]


class SteerJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["steer"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[SteerResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class ActivationsJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["activations"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[ActivationsResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class AttentionJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["attention"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[AttentionResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class AttributionResult(TypedDict):
    checks: Checks
    grids: NotRequired[dict[str, Grid]]
    logit_lens: NotRequired[list[LensLayer]]
    method: str
    model: str
    options: dict[str, Any]
    schema_version: NotRequired[int]
    scores: NotRequired[list[Any] | None]
    """
    one score per token of `tokens`
    """
    target: TargetReport
    token_ids: list[int]
    tokens: list[str]
    warnings: NotRequired[list[str]]


class PatchingJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["patching"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[PatchingResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class SaeEncodeJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["sae_encode"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[SaeEncodeResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class SaeFeaturesJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["sae_features"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[SaeFeaturesResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class AttributionJob(TypedDict):
    checked: NotRequired[bool]
    """
    whether the submission checks ran in the API; false when no worker had described the model yet, so the worker's own checks (same codes) decide
    """
    created_at: str
    error: NotRequired[JobError | None]
    finished_at: NotRequired[str | None]
    id: str
    kind: Literal["attribution"]
    model: str
    progress: float
    queue_position: NotRequired[int | None]
    """
    jobs ahead of this one while queued
    """
    request_id: NotRequired[str | None]
    """
    the submission's `X-Request-ID`: its log lines in the API and the worker carry it
    """
    result: NotRequired[AttributionResult | None]
    """
    present once the job succeeded
    """
    started_at: NotRequired[str | None]
    stats: NotRequired[dict[str, float]]
    """
    cache hits/misses, forwards, compute seconds
    """
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    webhook: NotRequired[WebhookDelivery | None]
    """
    the `callback_url` delivery: null without one, or until its first attempt
    """


class JobPage(TypedDict):
    items: list[ActivationsJob | AttentionJob | AttributionJob | HeadScoresJob | PatchingJob | SaeEncodeJob | SaeFeaturesJob | SteerJob]
    limit: int
    offset: int
    total: int
