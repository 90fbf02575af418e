"""Results too large for JSON, over real HTTP: a safetensors file linked from the result, served to the job's
tenant only, gone after its expiry; a result over the model's file bound refused at submission, naming the bytes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from safetensors.torch import load

from tests.integration.conftest import Deployment, make_deployment
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.registry import Registry
from workers.kinds.activations import ARTIFACT_NAME, MAX_RESULT_BYTES

pytestmark = pytest.mark.integration

TTL_S = 4
FILE_BOUND = 3_000_000
LARGE: dict[str, Any] = {
    "kind": "activations",
    "model": "tiny-gpt2",
    "prompts": ["When Mary and John went to the store, John gave a drink to"] * 8,
    "hooks": ["blocks.*.mlp.hook_post", "blocks.*.attn.hook_pattern"],
}


@pytest.fixture(scope="module")
def dep(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = make_deployment(redis_url, tmp_path_factory.mktemp("artifacts"), INTERP_ARTIFACT_TTL_S=str(TTL_S))
    registry = Path(deployment.env["INTERP_REGISTRY"])
    text = registry.read_text(encoding="utf-8")
    bounded = f"[models.tiny-gpt2]\nmax_artifact_bytes = {FILE_BOUND}\n"
    registry.write_text(text.replace("[models.tiny-gpt2]\n", bounded), encoding="utf-8")
    try:
        deployment.start_worker(models=("tiny-gpt2",))
        deployment.start_api()
        yield deployment
    finally:
        deployment.stop()


def test_a_large_result_links_a_file_with_the_models_numbers(dep: Deployment) -> None:
    with dep.http(timeout=60) as client:
        job = client.post("/v1/jobs", json=LARGE, params={"wait": 60}).json()
        assert job["status"] == "succeeded", job
        link = job["result"]["artifact"]
        assert link["name"] == ARTIFACT_NAME and link["format"] == "safetensors"
        assert link["url"] == f"/v1/jobs/{job['id']}/artifacts/{ARTIFACT_NAME}"
        assert time.time() < link["expires_at"] <= time.time() + TTL_S
        response = client.get(link["url"])
        assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
        assert len(response.content) == link["bytes"] > MAX_RESULT_BYTES
        tensors = load(response.content)
    entry = Registry.from_toml(Path(dep.env["INTERP_REGISTRY"])).get("tiny-gpt2")
    model = HookedModel(*load_model(entry, cache_dir=Path(dep.env["INTERP_CACHE_DIR"])), model_id=entry.id,
                        max_tokens=entry.max_tokens)
    hooks = [f"blocks.{layer}.{site}" for site in ("mlp.hook_post", "attn.hook_pattern") for layer in range(2)]
    for i, (prompt, part) in enumerate(zip(LARGE["prompts"], job["result"]["prompts"], strict=True)):
        assert set(part["hooks"]) == set(hooks)
        cache = model.run(model.tokenize(prompt), cache=hooks).cache
        for hook, values in part["hooks"].items():
            assert values["values"] is None and values["tensor"] == f"{i}/{hook}"
            assert list(tensors[values["tensor"]].shape) == values["shape"]
            assert torch.allclose(tensors[values["tensor"]], cache[hook][0].float(), atol=1e-5), hook


def test_another_tenant_gets_404_and_the_file_expires(dep: Deployment) -> None:
    with dep.http(timeout=60) as client, httpx.Client(
        base_url=dep.api_url, headers={"Authorization": f"Bearer {dep.key('someone-else')}"}, timeout=30
    ) as other:
        job = client.post("/v1/jobs", json={**LARGE, "prompts": LARGE["prompts"][:1], "output": "safetensors"},
                          params={"wait": 60}).json()
        url = job["result"]["artifact"]["url"]
        theirs = other.get(url)
        nobodys = other.get(f"/v1/jobs/{'f' * 32}/artifacts/{ARTIFACT_NAME}")
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.text.replace(job["id"], "f" * 32) == nobodys.text
        assert client.get(url).status_code == 200
        time.sleep(max(0.0, job["result"]["artifact"]["expires_at"] - time.time()) + 0.5)
        gone = client.get(url)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_artifact"
        assert "expires" in gone.json()["error"]["message"]
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"  # the record stays


def test_over_the_file_bound_is_refused_naming_the_bytes(dep: Deployment) -> None:
    body = {**LARGE, "prompts": ["x " * 60] * 16, "hooks": ["blocks.*.mlp.hook_post", "blocks.*.hook_resid_pre"]}
    with dep.http(timeout=60) as client:
        assert client.get("/v1/models/tiny-gpt2").json()["max_artifact_bytes"] == FILE_BOUND
        bounds = {"auto": f"bound of {FILE_BOUND} as a file", "json": f"bound of {MAX_RESULT_BYTES} as JSON"}
        for output, bound in bounds.items():
            refused = client.post("/v1/jobs", json={**body, "output": output})
            error = refused.json()["error"]
            assert refused.status_code == 422 and (error["code"], error["field"]) == ("result_too_large", "hooks")
            assert re.search(r"would take \d+ bytes", error["message"]) and bound in error["message"], error
