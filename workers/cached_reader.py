"""An activation reader served from the activation cache: one forward for the misses only.

Core methods take ``reader=`` for the clean activations they only read; a job passes :func:`cached_reader`, which
asks the cache for every (prompt, hook) first and runs the model once for what is missing, storing it for the next
job. Per-job counters land in :class:`CacheStats`, which the job record reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from workers.activation_cache import ActivationCache, CacheStats, activation_key
from workers.core.activations import ActivationReader

__all__ = ["CacheContext", "cached_reader", "decode_tensor", "encode_tensor"]

_TENSOR = "activation"


def encode_tensor(tensor: torch.Tensor) -> bytes:
    return save_safetensors({_TENSOR: tensor.detach().to("cpu").contiguous()})


def decode_tensor(data: bytes) -> torch.Tensor:
    return load_safetensors(data)[_TENSOR]


@dataclass
class CacheContext:
    """Identifies a served model's activations in the cache."""

    model_id: str
    weights_revision: str
    dtype: str
    stats: CacheStats = field(default_factory=CacheStats)


def cached_reader(cache: ActivationCache, context: CacheContext, forward: ActivationReader) -> ActivationReader:
    """A reader answering from ``cache`` and running ``forward`` once for the hooks it lacks."""

    def read(tokens: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        unique = list(dict.fromkeys(names))
        results: dict[str, torch.Tensor] = {}
        rows = tokens.tolist()
        keys_by_row = [
            {n: activation_key(context.model_id, context.weights_revision, context.dtype, row, n) for n in unique}
            for row in rows
        ]
        all_keys = [k for row_keys in keys_by_row for k in row_keys.values()]
        found = dict(zip(all_keys, cache.get_many(all_keys), strict=True))
        hits = [v for v in found.values() if v is not None]
        context.stats.hits += len(hits)
        context.stats.misses += len(found) - len(hits)
        context.stats.bytes_read += sum(len(v) for v in hits)
        missing = [n for n in unique if any(found[row_keys[n]] is None for row_keys in keys_by_row)]
        if missing:
            context.stats.forwards += 1
            fresh = forward(tokens, missing)
            writes: dict[str, bytes] = {}
            for name in missing:
                for b, row_keys in enumerate(keys_by_row):
                    writes[row_keys[name]] = encode_tensor(fresh[name][b : b + 1])
                results[name] = fresh[name]
            context.stats.bytes_written += sum(len(v) for v in writes.values())
            cache.put_many(writes)
        device = tokens.device
        for name in unique:
            if name not in results:
                parts = [decode_tensor(found[row_keys[name]]) for row_keys in keys_by_row]  # type: ignore[arg-type]
                results[name] = torch.cat(parts).to(device)
        return results

    return read
