"""``head_scores``: how much each head looks like a previous-token, duplicate-token or induction head (or a custom
destination × source pattern), scored as TransformerLens's ``detect_head`` scores it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias, cast

from pydantic import BeforeValidator, Field, model_validator

from workers.core.errors import InvalidRequestError, ShapeMismatchError
from workers.core.memory import dtype_bytes, forward_bytes
from workers.kinds.base import JobSpecBase, Kind, Prompt, ResultBase, SharesForwards, WireModel
from workers.kinds.grids import Grid, by_name

if TYPE_CHECKING:
    from workers.core.head_detection import HeadScoresRequest
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = ["KIND", "MAX_PROMPTS", "HeadScoresResult", "HeadScoresSpec", "RepeatedRandom"]

MAX_PROMPTS = 64
MAX_PATTERNS = 8
Detector: TypeAlias = Literal["previous_token", "duplicate_token", "induction"]
PatternName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
Pattern = Annotated[
    list[Annotated[list[float], Field(max_length=4096)]],
    Field(min_length=2, max_length=4096, description="destination × source; lower triangular"),
]


class RepeatedRandom(WireModel):
    """``batch`` sequences of ``length`` random tokens repeated twice, BOS first (Olsson et al. 2022).

    Drawn with ``numpy.random.default_rng(seed)`` uniformly over the model's vocabulary without its special and
    added tokens: the same request gives the same tokens, which the result returns.
    """

    length: int = Field(ge=1, le=4096, description="random tokens before the repeat; the sequence is 2·length + 1")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    batch: int = Field(default=1, ge=1, le=MAX_PROMPTS, description="sequences; the scores are their mean")


class HeadScoresSpec(SharesForwards, JobSpecBase):
    """Every head's score per detector over ``prompt``, ``prompts`` or ``repeated_random`` (exactly one)."""

    kind: Literal["head_scores"] = "head_scores"

    prompt: Prompt | None = None
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)] | None = Field(
        default=None, description="a batch: each scored on its own, the scores averaged (as TransformerLens)"
    )
    repeated_random: RepeatedRandom | None = None
    detectors: Annotated[list[Detector], Field(max_length=3)] = Field(
        default_factory=lambda: cast(list[Detector], ["previous_token", "duplicate_token", "induction"]),
        description="built-in detection patterns",
    )
    custom_patterns: dict[PatternName, Pattern] = Field(
        default_factory=dict,
        max_length=MAX_PATTERNS,
        description="name → destination × source pattern, its size the sequence's token count (BOS included)",
    )
    exclude_bos: bool = Field(default=False, description="leave attention to BOS out of the comparison")
    exclude_current_token: bool = Field(default=False, description="leave attention to the token itself out")
    error_measure: Literal["mul", "abs"] = Field(
        default="mul",
        description="mul: share of attention on the pattern; abs: 1 − mean absolute difference (TL rounds to 3 places)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> HeadScoresSpec:
        if sum(x is not None for x in (self.prompt, self.prompts, self.repeated_random)) != 1:
            raise ValueError("give exactly one of prompt, prompts and repeated_random")
        if not self.detectors and not self.custom_patterns:
            raise ValueError("give at least one detector or custom pattern")
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError("detectors must not repeat")
        if clash := set(self.detectors) & set(self.custom_patterns):
            raise ValueError(f"custom pattern names clash with detectors: {', '.join(sorted(clash))}")
        return self

    def prompt_fields(self) -> list[tuple[str, str]]:
        if self.prompt is not None:
            return [("prompt", self.prompt)]
        return [(f"prompts.{i}", p) for i, p in enumerate(self.prompts or [])]

    def check(self, view: ModelView) -> None:
        lengths = self.prompt_lengths(view)
        if self.repeated_random is not None and lengths[0] > view.card.max_tokens:
            length = self.repeated_random.length
            raise InvalidRequestError(
                f"repeated_random.length {length} makes {lengths[0]} tokens (2·length + BOS); {view.model_id} "
                f"takes at most {view.card.max_tokens}, so length ≤ {(view.card.max_tokens - 1) // 2}",
                field="repeated_random.length",
                code="out_of_range",
            )
        for (field, _), n in zip(self.prompt_fields(), lengths, strict=False):
            if n < 2:
                raise InvalidRequestError("head detection needs at least 2 tokens (BOS and one more)", field=field)
        for name, pattern in self.custom_patterns.items():
            field = f"custom_patterns.{name}"
            rows = {len(row) for row in pattern}
            if rows != {len(pattern)}:
                raise ShapeMismatchError(f"custom pattern {name!r} is not square", field=field)
            if any(value != 0 for i, row in enumerate(pattern) for value in row[i + 1 :]):
                raise InvalidRequestError(
                    f"custom pattern {name!r} must be lower triangular: a token attends to itself and earlier "
                    "tokens only",
                    field=field,
                )
            if bad := sorted({n for n in lengths if n != len(pattern)}):
                raise ShapeMismatchError(
                    f"custom pattern {name!r} is {len(pattern)}×{len(pattern)} but the sequence has "
                    f"{bad[0]} tokens; it must be tokens × tokens (BOS included)",
                    field=field,
                )

    def prompt_lengths(self, view: ModelView) -> list[int]:
        if self.repeated_random is not None:
            return [2 * self.repeated_random.length + 1] * self.repeated_random.batch
        return [len(view.tokenize(prompt, field=field)) for field, prompt in self.prompt_fields()]

    def working_memory(self, view: ModelView) -> int:
        """One sequence at a time: a no-grad forward plus every layer's attention pattern, read in float32."""
        card = view.card
        n = max(self.prompt_lengths(view))
        return forward_bytes(card, n, dtype_bytes(card.dtype)) + card.n_layers * card.n_heads * n * n * 4

    def to_request(self, sequences: list[list[int]]) -> HeadScoresRequest:
        from workers.core.head_detection import HeadScoresRequest

        return HeadScoresRequest(
            sequences=tuple(tuple(ids) for ids in sequences),
            detectors=tuple(self.detectors),
            custom_patterns=dict(self.custom_patterns),
            exclude_bos=self.exclude_bos,
            exclude_current_token=self.exclude_current_token,
            error_measure=self.error_measure,
        )


class HeadScoresResult(ResultBase):
    """One layer × head grid per detector (custom patterns under their names), mean over the sequences."""

    model: str
    error_measure: str
    tokens: list[list[str]] = Field(description="each sequence's tokens, BOS first")
    token_ids: list[list[int]] = Field(description="each sequence's token ids (repeated_random: the draws)")
    scores: Annotated[dict[str, Grid], BeforeValidator(by_name)]


def run(ctx: JobContext, spec: HeadScoresSpec) -> HeadScoresResult:
    from workers.core.head_detection import head_scores, random_token_pool, repeated_random_tokens

    model = ctx.model
    if spec.repeated_random is not None:
        vocab_size, excluded = random_token_pool(model)
        bos = model.tokenizer.bos_token_id
        sequences = repeated_random_tokens(
            length=spec.repeated_random.length,
            seed=spec.repeated_random.seed,
            batch=spec.repeated_random.batch,
            vocab_size=vocab_size,
            excluded=excluded,
            bos=bos if isinstance(bos, int) else None,
        )
    else:
        sequences = [model.tokenize(p, field=f)[0].tolist() for f, p in spec.prompt_fields()]
    result = head_scores(
        model, spec.to_request(sequences), reader=ctx.reader, progress=ctx.progress, should_cancel=ctx.should_cancel
    )
    return HeadScoresResult.model_validate(result)


KIND = Kind(spec=HeadScoresSpec, result=HeadScoresResult, run=run, soft_limit_s=120.0, hard_limit_s=150.0)
