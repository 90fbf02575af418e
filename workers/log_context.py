"""Fields that every log line carries while a request or a job is handled (request id; job id, kind, model).

A context variable rather than a ``LoggerAdapter``: the lines the core, the cache or Celery write during a job carry
the fields too, without each logger knowing about jobs. Context variables follow the asyncio task of an HTTP
request into the threads it hands work to, and stay apart between the threads of an embedded worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

__all__ = ["ContextFilter", "current_fields", "log_context"]

_fields: ContextVar[Mapping[str, str]] = ContextVar("interp_log_fields", default=MappingProxyType({}))


def current_fields() -> Mapping[str, str]:
    return _fields.get()


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` (``None`` values left out) to every log record made inside the block."""
    added = {k: v for k, v in fields.items() if v is not None}
    token = _fields.set(MappingProxyType({**_fields.get(), **added}))
    try:
        yield
    finally:
        _fields.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current fields onto each record a handler emits (a value the call passed in ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _fields.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
