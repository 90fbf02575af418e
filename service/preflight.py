"""Checks a job before it is queued, so the errors a client can fix come back as 4xx at once.

Unknown models and SAEs (404), prompts over the model's token limit (413), clean/corrupted prompts of different
lengths and multi-token answers (400), and jobs whose estimated memory can never fit a worker (422, naming the
bytes). Checks needing a tokenizer or facts run when a worker has published the model's card; before that the
worker makes the same checks and the job fails with the same codes.
"""

from __future__ import annotations

from service.catalog import Catalog
from service.errors import JobTooLargeError
from workers.cards import ModelCard
from workers.core.errors import InvalidRequestError
from workers.kinds import KindUnavailableError, kind_available
from workers.specs import AttributionSpec, JobSpec, PatchingSpec, SaeEncodeSpec, SteerSpec

__all__ = ["estimate_job_bytes", "preflight"]

_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _forward_bytes(card: ModelCard, positions: int) -> int:
    """Activations of one sequence kept through a forward: residual, attention (patterns included), MLP, logits."""
    per_layer = positions * (8 * card.d_model + 2 * card.d_mlp + card.n_heads * positions)
    return (card.n_layers * per_layer + positions * card.d_vocab) * _DTYPE_BYTES.get(card.dtype, 4)


def estimate_job_bytes(card: ModelCard, spec: JobSpec, positions: int) -> int:
    """A lower bound on a job's working memory beyond the weights: the forwards it cannot avoid holding at once.

    Patching holds the clean and corrupted runs; gradient attribution holds the forward graph and its gradient
    (about three copies); integrated gradients batches its steps; a batch of prompts holds one forward each.
    """
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


def _single_token(catalog: Catalog, model: str, text: str, field: str) -> None:
    n = catalog.count_single(model, text)
    if n != 1:
        raise InvalidRequestError(f"{text!r} must be a single token but is {n} tokens", field=field)


def preflight(catalog: Catalog, spec: JobSpec, *, memory_limit: int) -> None:
    """Raise the error the worker would raise, where it can be known without the model."""
    entry = catalog.registry.get(spec.model)
    if isinstance(spec, SaeEncodeSpec | SteerSpec):
        entry.get_sae(spec.sae)
    if not kind_available(spec.kind):
        raise KindUnavailableError(f"job kind {spec.kind!r} is not available on this deployment", field="kind")
    card = catalog.card(spec.model)
    if card is None:
        return
    if isinstance(spec, PatchingSpec):
        clean = catalog.tokenize(spec.model, spec.clean_prompt, field="clean_prompt")
        corrupted = catalog.tokenize(spec.model, spec.corrupted_prompt, field="corrupted_prompt")
        if len(clean) != len(corrupted):
            raise InvalidRequestError(
                f"clean_prompt is {len(clean)} tokens but corrupted_prompt is {len(corrupted)}; patching needs equal"
                " lengths",
                field="corrupted_prompt",
                code="length_mismatch",
            )
        _single_token(catalog, spec.model, spec.answer, "answer")
        if spec.wrong_answer is not None:
            _single_token(catalog, spec.model, spec.wrong_answer, "wrong_answer")
        positions = len(clean)
    elif isinstance(spec, SaeEncodeSpec):
        lengths = [
            len(catalog.tokenize(spec.model, p, field="prompt" if spec.prompt is not None else f"prompts[{i}]"))
            for i, p in enumerate(spec.all_prompts)
        ]
        positions = max(lengths)
    else:
        positions = len(catalog.tokenize(spec.model, spec.prompt))
        if isinstance(spec, SteerSpec):
            positions += spec.max_new_tokens
            if positions > card.max_tokens:
                raise InvalidRequestError(
                    f"prompt plus max_new_tokens is {positions} tokens; {spec.model} accepts at most {card.max_tokens}",
                    field="max_new_tokens",
                    code="prompt_too_long",
                )
    needed = estimate_job_bytes(card, spec, positions)
    if needed > memory_limit:
        raise JobTooLargeError(
            f"this job needs an estimated {needed} bytes of working memory; a worker allows {memory_limit} bytes",
            field="prompt",
        )
