"""Server-side slicing of an activation: index lists per axis, then the top k by magnitude on the last axis.

The job kinds decide which axis each request field applies to (torch-free, so the API can size a result before
it runs); this module only applies the picks to a tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["select"]


def select(
    tensor: torch.Tensor, picks: Sequence[Sequence[int] | None], top_k: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``tensor`` with axis ``i`` reduced to ``picks[i]`` (kept whole where ``None``).

    With ``top_k``, the last axis is then replaced by its ``top_k`` largest absolute values, largest first;
    the second tensor holds their indices into the unsliced last axis (``None`` without ``top_k``).
    """
    if len(picks) != tensor.dim():
        raise ValueError(f"{len(picks)} picks for a tensor of {tensor.dim()} axes")
    out = tensor
    for axis, pick in enumerate(picks):
        if pick is not None:
            out = out.index_select(axis, torch.tensor(list(pick), dtype=torch.long, device=out.device))
    if top_k is None:
        return out, None
    order = out.abs().topk(min(top_k, out.shape[-1]), dim=-1).indices
    values = out.gather(-1, order)
    last = picks[-1]
    indices = order if last is None else torch.tensor(list(last), dtype=torch.long, device=out.device)[order]
    return values, indices
