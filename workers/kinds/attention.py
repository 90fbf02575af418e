"""``attention``: attention patterns of one prompt per layer and head, with per-head summaries.

The pattern grid is destination (query) × source (key) per head, token strings on both position axes, as
CircuitsVis draws it. Summaries per head: entropy in nats (mean over destinations), attention to BOS (mean over
destinations) and to the previous token (mean over destinations 1..n−1; null for a one-token prompt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from workers.core.checks import check_indices
from workers.core.errors import InvalidRequestError
from workers.core.hooks import HookName
from workers.core.memory import dtype_bytes, forward_bytes
from workers.kinds.activations import MAX_RESULT_BYTES
from workers.kinds.base import JobSpecBase, Kind, Prompt, ResultBase, SharesForwards
from workers.kinds.grids import Grid

if TYPE_CHECKING:
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = ["KIND", "AttentionResult", "AttentionSpec"]

Index = Annotated[int, Field(ge=0, le=1_000_000)]


class AttentionSpec(SharesForwards, JobSpecBase):
    kind: Literal["attention"] = "attention"

    prompt: Prompt
    layers: Annotated[list[Index], Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="layers to read (all when absent)"
    )
    heads: Annotated[list[Index], Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="heads to keep in every layer (all when absent)"
    )
    summaries: bool = Field(default=True, description="add per-head entropy, BOS and previous-token attention")

    def prompt_lengths(self, view: ModelView) -> list[int]:
        return [len(view.tokenize(self.prompt))]

    def picks(self, n_layers: int, n_heads: int) -> tuple[list[int], list[int]]:
        return (
            check_indices(self.layers, n_layers, "layers", "layer"),
            check_indices(self.heads, n_heads, "heads", "head"),
        )

    def check(self, view: ModelView) -> None:
        layers, heads = self.picks(view.card.n_layers, view.card.n_heads)
        n_pos = self.prompt_lengths(view)[0]
        size = 4 * len(layers) * len(heads) * n_pos * n_pos
        if size > MAX_RESULT_BYTES:
            raise InvalidRequestError(
                f"the patterns would take {size} bytes (float32 values), over the bound of {MAX_RESULT_BYTES}: "
                "ask for fewer layers or heads, or a shorter prompt",
                field="layers",
                code="result_too_large",
            )

    def working_memory(self, view: ModelView) -> int:
        """One no-grad forward that keeps every read layer's pattern."""
        n_pos = self.prompt_lengths(view)[0]
        itemsize = dtype_bytes(view.card.dtype)
        layers, _ = self.picks(view.card.n_layers, view.card.n_heads)
        patterns = len(layers) * view.card.n_heads * n_pos * n_pos * itemsize
        return forward_bytes(view.card, n_pos, itemsize) + patterns


class AttentionResult(ResultBase):
    model: str
    tokens: list[str] = Field(description="the prompt's tokens, BOS first")
    patterns: Grid = Field(description="axes layer, head, query_position (destination), key_position (source)")
    entropy: Grid | None = Field(description="layer × head: mean entropy of a destination's pattern, in nats")
    bos_attention: Grid | None = Field(description="layer × head: mean attention paid to the first token (BOS)")
    previous_token_attention: Grid | None = Field(
        description="layer × head: mean attention to the previous token over destinations 1..n−1"
    )


def run(ctx: JobContext, spec: AttentionSpec) -> AttentionResult:
    import torch

    model = ctx.model
    layers, heads = spec.picks(model.facts.n_layers, model.facts.n_heads)
    tokens = model.tokenize(spec.prompt)
    strings = model.token_strings(tokens)
    names = [str(HookName.block(layer, "attn.hook_pattern")) for layer in layers]
    cache = ctx.reader(tokens, names)
    index = torch.tensor(heads, dtype=torch.long)
    # [layer, head, query, key]
    pattern = torch.stack(
        [cache[name][0].float().index_select(0, index.to(cache[name].device)).cpu() for name in names]
    )
    labels: dict[str, list[str | int]] = {
        "layer": list(layers),
        "head": list(heads),
        "query_position": list(strings),
        "key_position": list(strings),
    }
    grid = Grid(
        axes=["layer", "head", "query_position", "key_position"],
        labels=labels,
        values=pattern.tolist(),
        units="attention weight (softmax probability)",
    )
    summaries: dict[str, Grid | None] = {"entropy": None, "bos_attention": None, "previous_token_attention": None}
    if spec.summaries:
        head_labels = {"layer": labels["layer"], "head": labels["head"]}
        entropy = -(pattern * torch.where(pattern > 0, pattern.log(), torch.zeros_like(pattern))).sum(-1).mean(-1)
        bos = pattern[..., 0].mean(-1)
        n_pos = pattern.shape[-1]
        previous = (
            pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1) if n_pos > 1 else torch.full(bos.shape, float("nan"))
        )
        for key, values, units in (
            ("entropy", entropy, "nats"),
            ("bos_attention", bos, "attention weight"),
            ("previous_token_attention", previous, "attention weight"),
        ):
            summaries[key] = Grid(axes=["layer", "head"], labels=head_labels, values=values.tolist(), units=units)
    ctx.progress(1.0)
    return AttentionResult(model=model.model_id, tokens=strings, patterns=grid, **summaries)


KIND = Kind(spec=AttentionSpec, result=AttentionResult, run=run, soft_limit_s=60.0, hard_limit_s=90.0)
