"""The same mistake gets the same answer wherever it is caught.

A freshly started embedded service refuses each tokenizer-dependent mistake at submission with a 4xx; a production
API that no worker has described the model to yet accepts the same bodies unchecked (``checked: false``), and the
worker then fails each job with the identical code and field, whose status the service's one table gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.errors import status_for
from tests.integration.conftest import make_deployment, serve_embedded

pytestmark = pytest.mark.integration

PAIR = {
    "kind": "patching",
    "model": "tiny-gpt2",
    "clean_prompt": "When Mary and John went, John gave it to",
    "corrupted_prompt": "When Mary and John went, Mary gave it to",
    "answer": " ",
    "wrong_answer": "M",
}
ATTRIBUTION = {"kind": "attribution", "model": "tiny-gpt2", "prompt": "When Mary and John", "target": {"token": "x"}}
STEER = {"kind": "steer", "model": "tiny-gpt2", "prompt": "hello", "sae": "res-1", "feature": 3}

ACTIVATIONS = {"kind": "activations", "model": "tiny-gpt2", "prompt": "hello", "hooks": ["blocks.0.hook_resid_post"]}
TOO_LARGE = {**ACTIVATIONS, "prompt": None, "prompts": ["x" * 120] * 16, "hooks": ["blocks.*.mlp.hook_post"],
             "output": "json"}
"""16 prompts × 2 layers × 121 positions × d_mlp 256, float32: over the 1 MB bound of JSON, unsliced."""

MISTAKES: list[tuple[str, dict[str, Any], str, str]] = [
    ("multi-token answer", {**PAIR, "answer": "two tokens"}, "not_single_token", "answer"),
    ("multi-token wrong answer", {**PAIR, "wrong_answer": "Mary"}, "not_single_token", "wrong_answer"),
    ("unequal lengths", {**PAIR, "corrupted_prompt": "short"}, "length_mismatch", "corrupted_prompt"),
    ("layer out of range", {**PAIR, "layers": [0, 7]}, "out_of_range", "layers"),
    ("position out of range", {**PAIR, "positions": [400]}, "out_of_range", "positions"),
    ("receiver out of range", {**PAIR, "method": "path", "receivers": [[9, 0]]}, "out_of_range", "receivers"),
    ("joint head out of range", {**PAIR, "targets": [], "together": [[0, 0], [1, 4]]}, "out_of_range", "together"),
    ("over-long pair", {**PAIR, "clean_prompt": "x" * 200, "corrupted_prompt": "y" * 200}, "prompt_too_long",
     "clean_prompt"),
    ("multi-token target", {**ATTRIBUTION, "target": {"token": "xy"}}, "not_single_token", "target.token"),
    ("multi-token contrast", {**ATTRIBUTION, "target": {"contrast": ["x", "yz"]}}, "not_single_token",
     "target.contrast"),
    ("position past the prompt", {**ATTRIBUTION, "position": 300}, "out_of_range", "position"),
    ("unknown hook", {**ATTRIBUTION, "method": "gradient_x_activation", "hook": "blocks.9.hook_resid_pre"},
     "unknown_hook", "hook"),
    ("hook of no site", {**ATTRIBUTION, "method": "gradient_x_activation", "hook": "blocks.0.hook_nothing"},
     "unknown_hook", "hook"),
    ("over-long sae prompt", {"kind": "sae_encode", "model": "tiny-gpt2", "prompts": ["ok", "z" * 300], "sae": "res-1"},
     "prompt_too_long", "prompts.1"),
    ("generation past the context", {**STEER, "prompt": "w" * 120, "max_new_tokens": 20}, "prompt_too_long",
     "max_new_tokens"),
    ("too many patches", {**PAIR, "clean_prompt": "a" * 100, "corrupted_prompt": "b" * 100,  # 2 × 4 × 101²
                          "targets": ["head_pattern_dest_src"]}, "too_many_patches", "targets"),
    ("unknown activations hook", {**ACTIVATIONS, "hooks": ["blocks.0.hook_nothing"]}, "unknown_hook", "hooks.0"),
    ("activations position out of range", {**ACTIVATIONS, "positions": [-50]}, "out_of_range", "positions"),
    ("activations head out of range", {**ACTIVATIONS, "hooks": ["blocks.1.attn.hook_z"], "heads": [4]},
     "out_of_range", "heads"),
    ("activations too large", TOO_LARGE, "result_too_large", "hooks"),
    ("attention layer out of range", {"kind": "attention", "model": "tiny-gpt2", "prompt": "hi", "layers": [2]},
     "out_of_range", "layers"),
]
IDS = [name for name, *_ in MISTAKES]


@pytest.fixture(scope="module")
def fresh_embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``interp serve`` just started: the first request it answers is one of the test's."""
    with serve_embedded(tmp_path_factory.mktemp("fresh")) as url:
        yield url


@pytest.mark.parametrize(("name", "body", "code", "field"), MISTAKES, ids=IDS)
def test_a_fresh_embedded_service_refuses_at_submission(
    fresh_embedded: str, name: str, body: dict[str, Any], code: str, field: str
) -> None:
    response = httpx.post(f"{fresh_embedded}/v1/jobs", json=body, timeout=30)
    assert response.status_code == status_for(code), (name, response.text)
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field), name
    assert len(error["message"]) < 400


def test_a_result_too_large_is_refused_naming_its_bytes(fresh_embedded: str) -> None:
    response = httpx.post(f"{fresh_embedded}/v1/jobs", json=TOO_LARGE, timeout=30)
    assert response.status_code == 422, response.text
    assert f"take {4 * 16 * 2 * 121 * 256} bytes" in response.json()["error"]["message"]
    sliced = httpx.post(f"{fresh_embedded}/v1/jobs", json={**TOO_LARGE, "positions": [-1]}, params={"wait": 30},
                        timeout=60)
    assert sliced.status_code in (200, 202) and sliced.json()["status"] == "succeeded", sliced.text


def test_the_worker_gives_the_same_answer_to_unchecked_jobs(redis_url: str, tmp_path: Path) -> None:
    """No worker has described the model: the API accepts and says so; the worker refuses with the same code."""
    deployment = make_deployment(redis_url, tmp_path)
    try:
        api = deployment.start_api()
        with deployment.http(api, timeout=30) as client:
            accepted = []
            for name, body, code, field in MISTAKES:
                response = client.post("/v1/jobs", json=body)
                assert response.status_code == 202, (name, response.text)
                assert response.json()["checked"] is False
                accepted.append((name, response.json()["id"], code, field))
            deployment.start_worker()
            for name, job_id, code, field in accepted:
                job = client.get(f"/v1/jobs/{job_id}", params={"wait": 30}).json()
                assert job["status"] == "failed", (name, job)
                assert (job["error"]["code"], job["error"]["field"]) == (code, field), name
            # Once the worker has published the model's card, the API checks the same bodies itself.
            name, body, code, field = MISTAKES[0]
            response = client.post("/v1/jobs", json=body)
            assert response.status_code == status_for(code)
            assert response.json()["error"]["code"] == code
    finally:
        deployment.stop()
