"""``modadd-113``, the shipped model that grokked ``(a + b) mod 113``: read through the service's own core.

The embedding is read at ``hook_embed`` (the ``activations`` kind reads the same hook), and its discrete Fourier
spectrum over the 113 inputs is the algorithm Nanda et al. 2023 read off: a handful of key frequencies.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.registry import LocalSource, Registry

P = 113
EQUALS_ID = 113
KEY_FREQUENCIES = 6


@pytest.fixture(scope="module")
def modadd(tmp_path_factory: pytest.TempPathFactory) -> HookedModel:
    entry = Registry.default().get("modadd-113")
    model, tokenizer = load_model(entry, cache_dir=tmp_path_factory.mktemp("models"))
    return HookedModel(model, tokenizer, model_id=entry.id, max_tokens=entry.max_tokens)


def _all_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    tokens = torch.stack([a.flatten(), b.flatten(), torch.full((P * P,), EQUALS_ID)], dim=1)
    return tokens, (a.flatten() + b.flatten()) % P


def frequency_shares(matrix: torch.Tensor) -> torch.Tensor:
    """Share of the squared norm at each frequency 0..56 along the first axis (k and 113 − k together)."""
    power = torch.fft.fft(matrix.double(), dim=0).abs().pow(2).sum(dim=1)
    pairs = torch.arange(1, P // 2 + 1)
    shares = torch.cat([power[:1], power[pairs] + power[P - pairs]])
    return shares / shares.sum()


def test_the_registry_serves_it_from_the_package() -> None:
    entry = Registry.default().get("modadd-113")
    assert isinstance(entry.source, LocalSource)
    assert entry.source.path == Path(__file__).resolve().parents[4] / "workers" / "models" / "modadd-113"
    assert entry.max_tokens == 3


def test_prompts_are_exactly_a_b_equals(modadd: HookedModel) -> None:
    assert modadd.tokenize("12 57 =").tolist() == [[12, 57, EQUALS_ID]]
    assert modadd.token_id(" 8") == 8
    assert modadd.token_strings([0, 112, EQUALS_ID]) == ["0", "112", "="]
    facts = modadd.facts
    assert (facts.n_layers, facts.d_model, facts.n_heads, facts.d_mlp, facts.d_vocab) == (1, 128, 4, 512, 114)


def test_it_adds_modulo_113_on_held_out_pairs(modadd: HookedModel) -> None:
    tokens, labels = _all_pairs()
    batches = [modadd.run(tokens[i : i + 4096], logits="last").logits for i in range(0, len(tokens), 4096)]
    predictions = torch.cat([logits.argmax(-1).flatten() for logits in batches if logits is not None])
    assert predictions.shape == labels.shape
    accuracy = (predictions == labels).double().mean().item()
    assert accuracy >= 0.99, accuracy  # 70% of the pairs were never seen in training


def test_the_embedding_concentrates_on_a_few_key_frequencies(modadd: HookedModel) -> None:
    numbers = torch.arange(P).view(P, 1)
    embedding = modadd.run(numbers, cache=["hook_embed"], logits="none").cache["hook_embed"][:, 0, :]
    assert torch.equal(embedding, modadd.model.get_input_embeddings().weight[:P])  # type: ignore[index]
    shares = frequency_shares(embedding)
    key_share = shares.sort(descending=True).values[:KEY_FREQUENCIES].sum().item()
    random = frequency_shares(torch.randn(P, embedding.shape[1], generator=torch.Generator().manual_seed(0)))
    random_share = random.sort(descending=True).values[:KEY_FREQUENCIES].sum().item()
    assert random_share < 0.2  # a random matrix spreads over all 56 frequencies (~1.8% each)
    assert key_share > 0.6, (key_share, shares.argsort(descending=True)[:KEY_FREQUENCIES].tolist())
    assert shares[0].item() < 0.05  # no constant component to speak of
