"""The body of ``POST /v1/jobs``, decoded by the kind table (after :mod:`service.json_body` read it strictly).

Litestar cannot decode a union of pydantic models itself, so the submit handler takes a :class:`JobSubmission` (a
wrapper around the spec) that :func:`decode_submission` builds with the kind table's own adapter, and
:class:`JobSubmissionSchema` documents it as a ``oneOf`` of the kinds' specs (kind table order), which
:func:`service.openapi_fixes.complete_document` discriminates by ``kind`` once component names are final.
"""

from __future__ import annotations

from typing import Any

import pydantic
from litestar.openapi.spec import Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from service.errors import invalid_request_from
from workers.kinds import KINDS, JobSpec, job_spec_adapter

__all__ = ["JobSubmission", "JobSubmissionSchema", "decode_submission"]


class JobSubmission:
    """A validated job spec, as the submit handler receives it."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec


def is_submission(annotation: Any) -> bool:
    return annotation is JobSubmission


def decode_submission(_: Any, value: Any) -> JobSubmission:
    """Validate the decoded JSON body; a mistake is a 400 naming the field (``kind`` for an unknown kind)."""
    try:
        return JobSubmission(job_spec_adapter.validate_python(value))
    except pydantic.ValidationError as exc:
        raise invalid_request_from(exc) from None


class JobSubmissionSchema(OpenAPISchemaPlugin):
    """Documents :class:`JobSubmission` as ``oneOf`` the kinds' specs."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return is_submission(value)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        specs = [FieldDefinition.from_annotation(kind.spec) for kind in KINDS.values()]
        return Schema(one_of=[schema_creator.for_field_definition(spec) for spec in specs])
