"""API settings: the HTTP layer's variables, the worker settings from the same environment, and start-up errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import main
from service.settings import ServiceSettings
from workers.settings import SettingsError, WorkerSettings

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_defaults_are_the_same_from_keywords_and_from_an_empty_environment() -> None:
    settings = ServiceSettings.from_env({})
    assert settings == ServiceSettings()
    assert (settings.host, settings.port, settings.max_body_bytes, settings.max_wait_s) == (
        "127.0.0.1", 8000, 1_048_576, 60.0,
    )
    assert settings.workers == WorkerSettings()


def test_http_and_worker_variables_come_from_one_environment() -> None:
    env = {
        "INTERP_HOST": "0.0.0.0",
        "INTERP_PORT": "9000",
        "INTERP_MAX_BODY_BYTES": "2048",
        "INTERP_MAX_WAIT_S": "5",
        "INTERP_DEFAULT_TENANT": "acme",
        "INTERP_SSE_HEARTBEAT_S": "1.5",
        "REDIS_URL": "redis://r:6379/0",
        "INTERP_JOB_MEMORY_BYTES": "1024",
    }
    settings = ServiceSettings.from_env(env)
    assert (settings.host, settings.port, settings.max_body_bytes, settings.max_wait_s) == ("0.0.0.0", 9000, 2048, 5.0)
    assert (settings.default_tenant, settings.sse_heartbeat_s) == ("acme", 1.5)
    assert settings.workers == WorkerSettings.from_env(env)
    assert settings.workers.broker_url == "redis://r:6379/0"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INTERP_PORT": "abc"}, "INTERP_PORT"),
        ({"INTERP_PORT": "70000"}, "INTERP_PORT"),
        ({"INTERP_MAX_WAIT_S": "-1"}, "INTERP_MAX_WAIT_S"),
        ({"INTERP_CACHE_TTL_S": "abc"}, "INTERP_CACHE_TTL_S"),  # a worker variable, read for the API too
    ],
)
def test_a_bad_value_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        ServiceSettings.from_env(env)


def test_port_message() -> None:
    with pytest.raises(SettingsError) as info:
        ServiceSettings.from_env({"INTERP_PORT": "abc"})
    assert str(info.value) == (
        "invalid settings: INTERP_PORT: Input should be a valid integer, unable to parse string as an integer"
    )


def test_cli_stops_with_one_line_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "INTERP_PORT": "abc"}
    out = subprocess.run([sys.executable, "-m", "service", "openapi", "--output", "/dev/null"], env=env,
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "interp openapi: invalid settings: INTERP_PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_cli_names_the_registry_key_at_fault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text('[models.m]\nsource = { kind = "warp" }\n', encoding="utf-8")
    monkeypatch.setenv("INTERP_REGISTRY", str(registry))
    # The worker loads the registry before it connects to anything.
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("INTERP_WEBHOOK_SECRET", "whsec_" + "A" * 43)  # production mode needs one first
    with pytest.raises(SystemExit) as info:
        main(["worker"])
    assert str(info.value.code) == (
        "interp worker: models.m.source.kind = 'warp' is not one of gguf_package, gguf_file, local, hub, random"
    )
