"""Retries, headers and error mapping against a scripted stub server (no Redis, no worker)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from interp_client import (
    AuthenticationError,
    Client,
    ConnectionFailedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    UnavailableError,
)
from interp_client.events import MessageDecoder

from tests.integration.conftest import free_port

FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
JOB = {"id": "j1", "kind": "patching", "model": "m", "status": "queued", "progress": 0.0,
       "created_at": "2026-01-01T00:00:00Z"}
BODY = {"model": "m", "clean_prompt": "ab", "corrupted_prompt": "cd", "answer": "a", "wrong_answer": "b"}


def _error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": f"the {code} message", "field": None}}


class Stub(BaseHTTPRequestHandler):
    """Answers from ``script`` in order (the last one again once it runs out) and records each request."""

    script: list[tuple[int, dict[str, str], Any]] = []  # noqa: RUF012
    seen: list[tuple[str, str, dict[str, str], bytes]] = []  # noqa: RUF012

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.command, self.path, dict(self.headers), body))
        script = type(self).script
        status, headers, payload = script.pop(0) if len(script) > 1 else script[0]
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def stub() -> Iterator[str]:
    Stub.script, Stub.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_503s_are_retried_with_one_idempotency_key(stub: str) -> None:
    Stub.script = [(503, {}, _error("unavailable")), (503, {"Retry-After": "0"}, _error("model_not_ready")),
                   (202, {}, JOB)]
    with Client(stub, api_key="secret", retry=FAST) as client:
        job = client.patching(**BODY)
    assert job.id == "j1" and job.status == "queued"
    assert [(method, path) for method, path, _, _ in Stub.seen] == [("POST", "/v1/jobs")] * 3
    keys = {headers["Idempotency-Key"] for _, _, headers, _ in Stub.seen}
    assert len(keys) == 1 and len(next(iter(keys))) == 36  # one uuid for the logical submission
    assert all(headers["Authorization"] == "Bearer secret" for _, _, headers, _ in Stub.seen)
    sent = json.loads(Stub.seen[0][3])
    assert sent == {**BODY, "kind": "patching"}  # only what was set, and the kind


def test_a_second_submission_gets_a_new_key(stub: str) -> None:
    Stub.script = [(202, {}, JOB)]
    with Client(stub, retry=FAST) as client:
        client.patching(**BODY)
        client.patching(**BODY)
    assert len({headers["Idempotency-Key"] for _, _, headers, _ in Stub.seen}) == 2


def test_503_raised_once_the_attempts_run_out(stub: str) -> None:
    Stub.script = [(503, {}, _error("unavailable"))]
    with Client(stub, retry=FAST) as client, pytest.raises(UnavailableError) as raised:
        client.models()
    assert (raised.value.status, raised.value.code, raised.value.message) == (503, "unavailable",
                                                                             "the unavailable message")
    assert len(Stub.seen) == FAST.attempts


@pytest.mark.parametrize(
    ("status", "headers", "payload", "error", "code"),
    [
        (429, {"Retry-After": "7"}, _error("rate_limited"), RateLimitedError, "rate_limited"),
        (401, {}, _error("unauthorized"), AuthenticationError, "unauthorized"),
        (500, {}, _error("internal_error"), ServerError, "internal_error"),
        (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>", ServerError, "http_502"),
    ],
)
def test_statuses_become_typed_errors_without_retrying(
    stub: str, status: int, headers: dict[str, str], payload: Any, error: type[Exception], code: str
) -> None:
    Stub.script = [(status, headers, payload)]
    with Client(stub, retry=FAST) as client, pytest.raises(error) as raised:
        client.model("m")
    assert raised.value.code == code and raised.value.status == status  # type: ignore[attr-defined]
    assert len(Stub.seen) == 1
    if error is RateLimitedError:
        assert raised.value.retry_after == 7.0  # type: ignore[attr-defined]


def test_an_unreachable_service_is_a_connection_error_after_the_attempts() -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    with Client(unreachable, retry=FAST) as client, pytest.raises(ConnectionFailedError) as raised:
        client.models()
    assert raised.value.code == "connection_failed" and "4 attempts" in raised.value.message


def test_backoff_is_bounded_and_jittered() -> None:
    policy = RetryPolicy(attempts=5, base_delay_s=0.5, max_delay_s=2.0)
    delays = [policy.delay(attempt) for attempt in range(6) for _ in range(50)]
    assert all(0.0 <= d <= 2.0 for d in delays) and len(set(delays)) > 100
    assert max(policy.delay(0) for _ in range(50)) <= 0.5
    assert policy.delay(3, server_hint=30.0) == 2.0 and policy.delay(3, server_hint=0.3) == 0.3


def test_event_stream_decoding() -> None:
    decoder = MessageDecoder()
    lines = [": keep-alive", "", "event: running", "id: 1", 'data: {"seq": 1,', 'data:  "x": 2}', "", "data: z", ""]
    messages = [m for line in lines for m in decoder.feed(line)]
    assert [(m.event, m.id, m.data) for m in messages] == [("running", "1", '{"seq": 1,\n "x": 2}'),
                                                           ("message", "1", "z")]
