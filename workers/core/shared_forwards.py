"""Forwards that concurrent jobs of one model share: activation reads and embedding gradients, right-padded.

Sequences of different lengths go into one batch padded on the right. Attention is causal, so a real position
never attends to a pad after it; positions still count from 0 in every row, so absolute position embeddings,
rotary phases and Gemma's sliding windows see exactly what a run of that row alone sees. Each request then gets
its own rows cut back to its own length. Reads that need attention patterns (which switch the model to eager
attention) never share a forward with reads that do not, so each runs the attention code it would run alone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from workers.core.activations import ActivationReader, last_layer_needed
from workers.core.combiner import Combiner
from workers.core.hooked_model import HookedModel
from workers.core.hooks import HookName
from workers.core.memory import TOKENS_PER_BATCH

__all__ = [
    "EmbeddingGradient",
    "GradientRequest",
    "ReadRequest",
    "SharedForwards",
    "embedding_gradients_together",
    "embedding_of",
    "reads_together",
]

EMBED_HOOK = "hook_embed"
PATTERN_SITE = "attn.hook_pattern"

EmbeddingGradient = tuple[torch.Tensor, torch.Tensor, float]
"""A prompt's embedding ``[pos, d_model]``, the target's gradient with respect to it, and the target's value."""


@dataclass(frozen=True, eq=False)
class ReadRequest:
    """Read ``names`` on ``tokens`` ``[rows, pos]`` in an unpatched forward."""

    tokens: torch.Tensor
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class GradientRequest:
    """The gradient of ``readout(final residual at position)`` with respect to the embedding of ``tokens``."""

    tokens: torch.Tensor
    position: int
    readout: Callable[[torch.Tensor], torch.Tensor]
    """``[n, d_model]`` residuals before the final norm → ``[n]`` target values."""


Request = ReadRequest | GradientRequest
Result = dict[str, torch.Tensor] | EmbeddingGradient


def embedding_of(model: HookedModel, tokens: torch.Tensor) -> torch.Tensor:
    """The embedding module's output ``[batch, pos, d_model]`` for ``tokens``."""
    return model.run(tokens, cache=[EMBED_HOOK], stop_at_layer=0, logits="none").cache[EMBED_HOOK]


def _padded(model: HookedModel, sequences: Sequence[torch.Tensor]) -> torch.Tensor:
    """The rows of every ``[rows, pos]`` tensor in one ``[total rows, longest]`` batch, padded on the right."""
    rows = sum(int(t.shape[0]) for t in sequences)
    longest = max(int(t.shape[1]) for t in sequences)
    pad = model.tokenizer.pad_token_id
    out = torch.full((rows, longest), pad if isinstance(pad, int) else 0, dtype=torch.long, device=model.device)
    row = 0
    for tokens in sequences:
        out[row : row + tokens.shape[0], : tokens.shape[1]] = tokens
        row += int(tokens.shape[0])
    return out


def _cut(model: HookedModel, name: str, value: torch.Tensor, rows: slice, n_pos: int) -> torch.Tensor:
    """One request's share of a hook's batched activation: its rows, its positions (both axes of a pattern)."""
    part = value[rows]
    if name.endswith(PATTERN_SITE):
        return part[:, :, :n_pos, :n_pos].contiguous()
    return part[:, :n_pos].contiguous()


def reads_together(model: HookedModel, requests: Sequence[ReadRequest]) -> list[dict[str, torch.Tensor]]:
    """Every request's reads from one forward that stops after the last layer any of them needs."""
    names = list(dict.fromkeys(name for request in requests for name in request.names))
    stop = last_layer_needed([model.hook(name) for name in names], model.facts.n_layers)
    cache = model.run(_padded(model, [r.tokens for r in requests]), cache=names, stop_at_layer=stop,
                      logits="none").cache
    results, row = [], 0
    for request in requests:
        rows = slice(row, row + int(request.tokens.shape[0]))
        n_pos = int(request.tokens.shape[1])
        results.append({name: _cut(model, name, cache[name], rows, n_pos) for name in request.names})
        row = rows.stop
    return results


def embedding_gradients_together(model: HookedModel, requests: Sequence[GradientRequest]) -> list[EmbeddingGradient]:
    """Every request's embedding gradient from one forward and one backward over the padded batch.

    Rows are independent (each row's target reads only its own row), so the gradient of the sum of the targets
    is, row by row, each target's own gradient.
    """
    tokens = _padded(model, [r.tokens for r in requests])
    clean = embedding_of(model, tokens).detach().requires_grad_(True)
    last = str(HookName(model.facts.n_layers - 1, "hook_resid_post"))

    def replace(_: torch.Tensor) -> torch.Tensor:
        return clean

    with torch.enable_grad():
        out = model.run(tokens, hooks={EMBED_HOOK: [replace]}, cache=[last], stop_at_layer=model.facts.n_layers,
                        logits="none", grad=True)
        resid = out.cache[last]
        values = torch.cat([r.readout(resid[b : b + 1, r.position]) for b, r in enumerate(requests)])
        (grad,) = torch.autograd.grad(values.sum(), clean)
    detached = clean.detach()
    return [
        (detached[b, : r.tokens.shape[1]], grad[b, : r.tokens.shape[1]], float(values[b].detach()))
        for b, r in enumerate(requests)
    ]


def run_together(model: HookedModel, requests: Sequence[Request]) -> list[Result]:
    """A batch of one request type (the combiner's key keeps types apart)."""
    if isinstance(requests[0], ReadRequest):
        return list(reads_together(model, [r for r in requests if isinstance(r, ReadRequest)]))
    return list(embedding_gradients_together(model, [r for r in requests if isinstance(r, GradientRequest)]))


def _key(request: Request) -> Hashable:
    """Requests of one key may share a forward. Read from the names' text: a bad name fails in its forward, never
    in the leader's choice of company."""
    if isinstance(request, GradientRequest):
        return "gradient"
    return ("read", any(name.endswith(PATTERN_SITE) for name in request.names))


def _fits(read_tokens: int) -> Callable[[Sequence[Request]], bool]:
    """Padded positions within budget: ``read_tokens`` for reads, the gradient graph's :data:`TOKENS_PER_BATCH`."""

    def fits(requests: Sequence[Request]) -> bool:
        rows = sum(int(r.tokens.shape[0]) for r in requests)
        longest = max(int(r.tokens.shape[1]) for r in requests)
        budget = TOKENS_PER_BATCH if isinstance(requests[0], GradientRequest) else read_tokens
        return rows * longest <= budget

    return fits


class SharedForwards:
    """A model's combiner: the reads and embedding gradients of its concurrent jobs, a batch per forward.

    A job enters :meth:`member` while it runs, and reads through :meth:`reader` and :meth:`gradient`; the
    ``sizes`` list a job passes collects the size of each batch its requests ran in (its record reports them).
    """

    def __init__(self, model: HookedModel, *, max_wait_s: float, max_tokens: int) -> None:
        self.model = model
        self._combiner: Combiner[Request, Result] = Combiner(
            lambda requests: run_together(model, requests),
            max_wait_s=max_wait_s,
            fits=_fits(max_tokens),
            key=_key,
        )

    def member(self) -> AbstractContextManager[None]:
        return self._combiner.member()

    def reader(self, sizes: list[int] | None = None) -> ActivationReader:
        def read(tokens: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
            shared = self._combiner.submit(ReadRequest(tokens, tuple(dict.fromkeys(names))))
            if sizes is not None:
                sizes.append(shared.batch_size)
            assert isinstance(shared.value, dict)
            return shared.value

        return read

    def gradient(self, sizes: list[int] | None = None) -> Callable[[GradientRequest], EmbeddingGradient]:
        def gradient(request: GradientRequest) -> EmbeddingGradient:
            shared = self._combiner.submit(request)
            if sizes is not None:
                sizes.append(shared.batch_size)
            assert isinstance(shared.value, tuple)
            return shared.value

        return gradient
