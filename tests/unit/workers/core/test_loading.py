"""Loading: seeded tiny models, saved directories, the hub refusing to download, and the atomic GGUF cache."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.core import loading
from workers.core.byte_tokenizer import BOS_ID, VOCAB_SIZE
from workers.core.errors import ModelLoadError
from workers.core.loading import MANIFEST_NAME, ensure_converted, load_model, verify_converted
from workers.core.registry import (
    GgufFileSource,
    HubSource,
    LocalSource,
    ModelEntry,
    ModelFamily,
    RandomSource,
    Registry,
)

FAMILIES: tuple[ModelFamily, ...] = ("gpt2", "llama", "qwen2", "qwen3", "gemma2", "gemma3")
PROMPT = "When Mary and John went to the store"


def _random_entry(family: ModelFamily = "gpt2", seed: int = 0, **config: Any) -> ModelEntry:
    return ModelEntry(
        id=f"tiny-{family}", source=RandomSource(family=family, seed=seed, config=MappingProxyType(config))
    )


def _logits(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: str = PROMPT) -> torch.Tensor:
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.inference_mode():
        return model(ids).logits


@pytest.mark.parametrize("family", FAMILIES)
def test_random_models_are_deterministic_per_seed(family: ModelFamily, tmp_path: Path) -> None:
    model, tokenizer = load_model(_random_entry(family, seed=3), cache_dir=tmp_path)
    again, _ = load_model(_random_entry(family, seed=3), cache_dir=tmp_path)
    other, _ = load_model(_random_entry(family, seed=4), cache_dir=tmp_path)
    logits = _logits(model, tokenizer)
    assert logits.shape == (1, len(PROMPT) + 1, VOCAB_SIZE)
    assert torch.equal(logits, _logits(again, tokenizer))
    assert not torch.allclose(logits, _logits(other, tokenizer))
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.config._attn_implementation == ("eager" if family == "gemma2" else "sdpa")
    assert tokenizer("a").input_ids[0] == BOS_ID


def test_random_model_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(_random_entry(seed=9), cache_dir=tmp_path)
    assert torch.equal(torch.rand(3), expected)


def test_random_config_overrides_and_dtype(tmp_path: Path) -> None:
    entry = ModelEntry(
        id="t",
        source=RandomSource(family="llama", seed=0, config=MappingProxyType({"num_hidden_layers": 3})),
        dtype="bfloat16",
        max_tokens=99,
    )
    model, tokenizer = load_model(entry, cache_dir=tmp_path)
    assert model.config.num_hidden_layers == 3
    assert model.dtype == torch.bfloat16
    assert tokenizer.model_max_length == 99
    gpt2, _ = load_model(_random_entry("gpt2", n_positions=64), cache_dir=tmp_path)
    assert (gpt2.config.n_positions, gpt2.config.n_ctx) == (64, 64)


@pytest.mark.parametrize(("key", "message"), [("vocab_size", "byte tokenizer"), ("n_layers", "not a GPT2Config")])
def test_random_config_refuses_bad_keys(key: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_model(_random_entry("gpt2", **{key: 3}), cache_dir=tmp_path)


def test_default_tiny_gpt2_loads(tmp_path: Path) -> None:
    model, tokenizer = load_model(Registry.default().get("tiny-gpt2"), cache_dir=tmp_path)
    assert model.config.n_layer == 2
    assert tokenizer.decode(tokenizer("héllo").input_ids, skip_special_tokens=True) == "héllo"


def _save_tiny(directory: Path, seed: int = 0) -> torch.Tensor:
    model, tokenizer = load_model(_random_entry("llama", seed=seed), cache_dir=directory.parent)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return _logits(model, tokenizer)


def test_local_directory_round_trips(tmp_path: Path) -> None:
    expected = _save_tiny(tmp_path / "saved")
    model, tokenizer = load_model(
        ModelEntry(id="saved", source=LocalSource(path=tmp_path / "saved")), cache_dir=tmp_path
    )
    assert torch.equal(_logits(model, tokenizer), expected)
    assert not model.training


def test_missing_local_directory_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config\.json") as info:
        load_model(ModelEntry(id="x", source=LocalSource(path=tmp_path / "absent")), cache_dir=tmp_path)
    assert info.value.code == "model_load_failed"


def test_hub_source_never_downloads_by_default(tmp_path: Path) -> None:
    entry = ModelEntry(id="h", source=HubSource(repo="no-such-org/no-such-model", revision="abc123"))
    with pytest.raises(ModelLoadError, match="downloads are disabled"):
        load_model(entry, cache_dir=tmp_path)


def test_cuda_device_without_cuda_is_refused(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    entry = ModelEntry(id="t", source=RandomSource(family="gpt2", seed=0), device="cuda")
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        load_model(entry, cache_dir=tmp_path)


# --- the atomic cache ----------------------------------------------------------------------------------------


class CountingBuilder:
    """Writes a few small files like a converted model; counts calls; can fail part-way."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, out: Path, work: Path) -> dict[str, Any]:
        self.calls += 1
        (work / "scratch.bin").write_bytes(b"x" * 10)
        (out / "config.json").write_text("{}", encoding="utf-8")
        (out / "model.safetensors").write_bytes(bytes(range(256)) * 4)
        if self.fail:
            raise RuntimeError("injected failure after writing files")
        return {"source_sha256": "f" * 64}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if not p.name.endswith(".lock"))


def test_cache_is_built_once_then_reused(tmp_path: Path) -> None:
    builder = CountingBuilder()
    final = tmp_path / "converted" / "m"
    assert ensure_converted(final, build=builder) == final
    assert ensure_converted(final, build=builder, verify_hashes=True) == final
    assert builder.calls == 1
    manifest = json.loads((final / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == {"config.json", "model.safetensors"}
    assert manifest["files"]["model.safetensors"]["size"] == 1024
    assert manifest["source_sha256"] == "f" * 64
    assert not (final / "scratch.bin").exists()
    assert _leftovers(final.parent) == ["m"]


def _truncate(d: Path) -> None:
    (d / "model.safetensors").write_bytes(b"short")


def _delete_weights(d: Path) -> None:
    (d / "model.safetensors").unlink()


def _delete_manifest(d: Path) -> None:
    (d / MANIFEST_NAME).unlink()


def _garble_manifest(d: Path) -> None:
    (d / MANIFEST_NAME).write_text("{not json", encoding="utf-8")


@pytest.mark.parametrize("corrupt", [_truncate, _delete_weights, _delete_manifest, _garble_manifest])
def test_corrupt_cache_is_detected_and_rebuilt(corrupt: Any, tmp_path: Path) -> None:
    builder = CountingBuilder()
    final = tmp_path / "m"
    ensure_converted(final, build=builder)
    corrupt(final)
    assert verify_converted(final) is not None
    ensure_converted(final, build=builder)
    assert builder.calls == 2
    assert verify_converted(final, verify_hashes=True) is None


def test_same_size_corruption_needs_hash_verification(tmp_path: Path) -> None:
    builder = CountingBuilder()
    final = tmp_path / "m"
    ensure_converted(final, build=builder)
    (final / "model.safetensors").write_bytes(b"\0" * 1024)
    assert verify_converted(final) is None
    problem = verify_converted(final, verify_hashes=True)
    assert problem is not None
    assert "sha256" in problem.reason
    ensure_converted(final, build=builder, verify_hashes=True)
    assert builder.calls == 2


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    final = tmp_path / "m"
    with pytest.raises(RuntimeError, match="injected"):
        ensure_converted(final, build=CountingBuilder(fail=True))
    assert _leftovers(tmp_path) == []
    ensure_converted(final, build=CountingBuilder())
    assert verify_converted(final) is None


def test_stale_temp_dirs_of_crashed_builds_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".m.tmp-99999-deadbeef"
    (stale / "out").mkdir(parents=True)
    ensure_converted(tmp_path / "m", build=CountingBuilder())
    assert _leftovers(tmp_path) == ["m"]


def test_concurrent_callers_build_once(tmp_path: Path) -> None:
    builder = CountingBuilder()
    final = tmp_path / "m"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            ensure_converted(final, build=builder)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert builder.calls == 1


# --- GGUF sources through load_model, with the slow dequantization replaced by a tiny model ------------------


def _fake_gguf(tmp_path: Path) -> GgufFileSource:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF not really")
    return GgufFileSource(path=path)


def test_gguf_file_is_converted_once_then_read_from_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Path] = []
    expected = _save_tiny(tmp_path / "reference", seed=5)

    def fake_convert(gguf: Path, out: Path, source_sha256: str) -> dict[str, Any]:
        calls.append(gguf)
        _save_tiny(out, seed=5)
        return {"source_sha256": source_sha256}

    monkeypatch.setattr(loading, "_convert_gguf", fake_convert)
    entry = ModelEntry(id="g", source=_fake_gguf(tmp_path))
    cache = tmp_path / "cache"
    first, tokenizer = load_model(entry, cache_dir=cache)
    second, _ = load_model(entry, cache_dir=cache, verify_hashes=True)
    assert len(calls) == 1
    assert torch.equal(_logits(first, tokenizer), expected)
    assert torch.equal(_logits(second, tokenizer), expected)
    (converted,) = [p for p in (cache / "converted").iterdir() if not p.name.endswith(".lock")]
    assert Path(second.name_or_path) == converted
    manifest = json.loads((converted / MANIFEST_NAME).read_text())
    assert manifest["source_sha256"] == loading._sha256_file(tmp_path / "model.gguf")


def test_failed_gguf_conversion_is_a_load_error_and_leaves_no_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def failing_convert(gguf: Path, out: Path, source_sha256: str) -> dict[str, Any]:
        _save_tiny(out)  # a complete-looking directory, minus the manifest
        raise OSError("disk full (injected)")

    monkeypatch.setattr(loading, "_convert_gguf", failing_convert)
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError, match="injected"):
        load_model(ModelEntry(id="g", source=_fake_gguf(tmp_path)), cache_dir=cache)
    assert _leftovers(cache / "converted") == []


def test_missing_gguf_file_is_a_load_error(tmp_path: Path) -> None:
    entry = ModelEntry(id="g", source=GgufFileSource(path=tmp_path / "absent.gguf"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(entry, cache_dir=tmp_path)


# --- the real Gemma 3 270M ------------------------------------------------------------------------------------

IOI = "When Mary and John went to the store, John gave a drink to"


@pytest.mark.gemma
def test_gemma_from_the_default_registry(gemma_hf: tuple[PreTrainedModel, PreTrainedTokenizerBase]) -> None:
    model, tokenizer = gemma_hf
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (18, 640, 262144)
    assert model.dtype == torch.float32
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    ids = tokenizer(IOI, return_tensors="pt").input_ids
    assert ids.shape == (1, 15)
    assert ids[0, 0].item() == tokenizer.bos_token_id == 2
    last = _logits(model, tokenizer, IOI)[0, -1]
    assert tokenizer.encode(" Mary", add_special_tokens=False) == [8712]
    assert tokenizer.encode(" John", add_special_tokens=False) == [3415]
    assert int(last.argmax()) == 8712
    assert float(last[8712] - last[3415]) == pytest.approx(5.22, abs=0.05)


@pytest.mark.gemma
def test_gemma_second_load_reads_the_safetensors_cache(
    gemma_hf: tuple[PreTrainedModel, PreTrainedTokenizerBase], model_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_conversion(*args: object) -> dict[str, Any]:
        raise AssertionError("the GGUF was converted again")

    monkeypatch.setattr(loading, "_convert_gguf", no_conversion)
    model, _ = load_model(Registry.default().get("gemma-3-270m"), cache_dir=model_cache_dir)
    directory = Path(model.name_or_path)
    assert directory.parent == model_cache_dir / "converted"
    assert verify_converted(directory) is None
    assert (directory / "model.safetensors").is_file()
    first_weight = next(gemma_hf[0].parameters())
    assert torch.equal(next(model.parameters()), first_weight)
