"""Activation patching: exact (batched, resumed, chunked), attribution patching and path patching.

The service calls :func:`run_patching` and :func:`run_path_patching`; both are pure functions of a hooked model
and a request, reporting progress and polling cancellation between chunks.
"""

from workers.core.patching.budget import DEFAULT_MEMORY_BUDGET
from workers.core.patching.path import run_path_patching
from workers.core.patching.request import PatchingRequest, PathPatchingRequest
from workers.core.patching.results import PatchingResult, PathPatchingResult, TargetResult
from workers.core.patching.sweep import run_patching
from workers.core.patching.targets import COMPOSITES, GRANULARITIES, TARGET_NAMES

__all__ = [
    "COMPOSITES",
    "DEFAULT_MEMORY_BUDGET",
    "GRANULARITIES",
    "TARGET_NAMES",
    "PatchingRequest",
    "PatchingResult",
    "PathPatchingRequest",
    "PathPatchingResult",
    "TargetResult",
    "run_patching",
    "run_path_patching",
]
