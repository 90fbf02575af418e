"""The ``sae_features`` kind: its spec's limits and requests, its checks on the published SAE width, its runner."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tests.unit.workers.kinds.conftest import D_SAE, MODEL, SAE, submit
from workers.core.errors import InvalidRequestError, PromptTooLongError
from workers.core.memory import dtype_bytes, row_bytes
from workers.core.sae import FeatureActivationsRequest, FeatureLogitEffectsRequest
from workers.core.sae.features import feature_activations, feature_logit_effects
from workers.kinds import KINDS, job_spec_adapter
from workers.kinds.sae_features import MAX_TOP_N, SaeFeaturesResult, SaeFeaturesSpec
from workers.kinds.sae_prompts import MAX_PROMPTS
from workers.kinds.steer import SteerSpec
from workers.runtime import WorkerRuntime
from workers.tasks import execute_job

BODY = {"kind": "sae_features", "model": MODEL, "sae": SAE, "feature": 5, "prompts": ["ab b:", "hello there"]}


def test_the_kind_is_in_the_table_with_sae_encode_limits() -> None:
    kind = KINDS["sae_features"]
    assert kind.spec is SaeFeaturesSpec and kind.result is SaeFeaturesResult
    encode = KINDS["sae_encode"]
    assert (kind.soft_limit_s, kind.hard_limit_s) == (encode.soft_limit_s, encode.hard_limit_s) == (120.0, 150.0)
    assert isinstance(job_spec_adapter.validate_python(BODY), SaeFeaturesSpec)


def test_spec_becomes_one_activations_request_per_prompt_and_one_effects_request() -> None:
    spec = SaeFeaturesSpec.model_validate({**BODY, "top_n": 7})
    activations, effects = spec.to_requests()
    assert activations == [FeatureActivationsRequest("ab b:", 5), FeatureActivationsRequest("hello there", 5)]
    assert effects == FeatureLogitEffectsRequest(feature=5, top_n=7)
    single = SaeFeaturesSpec.model_validate({**BODY, "prompts": None, "prompt": "x", "top_n": 0})
    assert single.to_requests() == ([FeatureActivationsRequest("x", 5)], None)
    assert SaeFeaturesSpec.model_validate(BODY).top_n == 10


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt": "x"}, None),
        ({"prompts": None}, None),
        ({"prompts": []}, "prompts"),
        ({"prompts": ["x"] * (MAX_PROMPTS + 1)}, "prompts"),
        ({"top_n": MAX_TOP_N + 1}, "top_n"),
        ({"top_n": -1}, "top_n"),
        ({"feature": -1}, "feature"),
        ({"sae": ""}, "sae"),
        ({"layer": 3}, "layer"),
    ],
)
def test_malformed_specs_name_their_field(change: dict[str, object], field: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        SaeFeaturesSpec.model_validate({**BODY, **change})
    if field is not None:
        assert info.value.errors()[0]["loc"][0] == field


def test_the_card_publishes_sae_widths_read_from_cfg_json(runtime: WorkerRuntime) -> None:
    view = runtime.view(MODEL)
    assert view.card.sae_widths == {SAE: D_SAE}  # "absent" has no cfg.json: left out, not guessed
    assert runtime.saes.loaded == ()  # publishing read no weights


@pytest.mark.parametrize("spec_type", [SaeFeaturesSpec, SteerSpec])
def test_feature_ids_are_checked_against_the_published_width(runtime: WorkerRuntime, spec_type: type) -> None:
    view = runtime.view(MODEL)
    body = {"model": MODEL, "sae": SAE, "prompt": "ab", "feature": D_SAE - 1}
    spec_type.model_validate(body).check(view)
    with pytest.raises(InvalidRequestError, match=rf"features 0\.\.{D_SAE - 1}") as info:
        spec_type.model_validate({**body, "feature": D_SAE}).check(view)
    assert (info.value.code, info.value.field) == ("out_of_range", "feature")
    # An SAE whose width is unknown passes here; its load decides.
    spec_type.model_validate({**body, "sae": "absent", "feature": 10**6}).check(view)


def test_prompts_are_checked_with_their_own_field(runtime: WorkerRuntime) -> None:
    with pytest.raises(PromptTooLongError) as info:
        SaeFeaturesSpec.model_validate({**BODY, "prompts": ["ok", "x" * 100]}).check(runtime.view(MODEL))
    assert (info.value.code, info.value.field) == ("prompt_too_long", "prompts.1")


def test_working_memory_is_one_prompt_through_one_layer(runtime: WorkerRuntime) -> None:
    view = runtime.view(MODEL)
    spec = SaeFeaturesSpec.model_validate(BODY)
    longest = len(view.tokenize("hello there"))
    assert longest == 12
    assert spec.working_memory(view) == row_bytes(view.card, longest, dtype_bytes("float32"))


def test_a_job_returns_the_core_results(runtime: WorkerRuntime) -> None:
    record = execute_job(runtime, "sae_features", submit(runtime, {**BODY, "top_n": 4}))
    assert record is not None and record.status == "succeeded", record.error
    assert record.result is not None and record.progress == 1.0
    result = SaeFeaturesResult.model_validate(record.result)

    model, sae = runtime.model(MODEL), runtime.sae(runtime.model(MODEL), SAE)
    assert (result.model, result.sae, result.hook, result.feature) == (MODEL, SAE, "blocks.1.hook_resid_post", 5)
    for prompt, got in zip(BODY["prompts"], result.prompts, strict=True):
        want = feature_activations(model, sae, FeatureActivationsRequest(prompt, 5))
        assert got.tokens == list(want.tokens)
        assert got.activations == pytest.approx(list(want.activations), abs=1e-6)
        assert (got.max_activation, got.max_position) == (pytest.approx(want.max_activation), want.max_position)
        assert got.activations[got.max_position] == max(got.activations)
    effects = feature_logit_effects(model, sae, FeatureLogitEffectsRequest(5, top_n=4))
    assert result.logit_effects is not None
    for got_list, want_list in ((result.logit_effects.promoted, effects.promoted),
                                (result.logit_effects.suppressed, effects.suppressed)):
        assert [(e.token, e.token_id) for e in got_list] == [(e.token, e.token_id) for e in want_list]
        assert [e.effect for e in got_list] == pytest.approx([e.effect for e in want_list], abs=1e-6)
    promoted = [e.effect for e in result.logit_effects.promoted]
    assert len(promoted) == 4 and promoted == sorted(promoted, reverse=True) and promoted[0] > 0
    assert all(math.isfinite(e.effect) and e.effect < 0 for e in result.logit_effects.suppressed)


def test_a_job_without_logit_effects(runtime: WorkerRuntime) -> None:
    record = execute_job(runtime, "sae_features", submit(runtime, {**BODY, "prompts": ["ab"], "top_n": 0}))
    assert record is not None and record.status == "succeeded" and record.result is not None
    assert record.result["logit_effects"] is None
    assert record.result["prompts"][0]["tokens"] == ["<bos>", "a", "b"]


def test_an_unloadable_sae_fails_the_job_with_its_code(runtime: WorkerRuntime) -> None:
    record = execute_job(runtime, "sae_features", submit(runtime, {**BODY, "sae": "absent"}))
    assert record is not None and record.status == "failed" and record.error is not None
    assert (record.error.code, record.error.field) == ("invalid_sae", "sae")
