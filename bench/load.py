"""Load: many concurrent clients submitting small jobs and polling them, against the service on loopback.

    python -m bench load [--mode embedded|production|both] [--duration 30] [--clients 16] [--deadline 60]
                         [--worker-concurrency 2] [--threads N] [--redis-url URL] [--json PATH]

Each client (an ``httpx.AsyncClient`` of its own, keep-alive) submits jobs from a mix of small kinds on the tiny
model (``patching``, ``attribution`` with saliency, ``activations``, ``sae_encode``, ``head_scores``, in turn),
each with a prompt of its own (so every job runs a forward), and follows each job to its end: even-numbered
clients long-poll (``GET /v1/jobs/{id}?wait=10``), odd ones poll every :data:`POLL_INTERVAL_S`. After
``--duration`` seconds no new job is submitted; then a sweep reads every accepted (200 or 202) job back, waiting up
to ``--deadline`` seconds in all, and a job that is not ``succeeded``, ``failed`` or ``cancelled`` by then (or whose
record is gone) counts as lost. The exit status is 1 when a job was lost or an answer was a 5xx.

Printed per mode: jobs/s (jobs the clients saw end) and requests/s over the load phase; p50/p95/p99 latency of
submissions, of polls and of long-polls, and, from the job records, of each job's wait in the queue and its run;
every non-2xx answer by route and status (transport errors by type); the accepted jobs' final statuses, the codes
of any that failed, and the lost ones. The servers are started here on a free loopback port and stopped after:

- ``embedded``: ``interp serve`` (API and worker in one process, in-memory broker and store, auth off);
- ``production``: ``interp api`` and ``interp worker`` (prefork, ``--worker-concurrency`` children) sharing the
  Redis at ``--redis-url`` under a fresh ``INTERP_KEY_PREFIX`` and model queue, API keys required (one made with
  :class:`service.keys.RedisKeyStore` under a fresh ``INTERP_KEY_PEPPER``); its Redis keys are deleted after.

The load generator shares the machine with the servers: on a small machine its own CPU time is part of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from service.keys import RedisKeyStore
from workers.records import TERMINAL

ROOT = Path(__file__).resolve().parents[1]
INTERP = [sys.executable, "-m", "service"]
MODEL, SAE = "tiny-gpt2", "res-1"
REGISTRY = f"""
allow_downloads = false

[models.{MODEL}]
max_tokens = 128
weights_revision = "random-seed-0"
[models.{MODEL}.source]
kind = "random"
family = "gpt2"
seed = 0
config = {{ n_layer = 2, n_embd = 64, n_head = 4, n_positions = 128 }}

[[models.{MODEL}.saes]]
id = "{SAE}"
hook = "blocks.1.hook_resid_post"
path = "saes/{SAE}"
"""
POLL_INTERVAL_S = 0.05
LONG_POLL_S = 10.0
START_TIMEOUT_S = 180.0
KINDS = ("patching", "attribution", "activations", "sae_encode", "head_scores")


def job_body(kind: str, n: int) -> dict[str, Any]:
    """A small job of ``kind`` whose prompt is its own (``n``), so no two jobs share cached activations."""
    prompt = f"The cat sat on the mat {n}"
    bodies: dict[str, dict[str, Any]] = {
        "patching": {"clean_prompt": f"When Mary and John went, John gave {n}",
                     "corrupted_prompt": f"When Mary and John went, Mary gave {n}",
                     "answer": " ", "wrong_answer": "M", "targets": ["resid_pre"]},
        "attribution": {"prompt": prompt, "target": {"token": "m"}, "method": "saliency"},
        "activations": {"prompts": [prompt], "hooks": ["blocks.*.hook_resid_post"], "positions": [-1], "top_k": 3},
        "sae_encode": {"prompt": prompt, "sae": SAE, "top_k": 5},
        "head_scores": {"prompts": [f"abab {n}", f"xyxy {n}"], "error_measure": "abs"},
    }
    return {"kind": kind, "model": MODEL, **bodies[kind]}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``nan`` of nothing)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass
class Stats:
    """What the clients saw: latencies in seconds, answers by route and status, the jobs accepted."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"submit": [], "poll": [], "long_poll": []})
    answers: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, str] = field(default_factory=dict)
    """Job id → kind, for every submission answered 200 or 202."""
    ended: Counter[str] = field(default_factory=Counter)
    """Terminal statuses the clients saw during the load phase."""

    @property
    def requests(self) -> int:
        return sum(self.answers.values())


@dataclass
class Report:
    mode: str
    clients: int
    duration_s: float
    load_s: float
    requests: int
    jobs_accepted: int
    kinds: dict[str, int]
    """Accepted jobs by kind."""
    jobs_ended: int
    jobs_per_s: float
    requests_per_s: float
    latency_ms: dict[str, dict[str, float]]
    errors: dict[str, int]
    server_errors: int
    final: dict[str, int]
    failed: dict[str, int]
    """Error codes of the jobs that failed."""
    lost: list[str]

    def lines(self) -> list[str]:
        out = [f"{self.mode}: {self.clients} clients for {self.duration_s:.0f} s (load phase {self.load_s:.1f} s)",
               f"  throughput: {self.jobs_per_s:.1f} jobs/s ({self.jobs_ended} ended of {self.jobs_accepted} "
               f"accepted), {self.requests_per_s:.1f} requests/s ({self.requests} requests)",
               f"  accepted by kind: {self.kinds}"]
        for name, q in self.latency_ms.items():
            out.append(f"  {name:9s} n={q['n']:<6.0f} p50 {q['p50']:7.1f} ms  p95 {q['p95']:7.1f} ms  "
                       f"p99 {q['p99']:7.1f} ms")
        out.append(f"  errors: {self.errors or 'none'}; 5xx: {self.server_errors}")
        out.append(f"  sweep: {self.final}; failed by code {self.failed or 'none'}; lost {len(self.lost)}"
                   + (f" {self.lost[:10]}" if self.lost else ""))
        return out


async def _request(http: httpx.AsyncClient, stats: Stats, method: str, route: str, url: str,
                   **kwargs: Any) -> tuple[float, httpx.Response | None]:
    """One request: its latency, and its answer (``None`` after a transport error, counted by type)."""
    start = time.perf_counter()
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        stats.answers[f"{method} {route} {type(exc).__name__}"] += 1
        return time.perf_counter() - start, None
    stats.answers[f"{method} {route} {response.status_code}"] += 1
    return time.perf_counter() - start, response


async def submit(http: httpx.AsyncClient, stats: Stats, body: dict[str, Any]) -> str | None:
    seconds, response = await _request(http, stats, "POST", "/v1/jobs", "/v1/jobs", json=body)
    stats.latencies["submit"].append(seconds)
    if response is None or response.status_code not in (200, 202):
        if response is not None and response.status_code == 429:
            await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 1.0))
        return None
    job_id = str(response.json()["id"])
    stats.accepted[job_id] = body["kind"]
    return job_id


async def follow(
    http: httpx.AsyncClient, stats: Stats, job_id: str, *, long_poll: bool, until: float
) -> dict[str, Any] | None:
    """Poll or long-poll the job until it ends (its record), or ``None``: ``until`` passed or the job is gone."""
    params = {"wait": LONG_POLL_S} if long_poll else None
    name = "long_poll" if long_poll else "poll"
    while time.monotonic() < until:
        seconds, response = await _request(http, stats, "GET", "/v1/jobs/{id}", f"/v1/jobs/{job_id}", params=params)
        stats.latencies[name].append(seconds)
        if response is not None and response.status_code == 404:
            return None  # the record is gone: the job is lost
        if response is not None and response.status_code == 200:
            record: dict[str, Any] = response.json()
            if record["status"] in TERMINAL:
                stats.ended[record["status"]] += 1
                return record
            if long_poll:
                continue
        await asyncio.sleep(POLL_INTERVAL_S)
    return None


async def client(url: str, headers: dict[str, str], index: int, numbers: Iterator[int], stats: Stats,
                 stop_at: float, deadline_s: float) -> None:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=LONG_POLL_S + 30) as http:
        while time.monotonic() < stop_at:
            n = next(numbers)
            job_id = await submit(http, stats, job_body(KINDS[n % len(KINDS)], n))
            if job_id is not None:
                await follow(http, stats, job_id, long_poll=index % 2 == 0, until=time.monotonic() + deadline_s)


@dataclass
class Sweep:
    """Every accepted job read back: final statuses, failures' codes, lost ids, and where each job's time went."""

    final: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=lambda: {"queued": [], "running": []})
    """Per job, from its record: seconds from submission to start, and from start to end."""
    stats: Stats = field(default_factory=Stats)
    """The sweep's own requests, kept out of the load phase's throughput and latencies."""

    def add(self, job_id: str, record: dict[str, Any] | None) -> None:
        if record is None:
            self.final["lost"] += 1
            self.lost.append(job_id)
            return
        self.final[record["status"]] += 1
        if record["status"] == "failed":
            self.failed[str((record.get("error") or {}).get("code"))] += 1
        created, started, finished = (_seconds(record.get(k)) for k in ("created_at", "started_at", "finished_at"))
        if created is not None and started is not None and finished is not None:
            self.phases["queued"].append(started - created)
            self.phases["running"].append(finished - started)


def _seconds(stamp: str | None) -> float | None:
    return None if stamp is None else datetime.fromisoformat(stamp).timestamp()


async def sweep(url: str, headers: dict[str, str], stats: Stats, deadline_s: float) -> Sweep:
    """Read every accepted job back, waiting until each has ended or ``deadline_s`` has passed (lost)."""
    result = Sweep()
    until = time.monotonic() + deadline_s
    gate = asyncio.Semaphore(16)

    async def one(http: httpx.AsyncClient, job_id: str) -> None:
        async with gate:
            result.add(job_id, await follow(http, result.stats, job_id, long_poll=True, until=until))

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=LONG_POLL_S + 30) as http:
        await asyncio.gather(*(one(http, job_id) for job_id in stats.accepted))
    return result


async def run_load(mode: str, url: str, headers: dict[str, str], *, clients: int, duration_s: float,
                   deadline_s: float) -> Report:
    stats = Stats()
    numbers = itertools.count()
    start = time.monotonic()
    await asyncio.gather(*(client(url, headers, i, numbers, stats, start + duration_s, deadline_s)
                           for i in range(clients)))
    load_s = time.monotonic() - start
    swept = await sweep(url, headers, stats, deadline_s)
    return _report(mode, clients, duration_s, load_s, stats, swept)


def _quantiles_ms(values: list[float]) -> dict[str, float]:
    return {"n": len(values), **{f"p{p}": percentile(values, p) * 1e3 for p in (50, 95, 99)}}


def _report(mode: str, clients: int, duration_s: float, load_s: float, stats: Stats, swept: Sweep) -> Report:
    ended = sum(stats.ended.values())
    answers = stats.answers + swept.stats.answers  # errors and 5xx of the sweep count too
    errors = {key: n for key, n in answers.items() if not key.rsplit(" ", 1)[1].startswith("2")}
    server_errors = sum(n for key, n in answers.items() if key.rsplit(" ", 1)[1].startswith("5"))
    latency = {name: _quantiles_ms(v) for name, v in {**stats.latencies, **swept.phases}.items()}
    return Report(mode=mode, clients=clients, duration_s=duration_s, load_s=load_s, requests=stats.requests,
                  jobs_accepted=len(stats.accepted), kinds=dict(Counter(stats.accepted.values())),
                  jobs_ended=ended, jobs_per_s=ended / load_s, requests_per_s=stats.requests / load_s,
                  latency_ms=latency, errors=errors, server_errors=server_errors, final=dict(swept.final),
                  failed=dict(swept.failed), lost=swept.lost)


# --- The servers: started here on loopback, stopped after. ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_registry(directory: Path) -> Path:
    """The tiny model and a seeded random SAE on its last residual stream (SAELens format)."""
    import torch

    from workers.core.sae.formats import StandardSaeConfig, write_sae_dir

    cfg = StandardSaeConfig(d_in=64, d_sae=96, hook_name="blocks.1.hook_resid_post")
    generator = torch.Generator().manual_seed(3)
    tensors = {name: torch.randn(shape, generator=generator) * 0.3 for name, shape in cfg.tensor_shapes().items()}
    write_sae_dir(directory / "saes" / SAE, cfg, tensors)
    path = directory / "registry.toml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


def _base_env(directory: Path, threads: int | None) -> dict[str, str]:
    drop = ("REDIS_URL", "BROKER_URL", "INTERP_AUTH", "INTERP_KEY_PREFIX", "INTERP_MODEL_GROUPS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return {**env, "INTERP_REGISTRY": str(write_registry(directory)), "INTERP_CACHE_DIR": str(directory / "models"),
            "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def start_server(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*INTERP, *args], env=env, cwd=ROOT, start_new_session=True, stdout=out,
                                stderr=subprocess.STDOUT)


def stop_servers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_healthy(url: str, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError(f"the service exited while starting; its log: {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the service did not become ready in {START_TIMEOUT_S:.0f} s; its log: {log}")


@dataclass(frozen=True)
class Servers:
    """How the servers run: production's Redis and worker children, and torch's threads per process."""

    redis_url: str = "redis://127.0.0.1:6379/14"
    worker_concurrency: int = 2
    threads: int | None = None
    """``OMP_NUM_THREADS`` of the server processes; ``None`` leaves torch's default (one per core)."""


@contextmanager
def embedded(directory: Path, servers: Servers) -> Iterator[tuple[str, dict[str, str]]]:
    """``interp serve`` with no broker: its URL and the (empty) headers a client sends."""
    port, log = free_port(), directory / "serve.log"
    env = _base_env(directory, servers.threads)
    procs = [start_server(["serve", "--host", "127.0.0.1", "--port", str(port)], env, log)]
    try:
        wait_healthy(f"http://127.0.0.1:{port}", procs, log)
        yield f"http://127.0.0.1:{port}", {}
    finally:
        stop_servers(procs)


@contextmanager
def production(directory: Path, servers: Servers) -> Iterator[tuple[str, dict[str, str]]]:
    """``interp worker`` and ``interp api`` on Redis under a fresh prefix: the API's URL and a key's header."""
    prefix = f"load-{uuid.uuid4().hex[:10]}:"
    group = f"{MODEL}-{prefix[:-1]}"
    pepper = secrets.token_urlsafe(32)
    env = {**_base_env(directory, servers.threads), "REDIS_URL": servers.redis_url, "INTERP_KEY_PREFIX": prefix,
           "INTERP_KEY_PEPPER": pepper, "INTERP_MODEL_GROUPS": f"{MODEL}={group}",
           "INTERP_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()}
    store = redis.Redis.from_url(servers.redis_url)
    key = RedisKeyStore(store, prefix=prefix, pepper=pepper.encode()).create("load").key
    port, log = free_port(), directory / "production.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_server(["worker", "--queues", f"interp.models.{group}", "--pool", "prefork", "--concurrency",
                             str(servers.worker_concurrency), "--loglevel", "WARNING"], env, log))
        procs.append(start_server(["api", "--host", "127.0.0.1", "--port", str(port)], env, log))
        _wait_for_card(store, prefix, procs, log)
        wait_healthy(f"http://127.0.0.1:{port}", procs, log)
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    finally:
        stop_servers(procs)
        # The records, keys and cards under the prefix; the queue and kombu's bindings of it name the group.
        for pattern in (f"{prefix}*", f"*{group}*"):
            for name in store.scan_iter(pattern):
                store.delete(name)


def _wait_for_card(store: redis.Redis, prefix: str, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    """Until the worker has loaded the model and published its card (before it, the API accepts jobs unchecked)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not store.exists(f"{prefix}meta:card:{MODEL}"):
        if time.monotonic() > deadline or any(proc.poll() is not None for proc in procs):
            raise RuntimeError(f"the worker did not publish {MODEL}'s card; its log: {log}")
        time.sleep(0.1)


def run_mode(mode: str, *, clients: int, duration_s: float, deadline_s: float, servers: Servers) -> Report:
    """Start the servers of ``mode``, load them, stop them; the figures."""
    with tempfile.TemporaryDirectory(prefix=f"interp-load-{mode}-") as tmp:
        start = embedded if mode == "embedded" else production
        with start(Path(tmp), servers) as (url, headers):
            return asyncio.run(run_load(mode, url, headers, clients=clients, duration_s=duration_s,
                                        deadline_s=deadline_s))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench load", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("embedded", "production", "both"), default="both")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of submissions (default 30)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds a job may take to end before it "
                        "counts as lost, and the final sweep's limit (default 60)")
    parser.add_argument("--redis-url", default=Servers.redis_url, help="production mode's Redis")
    parser.add_argument("--worker-concurrency", type=int, default=Servers.worker_concurrency,
                        help="production worker's prefork children")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the server processes "
                        "(default: unset, torch's own choice of one per core)")
    parser.add_argument("--json", type=Path, default=None, help="also write the reports here")
    args = parser.parse_args()
    servers = Servers(redis_url=args.redis_url, worker_concurrency=args.worker_concurrency, threads=args.threads)
    print(f"CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; {servers}")
    reports = []
    for mode in ("embedded", "production") if args.mode == "both" else (args.mode,):
        report = run_mode(mode, clients=args.clients, duration_s=args.duration, deadline_s=args.deadline,
                          servers=servers)
        print("\n".join(report.lines()), flush=True)
        reports.append(report)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=2), encoding="utf-8")
    if any(r.lost or r.server_errors for r in reports):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
