"""Writes to hooks: a value for a whole activation, or for selected batch rows, positions and heads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workers.core.errors import InvalidRequestError, ShapeMismatchError
from workers.core.hooks import HEAD_SITES, HookName


@dataclass(frozen=True)
class Write:
    """Replace (part of) a hook's activation with ``value``.

    ``batch``, ``positions`` and ``heads`` select indices along those axes (all when ``None``); ``value`` must
    have exactly the shape of the selected part. For ``attn.hook_pattern`` ``positions`` are query positions.
    """

    hook: str
    value: torch.Tensor
    batch: Sequence[int] | None = None
    positions: Sequence[int] | None = None
    heads: Sequence[int] | None = None


def selection_axes(hook: HookName) -> dict[str, int]:
    """Axis index of batch, position and head in the activation of ``hook``."""
    if hook.site == "attn.hook_pattern":
        return {"batch": 0, "head": 1, "position": 2}
    if hook.site in HEAD_SITES:
        return {"batch": 0, "position": 1, "head": 2}
    return {"batch": 0, "position": 1}


def apply_write(activation: torch.Tensor, hook: HookName, write: Write) -> torch.Tensor:
    """A copy of ``activation`` with the write's selection replaced by its value."""
    axes = selection_axes(hook)
    chosen = {"batch": write.batch, "position": write.positions, "head": write.heads}
    if write.heads is not None and "head" not in axes:
        raise InvalidRequestError(f"{hook} has no head axis; drop 'heads' from the write", field="heads")
    selected = {axes[name]: list(indices) for name, indices in chosen.items() if indices is not None}
    if not selected:
        if write.value.shape != activation.shape:
            raise ShapeMismatchError(
                f"value for {hook} has shape {tuple(write.value.shape)}, expected {tuple(activation.shape)}",
                field="value",
            )
        return write.value.to(activation.dtype)
    last = max(selected)
    index: list[torch.Tensor] = []
    for dim in range(last + 1):
        size = activation.shape[dim]
        chosen_indices = selected.get(dim)
        if chosen_indices is not None and any(not -size <= i < size for i in chosen_indices):
            raise InvalidRequestError(
                f"index out of range for axis {dim} of {hook} (size {size}): {chosen_indices}", field="value"
            )
        values = torch.tensor(chosen_indices, device=activation.device) if chosen_indices is not None else None
        if values is None:
            values = torch.arange(size, device=activation.device)
        shape = [1] * (last + 1)
        shape[dim] = -1
        index.append(values.view(shape))
    expected = (*(len(i.flatten()) for i in index), *activation.shape[last + 1 :])
    if tuple(write.value.shape) != expected:
        raise ShapeMismatchError(
            f"value for {hook} has shape {tuple(write.value.shape)}, the selection has shape {expected}",
            field="value",
        )
    patched = activation.clone()
    patched[tuple(index)] = write.value.to(activation.dtype)
    return patched
