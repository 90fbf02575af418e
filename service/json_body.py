"""Every JSON body read strictly: :class:`StrictJsonRequest`, the app's request class.

The media type must be ``application/json`` (415 ``unsupported_media_type`` otherwise; no header at all is read
as JSON), the bytes UTF-8, the text standard JSON (no ``NaN``, no number beyond a float's range) with no duplicated
key, no lone surrogate and no more than :data:`MAX_JSON_DEPTH` nested arrays and objects, each a 400
``invalid_request`` naming the problem. The wire models are strict (:class:`workers.kinds.base.WireModel`), so
nothing is coerced either.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from itertools import accumulate
from typing import Any

from litestar import Request
from litestar.concurrency import sync_to_thread

from service.errors import UnsupportedMediaTypeError, bounded_field
from workers.core.checks import quote
from workers.core.errors import InvalidRequestError

__all__ = ["MAX_JSON_DEPTH", "StrictJsonRequest", "decode_json_body"]

MAX_JSON_DEPTH = 64
"""Arrays and objects nested deeper than this are refused (a spec needs a handful of levels)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_NESTING = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""Where a JSON escape may decode to half of a surrogate pair: only then is the decoded text looked through."""
_INLINE_BYTES = 64 * 1024


class StrictJsonRequest(Request[Any, Any, Any]):
    """A request whose JSON body is read by :func:`decode_json_body`, after its media type is checked."""

    async def json(self) -> Any:
        media_type, options = self.content_type
        if media_type not in ("", "application/json") or options.get("charset", "utf-8").lower() != "utf-8":
            raise UnsupportedMediaTypeError(
                f"the body must be application/json (UTF-8), not {quote(self.headers.get('content-type'))}",
                field="Content-Type",
            )
        body = await self.body()
        if len(body) > _INLINE_BYTES:  # a large body is decoded off the event loop, which goes on serving
            return await sync_to_thread(decode_json_body, body)
        return decode_json_body(body)


def decode_json_body(body: bytes) -> Any:
    """The JSON value of ``body``, or an :class:`InvalidRequestError` that names the problem.

    The decoder is the standard library's, whose hooks refuse duplicated keys and non-finite numbers; depth is
    measured on the bytes before decoding and lone surrogates are looked for only where an escape could make one,
    so that a valid body costs C-speed passes only.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"the body is not UTF-8 (byte {exc.start})") from None
    if _depth(body) > MAX_JSON_DEPTH:
        raise _too_deep()
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_float=_float, parse_constant=_constant)
    except RecursionError:  # not reached past the depth check; kept so that no decoder limit can become a 500
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"the body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") \
            from None
    except ValueError:  # an integer past Python's limit on digits
        raise InvalidRequestError("the body holds a number with too many digits") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_unicode(value)
    return value


def _depth(body: bytes) -> int:
    """How deep arrays and objects nest: strings dropped, the deepest running count of the brackets left (a body
    that is not JSON is the decoder's to refuse)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_NESTING.__getitem__, brackets)), default=0)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) < len(pairs):  # the last one would win silently: refuse instead, naming the first repeated key
        counts = Counter(key for key, _ in pairs)
        repeated = next(key for key, _ in pairs if counts[key] > 1)
        raise _invalid(f"duplicate key {quote(repeated)}", repeated)
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRequestError(f"the number {quote(text)} is out of range")
    return value


def _constant(text: str) -> float:
    raise InvalidRequestError(f"{text} is not JSON")


def _check_unicode(value: Any) -> None:
    """Refuse a lone surrogate (``"\\ud800"`` decodes to one, which is not Unicode), naming where it is."""
    if _lone_surrogate(json.dumps(value, ensure_ascii=False)) is None:
        return  # every escape was half of a pair
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        texts = [node] if isinstance(node, str) else list(node) if isinstance(node, dict) else []
        for text in texts:
            if (at := _lone_surrogate(text)) is not None:
                message = f"the text holds a lone surrogate (U+{ord(text[at]):04X}), which is not Unicode"
                raise _invalid(message, ".".join(path) or None)
        if isinstance(node, dict | list):
            stack.extend((child, (*path, str(key))) for key, child in
                         (node.items() if isinstance(node, dict) else enumerate(node)))


def _lone_surrogate(text: str) -> int | None:
    """Where the first lone surrogate of ``text`` is, if it has one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def _too_deep() -> InvalidRequestError:
    return InvalidRequestError(f"the body nests arrays and objects more than {MAX_JSON_DEPTH} deep")


def _invalid(message: str, field: str | None) -> InvalidRequestError:
    field = bounded_field(field)
    return InvalidRequestError(message + (f" (field {field})" if field else ""), field=field)
