"""A tiny GPT-2 with the byte tokenizer and a random SAE on its residual stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.factories import tiny_model
from tests.unit.workers.core.sae.random_saes import write_random_sae
from workers.core.byte_tokenizer import make_byte_tokenizer
from workers.core.hooked_model import HookedModel
from workers.core.registry import SaeEntry
from workers.core.sae.autoencoder import Sae
from workers.core.sae.loading import load_sae

HOOK = "blocks.1.hook_resid_post"


def tiny_hooked(family: str = "gpt2") -> HookedModel:
    return HookedModel(tiny_model(family), make_byte_tokenizer(), model_id=f"tiny-{family}", max_tokens=128)


def tiny_sae(
    directory: Path, model: HookedModel, architecture: str = "standard", *, seed: int = 0, **options: Any
) -> Sae:
    options.setdefault("hook_name", HOOK)
    write_random_sae(directory, architecture, seed=seed, d_in=64, d_sae=96, **options)
    entry = SaeEntry(id="rand", hook=options["hook_name"], path=directory)
    return load_sae(entry, model_facts=model.facts)
