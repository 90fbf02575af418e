"""``/v1/limits``: the caller's tenant and the limits it runs under (per-model limits are on ``/v1/models/{id}``)."""

from __future__ import annotations

from litestar import Controller, get
from pydantic import BaseModel, Field

from service.auth import Principal
from service.deps import Services
from service.keys import Scope
from service.schemas import ERROR_RESPONSES

__all__ = ["Limits", "LimitsController"]


class Limits(BaseModel):
    tenant: str = Field(description="whose jobs this caller sees and submits")
    key_id: str | None = Field(description="the caller's key; null where the server checks none (auth off)")
    scope: Scope
    rate_limit: int = Field(description="requests per key per `rate_window_s` (0: no limit); over it, 429 "
                                        "`rate_limited` with `Retry-After`")
    rate_window_s: int
    max_active_jobs: int = Field(description="queued and running jobs per tenant (0: no limit); over it, 429 "
                                             "`too_many_active_jobs` with `Retry-After`")
    active_jobs: int | None = Field(description="the tenant's queued and running jobs now; null without a limit "
                                                "(they are not counted then)")


class LimitsController(Controller):
    path = "/v1/limits"
    tags = ["limits"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/", operation_id="get_limits", responses=ERROR_RESPONSES, sync_to_thread=True,
         summary="The caller's tenant, rate limit and active-job limit")
    def get_limits(self, services: Services, principal: Principal) -> Limits:
        settings = services.settings
        return Limits(
            tenant=principal.tenant,
            key_id=principal.key_id,
            scope=principal.scope,
            rate_limit=settings.rate_limit_per_minute,
            rate_window_s=settings.rate_limit_window_s,
            max_active_jobs=settings.max_active_jobs,
            active_jobs=services.active_jobs.count(principal.tenant) if settings.max_active_jobs else None,
        )
