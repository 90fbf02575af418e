"""The job kinds the client knows: each kind's spec (what is submitted), job record and result, from the models
generated out of openapi.yaml. A test fails when the spec has a kind this table lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from interp_client import models
from interp_client.errors import InvalidRequestError

__all__ = [
    "KINDS",
    "TERMINAL",
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "KindModels",
    "Result",
    "build_spec",
    "job_record_adapter",
]

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class KindModels:
    spec: type[BaseModel]
    job: type[BaseModel]
    result: type[BaseModel]


KINDS: dict[str, KindModels] = {
    "activations": KindModels(models.ActivationsSpec, models.ActivationsJob, models.ActivationsResult),
    "attention": KindModels(models.AttentionSpec, models.AttentionJob, models.AttentionResult),
    "attribution": KindModels(models.AttributionSpec, models.AttributionJob, models.AttributionResult),
    "head_scores": KindModels(models.HeadScoresSpec, models.HeadScoresJob, models.HeadScoresResult),
    "patching": KindModels(models.PatchingSpec, models.PatchingJob, models.PatchingResult),
    "sae_encode": KindModels(models.SaeEncodeSpec, models.SaeEncodeJob, models.SaeEncodeResult),
    "sae_features": KindModels(models.SaeFeaturesSpec, models.SaeFeaturesJob, models.SaeFeaturesResult),
    "steer": KindModels(models.SteerSpec, models.SteerJob, models.SteerResult),
}

JobSpec: TypeAlias = (
    models.ActivationsSpec
    | models.AttentionSpec
    | models.AttributionSpec
    | models.HeadScoresSpec
    | models.PatchingSpec | models.SaeEncodeSpec | models.SaeFeaturesSpec | models.SteerSpec
)
JobRecord: TypeAlias = Annotated[
    models.ActivationsJob
    | models.AttentionJob
    | models.AttributionJob
    | models.HeadScoresJob
    | models.PatchingJob | models.SaeEncodeJob | models.SaeFeaturesJob | models.SteerJob,
    Field(discriminator="kind"),
]
"""A job as GET /v1/jobs/{id} answers it, told apart by ``kind``."""
Result: TypeAlias = (
    models.ActivationsResult
    | models.AttentionResult
    | models.AttributionResult
    | models.HeadScoresResult
    | models.PatchingResult
    | models.SaeEncodeResult
    | models.SaeFeaturesResult
    | models.SteerResult
)

JobStatus: TypeAlias = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

job_record_adapter: TypeAdapter[JobRecord] = TypeAdapter(JobRecord)


def build_spec(spec_type: type[S], fields: Mapping[str, Any]) -> S:
    """The spec from keyword arguments, checked here against the contract; a mistake is an
    :class:`InvalidRequestError` naming its field, as the server would answer."""
    try:
        return spec_type.model_validate(dict(fields))
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        raise InvalidRequestError(f"{error['msg']} (field {field})", code="invalid_request", field=field) from exc
