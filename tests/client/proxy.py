"""A loopback TCP proxy that breaks its first connection: dropped when the server starts answering (the request
was handled, the answer never arrives), or cut right after the first server-sent event it forwards."""

from __future__ import annotations

import select
import socket
import threading
from typing import Literal

Mode = Literal["drop_answer", "cut_after_event"]


class BreakingProxy:
    def __init__(self, upstream_port: int, mode: Mode):
        self.upstream_port = upstream_port
        self.mode = mode
        self.connections = 0
        self.broken = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            first = self.connections == 1
            threading.Thread(target=self._pump, args=(conn, first), daemon=True).start()

    def _pump(self, client: socket.socket, breaking: bool) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                        continue
                    if breaking and self.mode == "drop_answer":
                        self.broken += 1
                        return
                    client.sendall(data)
                    if breaking and self.mode == "cut_after_event" and b"data:" in data:
                        self.broken += 1
                        return
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
