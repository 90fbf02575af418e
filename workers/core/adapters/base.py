"""What a model family looks like from the outside: where each TransformerLens hook lives among HF modules.

An adapter is data, not code: module paths relative to the model and to each decoder layer, and the few facts
that differ between families (norm flavour, fused QKV). :mod:`workers.core.sites` turns them into hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

NormKind = Literal["layernorm", "rmsnorm", "rmsnorm_one_plus"]
"""``layernorm``: (x − mean)/σ·w + b; ``rmsnorm``: x/rms·w; ``rmsnorm_one_plus``: x/rms·(1 + w) (Gemma)."""


@dataclass(frozen=True)
class FamilyAdapter:
    """Module paths of one family. Paths under ``layer_*`` are relative to a decoder layer."""

    family: str
    layers: str
    embed: str
    final_norm: str
    pos_embed: str | None
    norm_kind: NormKind
    layer_attn: str
    """The attention module; its output is ``(attn_output, weights)``."""
    layer_attn_out: str
    """The module whose output is added to the residual after attention (``hook_attn_out``)."""
    layer_mlp_out: str
    """The module whose output is added to the residual after the MLP (``hook_mlp_out``)."""
    layer_resid_mid_reader: str
    """The module whose input is the residual between attention and MLP (``hook_resid_mid``)."""
    layer_out_proj: str
    """The attention output projection; its input is ``hook_z`` with heads flattened."""
    layer_mlp_down: str
    """The MLP output projection; its input is ``mlp.hook_post``."""
    layer_q: str | None = None
    layer_k: str | None = None
    layer_v: str | None = None
    layer_qkv_fused: str | None = None
    """A single projection whose output is ``[q | k | v]`` along the last axis (GPT-2)."""

    def module(self, root: nn.Module, path: str) -> nn.Module:
        return root.get_submodule(path)

    def layer_list(self, root: nn.Module) -> nn.ModuleList:
        layers = root.get_submodule(self.layers)
        if not isinstance(layers, nn.ModuleList):
            raise TypeError(f"{self.family}: {self.layers} is not a ModuleList")
        return layers

    def layer_module(self, root: nn.Module, layer: int, path: str) -> nn.Module:
        return self.layer_list(root)[layer].get_submodule(path)
