"""Hook sites: how one TransformerLens hook reads and replaces a tensor flowing through HF modules.

Each site attaches a single function ``fn(activation) -> replacement | None`` to the model with PyTorch forward
hooks (or, for patterns, an attribute read by :mod:`workers.core.attention`) and returns handles that remove it.
Per-head sites reshape ``[batch, pos, head·d_head]`` to ``[batch, pos, head, d_head]`` on the way in and back
on the way out, so per-head writes go through the projection's pre-hook and never copy model code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from workers.core.adapters.base import NormKind
from workers.core.attention import PATTERN_FN_ATTRIBUTE

ActivationFn = Callable[[torch.Tensor], torch.Tensor | None]


class Removable(Protocol):
    def remove(self) -> None: ...


def _hidden_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    hidden = args[0] if args else kwargs["hidden_states"]
    if not isinstance(hidden, torch.Tensor):
        raise TypeError("expected a tensor as the module's first input")
    return hidden


def _with_hidden(
    args: tuple[Any, ...], kwargs: dict[str, Any], hidden: torch.Tensor
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def _first_output(output: Any) -> torch.Tensor:
    tensor = output[0] if isinstance(output, tuple) else output
    if not isinstance(tensor, torch.Tensor):
        raise TypeError("expected a tensor as the module's output")
    return tensor


def _with_first_output(output: Any, tensor: torch.Tensor) -> Any:
    return (tensor, *output[1:]) if isinstance(output, tuple) else tensor


@dataclass(frozen=True)
class HeadSplit:
    """Reshape of the last axis into ``(n_heads, d_head)``."""

    n_heads: int
    d_head: int

    def split(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(*tensor.shape[:-1], self.n_heads, self.d_head)

    @staticmethod
    def merge(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.flatten(-2)


class Site(ABC):
    """One hook point bound to concrete modules of one model."""

    @abstractmethod
    def attach(self, fn: ActivationFn) -> list[Removable]:
        """Run ``fn`` on the activation during every forward until the handles are removed."""


@dataclass(frozen=True)
class InputSite(Site):
    """The first input of ``module`` (a layer's residual, a projection's input)."""

    module: nn.Module
    heads: HeadSplit | None = None

    def attach(self, fn: ActivationFn) -> list[Removable]:
        heads = self.heads

        def pre_hook(
            _: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
            hidden = _hidden_of(args, kwargs)
            replaced = fn(heads.split(hidden) if heads else hidden)
            if replaced is None:
                return None
            return _with_hidden(args, kwargs, HeadSplit.merge(replaced) if heads else replaced)

        return [self.module.register_forward_pre_hook(pre_hook, with_kwargs=True)]


@dataclass(frozen=True)
class OutputSite(Site):
    """The output of ``module`` (first element when it returns a tuple), optionally a slice of its last axis."""

    module: nn.Module
    heads: HeadSplit | None = None
    last_axis_slice: tuple[int, int] | None = None
    """``(start, stop)`` of a fused projection's output that belongs to this site."""

    def attach(self, fn: ActivationFn) -> list[Removable]:
        heads, part = self.heads, self.last_axis_slice

        def hook(_: nn.Module, __: tuple[Any, ...], output: Any) -> Any:
            whole = _first_output(output)
            value = whole[..., part[0] : part[1]] if part else whole
            replaced = fn(heads.split(value) if heads else value)
            if replaced is None:
                return None
            new = HeadSplit.merge(replaced) if heads else replaced
            if part:
                new = torch.cat([whole[..., : part[0]], new, whole[..., part[1] :]], dim=-1)
            return _with_first_output(output, new)

        return [self.module.register_forward_hook(hook)]


@dataclass(frozen=True)
class BatchExpandedOutputSite(Site):
    """An output computed once for the whole batch (GPT-2's position embedding), seen as ``[batch, ...]``.

    The replacement keeps the batch axis; the model adds it to the token embeddings by broadcasting.
    """

    module: nn.Module
    batch_size: int

    def attach(self, fn: ActivationFn) -> list[Removable]:
        batch_size = self.batch_size

        def hook(_: nn.Module, __: tuple[Any, ...], output: Any) -> Any:
            value = _first_output(output)
            return fn(value.expand(batch_size, *value.shape[1:]))

        return [self.module.register_forward_hook(hook)]


@dataclass(frozen=True)
class ResidMidSite(Site):
    """The residual between attention and MLP: ``resid_pre + attn_out``.

    HF adds the two inside the layer's forward, so the sum is rebuilt in the attention output's hook from the
    layer input stashed by a pre-hook, and a replacement is written back as ``attn_out = new − resid_pre``. That
    reaches both the MLP input and the residual, exactly as TransformerLens's ``hook_resid_mid``.
    """

    layer: nn.Module
    attn_out: nn.Module
    _stash: dict[str, torch.Tensor] = field(default_factory=dict)

    def attach(self, fn: ActivationFn) -> list[Removable]:
        stash = self._stash

        def stash_resid_pre(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            stash["resid_pre"] = _hidden_of(args, kwargs)

        def hook(_: nn.Module, __: tuple[Any, ...], output: Any) -> Any:
            resid_pre = stash.pop("resid_pre")
            attn_out = _first_output(output)
            replaced = fn(resid_pre + attn_out)
            if replaced is None:
                return None
            return _with_first_output(output, replaced - resid_pre)

        return [
            self.layer.register_forward_pre_hook(stash_resid_pre, with_kwargs=True),
            self.attn_out.register_forward_hook(hook),
        ]


def _norm_epsilon(module: nn.Module) -> float:
    for name in ("eps", "variance_epsilon", "epsilon"):
        value = getattr(module, name, None)
        if isinstance(value, float | int):
            return float(value)
    raise TypeError(f"cannot find the epsilon of {type(module).__name__}")


@dataclass(frozen=True)
class NormSite(Site):
    """A norm's ``hook_scale`` ([batch, pos, 1]) or ``hook_normalized`` (before its weight), as TransformerLens.

    HF norms do not expose these, so they are recomputed from the norm's input; a replacement recomputes the
    norm's output from it with the module's own weight (and bias).
    """

    module: nn.Module
    kind: NormKind
    quantity: str  # "scale" or "normalized"

    def _centred(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(-1, keepdim=True) if self.kind == "layernorm" else x

    def _affine(self, normalized: torch.Tensor) -> torch.Tensor:
        weight = self.module.weight
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"{type(self.module).__name__} has no weight tensor")
        if self.kind == "rmsnorm_one_plus":
            return (normalized.float() * (1.0 + weight.float())).to(normalized.dtype)
        out = normalized * weight
        bias = getattr(self.module, "bias", None)
        return out + bias if isinstance(bias, torch.Tensor) else out

    def attach(self, fn: ActivationFn) -> list[Removable]:
        eps = _norm_epsilon(self.module)

        def hook(_: nn.Module, args: tuple[Any, ...], __: Any) -> Any:
            centred = self._centred(args[0])
            scale = (centred.pow(2).mean(-1, keepdim=True) + eps).sqrt()
            if self.quantity == "scale":
                replaced = fn(scale)
                return None if replaced is None else self._affine(centred / replaced)
            replaced = fn(centred / scale)
            return None if replaced is None else self._affine(replaced)

        return [self.module.register_forward_hook(hook)]


@dataclass(frozen=True)
class _AttributeHandle:
    module: nn.Module
    name: str

    def remove(self) -> None:
        if hasattr(self.module, self.name):
            delattr(self.module, self.name)


@dataclass(frozen=True)
class PatternSite(Site):
    """``attn.hook_pattern`` ([batch, head, query_pos, key_pos]); needs the pattern-exposing attention."""

    attention: nn.Module

    def attach(self, fn: ActivationFn) -> list[Removable]:
        setattr(self.attention, PATTERN_FN_ATTRIBUTE, fn)
        return [_AttributeHandle(self.attention, PATTERN_FN_ATTRIBUTE)]
