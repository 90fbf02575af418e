"""Patching requests and the checks that need no model; plus the prompt-pair checks that do.

Every refusal is a :class:`CoreError` naming the request field, with the values a caller needs to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from workers.core.checks import check_equal_lengths
from workers.core.defaults import PATH_DIRECTION, SWEEP_DIRECTION
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
LOGITS: Literal["logits"] = "logits"
"""Path patching's receiver for a sender's direct path into the final residual, which the metric reads."""


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
    the sweep (all when ``None``). ``together`` lists heads ``(layer, head)`` whose outputs are also patched all at
    once, at ``positions`` (exact only): a circuit's joint effect. ``memory_budget`` bounds the transient
    activations of one batched forward (default :data:`DEFAULT_MEMORY_BUDGET`, 512 MiB).
    """

    clean_prompt: str
    corrupted_prompt: str
    answer: str
    wrong_answer: str | None = None
    metric: MetricKind = "logit_diff"
    targets: tuple[str, ...] = ("resid_pre",)
    method: Method = "exact"
    direction: Direction = SWEEP_DIRECTION
    layers: tuple[int, ...] | None = None
    positions: tuple[int, ...] | None = None
    together: tuple[tuple[int, int], ...] | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        _check_common(self.metric, self.wrong_answer, self.direction, self.memory_budget)
        _one_of(self.method, METHODS, "method")
        if not self.targets and not self.together:
            raise InvalidRequestError("at least one target is needed (or heads to patch together)", field="targets")
        if self.together is not None and (not self.together or self.method != "exact"):
            raise InvalidRequestError("together lists at least one head, for method exact", field="together")
        for target in self.targets:
            check_target(target)


@dataclass(frozen=True)
class PathPatchingRequest:
    """Path patching (Wang et al. 2022): sender heads' effect through receiver heads' q/k/v inputs only.

    The base run (clean for ``noise``, the IOI paper's setting) gets the senders' outputs from the other run
    with every other head frozen at its base value (and MLPs too with ``freeze_mlps``); the receivers' inputs
    of that run are then patched into a fresh base run. ``receivers="logits"``: that run's own metric, the
    senders' direct effect. ``senders=None`` sweeps every head one at a time.
    """

    clean_prompt: str
    corrupted_prompt: str
    answer: str
    receivers: tuple[tuple[int, int], ...] | Literal["logits"]
    wrong_answer: str | None = None
    metric: MetricKind = "logit_diff"
    receiver_inputs: tuple[str, ...] = RECEIVER_INPUTS
    senders: tuple[tuple[int, int], ...] | None = None
    direction: Direction = PATH_DIRECTION
    freeze_mlps: bool = False
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        _check_common(self.metric, self.wrong_answer, self.direction, self.memory_budget)
        if not self.receivers or (isinstance(self.receivers, str) and self.receivers != LOGITS):
            raise InvalidRequestError('at least one receiver head is needed, or "logits"', field="receivers")
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
    check_equal_lengths(clean[0].tolist(), corrupted[0].tolist(), clean_strings, corrupted_strings)
    return PromptPair(clean, corrupted, clean_strings, corrupted_strings)
