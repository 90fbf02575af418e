"""Session fixtures for the real Gemma 3 270M: one load per test session, shared by every ``gemma`` test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.core.hooked_model import HookedModel

GEMMA_ID = "gemma-3-270m"


@pytest.fixture(scope="session")
def gemma(gemma_hf: tuple[PreTrainedModel, PreTrainedTokenizerBase]) -> HookedModel:
    """The real model through HookedModel (float32, CPU)."""
    model, tokenizer = gemma_hf
    return HookedModel(model, tokenizer, model_id=GEMMA_ID, max_tokens=1024)


@pytest.fixture(scope="session")
def gemma_tl(gemma_hf: tuple[PreTrainedModel, PreTrainedTokenizerBase]) -> Iterator[object]:
    """TransformerLens's HookedTransformer on the same weights, without weight processing (the oracle)."""
    from transformer_lens import HookedTransformer

    model, tokenizer = gemma_hf
    hooked = HookedTransformer.from_pretrained_no_processing(
        "google/gemma-3-270m", hf_model=model, tokenizer=tokenizer, device="cpu", dtype=model.dtype
    )
    yield hooked.eval()
