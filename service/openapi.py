"""openapi.yaml is generated from the app (``interp openapi``); a test fails when the committed file is stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from service.app import create_app
from service.settings import ServiceSettings
from workers.activation_cache import MemoryActivationCache
from workers.records import MemoryJobStore

__all__ = ["openapi_document", "render_openapi", "write_openapi"]


class _NoQueue:
    def submit(self, job_id: str, kind: str, queue: str) -> None:
        raise RuntimeError("documentation app: no queue")

    def ping(self) -> None:
        raise RuntimeError("documentation app: no queue")


def openapi_document() -> dict[str, Any]:
    """The schema of an app built with default settings (no broker or Redis needed)."""
    app = create_app(
        ServiceSettings(),
        store=MemoryJobStore(),
        cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
        queue=_NoQueue(),
    )
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


def render_openapi() -> str:
    text: str = yaml.safe_dump(openapi_document(), sort_keys=True, allow_unicode=True, width=120)
    return text


def write_openapi(path: Path) -> Path:
    path.write_text(render_openapi(), encoding="utf-8")
    return path
