"""``steer`` jobs: :class:`SteerSpec` → :class:`SteerRequest` → ``steer``."""

from __future__ import annotations

from typing import Any

from workers.core.steering import SteerRequest, steer
from workers.kinds.context import JobContext
from workers.specs import SteerSpec

__all__ = ["run", "to_request"]


def to_request(spec: SteerSpec) -> SteerRequest:
    return SteerRequest(
        prompt=spec.prompt,
        feature=spec.feature,
        coefficient=spec.coefficient,
        clamp=spec.clamp,
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        seed=spec.seed,
    )


def run(ctx: JobContext, spec: SteerSpec) -> dict[str, Any]:
    result = steer(
        ctx.model, ctx.load_sae(spec.sae), to_request(spec), progress=ctx.progress, should_cancel=ctx.should_cancel
    )
    return result.to_dict()
