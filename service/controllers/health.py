"""Liveness (the process answers) and readiness (the job store and the broker answer, within half a second)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get

from service.deps import Services
from service.schemas import READINESS_RESPONSES

__all__ = ["HealthController"]


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/healthz", operation_id="healthz", sync_to_thread=False, summary="Liveness")
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", operation_id="readyz", responses=READINESS_RESPONSES,
         summary="Readiness: 503 while Redis or the broker is unreachable")
    async def readyz(self, services: Services) -> Response[dict[str, Any]]:
        """Async, with bounded pings: it must answer at once even when every thread waits on a frozen Redis."""
        checks = await services.readiness.checks()
        ready = all(v == "ok" for v in checks.values())
        return Response({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)
