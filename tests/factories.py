"""Tiny models with seeded random weights, one per supported family, for fast tests."""

from __future__ import annotations

import torch
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

TINY_VOCAB = 300
FAMILIES = ("gpt2", "llama", "qwen2", "qwen3", "gemma2", "gemma3")
TL_FAMILIES = ("gpt2", "llama", "qwen2", "qwen3")
"""Families TransformerLens builds offline from a local config (it infers Gemma configs from model names)."""

_LLAMA_LIKE = {
    "num_hidden_layers": 3,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": TINY_VOCAB,
    "max_position_embeddings": 128,
    "initializer_range": 0.1,
}


def tiny_model(family: str, seed: int = 0) -> PreTrainedModel:
    """A 3-layer model of ``family`` with weights drawn from ``seed``, in eval mode, float32."""
    torch.manual_seed(seed)
    model: PreTrainedModel
    if family == "gpt2":
        model = GPT2LMHeadModel(
            GPT2Config(
                n_layer=3,
                n_embd=64,
                n_head=4,
                vocab_size=TINY_VOCAB,
                n_positions=128,
                n_ctx=128,
                initializer_range=0.1,
            )
        )
    elif family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**_LLAMA_LIKE))
    elif family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**_LLAMA_LIKE))
    elif family == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(**_LLAMA_LIKE, head_dim=16))
    elif family == "gemma2":
        model = Gemma2ForCausalLM(Gemma2Config(**_LLAMA_LIKE, head_dim=16, sliding_window=4))
    elif family == "gemma3":
        model = Gemma3ForCausalLM(
            Gemma3TextConfig(
                **_LLAMA_LIKE,
                head_dim=16,
                sliding_window=4,
                layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            )
        )
    else:
        raise ValueError(family)
    _perturb_norms(model, seed)
    return model.eval()


def _perturb_norms(model: PreTrainedModel, seed: int) -> None:
    """Norm weights start at 1 (or 0 for Gemma's 1 + w); give them values so a wrong norm formula shows."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name or "ln_" in name:
                parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
