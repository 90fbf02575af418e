"""A loaded SAE: encode activations into features and decode features back, exactly as SAELens computes them.

The four architectures differ only in how pre-activations become feature activations; that step is one small
function per architecture, looked up by the config's ``architecture`` string. Normalisation that depends on the
token (``constant_norm_rescale``, ``layer_norm``) returns its statistics from :meth:`Sae.encode_with_norm` so that
:meth:`Sae.decode` can undo it without hidden state (SAELens keeps them on the module between the two calls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

import torch

from workers.core.checks import check_feature
from workers.core.errors import ShapeMismatchError
from workers.core.sae.formats import (
    TORCH_DTYPES,
    GatedSaeConfig,
    JumpReluSaeConfig,
    SaeConfig,
    StandardSaeConfig,
    TopKSaeConfig,
)

__all__ = ["Norm", "Sae"]

_LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class Norm:
    """Per-token statistics of input normalisation, undone on decode: ``x = x_norm * scale + shift``."""

    scale: torch.Tensor
    shift: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class Sae:
    """An SAE ready to run: its config, tensors in the config's dtype, and optional log10 feature sparsity."""

    id: str
    cfg: SaeConfig
    tensors: Mapping[str, torch.Tensor] = field(repr=False)
    sparsity: torch.Tensor | None = field(default=None, repr=False)

    @property
    def hook(self) -> str:
        return self.cfg.hook_name

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    @property
    def dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.cfg.dtype]

    @property
    def W_dec(self) -> torch.Tensor:  # noqa: N802 - the field's name for it
        return self.tensors["W_dec"]

    def check_feature(self, feature: int, *, field: str = "feature") -> int:
        """A feature id in ``0..d_sae-1``, or :class:`InvalidRequestError` (the API's check, on the loaded SAE)."""
        return check_feature(feature, self.d_sae, self.id, field=field)

    def decoder_direction(self, feature: int) -> torch.Tensor:
        """The feature's decoder row ``[d_in]``: what one unit of its activation adds to the reconstruction."""
        row = self.W_dec[self.check_feature(feature)]
        if isinstance(self.cfg, TopKSaeConfig) and self.cfg.rescale_acts_by_decoder_norm:
            row = row / row.norm()
        return row

    # ----------------------------------------------------------------- flatten
    def flatten(self, activation: torch.Tensor) -> torch.Tensor:
        """Hook activation ``[..., d_in]`` (hook_z: ``[..., heads, d_head]``) in the SAE's dtype."""
        x = activation.to(self.dtype)
        if self.cfg.reshape_activations == "hook_z":
            x = x.flatten(-2)
        if x.shape[-1] != self.d_in:
            raise ShapeMismatchError(
                f"SAE {self.id!r} reads {self.d_in} values per token but {self.hook} has {x.shape[-1]}", field="sae"
            )
        return x

    def unflatten(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`flatten`, back in the activation's shape and dtype."""
        return x.reshape(like.shape).to(like.dtype)

    # ----------------------------------------------------------------- encode / decode
    def encode_with_norm(self, x: torch.Tensor) -> tuple[torch.Tensor, Norm | None]:
        """Feature activations ``[..., d_sae]`` of flat inputs ``[..., d_in]``, and the normalisation to undo."""
        x = x.to(self.dtype)
        norm: Norm | None = None
        if self.cfg.normalize_activations == "constant_norm_rescale":
            coeff = (self.d_in**0.5) / x.norm(dim=-1, keepdim=True)
            x = x * coeff
            norm = Norm(scale=1 / coeff)
        elif self.cfg.normalize_activations == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            x = x - mu
            std = x.std(dim=-1, keepdim=True)
            x = x / (std + _LAYER_NORM_EPS)
            norm = Norm(scale=std, shift=mu)
        # expected_average_only_in: a training-time scale; at inference SAELens reads raw inputs, as here.
        if self.cfg.apply_b_dec_to_input:
            x = x - self.tensors["b_dec"]
        return _ENCODERS[type(self.cfg)](self, x), norm

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_with_norm(x)[0]

    def decode(self, feature_acts: torch.Tensor, norm: Norm | None = None) -> torch.Tensor:
        """Reconstruction ``[..., d_in]``; pass the :class:`Norm` from the encode for normalising SAEs."""
        w_dec = self.W_dec
        acts = feature_acts.to(self.dtype)
        if isinstance(self.cfg, TopKSaeConfig) and self.cfg.rescale_acts_by_decoder_norm:
            acts = acts / w_dec.norm(dim=-1)
        out = acts @ w_dec + self.tensors["b_dec"]
        if norm is not None:
            out = out * norm.scale
            if norm.shift is not None:
                out = out + norm.shift
        return out

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(feature activations, reconstruction)`` of flat inputs."""
        feats, norm = self.encode_with_norm(x)
        return feats, self.decode(feats, norm)


def _standard(sae: Sae, x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x @ sae.tensors["W_enc"] + sae.tensors["b_enc"])


def _topk(sae: Sae, x: torch.Tensor) -> torch.Tensor:
    cfg = cast(TopKSaeConfig, sae.cfg)  # _ENCODERS pairs each config type with its encoder
    pre = x @ sae.tensors["W_enc"] + sae.tensors["b_enc"]
    if cfg.rescale_acts_by_decoder_norm:
        pre = pre * sae.W_dec.norm(dim=-1)
    values, indices = torch.topk(pre, k=cfg.k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, values.relu())


def _jumprelu(sae: Sae, x: torch.Tensor) -> torch.Tensor:
    pre = x @ sae.tensors["W_enc"] + sae.tensors["b_enc"]
    return torch.relu(pre) * (pre > sae.tensors["threshold"]).to(pre.dtype)


def _gated(sae: Sae, x: torch.Tensor) -> torch.Tensor:
    t = sae.tensors
    gate = (x @ t["W_enc"] + t["b_gate"] > 0).to(x.dtype)
    magnitude = torch.relu(x @ (t["W_enc"] * t["r_mag"].exp()) + t["b_mag"])
    return gate * magnitude


_ENCODERS: dict[type[SaeConfig], Callable[[Sae, torch.Tensor], torch.Tensor]] = {
    StandardSaeConfig: _standard,
    TopKSaeConfig: _topk,
    JumpReluSaeConfig: _jumprelu,
    GatedSaeConfig: _gated,
}
