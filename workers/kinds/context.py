"""What a kind's runner gets besides its spec: the loaded model, a cached activation reader and an embedding
gradient (both sharing forwards with the worker's other jobs), progress, cancel, and a place to keep a file its
result links to.

Types only at import time: the API imports the kind table, which names this module, without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.core.activations import ActivationReader
    from workers.core.hooked_model import HookedModel
    from workers.core.progress import Progress, ShouldCancel
    from workers.core.registry import ModelEntry
    from workers.core.sae.autoencoder import Sae
    from workers.core.shared_forwards import EmbeddingGradient, GradientRequest
    from workers.kinds.artifacts import ArtifactLink

__all__ = ["JobContext"]


@dataclass(frozen=True)
class JobContext:
    model: HookedModel
    entry: ModelEntry
    reader: ActivationReader
    progress: Progress
    should_cancel: ShouldCancel
    load_sae: Callable[[str], Sae]
    save_artifact: Callable[[str, bytes], ArtifactLink]
    """``save_artifact(name, data)``: keep ``data`` as the job's file ``name``; the link goes in the result."""
    gradient: Callable[[GradientRequest], EmbeddingGradient]
    """The embedding gradient of a target, in a forward and backward the worker may share with other jobs."""
