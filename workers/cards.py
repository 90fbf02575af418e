"""Model cards: what the API needs to describe and pre-check a model without importing torch.

A worker publishes a card for each model it loads (architecture facts, hook names, token limit, BOS id, the
widths of the SAEs it can read) and the model's tokenizer as ``tokenizer.json`` text, into the job store. The API
reads both: it answers ``GET /v1/models`` and ``POST /v1/tokenize`` and checks prompt lengths with the
``tokenizers`` library only.
"""

from __future__ import annotations

import zlib

from pydantic import BaseModel, Field

__all__ = ["ModelCard", "card_key", "pack_tokenizer", "tokenizer_key", "unpack_tokenizer"]


class ModelCard(BaseModel):
    model: str
    family: str
    architecture: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    max_tokens: int
    dtype: str
    bos_token_id: int | None
    hook_names: list[str]
    tokenizer_sha256: str
    sae_widths: dict[str, int] = Field(
        default_factory=dict,
        description="d_sae by SAE id, for the SAEs whose cfg.json the worker could read; a feature id is checked "
        "against it at submission (an SAE missing here is checked when the worker loads it)",
    )


def card_key(model_id: str) -> str:
    return f"card:{model_id}"


def tokenizer_key(model_id: str) -> str:
    return f"tokenizer:{model_id}"


def pack_tokenizer(tokenizer_json: str) -> bytes:
    return zlib.compress(tokenizer_json.encode(), level=6)


def unpack_tokenizer(data: bytes) -> str:
    return zlib.decompress(data).decode()
