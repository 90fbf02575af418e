"""Worker and queue configuration: one typed, frozen object, read from the environment once, in a factory.

Every process (API, worker, embedded) builds a :class:`WorkerSettings` with :meth:`WorkerSettings.from_env` and
passes it down; nothing reads ``os.environ`` at import time. Each field states its default and the variable that
sets it (its ``validation_alias``) once; a value that does not parse is a :class:`SettingsError` naming the
variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    NonNegativeFloat,
    PositiveFloat,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from workers.core.registry import Registry
from workers.kinds import KINDS
from workers.webhooks import DEFAULT_DENY_NETWORKS, WebhookPolicy, secret_problem

__all__ = [
    "EnvSettings",
    "SettingsError",
    "TimeLimits",
    "WorkerSettings",
    "kind_limits",
    "limit_variable",
    "load_registry",
]

HARD_LIMIT_GRACE_S = 5.0
"""A hard limit left at its default stays at least this far past the soft one, so the soft limit can fire."""


class SettingsError(ValueError):
    """A variable whose value cannot be used; the message names the variable, on one line."""


class TimeLimits(BaseModel):
    """Soft limit (the job fails with ``time_limit``) and hard limit (the worker process is killed), seconds."""

    model_config = ConfigDict(frozen=True)

    soft: NonNegativeFloat
    hard: PositiveFloat

    @model_validator(mode="after")
    def _hard_after_soft(self) -> Self:
        """A hard limit at or before the soft one kills the worker before the job can fail cleanly."""
        if self.hard <= self.soft:
            raise ValueError(f"the hard limit ({self.hard:g} s) must exceed the soft limit ({self.soft:g} s)")
        return self


def kind_limits() -> Mapping[str, TimeLimits]:
    """Each job kind's default limits, from the kinds table: settings hold no kind list of their own."""
    return {name: TimeLimits(soft=kind.soft_limit_s, hard=kind.hard_limit_s) for name, kind in KINDS.items()}


def limit_variable(kind: str, bound: str) -> str:
    """The variable of one kind's ``soft`` or ``hard`` limit: ``INTERP_PATCHING_SOFT_LIMIT_S``."""
    return f"INTERP_{kind.upper()}_{bound.upper()}_LIMIT_S"


class _EnvSource(PydanticBaseSettingsSource):
    """Each field from the variable its ``validation_alias`` names, in any mapping; an empty variable is unset.

    A mapping rather than ``os.environ`` alone, so tests and subprocess launchers pass their environment directly.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = field.validation_alias
        if not isinstance(variable, str):  # not read from the environment (a nested settings object)
            return None, field_name, False
        return self.env.get(variable) or None, variable, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


def _variable(loc: tuple[int | str, ...]) -> str:
    """The variable behind an error's location: the alias itself, or a kind's limit variables."""
    if len(loc) >= 2 and loc[0] == "time_limits":
        bounds = [str(loc[2])] if len(loc) > 2 else ["soft", "hard"]
        return " / ".join(limit_variable(str(loc[1]), bound) for bound in bounds)
    return ".".join(str(part) for part in loc)


def _describe(exc: ValidationError) -> str:
    """``INTERP_PORT: Input should be a valid integer, …`` for each problem, on one line; never the value."""
    problems = []
    for error in exc.errors(include_url=False):
        reason = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        problems.append(f"{_variable(tuple(error['loc']))}: {reason}")
    return "invalid settings: " + "; ".join(problems)


class EnvSettings(BaseSettings):
    """Frozen settings built with keywords (tests, the OpenAPI document) or from the environment (processes)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments only: the environment is read by :meth:`from_env`, so settings built in a test never
        depend on the shell that runs it."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Settings from ``env`` (``os.environ`` by default); :class:`SettingsError` names each bad variable."""
        env = os.environ if env is None else env
        try:
            return cls(**cls._env_values(env))
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from exc

    @classmethod
    def _env_values(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """The constructor's arguments found in ``env``; subclasses add what no single variable holds."""
        return _EnvSource(cls, env)()


WorkerPool = Literal["threads", "prefork", "solo"]

THREAD_JOBS = 8
"""Jobs a ``threads`` worker runs at once by default: the most jobs one shared forward can gather."""


class WorkerSettings(EnvSettings):
    """Broker, stores, limits and model-serving configuration shared by the API and the workers.

    ``broker_url`` ``None`` means embedded mode: in-memory broker, in-process job store and activation cache.
    """

    broker_url: str | None = Field(None, validation_alias="BROKER_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    key_prefix: str = Field("interp:", validation_alias="INTERP_KEY_PREFIX")
    registry_path: Path | None = Field(None, validation_alias="INTERP_REGISTRY")
    model_cache_dir: Path = Field(Path(".cache/models"), validation_alias="INTERP_CACHE_DIR")
    pool_max_bytes: int = Field(8 * 1024**3, ge=0, validation_alias="INTERP_POOL_MAX_BYTES")
    sae_pool_max_bytes: int = Field(2 * 1024**3, gt=0, validation_alias="INTERP_SAE_POOL_MAX_BYTES")
    job_ttl_s: int = Field(7 * 24 * 3600, gt=0, validation_alias="INTERP_JOB_TTL_S")
    artifact_ttl_s: int = Field(3600, gt=0, validation_alias="INTERP_ARTIFACT_TTL_S")
    cache_ttl_s: int = Field(24 * 3600, gt=0, validation_alias="INTERP_CACHE_TTL_S")
    cache_max_bytes: int = Field(2 * 1024**3, ge=0, validation_alias="INTERP_CACHE_MAX_BYTES")
    cache_max_entry_bytes: int = Field(256 * 1024**2, ge=0, validation_alias="INTERP_CACHE_MAX_ENTRY_BYTES")
    job_memory_bytes: int = Field(8 * 1024**3, gt=0, validation_alias="INTERP_JOB_MEMORY_BYTES")
    visibility_timeout_s: int = Field(3600, gt=0, validation_alias="INTERP_VISIBILITY_TIMEOUT_S")
    max_deliveries: int = Field(3, ge=1, validation_alias="INTERP_MAX_DELIVERIES")
    lease_s: float = Field(6.0, ge=1.0, le=600.0, validation_alias="INTERP_LEASE_S")
    redis_durability: Literal["require", "warn"] = Field("warn", validation_alias="INTERP_REDIS_DURABILITY")
    worker_pool: WorkerPool = Field("threads", validation_alias="INTERP_WORKER_POOL")
    """``threads``: one process runs several jobs at once and their forwards of one model are shared (batched);
    ``prefork``: a process per job, whose hard time limit kills it, and no sharing; ``solo``: one job at a time."""
    worker_concurrency: int | None = Field(None, ge=1, validation_alias="INTERP_WORKER_CONCURRENCY")
    """Jobs one worker runs at once; unset: :data:`THREAD_JOBS` threads, or 1 process (prefork) or job (solo)."""
    torch_threads: int = Field(0, ge=0, le=1024, validation_alias="INTERP_TORCH_THREADS")
    """torch's threads per worker process; 0: the machine's cores, shared out among prefork's processes."""
    batch_max_wait_ms: float = Field(5.0, ge=0, le=1000, validation_alias="INTERP_BATCH_MAX_WAIT_MS")
    """How long a shared forward waits for the worker's other running jobs to join it; 0: no sharing."""
    batch_max_tokens: int = Field(4096, ge=1, validation_alias="INTERP_BATCH_MAX_TOKENS")
    """Padded positions (rows × longest row) one shared forward of activation reads holds at most."""
    worker_metrics_port: int = Field(0, ge=0, le=65535, validation_alias="INTERP_WORKER_METRICS_PORT")
    """Where ``interp worker`` serves Prometheus metrics for all its processes (0: no metrics port)."""
    webhook_secret: SecretStr | None = Field(None, validation_alias="INTERP_WEBHOOK_SECRET")
    """A Standard Webhooks secret (``whsec_`` + base64); ``interp api`` and ``interp worker`` refuse to start
    without one, ``interp serve`` then sends no webhooks."""
    webhook_timeout_s: float = Field(5.0, gt=0, validation_alias="INTERP_WEBHOOK_TIMEOUT_S")
    webhook_max_retries: int = Field(5, ge=0, validation_alias="INTERP_WEBHOOK_MAX_RETRIES")
    webhook_backoff_s: int = Field(1, ge=1, validation_alias="INTERP_WEBHOOK_BACKOFF_S")
    """Celery's ``retry_backoff`` factor (whole seconds): retry n waits a random 0 … factor·2ⁿ s (full jitter)."""
    webhook_backoff_max_s: int = Field(600, ge=1, validation_alias="INTERP_WEBHOOK_BACKOFF_MAX_S")
    webhook_allow_http: bool = Field(False, validation_alias="INTERP_WEBHOOK_ALLOW_HTTP")
    webhook_deny_networks: tuple[IPvAnyNetwork, ...] = Field(
        DEFAULT_DENY_NETWORKS, validate_default=True, validation_alias="INTERP_WEBHOOK_DENY_NETWORKS"
    )
    """Comma-separated CIDRs refused besides every non-public address (cluster ranges)."""
    webhook_allow_networks: tuple[IPvAnyNetwork, ...] = Field((), validation_alias="INTERP_WEBHOOK_ALLOW_NETWORKS")
    """Comma-separated CIDRs allowed despite every other rule: for tests and private deployments only."""
    webhook_resolve_timeout_s: float = Field(2.0, gt=0, validation_alias="INTERP_WEBHOOK_RESOLVE_TIMEOUT_S")
    model_groups: Mapping[str, str] = Field(default_factory=dict, validation_alias="INTERP_MODEL_GROUPS")
    webhook_queue: str = Field(
        "interp.webhooks", pattern=r"^[A-Za-z0-9._-]{1,128}$", validation_alias="INTERP_WEBHOOK_QUEUE"
    )
    """Where webhook deliveries wait; deployments sharing one broker (each its own INTERP_KEY_PREFIX) each need one."""
    time_limits: Mapping[str, TimeLimits] = Field(default_factory=kind_limits)
    """Per kind; set by ``INTERP_<KIND>_SOFT_LIMIT_S`` and ``INTERP_<KIND>_HARD_LIMIT_S``."""

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    @property
    def webhook_policy(self) -> WebhookPolicy:
        """Where ``callback_url`` may point: the same rules at submission (API) and at delivery (worker)."""
        return WebhookPolicy(
            allow_http=self.webhook_allow_http,
            deny_networks=tuple(self.webhook_deny_networks),
            allow_networks=tuple(self.webhook_allow_networks),
            resolve_timeout_s=self.webhook_resolve_timeout_s,
            enabled=self.webhook_secret is not None,
        )

    @property
    def concurrency(self) -> int:
        """Jobs one worker runs at once: ``INTERP_WORKER_CONCURRENCY``, or its pool's default."""
        if self.worker_concurrency is not None:
            return self.worker_concurrency
        return THREAD_JOBS if self.worker_pool == "threads" else 1

    @property
    def shares_forwards(self) -> bool:
        """Whether concurrent jobs' forwards of one model are batched: threads of one process, a wait above 0."""
        return self.worker_pool == "threads" and self.batch_max_wait_ms > 0

    def threads_per_job(self) -> int:
        """torch's intra-op threads for each of the worker's processes: all cores for one process, shared out
        among prefork's; more than the cores each process gets only adds contention (measured: 2 jobs of 2 threads
        each on 2 cores ran 6.6× slower than of 1 thread)."""
        processes = self.concurrency if self.worker_pool == "prefork" else 1
        return self.torch_threads or max(1, (os.cpu_count() or 1) // processes)

    def queue_for(self, model_id: str) -> str:
        """The Celery queue of a model's group: a worker started with that queue loads only those models."""
        return f"interp.models.{self.model_groups.get(model_id, model_id)}"

    @field_validator("model_groups", mode="before")
    @classmethod
    def _parse_groups(cls, value: Any) -> Any:
        """``"gemma-3-270m=gemma,tiny-gpt2=tiny"`` → model id → group name."""
        if not isinstance(value, str):
            return value
        groups: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            model_id, _, group = (part.strip() for part in item.partition("="))
            if not model_id or not group:
                raise ValueError(f"item {item!r} is not model=group")
            groups[model_id] = group
        return groups

    @field_validator("webhook_deny_networks", "webhook_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        """``"10.0.0.0/8, fd00::/8"`` → one network per item."""
        if not isinstance(value, str):
            return value
        return tuple(filter(None, (part.strip() for part in value.split(","))))

    @field_validator("webhook_secret")
    @classmethod
    def _standard_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """A placeholder (``change-me``) or a malformed secret stops every command, naming the variable."""
        if value is not None and (problem := secret_problem(value.get_secret_value())) is not None:
            raise ValueError(problem)
        return value

    @field_validator("time_limits", mode="before")
    @classmethod
    def _every_kind(cls, value: Any) -> Any:
        """Every kind gets limits: a kind or bound not given takes the kind's default, and a default hard limit
        moves past a raised soft one (``INTERP_PATCHING_SOFT_LIMIT_S=900`` alone gives a hard limit of 905 s)."""
        if not isinstance(value, Mapping):
            return value
        given = dict(value)
        limits: dict[str, Any] = {}
        for kind, default in kind_limits().items():
            bounds = given.pop(kind, None)
            if not isinstance(bounds, TimeLimits):
                bounds = dict(bounds or {})
                soft = bounds.setdefault("soft", default.soft)
                try:
                    floor = float(soft) + HARD_LIMIT_GRACE_S
                except (TypeError, ValueError):
                    floor = default.hard  # the soft value's own check reports it
                bounds.setdefault("hard", max(default.hard, floor))
            limits[kind] = bounds
        return {**limits, **given}

    @classmethod
    def _env_values(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """``BROKER_URL`` defaults to ``REDIS_URL``: one URL switches to production mode. Limits are per kind."""
        values = super()._env_values(env)
        if "BROKER_URL" not in values and "REDIS_URL" in values:
            values["BROKER_URL"] = values["REDIS_URL"]
        limits: dict[str, dict[str, str]] = {}
        for kind in kind_limits():
            given = {bound: env[limit_variable(kind, bound)] for bound in ("soft", "hard")
                     if env.get(limit_variable(kind, bound))}
            if given:
                limits[kind] = given
        values["time_limits"] = limits
        return values


def load_registry(settings: WorkerSettings) -> Registry:
    """The configured registry file, or the packaged default (Gemma 3 270M and ``tiny-gpt2``)."""
    if settings.registry_path is not None:
        return Registry.from_toml(settings.registry_path)
    return Registry.default()
