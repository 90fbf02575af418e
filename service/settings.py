"""HTTP service configuration, read from the environment once by :func:`service.app.create_app`'s callers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from service.keys import PEPPER_HINT, TENANT_PATTERN
from workers.settings import EnvSettings, WorkerSettings

__all__ = ["ServiceSettings"]


class ServiceSettings(EnvSettings):
    """Limits of the HTTP layer plus the worker settings the API shares (broker, stores, registry)."""

    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    host: str = Field("127.0.0.1", validation_alias="INTERP_HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="INTERP_PORT")
    max_body_bytes: int = Field(1_048_576, gt=0, validation_alias="INTERP_MAX_BODY_BYTES")
    max_wait_s: float = Field(60.0, ge=0, validation_alias="INTERP_MAX_WAIT_S")
    default_tenant: str = Field("default", pattern=TENANT_PATTERN, validation_alias="INTERP_DEFAULT_TENANT")
    """The owner of every job when auth is off."""
    sse_heartbeat_s: float = Field(15.0, gt=0, validation_alias="INTERP_SSE_HEARTBEAT_S")
    auth: Literal["required", "off"] | None = Field(None, validation_alias="INTERP_AUTH")
    """Unset: ``required`` (``interp api``, any app built by ``create_app``), except ``interp serve``: ``off``."""
    key_pepper: SecretStr | None = Field(None, validation_alias="INTERP_KEY_PEPPER")
    """The server-side secret API keys are hashed with; required wherever keys are kept in Redis."""
    rate_limit_per_minute: int = Field(0, ge=0, validation_alias="INTERP_RATE_LIMIT_PER_MINUTE")
    """Requests per key per window (0: no limit)."""
    rate_limit_window_s: int = Field(60, ge=1, le=3600, validation_alias="INTERP_RATE_LIMIT_WINDOW_S")
    max_active_jobs: int = Field(100, ge=0, validation_alias="INTERP_MAX_ACTIVE_JOBS")
    """Queued and running jobs per tenant (0: no limit)."""

    @property
    def auth_required(self) -> bool:
        return self.auth != "off"

    @field_validator("key_pepper")
    @classmethod
    def _long_pepper(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(f"too short: {PEPPER_HINT}")
        return value

    @classmethod
    def _env_values(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """The worker settings come from the same environment."""
        return {**super()._env_values(env), "workers": WorkerSettings.from_env(env)}
