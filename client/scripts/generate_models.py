"""Regenerate ``interp_client/models.py`` (pydantic) and ``interp_client/fields.py`` (TypedDicts) from openapi.yaml.

Run ``python client/scripts/generate_models.py`` after ``interp openapi``; ``--check`` exits 1 when the committed
modules are stale. Needs ``datamodel-code-generator`` (a dev tool, pinned in the root ``dev`` extras so the output
is reproducible), never at run time. The result models get the hand-written methods of
``interp_client/result_methods.py`` as base classes, so ``job.result()`` is the generated type and converts itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

CLIENT = Path(__file__).resolve().parents[1]
SPEC = CLIENT.parent / "openapi.yaml"
PACKAGE = CLIENT / "interp_client"
HEADER = "# Generated from openapi.yaml by client/scripts/generate_models.py: do not edit; regenerate instead."

# Result models that analysis code converts (arrays, frames, figures): generated class → hand-written base.
METHODS = "interp_client.result_methods"
BASE_CLASSES = {
    "Grid": f"{METHODS}.GridMethods",
    "PatchGrid": f"{METHODS}.PatchGridMethods",
    "PatchingResult": f"{METHODS}.PatchingMethods",
    "AttributionResult": f"{METHODS}.AttributionMethods",
    "SaeEncodeResult": f"{METHODS}.SaeEncodeMethods",
    "SaeFeaturesResult": f"{METHODS}.SaeFeaturesMethods",
    "SteerResult": f"{METHODS}.SteerMethods",
}

COMMON = [
    "--input-file-type", "openapi",
    "--target-python-version", "3.11",
    "--use-annotated",
    "--use-union-operator",
    "--use-standard-collections",
    "--enum-field-as-literal", "all",
    "--use-double-quotes",
    "--disable-timestamp",
    "--use-field-description",
    "--use-schema-description",
    "--collapse-root-models",
    "--strict-nullable",
    "--use-default",  # ``kind`` is required (the discriminator) yet has its default: callers never pass it
    "--use-type-alias",
    "--formatters", "builtin",
    "--custom-file-header", HEADER,
]


def without_kind(document: dict[str, Any]) -> dict[str, Any]:
    """The document with ``kind`` left out of every request spec: the keyword arguments of each kind's method,
    which sets ``kind`` itself."""
    for schema in document["components"]["schemas"].values():
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False and "const" in properties.get("kind", {}):
            del properties["kind"]
            schema["required"] = [name for name in schema.get("required", []) if name != "kind"]
    return document


TARGETS = {
    "models.py": (None, ["--output-model-type", "pydantic_v2.BaseModel", "--use-attribute-docstrings",
                         "--base-class-map", repr(BASE_CLASSES).replace("'", '"')]),
    "fields.py": (without_kind, ["--output-model-type", "typing.TypedDict"]),
}


def generate(spec: Path = SPEC) -> dict[str, str]:
    """The text of each generated module, by file name."""
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (transform, options) in TARGETS.items():
            source = spec
            if transform is not None:
                source = Path(tmp) / "openapi.yaml"
                document = yaml.safe_load(spec.read_text(encoding="utf-8"))
                source.write_text(yaml.safe_dump(transform(document), sort_keys=False), encoding="utf-8")
            target = Path(tmp) / name
            subprocess.run(
                [sys.executable, "-m", "datamodel_code_generator", "--input", str(source), "--output", str(target),
                 *COMMON, *options],
                check=True, capture_output=True, text=True,
            )
            out[name] = target.read_text(encoding="utf-8")
    return out


def stale(spec: Path = SPEC) -> list[str]:
    """The generated modules whose committed text differs from what ``spec`` generates now."""
    return [name for name, text in generate(spec).items()
            if not (PACKAGE / name).is_file() or (PACKAGE / name).read_text(encoding="utf-8") != text]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed modules are stale")
    args = parser.parse_args()
    if args.check:
        names = stale()
        if names:
            raise SystemExit(f"stale: {', '.join(names)}; run python client/scripts/generate_models.py")
        return
    for name, text in generate().items():
        (PACKAGE / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
