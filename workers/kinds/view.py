"""What the submission checks know of a model without its weights: its card, its tokenizer, its registry entry.

The API builds a :class:`ModelView` from the card and ``tokenizer.json`` a worker publishes (or the embedded
runtime publishes before the API listens); the worker builds the same view from the model it loaded. Both run
the same :meth:`JobSpecBase.check <workers.kinds.base.JobSpecBase.check>` on it, with the ``tokenizers`` library
only, so the checks, their codes and their messages are one piece of code in both processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from workers.cards import ModelCard
from workers.core.checks import check_feature, check_prompt_length, check_single_token
from workers.core.errors import PromptError, UnknownHookError
from workers.core.hooks import HookName, parse_hook_name
from workers.core.registry import ModelEntry

__all__ = ["ModelView"]


@dataclass(frozen=True)
class ModelView:
    card: ModelCard
    tokenizer: Tokenizer
    entry: ModelEntry

    @property
    def model_id(self) -> str:
        return self.card.model

    def tokenize(self, prompt: str, *, field: str = "prompt", prepend_bos: bool = True) -> list[int]:
        """Token ids as the worker's ``HookedModel.tokenize`` makes them, BOS first, with its limits."""
        if not prompt:
            raise PromptError("the prompt is empty", field=field)
        ids = list(self.tokenizer.encode(prompt, add_special_tokens=False).ids)
        if prepend_bos and self.card.bos_token_id is not None:
            ids = [self.card.bos_token_id, *ids]
        check_prompt_length(len(ids), self.card.max_tokens, self.model_id, field=field)
        return ids

    def token_id(self, text: str, *, field: str) -> int:
        """The id of a text that must be exactly one token (an answer, a target)."""
        ids = list(self.tokenizer.encode(text, add_special_tokens=False).ids)
        check_single_token(text, ids, self.token_strings(ids), field=field)
        return ids[0]

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.tokenizer.decode([i], skip_special_tokens=False) for i in ids]

    def hook(self, name: str, *, field: str = "hook") -> HookName:
        """A hook name parsed and checked against the model's hooks."""
        hook = parse_hook_name(name, field=field)
        if str(hook) not in self.card.hook_names:
            n_layers = self.card.n_layers
            if hook.layer is not None and not 0 <= hook.layer < n_layers:
                message = f"{hook}: layer {hook.layer} is out of range; {self.model_id} has layers 0..{n_layers - 1}"
            else:
                message = f"{self.model_id} ({self.card.family}) has no {hook.site}"
            raise UnknownHookError(message, field=field)
        return hook

    def sae_hook(self, sae_id: str) -> str:
        """The hook an SAE of this model reads, or :class:`UnknownSaeError` listing the served ones."""
        return self.entry.get_sae(sae_id).hook

    def sae_feature(self, sae_id: str, feature: int) -> None:
        """A feature id checked against the SAE's width, where the card has it (the worker reads it from the
        SAE's cfg.json); an SAE whose width is not on the card has its features checked when a worker loads it."""
        d_sae = self.card.sae_widths.get(sae_id)
        if d_sae is not None:
            check_feature(feature, d_sae, sae_id)
