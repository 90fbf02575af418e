"""Liveness (the process answers) and readiness (the job store and the broker answer)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get

from service.deps import Services

__all__ = ["HealthController"]


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/healthz", sync_to_thread=False, summary="Liveness")
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", sync_to_thread=True, summary="Readiness: 503 while Redis or the broker is unreachable")
    def readyz(self, services: Services) -> Response[dict[str, Any]]:
        checks: dict[str, str] = {}
        for name, ping in (("store", services.store.ping), ("broker", services.queue.ping)):
            try:
                ping()
                checks[name] = "ok"
            except Exception as exc:  # any failure means not ready; the reason is reported, not raised
                checks[name] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return Response({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)
