"""A webhook receiver on loopback for the tests: records every request and answers from a script of statuses."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """``answers`` are the statuses of successive requests (the last one repeats); ``location`` goes with 3xx."""

    answers: list[int] = field(default_factory=lambda: [200])
    location: str | None = None
    calls: list[Call] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    url: str = ""

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.calls)


@contextmanager
def receiving(
    answers: list[int] | None = None, *, location: str | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    """A :class:`Receiver` listening on 127.0.0.1 (https with ``tls``) until the block ends."""
    receiver = Receiver(answers=answers or [200], location=location)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.calls.append(Call(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                       time.monotonic()))
            status = receiver.answers[min(len(receiver.calls), len(receiver.answers)) - 1]
            self.send_response(status)
            if receiver.location is not None and 300 <= status < 400:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: receiver.server_names.append(name)  # type: ignore[assignment]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
