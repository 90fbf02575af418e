"""Jobs end to end: HTTP → Redis → a Celery worker process → the core, and back; results equal the core's.

Expected values are core results computed here from core requests written by hand (not through the specs'
``to_request``), compared with the served JSON read into the typed result, field by core field
(:func:`tests.carried.assert_carried`): a field the wire drops, or one the worker computes differently, fails.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.carried import assert_carried
from tests.integration.conftest import WEBHOOK_SECRET, Deployment, write_registry
from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.patching import PatchingRequest, run_patching
from workers.core.registry import Registry
from workers.core.sae import SaeEncodeRequest, encode_sae, load_sae
from workers.core.steering import SteerRequest, steer
from workers.kinds.attribution import AttributionResult
from workers.kinds.base import ResultBase
from workers.kinds.patching import PatchingResult
from workers.kinds.sae_encode import SaeEncodeResult
from workers.kinds.steer import SteerResult

pytestmark = pytest.mark.integration

TOL = 1e-5  # the same float32 model and inputs in two processes; cached activations round-trip exactly

PATCHING = {
    "kind": "patching",
    "model": "tiny-gpt2",
    "clean_prompt": "When Mary and John went, John gave it to",
    "corrupted_prompt": "When Mary and John went, Mary gave it to",
    "answer": " ",
    "wrong_answer": "M",
    "targets": ["resid_pre", "attn_out", "head_out"],
}
SLOW = {
    "kind": "patching",
    "model": "slow-gpt2",
    "clean_prompt": "a" * 160,
    "corrupted_prompt": "b" * 160,
    "answer": "a",
    "wrong_answer": "b",
    "targets": ["resid_pre", "attn_out", "mlp_out"],
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry.from_toml(write_registry(tmp_path_factory.mktemp("reg")))


@pytest.fixture(scope="module")
def tiny(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> HookedModel:
    """The test registry's tiny-gpt2 built in this process, for running the core directly."""
    entry = registry.get("tiny-gpt2")
    model, tokenizer = load_model(entry, cache_dir=tmp_path_factory.mktemp("models"))
    return HookedModel(model, tokenizer, model_id=entry.id, max_tokens=entry.max_tokens)


def submit(client: httpx.Client, body: dict[str, Any], *, wait: float | None = 60, **headers: str) -> httpx.Response:
    params = {"wait": wait} if wait is not None else {}
    return client.post("/v1/jobs", json=body, params=params, headers=headers)


def assert_served(served: dict[str, Any], result: type[ResultBase], core: Any) -> None:
    """The served JSON has exactly the result model's keys and carries every field of the core result."""
    assert set(served) == set(result.model_fields)
    assert served["schema_version"] == 1
    assert_carried(result.model_validate(served), core, atol=TOL)


def wait_status(client: httpx.Client, job_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} never reached {statuses}")


def test_models_and_tokenize(client: httpx.Client) -> None:
    info = client.get("/v1/models/tiny-gpt2").json()
    assert info["ready"] is True
    assert (info["n_layers"], info["d_model"], info["n_heads"], info["d_vocab"]) == (2, 64, 4, 259)
    assert "blocks.1.attn.hook_z" in info["hook_names"]
    listed = client.get("/v1/models").json()["items"]
    assert [m["id"] for m in listed] == ["tiny-gpt2", "slow-gpt2"]
    tokens = client.post("/v1/tokenize", json={"model": "tiny-gpt2", "prompt": "Hi!"}).json()
    assert tokens == {"model": "tiny-gpt2", "token_ids": [256, 72, 105, 33], "tokens": ["<bos>", "H", "i", "!"],
                      "n_tokens": 4}


def test_patching_matches_core_then_hits_cache(client: httpx.Client, tiny: HookedModel) -> None:
    first = submit(client, PATCHING)
    assert first.status_code == 200, first.text
    job = first.json()
    assert job["status"] == "succeeded" and job["progress"] == 1.0
    assert first.headers["location"] == f"/v1/jobs/{job['id']}"
    request = PatchingRequest(
        PATCHING["clean_prompt"],
        PATCHING["corrupted_prompt"],
        answer=" ",
        wrong_answer="M",
        metric="logit_diff",
        targets=("resid_pre", "attn_out", "head_out"),
        method="exact",
        direction="denoise",
    )
    want = run_patching(tiny, request)
    assert_served(job["result"], PatchingResult, want)
    assert job["result"]["tokens"][:3] == ["<bos>", "W", "h"]
    assert job["stats"]["forwards"] >= 1 and job["stats"]["cache_misses"] > 0
    assert job["started_at"] >= job["created_at"] and job["finished_at"] >= job["started_at"]

    second = submit(client, PATCHING).json()
    assert second["id"] != job["id"]
    assert second["stats"]["forwards"] == 0 and second["stats"]["cache_misses"] == 0
    assert second["stats"]["cache_hits"] == job["stats"]["cache_misses"]
    assert_served(second["result"], PatchingResult, want)
    metrics = client.get("/metrics").text
    assert "interp_activation_cache_hits" in metrics
    assert 'interp_jobs_submitted_total{kind="patching",model="tiny-gpt2"}' in metrics


def test_attribution_matches_core(client: httpx.Client, tiny: HookedModel) -> None:
    body = {"kind": "attribution", "model": "tiny-gpt2", "prompt": "The cat sat on the",
            "target": {"contrast": [" ", "m"]}, "method": "integrated_gradients", "n_steps": 16}
    job = submit(client, body).json()
    assert job["status"] == "succeeded", job
    options = AttributionOptions(n_steps=16, step_rule="gausslegendre", baseline="pad")  # the documented defaults
    request = AttributionRequest(body["prompt"], TargetSpec(contrast=(" ", "m")), "integrated_gradients", options)
    want = run_attribution(tiny, request)
    assert_served(job["result"], AttributionResult, want)
    assert job["result"]["options"]["baseline"] == "pad"


def test_sae_encode_matches_core_and_second_run_reads_the_cache(
    client: httpx.Client, tiny: HookedModel, registry: Registry
) -> None:
    body = {"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "Features of this prompt", "sae": "res-1",
            "top_k": 5}
    first = submit(client, body).json()
    assert first["status"] == "succeeded", first
    sae = load_sae(registry.get("tiny-gpt2").get_sae("res-1"), model_facts=tiny.facts)
    request = SaeEncodeRequest(prompts=(body["prompt"],), top_k=5, include_loss=False, exclude_bos=True)
    want = encode_sae(tiny, sae, request)
    assert_served(first["result"], SaeEncodeResult, want)
    assert first["stats"]["forwards"] == 1
    second = submit(client, body).json()
    assert second["stats"]["forwards"] == 0 and second["stats"]["cache_misses"] == 0
    assert second["stats"]["cache_hits"] == 1
    assert_served(second["result"], SaeEncodeResult, want)
    batch = submit(client, {**body, "prompt": None, "prompts": ["Features of this prompt", "and another"]}).json()
    assert [p["prompt"] for p in batch["result"]["prompts"]] == ["Features of this prompt", "and another"]
    assert batch["stats"]["cache_hits"] == 1 and batch["stats"]["forwards"] == 1


def test_steer_matches_core(client: httpx.Client, tiny: HookedModel, registry: Registry) -> None:
    body = {"kind": "steer", "model": "tiny-gpt2", "prompt": "Once upon", "sae": "res-1", "feature": 7,
            "coefficient": 8.0, "max_new_tokens": 6}
    job = submit(client, body).json()
    assert job["status"] == "succeeded", job
    sae = load_sae(registry.get("tiny-gpt2").get_sae("res-1"), model_facts=tiny.facts)
    request = SteerRequest(
        prompt="Once upon", feature=7, coefficient=8.0, clamp=None, max_new_tokens=6, temperature=0.0, seed=0
    )
    want = steer(tiny, sae, request)
    assert_served(job["result"], SteerResult, want)


def test_location_long_poll_and_listing(client: httpx.Client) -> None:
    accepted = submit(client, {**PATCHING, "targets": ["resid_post"]}, wait=None)
    assert accepted.status_code == 202
    location = accepted.headers["location"]
    done = client.get(location, params={"wait": 60}).json()
    assert done["status"] == "succeeded"
    page = client.get("/v1/jobs", params={"limit": 2}).json()
    assert page["limit"] == 2 and page["total"] >= 3
    assert page["items"][0]["id"] == accepted.json()["id"]  # newest first
    older = client.get("/v1/jobs", params={"limit": 2, "offset": 2}).json()["items"]
    assert {j["id"] for j in older}.isdisjoint({j["id"] for j in page["items"]})


def test_idempotency_key_returns_the_first_job(client: httpx.Client) -> None:
    body = {**PATCHING, "targets": ["mlp_out"]}
    first = submit(client, body, wait=None, **{"Idempotency-Key": "abc-123"}).json()
    again = submit(client, body, wait=None, **{"Idempotency-Key": "abc-123"}).json()
    other = submit(client, body, wait=None, **{"Idempotency-Key": "abc-124"}).json()
    assert again["id"] == first["id"]
    assert other["id"] != first["id"]
    reused = submit(client, {**body, "targets": ["resid_pre"]}, wait=None, **{"Idempotency-Key": "abc-123"})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


def test_cancel_queued_and_running(client: httpx.Client) -> None:
    running = submit(client, SLOW, wait=None).json()
    queued = submit(client, SLOW, wait=None).json()
    wait_status(client, running["id"], {"running"})
    behind = client.get(f"/v1/jobs/{queued['id']}").json()
    assert behind["status"] == "queued" and behind["queue_position"] == 0
    cancelled = client.delete(f"/v1/jobs/{queued['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{running['id']}").status_code == 202
    final = wait_status(client, running["id"], {"cancelled", "succeeded", "failed"})
    assert final["status"] == "cancelled" and final["progress"] < 1.0 and final["result"] is None


def test_sse_events_arrive_in_order(client: httpx.Client) -> None:
    job = submit(client, {**SLOW, "clean_prompt": "c" * 160, "corrupted_prompt": "d" * 160}, wait=None).json()
    events = []
    with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line.removeprefix("data:").strip()))
    assert [e["seq"] for e in events] == list(range(len(events)))
    statuses = [e["status"] for e in events]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert len(events) >= 4  # queued, running, some progress, succeeded


class _Receiver(BaseHTTPRequestHandler):
    calls: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012
    fail_first = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append((dict(self.headers), body))
        status = 500 if type(self).fail_first and len(type(self).calls) == 1 else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.calls = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_webhook_signed_and_retried(client: httpx.Client, receiver: str) -> None:
    job = submit(client, {**PATCHING, "targets": ["resid_mid"], "callback_url": receiver}).json()
    deadline = time.monotonic() + 30
    while len(_Receiver.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_Receiver.calls) == 2  # the first delivery got a 500 and was retried
    (first, _), (headers, body) = _Receiver.calls
    assert first["webhook-id"] == headers["webhook-id"] == job["id"]  # one id per delivery: retries de-duplicate
    payload = Webhook(WEBHOOK_SECRET).verify(body, headers)  # Standard Webhooks: id, timestamp and signature
    assert payload["id"] == job["id"] and payload["status"] == "succeeded"
    assert payload["result"]["targets"]["resid_mid"]["axes"] == ["layer", "position"]
    while client.get(f"/v1/jobs/{job['id']}").json()["webhook"]["status"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    webhook = client.get(f"/v1/jobs/{job['id']}").json()["webhook"]
    assert webhook == {"attempts": 2, "status": "delivered", "last_status_code": 200, "last_error": None}


MALFORMED: list[tuple[Any, int, str, str | None]] = [
    ({**PATCHING, "bogus": 1}, 400, "invalid_request", "bogus"),
    ({**PATCHING, "model": "nope"}, 404, "unknown_model", "model"),
    ({**PATCHING, "targets": ["resid_sideways"]}, 400, "invalid_request", "targets.0"),
    ({**PATCHING, "targets": []}, 400, "invalid_request", "targets"),
    ({**PATCHING, "clean_prompt": ""}, 400, "invalid_request", "clean_prompt"),
    ({**PATCHING, "answer": "two tokens"}, 400, "not_single_token", "answer"),
    ({**PATCHING, "corrupted_prompt": "short"}, 400, "length_mismatch", "corrupted_prompt"),
    ({**PATCHING, "clean_prompt": "x" * 200, "corrupted_prompt": "y" * 200}, 413, "prompt_too_long", "clean_prompt"),
    ({k: v for k, v in PATCHING.items() if k != "wrong_answer"}, 400, "invalid_request", None),
    ({**PATCHING, "kind": "telepathy"}, 400, "invalid_request", "kind"),
    ({"model": "tiny-gpt2"}, 400, "invalid_request", None),
    ({**PATCHING, "callback_url": "not a url"}, 400, "invalid_request", "callback_url"),
    ({"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "hi", "sae": "none", "top_k": 5}, 404, "unknown_sae",
     "sae"),
    ({"kind": "attribution", "model": "tiny-gpt2", "prompt": "hi", "target": {"token": "x"}, "n_steps": 0}, 400,
     "invalid_request", "n_steps"),
    ({"kind": "attribution", "model": "slow-gpt2", "prompt": "z" * 500, "target": {"token": "x"}, "n_steps": 512},
     422, "job_too_large", "prompt"),
    ([1, 2, 3], 400, "invalid_request", None),
    ("a string", 400, "invalid_request", None),
    (None, 400, "invalid_request", None),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), MALFORMED)
def test_malformed_requests_get_the_right_4xx(
    client: httpx.Client, body: Any, status: int, code: str, field: str | None
) -> None:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error["field"] == field
    if code == "job_too_large":
        assert "bytes" in error["message"] and any(ch.isdigit() for ch in error["message"])


def test_raw_bodies_and_unknown_ids(client: httpx.Client) -> None:
    assert client.post("/v1/jobs", content=b"{not json").status_code == 400
    too_big = client.post("/v1/jobs", content=b"{" + b" " * 2_000_000 + b"}")
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "body_too_large"
    missing = client.get("/v1/jobs/does-not-exist")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_job"
    assert client.get("/v1/models/nope").json()["error"]["message"].endswith("tiny-gpt2, slow-gpt2")
    assert client.get("/v1/jobs", params={"limit": 0}).status_code == 400
    assert client.post("/v1/tokenize", json={"model": "tiny-gpt2", "prompt": "x", "extra": 1}).status_code == 400
    assert client.get("/readyz").status_code == 200


def test_deployment_processes_are_separate(deployment: Deployment) -> None:
    """The API process serves without torch: it only sends tasks by name."""
    assert all(p.poll() is None for p in deployment.procs)
    assert Path(deployment.env["INTERP_REGISTRY"]).is_file()
