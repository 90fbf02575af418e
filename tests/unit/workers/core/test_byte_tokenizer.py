"""The offline byte-level tokenizer: fixed ids, BOS like Gemma's, exact round trips, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from workers.core.byte_tokenizer import BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE, make_byte_tokenizer


def test_ids_are_the_documented_ones() -> None:
    tok = make_byte_tokenizer()
    assert (BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE) == (256, 257, 258, 259)
    assert len(tok) == VOCAB_SIZE
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (BOS_ID, EOS_ID, PAD_ID)
    assert tok.convert_tokens_to_ids(["<bos>", "<eos>", "<pad>"]) == [256, 257, 258]


@pytest.mark.parametrize("text", ["hello world", "  two  spaces", "héllo wörld ✓ 日本", "\n\t\x00"])
def test_every_byte_is_one_token_and_bos_is_prepended(text: str) -> None:
    ids = make_byte_tokenizer()(text)["input_ids"]
    assert ids == [BOS_ID, *text.encode("utf-8")]


@pytest.mark.parametrize("text", ["hello world", " leading space", "héllo wörld ✓ 日本"])
def test_decode_round_trips(text: str) -> None:
    tok = make_byte_tokenizer()
    ids = tok(text)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(ids) == "<bos>" + text


def test_no_bos_when_special_tokens_are_off() -> None:
    assert make_byte_tokenizer()("ab", add_special_tokens=False)["input_ids"] == [97, 98]


def test_batch_pads_with_pad_id() -> None:
    batch = make_byte_tokenizer()(["a", "abc"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == [[BOS_ID, 97, PAD_ID, PAD_ID], [BOS_ID, 97, 98, 99]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_save_and_reload_keeps_behaviour(tmp_path: Path) -> None:
    make_byte_tokenizer(model_max_length=77).save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert reloaded("hé")["input_ids"] == [BOS_ID, 104, 195, 169]
    assert reloaded.pad_token_id == PAD_ID
    assert reloaded.model_max_length == 77
