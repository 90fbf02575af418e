"""Bad input is refused with the field and the facts to fix it; results carry axes, labels and values.

The JSON form of these results is tested with the wire models, in tests/unit/workers/kinds/test_results.py.
"""

from __future__ import annotations

import pytest
import torch

from tests.unit.workers.core.patching.conftest import CLEAN, CORRUPTED
from workers.core.errors import CoreError, InvalidRequestError
from workers.core.hooked_model import HookedModel
from workers.core.patching import TARGET_NAMES, PatchingRequest, PathPatchingRequest, run_patching, run_path_patching


def _refused(model: HookedModel, request: PatchingRequest) -> CoreError:
    with pytest.raises(CoreError) as caught:
        run_patching(model, request)
    return caught.value


def test_pairs_of_different_length_name_both_lengths_and_the_divergence(gpt2: HookedModel) -> None:
    error = _refused(gpt2, PatchingRequest(CLEAN, "ab xyz:", answer="b", wrong_answer="a"))
    assert error.field == "corrupted_prompt"
    assert "clean prompt is 6 tokens" in error.message
    assert "corrupted prompt 8" in error.message
    assert "position 4: clean 'b', corrupted 'x'" in error.message


def test_multi_token_answers_name_their_tokens(gpt2: HookedModel) -> None:
    error = _refused(gpt2, PatchingRequest(CLEAN, CORRUPTED, answer="bc", wrong_answer="a"))
    assert error.field == "answer"
    assert "['b', 'c']" in error.message
    error = _refused(gpt2, PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer=" a"))
    assert error.field == "wrong_answer"


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"layers": (0, 3)}, "layers", "layers [3] out of range: valid layers are 0..2"),
        ({"positions": (6,)}, "positions", "positions [6] out of range: valid positions are 0..5"),
        ({"positions": (-1,)}, "positions", "out of range"),
        ({"layers": ()}, "layers", "empty"),
        ({"positions": (1, 1)}, "positions", "twice"),
    ],
)
def test_out_of_range_layers_and_positions(
    gpt2: HookedModel, changes: dict[str, tuple[int, ...]], field: str, text: str
) -> None:
    error = _refused(gpt2, PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", **changes))  # type: ignore[arg-type]
    assert error.field == field
    assert text in error.message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"targets": ("resid_pre", "heads")}, "targets"),
        ({"targets": ()}, "targets"),
        ({"metric": "loss"}, "metric"),
        ({"method": "integrated"}, "method"),
        ({"direction": "both"}, "direction"),
        ({"wrong_answer": None}, "wrong_answer"),
        ({"memory_budget": 0}, "memory_budget"),
    ],
)
def test_malformed_requests_are_refused_on_construction(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"answer": "b", "wrong_answer": "a", **changes}
    with pytest.raises(InvalidRequestError) as caught:
        PatchingRequest(CLEAN, CORRUPTED, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_unknown_granularity_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=("z",))
    for name in TARGET_NAMES:
        assert name in caught.value.message


def test_equal_metrics_leave_normalisation_undefined_and_say_so(gpt2: HookedModel) -> None:
    result = run_patching(gpt2, PatchingRequest(CLEAN, CLEAN, answer="b", wrong_answer="a"))
    assert result.clean_metric == result.corrupted_metric
    target = result.target("resid_pre")
    assert target.normalised is None
    assert torch.equal(target.raw, torch.full((3, 6), result.clean_metric, dtype=torch.float64))
    assert result.normalised is False
    assert "undefined" in result.warnings[0]
    assert torch.equal(target.values, target.raw)


def test_results_carry_axes_labels_and_values(gpt2: HookedModel) -> None:
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=("every_block", "head_out"))
    result = run_patching(gpt2, request)
    assert result.tokens == ("<bos>", "a", "b", " ", "b", ":")
    assert result.corrupted_tokens[4] == "a"
    assert [t.name for t in result.targets] == ["every_block", "head_out"]
    block = result.target("every_block")
    assert block.axes == ("component", "layer", "position")
    assert list(block.labels["component"]) == ["resid_pre", "attn_out", "mlp_out"]
    assert list(block.labels["position"]) == ["0: <bos>", "1: a", "2: b", "3:  ", "4: b", "5: :"]
    assert tuple(block.values.shape) == (3, 3, 6)
    heads = result.target("head_out")
    assert heads.axes == ("layer", "head")
    assert list(heads.labels["head"]) == [0, 1, 2, 3]
    assert heads.normalised is not None and torch.equal(heads.values, heads.normalised)
    spread = result.clean_metric - result.corrupted_metric
    torch.testing.assert_close(heads.normalised, (heads.raw - result.corrupted_metric) / spread)
    assert result.normalised is True and result.warnings == ()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"receivers": ()}, "receivers"),
        ({"receivers": "unembed"}, "receivers"),
        ({"receiver_inputs": ("q", "o")}, "receiver_inputs"),
        ({"senders": ()}, "senders"),
    ],
)
def test_malformed_path_requests(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"receivers": ((2, 0),), "wrong_answer": "a", **changes}
    with pytest.raises(InvalidRequestError) as caught:
        PathPatchingRequest(CLEAN, CORRUPTED, "b", **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_path_heads_out_of_range(gpt2: HookedModel) -> None:
    request = PathPatchingRequest(CLEAN, CORRUPTED, "b", receivers=((3, 0),), wrong_answer="a")
    with pytest.raises(InvalidRequestError) as caught:
        run_path_patching(gpt2, request)
    assert caught.value.field == "receivers"
    assert "layers are 0..2, heads 0..3" in caught.value.message
