"""What the SAE kinds share: an SAE of the model, and one prompt or a batch of prompts to read it on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.kinds.base import SaeId
from workers.kinds.prompts import MAX_PROMPTS, PromptsSpec

if TYPE_CHECKING:
    from workers.core.registry import ModelEntry
    from workers.kinds.view import ModelView

__all__ = ["MAX_PROMPTS", "SaePromptsSpec"]


class SaePromptsSpec(PromptsSpec):
    """``prompt`` or ``prompts`` (exactly one) and ``sae``, with the checks they need."""

    sae: SaeId

    def check_entry(self, entry: ModelEntry) -> None:
        entry.get_sae(self.sae)

    def check(self, view: ModelView) -> None:
        view.hook(view.sae_hook(self.sae), field="sae")
        self.prompt_lengths(view)
