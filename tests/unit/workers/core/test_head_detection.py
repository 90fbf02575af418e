"""Head detector scores equal TransformerLens's ``detect_head`` on a tiny GPT-2 with the same weights."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from transformer_lens import HookedTransformer
from transformer_lens.head_detector import detect_head

from tests.factories import tiny_model
from tests.oracles.transformer_lens_oracle import hooked_transformer_from_hf
from workers.core.byte_tokenizer import make_byte_tokenizer
from workers.core.head_detection import (
    HeadScoresRequest,
    head_scores,
    random_token_pool,
    repeated_random_tokens,
)
from workers.core.hooked_model import HookedModel

TOL = 1e-5
PROMPTS = ("ab ab cab ab", "the cat the cat sat")
TL_NAMES = {
    "previous_token": "previous_token_head",
    "duplicate_token": "duplicate_token_head",
    "induction": "induction_head",
}


@pytest.fixture(scope="module")
def models() -> Iterator[tuple[HookedModel, HookedTransformer]]:
    model = tiny_model("gpt2")
    ours = HookedModel(model, make_byte_tokenizer(), model_id="tiny-gpt2")
    tl = hooked_transformer_from_hf(model)
    # TL has no tokenizer here: hand it ours, BOS first, for the prompts detect_head tokenizes.
    tl.to_tokens = lambda seq, **_: ours.tokenize(seq if isinstance(seq, str) else seq[0])  # type: ignore[method-assign,assignment,misc]
    yield ours, tl


def scores(model: HookedModel, prompts: tuple[str, ...], **options: object) -> dict[str, torch.Tensor]:
    sequences = tuple(tuple(model.tokenize(p)[0].tolist()) for p in prompts)
    result = head_scores(model, HeadScoresRequest(sequences=sequences, **options))  # type: ignore[arg-type]
    return {grid.name: grid.values for grid in result.scores}


@pytest.mark.parametrize("measure", ["mul", "abs"])
@pytest.mark.parametrize(
    ("exclude_bos", "exclude_current", "prompts"),
    [(False, False, PROMPTS[:1]), (True, False, PROMPTS), (False, True, PROMPTS)],
)
def test_builtin_detectors_equal_detect_head(
    models: tuple[HookedModel, HookedTransformer],
    measure: str,
    exclude_bos: bool,
    exclude_current: bool,
    prompts: tuple[str, ...],
) -> None:
    ours, tl = models
    flags = {"exclude_bos": exclude_bos, "exclude_current_token": exclude_current}
    got = scores(ours, prompts, error_measure=measure, **flags)
    seq = prompts[0] if len(prompts) == 1 else list(prompts)
    for name, tl_name in TL_NAMES.items():
        expected = detect_head(tl, seq, tl_name, error_measure=measure, **flags)  # type: ignore[arg-type]
        torch.testing.assert_close(got[name], expected.float(), atol=TOL, rtol=0, msg=f"{name}")
    assert got["previous_token"].max() > got["previous_token"].min()  # the scores do vary over heads


@pytest.mark.parametrize("measure", ["mul", "abs"])
def test_custom_pattern_equals_detect_head(models: tuple[HookedModel, HookedTransformer], measure: str) -> None:
    ours, tl = models
    n = ours.tokenize(PROMPTS[0]).shape[1]
    pattern = torch.tril(torch.ones(n, n))
    pattern[:, 1:] = 0  # everything on BOS
    got = scores(
        ours,
        PROMPTS[:1],
        detectors=(),
        custom_patterns={"bos": pattern.tolist()},
        error_measure=measure,
        exclude_current_token=True,
    )
    expected = detect_head(tl, PROMPTS[0], pattern, error_measure=measure, exclude_current_token=True)  # type: ignore[arg-type]
    torch.testing.assert_close(got["bos"], expected.float(), atol=TOL, rtol=0)


def test_repeated_random_tokens_are_seeded_and_repeat(models: tuple[HookedModel, HookedTransformer]) -> None:
    ours, tl = models
    vocab, excluded = random_token_pool(ours)
    bos = ours.tokenizer.bos_token_id
    assert bos in excluded

    def draw(seed: int) -> list[list[int]]:
        return repeated_random_tokens(length=10, seed=seed, batch=3, vocab_size=vocab, excluded=excluded, bos=bos)

    first = draw(7)
    assert first == draw(7) and first != draw(8)
    assert [len(s) for s in first] == [21] * 3 and len({tuple(s) for s in first}) == 3
    for seq in first:
        assert seq[0] == bos and seq[1:11] == seq[11:] and not set(seq[1:]) & set(excluded)
    # The induction score over the draws is TL's on the same tokens.
    result = head_scores(ours, HeadScoresRequest(sequences=tuple(tuple(s) for s in first), detectors=("induction",)))
    expected = torch.stack([_tl_on_tokens(tl, torch.tensor([s])) for s in first]).mean(0)
    torch.testing.assert_close(result.scores[0].values, expected.float(), atol=TOL, rtol=0)


def _tl_on_tokens(tl: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    original = tl.to_tokens
    tl.to_tokens = lambda seq, **_: tokens  # type: ignore[method-assign,assignment,misc]
    try:
        return detect_head(tl, "ignored", "induction_head")
    finally:
        tl.to_tokens = original  # type: ignore[method-assign]
