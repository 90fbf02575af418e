"""The service's own cost, over real Redis, a worker process and the API on loopback.

    python -m bench service [--jobs 50] [--seconds 5] [--threads 4]

(a) overhead: submit-to-result (``POST /v1/jobs?wait=``) of a patching job whose activations are cached, minus
    the core's time for the same work (``run_patching`` timed inside that job by the worker: ``core_seconds``);
    median over ``--jobs`` jobs. The same core call timed in this process is printed for reference (noisy when
    other processes share the CPUs). Goal: ≤ 10 ms.
(b) ``sae_encode`` through the API, cold (a new prompt: activation-cache miss, one forward) against warm (the same
    prompt again: no forward). Goal: warm ≥ 10× faster.
(c) requests/s of ``GET /v1/jobs/{id}``: ``--threads`` keep-alive clients for ``--seconds`` seconds.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
import torch

from service.keys import RedisKeyStore
from workers.activation_cache import MemoryActivationCache
from workers.cached_reader import CacheContext, cached_reader
from workers.core.activations import forward_reader
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.patching import PatchingRequest, run_patching
from workers.core.registry import Registry
from workers.core.sae.formats import StandardSaeConfig, write_sae_dir
from workers.kinds.patching import PatchingSpec

REGISTRY = """
[models.tiny-gpt2]
max_tokens = 128
[models.tiny-gpt2.source]
kind = "random"
family = "gpt2"
seed = 0
config = { n_layer = 2, n_embd = 64, n_head = 4, n_positions = 128 }

# Big enough that a forward over a long prompt dominates the service's own cost.
[models.bench-gpt2]
max_tokens = 1024
[models.bench-gpt2.source]
kind = "random"
family = "gpt2"
seed = 1
config = { n_layer = 12, n_embd = 768, n_head = 12, n_positions = 1024 }
[[models.bench-gpt2.saes]]
id = "res-11"
hook = "blocks.11.hook_resid_post"
path = "saes/res-11"
"""

PATCHING = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "When Mary and John went, John gave",
            "corrupted_prompt": "When Mary and John went, Mary gave", "answer": " ", "wrong_answer": "M",
            "targets": ["resid_pre"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_registry(directory: Path) -> Path:
    cfg = StandardSaeConfig(d_in=768, d_sae=2048, hook_name="blocks.11.hook_resid_post")
    gen = torch.Generator().manual_seed(0)
    tensors = {name: torch.randn(shape, generator=gen) * 0.05 for name, shape in cfg.tensor_shapes().items()}
    write_sae_dir(directory / "saes" / "res-11", cfg, tensors)
    path = directory / "registry.toml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


class Deployment:
    def __init__(self, directory: Path, pool: str = "prefork") -> None:
        self.pool = pool
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}:"
        self.env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/13", "INTERP_KEY_PREFIX": self.prefix,
                    "INTERP_REGISTRY": str(_write_registry(directory)), "INTERP_CACHE_DIR": str(directory),
                    "INTERP_MODEL_GROUPS": f"tiny-gpt2=tiny-{self.prefix[:-1]},bench-gpt2=bench-{self.prefix[:-1]}",
                    "HF_HUB_OFFLINE": "1",
                    # Production processes refuse to start without a Standard Webhooks secret; this one is fresh.
                    "INTERP_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
                    "INTERP_KEY_PEPPER": secrets.token_urlsafe(32)}  # API keys are required, as in production
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis = redis.Redis.from_url(self.env["REDIS_URL"])
        self.url = ""
        pepper = self.env["INTERP_KEY_PEPPER"].encode()
        key = RedisKeyStore(self.redis, prefix=self.prefix, pepper=pepper).create("bench").key
        self.headers = {"Authorization": f"Bearer {key}"}

    def start(self) -> None:
        root = Path(__file__).resolve().parents[1]
        self.procs.append(subprocess.Popen([sys.executable, "-m", "service", "worker", "--loglevel", "WARNING",
                                            "--pool", self.pool],
                                           env=self.env, cwd=root, start_new_session=True))
        port = _free_port()
        self.procs.append(subprocess.Popen([sys.executable, "-m", "service", "api", "--port", str(port)],
                                           env=self.env, cwd=root, start_new_session=True))
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while not all(self.redis.exists(f"{self.prefix}meta:card:{m}") for m in ("tiny-gpt2", "bench-gpt2")):
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not start")
            time.sleep(0.1)
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        for key in self.redis.scan_iter(f"{self.prefix}*"):
            self.redis.delete(key)


def _submit(client: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    job: dict[str, Any] = client.post("/v1/jobs", json=body, params={"wait": 60}).json()
    elapsed = time.perf_counter() - start
    if job.get("status") != "succeeded":
        raise RuntimeError(f"job failed: {job}")
    return elapsed, job


def overhead(client: httpx.Client, jobs: int, registry: Registry, cache_dir: Path) -> None:
    _submit(client, PATCHING)  # fills the activation cache
    e2e, minus_reported = [], []
    for _ in range(jobs):
        elapsed, job = _submit(client, PATCHING)
        assert job["stats"]["forwards"] == 0
        e2e.append(elapsed)
        minus_reported.append(elapsed - job["stats"]["core_seconds"])
    entry = registry.get("tiny-gpt2")
    model, tokenizer = load_model(entry, cache_dir=cache_dir)
    hooked = HookedModel(model, tokenizer, model_id=entry.id, max_tokens=entry.max_tokens)
    cache = MemoryActivationCache(max_bytes=10**8, ttl_s=3600)
    request = PatchingSpec.model_validate(PATCHING).to_request()  # what the worker runs for this body
    assert isinstance(request, PatchingRequest)
    run_patching(hooked, request, reader=cached_reader(cache, CacheContext("t", "r", "f"), forward_reader(hooked)))
    core = []
    for _ in range(jobs):
        start = time.perf_counter()
        run_patching(hooked, request, reader=cached_reader(cache, CacheContext("t", "r", "f"), forward_reader(hooked)))
        core.append(time.perf_counter() - start)
    med_e2e, med_core = statistics.median(e2e), statistics.median(core)
    print(f"(a) cached patching job, median of {jobs}: service overhead (submit→result minus the core's time inside "
          f"the same job) {statistics.median(minus_reported) * 1e3:.2f} ms (goal ≤ 10 ms); submit→result "
          f"{med_e2e * 1e3:.2f} ms, the same core call in this process {med_core * 1e3:.2f} ms")


def warm_vs_cold(client: httpx.Client, repeats: int) -> None:
    words = " ".join(f"word{i}" for i in range(80))  # ~570 byte-level tokens
    cold, warm = [], []
    for i in range(repeats):
        body = {"kind": "sae_encode", "model": "bench-gpt2", "prompt": f"{i} {words}", "sae": "res-11", "top_k": 4}
        elapsed, job = _submit(client, body)
        assert job["stats"]["forwards"] == 1
        cold.append(elapsed)
        elapsed, job = _submit(client, body)
        assert job["stats"]["forwards"] == 0
        warm.append(elapsed)
    med_cold, med_warm = statistics.median(cold), statistics.median(warm)
    print(f"(b) sae_encode through the API, median of {repeats}: cold {med_cold * 1e3:.1f} ms, warm "
          f"{med_warm * 1e3:.1f} ms → {med_cold / med_warm:.1f}× (goal ≥ 10×)")


def get_rps(url: str, headers: dict[str, str], job_id: str, seconds: float, threads: int) -> None:
    counts = [0] * threads
    errors = [0] * threads
    stop = time.monotonic() + seconds

    def load(i: int) -> None:
        with httpx.Client(base_url=url, headers=headers) as client:
            while time.monotonic() < stop:
                if client.get(f"/v1/jobs/{job_id}").status_code == 200:
                    counts[i] += 1
                else:
                    errors[i] += 1

    workers = [threading.Thread(target=load, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - start
    print(f"(c) GET /v1/jobs/{{id}}: {sum(counts) / elapsed:.0f} requests/s over {elapsed:.1f} s with {threads} "
          f"keep-alive clients, {sum(errors)} errors (load generator shares the machine's CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--sae-repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pool", choices=("prefork", "solo"), default="prefork", help="the worker's Celery pool")
    args = parser.parse_args()
    print(f"worker pool {args.pool}, CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        deployment = Deployment(Path(tmp), pool=args.pool)
        deployment.start()
        try:
            with httpx.Client(base_url=deployment.url, timeout=120, headers=deployment.headers) as client:
                overhead(client, args.jobs, Registry.from_toml(Path(tmp) / "registry.toml"), Path(tmp))
                warm_vs_cold(client, args.sae_repeats)
                _, job = _submit(client, PATCHING)
            get_rps(deployment.url, deployment.headers, job["id"], args.seconds, args.threads)
        finally:
            deployment.stop()


if __name__ == "__main__":
    main()
