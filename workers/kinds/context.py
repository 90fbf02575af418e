"""What a kind's runner gets besides its spec: the loaded model, a cached activation reader, progress, cancel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.core.activations import ActivationReader
from workers.core.hooked_model import HookedModel
from workers.core.progress import Progress, ShouldCancel
from workers.core.registry import ModelEntry

__all__ = ["JobContext"]


@dataclass(frozen=True)
class JobContext:
    model: HookedModel
    entry: ModelEntry
    reader: ActivationReader
    progress: Progress
    should_cancel: ShouldCancel
    load_sae: Callable[[str], Any]
