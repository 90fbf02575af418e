"""encode_sae on a tiny model: top-k features, L0, reconstruction figures and loss recovered, by hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from tests.unit.workers.core.sae.tiny import HOOK, tiny_hooked, tiny_sae
from workers.core.errors import InvalidRequestError, JobCancelledError
from workers.core.hooked_model import HookedModel
from workers.core.sae.autoencoder import Sae
from workers.core.sae.encode import SaeEncodeRequest, encode_sae

ATOL = 1e-4


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return tiny_hooked("gpt2")


@pytest.fixture
def sae(tmp_path: Path, model: HookedModel) -> Sae:
    return tiny_sae(tmp_path, model, "topk", k=8)


def _activation(model: HookedModel, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = model.tokenize(prompt)
    return tokens, model.run(tokens, cache=[HOOK], logits="none").cache[HOOK]


def test_top_features_l0_and_mse_match_a_direct_encode(model: HookedModel, sae: Sae) -> None:
    result = encode_sae(model, sae, SaeEncodeRequest.single("hello world", top_k=3))
    tokens, act = _activation(model, "hello world")
    feats, recon = sae.reconstruct(act[0])
    encoding = result.prompts[0]

    assert encoding.tokens == tuple(model.token_strings(tokens))
    assert list(encoding.l0) == (feats != 0).sum(-1).tolist()
    assert max(encoding.l0) <= 8
    for pos, listed in enumerate(encoding.features):
        values, ids = feats[pos].topk(3)
        assert [f.feature for f in listed] == ids.tolist()
        assert [f.activation for f in listed] == pytest.approx(values.tolist(), abs=ATOL)
    torch.testing.assert_close(torch.tensor(encoding.token_mse), (act[0] - recon).pow(2).mean(-1), atol=ATOL, rtol=0)
    # The byte tokenizer has a BOS token: it is left out of the pooled figures.
    x, r = act[0, 1:], recon[1:]
    sse = (x - r).pow(2).sum()
    assert encoding.reconstruction.tokens == len(x)
    assert encoding.reconstruction.mse == pytest.approx(float(sse / x.numel()), rel=1e-5)
    ev = 1 - sse / (x - x.mean(0)).pow(2).sum()
    assert encoding.reconstruction.explained_variance == pytest.approx(float(ev), abs=1e-5)


def test_batch_pools_tokens_of_all_prompts(model: HookedModel, sae: Sae) -> None:
    prompts = ("abc def", "the cat sat")
    result = encode_sae(model, sae, SaeEncodeRequest(prompts=prompts, top_k=2, exclude_bos=False))
    xs, rs = [], []
    for p in prompts:
        _, act = _activation(model, p)
        xs.append(act[0])
        rs.append(sae.reconstruct(act[0])[1])
    x, r = torch.cat(xs), torch.cat(rs)
    assert result.reconstruction.tokens == len(x)
    expected = 1 - (x - r).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert result.reconstruction.explained_variance == pytest.approx(float(expected), abs=1e-5)
    assert [len(p.tokens) for p in result.prompts] == [len(p) + 1 for p in prompts]


def test_loss_recovered_matches_spliced_forwards_by_hand(model: HookedModel, sae: Sae) -> None:
    prompt = "the quick brown fox"
    result = encode_sae(model, sae, SaeEncodeRequest.single(prompt, include_loss=True))
    tokens, act = _activation(model, prompt)
    recon = sae.reconstruct(act[0])[1]

    def loss_with(replacement: torch.Tensor | None) -> float:
        hooks = {}
        if replacement is not None:
            patched = act.clone()
            patched[0, 1:] = replacement[1:]
            hooks = {HOOK: [lambda _a: patched]}
        logits = model.run(tokens, hooks=hooks).logits
        assert logits is not None
        logp = logits[0, 1:-1].log_softmax(-1)
        return float(-logp.gather(-1, tokens[0, 2:, None]).mean())

    clean, spliced, zero = loss_with(None), loss_with(recon), loss_with(torch.zeros_like(recon))
    loss = result.prompts[0].loss
    assert loss is not None
    assert loss.clean_loss == pytest.approx(clean, abs=ATOL)
    assert loss.sae_loss == pytest.approx(spliced, abs=ATOL)
    assert loss.zero_ablation_loss == pytest.approx(zero, abs=ATOL)
    assert loss.loss_recovered == pytest.approx((zero - spliced) / (zero - clean), abs=1e-3)
    assert result.loss == loss


def test_reader_serves_precomputed_activations_without_a_forward(model: HookedModel, sae: Sae) -> None:
    tokens, act = _activation(model, "warm path")
    calls: list[Sequence[str]] = []

    def reader(t: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        assert torch.equal(t, tokens)
        calls.append(names)
        return {HOOK: act}

    cold = encode_sae(model, sae, SaeEncodeRequest.single("warm path"))
    original_run = model.run
    model.run = None  # type: ignore[assignment,method-assign]
    try:
        warm = encode_sae(model, sae, SaeEncodeRequest.single("warm path"), reader=reader)
    finally:
        model.run = original_run  # type: ignore[method-assign]
    assert calls == [[HOOK]]
    assert warm == cold


def test_result_names_its_sae_and_hook_and_carries_token_strings(model: HookedModel, sae: Sae) -> None:
    result = encode_sae(model, sae, SaeEncodeRequest.single("json", top_k=2, include_loss=True))
    assert (result.model, result.sae, result.hook, result.top_k) == ("tiny-gpt2", "rand", HOOK, 2)
    encoding = result.prompts[0]
    assert encoding.prompt == "json"
    assert encoding.tokens == ("<bos>", "j", "s", "o", "n")
    assert len(encoding.features) == len(encoding.l0) == len(encoding.token_mse) == len(encoding.tokens)
    assert all(len(token) <= 2 for token in encoding.features)
    assert result.tokens == (encoding.tokens,)
    assert result.loss == encoding.loss and result.reconstruction == encoding.reconstruction


def test_an_empty_batch_is_refused(model: HookedModel, sae: Sae) -> None:
    with pytest.raises(InvalidRequestError) as info:
        encode_sae(model, sae, SaeEncodeRequest(prompts=()))
    assert info.value.field == "prompts"


@pytest.mark.parametrize("top_k", [0, -1, 97])
def test_top_k_out_of_range_is_refused(model: HookedModel, sae: Sae, top_k: int) -> None:
    with pytest.raises(InvalidRequestError, match="top_k") as info:
        encode_sae(model, sae, SaeEncodeRequest.single("x", top_k=top_k))
    assert info.value.field == "top_k"


def test_progress_and_cancel(model: HookedModel, sae: Sae) -> None:
    seen: list[float] = []
    encode_sae(model, sae, SaeEncodeRequest(prompts=("a", "b")), progress=seen.append)
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    with pytest.raises(JobCancelledError):
        encode_sae(model, sae, SaeEncodeRequest.single("a"), should_cancel=lambda: True)
