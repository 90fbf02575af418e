"""Patching metrics: logit difference and answer log-prob at the last position, and their normalisation.

Patching sweeps need the metric of hundreds of runs but only at the last position, and a logit difference needs
only two rows of the unembedding. :class:`AnswerMetric` therefore reads the metric straight from the final
residual (final norm, then the rows it needs), which is what the model's own head computes there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel

MetricKind = Literal["logit_diff", "logprob"]
METRIC_KINDS: tuple[str, ...] = ("logit_diff", "logprob")
METRIC_UNITS: dict[str, str] = {
    "logit_diff": "logit difference (answer − wrong answer)",
    "logprob": "log-probability of the answer (nats)",
}
"""What a patching metric measures, as a chart's axis title says it."""


def logit_difference(logits: torch.Tensor, answer: int, wrong_answer: int) -> torch.Tensor:
    """``logits[..., answer] − logits[..., wrong_answer]`` of last-position logits ``[..., vocab]``."""
    return logits[..., answer] - logits[..., wrong_answer]


def answer_logprob(logits: torch.Tensor, answer: int) -> torch.Tensor:
    """Log-probability of ``answer`` under last-position logits ``[..., vocab]``."""
    return torch.log_softmax(logits.float(), dim=-1)[..., answer]


def normalised_effect(patched: torch.Tensor, clean: float, corrupted: float) -> torch.Tensor | None:
    """``(patched − corrupted) / (clean − corrupted)``: 1 where a patch restores clean, 0 where it does nothing.

    ``None`` when clean and corrupted metrics are equal: the ratio is undefined and callers report raw values.
    """
    denominator = clean - corrupted
    if denominator == 0.0:
        return None
    return (patched - corrupted) / denominator


@dataclass(frozen=True)
class AnswerMetric:
    """A metric of the last position's logits: ``logit_diff`` (answer − wrong answer) or ``logprob`` (answer)."""

    kind: MetricKind
    answer: int
    wrong_answer: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise InvalidRequestError(f"unknown metric {self.kind!r}; valid: {', '.join(METRIC_KINDS)}", field="metric")
        if self.kind == "logit_diff" and self.wrong_answer is None:
            raise InvalidRequestError("the logit_diff metric needs a wrong_answer", field="wrong_answer")

    @classmethod
    def for_model(cls, model: HookedModel, kind: MetricKind, answer: str, wrong_answer: str | None) -> AnswerMetric:
        """Resolve answer texts to token ids; each must be exactly one token."""
        answer_id = model.token_id(answer, field="answer")
        wrong_id = None
        if kind == "logit_diff":
            if wrong_answer is None:
                raise InvalidRequestError("the logit_diff metric needs a wrong_answer", field="wrong_answer")
            wrong_id = model.token_id(wrong_answer, field="wrong_answer")
        return cls(kind, answer_id, wrong_id)

    def from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The metric of last-position logits ``[batch, vocab]`` → ``[batch]``."""
        if self.kind == "logprob":
            return answer_logprob(logits, self.answer)
        if self.wrong_answer is None:  # guarded in __post_init__
            raise InvalidRequestError("the logit_diff metric needs a wrong_answer", field="wrong_answer")
        return logit_difference(logits, self.answer, self.wrong_answer)

    def from_final_resid(self, model: HookedModel, resid: torch.Tensor) -> torch.Tensor:
        """The metric from the last layer's output ``[batch, pos, d_model]`` (or ``[batch, d_model]``).

        Applies the final norm to the last position and only the unembedding rows the metric needs (all rows
        for ``logprob``), with the model's final logit soft-capping where it has one.
        """
        last = resid[:, -1, :] if resid.dim() == 3 else resid
        norm = model.adapter.module(model.model, model.adapter.final_norm)
        normed = norm(last.unsqueeze(1)).squeeze(1)
        head = model.model.get_output_embeddings()  # type: ignore[no-untyped-call]
        if not isinstance(head, nn.Linear):
            raise InvalidRequestError("the model has no linear output head", field="model")
        if self.kind == "logprob":
            logits = _softcap(model, _unembed(head, normed, None))
            return answer_logprob(logits, self.answer)
        rows = [self.answer, self.wrong_answer if self.wrong_answer is not None else self.answer]
        logits = _softcap(model, _unembed(head, normed, rows))
        return logits[:, 0] - logits[:, 1]


def _unembed(head: nn.Linear, normed: torch.Tensor, rows: list[int] | None) -> torch.Tensor:
    weight = head.weight if rows is None else head.weight[rows]
    bias = head.bias if rows is None or head.bias is None else head.bias[rows]
    return nn.functional.linear(normed, weight, bias)


def _softcap(model: HookedModel, logits: torch.Tensor) -> torch.Tensor:
    cap = getattr(model.model.config, "final_logit_softcapping", None)
    if isinstance(cap, int | float) and cap > 0:
        return torch.tanh(logits / cap) * cap
    return logits
