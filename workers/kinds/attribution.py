"""``attribution`` jobs: :class:`AttributionSpec` → :class:`AttributionRequest` → ``run_attribution``."""

from __future__ import annotations

from typing import Any

from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.kinds.context import JobContext
from workers.specs import AttributionSpec, TokenTarget

__all__ = ["run", "to_request"]


def to_request(spec: AttributionSpec) -> AttributionRequest:
    if isinstance(spec.target, TokenTarget):
        target = TargetSpec(token=spec.target.token, kind=spec.target_kind, position=spec.position)
    else:
        first, second = spec.target.contrast
        target = TargetSpec(contrast=(first, second), kind=spec.target_kind, position=spec.position)
    options = AttributionOptions(
        n_steps=spec.n_steps,
        step_rule=spec.step_rule,
        baseline=spec.baseline,
        internal_batch_size=spec.internal_batch_size,
        hook=spec.hook,
        top_k=spec.top_k,
    )
    return AttributionRequest(prompt=spec.prompt, target=target, method=spec.method, options=options)


def run(ctx: JobContext, spec: AttributionSpec) -> dict[str, Any]:
    result = run_attribution(ctx.model, to_request(spec), progress=ctx.progress, should_cancel=ctx.should_cancel)
    return result.to_dict()
