"""Direct logit attribution: each component's direct contribution to the target at the target position.

Components are the embeddings, every attention head, every layer's attention output bias (where the model has
one), every MLP, and the constant terms of the readout (final norm bias, unembedding bias, a log-prob's
normaliser). They pass through the final norm with its scale frozen from the clean run, as TransformerLens's
``cache.stack_head_results`` + ``cache.apply_ln_to_stack`` then ``W_U`` do; a head's output also passes through its
layer's post-attention norm (Gemma) with that norm's clean scale frozen. With every scale frozen the map from
components to logits is linear, so the components sum to the target logit (difference); the result states the
residual error, which is float rounding, plus softcapping's nonlinearity where the model caps its logits.
"""

from __future__ import annotations

import torch
from torch import nn

from workers.core.activations import forward_reader
from workers.core.adapters.base import NormKind
from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.results import AttributionResult, Decomposition, Grid
from workers.core.hooks import HookName


def _epsilon(module: nn.Module) -> float:
    for name in ("eps", "variance_epsilon", "epsilon"):
        value = getattr(module, name, None)
        if isinstance(value, float | int):
            return float(value)
    raise TypeError(f"cannot find the epsilon of {type(module).__name__}")


def frozen_norm(components: torch.Tensor, total: torch.Tensor, norm: nn.Module, kind: NormKind) -> torch.Tensor:
    """Each component ``[n, d]`` through ``norm`` with the scale that ``total`` (their sum, ``[d]``) gets.

    The norm's bias (LayerNorm) is left out: it is a component of its own.
    """
    eps = _epsilon(norm)
    weight = norm.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(norm).__name__} has no weight tensor")
    weight = weight.float()
    if kind == "layernorm":
        centred = total - total.mean()
        scale = (centred.pow(2).mean() + eps).sqrt()
        return (components - components.mean(-1, keepdim=True)) / scale * weight
    scale = (total.pow(2).mean() + eps).sqrt()
    gain = 1.0 + weight if kind == "rmsnorm_one_plus" else weight
    return components / scale * gain


def _bias(module: nn.Module) -> torch.Tensor | None:
    bias = getattr(module, "bias", None)
    return bias.float() if isinstance(bias, torch.Tensor) else None


def head_outputs(context: AttributionContext, layer: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each head's output ``[n_heads, d_model]`` as added to the residual, and the attention output bias.

    The output projection runs on a block-diagonal batch (row h keeps only head h's ``z``), which works for any
    projection module (GPT-2's Conv1D, Linear); with a post-attention norm each head goes through it frozen.
    """
    model, adapter = context.model, context.model.adapter
    n_heads, d_head = z.shape
    out_proj = adapter.layer_module(model.model, layer, adapter.layer_out_proj)
    blocks = torch.zeros(n_heads, n_heads, d_head, dtype=z.dtype, device=z.device)
    blocks[torch.arange(n_heads), torch.arange(n_heads)] = z
    with torch.no_grad():
        zero_out = out_proj(torch.zeros(1, n_heads * d_head, dtype=model.dtype, device=z.device)).float()[0]
        heads = out_proj(blocks.flatten(1).to(model.dtype)).float() - zero_out
    bias = zero_out if _bias(out_proj) is not None else None
    if adapter.layer_attn_out != adapter.layer_attn:
        post_norm = adapter.layer_module(model.model, layer, adapter.layer_attn_out)
        total = heads.sum(0) + zero_out
        with torch.no_grad():
            heads = frozen_norm(heads, total, post_norm, adapter.norm_kind)
            if bias is not None:
                bias = frozen_norm(bias[None], total, post_norm, adapter.norm_kind)[0]
    return heads, bias


class DirectLogitAttribution(AttributionMethod):
    """Per-component direct contributions to the target through the frozen final norm."""

    name = "direct_logit_attribution"
    uses_gradients = False

    def attribute(self, context: AttributionContext) -> AttributionResult:
        model, target = context.model, context.target
        facts, adapter = model.facts, model.adapter
        last = str(HookName(facts.n_layers - 1, "hook_resid_post"))
        embeds = ["hook_embed"] + (["hook_pos_embed"] if adapter.pos_embed is not None else [])
        names = [*embeds, last]
        for layer in range(facts.n_layers):
            names += [str(HookName(layer, "attn.hook_z")), str(HookName(layer, "hook_mlp_out"))]
        cache = forward_reader(model)(context.tokens, names)

        def at(name: str) -> torch.Tensor:
            return cache[name][0, target.position].float()

        labels: list[str] = [name.removeprefix("hook_") for name in embeds]
        rows: list[torch.Tensor] = [at(name) for name in embeds]
        attn_spans: list[tuple[int, int]] = []
        for layer in range(facts.n_layers):
            heads, bias = head_outputs(context, layer, cache[str(HookName(layer, "attn.hook_z"))][0, target.position])
            labels += [f"L{layer}H{head}" for head in range(facts.n_heads)]
            rows += list(heads)
            attn_rows = len(rows) - facts.n_heads
            if bias is not None:
                labels.append(f"L{layer} attn_bias")
                rows.append(bias)
            attn_spans.append((attn_rows, len(rows)))
            labels.append(f"L{layer} mlp")
            rows.append(at(str(HookName(layer, "hook_mlp_out"))))

        readout = context.readout
        final_norm = readout.final_norm
        resid = at(last)
        with torch.no_grad():
            normed = frozen_norm(torch.stack(rows), resid, final_norm, adapter.norm_kind)
            directions = readout.unembed.weight[readout.ids].float().T @ readout.signs
            contributions = [*(normed @ directions)]
            ln_bias, unembed_bias = _bias(final_norm), _bias(readout.unembed)
            if ln_bias is not None:
                labels.append("ln_final bias")
                contributions.append(ln_bias @ directions)
            if unembed_bias is not None:
                labels.append("unembed bias")
                contributions.append(unembed_bias[readout.ids] @ readout.signs)
            if target.uses_full_vocab:
                labels.append("log_softmax normaliser")
                contributions.append(-torch.logsumexp(readout.logits(final_norm(cache[last][0, target.position])), -1))
            value = float(readout(cache[last][0, target.position]))
        values = torch.stack(contributions).float()

        n_layers = facts.n_layers
        heads = torch.stack([values[start : start + facts.n_heads] for start, _ in attn_spans])
        # attention (heads and bias) and the MLP right after them, per layer
        per_layer = torch.stack([torch.stack([values[start:stop].sum(), values[stop]]) for start, stop in attn_spans])
        layer_labels = tuple(str(layer) for layer in range(n_layers))
        warnings: list[str] = []
        if readout.softcap is not None:
            warnings.append(
                f"the model caps its logits (tanh, cap {readout.softcap}): components add up to the logits before "
                "the cap, so the residual error includes the cap's nonlinearity"
            )
        if target.uses_full_vocab:
            warnings.append("the log-prob's normaliser (log-sum-exp over the vocabulary) is one constant component")
        return context.result(
            value=value,
            grids={
                "components": Grid(axes=("component",), labels={"component": tuple(labels)}, values=values),
                "heads": Grid(
                    axes=("layer", "head"),
                    labels={"layer": layer_labels, "head": tuple(f"H{h}" for h in range(facts.n_heads))},
                    values=heads,
                ),
                "layers": Grid(
                    axes=("layer", "sublayer"),
                    labels={"layer": layer_labels, "sublayer": ("attn", "mlp")},
                    values=per_layer,
                ),
            },
            decomposition=Decomposition(component_sum=float(values.double().sum()), target_value=value),
            warnings=tuple(warnings),
        )
