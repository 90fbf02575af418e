"""Patching requests and the checks that need no model; plus the prompt-pair checks that do.

Every refusal is a :class:`CoreError` naming the request field, with the values a caller needs to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel
from workers.core.metrics import METRIC_KINDS, MetricKind
from workers.core.patching.budget import DEFAULT_MEMORY_BUDGET
from workers.core.patching.targets import check_target

Method = Literal["exact", "attribution"]
Direction = Literal["denoise", "noise"]
METHODS: tuple[str, ...] = ("exact", "attribution")
DIRECTIONS: tuple[str, ...] = ("denoise", "noise")
RECEIVER_INPUTS: tuple[str, ...] = ("q", "k", "v")


def _one_of(value: str, valid: Sequence[str], field: str) -> None:
    if value not in valid:
        raise InvalidRequestError(f"unknown {field} {value!r}; valid: {', '.join(valid)}", field=field)


def _check_common(metric: str, wrong_answer: str | None, direction: str, memory_budget: int) -> None:
    _one_of(metric, METRIC_KINDS, "metric")
    _one_of(direction, DIRECTIONS, "direction")
    if metric == "logit_diff" and wrong_answer is None:
        raise InvalidRequestError("the logit_diff metric needs a wrong_answer", field="wrong_answer")
    if memory_budget <= 0:
        raise InvalidRequestError(f"memory_budget must be positive, got {memory_budget}", field="memory_budget")


@dataclass(frozen=True)
class PatchingRequest:
    """An activation patching sweep of a clean/corrupted prompt pair.

    ``denoise`` patches clean activations into the corrupted run, ``noise`` corrupted into clean; either way
    effects are normalised as (patched − corrupted)/(clean − corrupted). ``layers`` and ``positions`` restrict
    the sweep (all when ``None``). ``memory_budget`` bounds the transient activations of one batched forward
    (default :data:`DEFAULT_MEMORY_BUDGET`, 512 MiB).
    """

    clean_prompt: str
    corrupted_prompt: str
    answer: str
    wrong_answer: str | None = None
    metric: MetricKind = "logit_diff"
    targets: tuple[str, ...] = ("resid_pre",)
    method: Method = "exact"
    direction: Direction = "denoise"
    layers: tuple[int, ...] | None = None
    positions: tuple[int, ...] | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        _check_common(self.metric, self.wrong_answer, self.direction, self.memory_budget)
        _one_of(self.method, METHODS, "method")
        if not self.targets:
            raise InvalidRequestError("at least one target is needed", field="targets")
        for target in self.targets:
            check_target(target)


@dataclass(frozen=True)
class PathPatchingRequest:
    """Path patching (Wang et al. 2022): sender heads' effect through receiver heads' q/k/v inputs only.

    The base run (clean for ``noise``, the IOI paper's setting) gets the senders' outputs from the other run
    with every other head frozen at its base value (and MLPs too with ``freeze_mlps``); the receivers' inputs
    of that run are then patched into a fresh base run. ``senders=None`` sweeps every head one at a time.
    """

    clean_prompt: str
    corrupted_prompt: str
    answer: str
    receivers: tuple[tuple[int, int], ...]
    wrong_answer: str | None = None
    metric: MetricKind = "logit_diff"
    receiver_inputs: tuple[str, ...] = RECEIVER_INPUTS
    senders: tuple[tuple[int, int], ...] | None = None
    direction: Direction = "noise"
    freeze_mlps: bool = False
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        _check_common(self.metric, self.wrong_answer, self.direction, self.memory_budget)
        if not self.receivers:
            raise InvalidRequestError("at least one receiver head is needed", field="receivers")
        if not self.receiver_inputs:
            raise InvalidRequestError("at least one receiver input is needed", field="receiver_inputs")
        for name in self.receiver_inputs:
            _one_of(name, RECEIVER_INPUTS, "receiver_inputs")
        if self.senders is not None and not self.senders:
            raise InvalidRequestError("senders is empty; leave it out to sweep every head", field="senders")


@dataclass(frozen=True)
class PromptPair:
    """Token ids ``[1, pos]`` of both prompts and their token strings."""

    clean: torch.Tensor
    corrupted: torch.Tensor
    clean_strings: tuple[str, ...]
    corrupted_strings: tuple[str, ...]


def tokenize_pair(model: HookedModel, clean_prompt: str, corrupted_prompt: str) -> PromptPair:
    """Tokenize both prompts; refuse pairs of different lengths, saying both lengths and where they diverge."""
    clean = model.tokenize(clean_prompt, field="clean_prompt")
    corrupted = model.tokenize(corrupted_prompt, field="corrupted_prompt")
    clean_strings = tuple(model.token_strings(clean))
    corrupted_strings = tuple(model.token_strings(corrupted))
    if clean.shape[1] != corrupted.shape[1]:
        shared = min(clean.shape[1], corrupted.shape[1])
        diverge = next(
            (i for i in range(shared) if int(clean[0, i]) != int(corrupted[0, i])),
            shared,
        )

        def at(strings: tuple[str, ...]) -> str:
            return repr(strings[diverge]) if diverge < len(strings) else "(end)"

        raise InvalidRequestError(
            f"the clean prompt is {clean.shape[1]} tokens and the corrupted prompt {corrupted.shape[1]}; "
            f"patching needs equal lengths. They first differ at position {diverge}: "
            f"clean {at(clean_strings)}, corrupted {at(corrupted_strings)}",
            field="corrupted_prompt",
        )
    return PromptPair(clean, corrupted, clean_strings, corrupted_strings)


def check_indices(values: Sequence[int] | None, size: int, field: str, what: str) -> list[int]:
    """``values`` (all of ``0..size-1`` when ``None``), each in range and listed once."""
    if values is None:
        return list(range(size))
    if not values:
        raise InvalidRequestError(f"{field} is empty; leave it out for all {what}s", field=field)
    bad = [v for v in values if not 0 <= v < size]
    if bad:
        raise InvalidRequestError(f"{what} {bad} out of range: valid {what}s are 0..{size - 1}", field=field)
    if len(set(values)) != len(values):
        raise InvalidRequestError(f"{field} lists a {what} twice: {list(values)}", field=field)
    return list(values)


def check_heads(heads: Sequence[tuple[int, int]], model: HookedModel, field: str) -> list[tuple[int, int]]:
    """``(layer, head)`` pairs, each in range."""
    n_layers, n_heads = model.facts.n_layers, model.facts.n_heads
    bad = [pair for pair in heads if not (0 <= pair[0] < n_layers and 0 <= pair[1] < n_heads)]
    if bad:
        raise InvalidRequestError(
            f"heads {bad} out of range: layers are 0..{n_layers - 1}, heads 0..{n_heads - 1}", field=field
        )
    return list(dict.fromkeys((int(layer), int(head)) for layer, head in heads))
