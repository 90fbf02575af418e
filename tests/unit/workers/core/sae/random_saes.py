"""SAEs with seeded random weights in SAELens format, for oracle and error tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workers.core.sae.formats import SAE_ARCHITECTURES, SaeConfig, write_sae_dir

ARCHITECTURES = tuple(SAE_ARCHITECTURES)


def random_tensors(cfg: SaeConfig, seed: int) -> dict[str, torch.Tensor]:
    """Weights whose features fire on a fair share of Gaussian inputs (biases small, thresholds modest)."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name, shape in cfg.tensor_shapes().items():
        scale = 0.3 if name.startswith("W_") else 0.1
        tensors[name] = torch.randn(shape, generator=generator) * scale
    if "threshold" in tensors:
        tensors["threshold"] = tensors["threshold"].abs() * 2
    return tensors


def make_config(architecture: str, *, d_in: int = 16, d_sae: int = 48, **options: Any) -> SaeConfig:
    if architecture == "topk":
        options.setdefault("k", 6)
    options.setdefault("hook_name", "blocks.1.hook_resid_post")
    return SAE_ARCHITECTURES[architecture](d_in=d_in, d_sae=d_sae, **options)


def write_random_sae(
    directory: Path, architecture: str, *, seed: int = 0, sparsity: bool = False, **options: Any
) -> SaeConfig:
    cfg = make_config(architecture, **options)
    density = torch.rand(cfg.d_sae, generator=torch.Generator().manual_seed(seed + 1)) if sparsity else None
    write_sae_dir(
        directory, cfg, random_tensors(cfg, seed), sparsity=None if density is None else density.log10()
    )
    return cfg
