"""``sae_encode`` jobs: :class:`SaeEncodeSpec` → :class:`SaeEncodeRequest` → ``encode_sae`` with the cached reader."""

from __future__ import annotations

from typing import Any

from workers.core.sae import SaeEncodeRequest, encode_sae
from workers.kinds.context import JobContext
from workers.specs import SaeEncodeSpec

__all__ = ["run", "to_request"]


def to_request(spec: SaeEncodeSpec) -> SaeEncodeRequest:
    return SaeEncodeRequest(
        prompts=tuple(spec.all_prompts), top_k=spec.top_k, include_loss=spec.include_loss, exclude_bos=spec.exclude_bos
    )


def run(ctx: JobContext, spec: SaeEncodeSpec) -> dict[str, Any]:
    result = encode_sae(
        ctx.model,
        ctx.load_sae(spec.sae),
        to_request(spec),
        reader=ctx.reader,
        progress=ctx.progress,
        should_cancel=ctx.should_cancel,
    )
    return result.to_dict()
