"""Tiny models with the byte tokenizer, shared by the patching tests of this directory."""

from __future__ import annotations

import pytest

from tests.factories import tiny_model
from workers.core.byte_tokenizer import make_byte_tokenizer
from workers.core.hooked_model import HookedModel

CLEAN = "ab b:"
CORRUPTED = "ab a:"
"""Six tokens with BOS; they differ at position 4 only. Answer 'b', wrong answer 'a'."""


def tiny_hooked(family: str, seed: int = 0) -> HookedModel:
    return HookedModel(tiny_model(family, seed), make_byte_tokenizer(), model_id=f"tiny-{family}")


@pytest.fixture(scope="module")
def gpt2() -> HookedModel:
    return tiny_hooked("gpt2")
