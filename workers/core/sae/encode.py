"""Encode prompts with an SAE: per-token top features, L0, reconstruction quality, and optionally loss recovered.

The hook's activations come from an :data:`ActivationReader` (a forward that stops after the hook, or the
worker's activation cache), so a cached prompt is encoded without running the model. The spliced-in loss needs
forwards anyway: one clean forward gives the activations and the clean loss, then the SAE's reconstruction and a
zero ablation are spliced in together as a batch of two that resumes after the hook when the hook is a residual.

BOS positions are left out of the quality figures and are not spliced by default (``exclude_bos``): their residual
is an outlier (in Gemma 3 its norm is ~15x any other token's) that SAEs are not trained to reconstruct, as
SAELens's evaluations exclude special tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from workers.core.activations import ActivationReader, forward_reader
from workers.core.defaults import SAE_EXCLUDE_BOS, SAE_INCLUDE_LOSS, SAE_TOP_K
from workers.core.errors import InvalidRequestError, ShapeMismatchError
from workers.core.hooked_model import HookedModel
from workers.core.hooks import HookName
from workers.core.progress import Progress, ShouldCancel, check_cancelled, never_cancel, no_progress
from workers.core.sae.autoencoder import Sae

__all__ = [
    "FeatureActivation",
    "LossRecovered",
    "PromptEncoding",
    "Reconstruction",
    "SaeEncodeRequest",
    "SaeEncodeResult",
    "encode_activations",
    "encode_sae",
]


@dataclass(frozen=True)
class SaeEncodeRequest:
    """One prompt or a batch; ``top_k`` features per token; ``include_loss`` adds spliced-in next-token loss."""

    prompts: tuple[str, ...]
    top_k: int = SAE_TOP_K
    include_loss: bool = SAE_INCLUDE_LOSS
    exclude_bos: bool = SAE_EXCLUDE_BOS

    @classmethod
    def single(cls, prompt: str, **options: Any) -> SaeEncodeRequest:
        return cls(prompts=(prompt,), **options)


@dataclass(frozen=True)
class FeatureActivation:
    feature: int
    activation: float


@dataclass(frozen=True)
class Reconstruction:
    """Over the counted tokens: mean squared error per value, and 1 - SSE / total sum of squares."""

    mse: float
    explained_variance: float | None
    tokens: int


@dataclass(frozen=True)
class LossRecovered:
    """Mean next-token loss clean, with the reconstruction spliced in, with the hook zeroed; and the ratio
    ``(zero - sae) / (zero - clean)`` (1: the SAE loses nothing; 0: no better than zero ablation)."""

    clean_loss: float
    sae_loss: float
    zero_ablation_loss: float
    loss_recovered: float | None
    predictions: int


@dataclass(frozen=True)
class PromptEncoding:
    prompt: str
    tokens: tuple[str, ...]
    features: tuple[tuple[FeatureActivation, ...], ...]
    l0: tuple[int, ...]
    token_mse: tuple[float, ...]
    reconstruction: Reconstruction
    loss: LossRecovered | None = None


@dataclass(frozen=True)
class SaeEncodeResult:
    model: str
    sae: str
    hook: str
    top_k: int
    prompts: tuple[PromptEncoding, ...]
    reconstruction: Reconstruction
    loss: LossRecovered | None = None

    @property
    def tokens(self) -> tuple[tuple[str, ...], ...]:
        return tuple(p.tokens for p in self.prompts)


@dataclass(frozen=True)
class _Sums:
    """Sufficient statistics for pooled MSE and explained variance."""

    sse: float
    sum_x: torch.Tensor
    sum_sq: float
    tokens: int
    d_in: int

    def reconstruction(self) -> Reconstruction:
        if self.tokens == 0:
            return Reconstruction(mse=0.0, explained_variance=None, tokens=0)
        total = self.sum_sq - float(self.sum_x.pow(2).sum()) / self.tokens
        ev = None if self.tokens < 2 or total <= 0 else 1.0 - self.sse / total
        return Reconstruction(mse=self.sse / (self.tokens * self.d_in), explained_variance=ev, tokens=self.tokens)

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(
            self.sse + other.sse, self.sum_x + other.sum_x, self.sum_sq + other.sum_sq, self.tokens + other.tokens,
            self.d_in,
        )


def check_top_k(sae: Sae, top_k: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= sae.d_sae:
        raise InvalidRequestError(f"top_k must be in 1..{sae.d_sae} (the SAE's d_sae), got {top_k!r}", field="top_k")
    return top_k


def bos_mask(model: HookedModel, tokens: torch.Tensor, exclude_bos: bool) -> torch.Tensor:
    """``[pos]`` True where a token counts: everything, or everything but BOS tokens."""
    ids = tokens[0]
    keep = torch.ones_like(ids, dtype=torch.bool)
    bos = model.tokenizer.bos_token_id
    if exclude_bos and isinstance(bos, int):
        keep &= ids != bos
    return keep


@dataclass(frozen=True)
class _Encoded:
    """One prompt's encode: per-token top features, L0 and MSE, and sums for the pooled figures."""

    features: tuple[tuple[FeatureActivation, ...], ...]
    l0: tuple[int, ...]
    token_mse: tuple[float, ...]
    sums: _Sums


def _encode_batch(
    sae: Sae, activations: list[torch.Tensor], keeps: list[torch.Tensor], top_k: int
) -> list[_Encoded]:
    """Encode every prompt's activation ``[1, pos, ...]`` in one pass over the concatenated tokens.

    One matmul for the whole batch instead of one per prompt: at a few dozen tokens per prompt the per-call
    overhead, not the arithmetic, is what costs.
    """
    x = torch.cat([sae.flatten(a[0]) for a in activations])
    feats, recon = sae.reconstruct(x)
    err = (x - recon).pow(2)
    token_mse = err.mean(-1).tolist()
    l0 = (feats != 0).sum(-1).tolist()
    values, ids = feats.topk(top_k, dim=-1)
    per_token = [
        tuple(FeatureActivation(i, v) for v, i in zip(vs, is_, strict=True) if v != 0)
        for vs, is_ in zip(values.tolist(), ids.tolist(), strict=True)
    ]
    keep_all = torch.cat([k.to(torch.bool).cpu() for k in keeps])
    xk = x.double() * keep_all.unsqueeze(-1)
    sse = (err.double() * keep_all.unsqueeze(-1)).sum(-1)
    out: list[_Encoded] = []
    start = 0
    for activation, keep in zip(activations, keeps, strict=True):
        end = start + activation.shape[1]
        part = slice(start, end)
        sums = _Sums(
            sse=float(sse[part].sum()),
            sum_x=xk[part].sum(0),
            sum_sq=float(xk[part].pow(2).sum()),
            tokens=int(keep.sum()),
            d_in=sae.d_in,
        )
        out.append(_Encoded(tuple(per_token[part]), tuple(l0[part]), tuple(token_mse[part]), sums))
        start = end
    return out


def encode_activations(
    sae: Sae, activation: torch.Tensor, *, top_k: int, keep: torch.Tensor | None = None
) -> tuple[tuple[tuple[FeatureActivation, ...], ...], tuple[int, ...], tuple[float, ...], Reconstruction]:
    """The warm path for one prompt's activation ``[1, pos, ...]``: top-k features, L0 and MSE per token, and
    the reconstruction figures over the tokens ``keep`` marks (all by default)."""
    check_top_k(sae, top_k)
    mask = torch.ones(activation.shape[1], dtype=torch.bool) if keep is None else keep
    encoded = _encode_batch(sae, [activation], [mask], top_k)[0]
    return encoded.features, encoded.l0, encoded.token_mse, encoded.sums.reconstruction()


def _nll(logits: torch.Tensor, tokens: torch.Tensor, first: int) -> torch.Tensor:
    """Per-row summed next-token NLL over predictions made from positions ``first..pos-2``."""
    logp = logits[:, first:-1].float().log_softmax(-1)
    targets = tokens[:, first + 1 :].expand(logits.shape[0], -1)
    return -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).sum(-1)


def _loss(
    model: HookedModel, sae: Sae, hook: HookName, tokens: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, LossRecovered]:
    """Clean forward (activations + clean loss), then reconstruction and zero ablation spliced in as a batch of 2."""
    first = 1 if not bool(keep[0]) else 0
    if tokens.shape[1] - first < 2:
        raise InvalidRequestError("loss needs at least two tokens after BOS", field="prompt")
    clean = model.run(tokens, cache=[str(hook)], logits="all")
    activation = clean.cache[str(hook)]
    clean_logits = _logits(clean.logits)
    x = sae.flatten(activation[0])
    recon = sae.unflatten(sae.reconstruct(x)[1], activation[0])
    keep_b = keep.view(-1, *([1] * (activation.dim() - 2))).to(activation.device)
    spliced = torch.where(keep_b, recon, activation[0])
    zeroed = torch.where(keep_b, torch.zeros_like(recon), activation[0])
    both = torch.stack([spliced, zeroed])
    tokens2 = tokens.expand(2, -1)
    resume = _resume_layer(hook, model.facts.n_layers)
    if resume is not None:
        run = model.run(tokens2, start_at_layer=resume, start_resid=both, logits="all")
    else:

        def replace(_: torch.Tensor) -> torch.Tensor:
            return both

        run = model.run(tokens2, hooks={str(hook): [replace]}, logits="all")
    clean_sum = float(_nll(clean_logits, tokens, first)[0])
    sae_sum, zero_sum = (float(v) for v in _nll(_logits(run.logits), tokens, first))
    n = tokens.shape[1] - 1 - first
    return activation, _loss_figures(clean_sum, sae_sum, zero_sum, n)


def _logits(logits: torch.Tensor | None) -> torch.Tensor:
    if logits is None:  # a run with logits="all" and no stop layer always has them
        raise RuntimeError("the forward returned no logits")
    return logits


def _loss_figures(clean: float, sae: float, zero: float, n: int) -> LossRecovered:
    clean, sae, zero = clean / n, sae / n, zero / n
    ratio = None if abs(zero - clean) < 1e-9 else (zero - sae) / (zero - clean)
    return LossRecovered(clean_loss=clean, sae_loss=sae, zero_ablation_loss=zero, loss_recovered=ratio, predictions=n)


def _resume_layer(hook: HookName, n_layers: int) -> int | None:
    """The layer whose input equals the hook, when the hook is a residual between blocks."""
    if hook.site == "hook_resid_pre" and hook.layer is not None and hook.layer > 0:
        return hook.layer
    if hook.site == "hook_resid_post" and hook.layer is not None and hook.layer + 1 < n_layers:
        return hook.layer + 1
    return None


def encode_sae(
    model: HookedModel,
    sae: Sae,
    request: SaeEncodeRequest,
    *,
    reader: ActivationReader | None = None,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> SaeEncodeResult:
    """Encode every prompt of ``request`` at the SAE's hook; pooled figures over the whole batch."""
    hook = model.hook(sae.hook, field="sae")
    check_top_k(sae, request.top_k)
    if not request.prompts:
        raise InvalidRequestError("give at least one prompt", field="prompts")
    width = model.activation_shape(hook, 1, 1)
    flat = width[-1] * (width[-2] if sae.cfg.reshape_activations == "hook_z" else 1)
    if flat != sae.d_in:
        raise ShapeMismatchError(
            f"SAE {sae.id!r} has d_in {sae.d_in} but {hook} carries {flat} values per token", field="sae"
        )
    tokenized = [model.tokenize(p, field="prompts") for p in request.prompts]
    read = reader or forward_reader(model)
    activations: list[torch.Tensor] = []
    keeps: list[torch.Tensor] = []
    losses: list[LossRecovered] = []
    for i, tokens in enumerate(tokenized):
        check_cancelled(should_cancel)
        keep = bos_mask(model, tokens, request.exclude_bos).cpu()
        if request.include_loss:
            activation, loss = _loss(model, sae, hook, tokens, keep)
            losses.append(loss)
        else:
            activation = read(tokens, [str(hook)])[str(hook)]
        activations.append(activation)
        keeps.append(keep)
        progress((i + 1) / (len(tokenized) + 1))
    check_cancelled(should_cancel)
    encoded = _encode_batch(sae, activations, keeps, request.top_k)
    encodings: list[PromptEncoding] = []
    total = _Sums(0.0, torch.zeros(sae.d_in, dtype=torch.float64), 0.0, 0, sae.d_in)
    for i, (prompt, tokens, enc) in enumerate(zip(request.prompts, tokenized, encoded, strict=True)):
        total = total + enc.sums
        encodings.append(
            PromptEncoding(
                prompt=prompt,
                tokens=tuple(model.token_strings(tokens)),
                features=enc.features,
                l0=enc.l0,
                token_mse=enc.token_mse,
                reconstruction=enc.sums.reconstruction(),
                loss=losses[i] if losses else None,
            )
        )
    progress(1.0)
    pooled = None
    if losses:
        n = sum(loss.predictions for loss in losses)
        pooled = _loss_figures(
            sum(loss.clean_loss * loss.predictions for loss in losses),
            sum(loss.sae_loss * loss.predictions for loss in losses),
            sum(loss.zero_ablation_loss * loss.predictions for loss in losses),
            n,
        )
    return SaeEncodeResult(
        model=model.model_id,
        sae=sae.id,
        hook=str(hook),
        top_k=request.top_k,
        prompts=tuple(encodings),
        reconstruction=total.reconstruction(),
        loss=pooled,
    )
