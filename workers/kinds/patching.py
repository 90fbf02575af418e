"""``patching`` jobs: :class:`PatchingSpec` → :class:`PatchingRequest` → ``run_patching`` with the cached reader."""

from __future__ import annotations

from typing import Any

from workers.core.patching import PatchingRequest, run_patching
from workers.kinds.context import JobContext
from workers.specs import PatchingSpec

__all__ = ["run", "to_request"]


def to_request(spec: PatchingSpec) -> PatchingRequest:
    return PatchingRequest(
        clean_prompt=spec.clean_prompt,
        corrupted_prompt=spec.corrupted_prompt,
        answer=spec.answer,
        wrong_answer=spec.wrong_answer,
        metric=spec.metric,
        targets=tuple(spec.targets),
        method=spec.method,
        direction=spec.direction,
        layers=None if spec.layers is None else tuple(spec.layers),
        positions=None if spec.positions is None else tuple(spec.positions),
    )


def run(ctx: JobContext, spec: PatchingSpec) -> dict[str, Any]:
    result = run_patching(
        ctx.model, to_request(spec), progress=ctx.progress, should_cancel=ctx.should_cancel, reader=ctx.reader
    )
    return result.to_dict()
