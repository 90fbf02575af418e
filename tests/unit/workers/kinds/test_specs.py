"""The wire specs own the limits: out-of-range options are refused at validation, naming the field.

The core checks only what would make a computation wrong (tests/unit/workers/core/…); the ranges are here, and
the names the spec accepts are exactly the ones the core computes.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from service.errors import invalid_request_from
from workers.core.attribution import METHODS
from workers.core.attribution.request import BASELINES, STEP_RULES
from workers.kinds.attribution import ATTRIBUTION_METHODS, AttributionSpec
from workers.kinds.sae_encode import SaeEncodeSpec
from workers.kinds.sae_prompts import MAX_PROMPTS
from workers.kinds.steer import SteerSpec

ATTRIBUTION = {"model": "m", "prompt": "the cat", "target": {"token": "a"}}
SAE_ENCODE = {"model": "m", "sae": "s", "prompt": "the cat"}
STEER = {"model": "m", "sae": "s", "prompt": "the cat", "feature": 1}


def _refused_field(spec: type[BaseModel], body: dict[str, Any]) -> str:
    """The field the wire error names (a union field's member tag left out, as the service reports it)."""
    with pytest.raises(ValidationError) as caught:
        spec.model_validate(body)
    return str(invalid_request_from(caught.value).field)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 513}, "n_steps"),
        ({"internal_batch_size": 0}, "internal_batch_size"),
        ({"internal_batch_size": 513}, "internal_batch_size"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 101}, "top_k"),
        ({"position": 4097}, "position"),
        ({"baseline": "noise"}, "baseline"),
        ({"step_rule": "simpson"}, "step_rule"),
        ({"method": "shapley"}, "method"),
    ],
)
def test_attribution_limits(changes: dict[str, Any], field: str) -> None:
    assert _refused_field(AttributionSpec, {**ATTRIBUTION, **changes}) == field


def test_attribution_limits_admit_their_bounds() -> None:
    spec = AttributionSpec.model_validate({**ATTRIBUTION, "n_steps": 512, "internal_batch_size": 512, "top_k": 100})
    assert (spec.n_steps, spec.internal_batch_size, spec.top_k) == (512, 512, 100)


def test_attribution_names_are_the_cores() -> None:
    """Methods, step rules and baselines: the spec's Literals list exactly what the core computes."""
    assert ATTRIBUTION_METHODS == METHODS
    step_rule, none = get_args(AttributionSpec.model_fields["step_rule"].annotation)  # optional: absent picks one
    assert get_args(step_rule) == STEP_RULES and none is type(None)
    assert get_args(AttributionSpec.model_fields["baseline"].annotation) == BASELINES


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"temperature": 5.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 257}, "max_new_tokens"),
        ({"coefficient": 1e6}, "coefficient"),
        ({"seed": -1}, "seed"),
    ],
)
def test_steer_limits(changes: dict[str, Any], field: str) -> None:
    assert _refused_field(SteerSpec, {**STEER, **changes}) == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 1025}, "top_k"),
        ({"prompt": None, "prompts": ["x"] * (MAX_PROMPTS + 1)}, "prompts"),
        ({"prompt": None, "prompts": []}, "prompts"),
    ],
)
def test_sae_encode_limits(changes: dict[str, Any], field: str) -> None:
    assert _refused_field(SaeEncodeSpec, {**SAE_ENCODE, **changes}) == field
