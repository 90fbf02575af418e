"""A RabbitMQ node of the test's own (``rabbitmq-server`` on free ports, its data in a temporary directory), for
tests that stop the broker: the shared one at 127.0.0.1:5672 stays up for everyone else.

The server runs as the ``rabbitmq`` user, which cannot enter pytest's private temporary directories: its data
lives in a directory of its own under the system's temporary directory, removed by :meth:`RabbitMQ.remove`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from kombu import Connection

from tests.integration.conftest import free_port

__all__ = ["RabbitMQ"]


@dataclass
class RabbitMQ:
    """Start, stop (as a crash: SIGKILL) and start again on the same data directory, so durable queues survive."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="interp-rabbitmq-")))
    port: int = field(default_factory=free_port)
    node: str = field(default_factory=lambda: f"it{uuid.uuid4().hex[:8]}@localhost")
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 60.0) -> None:
        server = shutil.which("rabbitmq-server")
        if server is None:
            pytest.skip("no rabbitmq-server to start")
        self.directory.chmod(0o777)  # the server drops to the rabbitmq user
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.directory / "feature_flags"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq"),
        }
        with (self.directory / "server.out").open("ab") as out:
            self.proc = subprocess.Popen([server], env=env, cwd=self.directory, start_new_session=True,
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                tail = (self.directory / "server.out").read_text(errors="replace")[-2000:]
                pytest.fail(f"rabbitmq-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            with Connection(self.url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except Exception:
            return False

    def kill(self) -> None:
        """Every process of the node at once (the wrapper, the session ``su`` opens, the Erlang VM): a crash."""
        if self.proc is None:
            return
        try:
            family = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(family, timeout=10)
        self.proc.wait(timeout=10)
        self.proc = None

    def remove(self) -> None:
        """Kill the node and delete its data."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
