"""``interp api`` and ``interp worker`` refuse to start unsigned: one line naming ``INTERP_WEBHOOK_SECRET``."""

from __future__ import annotations

import pytest

from service.cli import main


@pytest.mark.parametrize("command", ["api", "worker"])
def test_production_needs_a_webhook_secret(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # production mode; nothing is connected to
    monkeypatch.setenv("INTERP_AUTH", "off")
    monkeypatch.delenv("INTERP_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SystemExit) as info:
        main([command])
    message = str(info.value.code)
    assert message.startswith(f"interp {command}: INTERP_WEBHOOK_SECRET is not set; ")
    assert "\n" not in message


@pytest.mark.parametrize("command", ["api", "worker", "serve"])
@pytest.mark.parametrize("secret", ["change-me", "replace-me", "whsec_c2hvcnQ="])
def test_a_placeholder_secret_stops_every_command(monkeypatch: pytest.MonkeyPatch, command: str, secret: str) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("INTERP_WEBHOOK_SECRET", secret)
    with pytest.raises(SystemExit) as info:
        main([command])
    message = str(info.value.code)
    assert message.startswith(f"interp {command}: invalid settings: INTERP_WEBHOOK_SECRET: ")
    assert secret not in message and "\n" not in message
