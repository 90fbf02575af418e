"""``method: "path"`` of the patching kind: the spec becomes the core's path request, the result keeps the grid."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from tests.unit.workers.core.patching.conftest import CLEAN, CORRUPTED
from workers.core.hooked_model import HookedModel
from workers.core.patching import PatchingRequest, PathPatchingRequest, run_path_patching
from workers.kinds import result_of
from workers.kinds.patching import PatchingResult, PatchingSpec

PATH = {
    "kind": "patching",
    "model": "tiny-gpt2",
    "clean_prompt": CLEAN,
    "corrupted_prompt": CORRUPTED,
    "answer": "b",
    "wrong_answer": "a",
    "method": "path",
    "direction": "noise",
    "receivers": [[2, 1], [2, 3]],
    "senders": [[0, 1], [1, 2], [2, 0]],
    "receiver_inputs": ["q", "v"],
    "freeze_mlps": True,
}


def _nan_as_none(values: torch.Tensor) -> list[list[float | None]]:
    return [[None if math.isnan(v) else v for v in row] for row in values.tolist()]


def test_the_spec_becomes_the_core_path_request() -> None:
    request = PatchingSpec.model_validate(PATH).to_request()
    assert request == PathPatchingRequest(
        clean_prompt=CLEAN,
        corrupted_prompt=CORRUPTED,
        answer="b",
        wrong_answer="a",
        metric="logit_diff",
        receivers=((2, 1), (2, 3)),
        senders=((0, 1), (1, 2), (2, 0)),
        receiver_inputs=("q", "v"),
        direction="noise",
        freeze_mlps=True,
    )


def test_leaving_senders_out_sweeps_every_head_and_inputs_default_to_qkv() -> None:
    body = {k: v for k, v in PATH.items() if k not in ("senders", "receiver_inputs", "freeze_mlps")}
    request = PatchingSpec.model_validate(body).to_request()
    assert isinstance(request, PathPatchingRequest)
    assert (request.senders, request.receiver_inputs, request.freeze_mlps) == (None, ("q", "k", "v"), False)
    assert isinstance(PatchingSpec.model_validate({**body, "method": "exact", "receivers": None}).to_request(),
                      PatchingRequest)


@pytest.mark.parametrize(
    "change",
    [
        {"receivers": None},
        {"method": "exact"},
        {"receivers": [[1]]},
        {"receiver_inputs": ["z"]},
        {"receiver_inputs": []},
    ],
)
def test_inconsistent_path_specs_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PatchingSpec.model_validate({**PATH, **change})


def test_the_result_carries_the_sender_grid_and_the_joint_effect(gpt2: HookedModel) -> None:
    core = run_path_patching(gpt2, PatchingSpec.model_validate(PATH).to_request())  # type: ignore[arg-type]
    result = PatchingResult.model_validate(core)

    assert (result.method, result.direction, result.metric) == ("path", "noise", "logit_diff")
    assert result.tokens == list(core.tokens) and result.corrupted_tokens == list(core.corrupted_tokens)
    assert (result.clean_metric, result.corrupted_metric) == (core.clean_metric, core.corrupted_metric)
    assert list(result.targets) == ["senders"]
    grid = result.targets["senders"]
    assert grid.axes == ["layer", "head"]
    assert grid.labels == {"layer": [0, 1, 2], "head": [0, 1, 2, 3]}
    assert grid.normalised is True and result.normalised is True
    assert grid.raw_values == _nan_as_none(core.senders.raw)
    assert core.senders.normalised is not None
    assert grid.values == _nan_as_none(core.senders.normalised)
    swept = {(0, 1), (1, 2), (2, 0)}
    for layer in range(3):
        for head in range(4):
            assert (grid.values[layer][head] is not None) == ((layer, head) in swept)
    assert grid.raw_values[2][0] == core.clean_metric  # at the receivers' layer: no path, the base metric exactly

    assert result.path is not None
    assert result.path.receivers == [[2, 1], [2, 3]]
    assert result.path.receiver_inputs == ["q", "v"]
    assert result.path.joint.raw_value == core.joint.raw_value
    assert result.path.joint.value == core.joint.value
    assert result.path.joint.value is not None
    assert core.joint.raw_value != core.clean_metric

    stored = result.model_dump(mode="json")  # what the job record holds, read back as the API serves it
    assert result_of("patching", stored) == result
    assert stored["targets"]["senders"]["values"][0][0] is None
