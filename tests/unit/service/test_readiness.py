"""Readiness answers within its deadline whatever a ping does, and a stuck ping is shared, never stacked."""

from __future__ import annotations

import asyncio
import threading
import time

from litestar.testing import TestClient

from service.app import create_app
from service.readiness import Probe, Readiness
from service.settings import ServiceSettings
from workers.activation_cache import MemoryActivationCache
from workers.records import MemoryJobStore


class StuckPing:
    """A ping that hangs until released, as on a Redis frozen by SIGSTOP."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.release.wait(10)

    def submit(self, job_id: str, kind: str, queue: str) -> None:
        raise AssertionError("not used")

    def ping(self) -> None:
        self()


def _refuse() -> None:
    raise ConnectionError("refused")


def test_a_stuck_ping_answers_at_the_deadline_and_is_shared() -> None:
    stuck = StuckPing()
    readiness = Readiness([Probe("broker", stuck), Probe("store", _refuse), Probe("ok", lambda: None)],
                          deadline_s=0.2)

    async def scenario() -> None:
        for _ in range(3):
            began = time.monotonic()
            checks = await readiness.checks()
            assert time.monotonic() - began < 0.5
            assert checks == {"broker": "unreachable: no answer within 0.2 s",
                              "store": "unreachable: ConnectionError", "ok": "ok"}
        assert stuck.calls == 1
        stuck.release.set()
        await asyncio.sleep(0.05)
        assert (await readiness.checks())["broker"] == "ok"

    asyncio.run(scenario())


def test_readyz_is_503_within_a_second_while_the_broker_hangs() -> None:
    broker = StuckPing()
    app = create_app(ServiceSettings(auth="off"),
                     store=MemoryJobStore(), cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
                     queue=broker)
    try:
        with TestClient(app) as client:
            began = time.monotonic()
            response = client.get("/readyz")
            assert time.monotonic() - began < 1
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable", "checks": {
                "store": "ok", "broker": "unreachable: no answer within 0.5 s"}}
    finally:
        broker.release.set()
