"""Tiny models with the byte tokenizer, and Captum-ready forward functions on their HF modules (the oracles)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from tests.factories import tiny_model
from workers.core.byte_tokenizer import make_byte_tokenizer
from workers.core.hooked_model import HookedModel

PROMPT = "the cat sat on a mat, so"
CONTRAST = ("a", "b")


def hooked(family: str, seed: int = 0) -> HookedModel:
    return HookedModel(tiny_model(family, seed), make_byte_tokenizer(), model_id=f"tiny-{family}")


@pytest.fixture(scope="module")
def gpt2() -> HookedModel:
    return hooked("gpt2")


@pytest.fixture(scope="module", params=["gpt2", "llama", "gemma3"])
def tiny(request: pytest.FixtureRequest) -> HookedModel:
    """GPT-2 (LayerNorm, learned positions), Llama (RMSNorm, rotary), Gemma 3 (scaled embedding, pre/post norms)."""
    return hooked(request.param)


def contrast_of(logits: torch.Tensor, model: HookedModel, position: int = -1) -> torch.Tensor:
    a, b = (model.token_id(t) for t in CONTRAST)
    return logits[:, position, a] - logits[:, position, b]


def ids_forward(model: HookedModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """Token ids → the contrast target, through the HF model (Captum's forward_func)."""

    def forward(ids: torch.Tensor) -> torch.Tensor:
        return contrast_of(model.model(input_ids=ids).logits, model)

    return forward


def embeds_forward(model: HookedModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """Embedding-layer outputs → the contrast target (HF adds positions and everything after the embedding)."""

    def forward(embeds: torch.Tensor) -> torch.Tensor:
        return contrast_of(model.model(inputs_embeds=embeds).logits, model)

    return forward


def embedding_module(model: HookedModel) -> torch.nn.Module:
    return model.adapter.module(model.model, model.adapter.embed)


def close_to_largest(ours: torch.Tensor, theirs: torch.Tensor, tolerance: float = 1e-4) -> float:
    """The largest difference relative to the largest attribution; asserted ≤ ``tolerance``."""
    ours, theirs = ours.detach().double(), theirs.detach().double()
    assert ours.shape == theirs.shape
    error = float((ours - theirs).abs().max() / theirs.abs().max())
    assert error <= tolerance, error
    return error
