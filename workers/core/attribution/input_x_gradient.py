"""Input × gradient: the first-order estimate of each token's contribution, summed over ``d_model``."""

from __future__ import annotations

from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.embeddings import embedding_gradient
from workers.core.attribution.results import AttributionResult


class InputXGradient(AttributionMethod):
    """Σ_d e_t ⊙ ∂f/∂e_t per token (Captum's ``InputXGradient`` over the embeddings, summed)."""

    name = "input_x_gradient"

    def attribute(self, context: AttributionContext) -> AttributionResult:
        embedding, grad, value = embedding_gradient(context)
        context.progress(1.0)
        return context.result(value=value, scores=(embedding * grad).sum(-1).float())
