"""One call from a model id to a :class:`HookedModel`, for notebooks and the README's one-liner."""

from __future__ import annotations

import os
from pathlib import Path

from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.registry import Registry


def open_model(
    model_id: str = "gemma-3-270m", *, registry: Registry | None = None, cache_dir: Path | None = None
) -> HookedModel:
    """Load a served model (default registry unless given) and wrap it with TransformerLens hook names.

    ``cache_dir`` defaults to ``$INTERP_CACHE_DIR`` or ``.cache/models``, the same place the service uses.
    """
    entry = (registry or Registry.default()).get(model_id)
    directory = cache_dir or Path(os.environ.get("INTERP_CACHE_DIR", ".cache/models"))
    model, tokenizer = load_model(entry, cache_dir=directory)
    return HookedModel(model, tokenizer, model_id=entry.id, max_tokens=entry.max_tokens)
