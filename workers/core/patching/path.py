"""Path patching (Wang et al. 2022, "Interpretability in the Wild"): a sender's effect through chosen paths only.

For each sender set S, two batched forwards (many sender sets per batch):

1. the base run, resumed at S's first layer, with S's head outputs (``hook_z``) taken from the other run and
   every other head's output frozen at its base value (MLP outputs too with ``freeze_mlps``); it records the
   receivers' ``q``/``k``/``v``;
2. the base run, resumed at the first receiver layer after S, with only the receivers' recorded inputs
   patched in; nothing else is frozen. Its metric is the path-patched metric.

With ``receivers="logits"`` the path is the sender's direct one into the final residual (the IOI paper's name
movers): the first forward runs to the end, every other head frozen, and its metric is the path-patched metric.

A sender at or after every receiver's layer, or whose output is the same in both runs, has no path: its metric
is the base metric exactly and no forward runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from workers.core.activations import ActivationReader, forward_reader
from workers.core.checks import check_heads
from workers.core.hooked_model import HookedModel, HookFn
from workers.core.hooks import HookName
from workers.core.metrics import AnswerMetric, normalised_effect
from workers.core.patching.budget import chunks_by_start_layer, rows_per_chunk
from workers.core.patching.request import LOGITS, PathPatchingRequest, tokenize_pair
from workers.core.patching.results import JointEffect, PathPatchingResult, TargetResult
from workers.core.patching.runs import final_resid
from workers.core.patching.sweep import UNDEFINED_NORMALISATION
from workers.core.progress import Progress, ShouldCancel, check_cancelled, never_cancel, no_progress

Head = tuple[int, int]
_INPUT_SITES = {"q": "attn.hook_q", "k": "attn.hook_k", "v": "attn.hook_v"}


def run_path_patching(
    model: HookedModel,
    request: PathPatchingRequest,
    *,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
    reader: ActivationReader | None = None,
) -> PathPatchingResult:
    """Each sender head's (and all senders' joint) effect on the metric through the receivers' inputs."""
    metric = AnswerMetric.for_model(model, request.metric, request.answer, request.wrong_answer)
    pair = tokenize_pair(model, request.clean_prompt, request.corrupted_prompt)
    facts = model.facts
    to_logits = request.receivers == LOGITS
    receivers = [] if isinstance(request.receivers, str) else check_heads(
        request.receivers, facts.n_layers, facts.n_heads, "receivers"
    )
    every_head = [(layer, head) for layer in range(facts.n_layers) for head in range(facts.n_heads)]
    senders = (
        every_head
        if request.senders is None
        else check_heads(request.senders, facts.n_layers, facts.n_heads, "senders")
    )
    noise = request.direction == "noise"
    base_tokens, donor_tokens = (pair.clean, pair.corrupted) if noise else (pair.corrupted, pair.clean)

    n_layers = facts.n_layers
    last = final_resid(n_layers)
    z_hooks = [HookName(layer, "attn.hook_z") for layer in range(n_layers)]
    receiver_hooks = _receiver_hooks(receivers, request.receiver_inputs)
    base_names = [str(h) for h in z_hooks] + [str(HookName(layer, "hook_resid_pre")) for layer in range(n_layers)]
    base_names += [str(hook) for hook in receiver_hooks] + [str(last)]
    if request.freeze_mlps:
        base_names += [str(HookName(layer, "hook_mlp_out")) for layer in range(n_layers)]
    read = reader or forward_reader(model)
    check_cancelled(should_cancel)
    donor = read(donor_tokens, [str(h) for h in z_hooks] + [str(last)])
    check_cancelled(should_cancel)
    base = read(base_tokens, list(dict.fromkeys(base_names)))
    with torch.no_grad():
        base_metric = float(metric.from_final_resid(model, base[str(last)])[0])
        donor_metric = float(metric.from_final_resid(model, donor[str(last)])[0])

    sets: list[list[Head]] = [[sender] for sender in senders]
    if len(senders) > 1:
        sets.append(list(senders))
    engine = _PathEngine(model, base_tokens, base, donor, receivers, receiver_hooks, request.freeze_mlps, metric,
                         to_logits=to_logits)
    raw = engine.sweep(sets, request.memory_budget, progress, should_cancel, base_metric)

    clean_metric, corrupted_metric = (base_metric, donor_metric) if noise else (donor_metric, base_metric)
    grid = torch.full((n_layers, facts.n_heads), float("nan"), dtype=torch.float64)
    for (layer, head), value in zip(senders, raw[: len(senders)].tolist(), strict=True):
        grid[layer, head] = value
    joint_raw = float(raw[-1])
    normalised_grid = normalised_effect(grid, clean_metric, corrupted_metric)
    joint_norm = normalised_effect(torch.tensor(joint_raw, dtype=torch.float64), clean_metric, corrupted_metric)
    sender_result = TargetResult(
        "senders",
        ("layer", "head"),
        {"layer": list(range(n_layers)), "head": list(range(facts.n_heads))},
        grid,
        normalised_grid,
        request.metric,
    )
    return PathPatchingResult(
        direction=request.direction,
        metric=request.metric,
        tokens=pair.clean_strings,
        corrupted_tokens=pair.corrupted_strings,
        clean_metric=clean_metric,
        corrupted_metric=corrupted_metric,
        receivers=LOGITS if to_logits else tuple(receivers),
        receiver_inputs=() if to_logits else tuple(request.receiver_inputs),
        senders=sender_result,
        joint=JointEffect(joint_raw, None if joint_norm is None else float(joint_norm)),
        warnings=() if clean_metric != corrupted_metric else (UNDEFINED_NORMALISATION,),
    )


def _receiver_hooks(receivers: Sequence[Head], inputs: Sequence[str]) -> list[HookName]:
    layers = sorted({layer for layer, _ in receivers})
    return [HookName(layer, _INPUT_SITES[name]) for layer in layers for name in inputs]


class _PathEngine:
    """Both forwards of path patching for batches of sender sets over one base/donor pair."""

    def __init__(
        self,
        model: HookedModel,
        tokens: torch.Tensor,
        base: dict[str, torch.Tensor],
        donor: dict[str, torch.Tensor],
        receivers: Sequence[Head],
        receiver_hooks: Sequence[HookName],
        freeze_mlps: bool,
        metric: AnswerMetric,
        *,
        to_logits: bool = False,
    ) -> None:
        self.model, self.tokens, self.base, self.donor = model, tokens, base, donor
        self.receivers, self.receiver_hooks = list(receivers), list(receiver_hooks)
        self.freeze_mlps, self.metric, self.to_logits = freeze_mlps, metric, to_logits
        self.n_layers = model.facts.n_layers

    def has_path(self, senders: Sequence[Head]) -> bool:
        """Whether some sender reaches a later receiver (any sender reaches the logits) with an output that
        differs between the runs."""
        last_receiver = self.n_layers if self.to_logits else max(layer for layer, _ in self.receivers)
        for layer, head in senders:
            name = str(HookName(layer, "attn.hook_z"))
            if layer < last_receiver and not torch.equal(self.donor[name][:, :, head], self.base[name][:, :, head]):
                return True
        return False

    def sweep(
        self,
        sets: Sequence[Sequence[Head]],
        memory_budget: int,
        progress: Progress,
        should_cancel: ShouldCancel,
        base_metric: float,
    ) -> torch.Tensor:
        values = torch.full((len(sets),), base_metric, dtype=torch.float64)
        by_start: dict[int, list[int]] = {}
        for i, senders in enumerate(sets):
            if self.has_path(senders):
                by_start.setdefault(min(layer for layer, _ in senders), []).append(i)
        rows = rows_per_chunk(self.model.facts, self.tokens.shape[1], self.model.dtype.itemsize, memory_budget)
        chunks = chunks_by_start_layer(by_start, rows)
        for done, (layer, indices) in enumerate(chunks, start=1):
            check_cancelled(should_cancel)
            values[indices] = self.run_chunk(layer, [sets[i] for i in indices]).double()
            progress(done / len(chunks))
        if not chunks:
            progress(1.0)
        return values

    def run_chunk(self, start: int, sets: Sequence[Sequence[Head]]) -> torch.Tensor:
        recorded = self._sender_run(start, sets)
        if self.to_logits:
            with torch.no_grad():
                return self.metric.from_final_resid(self.model, recorded[str(final_resid(self.n_layers))])
        return self._receiver_run(start, len(sets), recorded)

    def _expand(self, hook: HookName, rows: int) -> torch.Tensor:
        return self.base[str(hook)].expand(rows, *self.base[str(hook)].shape[1:])

    def _sender_run(self, start: int, sets: Sequence[Sequence[Head]]) -> dict[str, torch.Tensor]:
        """Senders from the donor, every other head (and MLP) frozen at base; record the receivers' inputs (or,
        to the logits, the final residual)."""
        rows, facts = len(sets), self.model.facts
        stop = self.n_layers - 1 if self.to_logits else max(hook.layer or 0 for hook in self.receiver_hooks)
        hooks: dict[str | HookName, Sequence[HookFn]] = {}
        for layer in range(start, stop + 1):
            z = HookName(layer, "attn.hook_z")
            mask = torch.zeros((rows, 1, facts.n_heads, 1), dtype=torch.bool, device=self.model.device)
            for row, senders in enumerate(sets):
                for sender_layer, head in senders:
                    if sender_layer == layer:
                        mask[row, 0, head, 0] = True
            hooks[str(z)] = [_constant(torch.where(mask, self.donor[str(z)], self.base[str(z)]))]
            if self.freeze_mlps and (layer < stop or self.to_logits):
                mlp = HookName(layer, "hook_mlp_out")
                hooks[str(mlp)] = [_constant(self._expand(mlp, rows))]
        reads = [str(hook) for hook in self.receiver_hooks if (hook.layer or 0) > start]
        if self.to_logits:
            reads = [str(final_resid(self.n_layers))]
        result = self.model.run(
            self.tokens.expand(rows, -1),
            hooks=hooks,
            cache=reads,
            start_at_layer=start,
            start_resid=self._expand(HookName(start, "hook_resid_pre"), rows).contiguous(),
            stop_at_layer=stop + 1,
            logits="none",
        )
        return result.cache

    def _receiver_run(self, start: int, rows: int, recorded: dict[str, torch.Tensor]) -> torch.Tensor:
        """The base run with only the receivers' recorded q/k/v patched in."""
        facts = self.model.facts
        group = facts.n_heads // facts.n_kv_heads
        hooks: dict[str | HookName, Sequence[HookFn]] = {}
        for hook in self.receiver_hooks:
            if str(hook) not in recorded:
                continue
            per_kv = hook.site != "attn.hook_q"
            n_heads = facts.n_kv_heads if per_kv else facts.n_heads
            mask = torch.zeros((1, 1, n_heads, 1), dtype=torch.bool, device=self.model.device)
            for layer, head in self.receivers:
                if layer == hook.layer:
                    mask[0, 0, head // group if per_kv else head, 0] = True
            hooks[str(hook)] = [_replace_where(mask, recorded[str(hook)])]
        first = min(hook.layer or 0 for hook in self.receiver_hooks if str(hook) in recorded)
        last = str(final_resid(self.n_layers))
        result = self.model.run(
            self.tokens.expand(rows, -1),
            hooks=hooks,
            cache=[last],
            start_at_layer=first,
            start_resid=self._expand(HookName(first, "hook_resid_pre"), rows).contiguous(),
            stop_at_layer=self.n_layers,
            logits="none",
        )
        with torch.no_grad():
            return self.metric.from_final_resid(self.model, result.cache[last])


def _constant(value: torch.Tensor) -> HookFn:
    def replace(activation: torch.Tensor) -> torch.Tensor:
        return value.to(activation.dtype).expand_as(activation)

    return replace


def _replace_where(mask: torch.Tensor, value: torch.Tensor) -> HookFn:
    def replace(activation: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, value.to(activation.dtype), activation)

    return replace
