"""Steering with a feature on a tiny model: a large coefficient changes the generation; zero changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.unit.workers.core.sae.tiny import tiny_hooked, tiny_sae
from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel
from workers.core.sae.autoencoder import Sae
from workers.core.steering import SteerRequest, steer


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return tiny_hooked("llama")


@pytest.fixture
def sae(tmp_path: Path, model: HookedModel) -> Sae:
    return tiny_sae(tmp_path, model, "standard")


def _greedy(model: HookedModel, prompt: str, n: int) -> list[int]:
    ids = model.tokenize(prompt)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            nxt = model.model(input_ids=ids).logits[0, -1].argmax()
            out.append(int(nxt))
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
    return out


def test_large_coefficient_changes_the_generation(model: HookedModel, sae: Sae) -> None:
    result = steer(model, sae, SteerRequest(prompt="hello", feature=3, coefficient=50.0, max_new_tokens=8))
    assert result.unsteered_tokens == tuple(model.token_strings(_greedy(model, "hello", 8)))
    assert result.steered_tokens != result.unsteered_tokens
    assert len(result.steered_tokens) == 8
    assert result.tokens == tuple(model.token_strings(model.tokenize("hello")))
    assert (result.sae, result.hook, result.feature, result.coefficient) == ("rand", sae.hook, 3, 50.0)


def test_zero_coefficient_changes_nothing(model: HookedModel, sae: Sae) -> None:
    result = steer(model, sae, SteerRequest(prompt="hello", feature=3, coefficient=0.0, max_new_tokens=6))
    assert result.steered_tokens == result.unsteered_tokens


def test_clamping_a_feature_high_changes_the_generation(model: HookedModel, sae: Sae) -> None:
    result = steer(model, sae, SteerRequest(prompt="hello", feature=7, clamp=80.0, max_new_tokens=6))
    assert result.steered_tokens != result.unsteered_tokens
    assert result.clamp == 80.0


def test_sampling_is_seeded(model: HookedModel, sae: Sae) -> None:
    def run(seed: int) -> tuple[str, ...]:
        request = SteerRequest(prompt="hi", feature=1, coefficient=2.0, max_new_tokens=10, temperature=1.0, seed=seed)
        return steer(model, sae, request).steered_tokens

    assert run(1) == run(1)
    assert run(1) != run(2)


@pytest.mark.parametrize(
    ("field", "request_"),
    [
        ("max_new_tokens", SteerRequest(prompt="x", feature=0, max_new_tokens=0)),
        ("temperature", SteerRequest(prompt="x", feature=0, temperature=-1.0)),
        ("coefficient", SteerRequest(prompt="x", feature=0, coefficient=float("nan"))),
    ],
)
def test_bad_requests(model: HookedModel, sae: Sae, field: str, request_: SteerRequest) -> None:
    with pytest.raises(InvalidRequestError) as info:
        steer(model, sae, request_)
    assert info.value.field == field


def test_wire_limits_are_left_to_the_job_spec(model: HookedModel, sae: Sae) -> None:
    """The spec caps temperature at 5; the core refuses only what would be wrong (a negative temperature)."""
    request = SteerRequest(prompt="hi", feature=1, coefficient=2.0, max_new_tokens=2, temperature=8.0, seed=3)
    assert len(steer(model, sae, request).steered_tokens) == 2
