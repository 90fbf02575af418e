"""A byte-level tokenizer built offline, for the tiny random-weight test models.

Tiny models need a real ``PreTrainedTokenizerBase`` (the service tokenizes, decodes and labels axes through it),
but no tokenizer may come from the hub. This one is built from the ``tokenizers`` library alone: every UTF-8
byte is one token, so any text round-trips exactly, and it prepends ``<bos>`` as Gemma's tokenizer does.

Token ids are fixed, so tests can name them:
  0..255  the byte with that value
  256     ``<bos>`` (prepended to every encoded text)
  257     ``<eos>``
  258     ``<pad>``
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

__all__ = ["BOS_ID", "BOS_TOKEN", "EOS_ID", "EOS_TOKEN", "PAD_ID", "PAD_TOKEN", "VOCAB_SIZE", "make_byte_tokenizer"]

N_BYTES = 256
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<bos>", "<eos>", "<pad>"
BOS_ID, EOS_ID, PAD_ID = N_BYTES, N_BYTES + 1, N_BYTES + 2
VOCAB_SIZE = N_BYTES + 3


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte, which the ByteLevel pre-tokenizer emits."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(N_BYTES):
        if b not in mapping:
            mapping[b] = chr(N_BYTES + extra)
            extra += 1
    return mapping


def make_byte_tokenizer(model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """Build the tokenizer; cheap (milliseconds), so callers build one per model rather than share it."""
    vocab = {char: byte for byte, char in _byte_to_unicode().items()}
    vocab.update({BOS_TOKEN: BOS_ID, EOS_TOKEN: EOS_ID, PAD_TOKEN: PAD_ID})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A $B:1",
        special_tokens=[(BOS_TOKEN, BOS_ID)],
    )
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # transformers leaves __init__ untyped
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    # Registering the specials may re-add them: check the documented ids survived.
    if fast.convert_tokens_to_ids([BOS_TOKEN, EOS_TOKEN, PAD_TOKEN]) != [BOS_ID, EOS_ID, PAD_ID]:
        raise RuntimeError("byte tokenizer special-token ids moved")
    return fast
