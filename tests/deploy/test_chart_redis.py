"""The chart's Redis command run as a real redis-server, and the API's own Celery publish into it.

This is what the chart's comments claim: KEDA counts the Redis list the jobs land in, the password is required,
AOF persistence is on, and under memory pressure volatile-lru evicts cached entries (they have a TTL) but never
a queue (it has none).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.queue import CeleryJobQueue
from tests.deploy.conftest import FULLNAME, InstallSecrets, Render, Rendering, container, env_of
from tests.integration.conftest import free_port
from workers.celery_app import make_celery
from workers.settings import WorkerSettings

MAXMEMORY_MB = 8


@pytest.fixture
def rendering(render: Render) -> Rendering:
    return render({"redis": {"maxmemoryMb": MAXMEMORY_MB}, "worker": {"cacheMaxBytes": 4 * 1024**2}})


@pytest.fixture
def redis_port(rendering: Rendering, install_secrets: InstallSecrets, tmp_path: Path) -> Iterator[int]:
    """redis-server with the StatefulSet's arguments; only the port and the data directory are this test's."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server to start")
    command = container(rendering.get("StatefulSet", f"{FULLNAME}-redis"))["command"]
    assert command[0] == "redis-server"
    port = free_port()
    args = [arg.replace("$(REDIS_PASSWORD)", install_secrets.redis_password) for arg in command[1:]]
    args[args.index("--port") + 1] = str(port)
    args[args.index("--dir") + 1] = str(tmp_path)
    proc = subprocess.Popen([server, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=install_secrets.redis_password, socket_connect_timeout=0.5)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield port
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_jobs_land_in_the_lists_keda_counts_and_survive_eviction(
    rendering: Rendering, install_secrets: InstallSecrets, redis_port: int, tmp_path: Path
) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_port, retry=Retry(NoBackoff(), 0)).ping()
    client = redis.Redis(port=redis_port, password=install_secrets.redis_password)
    config = client.config_get("*")
    assert (config["maxmemory"], config["maxmemory-policy"], config["appendonly"]) == (
        str(MAXMEMORY_MB * 1024**2), "volatile-lru", "yes")

    # The URL the API pods build from the Secret, pointed at this server.
    template = env_of(rendering.get("Deployment", f"{FULLNAME}-api"))["REDIS_URL"]["value"]
    url = (template.replace("$(REDIS_PASSWORD)", install_secrets.redis_password)
           .replace(f"{FULLNAME}-redis:6379", f"127.0.0.1:{redis_port}"))
    settings = WorkerSettings.from_env({**rendering.config(), "REDIS_URL": url,
                                        "INTERP_WEBHOOK_SECRET": install_secrets.webhook_secret})
    app = make_celery(settings)
    try:
        for group in rendering.values["workerGroups"]:
            CeleryJobQueue(app).submit(f"job-{group['name']}", "patching", settings.queue_for(group["models"][0]))
    finally:
        app.close()
    lists = [s["spec"]["triggers"][0]["metadata"]["listName"] for s in rendering.of_kind("ScaledObject")]
    assert sorted(lists) == ["interp.models.gemma", "interp.models.tiny"]
    assert [client.llen(name) for name in lists] == [1, 1]

    # Cached activations (with a TTL, as RedisActivationCache writes them) twice past maxmemory.
    blob = os.urandom(256 * 1024)
    for i in range(2 * MAXMEMORY_MB * 4):
        client.set(f"interp:act:{i}", blob, ex=3600)
    cached = len(client.keys("interp:act:*"))
    assert 0 < cached < 2 * MAXMEMORY_MB * 4
    assert int(client.info("stats")["evicted_keys"]) > 0
    assert [client.llen(name) for name in lists] == [1, 1]
    assert (tmp_path / "appendonlydir").is_dir()
