"""Reading a job's server-sent events (GET /v1/jobs/{id}/events): lines in, messages out.

The stream replays every event of the job from the first, then follows it until it ends; each message's data is a
:class:`~interp_client.models.JobEvent`. Comments (the server's keep-alives) carry nothing and are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Message", "MessageDecoder"]


@dataclass(frozen=True)
class Message:
    """One server-sent event: its ``event`` name, ``data`` and ``id``."""

    event: str
    data: str
    id: str | None


class MessageDecoder:
    """Lines of a text/event-stream in, messages out, as the HTML standard parses them."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> Iterator[Message]:
        if not line:
            if self._data:
                yield Message(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
