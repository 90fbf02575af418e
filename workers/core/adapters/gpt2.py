"""GPT-2: fused QKV projection, learned positions, LayerNorm."""

from workers.core.adapters.base import FamilyAdapter

GPT2 = FamilyAdapter(
    family="gpt2",
    layers="transformer.h",
    embed="transformer.wte",
    pos_embed="transformer.wpe",
    final_norm="transformer.ln_f",
    norm_kind="layernorm",
    layer_attn="attn",
    layer_attn_out="attn",
    layer_mlp_out="mlp",
    layer_resid_mid_reader="ln_2",
    layer_out_proj="attn.c_proj",
    layer_mlp_down="mlp.c_proj",
    layer_qkv_fused="attn.c_attn",
)
