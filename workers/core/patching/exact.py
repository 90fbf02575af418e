"""Exact activation patching: every patch is a real forward, batched and resumed where the patch starts.

The work per patch is cut three ways, all exact:

* patches whose donor and base activations are identical on the patched slice are not run (their metric is the
  base metric, bit for bit what the forward would give);
* a patch at layer L resumes the forward at layer L from the base run's cached residual (a residual patch
  becomes the start residual itself), so layers before L never run again;
* the forward stops before the final norm and the metric reads only the last position and the unembedding rows
  it needs (:meth:`AnswerMetric.from_final_resid`).

Patches sharing a start layer go in one batch (chunked to the memory budget), each row with its own mask. Rows
that compute only the positions from their patch on (:mod:`workers.core.patching.suffix`) also merge across start
layers, where recomputing a few layers costs less than the layer calls it saves. A row may patch several units at
once (:func:`joint_patch_metric`: a circuit's heads together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch

from workers.core.hooked_model import HookedModel
from workers.core.hooks import HookName
from workers.core.metrics import AnswerMetric
from workers.core.patching.budget import chunks_by_start_layer, merge_by_cost, rows_per_chunk
from workers.core.patching.runs import PatchRuns, changed, final_resid, place_patches, start_layer
from workers.core.patching.suffix import KeysValues, first_position, record_keys_values, run_patched_suffixes
from workers.core.patching.targets import PatchUnit, index_shape
from workers.core.progress import Progress, ShouldCancel, check_cancelled


def exact_patch_metrics(
    model: HookedModel,
    runs: PatchRuns,
    units: Sequence[PatchUnit],
    metric: AnswerMetric,
    *,
    memory_budget: int,
    progress: Progress,
    should_cancel: ShouldCancel,
) -> torch.Tensor:
    """The metric of the base run with each unit patched from the donor, ``[len(units)]`` (float64)."""
    values = torch.full((len(units),), runs.base_metric, dtype=torch.float64)
    by_start = live_by_start(runs, units)
    n_pos, n_layers = runs.tokens.shape[1], model.facts.n_layers
    rows = rows_per_chunk(model.facts, n_pos, model.dtype.itemsize, memory_budget)
    runs_plan = plan_runs(chunks_by_start_layer(by_start, rows), units, n_pos, n_layers, rows)
    recorded: KeysValues | None = None
    for done, run in enumerate(runs_plan, start=1):
        check_cancelled(should_cancel)
        indices = [i for _, chunk in run.chunks for i in chunk]
        rows_units = [[units[i]] for i in indices]
        if run.starts is None:
            patched = run_patched_chunk(model, runs, rows_units, run.chunks[0][0], metric)
        else:
            if recorded is None and any(run.starts):
                recorded = record_keys_values(model, runs.tokens)  # once, the first time a run needs it
            layers = [layer for layer, chunk in run.chunks for _ in chunk]
            masks = patch_masks(model, rows_units, n_pos)
            within = partial(_within_run, progress, should_cancel, done=done - 1, total=len(runs_plan))
            patched = run_patched_suffixes(model, runs, masks, run.starts, layers, metric, recorded, on_layer=within)
        values[indices] = patched.double()
        progress(done / len(runs_plan))
    if not runs_plan:
        progress(1.0)
    return values


def live_by_start(runs: PatchRuns, units: Sequence[PatchUnit]) -> dict[int, list[int]]:
    """The indices of the units that change something (donor and base differ on their slice), by start layer."""
    differs = {hook: changed(runs, hook) for hook in {unit.hook for unit in units}}
    by_start: dict[int, list[int]] = {}
    for i, unit in enumerate(units):
        if bool(differs[unit.hook][unit.selector].any()):
            by_start.setdefault(start_layer(unit.hook), []).append(i)
    return by_start


def _within_run(progress: Progress, should_cancel: ShouldCancel, fraction: float, *, done: int, total: int) -> None:
    """Between two layers of a run: a merged run can be most of a sweep, so it reports and stops there too."""
    check_cancelled(should_cancel)
    progress((done + fraction) / total)


@dataclass(frozen=True)
class PlannedRun:
    """Chunks ``(start layer, unit indices)`` that go in one forward; ``starts`` each row's first position when
    the rows compute only their suffixes (then the chunks may have different start layers)."""

    chunks: list[tuple[int, list[int]]]
    starts: list[int] | None


def plan_runs(
    chunks: Sequence[tuple[int, list[int]]], units: Sequence[PatchUnit], n_pos: int, n_layers: int, max_rows: int
) -> list[PlannedRun]:
    """One forward per chunk, except that chunks computing suffixes merge across start layers where the layers
    they then recompute cost less than the layer calls they save (:func:`merge_by_cost`)."""
    planned: list[PlannedRun] = []
    suffixes: list[tuple[int, list[int], list[int]]] = []
    for layer, indices in chunks:
        starts = suffix_starts([[units[i]] for i in indices]) if layer < n_layers else None
        if starts is None:
            planned.append(PlannedRun([(layer, indices)], None))
        else:
            suffixes.append((layer, indices, starts))
    merged = merge_by_cost(
        [layer for layer, _, _ in suffixes],
        [sum(n_pos - s for s in starts) for _, _, starts in suffixes],
        [len(indices) for _, indices, _ in suffixes],
        n_layers=n_layers,
        max_rows=max_rows,
    )
    for group in merged:
        members = [suffixes[k] for k in group]
        starts = [s for *_, row_starts in members for s in row_starts]
        planned.append(PlannedRun([(layer, indices) for layer, indices, _ in members], starts))
    return planned


def joint_patch_metric(model: HookedModel, runs: PatchRuns, units: Sequence[PatchUnit], metric: AnswerMetric) -> float:
    """The metric of the base run with every unit patched from the donor at once (one forward)."""
    layer = min(start_layer(unit.hook) for unit in units)
    return float(run_patched_chunk(model, runs, [units], layer, metric)[0])


def patch_masks(
    model: HookedModel, rows: Sequence[Sequence[PatchUnit]], n_pos: int
) -> dict[HookName, torch.Tensor]:
    """Per hook, a boolean mask ``[rows, *index shape]`` selecting what row ``i`` (its units) replaces."""
    masks: dict[HookName, torch.Tensor] = {}
    for row, units in enumerate(rows):
        for unit in units:
            mask = masks.get(unit.hook)
            if mask is None:
                shape = index_shape(unit.hook.site, model.facts, n_pos)
                mask = masks[unit.hook] = torch.zeros((len(rows), *shape), dtype=torch.bool, device=model.device)
            mask[row][unit.selector] = True
    return masks


def suffix_starts(rows: Sequence[Sequence[PatchUnit]]) -> list[int] | None:
    """Each row's first patched position (0 where a patch covers every position), or ``None`` where a row patches
    a pattern and needs the full-position forward."""
    firsts = [[first_position(unit) for unit in units] for units in rows]
    if any(p is None for row in firsts for p in row):
        return None
    return [min(p for p in row if p is not None) for row in firsts]


def run_patched_chunk(
    model: HookedModel, runs: PatchRuns, rows: Sequence[Sequence[PatchUnit]], layer: int, metric: AnswerMetric
) -> torch.Tensor:
    """One batched forward of every position resumed at ``layer``: row ``i`` is the base run with the units of
    ``rows[i]`` patched. A residual patch whose start layer is ``layer`` edits the start residual; any other patch
    is a hook."""
    n_layers = model.facts.n_layers
    n_rows, n_pos = len(rows), runs.tokens.shape[1]
    masks = patch_masks(model, rows, n_pos)
    start_hook = HookName(layer, "hook_resid_pre") if layer < n_layers else final_resid(n_layers)
    donors = {hook: runs.donor[str(hook)] for hook in masks}
    start, hooks = place_patches(masks, donors, runs.base[str(start_hook)].expand(n_rows, -1, -1), layer)
    if layer == n_layers:
        with torch.no_grad():
            return metric.from_final_resid(model, start)
    last = str(final_resid(n_layers))
    result = model.run(
        runs.tokens.expand(n_rows, -1),
        hooks=hooks,
        cache=[last],
        start_at_layer=layer,
        start_resid=start.contiguous(),
        stop_at_layer=n_layers,
        logits="none",
    )
    with torch.no_grad():
        return metric.from_final_resid(model, result.cache[last])
