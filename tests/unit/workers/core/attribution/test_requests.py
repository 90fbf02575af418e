"""Bad input raises CoreErrors naming the field; results carry tokens, target and checks; progress and
cancellation work between chunks. (Wire limits and the JSON form: tests/unit/workers/kinds.)"""

from __future__ import annotations

import pytest
import torch

from tests.unit.workers.core.attribution.conftest import CONTRAST, PROMPT, hooked
from workers.core.attribution import METHODS, AttributionOptions, AttributionRequest, TargetSpec, run_attribution
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
    assert METHODS == (
        "saliency",
        "input_x_gradient",
        "integrated_gradients",
        "layer_integrated_gradients",
        "gradient_x_activation",
        "direct_logit_attribution",
        "logit_lens",
    )


def test_defaults_are_the_documented_ones() -> None:
    """The core defaults to what the job spec documents: integrated gradients from the pad baseline."""
    options = AttributionOptions()
    assert (options.n_steps, options.step_rule, options.baseline, options.top_k) == (50, "gausslegendre", "pad", 10)
    assert TargetSpec(token="a").kind == "logit"


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
    assert (error.field, error.code) == ("position", "out_of_range")  # the job spec's field: clients see it
    assert f"{len(PROMPT) + 1} tokens" in error.message


def test_negative_position_counts_from_the_end(gpt2: HookedModel) -> None:
    result = run_attribution(gpt2, _request("saliency", target=TargetSpec(token="a", position=-2)))
    assert result.target.position == len(PROMPT) - 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_steps": 0}, "options.n_steps"),
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


def test_result_carries_tokens_target_and_checks(gpt2: HookedModel) -> None:
    result = run_attribution(gpt2, _request(n_steps=8, baseline="pad"))
    assert result.method == "integrated_gradients"
    assert result.model_id == "tiny-gpt2"
    assert result.tokens == ("<bos>", *PROMPT)
    assert result.token_ids == tuple(gpt2.tokenize(PROMPT)[0].tolist())
    assert result.scores is not None and tuple(result.scores.shape) == (len(result.tokens),)
    assert result.target.token_ids == tuple(gpt2.token_id(t) for t in CONTRAST)
    assert result.target.tokens == CONTRAST
    assert dict(result.options) == {
        "n_steps": 8, "step_rule": "gausslegendre", "baseline": "pad", "internal_batch_size": None
    }
    completeness = result.completeness
    assert completeness is not None and set(result.checks) == {"completeness"}
    assert completeness.attribution_sum == pytest.approx(float(result.scores.sum()), abs=1e-5)
    assert completeness.expected == completeness.input_value - completeness.baseline_value
    assert completeness.input_value == pytest.approx(result.target.value, abs=1e-6)
    dla = run_attribution(gpt2, _request("direct_logit_attribution"))
    components = dla.grids["components"]
    assert components.axes == ("component",)
    assert len(components.labels["component"]) == components.values.numel()
    assert dla.decomposition is not None and set(dla.checks) == {"decomposition"}
    assert dla.decomposition.residual_error == dla.decomposition.target_value - dla.decomposition.component_sum


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
