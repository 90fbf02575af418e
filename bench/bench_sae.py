"""SAE encode throughput on Gemma 3 270M with the default SAE, against SAELens on the same weights, same run.

Cold: ours is ``encode_sae`` (forward stopped after the SAE's layer, encode, top-k, L0, MSE and explained
variance per token); SAELens is TransformerLens ``run_with_cache`` (stopped after the layer) + ``sae.encode``.
Warm: ours reads the hook's activations from a precomputed cache (the worker's activation cache) and does the rest;
for scale, SAELens's bare ``sae.encode`` on the same cached activations (no top-k lists, figures or token strings).

    python -m bench sae [--repeats 5] [--sae-dir workers/saes/gemma-3-270m/res-6]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from bench.timing import median_seconds
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.registry import Registry, SaeEntry
from workers.core.sae import SaeEncodeRequest, encode_sae, load_sae

CACHE_DIR = Path(".cache/models")
DEFAULT_SAE_DIR = Path("workers/saes/gemma-3-270m/res-6")
PROMPTS = (
    "The old lighthouse keeper climbed the narrow stairs every single night to light the great lamp for ships.",
    "Return a new list containing all items from the iterable in ascending order; a custom key function can be given.",
    "When Mary and John went to the store, John gave a drink to Mary, who thanked him and walked home.",
    "The committee will meet on Tuesday to discuss the budget, the new library and the repairs to the bridge.",
    "Photosynthesis converts light energy into chemical energy that plants store as sugar in their leaves.",
    "If the file does not exist, an exception is raised and nothing is written to the output directory.",
    "She packed her bags, locked the door and took the early train to the coast, where her sister was waiting.",
    "Prices rose by three percent in March, the fastest increase since the autumn of last year, officials said.",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sae-dir", type=Path, default=None, help="default: the registry's first SAE for Gemma")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    entry = Registry.default().get("gemma-3-270m")
    hf_model, tokenizer = load_model(entry, cache_dir=CACHE_DIR)
    model = HookedModel(hf_model, tokenizer, model_id=entry.id, max_tokens=entry.max_tokens)
    sae_entry = entry.saes[0] if entry.saes and args.sae_dir is None else None
    if sae_entry is None:
        directory = args.sae_dir or DEFAULT_SAE_DIR
        sae_entry = SaeEntry(id="res-6", hook="blocks.6.hook_resid_post", path=directory.resolve())
    sae = load_sae(sae_entry, model_facts=model.facts)
    assert sae_entry.path is not None
    reference = SAE.load_from_disk(str(sae_entry.path), device="cpu")
    tl = HookedTransformer.from_pretrained_no_processing(
        "google/gemma-3-270m", hf_model=hf_model, tokenizer=tokenizer, device="cpu", dtype=torch.float32
    )
    hook = model.hook(sae.hook)
    assert hook.layer is not None
    stop = hook.layer + 1
    tokens = [model.tokenize(p) for p in PROMPTS]
    n_tokens = sum(t.shape[1] for t in tokens)
    print(f"SAE {sae.id} ({sae.cfg.architecture}, d_sae {sae.d_sae}) at {sae.hook}")
    print(f"{len(PROMPTS)} prompts, {n_tokens} tokens; median of {args.repeats} runs")

    request = SaeEncodeRequest(prompts=PROMPTS, top_k=10)

    def ours_cold() -> object:
        return encode_sae(model, sae, request)

    def sae_lens_cold() -> object:
        out = []
        for t in tokens:
            _, cache = tl.run_with_cache(t, names_filter=[str(hook)], stop_at_layer=stop)
            out.append(reference.encode(cache[str(hook)]))
        return out

    cached = {
        tuple(t[0].tolist()): model.run(t, cache=[str(hook)], stop_at_layer=stop, logits="none").cache[str(hook)]
        for t in tokens
    }

    def reader(t: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        return {names[0]: cached[tuple(t[0].tolist())]}

    def ours_warm() -> object:
        return encode_sae(model, sae, request, reader=reader)

    def sae_lens_encode_only() -> object:
        return [reference.encode(activation) for activation in cached.values()]

    # Same features from both before timing anything.
    ours = encode_sae(model, sae, SaeEncodeRequest(prompts=PROMPTS[:1], top_k=5)).prompts[0].features
    _, check = tl.run_with_cache(tokens[0], names_filter=[str(hook)], stop_at_layer=stop)
    theirs = reference.encode(check[str(hook)])[0].topk(5)
    agree = sum(
        [f.feature for f in mine] == ids[: len(mine)]
        for mine, ids in zip(ours, theirs.indices.tolist(), strict=True)
    )
    print(f"top-5 feature ids agree with SAELens at {agree}/{len(ours)} positions")

    times = {
        "SAELens cold (TL run_with_cache + encode)": median_seconds(sae_lens_cold, repeats=args.repeats),
        "ours cold (encode_sae, forward included)": median_seconds(ours_cold, repeats=args.repeats),
        "ours warm (encode_sae, cached activations)": median_seconds(ours_warm, repeats=args.repeats),
        "SAELens sae.encode only, cached activations": median_seconds(sae_lens_encode_only, repeats=args.repeats),
    }
    base = times["SAELens cold (TL run_with_cache + encode)"]
    for name, seconds in times.items():
        rate = n_tokens / seconds
        print(f"{name:45s} {seconds * 1000:9.1f} ms  {rate:10.0f} tokens/s  ({base / seconds:6.1f}x SAELens)")


if __name__ == "__main__":
    main()
