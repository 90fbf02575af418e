"""``activations``: any set of hooks read on one prompt or a batch, sliced on the server.

Hooks are TransformerLens names. A hook written with ``*`` for its layer (``blocks.*.attn.hook_z``) stands for
that site at every layer of ``layers`` (every layer when ``layers`` is absent); ``layers`` applies to nothing else.
Each slice applies where its axis exists: ``positions`` to ``position`` (``query_position`` for patterns),
``heads`` to ``head``, ``dims`` to the feature axis (``d_model``, ``d_mlp``, ``d_head``); ``top_k`` keeps, for
every other index, the k largest absolute values of the last axis with their indices.

A result up to :data:`MAX_RESULT_BYTES` comes back as JSON; a larger one (or any, with ``output: safetensors``)
as one safetensors file the result links to, up to the model's ``max_artifact_bytes``; larger still is refused
before it runs (``result_too_large``, naming the bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

from pydantic import Field

from workers.core.checks import check_indices
from workers.core.errors import InvalidRequestError
from workers.core.memory import dtype_bytes, forward_bytes
from workers.kinds.artifacts import ArtifactLink
from workers.kinds.base import Kind, Prompt, ResultBase, ResultPart, SharesForwards
from workers.kinds.grids import Values
from workers.kinds.prompts import PromptsSpec

if TYPE_CHECKING:
    from workers.core.hooks import HookName
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = [
    "ARTIFACT_NAME",
    "KIND",
    "MAX_PROMPTS",
    "MAX_RESULT_BYTES",
    "ActivationsResult",
    "ActivationsSpec",
    "site_axes",
]

MAX_PROMPTS = 16
MAX_RESULT_BYTES = 1_000_000
"""A result's values as float32 may take this many bytes in JSON; larger ones come back as a file."""
ARTIFACT_NAME = "activations.safetensors"
Output = Literal["auto", "json", "safetensors"]

LAYER_WILDCARD = "blocks.*."
FEATURE_AXES = frozenset({"d_model", "d_mlp", "d_head", "scale"})
Index = Annotated[int, Field(ge=0, le=1_000_000)]
Position = Annotated[int, Field(ge=-100_000, le=100_000)]


class Widths(Protocol):
    """The facts that size an activation: a model card (API) or the loaded model's facts (worker)."""

    @property
    def n_layers(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n_kv_heads(self) -> int: ...
    @property
    def d_head(self) -> int: ...
    @property
    def d_mlp(self) -> int: ...
    @property
    def d_model(self) -> int: ...


HookCheck = Callable[..., "HookName"]
"""``hook(name, field=...)``: a hook parsed and checked against the model (``ModelView.hook``, ``HookedModel.hook``)."""


def site_axes(site: str, card: Widths, n_pos: int) -> list[tuple[str, int]]:
    """The axes (name, size) of one prompt's activation at ``site``, without the batch axis."""
    if site == "attn.hook_pattern":
        return [("head", card.n_heads), ("query_position", n_pos), ("key_position", n_pos)]
    if site in ("attn.hook_q", "attn.hook_z"):
        return [("position", n_pos), ("head", card.n_heads), ("d_head", card.d_head)]
    if site in ("attn.hook_k", "attn.hook_v"):
        return [("position", n_pos), ("head", card.n_kv_heads), ("d_head", card.d_head)]
    if site == "mlp.hook_post":
        return [("position", n_pos), ("d_mlp", card.d_mlp)]
    if site == "ln_final.hook_scale":
        return [("position", n_pos), ("scale", 1)]
    return [("position", n_pos), ("d_model", card.d_model)]


@dataclass(frozen=True)
class Plan:
    """One hook's read for one prompt: the axes, the index list per axis (``None``: whole), the result shape."""

    hook: str
    axes: list[str]
    picks: list[list[int] | None]
    shape: list[int]


class ActivationsSpec(SharesForwards, PromptsSpec):
    kind: Literal["activations"] = "activations"

    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)] | None = Field(
        default=None, description="a batch: each prompt read on its own, results in the same order"
    )
    hooks: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1, max_length=256)] = (
        Field(description="TransformerLens hook names; blocks.*.site means that site at every layer of `layers`")
    )
    layers: Annotated[list[Index], Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="the layers a blocks.*. hook expands to (all when absent)"
    )
    positions: Annotated[list[Position], Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="positions to keep, negative from the end (all when absent)"
    )
    heads: Annotated[list[Index], Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="heads to keep at per-head hooks (all when absent)"
    )
    dims: Annotated[list[Index], Field(min_length=1, max_length=100_000)] | None = Field(
        default=None, description="indices of the feature axis to keep: d_model, d_mlp or d_head (all when absent)"
    )
    top_k: int | None = Field(
        default=None, ge=1, le=1024, description="keep the k largest |values| of the last axis, with their indices"
    )
    output: Output = Field(
        default="auto",
        description=f"auto: JSON up to {MAX_RESULT_BYTES} bytes of values, else a safetensors file the result links "
        "to; json: refuse a larger result; safetensors: always the file",
    )

    def hook_names(self, check_hook: HookCheck, widths: Widths) -> list[str]:
        """The hooks read, wildcards expanded, each checked against the model (``unknown_hook`` names it)."""
        n_layers = widths.n_layers
        layers = check_indices(self.layers, n_layers, "layers", "layer")
        names: list[str] = []
        for i, name in enumerate(self.hooks):
            if name.startswith(LAYER_WILDCARD):
                expanded = [f"blocks.{layer}.{name[len(LAYER_WILDCARD) :]}" for layer in layers]
            else:
                expanded = [name]
            for hook in expanded:
                names.append(str(check_hook(hook, field=f"hooks.{i}")))
        if len(set(names)) != len(names):
            raise InvalidRequestError("hooks lists a hook twice", field="hooks")
        return names

    def plans(self, check_hook: HookCheck, widths: Widths, n_pos: int, *, field: str = "prompt") -> list[Plan]:
        """What is read of each hook for a prompt of ``n_pos`` tokens, slices checked (``out_of_range``)."""
        positions = None
        if self.positions is not None:
            bad = [p for p in self.positions if not -n_pos <= p < n_pos]
            if bad:
                raise InvalidRequestError(
                    f"positions {bad[:5]} out of range for {field}'s {n_pos} tokens: valid are {-n_pos}..{n_pos - 1}",
                    field="positions",
                    code="out_of_range",
                )
            positions = check_indices([p % n_pos for p in self.positions], n_pos, "positions", "position")
        plans = []
        for name in self.hook_names(check_hook, widths):
            axes = site_axes(_site(name), widths, n_pos)
            picks: list[list[int] | None] = []
            for axis, size in axes:
                if axis in ("position", "query_position"):
                    picks.append(positions)
                elif axis == "head" and self.heads is not None:
                    picks.append(check_indices(self.heads, size, "heads", "head"))
                elif axis in FEATURE_AXES and self.dims is not None:
                    picks.append(check_indices(self.dims, size, "dims", axis))
                else:
                    picks.append(None)
            shape = [size if pick is None else len(pick) for (_, size), pick in zip(axes, picks, strict=True)]
            if self.top_k is not None:
                shape[-1] = min(self.top_k, shape[-1])
            plans.append(Plan(name, [axis for axis, _ in axes], picks, shape))
        return plans

    def plans_by_prompt(self, check_hook: HookCheck, widths: Widths, lengths: list[int]) -> list[list[Plan]]:
        return [self.plans(check_hook, widths, n_pos, field=field)
                for (field, _), n_pos in zip(self.prompt_fields(), lengths, strict=True)]

    def result_bytes(self, check_hook: HookCheck, widths: Widths, lengths: list[int]) -> int:
        """The result's numbers (its hooks over every prompt, sliced) as float32, and with ``top_k`` their indices
        as int32: what the JSON holds, or the file."""
        return self.bytes_of(self.plans_by_prompt(check_hook, widths, lengths))

    def bytes_of(self, plans: list[list[Plan]]) -> int:
        values = sum(prod(plan.shape) for prompt in plans for plan in prompt)
        return values * 4 * (2 if self.top_k is not None else 1)

    def as_file(self, size: int) -> bool:
        return self.output == "safetensors" or (self.output == "auto" and size > MAX_RESULT_BYTES)

    def check(self, view: ModelView) -> None:
        size = self.result_bytes(view.hook, view.card, self.prompt_lengths(view))
        bound = view.entry.max_artifact_bytes if self.as_file(size) else MAX_RESULT_BYTES
        if size > bound:
            where = "as a file (the model's max_artifact_bytes)" if self.as_file(size) else "as JSON"
            raise InvalidRequestError(
                f"the result would take {size} bytes (float32 values), over the bound of {bound} {where}: "
                "slice it with positions, heads, dims, layers or top_k",
                field="hooks",
                code="result_too_large",
            )

    def working_memory(self, view: ModelView) -> int:
        """Prompts run one at a time, each one no-grad forward whose read hooks are kept."""
        lengths = self.prompt_lengths(view)
        return forward_bytes(view.card, max(lengths), dtype_bytes(view.card.dtype))


def _site(name: str) -> str:
    """The site of a full hook name (``blocks.3.attn.hook_z`` → ``attn.hook_z``)."""
    return name.split(".", 2)[2] if name.startswith("blocks.") else name


class HookValues(ResultPart):
    """One hook's activation for one prompt: ``values`` over ``axes``, each index labelled."""

    shape: list[int]
    axes: list[str] = Field(description="position, head, d_head, d_model, d_mlp, query_position, key_position, top_k")
    labels: dict[str, list[str | int]] = Field(
        description="per axis the label of every index: token strings for positions, the kept index otherwise, "
        "the rank for top_k"
    )
    values: Values | None = Field(description="the numbers; null when they are in the result's `artifact`")
    indices: Values | None = Field(default=None, description="with top_k: each value's index on the sliced axis")
    sliced_axis: str | None = Field(default=None, description="with top_k: the axis top_k replaced")
    tensor: str | None = Field(
        default=None,
        description="with an artifact: the values' tensor name in the file (the indices are `{tensor}.indices`)",
    )


class PromptHooks(ResultPart):
    tokens: list[str] = Field(description="the prompt's tokens, BOS first")
    hooks: dict[str, HookValues] = Field(description="by hook name, in request order (blocks.*. in `layers` order)")


class ActivationsResult(ResultBase):
    model: str
    prompts: list[PromptHooks] = Field(description="one per prompt, in request order")
    artifact: ArtifactLink | None = Field(
        default=None, description="the safetensors file holding the values, when they were too many for JSON"
    )


def _labels(plan: Plan, sizes: list[int], tokens: list[str], top_k: int | None) -> dict[str, list[str | int]]:
    labels: dict[str, list[str | int]] = {}
    for i, (axis, pick, size) in enumerate(zip(plan.axes, plan.picks, sizes, strict=True)):
        kept = list(range(size)) if pick is None else pick
        if top_k is not None and i == len(plan.axes) - 1:
            labels["top_k"] = list(range(plan.shape[-1]))
        elif axis in ("position", "query_position", "key_position"):
            labels[axis] = [tokens[p] for p in kept]
        else:
            labels[axis] = list(kept)
    return labels


def run(ctx: JobContext, spec: ActivationsSpec) -> ActivationsResult:
    import torch

    from workers.core.progress import check_cancelled
    from workers.core.slicing import select

    model = ctx.model
    fields = spec.prompt_fields()
    tokenized = [model.tokenize(prompt, field=field) for field, prompt in fields]
    all_plans = spec.plans_by_prompt(model.hook, model.facts, [tokens.shape[1] for tokens in tokenized])
    to_file = spec.as_file(spec.bytes_of(all_plans))
    tensors: dict[str, torch.Tensor] = {}
    prompts = []
    for done, (tokens, plans) in enumerate(zip(tokenized, all_plans, strict=True)):
        check_cancelled(ctx.should_cancel)
        strings = model.token_strings(tokens)
        cache = ctx.reader(tokens, [plan.hook for plan in plans])
        hooks = {}
        for plan in plans:
            tensor = cache[plan.hook][0].float()
            values, indices = select(tensor, plan.picks, spec.top_k)
            axes = list(plan.axes)
            sliced = None
            if spec.top_k is not None:
                sliced, axes[-1] = axes[-1], "top_k"
            name = f"{done}/{plan.hook}" if to_file else None
            if name is not None:
                tensors[name] = values.contiguous().cpu()
                if indices is not None:
                    tensors[f"{name}.indices"] = indices.to(torch.int32).contiguous().cpu()
            hooks[plan.hook] = HookValues(
                shape=list(values.shape),
                axes=axes,
                labels=_labels(plan, list(tensor.shape), strings, spec.top_k),
                values=None if to_file else values.tolist(),
                indices=None if to_file or indices is None else indices.tolist(),
                sliced_axis=sliced,
                tensor=name,
            )
        prompts.append(PromptHooks(tokens=strings, hooks=hooks))
        ctx.progress((done + 1) / len(fields))
    artifact = None
    if to_file:
        from safetensors.torch import save

        artifact = ctx.save_artifact(ARTIFACT_NAME, save(tensors, metadata={"model": model.model_id}))
    return ActivationsResult(model=model.model_id, prompts=prompts, artifact=artifact)


KIND = Kind(spec=ActivationsSpec, result=ActivationsResult, run=run, soft_limit_s=60.0, hard_limit_s=90.0)
