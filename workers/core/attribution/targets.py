"""Targets: the scalar an attribution explains, and the cheap readout that computes it from the final residual.

A target is a token's logit or log-prob at one position, or the logit difference of two tokens. The readout
applies the model's own final norm at that position only and multiplies by only the unembedding rows needed
(all rows only for a single-token log-prob), then Gemma 2's final logit softcapping when the config sets it.
That is the model's own computation at one position, without the full ``[batch, pos, vocab]`` logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from workers.core.attribution.request import TargetKind, TargetSpec
from workers.core.checks import check_position
from workers.core.errors import InvalidRequestError
from workers.core.hooked_model import HookedModel


@dataclass(frozen=True)
class Target:
    """A resolved target: token ids with their signs (+1, or +1 and −1 for a contrast), at a position."""

    kind: TargetKind
    position: int
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]

    @property
    def is_contrast(self) -> bool:
        return len(self.token_ids) == 2

    @property
    def signs(self) -> tuple[float, ...]:
        return (1.0, -1.0) if self.is_contrast else (1.0,)

    @property
    def uses_full_vocab(self) -> bool:
        """A single-token log-prob needs the softmax normaliser; a contrast does not (it cancels)."""
        return self.kind == "logprob" and not self.is_contrast

    def description(self) -> str:
        names = [repr(token) for token in self.tokens]
        if self.is_contrast:
            return f"{self.kind}({names[0]}) − {self.kind}({names[1]}) at position {self.position}"
        return f"{self.kind}({names[0]}) at position {self.position}"


def resolve_target(model: HookedModel, spec: TargetSpec, n_positions: int) -> Target:
    """Token ids and the absolute position of a target; each text must be a single token."""
    if spec.contrast is not None:
        texts = tuple(spec.contrast)
        if len(texts) != 2:
            raise InvalidRequestError("target.contrast takes exactly two tokens", field="target.contrast")
        ids = tuple(model.token_id(text, field="target.contrast") for text in texts)
        if ids[0] == ids[1]:
            raise InvalidRequestError("the two contrast tokens are the same token", field="target.contrast")
    elif spec.token is not None:
        texts = (spec.token,)
        ids = (model.token_id(spec.token, field="target.token"),)
    else:
        raise InvalidRequestError("give exactly one of target.token and target.contrast", field="target")
    position = check_position(spec.position, n_positions)
    return Target(kind=spec.kind, position=position, token_ids=ids, tokens=texts)


class Readout:
    """The target as a function of the final residual stream at the target position (before the final norm)."""

    def __init__(self, model: HookedModel, target: Target) -> None:
        hf = model.model
        self.target = target
        self.final_norm: nn.Module = model.adapter.module(hf, model.adapter.final_norm)
        unembed = hf.get_output_embeddings()  # type: ignore[no-untyped-call]  # transformers leaves it untyped
        if not isinstance(unembed, nn.Linear):
            raise InvalidRequestError(f"{model.model_id} has no linear output layer", field="model")
        self.unembed = unembed
        cap = getattr(hf.config, "final_logit_softcapping", None)
        self.softcap: float | None = float(cap) if cap else None
        ids = torch.tensor(target.token_ids, device=unembed.weight.device)
        self.ids = ids
        self.signs = torch.tensor(target.signs, device=unembed.weight.device, dtype=torch.float32)

    def _cap(self, logits: torch.Tensor) -> torch.Tensor:
        if self.softcap is None:
            return logits
        return torch.tanh(logits / self.softcap) * self.softcap

    def logits(self, normed: torch.Tensor) -> torch.Tensor:
        """Every token's logit from normed residuals ``[..., d_model]`` (for the logit lens and log-probs)."""
        return self._cap(self.unembed(normed).float())

    def target_logits(self, normed: torch.Tensor) -> torch.Tensor:
        """The target tokens' logits ``[..., k]`` from only their unembedding rows."""
        rows = self.unembed.weight[self.ids]
        raw = normed @ rows.T
        if self.unembed.bias is not None:
            raw = raw + self.unembed.bias[self.ids]
        return self._cap(raw.float())

    def from_normed(self, normed: torch.Tensor) -> torch.Tensor:
        """The target value ``[...]`` from normed residuals ``[..., d_model]``."""
        if self.target.uses_full_vocab:
            log_probs = torch.log_softmax(self.logits(normed), dim=-1)
            return log_probs[..., self.target.token_ids[0]]
        return self.target_logits(normed) @ self.signs

    def __call__(self, resid: torch.Tensor) -> torch.Tensor:
        """The target value ``[...]`` from final residuals ``[..., d_model]`` at the target position."""
        return self.from_normed(self.final_norm(resid))
