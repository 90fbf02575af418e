"""What the OpenAPI document must say that Litestar cannot derive from the handlers' types, said once here.

Litestar renders a pydantic discriminated union as a bare ``oneOf``, puts a route's ``response_headers`` on its
``status_code`` answer only, lets a ``ResponseSpec`` carry no headers, and knows nothing of a server-sent event's
``data``. :func:`complete_document` adds those facts to the built document, which ``/schema`` serves and
``interp openapi`` writes; :class:`JobEventStreamSchema` documents the event stream's body as it is generated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_origin

from litestar.openapi.spec import (
    Discriminator,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from service.schemas import ArtifactFile, JobEventStream
from workers.kinds.base import WireModel
from workers.records import JobEvent

__all__ = ["ArtifactFileSchema", "JobEventStreamSchema", "complete_document"]

DISCRIMINATOR = "kind"

EVENT_STREAM = (
    "Server-sent events, one per status or progress change, until the job ends and the stream closes. Each event "
    "has `event:` the job's status, `id:` its `seq` (0, 1, …) and `data:` one `JobEvent` as JSON "
    '(`{"seq", "status", "progress", "at"}`, schema `#/components/schemas/JobEvent`); `: keep-alive` comments come '
    "between events while nothing changes."
)
"""The body of the event stream; the name of the component is the model's (a test checks it is there)."""

RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0), description="seconds to wait before retrying"
)


class JobEventStreamSchema(OpenAPISchemaPlugin):
    """Documents :class:`JobEventStream` as event-stream text, and puts :class:`JobEvent` among the components."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is JobEventStream

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        """The body as OpenAPI 3.1 describes it: text (generated clients read a string). Each event's own schema
        is ``JobEvent``, named in the description; OpenAPI 3.2's ``itemSchema`` would say it formally."""
        schema_creator.for_field_definition(FieldDefinition.from_annotation(JobEvent))  # registers the component
        return Schema(type=OpenAPIType.STRING, description=EVENT_STREAM)


class ArtifactFileSchema(OpenAPISchemaPlugin):
    """Documents :class:`ArtifactFile` as binary, so a generated client hands back the bytes untouched."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is ArtifactFile

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


def complete_document(document: OpenAPI) -> None:
    """Add ``kind`` discriminators, the other 2xx answers' headers and ``Retry-After`` to a built document, and
    describe the request models' mappings as pydantic does."""
    components = {name: s for name, s in (document.components.schemas or {}).items() if isinstance(s, Schema)}
    for schema in _all_schemas(document, components):
        _discriminate(schema, components)
    _describe_mappings(components)
    for operation in _operations(document):
        responses = operation.responses or {}
        _share_success_headers(responses)
        if isinstance(too_many := responses.get("429"), OpenAPIResponse):
            too_many.headers = {**(too_many.headers or {}), "Retry-After": RETRY_AFTER}


def _describe_mappings(components: dict[str, Schema]) -> None:
    """Litestar renders a ``dict`` field whose keys or values are constrained (``custom_patterns``) as an array; a
    request model's mapping fields take pydantic's own schema (an object, its key pattern, its value schema)."""
    for model in _request_models():
        component = components.get(model.__name__)
        if component is None or not component.properties:
            continue
        described = model.model_json_schema()["properties"]
        for name, info in model.model_fields.items():
            if get_origin(info.annotation) is dict and name in component.properties:
                mapping = _schema_from_json(described[name])
                if mapping.pattern_properties and mapping.additional_properties is None:
                    mapping.additional_properties = False  # a key outside the pattern is refused
                component.properties[name] = mapping


def _request_models() -> list[type[WireModel]]:
    found: list[type[WireModel]] = []
    pending = list(WireModel.__subclasses__())
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return found


def _schema_from_json(value: dict[str, Any]) -> Schema:
    """A JSON Schema object (pydantic's, with no references) as Litestar's ``Schema``: camelCase keys to fields."""
    return Schema(**{_snake(key): _field_value(key, item) for key, item in value.items() if key != "title"})


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _field_value(key: str, item: Any) -> Any:
    if isinstance(item, dict) and key in ("items", "additionalProperties", "propertyNames"):
        return _schema_from_json(item)
    if key == "patternProperties":
        return {pattern: _schema_from_json(schema) for pattern, schema in item.items()}
    if key == "type":
        return OpenAPIType(item)
    return item


def _discriminate(schema: Schema, components: dict[str, Schema]) -> None:
    """A ``oneOf`` whose every member fixes ``kind`` to a constant is discriminated by it.

    That is every job body, ``JobOut`` and ``JobPage.items``. ``kind`` is then required in each member: the API
    refuses a body without it, and a client needs it to pick the member.
    """
    if not schema.one_of:
        return
    mapping: dict[str, str] = {}
    members: list[Schema] = []
    for option in schema.one_of:
        if not isinstance(option, Reference) or (member := components.get(option.ref.rsplit("/", 1)[-1])) is None:
            return
        tag = (member.properties or {}).get(DISCRIMINATOR)
        if not isinstance(tag, Schema) or not isinstance(tag.const, str):
            return
        mapping[tag.const] = option.ref
        members.append(member)
    schema.discriminator = Discriminator(property_name=DISCRIMINATOR, mapping=mapping)
    for member in members:
        if DISCRIMINATOR not in (member.required or ()):
            member.required = sorted([*(member.required or ()), DISCRIMINATOR])


def _share_success_headers(responses: dict[str, OpenAPIResponse | Reference]) -> None:
    """Litestar documents ``response_headers`` on the ``status_code`` answer only; every 2xx answer sends them."""
    successes = [r for code, r in responses.items() if code.startswith("2") and isinstance(r, OpenAPIResponse)]
    shared: dict[str, OpenAPIHeader | Reference] = {}
    for response in successes:
        shared.update(response.headers or {})
    if shared:
        for response in successes:
            response.headers = {**shared, **(response.headers or {})}


def _operations(document: OpenAPI) -> Iterator[Operation]:
    for path in (document.paths or {}).values():
        for operation in (path.get, path.put, path.post, path.delete, path.patch):
            if operation is not None:
                yield operation


def _all_schemas(document: OpenAPI, components: dict[str, Schema]) -> Iterator[Schema]:
    """Every schema object of the document: components, request and response bodies, and all nested in them."""
    roots: list[Schema | Reference | bool | None] = [*components.values()]
    for operation in _operations(document):
        bodies: list[object] = [operation.request_body, *(operation.responses or {}).values()]
        for body in bodies:
            if isinstance(body, RequestBody | OpenAPIResponse):
                roots.extend(media.schema for media in (body.content or {}).values())
    for root in roots:
        yield from _nested(root)


def _nested(schema: Schema | Reference | bool | None) -> Iterator[Schema]:
    if not isinstance(schema, Schema):
        return
    yield schema
    children: list[Schema | Reference | bool | None] = [
        schema.items,
        schema.additional_properties,
        *(schema.properties or {}).values(),
        *(schema.one_of or ()),
        *(schema.any_of or ()),
        *(schema.all_of or ()),
        *(schema.prefix_items or ()),
    ]
    for child in children:
        yield from _nested(child)
