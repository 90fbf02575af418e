"""SAELens's on-disk SAE format: ``cfg.json`` + ``sae_weights.safetensors`` (+ optional ``sparsity.safetensors``).

One frozen config dataclass per architecture, looked up by the ``architecture`` string as SAELens's registry does
(``standard``, ``topk``, ``jumprelu``, ``gated``). Both SAELens 6 configs (hook name under ``metadata``) and older
flat ones (``hook_name`` or ``hook_point`` at the top) are read. Tensors are read with safetensors only, every
tensor's name and shape is checked against the config, and any unreadable, truncated or inconsistent file is a
:class:`SaeFormatError` naming the file, so nothing half-loaded is ever returned or cached.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, cast, get_args

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from workers.core.errors import SaeFormatError
from workers.core.hooks import parse_hook_name

__all__ = [
    "SAE_ARCHITECTURES",
    "SAE_CFG_FILENAME",
    "SAE_WEIGHTS_FILENAME",
    "SPARSITY_FILENAME",
    "GatedSaeConfig",
    "JumpReluSaeConfig",
    "NormalizeActivations",
    "SaeConfig",
    "SaeDtype",
    "StandardSaeConfig",
    "TopKSaeConfig",
    "config_from_dict",
    "describe",
    "read_sae_dir",
    "write_sae_dir",
]

SAE_CFG_FILENAME = "cfg.json"
SAE_WEIGHTS_FILENAME = "sae_weights.safetensors"
SPARSITY_FILENAME = "sparsity.safetensors"
SPARSITY_TENSOR = "sparsity"

SaeDtype: TypeAlias = Literal["float32", "float16", "bfloat16", "float64"]
NormalizeActivations: TypeAlias = Literal["none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"]
ReshapeActivations: TypeAlias = Literal["none", "hook_z"]

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


@dataclass(frozen=True)
class SaeConfig:
    """Fields every architecture shares (SAELens's ``SAEConfig`` plus the metadata this service uses)."""

    architecture: ClassVar[str]
    d_in: int
    d_sae: int
    hook_name: str
    dtype: SaeDtype = "float32"
    apply_b_dec_to_input: bool = True
    normalize_activations: NormalizeActivations = "none"
    reshape_activations: ReshapeActivations = "none"
    model_name: str | None = None
    prepend_bos: bool = True
    context_size: int | None = None

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor the weights file must hold, with its shape."""
        return {
            "W_enc": (self.d_in, self.d_sae),
            "b_enc": (self.d_sae,),
            "W_dec": (self.d_sae, self.d_in),
            "b_dec": (self.d_in,),
        }

    def to_dict(self) -> dict[str, Any]:
        """The SAELens 6 ``cfg.json`` form."""
        data = asdict(self)
        metadata = {key: data.pop(key) for key in ("hook_name", "model_name", "prepend_bos", "context_size")}
        metadata["hook_head_index"] = None
        metadata["sae_lens_version"] = "6.0.0"
        return {"architecture": self.architecture, **data, "device": "cpu", "metadata": metadata}


@dataclass(frozen=True)
class StandardSaeConfig(SaeConfig):
    """ReLU SAE: ``relu((x - b_dec) W_enc + b_enc)``."""

    architecture: ClassVar[str] = "standard"


@dataclass(frozen=True)
class TopKSaeConfig(SaeConfig):
    """TopK SAE: the ``k`` largest pre-activations, ReLU'd; the rest zero."""

    architecture: ClassVar[str] = "topk"
    k: int = 100
    rescale_acts_by_decoder_norm: bool = False


@dataclass(frozen=True)
class JumpReluSaeConfig(SaeConfig):
    """JumpReLU SAE (Gemma Scope): ReLU'd pre-activations that exceed a per-feature ``threshold``."""

    architecture: ClassVar[str] = "jumprelu"

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().tensor_shapes(), "threshold": (self.d_sae,)}


@dataclass(frozen=True)
class GatedSaeConfig(SaeConfig):
    """Gated SAE: a gate path (``b_gate``) decides which features fire, a magnitude path (``r_mag``, ``b_mag``)."""

    architecture: ClassVar[str] = "gated"

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {
            "W_enc": (self.d_in, self.d_sae),
            "b_gate": (self.d_sae,),
            "r_mag": (self.d_sae,),
            "b_mag": (self.d_sae,),
            "W_dec": (self.d_sae, self.d_in),
            "b_dec": (self.d_in,),
        }


SAE_ARCHITECTURES: Mapping[str, type[SaeConfig]] = {
    cls.architecture: cls for cls in (StandardSaeConfig, TopKSaeConfig, JumpReluSaeConfig, GatedSaeConfig)
}


def _field(data: Mapping[str, Any], name: str, kind: type[Any], source: str) -> Any:
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SaeFormatError(f"{source}: {name} must be a {kind.__name__}, got {value!r}", field="sae")
    return value


def config_from_dict(data: Mapping[str, Any], *, source: str = SAE_CFG_FILENAME) -> SaeConfig:
    """Validate a ``cfg.json`` document into its architecture's config dataclass."""
    if not isinstance(data, Mapping):
        raise SaeFormatError(f"{source} must hold a JSON object", field="sae")
    flat: dict[str, Any] = dict(data)
    metadata = flat.pop("metadata", None) or {}
    if not isinstance(metadata, Mapping):
        raise SaeFormatError(f"{source}: metadata must be an object", field="sae")
    for key in ("hook_name", "model_name", "prepend_bos", "context_size"):
        if key in metadata and key not in flat:
            flat[key] = metadata[key]
    if "hook_name" not in flat and "hook_point" in flat:  # SAELens < 6
        flat["hook_name"] = flat["hook_point"]
    architecture = flat.get("architecture", "standard")
    if architecture == "standard" and flat.get("activation_fn") == "topk":  # SAELens < 6 TopK
        architecture = "topk"
        flat.setdefault("k", (flat.get("activation_fn_kwargs") or {}).get("k"))
    cls = SAE_ARCHITECTURES.get(architecture)
    if cls is None:
        known = ", ".join(SAE_ARCHITECTURES)
        raise SaeFormatError(f"{source}: unsupported SAE architecture {architecture!r}; known: {known}", field="sae")
    for name in ("d_in", "d_sae", "hook_name"):
        if flat.get(name) is None:
            raise SaeFormatError(f"{source}: missing {name}", field="sae")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in flat or (flat[f.name] is None and f.name not in ("model_name", "context_size")):
            continue
        kwargs[f.name] = flat[f.name]
    for name in ("d_in", "d_sae"):
        if _field(kwargs, name, int, source) <= 0:
            raise SaeFormatError(f"{source}: {name} must be positive", field="sae")
    _field(kwargs, "hook_name", str, source)
    parse_hook_name(kwargs["hook_name"], field="sae")
    for name, allowed in (
        ("dtype", get_args(SaeDtype)),
        ("normalize_activations", get_args(NormalizeActivations)),
        ("reshape_activations", get_args(ReshapeActivations)),
    ):
        value = str(kwargs.get(name, "none" if name != "dtype" else "float32")).removeprefix("torch.")
        if value not in allowed:
            raise SaeFormatError(f"{source}: {name} {value!r} is not one of {', '.join(allowed)}", field="sae")
        kwargs[name] = value
    for name in ("apply_b_dec_to_input", "prepend_bos", "rescale_acts_by_decoder_norm"):
        if name in kwargs:
            _field(kwargs, name, bool, source)
    if cls is TopKSaeConfig:
        k = _field(kwargs, "k", int, source) if "k" in kwargs else None
        if k is None or not 0 < k <= int(kwargs["d_sae"]):
            raise SaeFormatError(f"{source}: k must be in 1..d_sae, got {k!r}", field="sae")
    return cls(**kwargs)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except FileNotFoundError as exc:
        raise SaeFormatError(f"missing {path.name} in {path.parent}", field="sae") from exc
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        message = f"{path} is not a readable safetensors file (corrupt or truncated): {exc}"
        raise SaeFormatError(message, field="sae") from exc


def read_sae_dir(directory: Path) -> tuple[SaeConfig, dict[str, torch.Tensor], torch.Tensor | None]:
    """Config, tensors (cast to the config's dtype) and log10 feature sparsity (``None`` when absent)."""
    cfg_path = directory / SAE_CFG_FILENAME
    try:
        data = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SaeFormatError(f"missing {SAE_CFG_FILENAME} in {directory}", field="sae") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SaeFormatError(f"{cfg_path} is not valid JSON: {exc}", field="sae") from exc
    cfg = config_from_dict(data, source=str(cfg_path))
    raw = _load_tensors(directory / SAE_WEIGHTS_FILENAME)
    dtype = TORCH_DTYPES[cfg.dtype]
    tensors: dict[str, torch.Tensor] = {}
    for name, shape in cfg.tensor_shapes().items():
        tensor = raw.get(name)
        if tensor is None:
            raise SaeFormatError(f"{directory / SAE_WEIGHTS_FILENAME} lacks tensor {name}", field="sae")
        if tuple(tensor.shape) != shape:
            raise SaeFormatError(
                f"{name} has shape {tuple(tensor.shape)}, but the config (d_in {cfg.d_in}, d_sae {cfg.d_sae}) "
                f"needs {shape}",
                field="sae",
            )
        tensor = tensor.to(dtype)
        if not bool(torch.isfinite(tensor).all()):
            raise SaeFormatError(f"{name} holds non-finite values", field="sae")
        tensors[name] = tensor
    sparsity = None
    sparsity_path = directory / SPARSITY_FILENAME
    if sparsity_path.exists():
        sparsity = _load_tensors(sparsity_path).get(SPARSITY_TENSOR)
        if sparsity is None or tuple(sparsity.shape) != (cfg.d_sae,):
            raise SaeFormatError(f"{sparsity_path} must hold a [{cfg.d_sae}] tensor named sparsity", field="sae")
    return cfg, tensors, sparsity


def write_sae_dir(
    directory: Path,
    cfg: SaeConfig,
    tensors: Mapping[str, torch.Tensor],
    *,
    sparsity: torch.Tensor | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write an SAE in SAELens format (tests and the training script); ``extra`` adds cfg.json keys."""
    shapes = cfg.tensor_shapes()
    if set(tensors) != set(shapes):
        raise SaeFormatError(f"tensors {sorted(tensors)} do not match {cfg.architecture}: {sorted(shapes)}")
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(directory / SAE_WEIGHTS_FILENAME))
    if sparsity is not None:
        save_file({SPARSITY_TENSOR: sparsity.detach().float().contiguous()}, str(directory / SPARSITY_FILENAME))
    data = cfg.to_dict()
    for key, value in (extra or {}).items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            cast(dict[str, Any], data[key]).update(value)
        else:
            data[key] = value
    (directory / SAE_CFG_FILENAME).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def describe(cfg: SaeConfig) -> dict[str, Any]:
    """JSON-ready summary (the models endpoint lists it)."""
    summary: dict[str, Any] = {"architecture": cfg.architecture, "d_in": cfg.d_in, "d_sae": cfg.d_sae}
    summary["hook"] = cfg.hook_name
    if isinstance(cfg, TopKSaeConfig):
        summary["k"] = cfg.k
    summary["parameters"] = sum(math.prod(s) for s in cfg.tensor_shapes().values())
    return summary
