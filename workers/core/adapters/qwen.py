"""Qwen2 and Qwen3: the Llama layout. Qwen3's per-head q/k norms come after ``hook_q``/``hook_k``, as in
TransformerLens, so no path differs."""

from dataclasses import replace

from workers.core.adapters.llama import LLAMA

QWEN = replace(LLAMA, family="qwen")
