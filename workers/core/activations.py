"""Where a core method gets a prompt's clean activations: a plain forward, or a cache in front of one.

Methods take an :data:`ActivationReader` instead of calling the model for activations they only read, so the
worker can serve them from the activation cache and run one forward for the misses only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from workers.core.hooked_model import HookedModel
from workers.core.hooks import HookName

ActivationReader = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]
"""``reader(tokens [1, pos], hook names) -> {hook name: activation [1, ...]}`` for an unpatched forward."""


def last_layer_needed(hooks: Sequence[HookName], n_layers: int) -> int | None:
    """The layer to stop before so that every hook still runs; ``None`` when the full forward is needed."""
    if any(hook.layer is None and hook.site.startswith("ln_final") for hook in hooks):
        return None
    layers = [hook.layer for hook in hooks if hook.layer is not None]
    stop = max(layers, default=-1) + 1
    return stop if stop < n_layers else n_layers


def forward_reader(model: HookedModel) -> ActivationReader:
    """A reader that runs the model, stopping after the last layer any requested hook needs."""

    def read(tokens: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        hooks = [model.hook(name) for name in names]
        stop = last_layer_needed(hooks, model.facts.n_layers)
        return model.run(tokens, cache=[str(h) for h in hooks], stop_at_layer=stop, logits="none").cache

    return read
