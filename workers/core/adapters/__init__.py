"""One adapter per model family, chosen by the HF config's ``model_type``."""

from __future__ import annotations

from workers.core.adapters.base import FamilyAdapter, NormKind
from workers.core.adapters.gemma import GEMMA
from workers.core.adapters.gpt2 import GPT2
from workers.core.adapters.llama import LLAMA
from workers.core.adapters.qwen import QWEN
from workers.core.errors import InvalidRequestError

ADAPTERS_BY_MODEL_TYPE: dict[str, FamilyAdapter] = {
    "gpt2": GPT2,
    "llama": LLAMA,
    "mistral": LLAMA,
    "qwen2": QWEN,
    "qwen3": QWEN,
    "gemma2": GEMMA,
    "gemma3_text": GEMMA,
    "gemma3": GEMMA,
}


def adapter_for(model_type: str) -> FamilyAdapter:
    """The adapter of a family; unsupported families are refused by name."""
    try:
        return ADAPTERS_BY_MODEL_TYPE[model_type]
    except KeyError:
        raise InvalidRequestError(
            f"model type {model_type!r} is not supported; supported: {', '.join(sorted(ADAPTERS_BY_MODEL_TYPE))}",
            field="model",
        ) from None


__all__ = ["ADAPTERS_BY_MODEL_TYPE", "FamilyAdapter", "NormKind", "adapter_for"]
