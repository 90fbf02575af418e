"""Path patching and SAE feature queries over HTTP, each equal to the core run in this process on the same weights.

The expected values come from the core's own result objects, read attribute by attribute, not from the wire
models the worker uses, so a field the mapping dropped or mislabelled fails here.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
import torch

from tests.integration.conftest import write_registry
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.patching import PathPatchingRequest, run_path_patching
from workers.core.registry import Registry
from workers.core.sae import (
    FeatureActivationsRequest,
    FeatureLogitEffectsRequest,
    feature_activations,
    feature_logit_effects,
    load_sae,
)
from workers.core.sae.autoencoder import Sae

pytestmark = pytest.mark.integration

TOL = 1e-5  # the same float32 model and inputs in two processes; cached activations round-trip exactly

PATH = {
    "kind": "patching",
    "method": "path",
    "model": "tiny-gpt2",
    "clean_prompt": "When Mary and John went, John gave it to",
    "corrupted_prompt": "When Mary and John went, Mary gave it to",
    "answer": " ",
    "wrong_answer": "M",
    "receivers": [[1, 0], [1, 3]],
    "receiver_inputs": ["q", "k"],
}
FEATURES = {
    "kind": "sae_features",
    "model": "tiny-gpt2",
    "sae": "res-1",
    "feature": 17,
    "prompts": ["When Mary and John went", "Hi!"],
    "top_n": 6,
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


@pytest.fixture(scope="module")
def sae(registry: Registry, tiny: HookedModel) -> Sae:
    return load_sae(registry.get("tiny-gpt2").get_sae("res-1"), model_facts=tiny.facts)


def succeeded(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=body, params={"wait": 60})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] == "succeeded" and job["kind"] == body["kind"], job
    assert job["checked"] is True
    result: dict[str, Any] = job["result"]
    return result


def grid_values(tensor: torch.Tensor) -> list[list[float | None]]:
    return [[None if math.isnan(v) else v for v in row] for row in tensor.tolist()]


def assert_grid(got: list[list[float | None]], want: list[list[float | None]]) -> None:
    assert len(got) == len(want)
    for got_row, want_row in zip(got, want, strict=True):
        assert [g is None for g in got_row] == [w is None for w in want_row]
        assert [g for g in got_row if g is not None] == pytest.approx([w for w in want_row if w is not None], abs=TOL)


def test_a_path_patching_job_equals_the_core(client: httpx.Client, tiny: HookedModel) -> None:
    result = succeeded(client, PATH)
    want = run_path_patching(
        tiny,
        PathPatchingRequest(
            clean_prompt=PATH["clean_prompt"],
            corrupted_prompt=PATH["corrupted_prompt"],
            answer=" ",
            wrong_answer="M",
            receivers=((1, 0), (1, 3)),
            receiver_inputs=("q", "k"),
        ),  # the core's default direction for path patching is the spec's (noise)
    )
    assert (result["method"], result["direction"], result["metric"]) == ("path", "noise", "logit_diff")
    assert result["tokens"] == list(want.tokens) and result["corrupted_tokens"] == list(want.corrupted_tokens)
    assert result["clean_metric"] == pytest.approx(want.clean_metric, abs=TOL)
    assert result["corrupted_metric"] == pytest.approx(want.corrupted_metric, abs=TOL)
    assert list(result["targets"]) == ["senders"]
    grid = result["targets"]["senders"]
    assert grid["axes"] == list(want.senders.axes) == ["layer", "head"]
    assert grid["labels"] == {axis: list(labels) for axis, labels in want.senders.labels.items()}
    assert want.senders.normalised is not None
    assert_grid(grid["values"], grid_values(want.senders.normalised))
    assert_grid(grid["raw_values"], grid_values(want.senders.raw))
    # Senders at the receivers' layer have no path to them: the metric stays the base (clean) run's, a normalised 1.
    assert grid["values"][1] == [pytest.approx(1.0, abs=TOL)] * 4
    path = result["path"]
    assert path["receivers"] == [list(r) for r in want.receivers]
    assert path["receiver_inputs"] == list(want.receiver_inputs)
    assert path["joint"]["raw_value"] == pytest.approx(want.joint.raw_value, abs=TOL)
    assert want.joint.value is not None
    assert path["joint"]["value"] == pytest.approx(want.joint.value, abs=TOL)


def test_an_sae_features_job_equals_the_core(client: httpx.Client, tiny: HookedModel, sae: Sae) -> None:
    result = succeeded(client, FEATURES)
    assert (result["model"], result["sae"], result["hook"], result["feature"]) == (
        "tiny-gpt2", "res-1", sae.hook, 17
    )
    assert len(result["prompts"]) == 2
    for prompt, got in zip(FEATURES["prompts"], result["prompts"], strict=True):
        want = feature_activations(tiny, sae, FeatureActivationsRequest(prompt=prompt, feature=17))
        assert got["tokens"] == list(want.tokens)
        assert got["activations"] == pytest.approx(list(want.activations), abs=TOL)
        assert got["max_activation"] == pytest.approx(want.max_activation, abs=TOL)
        assert got["max_position"] == want.max_position
    effects = feature_logit_effects(tiny, sae, FeatureLogitEffectsRequest(feature=17, top_n=6))
    for side in ("promoted", "suppressed"):
        got_side, want_side = result["logit_effects"][side], getattr(effects, side)
        assert [(e["token"], e["token_id"]) for e in got_side] == [(e.token, e.token_id) for e in want_side]
        assert [e["effect"] for e in got_side] == pytest.approx([e.effect for e in want_side], abs=TOL)
        assert len(got_side) == 6


def test_submission_checks_the_feature_against_the_published_width(client: httpx.Client) -> None:
    """The worker read res-1's cfg.json (96 features) onto the card; the API refuses feature 96 at once."""
    for body in ({**FEATURES, "feature": 96}, {"kind": "steer", "model": "tiny-gpt2", "prompt": "Hi", "sae": "res-1",
                                                 "feature": 96}):
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("out_of_range", "feature")
        assert "0..95" in error["message"]


def test_a_job_too_large_for_a_worker_is_refused(client: httpx.Client) -> None:
    body = {"kind": "attribution", "model": "slow-gpt2", "prompt": "z" * 500, "target": {"token": "x"},
            "n_steps": 512}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("job_too_large", "prompt")
    assert "bytes" in error["message"] and any(ch.isdigit() for ch in error["message"])
