"""Throughput when many users share a worker: the same small jobs with shared forwards on and off.

    python -m bench throughput [--jobs 32] [--clients 8] [--repeats 3] [--wait-ms 5] [--redis-url URL]

``--jobs`` small jobs (``sae_encode``, ``attribution`` with saliency and ``activations`` in turn, each on a prompt
of its own of 10–40 tokens, so no cached activation answers one) are submitted by ``--clients`` concurrent
clients over HTTP (each ``POST /v1/jobs?wait=`` and, when its job has ended, the next) on Gemma 3 270M (the
default registry's model and its SAE ``res-6``) to ``interp api`` and one
``interp worker`` on the Redis at ``--redis-url``. Each mode gets a worker of its own, and the same jobs: the
default threads worker (8 jobs at once) with shared forwards on (``INTERP_BATCH_MAX_WAIT_MS=--wait-ms``) and off
(``0``: the jobs still run concurrently, each forward alone), and a prefork worker of one process (one job at a
time).
Printed per mode, median of ``--repeats`` rounds: jobs/s, p50 and p95 submit-to-result latency, the mean number
of jobs a job's forward held (``shared_forward_jobs``), and the worker's peak resident memory during the rounds;
then the ratios of shared to each other mode. Every job must succeed.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from bench.load import free_port, percentile, start_server, stop_servers, wait_healthy
from service.keys import RedisKeyStore

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("river", "stone", "quiet", "lamp", "orbit", "maple", "signal", "ember", "cloud", "harbor", "violet", "garden",
         "winter", "copper", "meadow", "lantern", "silver", "forest", "candle", "thunder", "pebble", "shadow")
MODEL, SAE, HOOK = "gemma-3-270m", "res-6", "blocks.6.hook_resid_post"
"""The default registry's real model, its SAE, and the hook the activations jobs read."""
TARGET = {"contrast": [" the", " a"]}
WARM_UP_SEED = 2**31
"""Rounds are seeded 0, 1, …; the warm-up's prompts are none of theirs (no cached activation answers a round)."""


def job_bodies(jobs: int, seed: int) -> list[dict[str, Any]]:
    """``jobs`` small jobs in turn of three kinds, each on its own prompt of 10–40 tokens (seeded)."""
    rng = random.Random(seed)
    bodies = []
    for n in range(jobs):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(9, 39)))
        kind = ("sae_encode", "attribution", "activations")[n % 3]
        options: dict[str, dict[str, Any]] = {
            "sae_encode": {"sae": SAE, "top_k": 8},
            "attribution": {"method": "saliency", "target": TARGET},
            "activations": {"hooks": [HOOK], "top_k": 8},
        }
        bodies.append({"kind": kind, "model": MODEL, "prompt": prompt, **options[kind]})
    return bodies


@dataclass(frozen=True)
class Worker:
    """How the measured worker runs: its pool and ``INTERP_BATCH_MAX_WAIT_MS`` (0: forwards not shared)."""

    pool: str
    wait_ms: float


@dataclass(frozen=True)
class Round:
    seconds: float
    latencies: list[float]
    shared: list[float]

    @property
    def jobs_per_s(self) -> float:
        return len(self.latencies) / self.seconds


def run_round(url: str, headers: dict[str, str], bodies: list[dict[str, Any]], clients: int) -> Round:
    """Every body submitted by ``clients`` concurrent clients, each waiting for its job's end before the next."""
    todo = iter(bodies)
    lock = threading.Lock()
    latencies: list[float] = []
    shared: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            while True:
                with lock:
                    body = next(todo, None)
                if body is None:
                    return
                started = time.perf_counter()
                job = http.post("/v1/jobs", json=body, params={"wait": 60}).json()
                while job.get("status") not in ("succeeded", "failed", "cancelled"):
                    job = http.get(f"/v1/jobs/{job['id']}", params={"wait": 10}).json()
                if job["status"] != "succeeded":
                    raise RuntimeError(f"a {body['kind']} job ended {job['status']}: {job.get('error')}")
                with lock:
                    latencies.append(time.perf_counter() - started)
                    shared.append(float(job["stats"].get("shared_forward_jobs", 0)))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return Round(time.perf_counter() - started, latencies, shared)


class PeakMemory:
    """The largest resident set of a process and its children, sampled every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                processes = [self._process, *self._process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in processes))
            except psutil.Error:
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def deployment(directory: Path, redis_url: str, worker: Worker) -> Iterator[tuple[str, dict[str, str], list[int]]]:
    """``interp api`` and a threads ``interp worker`` for the model under a fresh prefix: URL, headers, and the pids
    of the worker and the API."""
    prefix = f"throughput-{uuid.uuid4().hex[:10]}:"
    model = MODEL
    group = f"{model}-{prefix[:-1]}"
    pepper = secrets.token_urlsafe(32)
    drop = ("BROKER_URL", "INTERP_AUTH", "INTERP_REGISTRY", "INTERP_WORKER_POOL", "INTERP_WORKER_CONCURRENCY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(REDIS_URL=redis_url, INTERP_KEY_PREFIX=prefix, INTERP_KEY_PEPPER=pepper, HF_HUB_OFFLINE="1",
               INTERP_MODEL_GROUPS=f"{model}={group}", INTERP_BATCH_MAX_WAIT_MS=str(worker.wait_ms),
               PYTHONUNBUFFERED="1",
               INTERP_CACHE_DIR=os.environ.get("INTERP_CACHE_DIR", str(ROOT / ".cache" / "models")),
               INTERP_WEBHOOK_SECRET="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    store = redis.Redis.from_url(redis_url)
    key = RedisKeyStore(store, prefix=prefix, pepper=pepper.encode()).create("throughput").key
    port, log = free_port(), directory / f"servers-{worker.pool}-{worker.wait_ms:g}.log"
    procs = []
    try:
        worker_args = ["worker", "--queues", f"interp.models.{group}", "--loglevel", "WARNING", "--pool", worker.pool]
        procs.append(start_server(worker_args, env, log))
        procs.append(start_server(["api", "--host", "127.0.0.1", "--port", str(port)], env, log))
        deadline = time.monotonic() + 300
        while not store.exists(f"{prefix}meta:card:{model}"):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the worker did not publish {model}'s card; its log: {log}")
            time.sleep(0.2)
        wait_healthy(f"http://127.0.0.1:{port}", procs, log)
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}, [p.pid for p in procs]
    finally:
        stop_servers(procs)
        for pattern in (f"{prefix}*", f"*{group}*"):
            for name in store.scan_iter(pattern):
                store.delete(name)


@dataclass(frozen=True)
class ModeReport:
    name: str
    jobs_per_s: float
    p50_s: float
    p95_s: float
    shared: float
    worker_cpu_s: float
    api_cpu_s: float
    peak_rss: int

    def line(self) -> str:
        return (f"{self.name:>14}: {self.jobs_per_s:6.2f} jobs/s   p50 {self.p50_s * 1000:7.0f} ms   "
                f"p95 {self.p95_s * 1000:7.0f} ms   jobs per forward {self.shared:4.1f}   "
                f"CPU per job: worker {self.worker_cpu_s * 1000:4.0f} ms, API {self.api_cpu_s * 1000:3.0f} ms   "
                f"worker peak RSS {self.peak_rss / 2**20:6.0f} MiB")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children so far."""
    process = psutil.Process(pid)
    times = [p.cpu_times() for p in (process, *process.children(recursive=True))]
    return float(sum(t.user + t.system for t in times))


def run_mode(name: str, args: argparse.Namespace, worker: Worker, directory: Path) -> ModeReport:
    with deployment(directory, args.redis_url, worker) as (url, headers, pids):
        run_round(url, headers, job_bodies(args.clients, seed=WARM_UP_SEED), args.clients)  # not timed
        rounds = []
        before = [_cpu_seconds(pid) for pid in pids]
        with PeakMemory(pids[0]) as memory:
            for repeat in range(args.repeats):
                rounds.append(run_round(url, headers, job_bodies(args.jobs, seed=repeat), args.clients))
        cpu = [(_cpu_seconds(pid) - b) / (args.jobs * args.repeats) for pid, b in zip(pids, before, strict=True)]
    middle = sorted(rounds, key=lambda r: r.jobs_per_s)[len(rounds) // 2]
    return ModeReport(
        name=name,
        jobs_per_s=middle.jobs_per_s,
        p50_s=percentile(middle.latencies, 50),
        p95_s=percentile(middle.latencies, 95),
        shared=statistics.mean(middle.shared),
        worker_cpu_s=cpu[0],
        api_cpu_s=cpu[1],
        peak_rss=memory.peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wait-ms", type=float, default=5.0, help="INTERP_BATCH_MAX_WAIT_MS with sharing on")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    print(f"{args.jobs} jobs (sae_encode, saliency, activations), {args.clients} clients, {MODEL}, "
          f"median of {args.repeats} rounds; CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="interp-throughput-") as tmp:
        on = run_mode(f"shared {args.wait_ms:g} ms", args, Worker("threads", args.wait_ms), Path(tmp))
        print(on.line(), flush=True)
        reports = [on]
        for name, worker in (("not shared", Worker("threads", 0.0)), ("one at a time", Worker("prefork", 0.0))):
            reports.append(run_mode(name, args, worker, Path(tmp)))
            print(reports[-1].line(), flush=True)
    for off in reports[1:]:
        print(f"shared / {off.name}: {on.jobs_per_s / off.jobs_per_s:.2f}x jobs/s, "
              f"p95 latency {off.p95_s / on.p95_s:.2f}x lower, peak RSS {on.peak_rss / off.peak_rss:.2f}x")


if __name__ == "__main__":
    main()
