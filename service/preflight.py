"""Checks a job before it is queued, so the errors a client can fix come back as 4xx at once.

The checks are the spec's own (:meth:`JobSpecBase.check <workers.kinds.base.JobSpecBase.check>`), run on the
model's :class:`ModelView`: the worker runs the same method again on the model it loaded, so a mistake gets one
code, field and status wherever it is caught. Then the job's estimated working memory against what a worker
allows (422, naming the bytes). Unknown models and SAEs need only the registry; everything else needs the
model's card and tokenizer, which a worker publishes when it loads the model (embedded mode publishes them before
the API listens). A job submitted before any worker has described its model is accepted unchecked and its record
says so (``checked: false``); the worker's checks then fail it with the same codes.
"""

from __future__ import annotations

from service.catalog import Catalog
from service.errors import JobTooLargeError
from workers.cards import ModelCard
from workers.kinds import JobSpec
from workers.kinds.attribution import AttributionSpec
from workers.kinds.patching import PatchingSpec
from workers.kinds.sae_encode import SaeEncodeSpec

__all__ = ["estimate_job_bytes", "preflight"]

_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _forward_bytes(card: ModelCard, positions: int) -> int:
    """Activations of one sequence kept through a forward: residual, attention (patterns included), MLP, logits."""
    per_layer = positions * (8 * card.d_model + 2 * card.d_mlp + card.n_heads * positions)
    return (card.n_layers * per_layer + positions * card.d_vocab) * _DTYPE_BYTES.get(card.dtype, 4)


def estimate_job_bytes(card: ModelCard, spec: JobSpec, lengths: list[int]) -> int:
    """A lower bound on a job's working memory beyond the weights: the forwards it cannot avoid holding at once.

    Patching holds the clean and corrupted runs; gradient attribution holds the forward graph and its gradient
    (about three copies); integrated gradients batches its steps; a batch of prompts holds one forward each.
    """
    positions = max(lengths, default=1)
    one = _forward_bytes(card, positions)
    if isinstance(spec, PatchingSpec):
        return 2 * one
    if isinstance(spec, AttributionSpec):
        if spec.method in ("saliency", "input_x_gradient"):
            return 3 * one
        if spec.method == "integrated_gradients":
            return 3 * one * spec.n_steps
        return one
    if isinstance(spec, SaeEncodeSpec):
        return one * len(spec.all_prompts)
    return one


def preflight(catalog: Catalog, spec: JobSpec, *, memory_limit: int) -> bool:
    """Raise the error the worker would raise; ``False`` when the model's card is not known yet (unchecked)."""
    spec.check_entry(catalog.registry.get(spec.model))
    view = catalog.view(spec.model)
    if view is None:
        return False
    spec.check(view)
    needed = estimate_job_bytes(view.card, spec, spec.prompt_lengths(view))
    if needed > memory_limit:
        raise JobTooLargeError(
            f"this job needs an estimated {needed} bytes of working memory; a worker allows {memory_limit} bytes",
            field="prompt",
        )
    return True
