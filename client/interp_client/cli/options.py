"""Command-line options derived from a spec model's fields: names with dashes, types, choices, help and defaults
from the contract, so ``run KIND`` follows openapi.yaml without a hand-kept copy.

Unset options are left out of the submission (the server's defaults apply, and the help shows them). Lists take
several values (``--targets resid_pre attn_out``), head lists ``LAYER:HEAD`` pairs (``--receivers 9:6 9:9``),
nested objects JSON (``--target '{"token": " Mary"}'``); ``--clean-prompt`` can be written ``--clean``.
"""

from __future__ import annotations

import argparse
import json
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = ["add_spec_options", "spec_fields"]


def _strip(annotation: Any) -> Any:
    """``Annotated[X, …]``, type aliases and ``X | None`` down to ``X``."""
    while True:
        value = getattr(annotation, "__value__", None)  # a TypeAliasType
        if value is not None:
            annotation = value
        elif get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models a (union) annotation allows; empty when it is not made of models."""
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    found = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    return found if len(found) == len(members) else []


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r}") from exc


def _ints(text: str) -> list[int]:
    """``9:6`` (or ``9,6``) as ``[9, 6]``."""
    try:
        return [int(part) for part in text.replace(",", ":").split(":")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected LAYER:HEAD, got {text!r}") from exc


METAVARS: dict[type, str] = {str: "TEXT", int: "N", float: "X"}
MAX_LISTED_CHOICES = 4
"""Longer choice lists go into the help text, not the usage line."""


@dataclass(frozen=True)
class Option:
    """How one field reads from the command line."""

    kwargs: dict[str, Any]
    note: str = ""


def _example(info: FieldInfo) -> Any:
    return ["…", "…"] if get_origin(_strip(info.annotation)) is list else "…"


def _scalar(annotation: Any, metavar: str) -> Option:
    if get_origin(annotation) is Literal:
        choices = list(get_args(annotation))
        if len(choices) <= MAX_LISTED_CHOICES:
            return Option({"choices": choices, "type": type(choices[0])})
        return Option({"choices": choices, "type": type(choices[0]), "metavar": metavar.upper()},
                      "one of " + ", ".join(map(str, choices)))
    if annotation in METAVARS:
        return Option({"type": annotation, "metavar": METAVARS[annotation]})
    if models := _models(annotation):
        shapes = " or ".join(json.dumps({name: _example(info) for name, info in m.model_fields.items()},
                                        ensure_ascii=False) for m in models)
        return Option({"type": _json, "metavar": "JSON"}, f"JSON: {shapes}")
    return Option({"type": _json, "metavar": "JSON"}, "JSON")


def _option(name: str, info: FieldInfo) -> Option:
    annotation = _strip(info.annotation)
    if annotation is bool:
        return Option({"action": argparse.BooleanOptionalAction})
    if get_origin(annotation) is list:
        item = _strip(get_args(annotation)[0])
        if get_origin(item) is list:
            return Option({"nargs": "+", "type": _ints, "metavar": "LAYER:HEAD"})
        inner = _scalar(item, name.removesuffix("s"))
        return Option({**inner.kwargs, "nargs": "+"}, inner.note)
    return _scalar(annotation, name)


def spec_fields(spec_type: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields a user sets, required ones first: all but ``kind``, which the command names."""
    fields = [(name, info) for name, info in spec_type.model_fields.items() if name != "kind"]
    return dict(sorted(fields, key=lambda item: not item[1].is_required()))


def _flags(name: str) -> list[str]:
    flags = ["--" + name.replace("_", "-")]
    if name.endswith("_prompt"):
        flags.append("--" + name.removesuffix("_prompt").replace("_", "-"))
    return flags


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default is PydanticUndefined or info.default is None:
        return ""
    default = info.default
    return f"default: {json.dumps(default) if isinstance(default, bool | list | dict) else default}"


def add_spec_options(
    parser: argparse.ArgumentParser, spec_type: type[BaseModel]
) -> Callable[[argparse.Namespace], dict[str, Any]]:
    """Add an option per field of ``spec_type``; returns the function that reads the set ones back as fields."""
    group = parser.add_argument_group(f"{spec_type.__name__} fields (openapi.yaml)")
    names = spec_fields(spec_type)
    for name, info in names.items():
        option = _option(name, info)
        parts = [part for part in (info.description, option.note, _default(info)) if part]
        group.add_argument(
            *_flags(name), dest=name, required=info.is_required(), default=argparse.SUPPRESS,
            help="; ".join(parts).replace("%", "%%") or None, **option.kwargs,
        )

    def read(args: argparse.Namespace) -> dict[str, Any]:
        return {name: getattr(args, name) for name in names if hasattr(args, name)}

    return read
