"""Session fixtures shared by every test directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import PreTrainedModel, PreTrainedTokenizerBase

REPO_ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.gemma_fixtures"]

# No hub: any attempt to download weights must fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """Where converted weights live; the repo's gitignored .cache unless INTERP_CACHE_DIR says otherwise.

    Shared across runs on purpose: Gemma's GGUF is converted once (about a minute) and read back in a second.
    """
    return Path(os.environ.get("INTERP_CACHE_DIR", str(REPO_ROOT / ".cache" / "models")))


@pytest.fixture(scope="session")
def gemma_hf(model_cache_dir: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Gemma 3 270M as the default registry serves it (float32, CPU), loaded once per test session."""
    from workers.core.loading import load_model
    from workers.core.registry import Registry

    return load_model(Registry.default().get("gemma-3-270m"), cache_dir=model_cache_dir)
