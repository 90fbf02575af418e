"""Worker and queue configuration: one typed object, read from the environment once, in a factory.

Every process (API, worker, embedded) builds a :class:`WorkerSettings` with :meth:`WorkerSettings.from_env` and
passes it down; nothing reads ``os.environ`` at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workers.core.registry import Registry

__all__ = ["KIND_NAMES", "TimeLimits", "WorkerSettings", "load_registry"]

KIND_NAMES: tuple[str, ...] = ("attribution", "patching", "sae_encode", "steer")

_DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    "attribution": (300.0, 330.0),
    "patching": (600.0, 660.0),
    "sae_encode": (120.0, 150.0),
    "steer": (300.0, 330.0),
}


@dataclass(frozen=True)
class TimeLimits:
    """Soft limit (the job fails with ``time_limit``) and hard limit (the worker process is killed), seconds."""

    soft: float
    hard: float


def _limits_from_env(env: Mapping[str, str]) -> dict[str, TimeLimits]:
    limits: dict[str, TimeLimits] = {}
    for kind, (soft, hard) in _DEFAULT_LIMITS.items():
        key = kind.upper()
        soft_s = float(env.get(f"INTERP_{key}_SOFT_LIMIT_S", soft))
        hard_s = float(env.get(f"INTERP_{key}_HARD_LIMIT_S", max(hard, soft_s + 5)))
        limits[kind] = TimeLimits(soft=soft_s, hard=hard_s)
    return limits


def _groups_from_env(value: str) -> dict[str, str]:
    """``"gemma-3-270m=gemma,tiny-gpt2=tiny"`` → model id → group name."""
    groups: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        model_id, _, group = item.partition("=")
        if not group:
            raise ValueError(f"INTERP_MODEL_GROUPS item {item!r} is not model=group")
        groups[model_id.strip()] = group.strip()
    return groups


@dataclass(frozen=True)
class WorkerSettings:
    """Broker, stores, limits and model-serving configuration shared by the API and the workers.

    ``broker_url`` ``None`` means embedded mode: in-memory broker, in-process job store and activation cache.
    """

    broker_url: str | None = None
    redis_url: str | None = None
    key_prefix: str = "interp:"
    registry_path: Path | None = None
    model_cache_dir: Path = Path(".cache/models")
    pool_max_bytes: int = 8 * 1024**3
    job_ttl_s: int = 7 * 24 * 3600
    cache_ttl_s: int = 24 * 3600
    cache_max_bytes: int = 2 * 1024**3
    cache_max_entry_bytes: int = 256 * 1024**2
    job_memory_bytes: int = 8 * 1024**3
    visibility_timeout_s: int = 3600
    max_deliveries: int = 3
    worker_concurrency: int = 1
    webhook_secret: str = "change-me"
    webhook_timeout_s: float = 5.0
    webhook_max_retries: int = 5
    webhook_backoff_s: float = 1.0
    model_groups: Mapping[str, str] = field(default_factory=dict)
    time_limits: Mapping[str, TimeLimits] = field(
        default_factory=lambda: {k: TimeLimits(s, h) for k, (s, h) in _DEFAULT_LIMITS.items()}
    )

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    def queue_for(self, model_id: str) -> str:
        """The Celery queue of a model's group: a worker started with that queue loads only those models."""
        return f"interp.models.{self.model_groups.get(model_id, model_id)}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        """``REDIS_URL`` switches to production mode (broker and stores); ``BROKER_URL`` may point elsewhere."""
        env = os.environ if env is None else env
        redis_url = env.get("REDIS_URL") or None
        broker_url = env.get("BROKER_URL") or redis_url
        registry = env.get("INTERP_REGISTRY")
        return cls(
            broker_url=broker_url,
            redis_url=redis_url,
            key_prefix=env.get("INTERP_KEY_PREFIX", "interp:"),
            registry_path=Path(registry) if registry else None,
            model_cache_dir=Path(env.get("INTERP_CACHE_DIR", ".cache/models")),
            pool_max_bytes=int(env.get("INTERP_POOL_MAX_BYTES", 8 * 1024**3)),
            job_ttl_s=int(env.get("INTERP_JOB_TTL_S", 7 * 24 * 3600)),
            cache_ttl_s=int(env.get("INTERP_CACHE_TTL_S", 24 * 3600)),
            cache_max_bytes=int(env.get("INTERP_CACHE_MAX_BYTES", 2 * 1024**3)),
            cache_max_entry_bytes=int(env.get("INTERP_CACHE_MAX_ENTRY_BYTES", 256 * 1024**2)),
            job_memory_bytes=int(env.get("INTERP_JOB_MEMORY_BYTES", 8 * 1024**3)),
            visibility_timeout_s=int(env.get("INTERP_VISIBILITY_TIMEOUT_S", 3600)),
            max_deliveries=int(env.get("INTERP_MAX_DELIVERIES", 3)),
            worker_concurrency=int(env.get("INTERP_WORKER_CONCURRENCY", 1)),
            webhook_secret=env.get("INTERP_WEBHOOK_SECRET", "change-me"),
            webhook_timeout_s=float(env.get("INTERP_WEBHOOK_TIMEOUT_S", 5.0)),
            webhook_max_retries=int(env.get("INTERP_WEBHOOK_MAX_RETRIES", 5)),
            webhook_backoff_s=float(env.get("INTERP_WEBHOOK_BACKOFF_S", 1.0)),
            model_groups=_groups_from_env(env.get("INTERP_MODEL_GROUPS", "")),
            time_limits=_limits_from_env(env),
        )


def load_registry(settings: WorkerSettings) -> Registry:
    """The configured registry file, or the packaged default (Gemma 3 270M and ``tiny-gpt2``)."""
    if settings.registry_path is not None:
        return Registry.from_toml(settings.registry_path)
    return Registry.default()
