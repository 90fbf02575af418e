"""The ``head_scores`` kind: its spec's checks (codes and fields) and a job run through the worker runtime."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError

from tests.unit.workers.kinds.conftest import MODEL, submit
from workers.core.errors import CoreError
from workers.core.head_detection import HeadScoresRequest, head_scores
from workers.kinds import KINDS, job_spec_adapter
from workers.kinds.head_scores import HeadScoresResult, HeadScoresSpec
from workers.runtime import WorkerRuntime
from workers.tasks import execute_job

BODY: dict[str, Any] = {"kind": "head_scores", "model": MODEL, "prompts": ["ab ab", "xyzxyz"]}


def test_the_kind_is_in_the_table() -> None:
    assert KINDS["head_scores"].spec is HeadScoresSpec
    spec = job_spec_adapter.validate_python(BODY)
    assert isinstance(spec, HeadScoresSpec)
    assert (spec.exclude_bos, spec.exclude_current_token, spec.error_measure) == (False, False, "mul")
    assert spec.detectors == ["previous_token", "duplicate_token", "induction"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"repeated_random": {"length": 3}}, None),
        ({"prompts": None}, None),
        ({"detectors": [], "custom_patterns": {}}, None),
        ({"error_measure": "max"}, "error_measure"),
        ({"detectors": ["copying"]}, "detectors"),
        ({"prompts": None, "repeated_random": {"length": 0}}, "repeated_random"),
    ],
)
def test_malformed_specs_are_refused(change: dict[str, Any], field: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        HeadScoresSpec.model_validate({**BODY, **change})
    if field is not None:
        assert info.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"prompts": None, "repeated_random": {"length": 32}}, "out_of_range", "repeated_random.length"),
        ({"custom_patterns": {"p": [[1, 0], [0, 1]]}}, "shape_mismatch", "custom_patterns.p"),
        ({"custom_patterns": {"p": [[1, 0], [0]]}}, "shape_mismatch", "custom_patterns.p"),
        (
            {"prompts": ["ab"], "custom_patterns": {"p": [[1, 1, 0], [0, 1, 0], [0, 0, 1]]}},
            "invalid_request",
            "custom_patterns.p",
        ),
    ],
)
def test_checks_name_the_field(runtime: WorkerRuntime, change: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(CoreError) as info:
        HeadScoresSpec.model_validate({**BODY, **change}).check(runtime.view(MODEL))
    assert (info.value.code, info.value.field) == (code, field)
    HeadScoresSpec.model_validate({**BODY, "prompts": None, "repeated_random": {"length": 31}}).check(
        runtime.view(MODEL)
    )  # 63 tokens fit max_tokens 64


def test_a_prompts_job_is_the_core_mean(runtime: WorkerRuntime) -> None:
    record = execute_job(runtime, "head_scores", submit(runtime, {**BODY, "error_measure": "abs"}))
    assert record is not None and record.status == "succeeded", record.error
    result = HeadScoresResult.model_validate(record.result)
    model = runtime.model(MODEL)
    sequences = tuple(tuple(model.tokenize(p)[0].tolist()) for p in BODY["prompts"])
    want = head_scores(model, HeadScoresRequest(sequences=sequences, error_measure="abs"))
    assert result.token_ids == [list(s) for s in sequences] and result.tokens[0][0] == "<bos>"
    for grid in want.scores:
        got = result.scores[grid.name]
        assert got.axes == ["layer", "head"] and got.labels["layer"] == [0, 1] and len(got.labels["head"]) == 4
        torch.testing.assert_close(torch.tensor(got.values), grid.values, atol=1e-6, rtol=0)


def test_repeated_random_jobs_are_reproducible(runtime: WorkerRuntime) -> None:
    def tokens(seed: int) -> list[list[int]]:
        body = {
            **BODY,
            "prompts": None,
            "repeated_random": {"length": 6, "seed": seed, "batch": 2},
            "detectors": ["induction"],
            "custom_patterns": {"diag": torch.eye(13).tolist()},
        }
        record = execute_job(runtime, "head_scores", submit(runtime, body))
        assert record is not None and record.status == "succeeded", record.error
        result = HeadScoresResult.model_validate(record.result)
        assert set(result.scores) == {"induction", "diag"}
        return result.token_ids

    first = tokens(1)
    assert first == tokens(1) and first != tokens(2)
    assert all(len(s) == 13 and s[1:7] == s[7:] for s in first)
