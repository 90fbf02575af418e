"""``X-Request-ID``: the caller's id when it is a sane token, else a new one; on every response and log line.

The id is decided once per request and kept in the ASGI scope, so the middleware (which puts it in the log
context of the handler), the handler (which stores it on a submitted job's record) and the app's ``before_send``
hook (which sets the response header, also on the 404 and 405 answers no route handler sees) agree.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from workers.log_context import log_context

__all__ = ["REQUEST_ID_HEADER", "RequestIdMiddleware", "provide_request_id", "request_id", "send_request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
"""Token characters only: an id goes into log lines and headers verbatim, so nothing that could forge either."""
_STATE_KEY = "interp_request_id"


def request_id(scope: Scope) -> str:
    """This request's id: its ``X-Request-ID`` header if sane, else a new uuid4 hex (the same on every call)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    if _STATE_KEY not in state:
        given = Headers.from_scope(scope).get(REQUEST_ID_HEADER)
        state[_STATE_KEY] = given if given is not None and _SANE.fullmatch(given) else uuid.uuid4().hex
    return str(state[_STATE_KEY])


class RequestIdMiddleware(ASGIMiddleware):
    """Every log line written while a request is handled carries its ``request_id``."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        with log_context(request_id=request_id(scope)):
            await next_app(scope, receive, send)


async def send_request_id(message: Message, scope: Scope) -> None:
    """The app's ``before_send`` hook: the id in the response's ``X-Request-ID`` header."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id(scope)


def provide_request_id(request: Request[Any, Any, Any]) -> str:
    """The ``request_id`` dependency of route handlers."""
    return request_id(request.scope)
