"""Metrics, request ids and JSON logs over real HTTP, a real Redis and a prefork worker process.

The jobs run here are counted by hand (two patching jobs, one SAE encode, one steer that fails on its time limit,
one slow patching job cancelled while it runs and one cancelled while queued), and the exported samples must say
exactly that, on the API's ``/metrics`` and on the worker's own port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Deployment, free_port, make_deployment, serve_embedded
from workers.metrics import METRIC_TYPES

pytestmark = pytest.mark.integration

PROMPT = "When Mary and John went, John gave it to"
PATCHING = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": PROMPT,
            "corrupted_prompt": "When Mary and John went, Mary gave it to", "answer": " ", "wrong_answer": "M",
            "targets": ["resid_pre"]}
SAE = {"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "Features of this prompt", "sae": "res-1", "top_k": 3}
STEER = {"kind": "steer", "model": "tiny-gpt2", "prompt": "The cat", "sae": "res-1", "feature": 1,
         "coefficient": 2.0, "max_new_tokens": 2}
SLOW = {"kind": "patching", "model": "slow-gpt2", "clean_prompt": "a" * 160, "corrupted_prompt": "b" * 160,
        "answer": "a", "wrong_answer": "b", "targets": ["resid_pre", "attn_out", "mlp_out"]}
GIVEN_ID = "client-req.42:patching"
JOB_ID = re.compile(r"[0-9a-f]{32}")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, labels), and every family's type, from a ``/metrics`` text."""
    text = httpx.get(url, timeout=10).text
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample whose labels include ``labels`` (the HTTP metrics add more); ``None`` when there is none."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def assert_no_ids_in_labels(samples: Samples, *secrets: str) -> None:
    for (name, labels), _ in samples.items():
        for label, label_value in labels:
            assert not JOB_ID.search(label_value), (name, label, label_value)
            assert not any(secret in label_value for secret in secrets), (name, label, label_value)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Each non-empty line of a process's output, read as the JSON object it must be."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]


def submit(client: httpx.Client, body: dict[str, Any], *, wait: float = 60, **headers: str) -> httpx.Response:
    return client.post("/v1/jobs", json=body, params={"wait": wait}, headers=headers)


def wait_status(client: httpx.Client, job_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} never reached {statuses}")


@dataclass
class Observed:
    deployment: Deployment
    api_metrics: str
    worker_metrics: str
    worker_log: Path
    api_log: Path
    jobs: dict[str, dict[str, Any]]
    headers: dict[str, str]

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no label and no log line may hold: the webhook secret, the API key, its hash pepper."""
        env = self.deployment.env
        return env["INTERP_WEBHOOK_SECRET"], self.deployment.api_key, env["INTERP_KEY_PEPPER"]


@pytest.fixture(scope="module")
def observed(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """A deployment whose worker serves metrics, and the jobs counted in this module's docstring, run once."""
    tmp = tmp_path_factory.mktemp("metrics")
    deployment = make_deployment(redis_url, tmp, INTERP_STEER_SOFT_LIMIT_S="0")
    port = free_port()
    worker_log, api_log = tmp / "worker.log", tmp / "api.log"
    with worker_log.open("wb") as worker_out, api_log.open("wb") as api_out:
        try:
            deployment.start_worker(env={"INTERP_WORKER_METRICS_PORT": str(port)}, output=worker_out,
                                    loglevel="INFO")
            api = deployment.start_api(output=api_out)
            yield run_jobs(deployment, api, f"http://127.0.0.1:{port}/metrics", worker_log, api_log)
        finally:
            deployment.stop()


def run_jobs(deployment: Deployment, api: str, worker_metrics: str, worker_log: Path, api_log: Path) -> Observed:
    jobs: dict[str, dict[str, Any]] = {}
    headers: dict[str, str] = {}
    with deployment.http(api, timeout=60) as client:  # with the tests' API key
        given = submit(client, PATCHING, **{"X-Request-ID": GIVEN_ID})
        jobs["given"], headers["given"] = given.json(), given.headers["X-Request-ID"]
        generated = submit(client, PATCHING)  # the same prompts: read from the cache
        jobs["generated"], headers["generated"] = generated.json(), generated.headers["X-Request-ID"]
        insane = submit(client, SAE, **{"X-Request-ID": "no spaces or quotes\" allowed"})
        jobs["insane"], headers["insane"] = insane.json(), insane.headers["X-Request-ID"]
        jobs["failed"] = submit(client, STEER).json()
        running = submit(client, SLOW, wait=0).json()
        wait_status(client, running["id"], {"running"})
        queued = submit(client, SLOW, wait=0).json()  # the worker's one process is busy: it waits in the broker
        jobs["queued_depth"] = {"value": _depth(api, deployment.group("slow-gpt2"))}
        jobs["queued"] = client.delete(f"/v1/jobs/{queued['id']}").json()
        client.delete(f"/v1/jobs/{running['id']}")
        jobs["running"] = wait_status(client, running["id"], {"cancelled"})
        missing = client.get("/v1/nothing-here")
        jobs["missing"] = {"status": missing.status_code, "header": missing.headers.get("X-Request-ID")}
    _wait_for_worker(worker_metrics, finished=5)
    # Once the worker has dequeued the cancelled job too, its queue is empty again.
    deadline = time.monotonic() + 30
    while _depth(api, deployment.group("slow-gpt2")) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    return Observed(deployment, f"{api}/metrics", worker_metrics, worker_log, api_log, jobs, headers)


def _depth(api: str, group: str) -> float | None:
    samples, _ = scrape(f"{api}/metrics")
    return value(samples, "interp_queue_depth", queue=f"interp.models.{group}")


def _wait_for_worker(url: str, *, finished: int, timeout: float = 30) -> None:
    """The job's record is written before its counters: the client can see the end a moment earlier."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples, _ = scrape(url)
        if sum(v for (n, _), v in samples.items() if n == "interp_jobs_finished_total") >= finished:
            return
        time.sleep(0.1)
    raise TimeoutError("the worker's metrics never counted the jobs")


def test_jobs_ended_as_planned(observed: Observed) -> None:
    jobs = observed.jobs
    assert [jobs[k]["status"] for k in ("given", "generated", "insane")] == ["succeeded"] * 3
    assert jobs["generated"]["stats"]["cache_hits"] > 0
    assert jobs["failed"]["status"] == "failed" and jobs["failed"]["error"]["code"] == "time_limit"
    assert jobs["running"]["status"] == jobs["queued"]["status"] == "cancelled"
    assert jobs["running"]["started_at"] is not None and jobs["queued"]["started_at"] is None


def test_worker_metrics_count_the_jobs(observed: Observed) -> None:
    samples, types = scrape(observed.worker_metrics)
    tiny, slow = {"model": "tiny-gpt2"}, {"model": "slow-gpt2"}
    finished = {(dict(ls)["kind"], dict(ls)["model"], dict(ls)["status"]): v
                for (n, ls), v in samples.items() if n == "interp_jobs_finished_total"}
    assert finished == {("patching", "tiny-gpt2", "succeeded"): 2, ("sae_encode", "tiny-gpt2", "succeeded"): 1,
                        ("steer", "tiny-gpt2", "failed"): 1, ("patching", "slow-gpt2", "cancelled"): 1}
    errors = {frozenset(ls): v for (n, ls), v in samples.items() if n == "interp_job_errors_total"}
    assert errors == {frozenset({"kind": "steer", "model": "tiny-gpt2", "code": "time_limit"}.items()): 1}
    for kind, model, count in (("patching", "tiny-gpt2", 2), ("sae_encode", "tiny-gpt2", 1),
                               ("steer", "tiny-gpt2", 1), ("patching", "slow-gpt2", 1)):
        assert value(samples, "interp_job_duration_seconds_count", kind=kind, model=model) == count
        assert value(samples, "interp_job_queue_wait_seconds_count", kind=kind, model=model) == count
        assert value(samples, "interp_job_duration_seconds_bucket", kind=kind, model=model, le="+Inf") == count
    # The cancelled slow job ran for a while; nothing took longer than its time limit.
    assert 0 < value(samples, "interp_job_duration_seconds_sum", kind="patching", **slow) < 660  # type: ignore[operator]
    assert value(samples, "interp_model_load_seconds_count", **tiny) == 1  # the one child loaded each model once
    assert value(samples, "interp_model_load_seconds_count", **slow) == 1
    assert value(samples, "interp_models_loaded") == 2
    assert types["interp_models_loaded"] == "gauge" and types["interp_job_duration_seconds"] == "histogram"
    # The test registry's models run on CPU: the worker never starts CUDA, so it has no GPU memory to report.
    assert not {n for (n, _) in samples if n.startswith("interp_gpu_")}
    assert value(samples, "interp_jobs_submitted_total", kind="patching", **tiny) is None  # the API's, not here
    assert_no_ids_in_labels(samples, GIVEN_ID, *observed.secrets)


def test_api_metrics_count_submissions_queues_cache_and_requests(observed: Observed) -> None:
    samples, types = scrape(observed.api_metrics)
    submitted = {(dict(ls)["kind"], dict(ls)["model"]): v
                 for (n, ls), v in samples.items() if n == "interp_jobs_submitted_total"}
    assert submitted == {("patching", "tiny-gpt2"): 2, ("sae_encode", "tiny-gpt2"): 1, ("steer", "tiny-gpt2"): 1,
                         ("patching", "slow-gpt2"): 2}
    dep = observed.deployment
    queues = {dict(ls)["queue"]: v for (n, ls), v in samples.items() if n == "interp_queue_depth"}
    assert queues == {f"interp.models.{dep.group('tiny-gpt2')}": 0, f"interp.models.{dep.group('slow-gpt2')}": 0,
                      dep.env["INTERP_WEBHOOK_QUEUE"]: 0}
    assert observed.jobs["queued_depth"]["value"] == 1  # while the worker was busy with the first slow job
    stats = observed.jobs["generated"]["stats"]
    assert value(samples, "interp_activation_cache_hits_total") >= stats["cache_hits"] > 0  # type: ignore[operator]
    assert value(samples, "interp_activation_cache_misses_total") > 0  # type: ignore[operator]
    assert value(samples, "interp_activation_cache_bytes_written_total") > 0  # type: ignore[operator]
    assert value(samples, "interp_activation_cache_size_bytes") > 0  # type: ignore[operator]
    posted = value(samples, "interp_requests_total", method="POST", path="/v1/jobs", status_code="202")
    ended = value(samples, "interp_requests_total", method="POST", path="/v1/jobs", status_code="200")
    assert (posted or 0) + (ended or 0) == 6
    paths = {dict(ls)["path"] for (n, ls), _ in samples.items() if n == "interp_requests_total"}
    assert paths >= {"/v1/jobs", "/v1/jobs/{job_id}"}  # route templates: no job id, no unrouted path
    assert types["interp_queue_depth"] == "gauge" and types["interp_request_duration_seconds"] == "histogram"
    assert not {n for (n, _) in samples if n.startswith("interp_gpu_")}  # the API never runs torch
    assert_no_ids_in_labels(samples, GIVEN_ID, *observed.secrets)


def test_every_named_metric_is_exported(observed: Observed) -> None:
    """Between them the two ports export every family the code defines (GPU memory needs a model on CUDA)."""
    _, api_types = scrape(observed.api_metrics)
    _, worker_types = scrape(observed.worker_metrics)
    exported = {**api_types, **worker_types}
    wanted = {name: kind for name, kind in METRIC_TYPES.items() if not name.startswith("interp_gpu_")}
    assert {name: exported.get(name) for name in wanted} == wanted


def test_request_ids_come_back_and_are_stored(observed: Observed) -> None:
    jobs, headers = observed.jobs, observed.headers
    assert headers["given"] == jobs["given"]["request_id"] == GIVEN_ID
    assert JOB_ID.fullmatch(headers["generated"]) and jobs["generated"]["request_id"] == headers["generated"]
    assert JOB_ID.fullmatch(headers["insane"]) and jobs["insane"]["request_id"] == headers["insane"]
    assert len({headers["given"], headers["generated"], headers["insane"]}) == 3
    assert jobs["missing"]["status"] == 404 and JOB_ID.fullmatch(jobs["missing"]["header"])
    with observed.deployment.http(timeout=10) as client:
        again = client.get(f"/v1/jobs/{jobs['given']['id']}", headers={"X-Request-ID": "reading-it"})
        assert again.headers["X-Request-ID"] == "reading-it"
        assert again.json()["request_id"] == GIVEN_ID  # the submission's id, not the reader's
        too_long = client.get("/healthz", headers={"X-Request-ID": "a" * 129})
        assert JOB_ID.fullmatch(too_long.headers["X-Request-ID"])
        longest = client.get("/healthz", headers={"X-Request-ID": "a" * 128})
        assert longest.headers["X-Request-ID"] == "a" * 128


def test_worker_logs_are_json_with_the_job_context(observed: Observed) -> None:
    lines = json_lines(observed.worker_log)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    given = observed.jobs["given"]
    mine = [line for line in lines if line.get("job_id") == given["id"]]
    assert {line["message"] for line in mine} >= {"job started", "job finished"}
    for line in mine:
        assert (line["request_id"], line["kind"], line["model"]) == (GIVEN_ID, "patching", "tiny-gpt2"), line
    assert [line["status"] for line in mine if line["message"] == "job finished"] == ["succeeded"]
    failed = [line for line in lines if line.get("job_id") == observed.jobs["failed"]["id"]
              and line["message"] == "job finished"]
    assert [(line["level"], line["status"], line["code"]) for line in failed] == [("WARNING", "failed", "time_limit")]
    # Every job line carries the four fields; no line has a prompt, a key or a secret.
    for line in lines:
        if "job_id" in line and line["logger"].startswith("workers."):
            assert {"request_id", "kind", "model"} <= set(line), line
    text = observed.worker_log.read_text(encoding="utf-8")
    assert PROMPT not in text and not any(secret in text for secret in observed.secrets)
    assert any(line["message"] == "model loaded" and line["model"] == "tiny-gpt2" for line in lines)


def test_api_logs_are_json_and_name_each_submission(observed: Observed) -> None:
    lines = json_lines(observed.api_log)
    submitted = {line["job_id"]: line for line in lines if line["message"] == "job submitted"}
    given = submitted[observed.jobs["given"]["id"]]
    assert (given["request_id"], given["kind"], given["model"], given["level"]) == (
        GIVEN_ID, "patching", "tiny-gpt2", "INFO")
    assert submitted[observed.jobs["generated"]["id"]]["request_id"] == observed.headers["generated"]
    text = observed.api_log.read_text(encoding="utf-8")
    assert PROMPT not in text and not any(secret in text for secret in observed.secrets)


def test_embedded_metrics_has_the_job_metrics_too(tmp_path: Path) -> None:
    with serve_embedded(tmp_path) as url, httpx.Client(base_url=url, timeout=60) as client:
        job = submit(client, PATCHING, **{"X-Request-ID": GIVEN_ID})
        assert job.headers["X-Request-ID"] == GIVEN_ID and job.json()["request_id"] == GIVEN_ID
        assert job.json()["status"] == "succeeded"
        deadline = time.monotonic() + 10
        while True:
            samples, types = scrape(f"{url}/metrics")
            key = {"kind": "patching", "model": "tiny-gpt2"}
            if value(samples, "interp_jobs_finished_total", status="succeeded", **key) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert value(samples, "interp_jobs_finished_total", status="succeeded", **key) == 1
    assert value(samples, "interp_jobs_submitted_total", **key) == 1
    assert value(samples, "interp_job_duration_seconds_count", **key) == 1
    assert value(samples, "interp_job_queue_wait_seconds_count", **key) == 1
    assert value(samples, "interp_model_load_seconds_count", model="tiny-gpt2") == 1
    assert value(samples, "interp_models_loaded") == 2  # embedded mode loads every model before it listens
    queues = {dict(ls)["queue"]: v for (n, ls), v in samples.items() if n == "interp_queue_depth"}
    assert queues == {"interp.models.tiny-gpt2": 0, "interp.models.slow-gpt2": 0, "interp.webhooks": 0}
    assert value(samples, "interp_activation_cache_misses_total") > 0  # type: ignore[operator]
    assert types["interp_requests"] == "counter"
    assert_no_ids_in_labels(samples, GIVEN_ID)


def test_a_killed_child_stops_counting_as_live_and_its_counts_stay(observed: Observed) -> None:
    """Last here: SIGKILL the worker's pool process (as a hard time limit does); the pool starts another, which
    loads both models again. Its live gauge replaces the dead one's instead of adding to it."""
    worker = observed.deployment.procs[0]
    before, _ = scrape(observed.worker_metrics)
    [child] = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    os.kill(int(child), signal.SIGKILL)
    deadline = time.monotonic() + 90
    while True:
        samples, _ = scrape(observed.worker_metrics)
        loads = [value(samples, "interp_model_load_seconds_count", model=m) for m in ("tiny-gpt2", "slow-gpt2")]
        if (loads == [2, 2] and value(samples, "interp_models_loaded") == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert loads == [2, 2]  # the dead child's loads still count
    assert value(samples, "interp_models_loaded") == 2  # and its two models no longer do
    finished = {k: v for k, v in samples.items() if k[0] == "interp_jobs_finished_total"}
    assert finished == {k: v for k, v in before.items() if k[0] == "interp_jobs_finished_total"}
