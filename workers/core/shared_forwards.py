"""Forwards that concurrent jobs of one model share: activation reads and embedding gradients, right-padded.

Sequences of different lengths go into one batch packed end to end in one row, with position ids that restart
at 0 for each sequence: the model's own mask code then keeps each sequence to itself (transformers detects packed
sequences from the position ids), and absolute position embeddings, rotary phases and Gemma's sliding windows see
exactly what a run of that sequence alone sees; no pad is computed. Reads of attention patterns are padded on the
right instead (causal attention: a real position never attends to a pad after it), and never share a forward with
reads that do not (patterns switch the model to eager attention), so each runs the attention code it would run
alone. Each request then gets its own rows and positions back.
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


class _Layout:
    """Where each request's rows sit in one batch: packed end to end in a single row (``position_ids`` restarting
    at 0 at each sequence, so the model masks each sequence to itself and no pad is computed), or padded on the
    right, one row each (for attention patterns, whose ``[query, key]`` grid a packed row would make quadratic in
    the whole batch)."""

    def __init__(self, model: HookedModel, sequences: Sequence[torch.Tensor], *, packed: bool) -> None:
        self.packed = packed
        self.lengths = [int(t.shape[1]) for t in sequences]
        rows = [row for tokens in sequences for row in tokens]
        self.first_row: list[int] = []
        count = 0
        for tokens in sequences:
            self.first_row.append(count)
            count += int(tokens.shape[0])
        self.rows = [int(t.shape[0]) for t in sequences]
        device = model.device
        if packed:
            self.tokens = torch.cat(rows).unsqueeze(0)
            self.position_ids: torch.Tensor | None = torch.cat(
                [torch.arange(len(row), device=device) for row in rows]
            ).unsqueeze(0)
            self.offsets = [sum(len(row) for row in rows[:r]) for r in range(len(rows))]
        else:
            pad = model.tokenizer.pad_token_id
            self.tokens = torch.full((len(rows), max(self.lengths)), pad if isinstance(pad, int) else 0,
                                     dtype=torch.long, device=device)
            for r, row in enumerate(rows):
                self.tokens[r, : len(row)] = row
            self.position_ids = None

    def part(self, value: torch.Tensor, request: int, *, pattern: bool = False) -> torch.Tensor:
        """Request ``request``'s share ``[its rows, its positions, …]`` of a batched activation."""
        first, n_rows, n_pos = self.first_row[request], self.rows[request], self.lengths[request]
        if self.packed:
            return torch.cat([value[:, self.offsets[r] : self.offsets[r] + n_pos] for r in
                              range(first, first + n_rows)])
        part = value[first : first + n_rows]
        return (part[:, :, :n_pos, :n_pos] if pattern else part[:, :n_pos]).contiguous()

    def at(self, value: torch.Tensor, request: int, position: int) -> torch.Tensor:
        """``[1, …]``: a single-row request's activation at ``position``."""
        if self.packed:
            offset = self.offsets[self.first_row[request]]
            return value[:, offset + position]
        row = self.first_row[request]
        return value[row : row + 1, position]


def reads_together(model: HookedModel, requests: Sequence[ReadRequest]) -> list[dict[str, torch.Tensor]]:
    """Every request's reads from one forward that stops after the last layer any of them needs."""
    names = list(dict.fromkeys(name for request in requests for name in request.names))
    patterns = any(name.endswith(PATTERN_SITE) for name in names)
    layout = _Layout(model, [r.tokens for r in requests], packed=not patterns)
    stop = last_layer_needed([model.hook(name) for name in names], model.facts.n_layers)
    cache = model.run(layout.tokens, position_ids=layout.position_ids, cache=names, stop_at_layer=stop,
                      logits="none").cache
    return [
        {name: layout.part(cache[name], i, pattern=name.endswith(PATTERN_SITE)) for name in request.names}
        for i, request in enumerate(requests)
    ]


def embedding_gradients_together(model: HookedModel, requests: Sequence[GradientRequest]) -> list[EmbeddingGradient]:
    """Every request's embedding gradient from one forward and one backward over the packed batch.

    Sequences are independent (each target reads only its own sequence), so the gradient of the sum of the
    targets is, sequence by sequence, each target's own gradient.
    """
    layout = _Layout(model, [r.tokens for r in requests], packed=True)
    embedded = model.run(layout.tokens, position_ids=layout.position_ids, cache=[EMBED_HOOK], stop_at_layer=0,
                         logits="none").cache[EMBED_HOOK]
    clean = embedded.detach().requires_grad_(True)
    last = str(HookName(model.facts.n_layers - 1, "hook_resid_post"))

    def replace(_: torch.Tensor) -> torch.Tensor:
        return clean

    with torch.enable_grad():
        out = model.run(layout.tokens, position_ids=layout.position_ids, hooks={EMBED_HOOK: [replace]},
                        cache=[last], stop_at_layer=model.facts.n_layers, logits="none", grad=True)
        resid = out.cache[last]
        values = torch.cat([r.readout(layout.at(resid, i, r.position)) for i, r in enumerate(requests)])
        (grad,) = torch.autograd.grad(values.sum(), clean)
    embeddings, grads = clean.detach(), grad
    return [
        (layout.part(embeddings, i)[0], layout.part(grads, i)[0], float(values[i].detach()))
        for i in range(len(requests))
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
    """Positions within budget (padded: rows × longest; a bound for packed batches too): ``read_tokens`` for reads,
    the gradient graph's :data:`TOKENS_PER_BATCH` for gradients."""

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
