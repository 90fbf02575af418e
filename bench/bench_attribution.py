"""Attribution on Gemma 3 270M's IOI prompt against Captum in the same run: agreement and speed.

    python -m bench attribution [--repeats 5] [--steps 50] [--threads N] [--captum-batches 10,25,50]

Target logit(" Mary") − logit(" John") at the last position. Integrated gradients over the embedding layer's
output (50 Gauss-Legendre steps, pad baseline with BOS kept) against Captum's ``LayerIntegratedGradients`` on the
embedding module at its fastest ``internal_batch_size`` of ``--captum-batches`` (each timed once first);
saliency and input × gradient against Captum's ``Saliency`` and ``InputXGradient`` over the embedding output.
Captum's forward is what a user writes: the HF model's logits, then the two tokens, on a model loaded on its own.
Timings alternate ours and Captum's, median of ``--repeats``; the difference is the largest per-token difference
relative to the largest per-token attribution.

The floor is the same arithmetic with nothing around it: the HF model's decoder on the interpolated embeddings
(all steps in one batch), its last position through the two unembedding rows, one backward of the weighted sum
to the embeddings; for saliency, one such forward and backward of the prompt.

Measured on a quiet 2-core Intel Xeon VM, median of 5 (Captum fastest at 50): integrated gradients 1.641 s vs
Captum 4.334 s (2.64x, floor 1.484 s, difference 5.2e-7); saliency 0.135 s vs 0.352 s (2.60x); input x gradient
0.141 s vs 0.354 s (2.51x), both identical to Captum's (docs/throughput.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from captum.attr import InputXGradient, LayerIntegratedGradients, Saliency

from bench.timing import median_seconds
from workers.core.attribution import AttributionOptions, AttributionRequest, TargetSpec, run_attribution
from workers.core.attribution.embeddings import baseline_tokens
from workers.core.attribution.quadrature import quadrature
from workers.core.defaults import IG_STEP_RULE
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.registry import Registry

PROMPT = "When Mary and John went to the store, John gave a drink to"
CONTRAST = (" Mary", " John")
CACHE_DIR = Path(".cache/models")


def paired_medians(
    ours: Callable[[], torch.Tensor], theirs: Callable[[], torch.Tensor], repeats: int
) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """Median seconds of each, timed alternately after one warm-up each, and their last outputs."""
    ours_out, theirs_out = ours(), theirs()
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours_out = ours()
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs_out = theirs()
        theirs_times.append(time.perf_counter() - start)
    return statistics.median(ours_times), statistics.median(theirs_times), ours_out, theirs_out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--captum-batches", default="10,25,50", help="Captum internal_batch_size values to try")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    entry = Registry.default().get("gemma-3-270m")
    hooked = HookedModel(*load_model(entry, cache_dir=CACHE_DIR), model_id=entry.id)
    model, _ = load_model(entry, cache_dir=CACHE_DIR)  # Captum's own copy, as a user loads it
    tokens = hooked.tokenize(PROMPT)
    mary, john = (hooked.token_id(text) for text in CONTRAST)
    embed = hooked.adapter.module(model, hooked.adapter.embed)
    embeds = embed(tokens).detach()
    print(f"Gemma 3 270M, {tokens.shape[1]} tokens, torch threads {torch.get_num_threads()}")

    def from_ids(ids: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = model(input_ids=ids).logits[:, -1]
        return logits[:, mary] - logits[:, john]

    def from_embeds(inputs: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = model(inputs_embeds=inputs).logits[:, -1]
        return logits[:, mary] - logits[:, john]

    def ours(method: str, **options: object) -> Callable[[], torch.Tensor]:
        request = AttributionRequest(
            PROMPT,
            TargetSpec(contrast=CONTRAST),
            method,
            AttributionOptions(**options),  # type: ignore[arg-type]
        )

        def run() -> torch.Tensor:
            scores = run_attribution(hooked, request).scores
            assert scores is not None
            return scores

        return run

    pad = baseline_tokens(hooked, tokens, "pad")
    lig = LayerIntegratedGradients(from_ids, embed)

    def captum_ig(batch: int) -> torch.Tensor:
        scores: torch.Tensor = lig.attribute(tokens, baselines=pad, n_steps=args.steps, internal_batch_size=batch)
        return scores[0].sum(-1)

    batches = [min(int(b), args.steps) for b in args.captum_batches.split(",")]
    best_batch = min(batches, key=lambda b: median_seconds(partial(captum_ig, b), repeats=1))
    cases: dict[str, tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]] = {
        f"integrated gradients ({args.steps} steps)": (
            ours("integrated_gradients", n_steps=args.steps, baseline="pad"),
            partial(captum_ig, best_batch),
        ),
        "saliency": (
            ours("saliency"),
            lambda: Saliency(from_embeds).attribute(embeds.clone(), abs=False)[0].norm(dim=-1),
        ),
        "input x gradient": (
            ours("input_x_gradient"),
            lambda: InputXGradient(from_embeds).attribute(embeds.clone())[0].sum(-1),
        ),
    }
    ig_floor = floor_seconds(hooked, embed(pad).detach(), embeds, (mary, john), args.steps)
    gradient_floor = floor_seconds(hooked, embeds, embeds, (mary, john), 0)
    floors = dict(zip(cases, [ig_floor, gradient_floor, gradient_floor], strict=True))
    print(f"Captum integrated gradients: internal_batch_size {best_batch}, the fastest of {batches}")
    print(f"{'method':28s} {'ours':>9s} {'Captum':>9s} {'speed-up':>9s} {'floor':>9s} {'ours/floor':>10s} "
          f"{'max diff / max |attr|':>22s}")
    for name, (mine, captum) in cases.items():
        ours_s, captum_s, ours_out, captum_out = paired_medians(mine, captum, args.repeats)
        captum_out = captum_out.detach().double()
        error = float((ours_out.double() - captum_out).abs().max() / captum_out.abs().max())
        floor = floors[name]
        print(f"{name:28s} {ours_s:8.3f}s {captum_s:8.3f}s {captum_s / ours_s:8.2f}x {floor:8.3f}s "
              f"{ours_s / floor:9.2f}x {error:22.2e}")


def floor_seconds(
    hooked: HookedModel, start: torch.Tensor, end: torch.Tensor, answers: tuple[int, int], steps: int
) -> float:
    """The bare forward and backward: ``steps`` interpolation points in one batch (0: the input itself), the
    decoder of the HF model, the last position through the two unembedding rows, one backward to the embeddings."""
    alphas, weights = quadrature(IG_STEP_RULE, steps) if steps else (torch.ones(1), torch.ones(1))
    unembed: torch.nn.Linear = hooked.model.get_output_embeddings()  # type: ignore[no-untyped-call]
    rows = unembed.weight[list(answers)].detach()
    alpha = alphas.to(end.dtype).view(-1, 1, 1)

    def run() -> None:
        interp = (start + alpha * (end - start)).requires_grad_(True)
        hidden = hooked.model.base_model(inputs_embeds=interp).last_hidden_state[:, -1]
        values = hidden @ (rows[0] - rows[1])
        torch.autograd.grad(values @ weights.to(values.dtype), interp)

    return median_seconds(run, repeats=5)


if __name__ == "__main__":
    main()
