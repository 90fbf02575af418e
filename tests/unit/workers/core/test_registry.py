"""Registry files: parsed into frozen entries, and every mistake named by its dotted key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workers.core.errors import RegistryConfigError, UnknownModelError, UnknownSaeError
from workers.core.registry import (
    GgufFileSource,
    GgufPackageSource,
    HubSource,
    LocalSource,
    RandomSource,
    Registry,
)

REPO_ROOT = Path(__file__).resolve().parents[4]

FULL = """
allow_downloads = true

[models.gemma]
source = { kind = "gguf_package" }
max_tokens = 512
weights_revision = "pkg-1.0.0"

[[models.gemma.saes]]
id = "res-6"
hook = "blocks.6.hook_resid_post"
path = "saes/res-6"

[[models.gemma.saes]]
id = "hub-sae"
hook = "blocks.3.hook_resid_pre"
repo = "someone/saes"
revision = "0123abc"
subfolder = "layer_3"

[models.file]
source = { kind = "gguf_file", path = "weights/model.gguf" }
dtype = "bfloat16"
device = "cuda:0"

[models.dir]
source = { kind = "local", path = "/abs/model" }

[models.hubbed]
source = { kind = "hub", repo = "org/model", revision = "v1.2" }
dtype = "float16"

[models.tiny-llama]
source = { kind = "random", family = "llama", seed = 7, config = { num_hidden_layers = 3 } }
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> RegistryConfigError:
    with pytest.raises(RegistryConfigError) as info:
        Registry.from_toml(_write(tmp_path, text))
    return info.value


def test_full_file_parses_into_entries(tmp_path: Path) -> None:
    registry = Registry.from_toml(_write(tmp_path, FULL))
    assert registry.model_ids == ("gemma", "file", "dir", "hubbed", "tiny-llama")
    assert registry.allow_downloads is True

    gemma = registry.get("gemma")
    assert gemma.source == GgufPackageSource()
    assert (gemma.dtype, gemma.device, gemma.max_tokens, gemma.weights_revision) == ("float32", "cpu", 512, "pkg-1.0.0")
    local_sae, hub_sae = gemma.saes
    assert local_sae.path == (tmp_path / "saes" / "res-6").resolve()
    assert (local_sae.hook, local_sae.repo) == ("blocks.6.hook_resid_post", None)
    assert (hub_sae.repo, hub_sae.revision, hub_sae.subfolder, hub_sae.path) == (
        "someone/saes",
        "0123abc",
        "layer_3",
        None,
    )
    assert gemma.get_sae("hub-sae") is hub_sae

    file_entry = registry.get("file")
    assert file_entry.source == GgufFileSource(path=(tmp_path / "weights" / "model.gguf").resolve())
    assert (file_entry.dtype, file_entry.device) == ("bfloat16", "cuda:0")
    assert registry.get("dir").source == LocalSource(path=Path("/abs/model"))
    hubbed = registry.get("hubbed")
    assert hubbed.source == HubSource(repo="org/model", revision="v1.2")
    assert hubbed.weights_revision == "v1.2"  # defaults to the pinned revision
    tiny = registry.get("tiny-llama").source
    assert isinstance(tiny, RandomSource)
    assert (tiny.family, tiny.seed, dict(tiny.config)) == ("llama", 7, {"num_hidden_layers": 3})


def test_entries_are_frozen(tmp_path: Path) -> None:
    entry = Registry.from_toml(_write(tmp_path, FULL)).get("gemma")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.max_tokens = 3  # type: ignore[misc]


def test_unknown_model_lists_served_ids(tmp_path: Path) -> None:
    registry = Registry.from_toml(_write(tmp_path, FULL))
    with pytest.raises(UnknownModelError) as info:
        registry.get("gpt-5")
    assert info.value.field == "model"
    assert info.value.code == "unknown_model"
    assert "'gpt-5'" in info.value.message
    for model_id in registry.model_ids:
        assert model_id in info.value.message


def test_unknown_sae_lists_served_saes(tmp_path: Path) -> None:
    gemma = Registry.from_toml(_write(tmp_path, FULL)).get("gemma")
    with pytest.raises(UnknownSaeError) as info:
        gemma.get_sae("nope")
    assert info.value.field == "sae"
    assert "res-6" in info.value.message
    assert "hub-sae" in info.value.message


def test_default_registry_serves_gemma_tiny_gpt2_and_modadd() -> None:
    registry = Registry.default()
    assert registry.model_ids == ("gemma-3-270m", "tiny-gpt2", "modadd-113")
    gemma = registry.get("gemma-3-270m")
    assert gemma.source == GgufPackageSource()
    assert (gemma.dtype, gemma.device, gemma.max_tokens) == ("float32", "cpu", 1024)
    tiny = registry.get("tiny-gpt2").source
    assert isinstance(tiny, RandomSource)
    assert tiny.family == "gpt2"
    assert registry.allow_downloads is False


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[models.m]\nsource = { kind = "random", family = "gpt2" }\nmax_token = 3\n', "models.m.max_token"),
        ('[models.m]\nsource = { kind = "warp" }\n', "models.m.source.kind"),
        ("[models.m]\ndtype = 'float32'\n", "models.m.source"),
        ('[models.m]\nsource = { kind = "random", family = "mamba" }\n', "models.m.source.family"),
        ('[models.m]\nsource = { kind = "random", family = "gpt2" }\ndtype = "int8"\n', "models.m.dtype"),
        ('[models.m]\nsource = { kind = "random", family = "gpt2" }\ndevice = "tpu"\n', "models.m.device"),
        ('[models.m]\nsource = { kind = "random", family = "gpt2" }\nmax_tokens = "many"\n', "models.m.max_tokens"),
        ('[models.m]\nsource = { kind = "random", family = "gpt2" }\nmax_tokens = 0\n', "models.m.max_tokens"),
        ('[models.m]\nsource = { kind = "random", family = "gpt2" }\nmax_tokens = true\n', "models.m.max_tokens"),
        ('[models.m]\nsource = { kind = "hub", repo = "a/b" }\n', "models.m.source.revision"),
        ('[models.m]\nsource = { kind = "hub", repo = "a/b", revision = "" }\n', "models.m.source.revision"),
        ('[models.m]\nsource = { kind = "local" }\n', "models.m.source.path"),
        ('[models.m]\nsource = { kind = "local", path = "x", revision = "y" }\n', "models.m.source.revision"),
        ('[models."bad id!"]\nsource = { kind = "gguf_package" }\n', "models.bad id!"),
        ('allow_download = true\n[models.m]\nsource = { kind = "gguf_package" }\n', "allow_download"),
        ("allow_downloads = false\n", "models"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, text: str, key: str) -> None:
    error = _error(tmp_path, text)
    assert error.field == key
    assert key in error.message


SAE_HEAD = '[models.m]\nsource = { kind = "gguf_package" }\n[[models.m.saes]]\n'


@pytest.mark.parametrize(
    ("sae", "key"),
    [
        ('id = "s"\nhook = "blocks.1.hook_nope"\npath = "p"\n', "models.m.saes[0].hook"),
        ('id = "s"\nhook = "blocks.1.hook_resid_pre"\n', "models.m.saes[0]"),
        ('id = "s"\nhook = "blocks.1.hook_resid_pre"\npath = "p"\nrepo = "a/b"\n', "models.m.saes[0]"),
        ('id = "s"\nhook = "blocks.1.hook_resid_pre"\nrepo = "a/b"\n', "models.m.saes[0].revision"),
        ('id = "s"\nhook = "blocks.1.hook_resid_pre"\npath = "p"\nrevision = "r"\n', "models.m.saes[0].revision"),
        ('hook = "blocks.1.hook_resid_pre"\npath = "p"\n', "models.m.saes[0].id"),
        ('id = "s"\nhook = "blocks.1.hook_resid_pre"\npath = "p"\nwidth = 3\n', "models.m.saes[0].width"),
    ],
)
def test_bad_sae_keys_are_named(tmp_path: Path, sae: str, key: str) -> None:
    error = _error(tmp_path, SAE_HEAD + sae)
    assert error.field == key


def test_duplicate_sae_ids_are_refused(tmp_path: Path) -> None:
    sae = 'id = "s"\nhook = "blocks.1.hook_resid_pre"\npath = "p"\n'
    error = _error(tmp_path, SAE_HEAD + sae + "[[models.m.saes]]\n" + sae)
    assert error.field == "models.m.saes[1].id"


def test_trust_remote_code_is_refused(tmp_path: Path) -> None:
    text = '[models.m]\nsource = { kind = "random", family = "gpt2", config = { trust_remote_code = true } }\n'
    assert _error(tmp_path, text).field == "models.m.source.config.trust_remote_code"


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    assert "not valid TOML" in _error(tmp_path, "[models.m\n").message
    with pytest.raises(RegistryConfigError, match="cannot read"):
        Registry.from_toml(tmp_path / "absent.toml")


RANDOM = '[models.m]\nsource = { kind = "random", family = "gpt2" }\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            RANDOM + "max_token = 3\n",
            "unknown key models.m.max_token (allowed here: source, dtype, device, max_tokens, max_patches, "
            "max_artifact_bytes, weights_revision, saes)",
        ),
        (
            '[models.m]\nsource = { kind = "local", path = "x", revision = "y" }\n',
            "unknown key models.m.source.revision (allowed here: kind, path)",
        ),
        (
            '[models.m]\nsource = { kind = "warp" }\n',
            "models.m.source.kind = 'warp' is not one of gguf_package, gguf_file, local, hub, random",
        ),
        ('[models.m]\nsource = { path = "x" }\n', "missing required key models.m.source.kind"),
        ('[models.m]\nsource = { kind = "hub", repo = "a/b" }\n', "missing required key models.m.source.revision"),
        (
            '[models.m]\nsource = { kind = "hub", repo = "a/b", revision = "x y" }\n',
            "models.m.source.revision: 'x y' is not a pinned revision",
        ),
        (RANDOM + 'dtype = "int8"\n', "models.m.dtype = 'int8' is not one of 'float32', 'bfloat16' or 'float16'"),
        (RANDOM + 'device = "tpu"\n', "models.m.device: 'tpu' is not cpu, cuda or cuda:N"),
        (RANDOM + 'max_tokens = "many"\n', "models.m.max_tokens must be an integer, got string"),
        (RANDOM + "max_tokens = true\n", "models.m.max_tokens must be an integer, got boolean"),
        (RANDOM + "max_tokens = 1000001\n", "models.m.max_tokens must be less than or equal to 1000000"),
        ("[models.m]\nsource = 'hub'\n", "models.m.source must be a table, got string"),
        (RANDOM + "saes = [3]\n", "models.m.saes[0] must be a table, got integer"),
        ("allow_downloads = 1\n" + RANDOM, "allow_downloads must be a boolean, got integer"),
        ("[models]\n", "models: the registry lists no models"),
        (
            '[models.m]\nsource = { kind = "random", family = "gpt2", config = { trust_remote_code = false } }\n',
            "models.m.source.config.trust_remote_code: trust_remote_code is never allowed",
        ),
        (
            SAE_HEAD + 'id = "s"\nhook = "blocks.1.hook_resid_pre"\npath = "p"\nrepo = "a/b"\n',
            "models.m.saes[0]: needs exactly one of path or repo",
        ),
        (
            SAE_HEAD + 'id = "s"\nhook = "blocks.1.hook_resid_pre"\nrepo = "a/b"\n',
            "models.m.saes[0].revision: a repo SAE needs a pinned revision",
        ),
    ],
)
def test_messages_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    assert _error(tmp_path, text).message == message


def test_a_hub_model_named_like_a_source_kind_keeps_its_key(tmp_path: Path) -> None:
    # The source union's tag is dropped from the key; a model id that happens to equal a kind is not.
    text = '[models.hub]\nsource = { kind = "hub", repo = "a/b", revision = "x y" }\n'
    assert _error(tmp_path, text).field == "models.hub.source.revision"


def test_unknown_hook_message_names_the_valid_forms(tmp_path: Path) -> None:
    error = _error(tmp_path, SAE_HEAD + 'id = "s"\nhook = "blocks.1.hook_nope"\npath = "p"\n')
    assert error.message.startswith("models.m.saes[0].hook: unknown hook 'blocks.1.hook_nope'; hooks are ")
    assert "blocks.{layer}.{site}" in error.message


def test_a_document_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(RegistryConfigError) as info:
        Registry.from_mapping([], base_dir=Path())  # type: ignore[arg-type]
    assert (info.value.field, info.value.message) == (None, "registry must be a table, got array")


def test_the_registry_imports_no_service_or_queue_library() -> None:
    code = (
        "import sys\n"
        "from workers.core.registry import Registry\n"
        "Registry.default()\n"
        "print(sorted(m for m in ('litestar', 'celery', 'redis', 'kombu') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "[]"
