"""Gemma 3 270M through the whole service: the README's IOI patching job, answered as the core answers it.

The core runs here on core requests written by hand; the served JSON, read into the typed result, must carry
every field of the core result (:func:`tests.carried.assert_carried`) within the stated tolerance.
"""

from __future__ import annotations

import httpx
import pytest

from tests.carried import assert_carried
from tests.integration.conftest import Deployment
from workers.core.attribution import AttributionRequest, TargetSpec, run_attribution
from workers.core.hooked_model import HookedModel
from workers.core.patching import PatchingRequest, run_patching
from workers.kinds.attribution import AttributionResult
from workers.kinds.patching import PatchingResult

pytestmark = [pytest.mark.integration, pytest.mark.gemma]

IOI = {
    "kind": "patching",
    "model": "gemma-3-270m",
    "clean_prompt": "When Mary and John went to the store, John gave a drink to",
    "corrupted_prompt": "When Mary and John went to the store, Mary gave a drink to",
    "answer": " Mary",
    "wrong_answer": " John",
    "targets": ["resid_pre"],
    "layers": [0, 4, 8, 12, 17],
}


def test_ioi_patching_job_matches_the_core(gemma_service: tuple[Deployment, httpx.Client], gemma: HookedModel) -> None:
    _, client = gemma_service
    info = client.get("/v1/models/gemma-3-270m").json()
    assert (info["n_layers"], info["d_model"], info["n_heads"], info["n_kv_heads"]) == (18, 640, 4, 1)
    tokens = client.post("/v1/tokenize", json={"model": "gemma-3-270m", "prompt": IOI["clean_prompt"]}).json()
    assert tokens["token_ids"] == gemma.tokenize(IOI["clean_prompt"])[0].tolist()
    job = client.post("/v1/jobs", json=IOI, params={"wait": 240}).json()
    assert job["status"] == "succeeded", job
    request = PatchingRequest(
        IOI["clean_prompt"],
        IOI["corrupted_prompt"],
        answer=" Mary",
        wrong_answer=" John",
        metric="logit_diff",
        targets=("resid_pre",),
        method="exact",
        direction="denoise",
        layers=(0, 4, 8, 12, 17),
    )
    want = run_patching(gemma, request)
    assert set(job["result"]) == set(PatchingResult.model_fields)
    # Logit differences and normalised effects: absolute 1e-4 (the same float32 weights in two processes).
    assert_carried(PatchingResult.model_validate(job["result"]), want, atol=1e-4)
    assert job["result"]["clean_metric"] > job["result"]["corrupted_metric"]
    again = client.post("/v1/jobs", json=IOI, params={"wait": 240}).json()
    assert again["stats"]["forwards"] == 0


def test_gemma_sae_encode_when_its_sae_is_installed(gemma_service: tuple[Deployment, httpx.Client]) -> None:
    _, client = gemma_service
    saes = client.get("/v1/models/gemma-3-270m").json()["saes"]
    if not saes:
        pytest.skip("no Gemma SAE directory installed")
    body = {"kind": "sae_encode", "model": "gemma-3-270m", "prompt": "The Eiffel Tower is in Paris",
            "sae": saes[0]["id"], "top_k": 5}
    first = client.post("/v1/jobs", json=body, params={"wait": 240}).json()
    second = client.post("/v1/jobs", json=body, params={"wait": 240}).json()
    assert first["status"] == "succeeded", first
    assert first["stats"]["forwards"] == 1 and second["stats"]["forwards"] == 0
    assert second["result"] == first["result"]


def test_direct_logit_attribution_job_matches_the_core(
    gemma_service: tuple[Deployment, httpx.Client], gemma: HookedModel
) -> None:
    _, client = gemma_service
    body = {"kind": "attribution", "model": "gemma-3-270m", "prompt": IOI["clean_prompt"],
            "target": {"contrast": [" Mary", " John"]}, "method": "direct_logit_attribution"}
    job = client.post("/v1/jobs", json=body, params={"wait": 240}).json()
    assert job["status"] == "succeeded", job
    target = TargetSpec(contrast=(" Mary", " John"))
    request = AttributionRequest(IOI["clean_prompt"], target, "direct_logit_attribution")
    want = run_attribution(gemma, request)
    assert set(job["result"]) == set(AttributionResult.model_fields)
    # Per-component logit contributions: absolute 1e-4 (the same float32 weights in two processes).
    assert_carried(AttributionResult.model_validate(job["result"]), want, atol=1e-4)


def test_gemma_steer_when_its_sae_is_installed(gemma_service: tuple[Deployment, httpx.Client]) -> None:
    _, client = gemma_service
    saes = client.get("/v1/models/gemma-3-270m").json()["saes"]
    if not saes:
        pytest.skip("no Gemma SAE directory installed")
    body = {"kind": "steer", "model": "gemma-3-270m", "prompt": "My favourite city is", "sae": saes[0]["id"],
            "feature": 0, "coefficient": 50.0, "max_new_tokens": 5}
    job = client.post("/v1/jobs", json=body, params={"wait": 240}).json()
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["tokens"][0] == "<bos>" and result["hook"] == saes[0]["hook"]
    assert len(result["unsteered_tokens"]) == len(result["steered_tokens"]) == 5
