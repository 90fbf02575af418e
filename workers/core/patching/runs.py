"""The two unpatched runs a sweep patches between, and where in the forward a patch lets it resume."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from workers.core.hooked_model import HookFn
from workers.core.hooks import HookName

RESIDUAL_SITES = frozenset({"hook_resid_pre", "hook_resid_post"})
"""Sites that are the residual between two layers: a patch there is the start residual of a resumed forward."""


@dataclass(frozen=True)
class PatchRuns:
    """``base`` is the run being patched (corrupted when denoising), ``donor`` the run patched in.

    Activations are ``[1, ...]`` by hook name; ``tokens`` ``[1, pos]`` are the base prompt's.
    """

    tokens: torch.Tensor
    base: dict[str, torch.Tensor]
    donor: dict[str, torch.Tensor]
    base_metric: float
    donor_metric: float


def final_resid(n_layers: int) -> HookName:
    """The last layer's output: the final norm and unembedding read the metric from it."""
    return HookName(n_layers - 1, "hook_resid_post")


def start_layer(hook: HookName) -> int:
    """The first layer a patch at ``hook`` can change: layers before it keep the base run's values."""
    if hook.layer is None:
        return 0
    return hook.layer + 1 if hook.site == "hook_resid_post" else hook.layer


def resume_hooks(hooks: Iterable[HookName], n_layers: int) -> list[HookName]:
    """The base residuals a sweep over ``hooks`` resumes from (one per start layer, and the final residual)."""
    starts = {start_layer(hook) for hook in hooks}
    names = {HookName(layer, "hook_resid_pre") for layer in starts if layer < n_layers}
    names.add(final_resid(n_layers))
    return sorted(names, key=lambda hook: hook.sort_key)


def changed(runs: PatchRuns, hook: HookName) -> torch.Tensor:
    """Where donor and base differ, cut to the patch index shape; a patch inside ``False`` changes nothing."""
    differs = (runs.donor[str(hook)] != runs.base[str(hook)])[0]
    return differs if hook.site == "attn.hook_pattern" else differs.any(-1, keepdim=True)


def replace_where(mask: torch.Tensor, donor: torch.Tensor) -> HookFn:
    """A hook function that takes the donor's values where ``mask`` is true (broadcast over trailing axes)."""

    def replace(activation: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, donor.to(activation.dtype), activation)

    return replace


def place_patches(
    masks: Mapping[HookName, torch.Tensor], donors: Mapping[HookName, torch.Tensor], start: torch.Tensor, layer: int
) -> tuple[torch.Tensor, dict[str | HookName, Sequence[HookFn]]]:
    """Where each patch goes in a forward resumed at ``layer``: a residual patch whose start layer is ``layer``
    edits the start residual; any other patch is a hook function replacing the masked values."""
    hooks: dict[str | HookName, Sequence[HookFn]] = {}
    for hook, mask in masks.items():
        if hook.site in RESIDUAL_SITES and start_layer(hook) == layer:
            start = torch.where(mask, donors[hook], start)
        else:
            hooks[str(hook)] = [replace_where(mask, donors[hook])]
    return start, hooks
