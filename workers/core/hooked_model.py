"""A Hugging Face causal LM seen through TransformerLens's hook names.

The model's own code runs unchanged: hook points are PyTorch forward hooks on its modules (see
:mod:`workers.core.sites`), registered only for the hooks a call asks for and removed in ``finally``, so a failed
forward leaves the model clean. One batched forward can read any set of hooks and write any of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.core.adapters import FamilyAdapter, adapter_for
from workers.core.attention import pattern_attention
from workers.core.checks import check_prompt_length, check_single_token
from workers.core.errors import (
    InvalidRequestError,
    PromptError,
    ShapeMismatchError,
    UnknownHookError,
)
from workers.core.hooks import BLOCK_SITES, GLOBAL_SITES, HookName, parse_hook_name, sorted_hooks
from workers.core.sites import (
    ActivationFn,
    BatchExpandedOutputSite,
    HeadSplit,
    InputSite,
    NormSite,
    OutputSite,
    PatternSite,
    Removable,
    ResidMidSite,
    Site,
)
from workers.core.writes import Write, apply_write

HookFn = Callable[[torch.Tensor], torch.Tensor | None]
"""Receives a hook's activation; returns a replacement of the same shape, or ``None`` to leave it."""

LogitsMode = Literal["all", "last", "none"]


@dataclass(frozen=True)
class ModelFacts:
    """Architecture facts a client needs to address hooks and draw results."""

    family: str
    architecture: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int


@dataclass
class RunResult:
    """Logits (``None`` when not computed) and the activations read, by hook name."""

    logits: torch.Tensor | None
    cache: dict[str, torch.Tensor] = field(default_factory=dict)


class _StopForward(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a hook to end a forward early once everything asked for is read."""


def _config_int(config: Any, *names: str, default: int | None = None) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    if default is None:
        raise InvalidRequestError(f"model config lacks {names[0]}", field="model")
    return default


def model_facts(model: PreTrainedModel, family: str) -> ModelFacts:
    config = model.config
    d_model = _config_int(config, "hidden_size")
    n_heads = _config_int(config, "num_attention_heads")
    return ModelFacts(
        family=family,
        architecture=type(model).__name__,
        n_layers=_config_int(config, "num_hidden_layers"),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=_config_int(config, "num_key_value_heads", default=n_heads),
        d_head=_config_int(config, "head_dim", default=d_model // n_heads),
        d_mlp=_config_int(config, "intermediate_size", "n_inner", default=4 * d_model),
        d_vocab=_config_int(config, "vocab_size"),
        n_ctx=_config_int(config, "max_position_embeddings", "n_positions"),
    )


class HookedModel:
    """Read and write TransformerLens-named activations of an HF causal LM."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        model_id: str,
        max_tokens: int | None = None,
        adapter: FamilyAdapter | None = None,
    ) -> None:
        model.train(False)
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.adapter = adapter or adapter_for(str(model.config.model_type))
        self.facts = model_facts(model, self.adapter.family)
        self.max_tokens = min(max_tokens or self.facts.n_ctx, self.facts.n_ctx)
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- structure
    @property
    def device(self) -> torch.device:
        device: torch.device = next(self.model.parameters()).device
        return device

    @property
    def dtype(self) -> torch.dtype:
        dtype: torch.dtype = next(self.model.parameters()).dtype
        return dtype

    @property
    def layers(self) -> nn.ModuleList:
        return self.adapter.layer_list(self.model)

    def _has_site(self, site: str) -> bool:
        return not (site == "hook_pos_embed" and self.adapter.pos_embed is None)

    @property
    def hook_names(self) -> list[str]:
        """Every hook this model has, in forward order."""
        names = [HookName(None, s) for s in GLOBAL_SITES if self._has_site(s)]
        names += [HookName(layer, s) for layer in range(self.facts.n_layers) for s in BLOCK_SITES]
        return [str(hook) for hook in sorted_hooks(names)]

    def hook(self, name: str | HookName, *, field: str = "hook") -> HookName:
        """Parse and check a hook name against this model (layer in range, site present)."""
        hook = name if isinstance(name, HookName) else parse_hook_name(name, field=field)
        if hook.layer is not None and not 0 <= hook.layer < self.facts.n_layers:
            raise UnknownHookError(
                f"{hook}: layer {hook.layer} is out of range; {self.model_id} has layers 0..{self.facts.n_layers - 1}",
                field=field,
            )
        if not self._has_site(hook.site):
            raise UnknownHookError(f"{self.model_id} ({self.adapter.family}) has no {hook.site}", field=field)
        return hook

    def activation_shape(self, name: str | HookName, batch: int, positions: int) -> tuple[int, ...]:
        """Shape of a hook's activation for a batch of ``positions`` tokens."""
        hook = self.hook(name)
        f = self.facts
        site = hook.site
        if site == "attn.hook_pattern":
            return (batch, f.n_heads, positions, positions)
        if site in ("attn.hook_q", "attn.hook_z"):
            return (batch, positions, f.n_heads, f.d_head)
        if site in ("attn.hook_k", "attn.hook_v"):
            return (batch, positions, f.n_kv_heads, f.d_head)
        if site == "mlp.hook_post":
            return (batch, positions, f.d_mlp)
        if site == "ln_final.hook_scale":
            return (batch, positions, 1)
        return (batch, positions, f.d_model)

    def _site(self, hook: HookName, batch_size: int) -> Site:
        a, root = self.adapter, self.model
        f = self.facts
        if hook.layer is None:
            if hook.site == "hook_embed":
                return OutputSite(a.module(root, a.embed))
            if hook.site == "hook_pos_embed" and a.pos_embed is not None:
                return BatchExpandedOutputSite(a.module(root, a.pos_embed), batch_size)
            quantity = "scale" if hook.site == "ln_final.hook_scale" else "normalized"
            return NormSite(a.module(root, a.final_norm), a.norm_kind, quantity)

        layer = hook.layer

        def sub(path: str) -> nn.Module:
            return a.layer_module(root, layer, path)

        site = hook.site
        if site == "hook_resid_pre":
            return InputSite(self.layers[layer])
        if site == "hook_resid_post":
            return OutputSite(self.layers[layer])
        if site == "hook_resid_mid":
            return ResidMidSite(self.layers[layer], sub(a.layer_attn_out))
        if site == "hook_attn_out":
            return OutputSite(sub(a.layer_attn_out))
        if site == "hook_mlp_out":
            return OutputSite(sub(a.layer_mlp_out))
        if site == "mlp.hook_post":
            return InputSite(sub(a.layer_mlp_down))
        if site == "attn.hook_z":
            return InputSite(sub(a.layer_out_proj), HeadSplit(f.n_heads, f.d_head))
        if site == "attn.hook_pattern":
            return PatternSite(sub(a.layer_attn))
        which = {"attn.hook_q": 0, "attn.hook_k": 1, "attn.hook_v": 2}[site]
        n_heads = f.n_heads if which == 0 else f.n_kv_heads
        split = HeadSplit(n_heads, f.d_head)
        if a.layer_qkv_fused is not None:
            width = f.n_heads * f.d_head
            return OutputSite(sub(a.layer_qkv_fused), split, (which * width, (which + 1) * width))
        path = (a.layer_q, a.layer_k, a.layer_v)[which]
        if path is None:
            raise UnknownHookError(f"{self.model_id} has no {site}", field="hook")
        return OutputSite(sub(path), split)

    # ----------------------------------------------------------------- tokens
    def tokenize(self, prompt: str, *, field: str = "prompt", prepend_bos: bool = True) -> torch.Tensor:
        """Token ids ``[1, pos]`` of a prompt, BOS first; empty and over-long prompts are refused."""
        if not prompt:
            raise PromptError("the prompt is empty", field=field)
        ids: list[int] = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        bos = self.tokenizer.bos_token_id
        if prepend_bos and isinstance(bos, int):
            ids = [bos, *ids]
        check_prompt_length(len(ids), self.max_tokens, self.model_id, field=field)
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    def token_id(self, text: str, *, field: str = "answer") -> int:
        """The id of a text that must be exactly one token (an answer, a target)."""
        ids: list[int] = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        check_single_token(text, ids, self.token_strings(ids), field=field)
        return ids[0]

    def token_strings(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Each id decoded on its own: the labels a dashboard draws on a position axis."""
        flat: list[int] = ids.flatten().tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return [str(self.tokenizer.decode([i])) for i in flat]

    # ----------------------------------------------------------------- forward
    @contextmanager
    def hooks(
        self, fns: Mapping[str | HookName, Sequence[HookFn]], *, batch_size: int = 1
    ) -> Iterator[set[HookName]]:
        """Attach functions to hooks (in forward order) for the duration of the block; always removed after.

        Yields the set of hooks attached; whether attention patterns are needed is the caller's concern
        (:meth:`run` handles it).
        """
        parsed: dict[HookName, list[HookFn]] = {}
        for name, hook_fns in fns.items():
            parsed.setdefault(self.hook(name), []).extend(hook_fns)
        handles: list[Removable] = []
        try:
            for hook in sorted_hooks(parsed):
                handles += self._site(hook, batch_size).attach(_this_thread(_compose(hook, parsed[hook])))
            yield set(parsed)
        finally:
            for handle in reversed(handles):
                handle.remove()

    def run(
        self,
        tokens: torch.Tensor,
        *,
        cache: Iterable[str | HookName] = (),
        hooks: Mapping[str | HookName, Sequence[HookFn]] | None = None,
        writes: Sequence[Write] = (),
        attention_mask: torch.Tensor | dict[str, torch.Tensor] | None = None,
        position_ids: torch.Tensor | None = None,
        past: object | None = None,
        logits: LogitsMode = "all",
        start_at_layer: int | None = None,
        start_resid: torch.Tensor | None = None,
        stop_at_layer: int | None = None,
        grad: bool = False,
    ) -> RunResult:
        """One batched forward: apply writes and hook functions, read the ``cache`` hooks.

        ``start_at_layer`` with ``start_resid`` (the residual entering that layer) skips the layers before it;
        ``stop_at_layer`` ends the forward before that layer (``n_layers``: before the final norm). Reads are
        taken after the writes at the same hook. Without ``grad`` the forward runs under ``no_grad`` and cached
        activations are detached. ``position_ids`` that restart at 0 pack several sequences into one row: the
        model's masks then keep each sequence to itself, sliding windows included. ``past`` is a key/value cache
        object the attention layers read and extend (``update(keys, values, layer_idx)``), given to the model as
        its ``cache``.
        """
        if tokens.dim() != 2 or tokens.shape[1] == 0:
            raise InvalidRequestError("tokens must be [batch, pos] with at least one position", field="tokens")
        batch_size = tokens.shape[0]
        fns: dict[HookName, list[HookFn]] = {}
        for write in writes:
            hook = self.hook(write.hook)
            fns.setdefault(hook, []).append(_write_fn(hook, write))
        for name, hook_fns in (hooks or {}).items():
            fns.setdefault(self.hook(name), []).extend(hook_fns)
        stored: dict[str, torch.Tensor] = {}
        for name in cache:
            hook = self.hook(name)
            fns.setdefault(hook, []).append(_reader(str(hook), stored, detach=not grad))
        self._check_window(fns, start_at_layer, start_resid, stop_at_layer, tokens)

        needs_pattern = any(hook.site == "attn.hook_pattern" for hook in fns)
        with self._lock, ExitStack() as stack:
            stack.enter_context(torch.enable_grad() if grad else torch.no_grad())
            stack.enter_context(pattern_attention(self.model, needs_pattern))
            if start_at_layer is not None and start_resid is not None:
                stack.enter_context(self._start_at(start_at_layer, start_resid))
            attached: dict[str | HookName, Sequence[HookFn]] = dict(fns.items())
            stack.enter_context(self.hooks(attached, batch_size=batch_size))
            if stop_at_layer is not None:
                stack.enter_context(self._stop_at(stop_at_layer))
            output = self._forward(tokens, attention_mask, position_ids, past,
                                   logits if stop_at_layer is None else "none")
        return RunResult(logits=output, cache=stored)

    def _forward(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | dict[str, torch.Tensor] | None,
        position_ids: torch.Tensor | None,
        past: object | None,
        logits: LogitsMode,
    ) -> torch.Tensor | None:
        extra: dict[str, Any] = {} if past is None else {"cache": past}
        try:
            if logits == "none":
                self.model.base_model(input_ids=tokens, attention_mask=attention_mask, position_ids=position_ids,
                                      use_cache=past is not None, **extra)
                return None
            out = self.model(
                input_ids=tokens,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=past is not None,
                **extra,
                logits_to_keep=1 if logits == "last" else 0,
            )
            result: torch.Tensor = out.logits
            return result
        except _StopForward:
            return None

    def _check_window(
        self,
        fns: Mapping[HookName, object],
        start_at_layer: int | None,
        start_resid: torch.Tensor | None,
        stop_at_layer: int | None,
        tokens: torch.Tensor,
    ) -> None:
        n_layers = self.facts.n_layers
        if (start_at_layer is None) != (start_resid is None):
            raise InvalidRequestError("start_at_layer and start_resid go together", field="start_at_layer")
        if start_at_layer is not None and start_resid is not None:
            if not 0 <= start_at_layer < n_layers:
                raise InvalidRequestError(f"start_at_layer must be in 0..{n_layers - 1}", field="start_at_layer")
            expected = (tokens.shape[0], tokens.shape[1], self.facts.d_model)
            if tuple(start_resid.shape) != expected:
                raise InvalidRequestError(
                    f"start_resid has shape {tuple(start_resid.shape)}, expected {expected}", field="start_resid"
                )
            early = [str(h) for h in fns if h.layer is None and h.site.startswith("hook_")]
            early += [str(h) for h in fns if h.layer is not None and h.layer < start_at_layer]
            if early:
                raise InvalidRequestError(
                    f"hooks before start_at_layer {start_at_layer} never run: {early}", field="start_at_layer"
                )
        if stop_at_layer is not None:
            if not 0 <= stop_at_layer <= n_layers:
                raise InvalidRequestError(f"stop_at_layer must be in 0..{n_layers}", field="stop_at_layer")
            late = [str(h) for h in fns if h.layer is None and h.site.startswith("ln_final")]
            late += [str(h) for h in fns if h.layer is not None and h.layer >= stop_at_layer]
            if late:
                raise InvalidRequestError(
                    f"hooks at or after stop_at_layer {stop_at_layer} never run: {late}", field="stop_at_layer"
                )

    @contextmanager
    def _start_at(self, layer: int, resid: torch.Tensor) -> Iterator[None]:
        """Skip layers before ``layer`` (their forward becomes the identity) and feed ``resid`` into it.

        The embedding still runs (a lookup) so that masks and positions are built by the model's own code.
        """
        skipped = list(self.layers[:layer])

        def identity(hidden_states: torch.Tensor, *_: Any, **__: Any) -> torch.Tensor:
            return hidden_states

        def inject(
            _: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            value = resid.to(self.dtype)
            if args:
                return (value, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": value}

        handle = self.layers[layer].register_forward_pre_hook(inject, with_kwargs=True, prepend=True)
        for module in skipped:
            module.forward = identity
        try:
            yield
        finally:
            handle.remove()
            for module in skipped:
                del module.forward

    @contextmanager
    def _stop_at(self, layer: int) -> Iterator[None]:
        owner = threading.get_ident()

        def stop(*_: Any) -> None:
            if threading.get_ident() == owner:  # another thread calling the module (a readout) runs on
                raise _StopForward

        target = (
            self.layers[layer]
            if layer < self.facts.n_layers
            else self.adapter.module(self.model, self.adapter.final_norm)
        )
        handle = target.register_forward_pre_hook(stop)
        try:
            yield
        finally:
            handle.remove()


def _this_thread(fn: ActivationFn) -> ActivationFn:
    """``fn`` in the thread that attached it only. Hooks live on shared modules: a worker's other jobs call some of
    them directly meanwhile (a readout's final norm), and must neither be read nor be changed by this forward."""
    owner = threading.get_ident()

    def guarded(activation: torch.Tensor) -> torch.Tensor | None:
        return fn(activation) if threading.get_ident() == owner else None

    return guarded


def _compose(hook: HookName, fns: Sequence[HookFn]) -> ActivationFn:
    """Apply ``fns`` in order, each seeing the previous one's replacement; check replacement shapes."""

    def composed(activation: torch.Tensor) -> torch.Tensor | None:
        current, changed = activation, False
        for fn in fns:
            replaced = fn(current)
            if replaced is not None:
                if replaced.shape != current.shape:
                    raise ShapeMismatchError(
                        f"a function on {hook} returned shape {tuple(replaced.shape)}, "
                        f"expected {tuple(current.shape)}",
                        field="hooks",
                    )
                current, changed = replaced, True
        return current if changed else None

    return composed


def _write_fn(hook: HookName, write: Write) -> HookFn:
    def fn(activation: torch.Tensor) -> torch.Tensor:
        return apply_write(activation, hook, write)

    return fn


def _reader(name: str, stored: dict[str, torch.Tensor], *, detach: bool) -> HookFn:
    def fn(activation: torch.Tensor) -> None:
        stored[name] = activation.detach() if detach else activation

    return fn
