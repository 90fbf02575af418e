"""HTTP service configuration, read from the environment once by :func:`service.app.create_app`'s callers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from workers.settings import EnvSettings, WorkerSettings

__all__ = ["ServiceSettings"]


class ServiceSettings(EnvSettings):
    """Limits of the HTTP layer plus the worker settings the API shares (broker, stores, registry)."""

    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    host: str = Field("127.0.0.1", validation_alias="INTERP_HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="INTERP_PORT")
    max_body_bytes: int = Field(1_048_576, gt=0, validation_alias="INTERP_MAX_BODY_BYTES")
    max_wait_s: float = Field(60.0, ge=0, validation_alias="INTERP_MAX_WAIT_S")
    default_tenant: str = Field("default", min_length=1, validation_alias="INTERP_DEFAULT_TENANT")
    sse_heartbeat_s: float = Field(15.0, gt=0, validation_alias="INTERP_SSE_HEARTBEAT_S")

    @classmethod
    def _env_values(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """The worker settings come from the same environment."""
        return {**super()._env_values(env), "workers": WorkerSettings.from_env(env)}
