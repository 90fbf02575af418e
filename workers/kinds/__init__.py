"""The table of job kinds: every kind is one module here plus one entry in :data:`KINDS`.

The API validates bodies with :data:`job_spec_adapter` and documents them from the same union; settings read
each kind's time limits; the worker registers one Celery task per entry and runs its ``run``. This package
imports no torch (runners import the compute core when they run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, TypeAdapter

from workers.kinds import activations, attention, attribution, head_scores, patching, sae_encode, sae_features, steer
from workers.kinds.base import JobSpecBase, Kind, ResultBase

__all__ = ["KINDS", "JobSpec", "job_spec_adapter", "kind_of", "result_of"]

KINDS: Mapping[str, Kind[Any]] = {
    kind.name: kind
    for kind in (
        activations.KIND,
        attention.KIND,
        attribution.KIND,
        head_scores.KIND,
        patching.KIND,
        sae_encode.KIND,
        sae_features.KIND,
        steer.KIND,
    )
}
"""Every job kind by its ``kind`` name, in the order the documentation lists them."""

if TYPE_CHECKING:
    JobSpec = JobSpecBase
else:
    JobSpec = Annotated[Union[tuple(k.spec for k in KINDS.values())], Field(discriminator="kind")]  # noqa: UP007
    """The body of ``POST /v1/jobs``: one spec of any kind, discriminated by ``kind``."""

job_spec_adapter: TypeAdapter[JobSpecBase] = TypeAdapter(JobSpec)
"""Validates and dumps a job spec of any kind (the worker re-validates what the API stored)."""


def kind_of(spec: JobSpecBase) -> Kind[Any]:
    return KINDS[spec.kind]


def result_of(kind: str, data: Mapping[str, Any]) -> ResultBase:
    """A stored result read back into its kind's model."""
    return KINDS[kind].result.model_validate(data)
