"""Jobs of different users share forwards on a threads worker, over HTTP: each result equals the same job run
alone, a job that fails among them fails alone, and cancelled ones stay cancelled.

The jobs are all queued before the worker starts, so its threads take them together and their forwards meet; the
single runs are the same kinds' runners called here, alone, with a plain forward and no cache.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Deployment, make_deployment
from workers.core.activations import forward_reader
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.progress import never_cancel, no_progress
from workers.core.registry import Registry
from workers.core.sae import load_sae
from workers.core.shared_forwards import embedding_gradients_together
from workers.kinds import KINDS, job_spec_adapter
from workers.kinds.context import JobContext

pytestmark = pytest.mark.integration

TOL = 1e-4
"""float32 in a batch of other prompts versus alone: rounding only; relative for large values."""

MISSING_SAE = """
[[models.tiny-gpt2.saes]]
id = "res-gone"
hook = "blocks.1.hook_resid_post"
path = "saes/res-gone"
"""
"""An SAE the registry lists but whose files are not there: the worker fails its job when it loads it."""


def _prompt(rng: random.Random) -> str:
    words = ["river", "stone", "quiet", "lamp", "orbit", "maple", "signal", "ember", "cloud", "harbor", "violet"]
    return " ".join(rng.choice(words) for _ in range(rng.randint(2, 6)))


def _bodies(seed: int) -> list[dict[str, Any]]:
    """One job of each shared kind and method, each on prompts of its own (so no cache entry answers it)."""
    rng = random.Random(seed)
    base = {"model": "tiny-gpt2"}
    target = {"contrast": [" ", "e"]}
    return [
        {**base, "kind": "sae_encode", "prompt": _prompt(rng), "sae": "res-1", "top_k": 4},
        {**base, "kind": "sae_encode", "prompts": [_prompt(rng), _prompt(rng)], "sae": "res-1", "top_k": 3},
        {**base, "kind": "attribution", "prompt": _prompt(rng), "target": target, "method": "saliency"},
        {**base, "kind": "attribution", "prompt": _prompt(rng), "target": {"token": "a"},
         "method": "input_x_gradient"},
        {**base, "kind": "attribution", "prompt": _prompt(rng), "target": target,
         "method": "direct_logit_attribution"},
        {**base, "kind": "attribution", "prompt": _prompt(rng), "target": target, "method": "logit_lens"},
        {**base, "kind": "activations", "prompts": [_prompt(rng), _prompt(rng)],
         "hooks": ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z"]},
        {**base, "kind": "activations", "prompt": _prompt(rng), "hooks": ["blocks.1.hook_mlp_out"], "top_k": 5},
        {**base, "kind": "attention", "prompt": _prompt(rng)},
        {**base, "kind": "head_scores", "prompt": _prompt(rng)},
    ]


@pytest.fixture(scope="module")
def shared(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Path]]:
    """An API with no worker yet; the test starts a threads worker once its jobs are queued."""
    directory = tmp_path_factory.mktemp("shared")
    dep = make_deployment(redis_url, directory, INTERP_BATCH_MAX_WAIT_MS="200")
    registry = Path(dep.env["INTERP_REGISTRY"])
    registry.write_text(registry.read_text(encoding="utf-8") + MISSING_SAE, encoding="utf-8")
    try:
        dep.start_worker(models=("tiny-gpt2",), pool="threads")  # publishes the card the API's checks read
        dep.kill(dep.procs.pop())
        dep.start_api()
        yield dep, registry
    finally:
        dep.stop()


@pytest.fixture(scope="module")
def tiny(shared: tuple[Deployment, Path], tmp_path_factory: pytest.TempPathFactory) -> HookedModel:
    entry = Registry.from_toml(shared[1]).get("tiny-gpt2")
    model, tokenizer = load_model(entry, cache_dir=tmp_path_factory.mktemp("models"))
    return HookedModel(model, tokenizer, model_id=entry.id, max_tokens=entry.max_tokens)


def _alone(tiny: HookedModel, registry: Path, body: dict[str, Any]) -> dict[str, Any]:
    """The job's result from its kind's runner here: a plain forward of its own, no cache, no company."""
    spec = job_spec_adapter.validate_python(body)
    entry = Registry.from_toml(registry).get("tiny-gpt2")
    ctx = JobContext(
        model=tiny,
        entry=entry,
        reader=forward_reader(tiny),
        progress=no_progress,
        should_cancel=never_cancel,
        load_sae=lambda sae_id: load_sae(entry.get_sae(sae_id), model_facts=tiny.facts),
        save_artifact=lambda *_: pytest.fail("no artifact expected"),
        gradient=lambda request: embedding_gradients_together(tiny, [request])[0],
    )
    return KINDS[spec.kind].run(ctx, spec).model_dump(mode="json")  # type: ignore[no-any-return]


def _assert_close(served: Any, alone: Any, where: str = "result") -> None:
    if isinstance(alone, dict):
        assert isinstance(served, dict) and served.keys() == alone.keys(), where
        for key, value in alone.items():
            _assert_close(served[key], value, f"{where}.{key}")
    elif isinstance(alone, list):
        assert isinstance(served, list) and len(served) == len(alone), where
        for i, (a, b) in enumerate(zip(served, alone, strict=True)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(alone, float) and not isinstance(served, bool):
        assert served == pytest.approx(alone, rel=TOL, abs=TOL), where
    else:
        assert served == alone, where


def _wait_all(client: httpx.Client, ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [client.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
        if all(job["status"] in ("succeeded", "failed", "cancelled") for job in jobs):
            return jobs
        time.sleep(0.1)
    raise TimeoutError("jobs did not finish")


def test_shared_jobs_equal_single_runs_and_failures_stay_alone(
    shared: tuple[Deployment, Path], tiny: HookedModel
) -> None:
    dep, registry = shared
    bodies = _bodies(seed=20261201)
    failing = {"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "river stone lamp", "sae": "res-gone"}
    cancelled = [{**bodies[0], "prompt": "quiet harbor"}, {**bodies[2], "prompt": "violet ember"}]
    with dep.http(timeout=60) as client:
        with ThreadPoolExecutor(8) as pool:  # eight users at once
            answers = list(pool.map(lambda body: client.post("/v1/jobs", json=body), [*bodies, failing, *cancelled]))
        assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers]
        ids = [answer.json()["id"] for answer in answers]
        for job_id in ids[-2:]:
            assert client.delete(f"/v1/jobs/{job_id}").status_code in (200, 202)
        dep.start_worker(models=("tiny-gpt2",), pool="threads")
        jobs = _wait_all(client, ids)

    *served, failed, cancel_a, cancel_b = jobs
    assert [job["status"] for job in served] == ["succeeded"] * len(bodies), [job.get("error") for job in served]
    assert failed["status"] == "failed" and failed["error"]["field"] == "sae", failed["error"]
    assert cancel_a["status"] == cancel_b["status"] == "cancelled"
    assert max(job["stats"]["shared_forward_jobs"] for job in served) >= 3
    for body, job in zip(bodies, served, strict=True):
        _assert_close(job["result"], _alone(tiny, registry, body), f"{body['kind']}.result")
