"""Real parts for the service's integration tests: Redis, Celery worker processes, the API over loopback HTTP.

Redis is the server at 127.0.0.1:6379 (database 11), or a ``redis-server`` started on a free port when none
answers there. Every test session uses its own key prefix and queue names, so parallel runs never share jobs.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import redis

from service.keys import RedisKeyStore, Scope

REPO_ROOT = Path(__file__).resolve().parents[2]
INTERP = [sys.executable, "-m", "service"]
REGISTRY_TOML = """
allow_downloads = false

[models.tiny-gpt2]
max_tokens = 128
weights_revision = "random-seed-0"
[models.tiny-gpt2.source]
kind = "random"
family = "gpt2"
seed = 0
config = { n_layer = 2, n_embd = 64, n_head = 4, n_positions = 128 }

[[models.tiny-gpt2.saes]]
id = "res-1"
hook = "blocks.1.hook_resid_post"
path = "saes/res-1"

# Slow enough (seconds per patching sweep) to cancel or kill a worker mid-job.
[models.slow-gpt2]
max_tokens = 512
weights_revision = "random-seed-1"
[models.slow-gpt2.source]
kind = "random"
family = "gpt2"
seed = 1
config = { n_layer = 4, n_embd = 128, n_head = 8, n_positions = 512 }
"""


def write_registry(directory: Path) -> Path:
    """The test registry file and its seeded random SAE (SAELens format) under ``directory``."""
    from tests.unit.workers.core.sae.random_saes import write_random_sae

    directory.mkdir(parents=True, exist_ok=True)
    write_random_sae(directory / "saes" / "res-1", "standard", seed=3, d_in=64, d_sae=96)
    path = directory / "registry.toml"
    path.write_text(REGISTRY_TOML, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_embedded(directory: Path, *, output: IO[bytes] | None = None, **extra_env: str) -> Iterator[str]:
    """``interp serve`` on the test registry with no broker, from the moment it listens (its models are loaded by
    then: embedded mode publishes their cards first) until the block ends; ``output`` takes its stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BROKER_URL", "INTERP_AUTH")}
    env.update(INTERP_REGISTRY=str(write_registry(directory)), INTERP_CACHE_DIR=str(directory / "models"),
               HF_HUB_OFFLINE="1", **extra_env)
    port = free_port()
    proc = subprocess.Popen([*INTERP, "serve", "--port", str(port)], env=env, cwd=REPO_ROOT, start_new_session=True,
                            stdout=output, stderr=None if output is None else subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline and proc.poll() is None, "interp serve did not start"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break  # listening is all it waits for: no HTTP request before the test's own
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def start_redis(
    workdir: Path, port: int | None = None, *, appendonly: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """A ``redis-server`` of the test's own on ``port`` or a free one, once it answers: no persistence, or with
    ``appendonly`` every write in its append-only file under ``workdir`` (a restart on the same directory reads it
    back)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server to start")
    port = port or free_port()
    aof = ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--save", "", *aof, "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if _redis_answers(url):
            break
        time.sleep(0.05)
    return proc, url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = "redis://127.0.0.1:6379/11"
    if _redis_answers(url):
        yield url
        return
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


KEY_PEPPER = "integration tests' key pepper"
TENANT = "tests"
"""The tenant of :attr:`Deployment.api_key`."""


@dataclass
class Deployment:
    """One isolated deployment: its environment, and the processes started for it."""

    env: dict[str, str]
    redis: redis.Redis
    prefix: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api_url: str = ""

    def key(self, tenant: str = TENANT, scope: Scope = "jobs") -> str:
        """A new API key, made in the deployment's Redis as ``interp keys create`` makes one."""
        store = RedisKeyStore(self.redis, prefix=self.prefix, pepper=self.env["INTERP_KEY_PEPPER"].encode())
        return store.create(tenant, scope).key

    @cached_property
    def api_key(self) -> str:
        """The tests' key (tenant :data:`TENANT`), made on first use: a deployment without Redis never needs one."""
        return self.key()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def http(self, url: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client of the API at ``url`` (the last one started by default) that sends the tests' key."""
        return httpx.Client(base_url=url or self.api_url, headers=self.headers, **kwargs)

    def start_worker(
        self, *, models: tuple[str, ...] = ("tiny-gpt2", "slow-gpt2"), env: dict[str, str] | None = None,
        output: IO[bytes] | None = None, loglevel: str = "WARNING", pool: str = "prefork",
    ) -> subprocess.Popen[bytes]:
        """A worker (prefork by default: one process per job) on the models' queues; ``env`` adds to the
        deployment's, ``output`` takes its stdout and stderr."""
        queues = ",".join([*(f"interp.models.{self.group(m)}" for m in models), self.env["INTERP_WEBHOOK_QUEUE"]])
        proc = subprocess.Popen(
            [*INTERP, "worker", "--queues", queues, "--loglevel", loglevel, "--pool", pool],
            env={**self.env, **(env or {})},
            cwd=REPO_ROOT,
            start_new_session=True,  # its own process group: a test can SIGKILL the worker and its children
            stdout=output,
            stderr=None if output is None else subprocess.STDOUT,
        )
        self.procs.append(proc)
        self.wait_for_cards(models)
        return proc

    def group(self, model: str) -> str:
        return f"{model}-{self.prefix.rstrip(':')}"

    def wait_for_cards(self, models: tuple[str, ...], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.redis.exists(f"{self.prefix}meta:card:{m}") for m in models):
                return
            time.sleep(0.1)
        raise TimeoutError(f"no worker published cards for {models}")

    def start_api(self, *, output: IO[bytes] | None = None) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [*INTERP, "api", "--host", "127.0.0.1", "--port", str(port)], env=self.env, cwd=REPO_ROOT,
            start_new_session=True, stdout=output, stderr=None if output is None else subprocess.STDOUT,
        )
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    self.api_url = url
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("the API did not start")

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            self.kill(proc)
        for key in self.redis.scan_iter(f"{self.prefix}*"):
            self.redis.delete(key)
        queues = [f"interp.models.{self.group(model)}" for model in ("tiny-gpt2", "slow-gpt2", "gemma-3-270m")]
        queues.append(self.env["INTERP_WEBHOOK_QUEUE"])
        for queue in queues:
            self.redis.delete(queue, f"_kombu.binding.{queue}")  # the queue and kombu's record of its exchange


WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"integration tests' webhook key!!").decode()
"""A valid Standard Webhooks secret (32 bytes), for the deployments' workers and the tests' receivers."""


def make_deployment(redis_url: str, tmp_path: Path, **extra_env: str) -> Deployment:
    prefix = f"it-{uuid.uuid4().hex[:10]}:"
    registry = write_registry(tmp_path)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "INTERP_KEY_PREFIX": prefix,
        "INTERP_REGISTRY": str(registry),
        "INTERP_CACHE_DIR": str(tmp_path / "models"),
        "INTERP_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # The tests' receivers listen on loopback over plain http: allowed here only.
        "INTERP_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
        "INTERP_WEBHOOK_ALLOW_HTTP": "true",
        "INTERP_JOB_MEMORY_BYTES": str(64 * 1024**2),
        "INTERP_KEY_PEPPER": KEY_PEPPER,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        **extra_env,
    }
    deployment = Deployment(env=env, redis=redis.Redis.from_url(redis_url), prefix=prefix)
    deployment.env["INTERP_WEBHOOK_QUEUE"] = f"interp.webhooks.{deployment.group('hooks')}"  # its own, never shared
    deployment.env["INTERP_MODEL_GROUPS"] = ",".join(
        f"{m}={deployment.group(m)}" for m in ("tiny-gpt2", "slow-gpt2")
    )
    return deployment


@pytest.fixture(scope="module")
def deployment(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A worker process and the API, started once per test module."""
    dep = make_deployment(redis_url, tmp_path_factory.mktemp("deployment"))
    try:
        dep.start_worker()
        dep.start_api()
        yield dep
    finally:
        dep.stop()


@pytest.fixture(scope="module")
def client(deployment: Deployment) -> Iterator[httpx.Client]:
    with deployment.http(timeout=60) as http:
        yield http


def gemma_registry(directory: Path) -> Path:
    """A registry serving only Gemma 3 270M (and its SAEs that are installed), for the Gemma tests' worker."""
    from workers.core.registry import Registry

    entry = Registry.default().get("gemma-3-270m")
    lines = [
        "allow_downloads = false",
        "[models.gemma-3-270m]",
        'source = { kind = "gguf_package" }',
        f'weights_revision = "{entry.weights_revision}"',
        "max_tokens = 1024",
    ]
    for sae in entry.saes:
        if sae.path is not None and sae.path.is_dir():
            lines += ["[[models.gemma-3-270m.saes]]", f'id = "{sae.id}"', f'hook = "{sae.hook}"']
            lines.append(f'path = "{sae.path}"')
    path = directory / "gemma-registry.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="package")
def gemma_service(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path
) -> Iterator[tuple[Deployment, httpx.Client]]:
    """One worker serving Gemma 3 270M and the API, shared by every Gemma test module here (one model load)."""
    directory = tmp_path_factory.mktemp("gemma")
    dep = make_deployment(redis_url, directory, INTERP_CACHE_DIR=str(model_cache_dir),
                          INTERP_JOB_MEMORY_BYTES=str(8 * 1024**3))
    dep.env["INTERP_REGISTRY"] = str(gemma_registry(directory))
    dep.env["INTERP_MODEL_GROUPS"] = f"gemma-3-270m={dep.group('gemma-3-270m')}"
    try:
        dep.start_worker(models=("gemma-3-270m",))
        url = dep.start_api()
        with dep.http(url, timeout=300) as client:
            yield dep, client
    finally:
        dep.stop()
