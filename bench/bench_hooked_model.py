"""Gemma 3 270M: load time (GGUF conversion, safetensors cache) and a 16-token forward, bare and hooked.

    python -m bench hooked_model [--gguf]     # --gguf also times a first load from the GGUF in a fresh cache
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.timing import median_seconds
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.registry import Registry

PROMPT = "The old lighthouse keeper climbed the narrow stairs every single night to light the great lamp for ships"
N_TOKENS = 16
CACHE_DIR = Path(".cache/models")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", action="store_true", help="time a first load from the GGUF in a fresh cache")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    entry = Registry.default().get("gemma-3-270m")

    if args.gguf:
        with tempfile.TemporaryDirectory() as fresh:
            start = time.perf_counter()
            load_model(entry, cache_dir=Path(fresh))
            seconds = time.perf_counter() - start
            print(f"first load from GGUF (assemble + dequantize + convert + save): {seconds:.1f} s")

    load_model(entry, cache_dir=CACHE_DIR)  # make sure the converted cache exists
    cached = median_seconds(lambda: load_model(entry, cache_dir=CACHE_DIR), repeats=args.repeats, warmup=0)
    print(f"load from the safetensors cache (model + tokenizer), median of {args.repeats}: {cached:.2f} s")

    model, tokenizer = load_model(entry, cache_dir=CACHE_DIR)
    hooked = HookedModel(model, tokenizer, model_id=entry.id)
    tokens = hooked.tokenize(PROMPT)[:, :N_TOKENS]
    print(f"prompt: {tokens.shape[1]} tokens")
    resid = [f"blocks.{layer}.hook_resid_pre" for layer in range(hooked.facts.n_layers)]
    every = hooked.hook_names
    cases = {
        "bare HF forward": lambda: model(input_ids=tokens, use_cache=False),
        "HookedModel.run, no hooks": lambda: hooked.run(tokens),
        "HookedModel.run, 18 resid_pre read": lambda: hooked.run(tokens, cache=resid),
        f"HookedModel.run, all {len(every)} hooks read": lambda: hooked.run(tokens, cache=every),
    }
    bare = None
    for name, fn in cases.items():
        seconds = median_seconds(fn, repeats=args.repeats)
        bare = bare or seconds
        print(f"{name:45s} {seconds * 1000:8.1f} ms   ({seconds / bare:.2f}x bare)")


if __name__ == "__main__":
    main()
