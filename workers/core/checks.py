"""Checks of a request against a model's facts that need no tensors, shared by the core and the API.

The API runs them at submission on token ids from the ``tokenizers`` library; the core runs them again on the
model it loaded. One function per check means one code, one field and one message for one mistake.
This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.core.errors import InvalidRequestError, PromptTooLongError

__all__ = [
    "check_equal_lengths",
    "check_feature",
    "check_heads",
    "check_indices",
    "check_position",
    "check_prompt_length",
    "check_single_token",
    "quote",
]

_QUOTE_CHARS = 60
_LIST_ITEMS = 8


def quote(value: object) -> str:
    """``repr`` of a value cut to a short length: messages never echo a large part of the input."""
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 1] + "…"


def _few(values: Sequence[object]) -> str:
    """At most a few items of a list, with the count of the rest."""
    shown = ", ".join(str(v) for v in values[:_LIST_ITEMS])
    rest = len(values) - _LIST_ITEMS
    return f"[{shown}{f', … {rest} more' if rest > 0 else ''}]"


def check_prompt_length(n_tokens: int, max_tokens: int, model_id: str, *, field: str) -> None:
    if n_tokens > max_tokens:
        message = f"the prompt is {n_tokens} tokens; {model_id} accepts at most {max_tokens}"
        raise PromptTooLongError(message, field=field)


def check_single_token(text: str, ids: Sequence[int], pieces: Sequence[str], *, field: str) -> None:
    """An answer or target text must be exactly one token; the message shows how it splits."""
    if len(ids) != 1:
        raise InvalidRequestError(
            f"{quote(text)} must be a single token but is {len(ids)} tokens: {_few([quote(p) for p in pieces])}",
            field=field,
            code="not_single_token",
        )


def check_equal_lengths(
    clean: Sequence[int], corrupted: Sequence[int], clean_strings: Sequence[str], corrupted_strings: Sequence[str]
) -> None:
    """Patching needs prompts of equal token length; say both lengths and where they first differ."""
    if len(clean) == len(corrupted):
        return
    shared = min(len(clean), len(corrupted))
    diverge = next((i for i in range(shared) if clean[i] != corrupted[i]), shared)

    def at(strings: Sequence[str]) -> str:
        return quote(strings[diverge]) if diverge < len(strings) else "(end)"

    raise InvalidRequestError(
        f"the clean prompt is {len(clean)} tokens and the corrupted prompt {len(corrupted)}; patching needs equal "
        f"lengths. They first differ at position {diverge}: clean {at(clean_strings)}, corrupted "
        f"{at(corrupted_strings)}",
        field="corrupted_prompt",
        code="length_mismatch",
    )


def check_indices(values: Sequence[int] | None, size: int, field: str, what: str) -> list[int]:
    """``values`` (all of ``0..size-1`` when ``None``), each in range and listed once."""
    if values is None:
        return list(range(size))
    if not values:
        raise InvalidRequestError(f"{field} is empty; leave it out for all {what}s", field=field)
    bad = [v for v in values if not 0 <= v < size]
    if bad:
        raise InvalidRequestError(
            f"{what}s {_few(bad)} out of range: valid {what}s are 0..{size - 1}", field=field, code="out_of_range"
        )
    if len(set(values)) != len(values):
        raise InvalidRequestError(f"{field} lists a {what} twice", field=field)
    return list(values)


def check_heads(
    heads: Sequence[tuple[int, int]], n_layers: int, n_heads: int, field: str
) -> list[tuple[int, int]]:
    """``(layer, head)`` pairs, each in range, duplicates dropped in order."""
    bad = [pair for pair in heads if not (0 <= pair[0] < n_layers and 0 <= pair[1] < n_heads)]
    if bad:
        raise InvalidRequestError(
            f"heads {_few([list(b) for b in bad])} out of range: layers are 0..{n_layers - 1}, heads 0..{n_heads - 1}",
            field=field,
            code="out_of_range",
        )
    return list(dict.fromkeys((int(layer), int(head)) for layer, head in heads))


def check_position(position: int | None, n_positions: int, *, field: str = "position") -> int:
    """An absolute position from ``position`` (negative from the end; ``None`` the last token)."""
    resolved = n_positions - 1 if position is None else position
    if not -n_positions <= resolved < n_positions:
        raise InvalidRequestError(
            f"position {position} is out of range; the prompt has {n_positions} tokens "
            f"(positions 0..{n_positions - 1}, or -1..-{n_positions} from the end)",
            field=field,
            code="out_of_range",
        )
    return resolved % n_positions


def check_feature(feature: int, d_sae: int, sae_id: str, *, field: str = "feature") -> int:
    """A feature id of an SAE ``d_sae`` features wide: the API checks it against the width a worker published,
    the core against the loaded SAE."""
    if isinstance(feature, bool) or not isinstance(feature, int) or not 0 <= feature < d_sae:
        raise InvalidRequestError(
            f"feature {quote(feature)} is out of range; SAE {sae_id!r} has features 0..{d_sae - 1}",
            field=field,
            code="out_of_range",
        )
    return feature
