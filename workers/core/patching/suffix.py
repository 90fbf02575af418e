"""Patched forwards that compute only the positions a patch can change, packed across patches.

A patch at position p of layer L changes nothing at positions before p (attention is causal), in any layer. So a
patched row resumes at layer L with only its positions p … n−1, and each layer's attention reads the base run's own
keys and values for the positions before p: they are the base run's, recorded once (:func:`record_keys_values`).
Rows with different p are packed end to end, in packs as long as the prompt along the batch axis; a 4-D mask lets
each position attend to the base keys before its row's p and to its own row's earlier positions (within the sliding
window on sliding layers), nothing else. Positions are the rows' own, so rotary phases and windows are those of a
full run: the numbers equal a full patched forward up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workers.core.hooked_model import HookedModel, HookFn
from workers.core.hooks import HookName
from workers.core.metrics import AnswerMetric
from workers.core.patching.runs import (
    RESIDUAL_SITES,
    PatchRuns,
    final_resid,
    place_patches,
    replace_where,
    start_layer,
)
from workers.core.patching.targets import PatchUnit

__all__ = ["KeysValues", "first_position", "record_keys_values", "run_patched_suffixes"]

_MAPPED_MASKS = frozenset({"qwen", "gemma"})
"""Families whose model takes a mask per layer type (``{"full_attention": …, "sliding_attention": …}``)."""


@dataclass(frozen=True)
class KeysValues:
    """The base run's attention keys and values per layer ``[1, kv heads, pos, d_head]``, as its attention used
    them (after rotary embeddings and any key norm)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]


class _Recorder:
    """A cache object that keeps what each attention layer computed and hands it back unchanged."""

    def __init__(self, n_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *_: Any, **__: Any) -> tuple[
        torch.Tensor, torch.Tensor
    ]:
        self.keys[layer_idx], self.values[layer_idx] = keys, values
        return keys, values

    # What the model's own mask code asks a cache: nothing came before these positions.
    is_compileable = False

    def get_seq_length(self, *_: Any) -> int:
        return 0

    def get_query_offset(self, *_: Any) -> int:
        return 0

    def get_mask_sizes(self, query_length: int, *_: Any) -> tuple[int, int]:
        return query_length, 0


class _Prefix:
    """A cache object that puts the base run's keys and values before each layer's own."""

    def __init__(self, recorded: KeysValues) -> None:
        self._recorded = recorded

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *_: Any, **__: Any) -> tuple[
        torch.Tensor, torch.Tensor
    ]:
        batch = keys.shape[0]
        base_keys = self._recorded.keys[layer_idx].to(keys.dtype).expand(batch, -1, -1, -1)
        base_values = self._recorded.values[layer_idx].to(values.dtype).expand(batch, -1, -1, -1)
        return torch.cat([base_keys, keys], dim=2), torch.cat([base_values, values], dim=2)

    def get_seq_length(self, *_: Any) -> int:
        return int(self._recorded.keys[0].shape[2])


def record_keys_values(model: HookedModel, tokens: torch.Tensor) -> KeysValues:
    """One unpatched forward of ``tokens`` ``[1, pos]`` that keeps every layer's keys and values."""
    recorder = _Recorder(model.facts.n_layers)
    model.run(tokens, past=recorder, stop_at_layer=model.facts.n_layers, logits="none")
    if any(k is None for k in recorder.keys) or any(v is None for v in recorder.values):
        raise RuntimeError(f"{model.model_id}'s attention did not pass its keys through the cache")
    return KeysValues([k for k in recorder.keys if k is not None], [v for v in recorder.values if v is not None])


def first_position(unit: PatchUnit) -> int | None:
    """The first position a unit patches (0 where it covers every position), or ``None`` for a pattern, whose
    ``[query, key]`` grid has no place in packed rows."""
    if unit.hook.site == "attn.hook_pattern":
        return None
    first = unit.selector[0] if unit.selector else slice(None)
    return first if isinstance(first, int) else 0


@dataclass(frozen=True)
class _Packs:
    """Rows' suffixes laid out in packs of ``n_pos`` slots along the batch axis (each suffix whole in one pack).

    ``row``/``pos`` give each slot's row and position, ``-1``/``0`` in a pad slot; ``last`` each row's final slot
    as (pack, slot). Packs as long as the prompt keep attention's cost that of the full rows, not quadratic in the
    whole chunk."""

    row: torch.Tensor
    pos: torch.Tensor
    last: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def of(cls, starts: Sequence[int], n_pos: int, device: torch.device) -> _Packs:
        packs: list[list[tuple[int, int]]] = [[]]
        ends: list[tuple[int, int]] = []
        for row, start in enumerate(starts):
            if len(packs[-1]) + n_pos - start > n_pos:
                packs.append([])
            packs[-1].extend((row, q) for q in range(start, n_pos))
            ends.append((len(packs) - 1, len(packs[-1]) - 1))
        slots = torch.tensor([[*pack, *[(-1, 0)] * (n_pos - len(pack))] for pack in packs], device=device)
        last = torch.tensor(ends, device=device)
        return cls(slots[..., 0], slots[..., 1], (last[:, 0], last[:, 1]))


def _masks(model: HookedModel, packs: _Packs, starts: torch.Tensor, n_base: int) -> torch.Tensor | dict[
    str, torch.Tensor
]:
    """Additive ``[packs, 1, slots, n_base + slots]`` masks: the ``n_base`` recorded base keys before the row's
    start, then the row's own earlier positions; a pad slot sees, and is seen by, nothing."""
    rows, positions = packs.row, packs.pos
    real = rows >= 0
    query_pos = positions[..., :, None]
    base_pos = torch.arange(n_base, device=positions.device)
    base_ok = real[..., :, None] & (base_pos < starts[rows.clamp(min=0)][..., :, None])
    own_ok = real[..., :, None] & (rows[..., :, None] == rows[..., None, :]) & (positions[..., None, :] <= query_pos)
    allowed = torch.cat([base_ok, own_ok], dim=-1)
    distance = torch.cat([query_pos - base_pos, query_pos - positions[..., None, :]], dim=-1)
    low = torch.tensor(torch.finfo(model.dtype).min, dtype=model.dtype, device=rows.device)
    zero = torch.zeros((), dtype=model.dtype, device=rows.device)

    def additive(ok: torch.Tensor) -> torch.Tensor:
        return torch.where(ok, zero, low).unsqueeze(1)

    full = additive(allowed)
    if model.adapter.family not in _MAPPED_MASKS:
        return full
    window = getattr(model.model.config, "sliding_window", None)
    sliding = full if not window else additive(allowed & (distance < int(window)))
    return {"full_attention": full, "sliding_attention": sliding}


def run_patched_suffixes(
    model: HookedModel,
    runs: PatchRuns,
    masks: dict[HookName, torch.Tensor],
    starts: Sequence[int],
    layers: Sequence[int],
    metric: AnswerMetric,
    recorded: KeysValues | None,
    *,
    on_layer: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Row ``i`` is the base run patched where ``masks[hook][i]`` says, computed from layer ``layers[i]`` at
    positions from ``starts[i]`` on only; the metric of each row ``[rows]``. ``recorded`` (the base run's keys and
    values) may be ``None`` only where every row starts at position 0. ``on_layer`` is told the fraction of the
    run's layers done as each layer after the first begins.

    The forward resumes at the first of ``layers``; a row that starts later enters at its own layer, its slots
    replaced there by its start residual (what they computed before is discarded, and no other row sees it)."""
    n_layers, n_pos = model.facts.n_layers, int(runs.tokens.shape[1])
    if recorded is None and any(starts):
        raise ValueError("rows that start after position 0 read the base run's recorded keys and values")
    device = runs.tokens.device
    packs = _Packs.of(starts, n_pos, device)
    n_base = 0 if recorded is None else n_pos
    rows, pos = packs.row.clamp(min=0), packs.pos
    real = packs.row >= 0
    # each row's masks over its full positions, gathered to the packed slots (never a pad's)
    packed = {hook: mask[rows, pos] & real.view(*real.shape, *[1] * (mask.dim() - 2)) for hook, mask in masks.items()}
    donors = {hook: runs.donor[str(hook)][0, pos] for hook in masks}
    slot_layer = torch.tensor(list(layers), device=device)[rows].masked_fill(~real, -1).unsqueeze(-1)
    first = min(layers)
    entering: dict[int, torch.Tensor] = {layer: slot_layer == layer for layer in sorted(set(layers))}
    folded = {  # residual patches of rows that start where the patch does: part of their start residual
        hook: mask & entering[start_layer(hook)]
        for hook, mask in packed.items()
        if hook.site in RESIDUAL_SITES and start_layer(hook) in entering
    }
    hooks: dict[str | HookName, list[HookFn]] = {}
    for hook, mask in packed.items():
        rest = mask & ~folded[hook] if hook in folded else mask
        if hook not in folded or bool(rest.any()):
            hooks.setdefault(str(hook), []).append(replace_where(rest, donors[hook]))
    entry = {  # each start layer's residual, its rows' residual patches in place
        layer: place_patches(
            {hook: mask for hook, mask in folded.items() if start_layer(hook) == layer},
            donors,
            runs.base[str(HookName(layer, "hook_resid_pre"))][0, pos],
            layer,
        )[0]
        for layer in entering
    }
    start = entry[first]  # serves every slot until its row enters
    for layer, mine in entering.items():
        if layer != first:
            hooks.setdefault(str(HookName(layer, "hook_resid_pre")), []).insert(0, replace_where(mine, entry[layer]))
    if on_layer is not None:
        for layer in range(first + 1, n_layers):
            hooks.setdefault(str(HookName(layer, "hook_resid_pre")), []).append(
                _reporter(on_layer, (layer - first) / (n_layers - first))
            )
    last = str(final_resid(n_layers))
    result = model.run(
        runs.tokens[0, pos],
        hooks=hooks,
        cache=[last],
        start_at_layer=first,
        start_resid=start.contiguous(),
        stop_at_layer=n_layers,
        logits="none",
        position_ids=pos,
        attention_mask=_masks(model, packs, torch.tensor(list(starts), device=device), n_base),
        past=None if recorded is None else _Prefix(recorded),
    )
    final = result.cache[last][packs.last]  # each row's last position, [rows, d_model]
    with torch.no_grad():
        return metric.from_final_resid(model, final)


def _reporter(on_layer: Callable[[float], None], fraction: float) -> HookFn:
    def report(_: torch.Tensor) -> None:
        on_layer(fraction)

    return report
