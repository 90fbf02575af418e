"""HTTP service configuration, read from the environment once in :func:`service.app.create_app`'s callers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from workers.settings import WorkerSettings

__all__ = ["ServiceSettings"]


@dataclass(frozen=True)
class ServiceSettings:
    """Limits of the HTTP layer plus the worker settings the API shares (broker, stores, registry)."""

    workers: WorkerSettings = field(default_factory=WorkerSettings)
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    max_wait_s: float = 60.0
    max_page_size: int = 100
    default_tenant: str = "default"
    sse_heartbeat_s: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if env is None else env
        return cls(
            workers=WorkerSettings.from_env(env),
            host=env.get("INTERP_HOST", "127.0.0.1"),
            port=int(env.get("INTERP_PORT", 8000)),
            max_body_bytes=int(env.get("INTERP_MAX_BODY_BYTES", 1_048_576)),
            max_wait_s=float(env.get("INTERP_MAX_WAIT_S", 60.0)),
            default_tenant=env.get("INTERP_DEFAULT_TENANT", "default"),
        )
