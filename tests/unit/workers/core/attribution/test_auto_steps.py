"""``n_steps: "auto"``: steps grow until completeness is within tolerance, nesting rules reuse their points."""

from __future__ import annotations

import itertools

import pytest
import torch
from pydantic import ValidationError

from tests.unit.workers.core.attribution.conftest import CONTRAST, PROMPT, hooked
from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.core.attribution.quadrature import auto_schedule, new_points, quadrature
from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel
from workers.kinds.attribution import AttributionSpec


@pytest.fixture(scope="module")
def gemma3() -> HookedModel:
    return hooked("gemma3")


def _run(model: HookedModel, method: str = "integrated_gradients", **options: object):  # type: ignore[no-untyped-def]
    request = AttributionRequest(PROMPT, TargetSpec(contrast=CONTRAST), method, AttributionOptions(**options))  # type: ignore[arg-type]
    return run_attribution(model, request)


def test_auto_converges_where_fifty_steps_do_not(gemma3: HookedModel) -> None:
    fixed = _run(gemma3, n_steps=50, step_rule="riemann_right", baseline="bos")
    assert fixed.completeness is not None and fixed.completeness.relative_error > 0.01
    assert not fixed.completeness.converged and fixed.completeness.steps_used == 50
    auto = _run(gemma3, n_steps="auto", step_rule="riemann_right", baseline="bos")
    c = auto.completeness
    assert c is not None and c.converged and c.relative_error <= 0.01 == c.tolerance
    assert c.steps_used > 50 and c.steps_used in auto_schedule("riemann_right", 1024)
    assert c.evaluations == c.steps_used  # doubling reused every earlier point
    assert not any("did not converge" in w for w in auto.warnings)


@pytest.mark.parametrize("rule", ["riemann_middle", "riemann_trapezoid", "gausslegendre"])
def test_auto_equals_the_fixed_rule_at_the_steps_it_used(gemma3: HookedModel, rule: str) -> None:
    auto = _run(gemma3, n_steps="auto", step_rule=rule, baseline="pad", max_relative_error=1e-3)
    c = auto.completeness
    assert c is not None and c.converged and auto.scores is not None
    fixed = _run(gemma3, n_steps=c.steps_used, step_rule=rule, baseline="pad")
    assert fixed.scores is not None
    torch.testing.assert_close(auto.scores, fixed.scores, atol=1e-5, rtol=1e-4)
    sizes = auto_schedule(rule, 1024)
    used = sizes[: sizes.index(c.steps_used) + 1]
    assert c.evaluations == (c.steps_used if rule != "gausslegendre" else sum(used))


def test_a_tolerance_max_steps_cannot_meet_says_so(gemma3: HookedModel) -> None:
    result = _run(
        gemma3, n_steps="auto", step_rule="riemann_middle", baseline="pad", max_relative_error=1e-9, max_steps=30
    )
    c = result.completeness
    assert c is not None and not c.converged and c.relative_error > 1e-9
    assert c.steps_used == 27 == c.evaluations  # 9, then 27 (reusing the 9); 81 is over max_steps
    assert any("did not converge" in w and "27 steps" in w for w in result.warnings)


def test_layer_integrated_gradients_auto(gemma3: HookedModel) -> None:
    result = _run(
        gemma3,
        "layer_integrated_gradients",
        n_steps="auto",
        step_rule="riemann_middle",
        hook="blocks.1.hook_resid_pre",
        baseline="pad",
    )
    c = result.completeness
    assert c is not None and c.converged and c.steps_used in (9, 27, 81) and c.relative_error <= 0.01


def test_nested_rules_contain_their_previous_points() -> None:
    for rule, sizes in [("riemann_middle", [9, 27, 81]), ("riemann_trapezoid", [9, 17, 33]), ("riemann_left", [8, 16])]:
        assert auto_schedule(rule, 81 if rule == "riemann_middle" else 33 if rule != "riemann_left" else 16) == sizes
        for small, large in itertools.pairwise(sizes):
            fresh = new_points(quadrature(rule, large)[0], quadrature(rule, small)[0])
            assert int((~fresh).sum()) == small


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_relative_error": 0}, "max_relative_error"),
        ({"max_relative_error": -0.1}, "max_relative_error"),
        ({"max_steps": 1}, "max_steps"),
        ({"max_steps": 4096}, "max_steps"),
        ({"n_steps": "many"}, "n_steps"),
    ],
)
def test_bad_auto_options_name_their_field(change: dict[str, object], field: str) -> None:
    body = {"model": "m", "prompt": "x", "target": {"token": "a"}, "n_steps": "auto", **change}
    with pytest.raises(ValidationError) as info:
        AttributionSpec.model_validate(body)
    assert info.value.errors()[0]["loc"][0] == field


def test_the_core_refuses_what_the_spec_refuses(gemma3: HookedModel) -> None:
    for options, field in [
        ({"max_relative_error": 0.0}, "options.max_relative_error"),
        ({"max_steps": 1}, "options.max_steps"),
    ]:
        with pytest.raises(InvalidRequestError) as info:
            _run(gemma3, n_steps="auto", **options)
        assert info.value.field == field


def test_spec_defaults_auto_to_the_midpoint_rule() -> None:
    body = {"model": "m", "prompt": "x", "target": {"token": "a"}}
    assert AttributionSpec.model_validate(body).to_request().options.step_rule == "gausslegendre"
    auto = AttributionSpec.model_validate({**body, "n_steps": "auto"}).to_request().options
    assert (auto.n_steps, auto.step_rule, auto.max_relative_error, auto.max_steps) == (
        "auto",
        "riemann_middle",
        0.01,
        1024,
    )
