"""TransformerLens 4.3's patching sweeps on a model directory, for ``python -m bench patching --bridge-python``.

Runs in an environment of its own (TransformerLens 4.x needs a ``TransformerBridge``; the test oracles stay on
3.9), so it imports nothing of this project: it boots ``TransformerBridge.boot_transformers`` on the same
safetensors the service serves, runs each sweep once with the logit-difference metric, and prints one JSON
line per sweep: ``{"sweep", "seconds", "values"}``.

    python bench/tl_bridge_patching.py MODEL_DIR '{"clean": …, "corrupted": …, "answer": …, "wrong": …,
                                                    "sweeps": ["resid_pre", …], "threads": 2}'
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import torch
from transformer_lens import patching  # type: ignore[import-untyped,unused-ignore]
from transformer_lens.model_bridge import TransformerBridge  # type: ignore[import-not-found,unused-ignore]
from transformers import AutoModelForCausalLM, AutoTokenizer

SWEEPS = {
    "resid_pre": "get_act_patch_resid_pre",
    "attn_out": "get_act_patch_attn_out",
    "mlp_out": "get_act_patch_mlp_out",
    "head_out": "get_act_patch_attn_head_out_all_pos",
}


def main() -> None:
    model_dir, spec = sys.argv[1], json.loads(sys.argv[2])
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    bridge: Any = TransformerBridge.boot_transformers(model_dir, hf_model=hf, tokenizer=tokenizer, device="cpu")
    answer = tokenizer(spec["answer"], add_special_tokens=False)["input_ids"][0]
    wrong = tokenizer(spec["wrong"], add_special_tokens=False)["input_ids"][0]
    clean, corrupted = bridge.to_tokens(spec["clean"]), bridge.to_tokens(spec["corrupted"])

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[0, -1, answer] - logits[0, -1, wrong]

    with torch.no_grad():
        _, cache = bridge.run_with_cache(clean)
        for sweep in spec["sweeps"]:
            started = time.perf_counter()
            values = getattr(patching, SWEEPS[sweep])(bridge, corrupted, cache, metric)
            seconds = time.perf_counter() - started
            print(json.dumps({"sweep": sweep, "seconds": seconds, "values": values.double().tolist()}), flush=True)


if __name__ == "__main__":
    main()
