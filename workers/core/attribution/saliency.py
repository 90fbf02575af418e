"""Saliency: how strongly the target reacts to each token's embedding, the gradient's L2 norm per token."""

from __future__ import annotations

from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.embeddings import embedding_gradient
from workers.core.attribution.results import AttributionResult


class Saliency(AttributionMethod):
    """‖∂f/∂e_t‖₂ for each token embedding e_t (Captum's ``Saliency`` with ``abs=False``, then the norm)."""

    name = "saliency"

    def attribute(self, context: AttributionContext) -> AttributionResult:
        _, grad, value = embedding_gradient(context)
        context.progress(1.0)
        return context.result(value=value, scores=grad.float().norm(dim=-1))
