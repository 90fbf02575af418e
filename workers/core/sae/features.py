"""Questions about one feature: where it fires in a prompt, and which tokens its decoder direction promotes.

Logit effects are the direct path only: the decoder row through the final norm's gain (and mean-centring for
LayerNorm models) and the unembedding, as TransformerLens's folded ``W_U`` gives them; the per-token norm scale and
every later layer are left out, as Neuronpedia's "top logits" do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workers.core.activations import ActivationReader, forward_reader
from workers.core.defaults import LOGIT_EFFECTS_TOP_N
from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel
from workers.core.progress import Progress, ShouldCancel, check_cancelled, never_cancel, no_progress
from workers.core.sae.autoencoder import Sae

__all__ = [
    "FeatureActivationsRequest",
    "FeatureActivationsResult",
    "FeatureLogitEffectsRequest",
    "FeatureLogitEffectsResult",
    "TokenEffect",
    "feature_activations",
    "feature_logit_effects",
]


@dataclass(frozen=True)
class FeatureActivationsRequest:
    prompt: str
    feature: int


@dataclass(frozen=True)
class FeatureActivationsResult:
    model: str
    sae: str
    hook: str
    feature: int
    tokens: tuple[str, ...]
    activations: tuple[float, ...]
    max_activation: float
    max_position: int


def feature_activations(
    model: HookedModel,
    sae: Sae,
    request: FeatureActivationsRequest,
    *,
    reader: ActivationReader | None = None,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> FeatureActivationsResult:
    """The feature's activation at every token of the prompt."""
    feature = sae.check_feature(request.feature)
    hook = model.hook(sae.hook, field="sae")
    tokens = model.tokenize(request.prompt)
    check_cancelled(should_cancel)
    activation = (reader or forward_reader(model))(tokens, [str(hook)])[str(hook)]
    acts = sae.encode(sae.flatten(activation[0]))[:, feature]
    progress(1.0)
    return FeatureActivationsResult(
        model=model.model_id,
        sae=sae.id,
        hook=str(hook),
        feature=feature,
        tokens=tuple(model.token_strings(tokens)),
        activations=tuple(acts.tolist()),
        max_activation=float(acts.max()),
        max_position=int(acts.argmax()),
    )


@dataclass(frozen=True)
class FeatureLogitEffectsRequest:
    feature: int
    top_n: int = LOGIT_EFFECTS_TOP_N


@dataclass(frozen=True)
class TokenEffect:
    token: str
    token_id: int
    effect: float


@dataclass(frozen=True)
class FeatureLogitEffectsResult:
    model: str
    sae: str
    hook: str
    feature: int
    promoted: tuple[TokenEffect, ...]
    suppressed: tuple[TokenEffect, ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(e.token for e in (*self.promoted, *self.suppressed))


def logit_effects(model: HookedModel, direction: torch.Tensor) -> torch.Tensor:
    """``[d_vocab]`` direct effect of adding ``direction`` (``[d_model]``) to the final residual."""
    adapter = model.adapter
    norm = adapter.module(model.model, adapter.final_norm)
    d = direction.to(model.dtype).to(model.device)
    if adapter.norm_kind == "layernorm":
        d = d - d.mean()
    weight = getattr(norm, "weight", None)
    if isinstance(weight, torch.Tensor):
        d = d * (1 + weight if adapter.norm_kind == "rmsnorm_one_plus" else weight)
    unembed = getattr(model.model, "lm_head", None)
    if not isinstance(unembed, torch.nn.Linear):
        raise InvalidRequestError(f"{model.model_id} has no unembedding", field="model")
    w_u: torch.Tensor = unembed.weight
    return (w_u @ d).float()


def feature_logit_effects(
    model: HookedModel,
    sae: Sae,
    request: FeatureLogitEffectsRequest,
    *,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> FeatureLogitEffectsResult:
    """The ``top_n`` tokens the decoder direction promotes most and suppresses most."""
    feature = sae.check_feature(request.feature)
    if isinstance(request.top_n, bool) or request.top_n < 1:
        raise InvalidRequestError(f"top_n must be at least 1, got {request.top_n!r}", field="top_n")
    hook = model.hook(sae.hook, field="sae")
    if sae.d_in != model.facts.d_model:
        raise InvalidRequestError(
            f"logit effects need an SAE on the residual width {model.facts.d_model}; {sae.id!r} reads {sae.d_in}",
            field="sae",
        )
    check_cancelled(should_cancel)
    with torch.no_grad():
        effects = logit_effects(model, sae.decoder_direction(feature))
    n = min(request.top_n, effects.numel())
    top = effects.topk(n)
    bottom = (-effects).topk(n)

    def listed(values: torch.Tensor, ids: torch.Tensor, sign: float) -> tuple[TokenEffect, ...]:
        strings = model.token_strings(ids)
        return tuple(
            TokenEffect(token=s, token_id=int(i), effect=sign * float(v))
            for s, i, v in zip(strings, ids.tolist(), values.tolist(), strict=True)
        )

    progress(1.0)
    return FeatureLogitEffectsResult(
        model=model.model_id,
        sae=sae.id,
        hook=str(hook),
        feature=feature,
        promoted=listed(top.values, top.indices, 1.0),
        suppressed=listed(bottom.values, bottom.indices, -1.0),
    )
