"""Worker settings: every variable read under its name, defaults written once, bad values named by variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from workers.kinds import KINDS
from workers.settings import THREAD_JOBS, SettingsError, TimeLimits, WorkerSettings, limit_variable


def _error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as info:
        WorkerSettings.from_env(env)
    return str(info.value)


def test_defaults_are_the_same_from_keywords_and_from_an_empty_environment() -> None:
    settings = WorkerSettings.from_env({})
    assert settings == WorkerSettings()
    assert settings.embedded
    assert (settings.broker_url, settings.redis_url, settings.registry_path) == (None, None, None)
    assert settings.model_cache_dir == Path(".cache/models")
    assert settings.webhook_secret is None  # no placeholder: production refuses to start without one


def test_keyword_construction_never_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("INTERP_CACHE_TTL_S", "abc")
    assert WorkerSettings().redis_url is None
    with pytest.raises(SettingsError, match="INTERP_CACHE_TTL_S"):
        WorkerSettings.from_env()  # None: os.environ


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("REDIS_URL", "redis://r:1/0", "redis_url", "redis://r:1/0"),
        ("INTERP_KEY_PREFIX", "t:", "key_prefix", "t:"),
        ("INTERP_REGISTRY", "/etc/interp/registry.toml", "registry_path", Path("/etc/interp/registry.toml")),
        ("INTERP_CACHE_DIR", "/var/cache/models", "model_cache_dir", Path("/var/cache/models")),
        ("INTERP_POOL_MAX_BYTES", "1024", "pool_max_bytes", 1024),
        ("INTERP_SAE_POOL_MAX_BYTES", "2048", "sae_pool_max_bytes", 2048),
        ("INTERP_JOB_TTL_S", "60", "job_ttl_s", 60),
        ("INTERP_CACHE_TTL_S", "30", "cache_ttl_s", 30),
        ("INTERP_CACHE_MAX_BYTES", "0", "cache_max_bytes", 0),
        ("INTERP_CACHE_MAX_ENTRY_BYTES", "4096", "cache_max_entry_bytes", 4096),
        ("INTERP_JOB_MEMORY_BYTES", "67108864", "job_memory_bytes", 64 * 1024**2),
        ("INTERP_VISIBILITY_TIMEOUT_S", "2", "visibility_timeout_s", 2),
        ("INTERP_MAX_DELIVERIES", "5", "max_deliveries", 5),
        ("INTERP_WORKER_CONCURRENCY", "4", "worker_concurrency", 4),
        ("INTERP_WORKER_POOL", "prefork", "worker_pool", "prefork"),
        ("INTERP_BATCH_MAX_WAIT_MS", "2.5", "batch_max_wait_ms", 2.5),
        ("INTERP_BATCH_MAX_TOKENS", "512", "batch_max_tokens", 512),
        ("INTERP_WEBHOOK_TIMEOUT_S", "2.5", "webhook_timeout_s", 2.5),
        ("INTERP_WEBHOOK_MAX_RETRIES", "0", "webhook_max_retries", 0),
        ("INTERP_WEBHOOK_BACKOFF_S", "2", "webhook_backoff_s", 2),
        ("INTERP_WEBHOOK_BACKOFF_MAX_S", "30", "webhook_backoff_max_s", 30),
        ("INTERP_WEBHOOK_ALLOW_HTTP", "true", "webhook_allow_http", True),
        ("INTERP_WEBHOOK_RESOLVE_TIMEOUT_S", "0.5", "webhook_resolve_timeout_s", 0.5),
        ("INTERP_MODEL_GROUPS", " gemma-3-270m = gemma, tiny-gpt2=tiny,", "model_groups",
         {"gemma-3-270m": "gemma", "tiny-gpt2": "tiny"}),
    ],
)
def test_each_variable_sets_its_field(variable: str, value: str, attribute: str, expected: Any) -> None:
    assert getattr(WorkerSettings.from_env({variable: value}), attribute) == expected


def test_broker_url_defaults_to_redis_url() -> None:
    assert WorkerSettings.from_env({"REDIS_URL": "redis://r/0"}).broker_url == "redis://r/0"
    both = WorkerSettings.from_env({"REDIS_URL": "redis://r/0", "BROKER_URL": "amqp://b//"})
    assert (both.broker_url, both.redis_url, both.embedded) == ("amqp://b//", "redis://r/0", False)


def test_an_empty_variable_counts_as_unset() -> None:
    settings = WorkerSettings.from_env({"REDIS_URL": "", "INTERP_REGISTRY": "", "INTERP_JOB_TTL_S": ""})
    assert settings == WorkerSettings()


def test_the_webhook_secret_never_shows() -> None:
    secret = "whsec_aHVudGVyMmh1bnRlcjJodW50ZXIyaHVudGVyMg=="
    settings = WorkerSettings.from_env({"INTERP_WEBHOOK_SECRET": secret})
    assert settings.webhook_secret is not None and settings.webhook_secret.get_secret_value() == secret
    assert secret not in repr(settings)
    assert secret not in str(settings)


def test_queue_for_uses_the_model_group() -> None:
    settings = WorkerSettings.from_env({"INTERP_MODEL_GROUPS": "gemma-3-270m=gemma"})
    assert settings.queue_for("gemma-3-270m") == "interp.models.gemma"
    assert settings.queue_for("tiny-gpt2") == "interp.models.tiny-gpt2"


def test_time_limits_default_to_the_kinds_table() -> None:
    limits = WorkerSettings.from_env({}).time_limits
    assert list(limits) == list(KINDS)
    for name, kind in KINDS.items():
        assert limits[name] == TimeLimits(soft=kind.soft_limit_s, hard=kind.hard_limit_s)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_has_its_limit_variables(kind: str) -> None:
    env = {limit_variable(kind, "soft"): "7", limit_variable(kind, "hard"): "9.5"}
    assert env == {f"INTERP_{kind.upper()}_SOFT_LIMIT_S": "7", f"INTERP_{kind.upper()}_HARD_LIMIT_S": "9.5"}
    settings = WorkerSettings.from_env(env)
    assert settings.time_limits[kind] == TimeLimits(soft=7.0, hard=9.5)
    others = {k: v for k, v in settings.time_limits.items() if k != kind}
    assert others == {k: v for k, v in WorkerSettings().time_limits.items() if k != kind}


def test_a_raised_soft_limit_lifts_the_default_hard_limit() -> None:
    default = KINDS["patching"]
    soft = default.hard_limit_s + 100
    lifted = WorkerSettings.from_env({"INTERP_PATCHING_SOFT_LIMIT_S": str(soft)})
    assert lifted.time_limits["patching"] == TimeLimits(soft=soft, hard=soft + 5)
    lowered = WorkerSettings.from_env({"INTERP_PATCHING_SOFT_LIMIT_S": "1"})
    assert lowered.time_limits["patching"] == TimeLimits(soft=1.0, hard=default.hard_limit_s)


def test_keyword_time_limits_fill_in_the_kinds_left_out() -> None:
    settings = WorkerSettings(time_limits={"patching": TimeLimits(soft=0.0, hard=5.0)})
    assert settings.time_limits["patching"] == TimeLimits(soft=0.0, hard=5.0)
    assert set(settings.time_limits) == set(KINDS)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INTERP_CACHE_TTL_S": "abc"}, "INTERP_CACHE_TTL_S"),
        ({"INTERP_CACHE_TTL_S": "0"}, "INTERP_CACHE_TTL_S"),
        ({"INTERP_WORKER_CONCURRENCY": "1.5"}, "INTERP_WORKER_CONCURRENCY"),
        ({"INTERP_MAX_DELIVERIES": "0"}, "INTERP_MAX_DELIVERIES"),
        ({"INTERP_SAE_POOL_MAX_BYTES": "0"}, "INTERP_SAE_POOL_MAX_BYTES"),
        ({"INTERP_WEBHOOK_TIMEOUT_S": "soon"}, "INTERP_WEBHOOK_TIMEOUT_S"),
        ({"INTERP_WEBHOOK_SECRET": "change-me"}, "INTERP_WEBHOOK_SECRET"),
        ({"INTERP_WEBHOOK_BACKOFF_S": "0.2"}, "INTERP_WEBHOOK_BACKOFF_S"),
        ({"INTERP_WEBHOOK_DENY_NETWORKS": "10.0.0.0/33"}, "INTERP_WEBHOOK_DENY_NETWORKS"),
        ({"INTERP_MODEL_GROUPS": "gemma-3-270m"}, "INTERP_MODEL_GROUPS"),
        ({"INTERP_PATCHING_SOFT_LIMIT_S": "ten"}, "INTERP_PATCHING_SOFT_LIMIT_S"),
        ({"INTERP_STEER_HARD_LIMIT_S": "-1"}, "INTERP_STEER_HARD_LIMIT_S"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env: dict[str, str], named: str) -> None:
    message = _error(env)
    assert named in message
    assert "\n" not in message


def test_the_message_says_what_is_wrong() -> None:
    assert _error({"INTERP_MODEL_GROUPS": "a=b,gemma"}) == (
        "invalid settings: INTERP_MODEL_GROUPS: item 'gemma' is not model=group"
    )
    assert _error({"INTERP_CACHE_TTL_S": "0"}) == "invalid settings: INTERP_CACHE_TTL_S: Input should be greater than 0"
    assert _error({"INTERP_PATCHING_SOFT_LIMIT_S": "100", "INTERP_PATCHING_HARD_LIMIT_S": "50"}) == (
        "invalid settings: INTERP_PATCHING_SOFT_LIMIT_S / INTERP_PATCHING_HARD_LIMIT_S: "
        "the hard limit (50 s) must exceed the soft limit (100 s)"
    )


def test_every_bad_variable_is_named_at_once() -> None:
    message = _error({"INTERP_JOB_TTL_S": "x", "INTERP_MAX_DELIVERIES": "y"})
    assert "INTERP_JOB_TTL_S" in message
    assert "INTERP_MAX_DELIVERIES" in message


def test_a_bad_value_never_echoes_the_secret() -> None:
    message = _error({"INTERP_WEBHOOK_SECRET": "hunter2", "INTERP_JOB_TTL_S": "hunter2"})
    assert "hunter2" not in message


def test_settings_are_frozen_and_copied_with_updates() -> None:
    settings = WorkerSettings()
    with pytest.raises(ValidationError):
        settings.cache_ttl_s = 1  # type: ignore[misc]
    copy = settings.model_copy(update={"cache_ttl_s": 1})
    assert (copy.cache_ttl_s, settings.cache_ttl_s) == (1, 24 * 3600)


def test_unknown_keywords_are_refused() -> None:
    with pytest.raises(ValidationError):
        WorkerSettings(cache_ttl=1)  # type: ignore[call-arg]


def test_torch_threads_share_the_cores_among_prefork_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert WorkerSettings(worker_pool="prefork", worker_concurrency=1).threads_per_job() == 8
    assert WorkerSettings(worker_pool="prefork", worker_concurrency=3).threads_per_job() == 2
    assert WorkerSettings(worker_pool="prefork", worker_concurrency=16).threads_per_job() == 1
    assert WorkerSettings(worker_pool="prefork", worker_concurrency=4, torch_threads=6).threads_per_job() == 6
    assert WorkerSettings(worker_concurrency=16).threads_per_job() == 8  # threads: one process has every core


def test_a_threads_worker_shares_forwards_by_default() -> None:
    settings = WorkerSettings()
    assert (settings.worker_pool, settings.concurrency, settings.shares_forwards) == ("threads", THREAD_JOBS, True)
    assert WorkerSettings(batch_max_wait_ms=0).shares_forwards is False
    assert WorkerSettings(worker_pool="prefork").concurrency == 1
    assert WorkerSettings(worker_pool="prefork").shares_forwards is False
