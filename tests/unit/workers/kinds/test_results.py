"""Each kind's wire result, built from a real core result on a tiny seeded model, carries every core field.

:func:`tests.carried.assert_carried` walks the core's own dataclass fields (not the wire model's), so a field the
wire drops fails here; in-process the values must be exact. Tensors arrive as nested lists with NaN as null, and
every result survives a JSON round trip. Each spec's ``to_request()`` carries every field, compared field by
field with a core request written by hand.
"""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.carried import assert_carried
from tests.factories import tiny_model
from tests.unit.workers.core.sae.tiny import HOOK, tiny_hooked, tiny_sae
from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.core.byte_tokenizer import make_byte_tokenizer
from workers.core.hooked_model import HookedModel
from workers.core.patching import PatchingRequest, PathPatchingRequest, run_patching, run_path_patching
from workers.core.sae import SaeEncodeRequest, encode_sae
from workers.core.sae.autoencoder import Sae
from workers.core.steering import SteerRequest, steer
from workers.kinds.attribution import AttributionResult, AttributionSpec
from workers.kinds.base import SCHEMA_VERSION, JobSpecBase, ResultBase
from workers.kinds.patching import PatchingResult, PatchingSpec
from workers.kinds.sae_encode import SaeEncodeResult, SaeEncodeSpec
from workers.kinds.steer import SteerResult, SteerSpec

PROMPT = "the cat sat"
CLEAN, CORRUPTED = "ab b:", "ab a:"  # six tokens with BOS, differing at position 4


def assert_round_trips(result: ResultBase) -> dict[str, Any]:
    """Dumped to JSON text and read back, the result is the same object; returns the JSON form."""
    data: dict[str, Any] = json.loads(json.dumps(result.model_dump(mode="json"), allow_nan=False))
    assert type(result).model_validate(data) == result
    assert data["schema_version"] == SCHEMA_VERSION
    return data


@pytest.fixture(scope="module")
def gpt2() -> HookedModel:
    return HookedModel(tiny_model("gpt2"), make_byte_tokenizer(), model_id="tiny-gpt2")


@pytest.fixture(scope="module")
def sae_model() -> HookedModel:
    return tiny_hooked("gpt2")


@pytest.fixture
def sae(tmp_path: Path, sae_model: HookedModel) -> Sae:
    return tiny_sae(tmp_path, sae_model, "topk", k=8)


def _attribution(model: HookedModel, method: str, **options: Any) -> Any:
    request = AttributionRequest(PROMPT, TargetSpec(contrast=("a", "b")), method, AttributionOptions(**options))
    return run_attribution(model, request)


# -- results -------------------------------------------------------------------------------------------------


def test_integrated_gradients_result_carries_scores_target_and_completeness(gpt2: HookedModel) -> None:
    core = _attribution(gpt2, "integrated_gradients", n_steps=8)
    wire = AttributionResult.model_validate(core)
    assert_carried(wire, core)
    assert core.completeness is not None and wire.checks.completeness is not None
    assert wire.checks.completeness.expected == core.completeness.expected
    assert wire.tokens == ["<bos>", *PROMPT] and wire.model == "tiny-gpt2"
    assert wire.scores is not None and len(wire.scores) == len(wire.tokens)
    assert wire.options == {"n_steps": 8, "step_rule": "gausslegendre", "baseline": "pad", "internal_batch_size": None}
    data = assert_round_trips(wire)
    assert data["checks"]["decomposition"] is None and data["grids"] == {} and data["logit_lens"] == []


def test_direct_logit_attribution_result_carries_its_grid_and_decomposition(gpt2: HookedModel) -> None:
    core = _attribution(gpt2, "direct_logit_attribution")
    wire = AttributionResult.model_validate(core)
    assert_carried(wire, core)
    assert core.decomposition is not None and wire.checks.decomposition is not None
    assert wire.checks.decomposition.residual_error == core.decomposition.residual_error
    data = assert_round_trips(wire)
    components = data["grids"]["components"]
    assert components["axes"] == ["component"]
    assert len(components["labels"]["component"]) == len(components["values"]) > 0
    assert {grid["units"] for grid in data["grids"].values()} == {"direct contribution to the target logit"}
    assert data["checks"]["completeness"] is None


def test_logit_lens_and_per_head_layer_results_carry_every_layer_and_axis(gpt2: HookedModel) -> None:
    lens = _attribution(gpt2, "logit_lens", top_k=3)
    wire = AttributionResult.model_validate(lens)
    assert_carried(wire, lens)
    assert len(wire.logit_lens) == len(lens.lens) > 0 and len(wire.logit_lens[0].top_k) == 3
    assert_round_trips(wire)
    pattern = _attribution(gpt2, "gradient_x_activation", hook="blocks.1.attn.hook_pattern")
    wire = AttributionResult.model_validate(pattern)
    assert_carried(wire, pattern)
    grid = assert_round_trips(wire)["grids"]["attribution"]
    n = len(pattern.tokens)
    assert grid["axes"] == ["head", "query_position", "key_position"]
    assert (len(grid["values"]), len(grid["values"][0]), len(grid["values"][0][0])) == (4, n, n)


def test_patching_sweep_result_carries_every_grid_by_name(gpt2: HookedModel) -> None:
    request = PatchingRequest(CLEAN, CORRUPTED, "b", wrong_answer="a", targets=("resid_pre", "head_out", "every_block"))
    core = run_patching(gpt2, request)
    wire = PatchingResult.model_validate(core)
    assert list(wire.targets) == ["resid_pre", "head_out", "every_block"]
    assert_carried(wire, core)
    assert wire.normalised is True and wire.path is None
    data = assert_round_trips(wire)
    block = data["targets"]["every_block"]
    assert block["axes"] == ["component", "layer", "position"]
    assert block["labels"]["position"][0] == "0: <bos>"
    assert data["targets"]["head_out"]["labels"]["head"] == [0, 1, 2, 3]
    # What a chart titles its colour bar with: the normalised effect on the metric, and the metric itself.
    assert block["raw_units"] == "logit difference (answer − wrong answer)"
    assert block["units"].startswith("normalised effect on the logit difference")


def test_patching_with_equal_prompts_sends_the_raw_metric_and_says_so(gpt2: HookedModel) -> None:
    core = run_patching(gpt2, PatchingRequest(CLEAN, CLEAN, "b", wrong_answer="a"))
    wire = PatchingResult.model_validate(core)
    assert_carried(wire, core)
    data = assert_round_trips(wire)
    assert data["normalised"] is False and data["targets"]["resid_pre"]["normalised"] is False
    assert data["targets"]["resid_pre"]["values"] == data["targets"]["resid_pre"]["raw_values"]
    assert data["targets"]["resid_pre"]["units"] == data["targets"]["resid_pre"]["raw_units"]
    assert "undefined" in data["warnings"][0]


def test_path_patching_result_sends_unswept_senders_as_null(gpt2: HookedModel) -> None:
    senders = ((0, 1), (1, 0))
    request = PathPatchingRequest(CLEAN, CORRUPTED, "b", wrong_answer="a", receivers=((1, 2),), senders=senders)
    core = run_path_patching(gpt2, request)
    wire = PatchingResult.model_validate(core)
    assert_carried(wire, core)
    grid = assert_round_trips(wire)["targets"]["senders"]
    assert grid["values"][0][0] is None and grid["raw_values"][0][0] is None  # (0, 0) was not swept
    assert isinstance(grid["values"][0][1], float)
    data = wire.model_dump(mode="json")
    assert data["path"]["receivers"] == [[1, 2]] and data["path"]["receiver_inputs"] == ["q", "k", "v"]
    assert data["method"] == "path"


def test_sae_encode_result_carries_every_prompt_feature_and_figure(sae_model: HookedModel, sae: Sae) -> None:
    request = SaeEncodeRequest(prompts=("hello world", "abc"), top_k=3, include_loss=True)
    core = encode_sae(sae_model, sae, request)
    wire = SaeEncodeResult.model_validate(core)
    assert_carried(wire, core)
    assert wire.loss is not None and wire.prompts[1].loss is not None
    data = assert_round_trips(wire)
    first = data["prompts"][0]
    assert first["tokens"] == ["<bos>", *"hello world"]
    assert set(first["features"][1][0]) == {"feature", "activation"}
    assert (data["sae"], data["hook"], data["top_k"]) == ("rand", HOOK, 3)


def test_steer_result_carries_both_generations(sae_model: HookedModel, sae: Sae) -> None:
    core = steer(sae_model, sae, SteerRequest(prompt="hello", feature=3, coefficient=40.0, max_new_tokens=4))
    wire = SteerResult.model_validate(core)
    assert_carried(wire, core)
    data = assert_round_trips(wire)
    assert data["tokens"] == ["<bos>", *"hello"] and len(data["steered_tokens"]) == 4
    assert data["clamp"] is None


# -- specs to core requests ----------------------------------------------------------------------------------

NOT_IN_THE_REQUEST = {"kind", "model", "callback_url", "sae"}
"""Spec fields the runner uses itself: the kind's table entry, the loaded model and SAE, the webhook."""


def assert_request_carries(spec: JobSpecBase, expected: Any, *, not_applicable: AbstractSet[str] = frozenset()) -> None:
    """``spec`` sets every field it has (so a field ``to_request`` forgot would show), and its core request
    equals ``expected`` field by field."""
    carried = set(type(spec).model_fields) - NOT_IN_THE_REQUEST - not_applicable
    for name in sorted(carried):
        default = type(spec).model_fields[name].get_default(call_default_factory=True)
        assert getattr(spec, name) != default, f"set {name} to a non-default value so the test can see it"
    got = spec.to_request()  # type: ignore[attr-defined]
    assert type(got) is type(expected)
    for f in fields(expected):
        assert getattr(got, f.name) == getattr(expected, f.name), f.name


def test_attribution_spec_carries_every_field() -> None:
    spec = AttributionSpec.model_validate(
        {"model": "m", "prompt": PROMPT, "target": {"contrast": ["a", "b"]}, "target_kind": "logprob",
         "position": -2, "method": "layer_integrated_gradients", "n_steps": 7, "step_rule": "riemann_left",
         "baseline": "zero", "internal_batch_size": 3, "hook": "blocks.1.hook_resid_pre", "top_k": 4,
         "max_relative_error": 0.05, "max_steps": 64}
    )
    options = AttributionOptions(
        n_steps=7, step_rule="riemann_left", baseline="zero", internal_batch_size=3, hook="blocks.1.hook_resid_pre",
        top_k=4, max_relative_error=0.05, max_steps=64,
    )
    target = TargetSpec(contrast=("a", "b"), kind="logprob", position=-2)
    assert_request_carries(spec, AttributionRequest(PROMPT, target, "layer_integrated_gradients", options))
    token = AttributionSpec.model_validate({"model": "m", "prompt": PROMPT, "target": {"token": "a"}})
    assert token.to_request().target == TargetSpec(token="a")


def test_patching_specs_carry_every_field() -> None:
    sweep = PatchingSpec.model_validate(
        {"model": "m", "clean_prompt": CLEAN, "corrupted_prompt": CORRUPTED, "answer": "b", "wrong_answer": "a",
         "metric": "logprob", "targets": ["head_out", "mlp_out"], "method": "attribution", "direction": "noise",
         "layers": [1, 0], "positions": [4]}
    )
    expected = PatchingRequest(
        CLEAN, CORRUPTED, "b", wrong_answer="a", metric="logprob", targets=("head_out", "mlp_out"),
        method="attribution", direction="noise", layers=(1, 0), positions=(4,),
    )
    assert_request_carries(sweep, expected, not_applicable={"receivers", "senders", "receiver_inputs", "freeze_mlps",
                                                            "together"})
    joint = PatchingSpec.model_validate(
        {"model": "m", "clean_prompt": CLEAN, "corrupted_prompt": CORRUPTED, "answer": "b", "metric": "logprob",
         "targets": [], "direction": "noise", "positions": [4, 2], "together": [[1, 0], [0, 3]]}
    )
    expected_joint = PatchingRequest(CLEAN, CORRUPTED, "b", metric="logprob", targets=(), direction="noise",
                                     positions=(4, 2), together=((1, 0), (0, 3)))
    assert_request_carries(joint, expected_joint, not_applicable={"receivers", "senders", "receiver_inputs",
                                                                  "freeze_mlps", "layers", "wrong_answer",
                                                                  "method"})
    path = PatchingSpec.model_validate(
        {"model": "m", "clean_prompt": CLEAN, "corrupted_prompt": CORRUPTED, "answer": "b", "wrong_answer": "a",
         "metric": "logprob", "method": "path", "direction": "noise", "receivers": [[1, 2], [2, 0]],
         "senders": [[0, 1]], "receiver_inputs": ["v"], "freeze_mlps": True}
    )
    expected_path = PathPatchingRequest(
        CLEAN, CORRUPTED, "b", receivers=((1, 2), (2, 0)), wrong_answer="a", metric="logprob",
        receiver_inputs=("v",), senders=((0, 1),), direction="noise", freeze_mlps=True,
    )
    assert_request_carries(path, expected_path, not_applicable={"targets", "layers", "positions", "together"})


def test_sae_encode_spec_carries_every_field() -> None:
    spec = SaeEncodeSpec.model_validate(
        {"model": "m", "sae": "s", "prompts": ["one", "two"], "top_k": 3, "include_loss": True, "exclude_bos": False}
    )
    expected = SaeEncodeRequest(prompts=("one", "two"), top_k=3, include_loss=True, exclude_bos=False)
    assert_request_carries(spec, expected, not_applicable={"prompt"})
    single = SaeEncodeSpec.model_validate({"model": "m", "sae": "s", "prompt": "one"})
    assert single.to_request().prompts == ("one",)


def test_steer_spec_carries_every_field() -> None:
    spec = SteerSpec.model_validate(
        {"model": "m", "sae": "s", "prompt": "hi", "feature": 5, "coefficient": 2.5, "clamp": 3.0,
         "max_new_tokens": 7, "temperature": 0.5, "seed": 9}
    )
    expected = SteerRequest(prompt="hi", feature=5, coefficient=2.5, clamp=3.0, max_new_tokens=7, temperature=0.5,
                            seed=9)
    assert_request_carries(spec, expected)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            AttributionSpec(model="m", prompt=PROMPT, target={"token": "a"}),  # type: ignore[arg-type]
            AttributionRequest(PROMPT, TargetSpec(token="a"), "integrated_gradients"),
        ),
        (
            PatchingSpec(model="m", clean_prompt=CLEAN, corrupted_prompt=CORRUPTED, answer="b", wrong_answer="a"),
            PatchingRequest(CLEAN, CORRUPTED, "b", wrong_answer="a"),
        ),
        (
            PatchingSpec(model="m", clean_prompt=CLEAN, corrupted_prompt=CORRUPTED, answer="b", wrong_answer="a",
                         method="path", receivers=[[1, 2]]),
            PathPatchingRequest(CLEAN, CORRUPTED, "b", wrong_answer="a", receivers=((1, 2),)),
        ),
        (SaeEncodeSpec(model="m", sae="s", prompt="one"), SaeEncodeRequest(prompts=("one",))),
        (SteerSpec(model="m", sae="s", prompt="hi", feature=1), SteerRequest(prompt="hi", feature=1)),
    ],
    ids=["attribution", "patching", "path_patching", "sae_encode", "steer"],
)
def test_spec_defaults_are_the_core_defaults(spec: BaseModel, expected: Any) -> None:
    """A spec with only its required fields asks the core for what a core request with only those fields does."""
    assert spec.to_request() == expected  # type: ignore[attr-defined]
