"""The body of ``POST /v1/jobs``: one spec of any kind, decoded by the kind table and documented from it.

Litestar cannot decode a union of pydantic models itself, so the handler takes a :class:`JobSubmission` (a
wrapper around the spec) that :func:`decode_submission` builds with the kind table's own adapter, and
:class:`JobSubmissionSchema` documents it as a ``oneOf`` of the kinds' specs with a ``kind`` discriminator.
"""

from __future__ import annotations

from typing import Any

import pydantic
from litestar.openapi.spec import Discriminator, OpenAPI, Reference, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from service.errors import invalid_request_from
from workers.kinds import KINDS, JobSpec, job_spec_adapter

__all__ = ["JobSubmission", "JobSubmissionSchema", "decode_submission", "name_discriminated_refs"]


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
    """Documents :class:`JobSubmission` as ``oneOf`` the kinds' specs, discriminated by ``kind``."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return is_submission(value)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        refs = [schema_creator.for_field_definition(FieldDefinition.from_annotation(k.spec)) for k in KINDS.values()]
        # The mapping is filled by name_discriminated_refs once component names are final.
        return Schema(one_of=refs, discriminator=Discriminator(property_name="kind", mapping={}))


def name_discriminated_refs(document: OpenAPI) -> None:
    """Fill every ``kind`` discriminator's mapping from its ``oneOf`` references (kind table order)."""
    for schema in _schemas(document):
        if schema.discriminator is None or schema.discriminator.property_name != "kind" or not schema.one_of:
            continue
        refs = [ref.ref for ref in schema.one_of if isinstance(ref, Reference)]
        schema.discriminator.mapping = dict(zip(KINDS, refs, strict=True))


def _schemas(document: OpenAPI) -> list[Schema]:
    """Request and response schemas of every operation, and every component schema."""
    found = [s for s in (document.components.schemas or {}).values() if isinstance(s, Schema)]
    for path in (document.paths or {}).values():
        for operation in (path.post, path.get, path.delete):
            if operation is None:
                continue
            bodies: list[object] = [operation.request_body, *(operation.responses or {}).values()]
            for body in bodies:
                for media in (getattr(body, "content", None) or {}).values():
                    if isinstance(media.schema, Schema):
                        found.append(media.schema)
    return found
