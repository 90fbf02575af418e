"""Hostile input over real HTTP: every answer is a 4xx error envelope that names the problem, never a 5xx or a hang.

Requests go out through :mod:`http.client` (and a raw socket for the 50 MB body), so nothing on the client side
normalises a path, sets a content type or re-encodes a body. Both the embedded mode (``interp serve``) and the
production API (``interp api``, no worker: refusals need none) are asked the same things.
"""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.errors import MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, status_for
from service.json_body import MAX_JSON_DEPTH
from tests.integration.conftest import make_deployment, serve_embedded

pytestmark = pytest.mark.integration

TIMEOUT_S = 20.0
JSON = "application/json"
ATTRIBUTION = {"kind": "attribution", "model": "tiny-gpt2", "prompt": "When Mary and John", "target": {"token": "x"},
               "method": "saliency"}
IG = {**ATTRIBUTION, "method": "integrated_gradients"}


@dataclass(frozen=True)
class Server:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    embedded: bool = False

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return str(parts.hostname), int(parts.port or 80)


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    seconds: float

    @property
    def body(self) -> Any:
        return json.loads(self.text)


def send(server: Server, method: str, path: str, body: bytes | None = None, content_type: str | None = JSON,
         headers: dict[str, str] | None = None) -> Answer:
    """One request exactly as given: the path unnormalised, no header but the ones named."""
    connection = http.client.HTTPConnection(*server.address, timeout=TIMEOUT_S)
    started = time.monotonic()
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        every = {**server.headers, **(headers or {})}
        if content_type is not None:
            every["Content-Type"] = content_type
        if body is not None:
            every["Content-Length"] = str(len(body))
        for name, value in every.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.read().decode("utf-8"), time.monotonic() - started)
    finally:
        connection.close()


def assert_refused(answer: Answer, status: int, code: str, field: str | None, *, says: str = "") -> dict[str, Any]:
    """A 4xx envelope with exactly ``code`` and ``field``, a bounded message holding ``says``, and nothing leaked."""
    assert answer.status == status, answer.text[:500]
    assert 400 <= status < 500 and status_for(code) == status
    assert answer.seconds < TIMEOUT_S / 2
    envelope = answer.body
    assert set(envelope) == {"error"} and set(envelope["error"]) == {"code", "message", "field"}, envelope
    error: dict[str, Any] = envelope["error"]
    assert (error["code"], error["field"]) == (code, field), error
    message = error["message"]
    assert isinstance(message, str) and 0 < len(message) <= MAX_MESSAGE_CHARS and says in message, error
    for leak in ("Traceback", "site-packages", 'File "', "Error:", "/work/", "/tmp/"):
        assert leak not in answer.text, answer.text[:500]
    assert not re.search(r"\w+\.py\b", answer.text), answer.text[:500]
    return error


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def with_raw(body: dict[str, Any], name: str, raw: str) -> bytes:
    """``body`` with ``"name": raw`` spliced in as written (a value :mod:`json` would not produce)."""
    text = json.dumps(body)
    return (text[:-1] + f', "{name}": {raw}}}').encode()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve_embedded(tmp_path_factory.mktemp("hostile-embedded")) as url:
        yield Server(url, embedded=True)


@pytest.fixture(scope="module")
def deployment_api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """The production API with no worker; as a jobs-scoped and as an admin-scoped caller."""
    deployment = make_deployment(redis_url, tmp_path_factory.mktemp("hostile-production"))
    try:
        url = deployment.start_api()
        admin = deployment.key(scope="admin")
        yield Server(url, deployment.headers), Server(url, {"Authorization": f"Bearer {admin}"})
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def production(deployment_api: tuple[Server, Server]) -> Server:
    return deployment_api[0]


@pytest.fixture(scope="module")
def admin(deployment_api: tuple[Server, Server]) -> Server:
    return deployment_api[1]


@pytest.fixture(scope="module", params=["embedded", "production"])
def server(request: pytest.FixtureRequest) -> Server:
    server: Server = request.getfixturevalue(request.param)
    return server


# (name, path, body, content type, status, code, field, a part of the message)
REFUSALS: list[tuple[str, str, bytes, str | None, int, str, str | None, str]] = [
    ("non-UTF-8 bytes", "/v1/jobs", json.dumps(ATTRIBUTION).encode().replace(b"Mary", b"M\xff\xfey"), JSON, 400,
     "invalid_request", None, "not UTF-8"),
    ("latin-1 text", "/v1/jobs", json.dumps({**ATTRIBUTION, "prompt": "café"}, ensure_ascii=False).encode("latin-1"),
     JSON, 400, "invalid_request", None, "not UTF-8"),
    ("UTF-16", "/v1/jobs", json.dumps(ATTRIBUTION).encode("utf-16"), JSON, 400, "invalid_request", None, "not UTF-8"),
    ("not JSON", "/v1/jobs", b"{not json", JSON, 400, "invalid_request", None, "not JSON"),
    ("a UTF-8 BOM", "/v1/jobs", b"\xef\xbb\xbf" + json.dumps(ATTRIBUTION).encode(), JSON, 400, "invalid_request",
     None, "not JSON"),
    ("nested 10 deep", "/v1/jobs", with_raw(IG, "n_steps", nested(10)), JSON, 400, "invalid_request", "n_steps",
     "valid integer"),
    (f"nested {MAX_JSON_DEPTH} deep: read, then validated", "/v1/jobs",
     with_raw(IG, "n_steps", nested(MAX_JSON_DEPTH - 1)), JSON, 400, "invalid_request", "n_steps", "valid integer"),
    (f"nested {MAX_JSON_DEPTH + 1} deep", "/v1/jobs", with_raw(IG, "n_steps", nested(MAX_JSON_DEPTH)), JSON, 400,
     "invalid_request", None, f"more than {MAX_JSON_DEPTH} deep"),
    ("nested 100 deep", "/v1/jobs", with_raw(IG, "n_steps", nested(100)), JSON, 400, "invalid_request", None,
     f"more than {MAX_JSON_DEPTH} deep"),
    ("alternating objects and arrays nested 100 deep", "/v1/jobs", ('{"a": [' * 50 + "1" + "]}" * 50).encode(), JSON,
     400, "invalid_request", None, f"more than {MAX_JSON_DEPTH} deep"),
    ("brackets in strings are not nesting", "/v1/jobs", json.dumps({**ATTRIBUTION, "prompt": "[{" * 15_000}).encode(),
     JSON, 400, "invalid_request", "prompt", "at most 20000 characters"),
    ("arrays nested 10,000 deep", "/v1/jobs", nested(10_000).encode(), JSON, 400, "invalid_request", None,
     f"more than {MAX_JSON_DEPTH} deep"),
    ("objects nested 10,000 deep", "/v1/jobs", ('{"a":' * 10_000 + "1" + "}" * 10_000).encode(), JSON, 400,
     "invalid_request", None, f"more than {MAX_JSON_DEPTH} deep"),
    ("text/plain", "/v1/jobs", json.dumps(ATTRIBUTION).encode(), "text/plain", 415, "unsupported_media_type",
     "Content-Type", "application/json"),
    ("form-encoded", "/v1/jobs", json.dumps(ATTRIBUTION).encode(), "application/x-www-form-urlencoded", 415,
     "unsupported_media_type", "Content-Type", "application/json"),
    ("multipart", "/v1/jobs", b"--b\r\n\r\n{}\r\n--b--", "multipart/form-data; boundary=b", 415,
     "unsupported_media_type", "Content-Type", "application/json"),
    ("JSON in another charset", "/v1/jobs", json.dumps(ATTRIBUTION).encode(), "application/json; charset=latin-1",
     415, "unsupported_media_type", "Content-Type", "UTF-8"),
    ("a duplicated key", "/v1/jobs",
     b'{"kind": "attribution", "model": "../../etc/passwd", "model": "tiny-gpt2", "prompt": "x", '
     b'"target": {"token": "x"}}', JSON, 400, "invalid_request", "model", "duplicate key 'model'"),
    ("a duplicated nested key", "/v1/jobs",
     b'{"kind": "attribution", "model": "tiny-gpt2", "prompt": "x", "target": {"token": "x", "token": "y"}}',
     JSON, 400, "invalid_request", "token", "duplicate key 'token'"),
    ("a lone high surrogate", "/v1/jobs", json.dumps({**ATTRIBUTION, "prompt": "When \ud800 Mary"}).encode(), JSON,
     400, "invalid_request", "prompt", "lone surrogate (U+D800)"),
    ("a lone low surrogate in a list", "/v1/jobs",
     b'{"kind": "sae_encode", "model": "tiny-gpt2", "sae": "res-1", "prompts": ["ok", "a\\udfff"]}', JSON, 400,
     "invalid_request", "prompts.1", "lone surrogate (U+DFFF)"),
    ("a surrogate in a key", "/v1/jobs", b'{"\\udc00": 1}', JSON, 400, "invalid_request", None, "lone surrogate"),
    ("n_steps -1", "/v1/jobs", json.dumps({**IG, "n_steps": -1}).encode(), JSON, 400, "invalid_request", "n_steps",
     "greater than or equal to 1"),
    ("n_steps 2**70", "/v1/jobs", json.dumps({**IG, "n_steps": 2**70}).encode(), JSON, 400, "invalid_request",
     "n_steps", "less than or equal to 512"),
    ("n_steps 1e309", "/v1/jobs", with_raw(IG, "n_steps", "1e309"), JSON, 400, "invalid_request", None,
     "'1e309' is out of range"),
    ("a coefficient of -1e309", "/v1/jobs", with_raw({"kind": "steer", "model": "tiny-gpt2", "prompt": "hi",
                                                      "sae": "res-1", "feature": 3}, "coefficient", "-1e309"),
     JSON, 400, "invalid_request", None, "out of range"),
    ("n_steps of 5,000 digits", "/v1/jobs", with_raw(IG, "n_steps", "9" * 5000), JSON, 400, "invalid_request", None,
     "too many digits"),
    ("NaN", "/v1/jobs", with_raw(IG, "n_steps", "NaN"), JSON, 400, "invalid_request", None, "NaN is not JSON"),
    ("Infinity", "/v1/jobs", with_raw(IG, "n_steps", "-Infinity"), JSON, 400, "invalid_request", None,
     "Infinity is not JSON"),
    ("n_steps true", "/v1/jobs", json.dumps({**IG, "n_steps": True}).encode(), JSON, 400, "invalid_request",
     "n_steps", "valid integer"),
    ('n_steps "50"', "/v1/jobs", json.dumps({**IG, "n_steps": "50"}).encode(), JSON, 400, "invalid_request",
     "n_steps", "valid integer"),
    ("an empty body", "/v1/jobs", b"", JSON, 400, "invalid_request", "data", "data"),
    ("n_steps 50.0", "/v1/jobs", json.dumps({**IG, "n_steps": 50.0}).encode(), JSON, 400, "invalid_request",
     "n_steps", "valid integer"),
    ("a prompt that is a number", "/v1/jobs", json.dumps({**ATTRIBUTION, "prompt": 7}).encode(), JSON, 400,
     "invalid_request", "prompt", "valid string"),
    ("a 100,000-character key", "/v1/jobs", json.dumps({**ATTRIBUTION, "k" * 100_000: 1}).encode(), JSON, 400,
     "invalid_request", "k" * (MAX_FIELD_CHARS - 1) + "…", "Extra inputs are not permitted"),
    ("a duplicated key of 100,000 characters", "/v1/jobs", b'{"' + b"k" * 100_000 + b'": 1, "' + b"k" * 100_000
     + b'": 2}', JSON, 400, "invalid_request", "k" * (MAX_FIELD_CHARS - 1) + "…", "duplicate key"),
    ("tokenize: a duplicated key", "/v1/tokenize", b'{"model": "tiny-gpt2", "prompt": "a", "prompt": "b"}', JSON, 400,
     "invalid_request", "prompt", "duplicate key 'prompt'"),
    ("tokenize: a number for a boolean", "/v1/tokenize", b'{"model": "tiny-gpt2", "prompt": "a", "prepend_bos": 1}',
     JSON, 400, "invalid_request", "prepend_bos", "valid boolean"),
    ("tokenize: text/plain", "/v1/tokenize", b'{"model": "tiny-gpt2", "prompt": "a"}', "text/plain", 415,
     "unsupported_media_type", "Content-Type", "application/json"),
    ("tokenize: nested 10,000 deep", "/v1/tokenize", nested(10_000).encode(), JSON, 400, "invalid_request", None,
     f"more than {MAX_JSON_DEPTH} deep"),
    ("tokenize: non-UTF-8 bytes", "/v1/tokenize", b'{"model": "tiny-gpt2", "prompt": "\xc3\x28"}', JSON, 400,
     "invalid_request", None, "not UTF-8"),
    ("tokenize: a lone surrogate", "/v1/tokenize", b'{"model": "tiny-gpt2", "prompt": "a\\udfff"}', JSON, 400,
     "invalid_request", "prompt", "lone surrogate"),
]


@pytest.mark.parametrize(("name", "path", "body", "content_type", "status", "code", "field", "says"), REFUSALS,
                         ids=[case[0] for case in REFUSALS])
def test_hostile_bodies_are_refused_naming_the_problem(
    server: Server, name: str, path: str, body: bytes, content_type: str | None, status: int, code: str,
    field: str | None, says: str,
) -> None:
    assert_refused(send(server, "POST", path, body, content_type), status, code, field, says=says)


# (name, path, status, code, field)
PATHS: list[tuple[str, str, int, str, str | None]] = [
    ("encoded traversal in a job id", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", 404, "not_found", None),
    ("dot segments after a model id", "/v1/models/../../x", 404, "not_found", None),
    ("encoded traversal in a model id", "/v1/models/..%2F..%2Fx", 404, "not_found", None),
    ("a dot-dot job id", "/v1/jobs/..", 404, "unknown_job", "job_id"),
    ("a NUL in a job id", "/v1/jobs/a%00b", 404, "unknown_job", "job_id"),
    ("a non-UTF-8 job id", "/v1/jobs/%FF%FE", 404, "unknown_job", "job_id"),
    ("an 8,000-character job id", "/v1/jobs/" + "a" * 8000, 404, "unknown_job", "job_id"),
    ("an encoded surrogate in a model id", "/v1/models/%ED%A0%80", 404, "unknown_model", "model"),
    ("wait of 1e309 seconds", "/v1/jobs/x?wait=1e309", 400, "invalid_request", "wait"),
]


@pytest.mark.parametrize(("name", "path", "status", "code", "field"), PATHS, ids=[case[0] for case in PATHS])
def test_hostile_paths_are_refused(server: Server, name: str, path: str, status: int, code: str,
                                   field: str | None) -> None:
    answer = send(server, "GET", path, content_type=None)
    assert_refused(answer, status, code, field)
    assert "root:" not in answer.text  # no file was read


def test_unicode_edge_cases_that_are_valid_text_are_served(embedded: Server) -> None:
    """Marks of direction, joiners, a BOM inside the text, combining marks and a surrogate pair are valid Unicode."""
    prompt = "When \u200fMary\u200d and \u202eJohn\u202c\ufeff went e\u0301 \U0001f600"
    answer = send(embedded, "POST", "/v1/tokenize", json.dumps({"model": "tiny-gpt2", "prompt": prompt}).encode())
    assert answer.status == 200, answer.text
    assert answer.body["n_tokens"] == len(answer.body["tokens"]) > 1
    escaped = json.dumps({**ATTRIBUTION, "prompt": prompt}).encode()  # the pair arrives as "\ud83d\ude00"
    assert b"\\ud83d\\ude00" in escaped
    job = send(embedded, "POST", "/v1/jobs?wait=15", escaped)
    assert job.status == 200 and job.body["status"] == "succeeded", job.text  # the worker re-validated it


def test_strict_bodies_run_end_to_end(embedded: Server) -> None:
    """Strict validation of the stored spec in the worker accepts what the API accepted (lists, URLs, floats)."""
    body = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "When Mary and John went, John gave it to",
            "corrupted_prompt": "When Mary and John went, Mary gave it to", "answer": " ", "wrong_answer": "M",
            "layers": [0, 1], "positions": [0, 3], "targets": ["resid_pre"]}
    for ctype in (JSON, "application/json; charset=UTF-8", None):  # no Content-Type at all is read as JSON
        job = send(embedded, "POST", "/v1/jobs?wait=15", json.dumps(body).encode(), ctype)
        assert job.status == 200 and job.body["status"] == "succeeded", (ctype, job.text)
    steer = {"kind": "steer", "model": "tiny-gpt2", "prompt": "hi", "sae": "res-1", "feature": 3, "coefficient": 2,
             "max_new_tokens": 2}  # an integer for a float is exact, and accepted
    job = send(embedded, "POST", "/v1/jobs?wait=15", json.dumps(steer).encode())
    assert job.status == 200 and job.body["status"] == "succeeded", job.text


def test_production_accepts_what_it_cannot_check_yet(production: Server) -> None:
    """No worker yet: a valid body is accepted unchecked, however it is spelled (a surrogate pair, no header)."""
    body = json.dumps({**ATTRIBUTION, "prompt": "\U0001f600 \u200d", "callback_url": None}).encode()
    for ctype in (JSON, None):
        answer = send(production, "POST", "/v1/jobs", body, ctype)
        assert answer.status == 202 and answer.body["checked"] is False, answer.text


ADMIN_REFUSALS: list[tuple[str, bytes, str | None, int, str, str | None]] = [
    ("form-encoded, as curl -d sends", b'{"tenant": "bob"}', "application/x-www-form-urlencoded", 415,
     "unsupported_media_type", "Content-Type"),
    ("a duplicated scope", b'{"tenant": "bob", "scope": "jobs", "scope": "admin"}', JSON, 400, "invalid_request",
     "scope"),
    ("a number for the tenant", b'{"tenant": 7}', JSON, 400, "invalid_request", "tenant"),
    ("nested 10,000 deep", nested(10_000).encode(), JSON, 400, "invalid_request", None),
    ("non-UTF-8 bytes", b'{"tenant": "b\xffb"}', JSON, 400, "invalid_request", None),
]


@pytest.mark.parametrize(("name", "body", "content_type", "status", "code", "field"), ADMIN_REFUSALS,
                         ids=[case[0] for case in ADMIN_REFUSALS])
def test_admin_bodies_are_read_as_strictly(admin: Server, name: str, body: bytes, content_type: str | None,
                                           status: int, code: str, field: str | None) -> None:
    assert_refused(send(admin, "POST", "/v1/admin/keys", body, content_type), status, code, field)


def test_admin_keys_still_work(admin: Server) -> None:
    answer = send(admin, "POST", "/v1/admin/keys", b'{"tenant": "bob"}')
    assert answer.status == 201 and answer.body["tenant"] == "bob", answer.text
    revoked = send(admin, "DELETE", "/v1/admin/keys/" + "k" * 5000, content_type=None)
    error = assert_refused(revoked, 404, "unknown_key", "key_id")
    assert len(error["message"]) < 100


def _post_huge(server: Server, *, chunked: bool, total: int = 50 * 2**20) -> tuple[http.client.HTTPResponse, int]:
    """Start sending ``total`` bytes of body and stop as soon as the server answers; the answer and bytes sent."""
    sock = socket.create_connection(server.address, timeout=TIMEOUT_S)
    auth = "".join(f"{name}: {value}\r\n" for name, value in server.headers.items())
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: {JSON}\r\n{auth}{framing}\r\n\r\n".encode())
    piece = b" " * 65536
    piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent, deadline = 0, time.monotonic() + TIMEOUT_S
    sock.setblocking(False)
    while sent < total and time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock], [], 1.0)
        if readable:
            break
        if writable:
            try:
                sent += sock.send(piece)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
    sock.setblocking(True)
    sock.settimeout(TIMEOUT_S)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["announced", "chunked"])
def test_a_50_mb_body_is_refused_early(server: Server, chunked: bool) -> None:
    started = time.monotonic()
    response, sent = _post_huge(server, chunked=chunked)
    text = response.read().decode()
    response.close()
    assert_refused(Answer(response.status, text, time.monotonic() - started), 413, "body_too_large", None)
    assert sent < 20 * 2**20  # it stopped reading near the 1 MiB limit, not at 50 MB



def test_headers_that_are_not_ascii(production: Server) -> None:
    """Header bytes past ASCII arrive as latin-1 text: a key that is no key is a 401, an odd Idempotency-Key is a
    key like any other."""
    body = json.dumps(ATTRIBUTION).encode()
    no_key = Server(production.url, {"Authorization": "Bearer isk_\xff\xfe"})
    assert_refused(send(no_key, "POST", "/v1/jobs", body), 401, "unauthorized", "Authorization")
    first = send(production, "POST", "/v1/jobs", body, headers={"Idempotency-Key": "\xff\xfe\u00e9"})
    again = send(production, "POST", "/v1/jobs", body, headers={"Idempotency-Key": "\xff\xfe\u00e9"})
    assert first.status == again.status == 202 and first.body["id"] == again.body["id"], (first.text, again.text)
