"""Who is calling: ``Authorization: Bearer <key>`` checked once, in a Litestar authentication middleware.

Every route needs a key except the open ones (:data:`OPEN_PATHS`: health, readiness, metrics and the results page's
HTML and static files; the page sends the key typed into it on its API calls). The middleware puts a
:class:`Principal` in ``request.user`` before any handler runs, so a missing, malformed, unknown or revoked key is a
401 that comes before any lookup of what the request names; handlers get the tenant through the ``principal``
dependency and never check keys themselves. Admin routes add the :func:`admin_only` guard (403 for a ``jobs`` key).
With auth off (``INTERP_AUTH=off``, embedded mode's default) every request is the default tenant's, as a ``jobs``
caller: no one manages keys through an API that checks none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.concurrency import sync_to_thread
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.openapi.spec import SecurityRequirement, SecurityScheme
from litestar.types import ASGIApp

from service.errors import ApiError
from service.keys import ApiKey, KeyStore, Scope

__all__ = [
    "BEARER",
    "BEARER_SCHEME",
    "OPEN_PATHS",
    "SECURITY",
    "ApiKeyMiddleware",
    "ForbiddenError",
    "Principal",
    "UnauthorizedError",
    "admin_only",
    "provide_principal",
]

OPEN_PATHS: tuple[str, ...] = ("^/healthz$", "^/readyz$", "^/metrics$", "^/ui(/|$)")
"""Path patterns that need no key (Litestar's ``exclude``): probes, scrapes and the pages' files, which hold no
tenant's data."""

BEARER = "bearer"
BEARER_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    description="an API key, `isk_…` (`interp keys create --tenant NAME`), as `Authorization: Bearer <key>`",
)
SECURITY: list[SecurityRequirement] = [{BEARER: []}]
"""The ``security`` of every protected operation in the OpenAPI document."""


class UnauthorizedError(ApiError):
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - the same for every instance


class ForbiddenError(ApiError):
    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    """The caller: the tenant its jobs belong to, what its key may do, and the key (``None`` with auth off)."""

    tenant: str
    scope: Scope
    key_id: str | None = None

    @property
    def rate_identity(self) -> str:
        """What the rate limit counts against: the key, or the tenant where no key is checked."""
        return f"key:{self.key_id}" if self.key_id else f"tenant:{self.tenant}"


def bearer_token(header: str | None) -> str | None:
    """The token of ``Bearer <token>`` (the scheme is case-insensitive), or ``None``."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and " " not in token else None


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates every request outside :data:`OPEN_PATHS`; an error here is the app's JSON envelope."""

    def __init__(self, app: ASGIApp, *, keys: KeyStore, required: bool, default_tenant: str, **kwargs: Any) -> None:
        super().__init__(app, exclude=list(OPEN_PATHS), **kwargs)
        self.keys = keys
        self.required = required
        self.anonymous = Principal(tenant=default_tenant, scope="jobs")

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        if not self.required:
            return AuthenticationResult(user=self.anonymous, auth=None)
        header = connection.headers.get("authorization")
        if header is None:
            raise UnauthorizedError("an API key is required: send Authorization: Bearer <key>", field="Authorization")
        token = bearer_token(header)
        key: ApiKey | None = None if token is None else await sync_to_thread(self.keys.verify, token)
        if key is None:  # malformed, unknown and revoked keys read alike
            raise UnauthorizedError("the API key is not valid (malformed, unknown or revoked)", field="Authorization")
        return AuthenticationResult(user=Principal(key.tenant, key.scope, key.key_id), auth=key)


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The guard of key management: an ``admin`` key, never a ``jobs`` one (nor anyone while auth is off)."""
    principal = connection.user
    if not isinstance(principal, Principal) or principal.scope != "admin":
        raise ForbiddenError("this route needs an admin-scoped API key", field="Authorization")


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal = request.user
    return principal
