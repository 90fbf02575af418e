"""One estimate of a forward's activation memory, read by the API's submission check and the core's chunking.

The API refuses a job whose estimate exceeds what a worker allows (422 ``job_too_large``); the core sizes its
batched patching forwards so that their estimate stays within a budget. Both count bytes with :func:`row_bytes`,
so the two can only disagree about how many rows a job holds at once, never about what one row costs. This
module imports no torch: the API reads a model's widths from its card, the core from the loaded model's facts.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "DTYPE_BYTES",
    "TOKENS_PER_BATCH",
    "ModelWidths",
    "dtype_bytes",
    "forward_bytes",
    "logits_bytes",
    "row_bytes",
    "steps_per_batch",
]

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
"""Bytes per value of each registry dtype."""

TOKENS_PER_BATCH = 1024
"""Default budget of positions per batch of integrated-gradients steps (steps × prompt length): about 1.4 GB of
saved activations on Gemma 3 270M, and 50 steps of a 20-token prompt in one batch (larger batches ran faster
than smaller ones)."""

def dtype_bytes(dtype: str) -> int:
    """Bytes per value of a registry dtype (``float32`` when unknown: the larger guess)."""
    return DTYPE_BYTES.get(dtype, 4)


_RESIDUAL_COPIES = 8
_MLP_COPIES = 3
_HEAD_COPIES = 4
_SCORE_COPIES = 3


class ModelWidths(Protocol):
    """What the estimate reads of a model: ``ModelFacts`` (core) and ``ModelCard`` (API) both have these."""

    @property
    def n_layers(self) -> int: ...
    @property
    def d_model(self) -> int: ...
    @property
    def d_mlp(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def d_head(self) -> int: ...
    @property
    def d_vocab(self) -> int: ...


def row_bytes(widths: ModelWidths, n_pos: int, itemsize: int) -> int:
    """Peak bytes of one sequence's transient tensors in one decoder layer.

    Residual copies, MLP hidden states, q/k/v/z and attention scores; a no-grad forward frees each layer's
    tensors before the next, so a batch peaks at about this times its rows. The patching benchmark measures the
    real peak against this figure.
    """
    width = (
        _RESIDUAL_COPIES * widths.d_model
        + _MLP_COPIES * widths.d_mlp
        + _HEAD_COPIES * widths.n_heads * widths.d_head
        + _SCORE_COPIES * widths.n_heads * n_pos
    )
    return itemsize * n_pos * width


def logits_bytes(widths: ModelWidths, n_pos: int, itemsize: int) -> int:
    """The logits of one sequence at every position."""
    return itemsize * n_pos * widths.d_vocab


def forward_bytes(widths: ModelWidths, n_pos: int, itemsize: int, *, kept_layers: int = 1) -> int:
    """One sequence's forward: ``kept_layers`` layers' tensors held at once, plus its logits.

    ``kept_layers`` is 1 for a no-grad forward (each layer freed before the next) and ``n_layers`` when every
    layer's tensors stay (a gradient graph, or hooks read and kept at every layer).
    """
    return kept_layers * row_bytes(widths, n_pos, itemsize) + logits_bytes(widths, n_pos, itemsize)


def steps_per_batch(n_pos: int, batch: int | None) -> int:
    """Integrated-gradients steps one forward carries: ``batch``, or as many as :data:`TOKENS_PER_BATCH` allows."""
    return batch or max(1, TOKENS_PER_BATCH // n_pos)
