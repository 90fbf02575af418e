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

from dataclasses import dataclass, field

import torch
from torch import nn

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


@dataclass
class Components:
    """Labelled residual-stream components at the target position; ``attn_spans[L]`` indexes layer L's heads
    (and attention bias), and the row at its stop index is layer L's MLP."""

    labels: list[str] = field(default_factory=list)
    rows: list[torch.Tensor] = field(default_factory=list)
    attn_spans: list[tuple[int, int]] = field(default_factory=list)

    def add(self, label: str, row: torch.Tensor) -> None:
        self.labels.append(label)
        self.rows.append(row)


def residual_components(context: AttributionContext) -> tuple[Components, torch.Tensor]:
    """Every component written to the residual at the target position, and that final residual (before the norm)."""
    model, position = context.model, context.target.position
    n_layers = model.facts.n_layers
    last = str(HookName(n_layers - 1, "hook_resid_post"))
    embeds = ["hook_embed"] + (["hook_pos_embed"] if model.adapter.pos_embed is not None else [])
    z_hooks = [str(HookName(layer, "attn.hook_z")) for layer in range(n_layers)]
    mlp_hooks = [str(HookName(layer, "hook_mlp_out")) for layer in range(n_layers)]
    cache = {
        name: value[0, position]
        for name, value in context.reader(context.tokens, [*embeds, *z_hooks, *mlp_hooks, last]).items()
    }
    components = Components()
    for name in embeds:
        components.add(name.removeprefix("hook_"), cache[name].float())
    for layer in range(n_layers):
        heads, bias = head_outputs(context, layer, cache[z_hooks[layer]])
        start = len(components.rows)
        for head, row in enumerate(heads):
            components.add(f"L{layer}H{head}", row)
        if bias is not None:
            components.add(f"L{layer} attn_bias", bias)
        components.attn_spans.append((start, len(components.rows)))
        components.add(f"L{layer} mlp", cache[mlp_hooks[layer]].float())
    return components, cache[last]


class DirectLogitAttribution(AttributionMethod):
    """Per-component direct contributions to the target through the frozen final norm."""

    name = "direct_logit_attribution"
    uses_gradients = False

    def attribute(self, context: AttributionContext) -> AttributionResult:
        components, resid = residual_components(context)
        readout, target = context.readout, context.target
        final_norm = readout.final_norm
        labels = list(components.labels)
        normed = frozen_norm(torch.stack(components.rows), resid.float(), final_norm, context.model.adapter.norm_kind)
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
            contributions.append(-torch.logsumexp(readout.logits(final_norm(resid)), -1))
        values = torch.stack(contributions).float()
        value = float(readout(resid))
        return context.result(
            value=value,
            grids=_grids(context, components, labels, values),
            decomposition=Decomposition(component_sum=float(values.double().sum()), target_value=value),
            warnings=_warnings(context),
        )


def _grids(
    context: AttributionContext, components: Components, labels: list[str], values: torch.Tensor
) -> dict[str, Grid]:
    """Every component; heads as layer × head; per layer its attention (heads and bias) and its MLP."""
    n_heads = context.model.facts.n_heads
    spans = components.attn_spans
    heads = torch.stack([values[start : start + n_heads] for start, _ in spans])
    per_layer = torch.stack([torch.stack([values[start:stop].sum(), values[stop]]) for start, stop in spans])
    layer_labels = tuple(str(layer) for layer in range(len(spans)))
    units = f"direct contribution to the target {context.target.kind}"
    return {
        "components": Grid(axes=("component",), labels={"component": tuple(labels)}, values=values, units=units),
        "heads": Grid(
            axes=("layer", "head"),
            labels={"layer": layer_labels, "head": tuple(f"H{h}" for h in range(n_heads))},
            values=heads,
            units=units,
        ),
        "layers": Grid(
            axes=("layer", "sublayer"),
            labels={"layer": layer_labels, "sublayer": ("attn", "mlp")},
            values=per_layer,
            units=units,
        ),
    }


def _warnings(context: AttributionContext) -> tuple[str, ...]:
    warnings: list[str] = []
    if context.readout.softcap is not None:
        warnings.append(
            f"the model caps its logits (tanh, cap {context.readout.softcap}): components add up to the logits "
            "before the cap, so the residual error includes the cap's nonlinearity"
        )
    if context.target.uses_full_vocab:
        warnings.append("the log-prob's normaliser (log-sum-exp over the vocabulary) is one constant component")
    return tuple(warnings)
