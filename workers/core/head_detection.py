"""Head detectors: how closely each head's attention pattern matches a destination × source pattern.

The scores are TransformerLens's ``head_detector.detect_head`` (TL 3.9), computed over patterns read with
``blocks.L.attn.hook_pattern`` for every head at once: the previous-token, duplicate-token and induction patterns,
``exclude_bos`` / ``exclude_current_token``, and the ``mul`` (share of attention on the pattern) and ``abs``
(1 − mean absolute difference per row, rounded to 3 places as TL rounds it) error measures. Several sequences are
scored one at a time and averaged, as ``detect_head`` does for a list of prompts. Repeated random tokens
(Olsson et al. 2022) are the usual input for induction heads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from workers.core.activations import ActivationReader, forward_reader
from workers.core.errors import InvalidRequestError, ShapeMismatchError
from workers.core.hooked_model import HookedModel
from workers.core.progress import Progress, ShouldCancel, check_cancelled, never_cancel, no_progress

__all__ = [
    "BUILTIN_DETECTORS",
    "ERROR_MEASURES",
    "HeadScores",
    "HeadScoresRequest",
    "detection_pattern",
    "head_scores",
    "pattern_scores",
    "random_token_pool",
    "repeated_random_tokens",
]

BUILTIN_DETECTORS: tuple[str, ...] = ("previous_token", "duplicate_token", "induction")
ERROR_MEASURES: tuple[str, ...] = ("mul", "abs")


@dataclass(frozen=True)
class HeadScoresRequest:
    """Sequences of token ids (BOS first, each at least 2 long) and the detectors to score them with.

    ``custom_patterns`` maps a name to a lower-triangular destination × source pattern of every sequence's length.
    """

    sequences: tuple[tuple[int, ...], ...]
    detectors: tuple[str, ...] = BUILTIN_DETECTORS
    custom_patterns: Mapping[str, Sequence[Sequence[float]]] = field(default_factory=dict)
    exclude_bos: bool = False
    exclude_current_token: bool = False
    error_measure: str = "mul"


@dataclass(frozen=True, eq=False)
class DetectorGrid:
    name: str
    axes: tuple[str, ...]
    labels: Mapping[str, tuple[int, ...]]
    values: torch.Tensor
    units: str


@dataclass(frozen=True, eq=False)
class HeadScores:
    model: str
    tokens: tuple[tuple[str, ...], ...]
    token_ids: tuple[tuple[int, ...], ...]
    error_measure: str
    scores: tuple[DetectorGrid, ...]


def detection_pattern(name: str, tokens: torch.Tensor) -> torch.Tensor:
    """TL's ``get_{name}_head_detection_pattern`` for tokens ``[pos]``: a float ``[pos, pos]`` 0/1 pattern."""
    n = int(tokens.shape[-1])
    if name == "previous_token":
        return torch.tril(torch.ones(n, n), diagonal=-1) - torch.tril(torch.ones(n, n), diagonal=-2)
    same = (tokens.view(-1, 1) == tokens.view(1, -1)).float()
    duplicate = torch.tril(same, diagonal=-1)  # a token always duplicates itself: the diagonal is left out
    if name == "duplicate_token":
        return duplicate
    if name == "induction":
        # Attend to the token after an earlier copy of the current one: the duplicate pattern shifted one source
        # right, its first column zero.
        shifted = torch.zeros_like(duplicate)
        shifted[:, 1:] = duplicate[:, :-1]
        return torch.tril(shifted)
    raise InvalidRequestError(f"unknown detector {name!r}; valid: {', '.join(BUILTIN_DETECTORS)}", field="detectors")


def pattern_scores(
    patterns: torch.Tensor, detection: torch.Tensor, *, exclude_bos: bool, exclude_current_token: bool, measure: str
) -> torch.Tensor:
    """Scores ``[heads]`` of attention patterns ``[heads, dest, src]`` against one ``[dest, src]`` pattern."""
    patterns = patterns.float()
    detection = detection.to(patterns.device, torch.float32)
    size = patterns.shape[-1]
    keep = torch.ones(size, size, device=patterns.device)
    if exclude_bos:
        keep[:, 0] = 0
    if exclude_current_token:
        keep.fill_diagonal_(0)
    if measure == "mul":
        masked = patterns * keep
        return (masked * detection).sum((-2, -1)) / masked.sum((-2, -1))
    raw = ((patterns - detection).abs() * keep).mean((-2, -1)) * size
    return torch.tensor([1 - round(float(v), 3) for v in raw.tolist()])


def _units(measure: str) -> str:
    if measure == "mul":
        return "share of attention on the detection pattern (mul)"
    return "1 − summed absolute difference from the pattern per destination token, mean over tokens (abs)"


def head_scores(
    model: HookedModel,
    request: HeadScoresRequest,
    *,
    reader: ActivationReader | None = None,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> HeadScores:
    """Every head's score for each detector, averaged over the sequences."""
    if request.error_measure not in ERROR_MEASURES:
        raise InvalidRequestError(
            f"unknown error measure {request.error_measure!r}; valid: mul, abs", field="error_measure"
        )
    facts = model.facts
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(facts.n_layers)]
    read = reader or forward_reader(model)
    detectors = [*request.detectors, *request.custom_patterns]
    totals = {name: torch.zeros(facts.n_layers, facts.n_heads) for name in detectors}
    for i, ids in enumerate(request.sequences):
        check_cancelled(should_cancel)
        if len(ids) < 2:
            raise InvalidRequestError("head detection needs at least 2 tokens per sequence", field="prompt")
        tokens = torch.tensor([ids], dtype=torch.long, device=model.device)
        cache = read(tokens, names)
        patterns = torch.stack([cache[name][0] for name in names]).float().cpu()  # [layer, head, dest, src]
        for name in detectors:
            if name in request.custom_patterns:
                detection = torch.tensor(request.custom_patterns[name], dtype=torch.float32)
                if detection.shape != (len(ids), len(ids)):
                    raise ShapeMismatchError(
                        f"custom pattern {name!r} is {tuple(detection.shape)}; sequence {i} has {len(ids)} tokens",
                        field=f"custom_patterns.{name}",
                    )
            else:
                detection = detection_pattern(name, tokens[0].cpu())
            totals[name] += torch.stack(
                [
                    pattern_scores(
                        layer_patterns,
                        detection,
                        exclude_bos=request.exclude_bos,
                        exclude_current_token=request.exclude_current_token,
                        measure=request.error_measure,
                    )
                    for layer_patterns in patterns
                ]
            )
        progress((i + 1) / len(request.sequences))
    n = len(request.sequences)
    labels = {"layer": tuple(range(facts.n_layers)), "head": tuple(range(facts.n_heads))}
    return HeadScores(
        model=model.model_id,
        tokens=tuple(tuple(model.token_strings(list(ids))) for ids in request.sequences),
        token_ids=request.sequences,
        error_measure=request.error_measure,
        scores=tuple(
            DetectorGrid(name, ("layer", "head"), labels, totals[name] / n, _units(request.error_measure))
            for name in detectors
        ),
    )


def repeated_random_tokens(
    *, length: int, seed: int, batch: int, vocab_size: int, excluded: Sequence[int], bos: int | None
) -> list[list[int]]:
    """``batch`` sequences of ``length`` random tokens repeated twice, BOS first (Olsson et al. 2022).

    Drawn with ``numpy.random.default_rng(seed)`` uniformly from ids ``0..vocab_size−1`` without ``excluded``
    (special and added tokens), so the same request gives the same tokens in the API and in any worker.
    """
    candidates = np.setdiff1d(np.arange(vocab_size), np.asarray(list(excluded), dtype=np.int64))
    draws = np.random.default_rng(seed).choice(candidates, size=(batch, length))
    head = [] if bos is None else [bos]
    return [[*head, *row.tolist(), *row.tolist()] for row in draws]


def random_token_pool(model: HookedModel) -> tuple[int, list[int]]:
    """The vocabulary size repeated random tokens draw from and the ids left out: every special or added token
    (BOS, pad, Gemma's control and image tokens), so the sequence is ordinary text tokens only."""
    tokenizer = model.tokenizer
    vocab_size = min(len(tokenizer), model.facts.d_vocab)
    excluded = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    return vocab_size, sorted(excluded)
