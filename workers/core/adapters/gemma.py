"""Gemma 2 and Gemma 3: norms before and after both attention and MLP, RMSNorm scaled by (1 + w).

``hook_attn_out`` and ``hook_mlp_out`` are the post-norms' outputs: what is actually added to the residual, as in
TransformerLens. The embedding module already multiplies by √d_model, so ``hook_embed`` matches TransformerLens's
scaled ``W_E``.
"""

from workers.core.adapters.base import FamilyAdapter

GEMMA = FamilyAdapter(
    family="gemma",
    layers="model.layers",
    embed="model.embed_tokens",
    pos_embed=None,
    final_norm="model.norm",
    norm_kind="rmsnorm_one_plus",
    layer_attn="self_attn",
    layer_attn_out="post_attention_layernorm",
    layer_mlp_out="post_feedforward_layernorm",
    layer_resid_mid_reader="pre_feedforward_layernorm",
    layer_out_proj="self_attn.o_proj",
    layer_mlp_down="mlp.down_proj",
    layer_q="self_attn.q_proj",
    layer_k="self_attn.k_proj",
    layer_v="self_attn.v_proj",
)
