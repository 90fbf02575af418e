"""The input side of attribution: the embedding layer's outputs, baselines, and gradients with respect to them.

Input methods attribute over ``hook_embed``, the embedding module's output (Gemma's √d_model scale included),
exactly what Captum's ``LayerIntegratedGradients`` on the embedding module interpolates. GPT-2's position
embeddings are added after that hook and are not attributed.
"""

from __future__ import annotations

import torch

from workers.core.attribution.base import AttributionContext
from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel
from workers.core.shared_forwards import EMBED_HOOK, EmbeddingGradient, GradientRequest, embedding_of

__all__ = ["EMBED_HOOK", "baseline_embedding", "baseline_tokens", "embedding_gradient", "embedding_of"]


def baseline_tokens(model: HookedModel, tokens: torch.Tensor, baseline: str) -> torch.Tensor:
    """The baseline prompt for ``pad``/``bos``: every token replaced by pad (or BOS), a leading BOS kept.

    Keeping BOS keeps the attention sink that models rely on, so the path from baseline to input changes the
    words of the prompt, not its frame.
    """
    tokenizer = model.tokenizer
    token_id = tokenizer.pad_token_id if baseline == "pad" else tokenizer.bos_token_id
    if not isinstance(token_id, int):
        raise InvalidRequestError(
            f"{model.model_id}'s tokenizer has no {baseline} token; use another baseline", field="options.baseline"
        )
    out = torch.full_like(tokens, token_id)
    bos = tokenizer.bos_token_id
    keep = tokens[:, 0] == bos if isinstance(bos, int) else torch.zeros_like(tokens[:, 0], dtype=torch.bool)
    out[:, 0] = torch.where(keep, tokens[:, 0], out[:, 0])
    return out


def baseline_embedding(context: AttributionContext, clean: torch.Tensor) -> torch.Tensor:
    """The baseline's embedding ``[1, pos, d_model]``: zeros, or the embedding of the baseline prompt."""
    baseline = context.options.baseline
    if baseline == "zero":
        return torch.zeros_like(clean)
    return embedding_of(context.model, baseline_tokens(context.model, context.tokens, baseline))


def embedding_gradient(context: AttributionContext) -> EmbeddingGradient:
    """The clean embedding ``[pos, d_model]``, the target's gradient with respect to it, and the target value."""
    return context.gradient(GradientRequest(context.tokens, context.target.position, context.readout))
