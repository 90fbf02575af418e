"""The input side of attribution: the embedding layer's outputs, baselines, and gradients with respect to them.

Input methods attribute over ``hook_embed``, the embedding module's output (Gemma's √d_model scale included),
exactly what Captum's ``LayerIntegratedGradients`` on the embedding module interpolates. GPT-2's position
embeddings are added after that hook and are not attributed.
"""

from __future__ import annotations

import torch

from workers.core.attribution.base import AttributionContext
from workers.core.attribution.forward import replace_with, target_values
from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel

EMBED_HOOK = "hook_embed"


def embedding_of(model: HookedModel, tokens: torch.Tensor) -> torch.Tensor:
    """The embedding module's output ``[batch, pos, d_model]`` for ``tokens``."""
    return model.run(tokens, cache=[EMBED_HOOK], stop_at_layer=0, logits="none").cache[EMBED_HOOK]


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


def embedding_gradient(context: AttributionContext) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The clean embedding ``[pos, d_model]``, the target's gradient with respect to it, and the target value."""
    clean = embedding_of(context.model, context.tokens).detach().requires_grad_(True)
    values = target_values(context, batch=1, hooks={EMBED_HOOK: [replace_with(clean)]}, grad=True)
    (grad,) = torch.autograd.grad(values.sum(), clean)
    return clean.detach()[0], grad[0], float(values.detach()[0])
