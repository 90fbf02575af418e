"""``/v1/admin/keys``: API keys over HTTP, for admin-scoped keys only (``interp keys`` does the same from a shell)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.openapi import ResponseSpec
from pydantic import BaseModel, Field

from service.auth import admin_only
from service.deps import Services
from service.errors import ApiError
from service.keys import TENANT_PATTERN, ApiKey, Scope
from service.schemas import BODY_ERROR_RESPONSES, ERROR_RESPONSES, ErrorBody
from workers.core.checks import quote
from workers.kinds.base import WireModel

__all__ = ["AdminController", "CreatedKey", "KeyInfo", "KeyList", "KeyRequest"]

ADMIN_RESPONSES: dict[int, ResponseSpec] = {
    **ERROR_RESPONSES,
    403: ResponseSpec(ErrorBody, description="the key is not admin-scoped (`forbidden`)", generate_examples=False),
}
CREATE_KEY_RESPONSES = {**ADMIN_RESPONSES, **BODY_ERROR_RESPONSES}


class KeyRequest(WireModel):
    tenant: Annotated[str, Field(pattern=TENANT_PATTERN, description="the tenant the key's jobs belong to")]
    scope: Scope = Field(default="jobs", description="`jobs`, or `admin` to manage keys as well")


class KeyInfo(BaseModel):
    """A key without its secret."""

    key_id: str
    tenant: str
    scope: Scope
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey) -> KeyInfo:
        return cls(key_id=key.key_id, tenant=key.tenant, scope=key.scope,
                   created_at=datetime.fromtimestamp(key.created_at, tz=UTC))


class CreatedKey(KeyInfo):
    key: str = Field(description="the key itself, `isk_…`: shown in this answer only, store it now")


class KeyList(BaseModel):
    items: list[KeyInfo]


class UnknownKeyError(ApiError):
    code = "unknown_key"


class AdminController(Controller):
    path = "/v1/admin/keys"
    tags = ["admin"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [admin_only]  # noqa: RUF012

    @post("/", operation_id="create_key", responses=CREATE_KEY_RESPONSES, status_code=201, sync_to_thread=True,
          summary="Create an API key for a tenant (its secret is shown once)")
    def create_key(self, data: KeyRequest, services: Services) -> CreatedKey:
        made = services.keys.create(data.tenant, data.scope)
        return CreatedKey(key=made.key, **KeyInfo.of(made.info).model_dump())

    @get("/", operation_id="list_keys", responses=ADMIN_RESPONSES, sync_to_thread=True, summary="Every live key")
    def list_keys(self, services: Services) -> KeyList:
        return KeyList(items=[KeyInfo.of(key) for key in services.keys.all_keys()])

    @delete("/{key_id:str}", operation_id="revoke_key", responses=ADMIN_RESPONSES, status_code=200,
            sync_to_thread=True, summary="Revoke a key: every later request with it is a 401")
    def revoke_key(self, key_id: str, services: Services) -> KeyInfo:
        revoked = services.keys.revoke(key_id)
        if revoked is None:
            raise UnknownKeyError(f"no key {quote(key_id)}", field="key_id")
        return KeyInfo.of(revoked)
