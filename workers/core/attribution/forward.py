"""The batched forward every gradient method shares: prompt (or a resumed residual) → target value per row.

The decoder layers run through :meth:`HookedModel.run` with the caller's hook functions, stop before the final
norm, and the :class:`Readout` finishes at the target position only. ``tokens_per_batch`` bounds the memory a
batch of interpolation steps takes, whatever the prompt length.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext

import torch

from workers.core.attribution.base import AttributionContext
from workers.core.hooked_model import HookFn
from workers.core.hooks import HookName
from workers.core.memory import steps_per_batch


def target_values(
    context: AttributionContext,
    *,
    batch: int,
    hooks: Mapping[str | HookName, Sequence[HookFn]],
    grad: bool,
    start_at_layer: int | None = None,
    start_resid: torch.Tensor | None = None,
) -> torch.Tensor:
    """The target for ``batch`` copies of the prompt, each changed by ``hooks``: ``[batch]``."""
    model = context.model
    last = str(HookName(model.facts.n_layers - 1, "hook_resid_post"))
    tokens = context.tokens.expand(batch, -1)
    out = model.run(
        tokens,
        hooks=hooks,
        cache=[last],
        stop_at_layer=model.facts.n_layers,
        logits="none",
        grad=grad,
        start_at_layer=start_at_layer,
        start_resid=start_resid,
    )
    resid = out.cache[last][:, context.target.position]
    with nullcontext() if grad else torch.no_grad():
        return context.readout(resid)


def step_batches(n_steps: int, n_positions: int, batch: int | None) -> Iterator[slice]:
    """Slices of the step indices, as many at a time as :func:`~workers.core.memory.steps_per_batch` says."""
    size = steps_per_batch(n_positions, batch)
    for start in range(0, n_steps, size):
        yield slice(start, min(start + size, n_steps))


def replace_with(value: torch.Tensor) -> HookFn:
    """A hook function that replaces the activation with ``value`` (same shape)."""

    def fn(_: torch.Tensor) -> torch.Tensor:
        return value

    return fn
