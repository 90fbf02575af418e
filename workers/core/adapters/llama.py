"""Llama and Mistral (and Qwen2/Qwen3, which share the layout): separate Q/K/V, rotary positions, RMSNorm."""

from workers.core.adapters.base import FamilyAdapter

LLAMA = FamilyAdapter(
    family="llama",
    layers="model.layers",
    embed="model.embed_tokens",
    pos_embed=None,
    final_norm="model.norm",
    norm_kind="rmsnorm",
    layer_attn="self_attn",
    layer_attn_out="self_attn",
    layer_mlp_out="mlp",
    layer_resid_mid_reader="post_attention_layernorm",
    layer_out_proj="self_attn.o_proj",
    layer_mlp_down="mlp.down_proj",
    layer_q="self_attn.q_proj",
    layer_k="self_attn.k_proj",
    layer_v="self_attn.v_proj",
)
