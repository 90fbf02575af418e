"""Encode and decode agree with SAELens loading the same files, for every architecture and option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.unit.workers.core.sae.random_saes import ARCHITECTURES, write_random_sae
from workers.core.sae.autoencoder import Sae
from workers.core.sae.formats import read_sae_dir

sae_lens = pytest.importorskip("sae_lens")

ORACLE_ATOL = 1e-5  # the same float32 arithmetic in the same order, up to matmul blocking

OPTIONS: list[dict[str, Any]] = [
    {},
    {"apply_b_dec_to_input": False},
    {"normalize_activations": "constant_norm_rescale"},
    {"normalize_activations": "layer_norm"},
]


def _load_both(directory: Path) -> tuple[Sae, Any]:
    cfg, tensors, sparsity = read_sae_dir(directory)
    ours = Sae(id="random", cfg=cfg, tensors=tensors, sparsity=sparsity)
    theirs = sae_lens.SAE.load_from_disk(str(directory), device="cpu")
    return ours, theirs


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_encode_decode_match_sae_lens(tmp_path: Path, architecture: str, options: dict[str, Any]) -> None:
    write_random_sae(tmp_path, architecture, seed=3, **options)
    ours, theirs = _load_both(tmp_path)
    x = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(5)) * 2 + 0.5

    with torch.no_grad():
        expected_feats = theirs.encode(x)
        expected_recon = theirs.decode(expected_feats)
    feats, norm = ours.encode_with_norm(x)
    recon = ours.decode(feats, norm)

    fired = (expected_feats != 0).float().mean().item()
    assert 0.02 < fired < 0.98, f"the random SAE should fire on some but not all features ({fired})"
    torch.testing.assert_close(feats, expected_feats, atol=ORACLE_ATOL, rtol=0)
    torch.testing.assert_close(recon, expected_recon, atol=ORACLE_ATOL, rtol=0)


def test_topk_rescaled_by_decoder_norm(tmp_path: Path) -> None:
    write_random_sae(tmp_path, "topk", seed=4, rescale_acts_by_decoder_norm=True)
    ours, theirs = _load_both(tmp_path)
    x = torch.randn(9, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs.encode(x)
        expected_recon = theirs.decode(expected)
    feats = ours.encode(x)
    assert int((feats != 0).sum(-1).max()) <= 6
    torch.testing.assert_close(feats, expected, atol=ORACLE_ATOL, rtol=0)
    torch.testing.assert_close(ours.decode(feats), expected_recon, atol=ORACLE_ATOL, rtol=0)


def test_hook_z_sae_reads_heads_flattened(tmp_path: Path) -> None:
    write_random_sae(tmp_path, "standard", seed=2, hook_name="blocks.0.attn.hook_z", reshape_activations="hook_z")
    ours, theirs = _load_both(tmp_path)
    z = torch.randn(1, 5, 4, 4, generator=torch.Generator().manual_seed(0))  # [batch, pos, heads, d_head]
    with torch.no_grad():
        expected = theirs.encode(z)
        expected_recon = theirs.decode(expected)
    feats, recon = ours.reconstruct(ours.flatten(z))
    torch.testing.assert_close(feats, expected, atol=ORACLE_ATOL, rtol=0)
    torch.testing.assert_close(ours.unflatten(recon, z), expected_recon, atol=ORACLE_ATOL, rtol=0)


def test_sparsity_file_round_trips(tmp_path: Path) -> None:
    write_random_sae(tmp_path, "jumprelu", seed=0, sparsity=True)
    _, _, sparsity = read_sae_dir(tmp_path)
    assert sparsity is not None
    assert sparsity.shape == (48,)
    assert bool((sparsity <= 0).all())


def test_half_precision_tensors_load_in_config_dtype(tmp_path: Path) -> None:
    write_random_sae(tmp_path, "topk", seed=1)
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "sae_weights.safetensors"
    save_file({k: v.half() for k, v in load_file(str(weights)).items()}, str(weights))
    ours, theirs = _load_both(tmp_path)
    assert ours.tensors["W_enc"].dtype == torch.float32
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x), theirs.encode(x), atol=ORACLE_ATOL, rtol=0)
