"""Structured logs for every ``interp`` process: one JSON object per line on stderr.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, then the context fields of the
request or job being handled (:mod:`workers.log_context`: ``request_id``; ``job_id``, ``kind``, ``model``), the
call's ``extra`` fields, and ``exception`` with the traceback when there is one. The standard library does it:
a formatter and a filter, set once by ``interp``'s ``main`` and handed to uvicorn, which applies it again in each of
its worker processes.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "logging_config", "route_library_logs"]

_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
"""What every record has; anything else on a record is a context or ``extra`` field."""


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON; values JSON cannot hold are written as their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES and k not in line)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The ``dictConfig`` of every process: the root logger writes JSON lines to stderr; loggers made before it
    (uvicorn's, Celery's) keep working and reach it."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "workers.log_context.ContextFilter"}},
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "json",
                       "filters": ["context"]},
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # httpx logs each request's full URL at INFO: a webhook's URL may carry the receiver's token.
        "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpcore")},
    }


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
    logging.captureWarnings(True)  # warnings.warn becomes a JSON line of the py.warnings logger


def route_library_logs() -> None:
    """transformers writes to a handler of its own; send its records to the root logger's JSON lines instead.

    Called where transformers is loaded anyway (workers, embedded mode): the API never imports it.
    """
    if "transformers" not in sys.modules:
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
