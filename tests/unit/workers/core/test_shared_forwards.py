"""Shared forwards equal forwards run alone, on every family (Gemma's sliding windows shorter than the prompts)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.factories import FAMILIES, TINY_VOCAB, tiny_model
from workers.core.errors import UnknownHookError
from workers.core.hooked_model import HookedModel
from workers.core.shared_forwards import (
    GradientRequest,
    ReadRequest,
    SharedForwards,
    embedding_gradients_together,
    reads_together,
)

TOLERANCE = 1e-5
"""float32: the same numbers in a different batch shape differ by rounding (~1e-7) only."""

LENGTHS = (3, 11, 7, 9)
"""Longer and shorter than the tiny Gemmas' sliding window of 4."""


class _Tokenizer:
    bos_token_id = None
    pad_token_id = 0


@pytest.fixture(scope="module", params=FAMILIES)
def hooked(request: pytest.FixtureRequest) -> Iterator[HookedModel]:
    yield HookedModel(tiny_model(request.param, seed=3), _Tokenizer(), model_id="tiny")  # type: ignore[arg-type]


def _tokens(length: int, seed: int, rows: int = 1) -> torch.Tensor:
    return torch.randint(1, TINY_VOCAB, (rows, length), generator=torch.Generator().manual_seed(seed))


def _alone(hooked: HookedModel, request: ReadRequest) -> dict[str, torch.Tensor]:
    return hooked.run(request.tokens, cache=request.names, logits="none").cache


def _assert_close(ours: dict[str, torch.Tensor], alone: dict[str, torch.Tensor]) -> None:
    assert ours.keys() == alone.keys()
    for name, value in alone.items():
        assert ours[name].shape == value.shape, name
        assert (ours[name] - value).abs().max().item() < TOLERANCE, name


def _reads(hooked: HookedModel) -> list[ReadRequest]:
    last = hooked.facts.n_layers - 1
    names = [
        ("hook_embed", "blocks.0.hook_resid_pre", f"blocks.{last}.hook_resid_post"),
        ("blocks.1.attn.hook_z", "blocks.0.hook_mlp_out"),
        ("ln_final.hook_scale", "blocks.2.mlp.hook_post", "blocks.1.hook_resid_mid"),
        ("blocks.1.attn.hook_q", "blocks.2.attn.hook_k", "blocks.0.hook_attn_out"),
    ]
    pairs = enumerate(zip(LENGTHS, names, strict=True))
    requests = [ReadRequest(_tokens(n, seed), hooks) for seed, (n, hooks) in pairs]
    requests.append(ReadRequest(_tokens(5, 9, rows=3), ("blocks.2.hook_resid_pre",)))  # a job's own batch
    return requests


def test_shared_reads_equal_reads_alone(hooked: HookedModel) -> None:
    requests = _reads(hooked)
    for request, ours in zip(requests, reads_together(hooked, requests), strict=True):
        _assert_close(ours, _alone(hooked, request))


def test_shared_attention_patterns_equal_patterns_alone(hooked: HookedModel) -> None:
    requests = [
        ReadRequest(_tokens(n, 20 + i), (f"blocks.{i % 3}.attn.hook_pattern", "blocks.2.attn.hook_pattern"))
        for i, n in enumerate(LENGTHS)
    ]
    for request, ours in zip(requests, reads_together(hooked, requests), strict=True):
        _assert_close(ours, _alone(hooked, request))
        n = request.tokens.shape[1]
        assert ours["blocks.2.attn.hook_pattern"].shape[-2:] == (n, n)


def _gradient_request(hooked: HookedModel, length: int, seed: int) -> GradientRequest:
    """A request for one token's (uncapped) logit at the last or the one but last position."""
    norm = hooked.adapter.module(hooked.model, hooked.adapter.final_norm)
    unembed = hooked.model.get_output_embeddings()  # type: ignore[no-untyped-call]
    token = seed * 7 % TINY_VOCAB

    def readout(resid: torch.Tensor) -> torch.Tensor:
        return unembed(norm(resid))[..., token]  # type: ignore[no-any-return]

    return GradientRequest(_tokens(length, 40 + seed), position=length - 1 - seed % 2, readout=readout)


def test_shared_embedding_gradients_equal_autograd_alone(hooked: HookedModel) -> None:
    requests = [_gradient_request(hooked, n, i) for i, n in enumerate(LENGTHS)]
    shared = embedding_gradients_together(hooked, requests)
    for request, (embedding, grad, value) in zip(requests, shared, strict=True):
        clean = hooked.run(request.tokens, cache=["hook_embed"], logits="none").cache["hook_embed"]
        leaf = clean.detach().requires_grad_(True)
        last = f"blocks.{hooked.facts.n_layers - 1}.hook_resid_post"
        resid = hooked.run(request.tokens, hooks={"hook_embed": [lambda _, leaf=leaf: leaf]}, cache=[last],
                           grad=True, logits="none").cache[last]
        target = request.readout(resid[:, request.position])[0]
        (expected,) = torch.autograd.grad(target, leaf)
        assert embedding.shape == grad.shape == (request.tokens.shape[1], hooked.facts.d_model)
        assert (embedding - clean[0]).abs().max().item() < TOLERANCE
        assert (grad - expected[0]).abs().max().item() < TOLERANCE
        assert value == pytest.approx(float(target.detach()), abs=TOLERANCE)


def _concurrently(forwards: SharedForwards, requests: list[ReadRequest]) -> list[tuple[object, list[int]]]:
    """Each request from a job thread of its own, all of them running (members) before any reads."""
    running = threading.Barrier(len(requests))

    def job(request: ReadRequest) -> tuple[object, list[int]]:
        sizes: list[int] = []
        with forwards.member():
            running.wait()
            try:
                return forwards.reader(sizes)(request.tokens, request.names), sizes
            except Exception as exc:
                return exc, sizes

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(job, requests))


def test_concurrent_jobs_share_a_forward_and_a_bad_one_fails_alone(hooked: HookedModel) -> None:
    forwards = SharedForwards(hooked, max_wait_s=5.0, max_tokens=4096)
    good = _reads(hooked)[:3]
    for (outcome, sizes), request in zip(_concurrently(forwards, good), good, strict=True):
        assert isinstance(outcome, dict)
        _assert_close(outcome, _alone(hooked, request))
        assert sizes == [3]
    bad = ReadRequest(_tokens(6, 77), ("blocks.99.hook_resid_pre",))
    *kept, (failure, _) = _concurrently(forwards, [*good, bad])
    assert isinstance(failure, UnknownHookError)
    for (outcome, sizes), request in zip(kept, good, strict=True):
        assert isinstance(outcome, dict)
        _assert_close(outcome, _alone(hooked, request))
        assert sizes == [1]  # the shared batch failed; each then ran alone


def test_the_budget_splits_shared_forwards(hooked: HookedModel) -> None:
    forwards = SharedForwards(hooked, max_wait_s=5.0, max_tokens=22)  # two 11-token rows, not three
    requests = [ReadRequest(_tokens(11, seed), ("blocks.1.hook_resid_post",)) for seed in range(3)]
    outcomes = _concurrently(forwards, requests)
    assert sorted(sizes[0] for _, sizes in outcomes) == [1, 2, 2]
    for (outcome, _), request in zip(outcomes, requests, strict=True):
        assert isinstance(outcome, dict)
        _assert_close(outcome, _alone(hooked, request))


def test_a_forward_hook_acts_in_its_own_thread_only(hooked: HookedModel) -> None:
    """A readout on another thread calls the final norm while a forward has a stop hook on it: it runs on."""
    norm = hooked.adapter.module(hooked.model, hooked.adapter.final_norm)
    resid = torch.randn(2, 3, hooked.facts.d_model)
    expected = norm(resid)
    inside = threading.Event()
    release = threading.Event()

    def slow(activation: torch.Tensor) -> None:
        inside.set()
        release.wait(5)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(lambda: hooked.run(_tokens(5, 1), hooks={"blocks.0.hook_resid_pre": [slow]},
                                                 stop_at_layer=hooked.facts.n_layers, logits="none"))
        assert inside.wait(5)
        try:
            assert (norm(resid) - expected).abs().max().item() == 0.0  # neither stopped nor read by that forward
        finally:
            release.set()
        running.result()
