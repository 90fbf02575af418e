"""Steer generation with an SAE feature: add its decoder direction at the SAE's hook, or clamp the feature.

The steered and unsteered continuations are generated side by side as a batch of two (row 0 plain, row 1
steered), so they cost one forward per new token together and share the same sampling stream position by
position. Steering applies at every position, prompt included, on every step. Generation recomputes the whole
sequence each step (no key/value cache), which keeps hook semantics exact and is cheap at the lengths served here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from workers.core.defaults import STEER_COEFFICIENT, STEER_MAX_NEW_TOKENS, STEER_SEED, STEER_TEMPERATURE
from workers.core.errors import InvalidRequestError, PromptTooLongError
from workers.core.hooked_model import HookedModel
from workers.core.progress import Progress, ShouldCancel, check_cancelled, never_cancel, no_progress
from workers.core.sae.autoencoder import Sae

__all__ = ["SteerRequest", "SteerResult", "steer"]


@dataclass(frozen=True)
class SteerRequest:
    """Add ``coefficient`` x the feature's decoder direction, or (``clamp`` set) hold the feature at ``clamp``.

    ``temperature`` 0 is greedy; above 0 samples with a generator seeded by ``seed``.
    """

    prompt: str
    feature: int
    coefficient: float = STEER_COEFFICIENT
    clamp: float | None = None
    max_new_tokens: int = STEER_MAX_NEW_TOKENS
    temperature: float = STEER_TEMPERATURE
    seed: int = STEER_SEED


@dataclass(frozen=True)
class SteerResult:
    model: str
    sae: str
    hook: str
    feature: int
    coefficient: float
    clamp: float | None
    prompt: str
    tokens: tuple[str, ...]
    steered_text: str
    unsteered_text: str
    steered_tokens: tuple[str, ...]
    unsteered_tokens: tuple[str, ...]


def _check(request: SteerRequest, sae: Sae) -> None:
    """What would make generation wrong: no token to generate, a negative temperature (it inverts the
    distribution), a non-finite direction. How many tokens and how hot is the job spec's to limit."""
    sae.check_feature(request.feature)
    if request.max_new_tokens < 1:
        raise InvalidRequestError(
            f"max_new_tokens must be at least 1, got {request.max_new_tokens}", field="max_new_tokens"
        )
    if not request.temperature >= 0.0:
        raise InvalidRequestError(
            f"temperature must be 0 (greedy) or more, got {request.temperature}", field="temperature"
        )
    for name in ("coefficient", "clamp"):
        value = getattr(request, name)
        if value is not None and not torch.isfinite(torch.tensor(float(value))):
            raise InvalidRequestError(f"{name} must be finite", field=name)


def steering_fn(sae: Sae, request: SteerRequest) -> Any:
    """The hook function: rewrites batch row 1 of the hook's activation."""
    direction = sae.decoder_direction(request.feature)

    def fn(activation: torch.Tensor) -> torch.Tensor:
        out = activation.clone()
        row = out[1]
        flat = sae.flatten(row)
        if request.clamp is None:
            delta = request.coefficient * direction
            flat = flat + delta
        else:
            current = sae.encode(flat)[..., request.feature : request.feature + 1]
            flat = flat + (request.clamp - current) * direction
        out[1] = sae.unflatten(flat, row)
        return out

    return fn


def steer(
    model: HookedModel,
    sae: Sae,
    request: SteerRequest,
    *,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> SteerResult:
    """Generate ``max_new_tokens`` with and without steering from the same prompt."""
    _check(request, sae)
    hook = model.hook(sae.hook, field="sae")
    prompt = model.tokenize(request.prompt)
    total = int(prompt.shape[1]) + request.max_new_tokens
    if total > model.max_tokens:
        raise PromptTooLongError(
            f"prompt plus max_new_tokens is {total} tokens; {model.model_id} accepts at most {model.max_tokens}",
            field="max_new_tokens",
        )
    generator = torch.Generator(device="cpu").manual_seed(request.seed)
    eos = model.tokenizer.eos_token_id
    fn = steering_fn(sae, request)
    seq = prompt.expand(2, -1).clone()
    done = torch.zeros(2, dtype=torch.bool)
    new: list[list[int]] = [[], []]
    for step in range(request.max_new_tokens):
        check_cancelled(should_cancel)
        logits = model.run(seq, hooks={str(hook): [fn]}, logits="last").logits
        if logits is None:
            raise RuntimeError("the forward returned no logits")
        last = logits[:, -1].float()
        if request.temperature == 0.0:
            nxt = last.argmax(-1)
        else:
            probs = (last / request.temperature).softmax(-1).cpu()
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        for row in range(2):
            if not done[row]:
                token = int(nxt[row])
                new[row].append(token)
                if isinstance(eos, int) and token == eos:
                    done[row] = True
        progress((step + 1) / request.max_new_tokens)
        if bool(done.all()):
            break
        seq = torch.cat([seq, nxt.view(2, 1).to(seq.device)], dim=1)
    plain, steered = new
    return SteerResult(
        model=model.model_id,
        sae=sae.id,
        hook=str(hook),
        feature=request.feature,
        coefficient=request.coefficient,
        clamp=request.clamp,
        prompt=request.prompt,
        tokens=tuple(model.token_strings(prompt)),
        steered_text=str(model.tokenizer.decode(steered, skip_special_tokens=True)),
        unsteered_text=str(model.tokenizer.decode(plain, skip_special_tokens=True)),
        steered_tokens=tuple(model.token_strings(steered)),
        unsteered_tokens=tuple(model.token_strings(plain)),
    )
