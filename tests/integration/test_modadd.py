"""``modadd-113`` over HTTP: patching and attribution jobs run on the shipped grokked model like on any other, and
activations jobs read its embedding, whose Fourier spectrum shows the key frequencies of the algorithm it learned.

``interp serve`` (embedded: no broker) is started on a registry serving only ``modadd-113`` from the package's
weights, so the test loads nothing else.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import torch

from tests.integration.conftest import INTERP, REPO_ROOT, free_port
from tests.unit.workers.core.test_modadd import KEY_FREQUENCIES, P, frequency_shares

pytestmark = pytest.mark.integration

WEIGHTS = REPO_ROOT / "workers" / "models" / "modadd-113"
REGISTRY = f"""
allow_downloads = false
[models.modadd-113]
source = {{ kind = "local", path = "{WEIGHTS}" }}
max_tokens = 3
weights_revision = "modadd-113-seed-0"
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("modadd")
    registry = directory / "registry.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BROKER_URL", "INTERP_AUTH")}
    env.update(INTERP_REGISTRY=str(registry), INTERP_CACHE_DIR=str(directory / "models"), HF_HUB_OFFLINE="1")
    port = free_port()
    proc = subprocess.Popen([*INTERP, "serve", "--port", str(port)], env=env, cwd=REPO_ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline and proc.poll() is None, "interp serve did not start"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _run(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = client.post("/v1/jobs", json=body, params={"wait": 60}).json()
    assert job["status"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def test_patching_the_second_number_moves_the_whole_answer(served: str) -> None:
    body: dict[str, Any] = {"kind": "patching", "model": "modadd-113", "clean_prompt": "3 5 =",
                            "corrupted_prompt": "3 6 =", "answer": "8", "wrong_answer": "9",
                            "targets": ["resid_pre", "attn_out", "mlp_out"]}
    with httpx.Client(base_url=served, timeout=60) as client:
        result = _run(client, body)
    assert result["tokens"] == ["3", "5", "="]
    assert result["clean_metric"] > 5 > -5 > result["corrupted_metric"]
    targets = result["targets"]
    # Only "b" differs, so patching the residual there restores the clean run exactly, and elsewhere does nothing.
    assert targets["resid_pre"]["values"][0] == pytest.approx([0.0, 1.0, 0.0], abs=1e-4)
    # The answer is computed at "=": attention moves "b" there, and the MLP reads it (Nanda's circuit).
    attn, mlp = targets["attn_out"]["values"][0], targets["mlp_out"]["values"][0]
    assert attn[:2] == pytest.approx([0.0, 0.0], abs=1e-4) and mlp[:2] == pytest.approx([0.0, 0.0], abs=1e-4)
    assert abs(attn[2]) + abs(mlp[2]) > 0.5


def test_attribution_runs_on_it(served: str) -> None:
    body: dict[str, Any] = {"kind": "attribution", "model": "modadd-113", "prompt": "3 5 =", "target": {"token": "8"},
            "method": "integrated_gradients", "baseline": "zero"}
    with httpx.Client(base_url=served, timeout=60) as client:
        result = _run(client, body)
    assert result["tokens"] == ["3", "5", "="]
    assert len(result["scores"]) == 3


def test_the_embeddings_key_frequencies_through_activations_jobs(served: str) -> None:
    """Every number's embedding read over HTTP (``hook_embed`` at the two number positions of ``a b =``), then its
    discrete Fourier spectrum over the 113 inputs: a few key frequencies hold most of the norm."""
    numbers = [*range(P), 0]  # pairs of numbers per prompt; the last pair's second is a filler
    prompts = [f"{numbers[i]} {numbers[i + 1]} =" for i in range(0, P, 2)]
    rows: list[list[float]] = []
    with httpx.Client(base_url=served, timeout=60) as client:
        for start in range(0, len(prompts), 16):
            body = {"kind": "activations", "model": "modadd-113", "prompts": prompts[start : start + 16],
                    "hooks": ["hook_embed"], "positions": [0, 1]}
            for prompt in _run(client, body)["prompts"]:
                part = prompt["hooks"]["hook_embed"]
                assert part["axes"] == ["position", "d_model"] and part["labels"]["position"] == prompt["tokens"][:2]
                rows.extend(part["values"])
    embedding = torch.tensor(rows[:P])
    assert embedding.shape == (P, 128)
    shares = frequency_shares(embedding)
    top = shares.argsort(descending=True)[:KEY_FREQUENCIES]
    held = shares[top].sum().item()
    print(f"modadd-113 key frequencies {top.tolist()} hold {held:.1%} of the embedding's squared norm; "
          + ", ".join(f"{k}: {shares[k].item():.1%}" for k in top.tolist()))
    assert held > 0.6 and shares[0].item() < 0.05
