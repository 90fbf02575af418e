"""A worker runtime over a tiny random GPT-2 with one SAE, for the kinds' specs, checks and runners."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.unit.workers.core.patching.conftest import tiny_hooked
from tests.unit.workers.core.sae.random_saes import write_random_sae
from workers.core.hooked_model import HookedModel
from workers.core.registry import Registry
from workers.records import JobRecord
from workers.runtime import WorkerRuntime
from workers.settings import WorkerSettings

MODEL = "tiny-gpt2"
SAE = "res-1"
D_SAE = 96
REGISTRY = """
[models.tiny-gpt2]
max_tokens = 64
[models.tiny-gpt2.source]
kind = "random"
family = "gpt2"
seed = 0
config = { n_layer = 2, n_embd = 64, n_head = 4, n_positions = 64 }

[[models.tiny-gpt2.saes]]
id = "res-1"
hook = "blocks.1.hook_resid_post"
path = "saes/res-1"

# Listed but never installed: its width is unknown until a load says why it fails.
[[models.tiny-gpt2.saes]]
id = "absent"
hook = "blocks.0.hook_resid_post"
path = "saes/absent"
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> WorkerRuntime:
    directory = tmp_path_factory.mktemp("kinds")
    write_random_sae(directory / "saes" / SAE, "standard", seed=3, d_in=64, d_sae=D_SAE)
    path = directory / "registry.toml"
    path.write_text(REGISTRY, encoding="utf-8")
    return WorkerRuntime(WorkerSettings(model_cache_dir=directory / "models"), registry=Registry.from_toml(path))


def submit(runtime: WorkerRuntime, spec: dict[str, Any]) -> str:
    """A queued record of ``spec`` in the runtime's store, as the API writes it."""
    record = JobRecord(id=f"job-{time.monotonic_ns()}", kind=spec["kind"], model=spec["model"], owner="t",
                       queue="q", created_at=time.time(), spec=spec)
    runtime.store.create(record)
    return record.id


@pytest.fixture(scope="module")
def gpt2() -> HookedModel:
    """A 3-layer, 4-head GPT-2 with the byte tokenizer, for running the core directly."""
    return tiny_hooked("gpt2")
