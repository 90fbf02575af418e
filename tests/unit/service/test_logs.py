"""JSON log lines with their context fields, and ``X-Request-ID`` on every response of the app."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.logs import JsonFormatter
from service.settings import ServiceSettings
from workers.log_context import ContextFilter, log_context

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the formatter and filter ``interp`` configures, into a string."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_json_object_per_line_with_context_and_extra(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = captured
    with log_context(request_id="r-1"), log_context(job_id="j" * 32, kind="patching", model="tiny", absent=None):
        logger.info("job %s", "started", extra={"queue_wait_s": 0.5, "path": Exception("not JSON")})
    logger.warning("outside\nthe job")
    first, second = lines(out)
    assert set(first) == {"time", "level", "logger", "message", "request_id", "job_id", "kind", "model",
                          "queue_wait_s", "path"}
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "tests.logs", "job started")
    assert (first["request_id"], first["job_id"], first["queue_wait_s"], first["path"]) == (
        "r-1", "j" * 32, 0.5, "not JSON")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(first["time"]))
    assert second == {"time": second["time"], "level": "WARNING", "logger": "tests.logs", "message": "outside\nthe job"}


def test_extra_wins_over_context_and_threads_keep_their_own(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = captured

    def elsewhere() -> None:
        logger.info("thread")

    with log_context(model="from-context"):
        logger.info("call", extra={"model": "from-call"})
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    call, other = lines(out)
    assert call["model"] == "from-call"
    assert "model" not in other  # a new thread starts with no context: an embedded worker's jobs stay apart


def test_exceptions_carry_their_traceback(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = captured
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    [line] = lines(out)
    assert line["level"] == "ERROR" and "ValueError: boom" in str(line["exception"])


def test_every_response_carries_a_request_id() -> None:
    with TestClient(create_app(ServiceSettings())) as client:
        given = client.get("/healthz", headers={"X-Request-ID": "abc-123_x.y:z"})
        assert given.headers["X-Request-ID"] == "abc-123_x.y:z"
        fresh = [client.get("/healthz").headers["X-Request-ID"] for _ in range(2)]
        assert all(NEW_ID.fullmatch(i) for i in fresh) and fresh[0] != fresh[1]
        for bad in ("has space", "a" * 129, "quote\"", "new\\line", ""):
            assert NEW_ID.fullmatch(client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"])
        unrouted = client.get("/no/such/route", headers={"X-Request-ID": "lost-1"})
        wrong_method = client.put("/healthz", headers={"X-Request-ID": "lost-2"})
        assert (unrouted.status_code, unrouted.headers["X-Request-ID"]) == (404, "lost-1")
        assert (wrong_method.status_code, wrong_method.headers["X-Request-ID"]) == (405, "lost-2")
