"""Logit lens: every layer's residual stream read out as if it were the last one.

Each ``resid_pre`` (and the final ``resid_post``) at the target position goes through the model's own final norm,
recomputed for that residual (TransformerLens's ``apply_ln_to_stack(..., recompute_ln=True)``), and the full
unembedding (softcapped where the model caps its logits); the last entry is therefore the model's own output.
"""

from __future__ import annotations

import torch

from workers.core.attribution.base import AttributionContext, AttributionMethod
from workers.core.attribution.results import AttributionResult, Grid, LensLayer, RankedToken
from workers.core.hooks import HookName


def residual_hooks(n_layers: int) -> list[str]:
    """``blocks.L.hook_resid_pre`` for every layer, then the last layer's ``hook_resid_post``."""
    hooks = [HookName(layer, "hook_resid_pre") for layer in range(n_layers)]
    return [str(hook) for hook in [*hooks, HookName(n_layers - 1, "hook_resid_post")]]


class LogitLens(AttributionMethod):
    """Per layer: the top-k tokens, each target token's rank and probability, and the target value."""

    name = "logit_lens"
    uses_gradients = False

    def attribute(self, context: AttributionContext) -> AttributionResult:
        model, target, readout = context.model, context.target, context.readout
        hooks = residual_hooks(model.facts.n_layers)
        cache = context.reader(context.tokens, hooks)
        resid = torch.stack([cache[hook][0, target.position] for hook in hooks])
        with torch.no_grad():
            logits = readout.logits(readout.final_norm(resid))
            values = readout(resid).float()
        probs = torch.softmax(logits, dim=-1)
        top = torch.topk(probs, context.options.top_k, dim=-1)
        ids = torch.tensor(target.token_ids, device=logits.device)
        target_logits = logits[:, ids]
        ranks = (logits[:, None, :] > target_logits[:, :, None]).sum(-1) + 1
        layers = []
        for index, hook in enumerate(hooks):
            top_ids = top.indices[index].tolist()
            names = model.token_strings(top_ids)
            top_probs = [float(p) for p in top.values[index].tolist()]
            layers.append(
                LensLayer(
                    hook=hook,
                    top_k=tuple(
                        RankedToken(token_id=i, token=name, probability=p, rank=rank + 1)
                        for rank, (i, name, p) in enumerate(zip(top_ids, names, top_probs, strict=True))
                    ),
                    targets=tuple(
                        RankedToken(
                            token_id=token_id,
                            token=text,
                            probability=float(probs[index, token_id]),
                            rank=int(ranks[index, k]),
                        )
                        for k, (token_id, text) in enumerate(zip(target.token_ids, target.tokens, strict=True))
                    ),
                    value=float(values[index]),
                )
            )
        context.progress(1.0)
        labels = {"layer": tuple(hooks), "token": target.tokens}
        return context.result(
            value=float(values[-1]),
            lens=tuple(layers),
            grids={
                "value": Grid(
                    axes=("layer",), labels={"layer": tuple(hooks)}, values=values, units=f"target {target.kind}"
                ),
                "probability": Grid(
                    axes=("layer", "token"), labels=labels, values=probs[:, ids].float(), units="probability"
                ),
                "rank": Grid(
                    axes=("layer", "token"), labels=labels, values=ranks.float(), units="rank (1: most likely)"
                ),
            },
            options={"top_k": context.options.top_k},
        )
