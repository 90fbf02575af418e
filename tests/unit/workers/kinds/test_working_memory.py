"""One memory estimate: the API's submission figure and the core's patching chunks count a row the same way."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.unit.workers.kinds.conftest import MODEL
from workers.core.memory import forward_bytes, logits_bytes, row_bytes, steps_per_batch
from workers.core.patching.budget import DEFAULT_MEMORY_BUDGET, rows_per_chunk
from workers.kinds.attribution import AttributionSpec
from workers.kinds.patching import PatchingSpec
from workers.kinds.steer import SteerSpec
from workers.runtime import WorkerRuntime

PATCHING = {"kind": "patching", "model": MODEL, "clean_prompt": "ab b:", "corrupted_prompt": "ab a:",
            "answer": "b", "wrong_answer": "a"}


@dataclass(frozen=True)
class _Widths:
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    d_head: int
    d_vocab: int


def test_row_bytes_counts_the_tensors_of_one_layer() -> None:
    """The formula by hand for widths d_model 64, d_mlp 256, 4 heads of 16, 10 positions, float32."""
    widths = _Widths(n_layers=2, d_model=64, d_mlp=256, n_heads=4, d_head=16, d_vocab=259)
    per_position = 8 * 64 + 3 * 256 + 4 * 4 * 16 + 3 * 4 * 10
    assert row_bytes(widths, 10, 4) == 4 * 10 * per_position
    assert logits_bytes(widths, 10, 4) == 4 * 10 * 259
    assert forward_bytes(widths, 10, 4, kept_layers=2) == 2 * 4 * 10 * per_position + 4 * 10 * 259


def test_the_core_chunks_and_the_api_estimate_use_the_same_row(runtime: WorkerRuntime) -> None:
    model, view = runtime.model(MODEL), runtime.view(MODEL)
    n_pos = len(view.tokenize(PATCHING["clean_prompt"]))
    itemsize = model.dtype.itemsize
    assert itemsize == 4
    # The worker's model facts and the card the API reads give the same figure for one row ...
    row = row_bytes(view.card, n_pos, itemsize)
    assert row == row_bytes(model.facts, n_pos, itemsize)
    # ... which is what the core divides its chunk budget by ...
    assert rows_per_chunk(model.facts, n_pos, itemsize, DEFAULT_MEMORY_BUDGET) == DEFAULT_MEMORY_BUDGET // row
    assert rows_per_chunk(model.facts, n_pos, itemsize, 3 * row) == 3
    # ... and what the API counts for the patched row in flight, on top of the two cached runs.
    for method in ({}, {"method": "path", "receivers": [[1, 0]]}):
        spec = PatchingSpec.model_validate({**PATCHING, **method})
        cached = forward_bytes(view.card, n_pos, itemsize, kept_layers=view.card.n_layers)
        assert spec.working_memory(view) == 2 * cached + row


def test_other_kinds_count_in_the_same_units(runtime: WorkerRuntime) -> None:
    view = runtime.view(MODEL)
    card = view.card
    prompt = "hello there"
    n_pos = len(view.tokenize(prompt))
    kept = forward_bytes(card, n_pos, 4, kept_layers=card.n_layers)
    body = {"model": MODEL, "prompt": prompt, "target": {"token": "a"}}
    ig = AttributionSpec.model_validate({**body, "n_steps": 200})
    assert ig.working_memory(view) == 3 * kept * steps_per_batch(n_pos, None)
    assert steps_per_batch(n_pos, None) == 1024 // n_pos < 200
    few = AttributionSpec.model_validate({**body, "n_steps": 5})
    assert few.working_memory(view) == 3 * kept * 5
    assert AttributionSpec.model_validate({**body, "method": "saliency"}).working_memory(view) == 3 * kept
    assert AttributionSpec.model_validate({**body, "method": "logit_lens"}).working_memory(view) == kept
    steer = SteerSpec.model_validate({"model": MODEL, "prompt": prompt, "sae": "res-1", "feature": 0,
                                      "max_new_tokens": 8})
    assert steer.working_memory(view) == 2 * forward_bytes(card, n_pos + 8, 4)


@pytest.mark.parametrize("batch", [1, 7])
def test_steps_per_batch_honours_an_explicit_batch(batch: int) -> None:
    assert steps_per_batch(500, batch) == batch
    assert steps_per_batch(5000, None) == 1
