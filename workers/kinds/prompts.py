"""What kinds that read one prompt or a batch share: exactly one of ``prompt`` and ``prompts``, and the field an
error about each of them names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, model_validator

from workers.kinds.base import JobSpecBase, Prompt

if TYPE_CHECKING:
    from workers.kinds.view import ModelView

__all__ = ["MAX_PROMPTS", "PromptsSpec"]

MAX_PROMPTS = 64


class PromptsSpec(JobSpecBase):
    """``prompt`` or ``prompts`` (exactly one); a kind with a smaller batch limit redeclares ``prompts``."""

    prompt: Prompt | None = None
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)] | None = Field(
        default=None, description="a batch: each prompt read on its own, results in the same order"
    )

    @model_validator(mode="after")
    def _one_of_prompt_or_prompts(self) -> PromptsSpec:
        if (self.prompt is None) == (self.prompts is None):
            raise ValueError("give exactly one of prompt or prompts")
        return self

    @property
    def all_prompts(self) -> list[str]:
        return [self.prompt] if self.prompt is not None else list(self.prompts or [])

    def prompt_fields(self) -> list[tuple[str, str]]:
        """Each prompt with the field an error about it names (``prompt``, or ``prompts.3``)."""
        if self.prompt is not None:
            return [("prompt", self.prompt)]
        return [(f"prompts.{i}", p) for i, p in enumerate(self.prompts or [])]

    def prompt_lengths(self, view: ModelView) -> list[int]:
        return [len(view.tokenize(prompt, field=field)) for field, prompt in self.prompt_fields()]
