"""What a job kind is: a wire spec, a wire result, time limits and a runner, declared once in a :class:`Kind`.

Kind modules import pydantic (and torch-free core modules) only at module level; a runner imports the compute
core when it is called. So the API process reads the whole table (validation, OpenAPI, submission checks) without
importing torch, and a worker runs the same table's runners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from workers.core.memory import dtype_bytes, forward_bytes

if TYPE_CHECKING:
    from workers.core.registry import ModelEntry
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = [
    "MAX_PROMPT_CHARS",
    "SCHEMA_VERSION",
    "JobSpecBase",
    "Kind",
    "ModelId",
    "Prompt",
    "ResultBase",
    "ResultPart",
    "SaeId",
    "SharesForwards",
    "TokenText",
    "WireModel",
]

SCHEMA_VERSION = 1
"""Bumped whenever a result's shape changes meaning; every result carries it."""

MAX_PROMPT_CHARS = 20_000

ModelId = Annotated[str, Field(min_length=1, max_length=128, description="a served model id (GET /v1/models)")]
Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="text; BOS is prepended")]
TokenText = Annotated[str, Field(min_length=1, max_length=256, description="text that must be exactly one token")]
SaeId = Annotated[str, Field(min_length=1, max_length=128, description="an SAE id of the model (GET /v1/models)")]


class WireModel(BaseModel):
    """A closed, strictly typed request object: an unknown field is a 400 naming it, never silently ignored, and
    no value is coerced (``true`` or ``"50"`` is not a number, ``1`` is not a boolean).

    Strict validation of a JSON-shaped dict accepts exactly what JSON can carry (lists, strings for URLs), so the
    worker's re-validation of a stored spec (``validate_python(record.spec)``) accepts what the API accepted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class JobSpecBase(WireModel):
    """Fields every job has. Subclasses add ``kind: Literal[...]`` and their own fields and limits."""

    kind: str
    model: ModelId
    callback_url: HttpUrl | None = Field(
        default=None,
        description=(
            "https URL that is POSTed the finished job, signed per Standard Webhooks (webhook-id: the job id, "
            "webhook-timestamp, webhook-signature); its host must resolve to public addresses only (checked at "
            "submission and again at delivery); redirects are not followed"
        ),
    )

    @property
    def shares_forwards(self) -> bool:
        """Whether the job's work is plain forwards (or embedding gradients) over its own prompts, which a worker
        batches with other running jobs'; a job holding large state of its own (patching's runs, integrated
        gradients' steps) runs alone instead."""
        return False

    def check_entry(self, entry: ModelEntry) -> None:
        """Checks that need only the registry entry (an SAE id): they run even before a worker has started."""

    def check(self, view: ModelView) -> None:
        """Checks that need the model's tokenizer and facts.

        Run by the API at submission and by the worker before the job starts, on the same :class:`ModelView`,
        so the same mistake gets the same code, field and status wherever it is caught.
        """

    def prompt_lengths(self, view: ModelView) -> list[int]:
        """Token counts of the sequences one forward of this job holds (for the memory estimate)."""
        return []

    def working_memory(self, view: ModelView) -> int:
        """Estimated bytes of activations the job holds at once beyond the weights (checked at submission).

        A lower bound, so that only jobs that surely cannot fit are refused: here, the sequences of
        :meth:`prompt_lengths` through one no-grad forward together. Kinds that keep every layer (a gradient
        graph, patching's cached runs) or run their sequences one at a time say so by overriding it, with the
        figures of :mod:`workers.core.memory` that the core sizes its own batches with.
        """
        lengths = self.prompt_lengths(view)
        one = forward_bytes(view.card, max(lengths, default=1), dtype_bytes(view.card.dtype))
        return len(lengths) * one


class SharesForwards:
    """Mixed into the specs of kinds whose work is plain forwards over their own prompts, always shared."""

    @property
    def shares_forwards(self) -> bool:
        return True


class ResultPart(BaseModel):
    """A part of a result, read from the core's object of the same shape by attribute."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class ResultBase(BaseModel):
    """A job's result as stored and served. Built from the core's result objects by attribute."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    schema_version: int = SCHEMA_VERSION


SpecT = TypeVar("SpecT", bound=JobSpecBase)


@dataclass(frozen=True)
class Kind(Generic[SpecT]):
    """One job kind: everything the API, the settings, the task table and the worker need to know about it."""

    spec: type[SpecT]
    result: type[ResultBase]
    run: Callable[[JobContext, SpecT], ResultBase]
    soft_limit_s: float
    hard_limit_s: float

    @property
    def name(self) -> str:
        """The ``kind`` discriminator, read from the spec's ``kind`` field: written once, there."""
        default: Any = self.spec.model_fields["kind"].default
        return str(default)
