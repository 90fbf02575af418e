"""The client against a real API and Celery worker: every kind submitted, waited for and read as typed results
equal to what the server sent; events, listing, cancelling, failing, timing out; the async client the same."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from interp_client import AsyncClient, Client, JobCancelledError, JobFailedError, WaitTimeoutError, models
from interp_client.kinds import KINDS

from tests.client.conftest import PATCHING, SLOW, Service

pytestmark = pytest.mark.integration

BODIES: dict[str, dict[str, Any]] = {
    "activations": {"model": "tiny-gpt2", "prompts": ["ab", "abc"], "hooks": ["blocks.*.hook_resid_post"],
                    "positions": [-1], "top_k": 3},
    "attention": {"model": "tiny-gpt2", "prompt": "The cat", "layers": [1]},
    "attribution": {"model": "tiny-gpt2", "prompt": "The cat sat on the", "target": {"contrast": [" ", "m"]},
                    "method": "integrated_gradients", "n_steps": 16},
    "patching": PATCHING,
    "sae_encode": {"model": "tiny-gpt2", "prompts": ["Features of this prompt", "and another"], "sae": "res-1",
                   "top_k": 5},
    "head_scores": {"model": "tiny-gpt2", "prompts": ["abab", "xyxy"], "detectors": ["induction"]},
    "sae_features": {"model": "tiny-gpt2", "prompts": ["Features of this prompt", "and more"], "sae": "res-1",
                     "feature": 7, "top_n": 5},
    "steer": {"model": "tiny-gpt2", "prompt": "Once upon", "sae": "res-1", "feature": 7, "coefficient": 8.0,
              "max_new_tokens": 6},
}
"""Bodies that succeed on the test registry's tiny model, as keyword arguments; one per kind (a test says so)."""


def test_there_is_a_body_for_every_kind() -> None:
    assert set(BODIES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_every_kind_is_submitted_waited_for_and_typed(client: Client, service: Service, kind: str) -> None:
    job = getattr(client, kind)(**BODIES[kind])
    assert job.kind == kind and job.status in ("queued", "running", "succeeded")
    result = job.result(timeout=120)
    assert job.status == "succeeded" and job.progress == 1.0
    assert type(result) is KINDS[kind].result
    raw = httpx.get(f"{service.url}/v1/jobs/{job.id}", timeout=30, headers=service.deployment.headers).json()
    assert result.model_dump(mode="json") == raw["result"]  # nothing dropped or renamed on the way


def test_typed_fields_hold_the_values(client: Client) -> None:
    patching = client.patching(**PATCHING).result(timeout=120)
    assert patching.tokens[:3] == ["<bos>", "W", "h"]
    grid = patching.targets["resid_pre"]
    assert grid.axes == ["layer", "position"] and grid.labels["layer"] == [0, 1]
    assert grid.labels["position"][:2] == ["0: <bos>", "1: W"]
    assert len(grid.values) == 2 and len(grid.values[0]) == len(patching.tokens)
    assert patching.targets["head_out"].axes == ["layer", "head"]
    sae = client.sae_encode(**BODIES["sae_encode"]).result(timeout=120)
    assert [p.prompt for p in sae.prompts] == BODIES["sae_encode"]["prompts"]
    first = sae.prompts[0]
    assert len(first.features) == len(first.tokens) and all(len(f) == 5 for f in first.features)
    assert all(a.activation >= b.activation for a, b in zip(first.features[0], first.features[0][1:], strict=False))
    steer = client.steer(**BODIES["steer"]).result(timeout=120)
    assert (steer.feature, steer.coefficient, len(steer.steered_tokens)) == (7, 8.0, 6)
    assert steer.steered_text == "".join(steer.steered_tokens)


def test_models_and_tokenize(client: Client) -> None:
    assert [m.id for m in client.models()] == ["tiny-gpt2", "slow-gpt2"]
    tiny = client.model("tiny-gpt2")
    assert (tiny.n_layers, tiny.d_model, tiny.n_heads, tiny.ready) == (2, 64, 4, True)
    assert [s.id for s in tiny.saes] == ["res-1"]
    tokens = client.tokenize("tiny-gpt2", "Hi!")
    assert (tokens.token_ids, tokens.tokens, tokens.n_tokens) == ([256, 72, 105, 33], ["<bos>", "H", "i", "!"], 4)


def test_events_stream_every_change_in_order(client: Client) -> None:
    job = client.patching(**SLOW)
    events = list(job.events())
    assert [e.seq for e in events] == list(range(len(events)))
    statuses = [e.status for e in events]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    progress = [e.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(set(progress)) >= 3
    assert job.status == "succeeded"  # the handle followed the stream
    assert job.refresh().result().targets.keys() == {"resid_pre", "attn_out", "mlp_out"}


def test_wait_times_out_then_cancel(client: Client) -> None:
    job = client.patching(**SLOW)
    assert job.wait(0.3) is job and not job.done
    with pytest.raises(WaitTimeoutError):
        job.result(timeout=0.3)
    job.cancel()
    assert job.status in ("cancelled", "running")
    with pytest.raises(JobCancelledError):
        job.result(timeout=60)
    assert job.status == "cancelled" and job.record.result is None


def test_a_failed_job_raises_its_error(client: Client, service: Service) -> None:
    job = client.job(service.failed_job_id)
    assert job.status == "failed" and job.record.checked is False
    with pytest.raises(JobFailedError) as raised:
        job.result()
    assert (raised.value.code, raised.value.field) == ("not_single_token", "answer")
    assert raised.value.job.id == service.failed_job_id


def test_jobs_are_listed_newest_first_across_pages(client: Client) -> None:
    targets = ("mlp_out", "attn_out", "resid_mid")
    submitted = [client.patching(**{**PATCHING, "targets": [target]}).id for target in targets]
    listed = list(client.jobs(page_size=2, limit=3))
    assert [j.id for j in listed] == submitted[::-1]
    every = [j.id for j in client.jobs(page_size=3)]
    assert len(every) == len(set(every)) == client.page(limit=1).total
    assert every[:3] == submitted[::-1]
    assert client.job(submitted[0]).kind == "patching"


def test_the_async_client_does_the_same(service: Service) -> None:
    async def scenario() -> tuple[models.AttributionResult, list[str], list[str], str]:
        async with AsyncClient(service.url, api_key=service.api_key, timeout=60) as client:
            job = await client.attribution(**BODIES["attribution"])
            result = await job.result(timeout=120)
            slow = await client.patching(**SLOW)
            statuses = [event.status async for event in slow.events()]
            listed = [j.id async for j in client.jobs(page_size=1, limit=2)]
            return result, statuses, listed, (await client.job(job.id)).status

    result, statuses, listed, status = asyncio.run(scenario())
    assert isinstance(result, models.AttributionResult) and result.method == "integrated_gradients"
    assert len(result.scores or []) == len(result.tokens) and result.checks.completeness is not None
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    assert len(listed) == 2 and status == "succeeded"
