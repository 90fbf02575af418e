"""Bad input raises CoreErrors naming the field; results are JSON; progress and cancellation work between chunks."""

from __future__ import annotations

import json

import pytest
import torch

from tests.unit.workers.core.attribution.conftest import CONTRAST, PROMPT, hooked
from workers.core.attribution import (
    MAX_N_STEPS,
    METHODS,
    AttributionOptions,
    AttributionRequest,
    TargetSpec,
    run_attribution,
)
from workers.core.errors import CoreError, InvalidRequestError, JobCancelledError, PromptError
from workers.core.hooked_model import HookedModel


def _request(
    method: str = "integrated_gradients", target: TargetSpec | None = None, **options: object
) -> AttributionRequest:
    spec = target or TargetSpec(contrast=CONTRAST)
    return AttributionRequest(PROMPT, spec, method, AttributionOptions(**options))  # type: ignore[arg-type]


def _error(model: HookedModel, request: AttributionRequest) -> CoreError:
    with pytest.raises(CoreError) as error:
        run_attribution(model, request)
    return error.value


def test_unknown_method_lists_the_valid_ones(gpt2: HookedModel) -> None:
    error = _error(gpt2, _request("shapley"))
    assert error.field == "method"
    assert all(method in error.message for method in METHODS)


def test_multi_token_target_names_its_pieces(gpt2: HookedModel) -> None:
    error = _error(gpt2, _request(target=TargetSpec(token="ab")))
    assert isinstance(error, InvalidRequestError)
    assert error.field == "target.token"
    assert "['a', 'b']" in error.message
    assert _error(gpt2, _request(target=TargetSpec(contrast=("a", "xy")))).field == "target.contrast"
    assert _error(gpt2, _request(target=TargetSpec(contrast=("a", "a")))).field == "target.contrast"
    assert _error(gpt2, _request(target=TargetSpec())).field == "target"


@pytest.mark.parametrize("position", [len(PROMPT) + 1, -(len(PROMPT) + 2)])
def test_position_out_of_range(gpt2: HookedModel, position: int) -> None:
    """The prompt is len(PROMPT) bytes plus BOS: positions 0..len(PROMPT) and −1..−(len(PROMPT) + 1)."""
    error = _error(gpt2, _request(target=TargetSpec(token="a", position=position)))
    assert error.field == "target.position"
    assert f"{len(PROMPT) + 1} tokens" in error.message


def test_negative_position_counts_from_the_end(gpt2: HookedModel) -> None:
    result = run_attribution(gpt2, _request("saliency", target=TargetSpec(token="a", position=-2)))
    assert result.target.position == len(PROMPT) - 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_steps": 0}, "options.n_steps"),
        ({"n_steps": MAX_N_STEPS + 1}, "options.n_steps"),
        ({"n_steps": 1, "step_rule": "riemann_trapezoid"}, "options.n_steps"),
        ({"step_rule": "simpson"}, "options.step_rule"),
        ({"baseline": "noise"}, "options.baseline"),
        ({"internal_batch_size": 0}, "options.internal_batch_size"),
        ({"top_k": 0}, "options.top_k"),
    ],
)
def test_bad_options(gpt2: HookedModel, options: dict[str, object], field: str) -> None:
    error = _error(gpt2, _request(**options))
    assert isinstance(error, InvalidRequestError)
    assert error.field == field


def test_layer_methods_need_a_hook(gpt2: HookedModel) -> None:
    assert _error(gpt2, _request("layer_integrated_gradients")).field == "options.hook"
    assert _error(gpt2, _request("gradient_x_activation", hook="blocks.0.hook_nothing")).field == "options.hook"


def test_empty_prompt(gpt2: HookedModel) -> None:
    request = AttributionRequest("", TargetSpec(token="a"), "saliency")
    assert isinstance(_error(gpt2, request), PromptError)


def test_half_precision_refuses_gradients_and_warns_otherwise() -> None:
    model = hooked("gpt2")
    model.model.to(torch.bfloat16)
    error = _error(model, _request("integrated_gradients"))
    assert (error.field, error.code) == ("model", "unreliable_dtype")
    assert "bfloat16" in error.message
    lens = run_attribution(model, _request("logit_lens"))
    assert any("bfloat16" in warning for warning in lens.warnings)
    assert lens.lens[-1].value == pytest.approx(lens.target.value, abs=1e-6)
    dla = run_attribution(model, _request("direct_logit_attribution"))
    assert any("bfloat16" in warning for warning in dla.warnings)
    assert dla.decomposition is not None
    # bfloat16 keeps about 3 significant digits; the decomposition itself is computed in float32
    assert abs(dla.decomposition.residual_error) < 0.02 * max(1.0, abs(dla.target.value))  # measured 0.006 of 1.96


def test_result_is_json_with_tokens_target_and_checks(gpt2: HookedModel) -> None:
    result = run_attribution(gpt2, _request(n_steps=8, baseline="pad"))
    wire = json.loads(json.dumps(result.to_dict()))
    assert wire["schema_version"] == 1
    assert wire["method"] == "integrated_gradients"
    assert wire["tokens"] == ["<bos>", *PROMPT]
    assert len(wire["scores"]) == len(wire["tokens"])
    assert wire["target"]["token_ids"] == [gpt2.token_id(t) for t in CONTRAST]
    assert wire["target"]["value"] == pytest.approx(result.target.value)
    completeness = wire["checks"]["completeness"]
    assert completeness["attribution_sum"] == pytest.approx(sum(wire["scores"]), abs=1e-5)
    assert completeness["expected"] == pytest.approx(completeness["input_value"] - completeness["baseline_value"])
    dla = json.loads(json.dumps(run_attribution(gpt2, _request("direct_logit_attribution")).to_dict()))
    components = dla["grids"]["components"]
    assert components["axes"] == ["component"]
    assert len(components["labels"]["component"]) == len(components["values"])
    assert "residual_error" in dla["checks"]["decomposition"]


def test_progress_is_reported_per_batch_of_steps(gpt2: HookedModel) -> None:
    seen: list[float] = []
    run_attribution(gpt2, _request(n_steps=10, internal_batch_size=4), progress=seen.append)
    assert seen == pytest.approx([0.4, 0.8, 1.0])


def test_cancellation_stops_between_batches_and_leaves_no_hook(gpt2: HookedModel) -> None:
    polls: list[int] = []

    def cancel_on_second_batch() -> bool:
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(JobCancelledError):
        run_attribution(gpt2, _request(n_steps=10, internal_batch_size=4), should_cancel=cancel_on_second_batch)
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in gpt2.model.modules())
    assert hooks == 0


def test_gradient_methods_work_when_the_caller_disabled_grad(gpt2: HookedModel) -> None:
    """Workers may run with autograd off globally; the gradient methods switch it on for themselves."""
    expected = run_attribution(gpt2, _request(n_steps=8))
    with torch.no_grad():
        result = run_attribution(gpt2, _request(n_steps=8))
        saliency = run_attribution(gpt2, _request("saliency"))
    assert result.scores is not None and expected.scores is not None and saliency.scores is not None
    torch.testing.assert_close(result.scores, expected.scores)
    assert float(saliency.scores.abs().max()) > 0
