"""The ``attention`` kind: patterns equal TransformerLens's ``hook_pattern``; summaries equal their formulas."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from tests.factories import TL_FAMILIES
from tests.oracles.transformer_lens_oracle import hooked_transformer_from_hf
from tests.unit.workers.core.patching.conftest import tiny_hooked
from tests.unit.workers.kinds.conftest import MODEL, submit
from tests.unit.workers.kinds.test_activations import context
from workers.core.errors import CoreError
from workers.core.hooked_model import HookedModel
from workers.kinds.attention import AttentionResult, AttentionSpec, run
from workers.runtime import WorkerRuntime
from workers.tasks import execute_job

TOLERANCE = 1e-5
"""Absolute: attention weights lie in [0, 1]; float32 implementations agree to ~1e-7."""


@pytest.fixture(scope="module", params=TL_FAMILIES)
def tl_pair(request: pytest.FixtureRequest) -> Iterator[tuple[HookedModel, Any]]:
    model = tiny_hooked(request.param)
    yield model, hooked_transformer_from_hf(model.model)


def _entropy(row: list[float]) -> float:
    return -sum(p * math.log(p) for p in row if p > 0)


def test_patterns_and_summaries(tl_pair: tuple[HookedModel, Any]) -> None:
    model, tl = tl_pair
    prompt = "the cat sat"
    spec = AttentionSpec.model_validate({"model": "m", "prompt": prompt, "layers": [2, 0], "heads": [3, 1]})
    result = run(context(model), spec)
    tokens = model.tokenize(prompt)
    n = tokens.shape[1]
    _, cache = tl.run_with_cache(tokens)
    grid = result.patterns
    assert grid.axes == ["layer", "head", "query_position", "key_position"]
    assert grid.labels["layer"] == [2, 0] and grid.labels["head"] == [3, 1]
    assert grid.labels["query_position"] == grid.labels["key_position"] == result.tokens == model.token_strings(tokens)
    assert result.entropy is not None and result.bos_attention is not None
    assert result.previous_token_attention is not None
    for i, layer in enumerate([2, 0]):
        for j, head in enumerate([3, 1]):
            want = cache[f"blocks.{layer}.attn.hook_pattern"][0, head]
            got = torch.tensor(grid.values[i][j])
            assert (got - want).abs().max().item() < TOLERANCE
            rows = want.tolist()
            entropy = sum(_entropy(r) for r in rows) / n
            bos = sum(r[0] for r in rows) / n
            previous = sum(rows[q][q - 1] for q in range(1, n)) / (n - 1)
            assert result.entropy.values[i][j] == pytest.approx(entropy, abs=1e-5)
            assert result.bos_attention.values[i][j] == pytest.approx(bos, abs=1e-6)
            assert result.previous_token_attention.values[i][j] == pytest.approx(previous, abs=1e-6)
    assert result.entropy.units == "nats" and result.entropy.axes == ["layer", "head"]


def test_one_token_has_no_previous_token_and_summaries_are_optional() -> None:
    model = tiny_hooked("gpt2")
    one = run(context(model), AttentionSpec.model_validate({"model": "m", "prompt": "a", "layers": [0]}))
    tokens = model.tokenize("a")
    assert tokens.shape[1] == 2  # BOS and "a"
    assert one.previous_token_attention is not None
    without = run(context(model), AttentionSpec.model_validate({"model": "m", "prompt": "a", "summaries": False}))
    assert without.entropy is None and without.bos_attention is None and without.previous_token_attention is None
    assert len(without.patterns.values) == 3 and len(without.patterns.values[0]) == 4


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"layers": [2]}, "out_of_range", "layers"),
        ({"heads": [4]}, "out_of_range", "heads"),
        ({"prompt": "x" * 100}, "prompt_too_long", "prompt"),
    ],
)
def test_bad_requests(runtime: WorkerRuntime, change: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(CoreError) as info:
        AttentionSpec.model_validate({"model": MODEL, "prompt": "ab", **change}).check(runtime.view(MODEL))
    assert (info.value.code, info.value.field) == (code, field)


def test_a_job_through_the_worker(runtime: WorkerRuntime) -> None:
    record = execute_job(runtime, "attention", submit(runtime, {"kind": "attention", "model": MODEL, "prompt": "ab"}))
    assert record is not None and record.status == "succeeded", record.error
    result = AttentionResult.model_validate(record.result)
    assert result.tokens == ["<bos>", "a", "b"]
    model = runtime.model(MODEL)
    want = model.run(model.tokenize("ab"), cache=["blocks.1.attn.hook_pattern"]).cache["blocks.1.attn.hook_pattern"]
    assert (torch.tensor(result.patterns.values[1]) - want[0]).abs().max().item() < 1e-6
