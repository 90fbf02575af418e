"""The patching entry point: read both runs once, sweep every target, normalise, label."""

from __future__ import annotations

import torch

from workers.core.activations import ActivationReader, forward_reader
from workers.core.checks import check_heads, check_indices
from workers.core.hooked_model import HookedModel
from workers.core.hooks import HookName, sorted_hooks
from workers.core.metrics import AnswerMetric, MetricKind, normalised_effect
from workers.core.patching.attribution_patching import attribution_patch_metrics, gradient_run
from workers.core.patching.exact import exact_patch_metrics, joint_patch_metric
from workers.core.patching.request import PatchingRequest, tokenize_pair
from workers.core.patching.results import JointEffect, Label, PatchingResult, TargetResult, position_labels
from workers.core.patching.runs import PatchRuns, final_resid, resume_hooks
from workers.core.patching.targets import (
    COMPOSITES,
    GRANULARITIES,
    PatchUnit,
    TargetPlan,
    expand_targets,
    plan_target,
)
from workers.core.progress import Progress, ShouldCancel, check_cancelled, never_cancel, no_progress

UNDEFINED_NORMALISATION = (
    "the clean and corrupted metrics are equal, so (patched − corrupted)/(clean − corrupted) is undefined; "
    "values are the raw patched metrics"
)


def run_patching(
    model: HookedModel,
    request: PatchingRequest,
    *,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
    reader: ActivationReader | None = None,
) -> PatchingResult:
    """Activation patching of ``request``'s prompt pair at every requested target.

    The clean and corrupted activations come from ``reader`` (a plain forward by default, or the worker's
    activation cache); the metrics of both runs are read from their final residuals, so no further unpatched
    forward runs. Exact patching then runs the patches in batches; attribution patching runs one forward and
    one backward on the base run.
    """
    metric = AnswerMetric.for_model(model, request.metric, request.answer, request.wrong_answer)
    pair = tokenize_pair(model, request.clean_prompt, request.corrupted_prompt)
    n_layers, n_pos = model.facts.n_layers, pair.clean.shape[1]
    layers = check_indices(request.layers, n_layers, "layers", "layer")
    positions = check_indices(request.positions, n_pos, "positions", "position")
    singles = expand_targets(request.targets)
    plans = {name: plan_target(GRANULARITIES[name], model.facts, layers, positions) for name in singles}
    units = [unit for plan in plans.values() for unit in plan.units]
    together = _together_units(model, request, positions, n_pos)
    hooks = sorted_hooks(unit.hook for unit in [*units, *together])
    last = final_resid(n_layers)
    read = reader or forward_reader(model)
    denoise = request.direction == "denoise"
    base_tokens, donor_tokens = (pair.corrupted, pair.clean) if denoise else (pair.clean, pair.corrupted)

    check_cancelled(should_cancel)
    donor = read(donor_tokens, _names([*hooks, last]))
    with torch.no_grad():
        donor_metric = float(metric.from_final_resid(model, donor[str(last)])[0])
    check_cancelled(should_cancel)
    if request.method == "exact":
        base = read(base_tokens, _names([*hooks, *resume_hooks(hooks, n_layers)]))
        with torch.no_grad():
            base_metric = float(metric.from_final_resid(model, base[str(last)])[0])
        runs = PatchRuns(base_tokens, base, donor, base_metric, donor_metric)
        raw = exact_patch_metrics(
            model,
            runs,
            units,
            metric,
            memory_budget=request.memory_budget,
            progress=progress,
            should_cancel=should_cancel,
        )
        joint_raw = joint_patch_metric(model, runs, together, metric) if together else None
    else:
        gradients = gradient_run(model, base_tokens, hooks, metric)
        base_metric = gradients.metric
        raw = attribution_patch_metrics(units, gradients, donor)
        joint_raw = None
        progress(1.0)

    clean_metric, corrupted_metric = (donor_metric, base_metric) if denoise else (base_metric, donor_metric)
    labels: dict[str, list[Label]] = {
        "position": [position_labels(pair.clean_strings)[p] for p in positions],
        "layer": list(layers),
    }
    labels["dest_position"] = labels["src_position"] = labels["position"]
    per_plan: dict[str, torch.Tensor] = {}
    offset = 0
    for name, plan in plans.items():
        per_plan[name] = raw[offset : offset + len(plan.units)].reshape(plan.shape)
        offset += len(plan.units)
    results = tuple(
        _target_result(name, plans, per_plan, labels, clean_metric, corrupted_metric, request.metric)
        for name in request.targets
    )
    warnings = () if clean_metric != corrupted_metric else (UNDEFINED_NORMALISATION,)
    joint = None
    if joint_raw is not None:
        effect = normalised_effect(torch.tensor(joint_raw, dtype=torch.float64), clean_metric, corrupted_metric)
        joint = JointEffect(joint_raw, None if effect is None else float(effect))  # one row: float() is exact
    return PatchingResult(
        method=request.method,
        direction=request.direction,
        metric=request.metric,
        tokens=pair.clean_strings,
        corrupted_tokens=pair.corrupted_strings,
        clean_metric=clean_metric,
        corrupted_metric=corrupted_metric,
        targets=results,
        warnings=warnings,
        together=joint,
    )


def _together_units(
    model: HookedModel, request: PatchingRequest, positions: list[int], n_pos: int
) -> list[PatchUnit]:
    """The head outputs (``attn.hook_z``) ``together`` patches at once, at the requested positions."""
    if not request.together:
        return []
    facts = model.facts
    heads = check_heads(request.together, facts.n_layers, facts.n_heads, "together")
    at: list[int | slice] = [slice(None)] if len(positions) == n_pos else list(positions)
    return [PatchUnit(HookName(layer, "attn.hook_z"), (p, head), ()) for layer, head in heads for p in at]


def _names(hooks: list[HookName]) -> list[str]:
    return [str(hook) for hook in sorted_hooks(hooks)]


def _target_result(
    name: str,
    plans: dict[str, TargetPlan],
    raw: dict[str, torch.Tensor],
    labels: dict[str, list[Label]],
    clean_metric: float,
    corrupted_metric: float,
    metric: MetricKind,
) -> TargetResult:
    parts = COMPOSITES.get(name, (name,))
    plan = plans[parts[0]]
    axes = plan.granularity.axes
    axis_labels: dict[str, list[Label]] = {axis: labels.get(axis, list(plan.axis_values[axis])) for axis in axes}
    values = raw[name] if name not in COMPOSITES else torch.stack([raw[part] for part in parts])
    if name in COMPOSITES:
        axes = ("component", *axes)
        axis_labels["component"] = list(parts)
    normalised = normalised_effect(values, clean_metric, corrupted_metric)
    return TargetResult(name, axes, axis_labels, values, normalised, metric)
