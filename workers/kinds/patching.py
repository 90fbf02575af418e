"""``patching``: activation patching of a clean/corrupted prompt pair, exact, attribution or path patching."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias, cast, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from workers.core.checks import check_equal_lengths, check_heads, check_indices
from workers.core.defaults import PATH_DIRECTION, SWEEP_DIRECTION
from workers.core.errors import CoreError
from workers.core.memory import dtype_bytes, forward_bytes, row_bytes
from workers.kinds.base import JobSpecBase, Kind, Prompt, ResultBase, TokenText
from workers.kinds.grids import PatchGrid, by_name

if TYPE_CHECKING:
    from workers.core.patching import PatchingRequest, PathPatchingRequest
    from workers.kinds.context import JobContext
    from workers.kinds.view import ModelView

__all__ = [
    "COMPOSITE_TARGETS",
    "KIND",
    "PATCHING_TARGETS",
    "TARGET_AXES",
    "PatchingResult",
    "PatchingSpec",
    "PathDetails",
    "TooManyPatchesError",
]

PatchingTarget: TypeAlias = Literal[
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn_out",
    "mlp_out",
    "attn_out_all_pos",
    "mlp_out_all_pos",
    "head_out",
    "head_out_by_pos",
    "head_q",
    "head_k",
    "head_v",
    "head_q_by_pos",
    "head_k_by_pos",
    "head_v_by_pos",
    "head_pattern",
    "head_pattern_by_pos",
    "head_pattern_dest_src",
    "every_block",
]
PATCHING_TARGETS: tuple[str, ...] = get_args(PatchingTarget)
_LP, _LH, _LPH = ("layer", "position"), ("layer", "head"), ("layer", "position", "head")
TARGET_AXES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"), _LP),
    **dict.fromkeys(("attn_out_all_pos", "mlp_out_all_pos"), ("layer",)),
    **dict.fromkeys(("head_out", "head_q", "head_k", "head_v", "head_pattern"), _LH),
    **dict.fromkeys(("head_out_by_pos", "head_q_by_pos", "head_k_by_pos", "head_v_by_pos"), _LPH),
    "head_pattern_by_pos": ("layer", "head", "position"),
    "head_pattern_dest_src": ("layer", "head", "position", "position"),
}
"""The grid each single target sweeps, for counting patches without the core (which imports torch): the axes of
``workers.core.patching.targets.GRANULARITIES``, checked against it by the kinds' tests."""
COMPOSITE_TARGETS: dict[str, tuple[str, ...]] = {"every_block": ("resid_pre", "attn_out", "mlp_out")}
_KV_TARGETS = frozenset({"head_k", "head_v", "head_k_by_pos", "head_v_by_pos"})
"""Key and value targets sweep the key/value heads (fewer than the query heads under grouped-query attention)."""

Index = Annotated[int, Field(ge=0, le=100_000)]
Head = Annotated[list[Index], Field(min_length=2, max_length=2, description="[layer, head]")]


class TooManyPatchesError(CoreError):
    code = "too_many_patches"


class PatchingSpec(JobSpecBase):
    """Activation patching between a clean and a corrupted prompt of the same token length.

    ``exact`` and ``attribution`` sweep ``targets``; ``path`` measures each sender head's effect through the
    ``receivers``' q/k/v inputs only (Wang et al. 2022), everything else frozen.
    """

    kind: Literal["patching"] = "patching"
    clean_prompt: Prompt
    corrupted_prompt: Prompt
    answer: TokenText
    wrong_answer: TokenText | None = Field(default=None, description="required by metric logit_diff")
    metric: Literal["logit_diff", "logprob"] = "logit_diff"
    together: Annotated[list[Head], Field(min_length=1, max_length=4096)] | None = Field(
        default=None,
        description="exact: heads whose outputs (attn.hook_z) are also patched all at once, at `positions` (all "
        "when absent): a circuit's joint effect, in the result's `together`",
    )
    targets: Annotated[list[PatchingTarget], Field(max_length=len(PATCHING_TARGETS))] = Field(
        default_factory=lambda: cast(list[PatchingTarget], ["resid_pre"]),
        description="exact and attribution: granularities; each gives one layer×position(×head) grid "
        "(may be empty when `together` is given)",
    )
    method: Literal["exact", "attribution", "path"] = "exact"
    direction: Literal["denoise", "noise"] | None = Field(
        default=None,
        description=(
            f"denoise patches clean activations into the corrupted run, noise corrupted into clean; absent: "
            f"{SWEEP_DIRECTION} for exact and attribution, {PATH_DIRECTION} for path (Wang et al. 2022)"
        ),
    )
    layers: Annotated[list[Index], Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="exact and attribution: restrict the sweep to these layers (all when absent)"
    )
    positions: Annotated[list[Index], Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="exact and attribution: restrict the sweep to these positions (all when absent)"
    )
    receivers: Annotated[list[Head], Field(min_length=1, max_length=4096)] | Literal["logits"] | None = Field(
        default=None,
        description='path: the receiver heads, [[layer, head], …], or "logits" for each sender\'s direct path into '
        "the final residual (name movers); required by method path",
    )
    senders: Annotated[list[Head], Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="path: the sender heads swept one at a time (every head when absent)"
    )
    receiver_inputs: Annotated[list[Literal["q", "k", "v"]], Field(min_length=1, max_length=3)] = Field(
        default_factory=lambda: cast(list[Literal["q", "k", "v"]], ["q", "k", "v"]),
        description="path: which inputs of the receivers carry the senders' effect",
    )
    freeze_mlps: bool = Field(default=False, description="path: also freeze MLP outputs at their base values")

    @field_validator("targets")
    @classmethod
    def _some_target(cls, targets: list[PatchingTarget], info: ValidationInfo) -> list[PatchingTarget]:
        """``together`` is read first (it comes first), so an empty list can be refused naming ``targets``."""
        if not targets and info.data.get("together") is None:
            raise ValueError("targets is empty: list at least one, or heads to patch `together`")
        return targets

    @model_validator(mode="after")
    def _consistent(self) -> PatchingSpec:
        if self.metric == "logit_diff" and self.wrong_answer is None:
            raise ValueError("wrong_answer is required when metric is logit_diff")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets must not repeat")
        if self.together is not None and self.method != "exact":
            raise ValueError("together applies to method exact only")
        if self.method == "path" and self.receivers is None:
            raise ValueError("receivers is required when method is path")
        if self.method != "path" and (self.receivers is not None or self.senders is not None):
            raise ValueError("receivers and senders apply to method path only")
        return self

    def check(self, view: ModelView) -> None:
        clean = view.tokenize(self.clean_prompt, field="clean_prompt")
        corrupted = view.tokenize(self.corrupted_prompt, field="corrupted_prompt")
        check_equal_lengths(clean, corrupted, view.token_strings(clean), view.token_strings(corrupted))
        view.token_id(self.answer, field="answer")
        if self.wrong_answer is not None:
            view.token_id(self.wrong_answer, field="wrong_answer")
        card = view.card
        check_indices(self.layers, card.n_layers, "layers", "layer")
        check_indices(self.positions, len(clean), "positions", "position")
        for field, heads in (("receivers", self.receivers), ("senders", self.senders), ("together", self.together)):
            if heads is not None and heads != "logits":
                check_heads([(h[0], h[1]) for h in heads], card.n_layers, card.n_heads, field)
        patches, allowed = self.patch_count(view, len(clean)), view.entry.max_patches
        if patches > allowed:
            field = "senders" if self.method == "path" else "targets"
            raise TooManyPatchesError(
                f"this job makes {patches} patches; {view.model_id} allows at most {allowed} per job: restrict "
                + ("the senders" if self.method == "path" else "layers, positions or targets, or split the job"),
                field=field,
            )

    def patch_count(self, view: ModelView, n_pos: int) -> int:
        """Patches the job makes on a prompt of ``n_pos`` tokens: one per sender for path patching, else each
        target's grid (layers × positions × heads, composites expanded, each single target once)."""
        card = view.card
        if self.method == "path":
            return len(self.senders) if self.senders is not None else card.n_layers * card.n_heads
        singles = dict.fromkeys(s for t in self.targets for s in COMPOSITE_TARGETS.get(t, (t,)))
        sizes = {"layer": len(self.layers or ()) or card.n_layers, "position": len(self.positions or ()) or n_pos}
        return (self.together is not None) + sum(
            math.prod({**sizes, "head": card.n_kv_heads if t in _KV_TARGETS else card.n_heads}[axis]
                      for axis in TARGET_AXES[t])
            for t in singles
        )

    def prompt_lengths(self, view: ModelView) -> list[int]:
        n = len(view.tokenize(self.clean_prompt, field="clean_prompt"))
        return [n, n]

    def working_memory(self, view: ModelView) -> int:
        """The clean and corrupted runs, read at every layer and kept through the sweep, plus at least one
        patched row in flight (the core chunks rows by the same :func:`~workers.core.memory.row_bytes`)."""
        n_pos, itemsize, card = self.prompt_lengths(view)[0], dtype_bytes(view.card.dtype), view.card
        return 2 * forward_bytes(card, n_pos, itemsize, kept_layers=card.n_layers) + row_bytes(card, n_pos, itemsize)

    def to_request(self) -> PatchingRequest | PathPatchingRequest:
        from workers.core.patching import PatchingRequest, PathPatchingRequest

        if self.method == "path":
            return PathPatchingRequest(
                clean_prompt=self.clean_prompt,
                corrupted_prompt=self.corrupted_prompt,
                answer=self.answer,
                wrong_answer=self.wrong_answer,
                metric=self.metric,
                receivers="logits" if self.receivers == "logits" else tuple((h[0], h[1]) for h in self.receivers or ()),
                senders=None if self.senders is None else tuple((h[0], h[1]) for h in self.senders),
                receiver_inputs=tuple(self.receiver_inputs),
                direction=self.direction or PATH_DIRECTION,
                freeze_mlps=self.freeze_mlps,
            )
        return PatchingRequest(
            clean_prompt=self.clean_prompt,
            corrupted_prompt=self.corrupted_prompt,
            answer=self.answer,
            wrong_answer=self.wrong_answer,
            metric=self.metric,
            targets=tuple(self.targets),
            method=self.method,
            direction=self.direction or SWEEP_DIRECTION,
            layers=None if self.layers is None else tuple(self.layers),
            positions=None if self.positions is None else tuple(self.positions),
            together=None if self.together is None else tuple((h[0], h[1]) for h in self.together),
        )


class JointEffect(BaseModel):
    """Several heads patched at once: path patching's senders, or a sweep's `together`."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    raw_value: float = Field(description="the metric with every head patched at once")
    value: float | None = Field(description="its normalised effect; null when clean equals corrupted")


class PathDetails(BaseModel):
    """Path patching's receivers and the joint effect of all senders."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    receivers: list[list[int]] | Literal["logits"] = Field(
        description='[[layer, head], …] whose inputs carried the senders\' effect, or "logits" (the direct path)'
    )
    receiver_inputs: list[str]
    joint: JointEffect


class PatchingResult(ResultBase):
    """Clean and corrupted metrics and one grid per target (path patching: the ``senders`` layer × head grid)."""

    method: str
    direction: str
    metric: str
    tokens: list[str] = Field(description="the clean prompt's tokens, BOS first")
    corrupted_tokens: list[str]
    clean_metric: float
    corrupted_metric: float
    normalised: bool = Field(description="false when the clean and corrupted metrics are equal")
    targets: Annotated[dict[str, PatchGrid], BeforeValidator(by_name)]
    path: PathDetails | None = Field(default=None, description="method path only")
    together: JointEffect | None = Field(
        default=None, description="exact with the spec's `together`: the metric with those heads patched at once"
    )
    warnings: list[str] = Field(default_factory=list)


def run(ctx: JobContext, spec: PatchingSpec) -> PatchingResult:
    from workers.core.patching import PathPatchingRequest, run_patching, run_path_patching

    request = spec.to_request()
    if isinstance(request, PathPatchingRequest):
        path = run_path_patching(
            ctx.model, request, progress=ctx.progress, should_cancel=ctx.should_cancel, reader=ctx.reader
        )
        return PatchingResult.model_validate(path)
    sweep = run_patching(ctx.model, request, progress=ctx.progress, should_cancel=ctx.should_cancel, reader=ctx.reader)
    return PatchingResult.model_validate(sweep)


KIND = Kind(spec=PatchingSpec, result=PatchingResult, run=run, soft_limit_s=600.0, hard_limit_s=660.0)
