"""Path patching against a plain full-forward implementation, an identity, and the cases with no path."""

from __future__ import annotations

import pytest
import torch

from tests.unit.workers.core.patching.conftest import CLEAN, CORRUPTED, tiny_hooked
from workers.core.hooked_model import HookedModel
from workers.core.patching import PathPatchingRequest, run_path_patching
from workers.core.writes import Write

TOLERANCE = 1e-4
"""Absolute, on logit differences of float32 tiny models."""


def _metric(model: HookedModel, tokens: torch.Tensor, writes: list[Write]) -> float:
    logits = model.run(tokens, writes=writes, logits="last").logits
    assert logits is not None
    return float(logits[0, -1, model.token_id("b")] - logits[0, -1, model.token_id("a")])


def _sender_writes(
    model: HookedModel, senders: list[tuple[int, int]], freeze_mlps: bool
) -> tuple[torch.Tensor, list[Write]]:
    """The clean tokens, and writes that freeze every head (and MLP) at its clean value but the senders, whose
    outputs come from the corrupted run."""
    clean, corrupted = model.tokenize(CLEAN), model.tokenize(CORRUPTED)
    n_layers = model.facts.n_layers
    z = [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
    mlp = [f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)]
    base = model.run(clean, cache=z + mlp).cache
    donor = model.run(corrupted, cache=z).cache
    writes = []
    for layer in range(n_layers):
        value = base[z[layer]].clone()
        for sender_layer, head in senders:
            if sender_layer == layer:
                value[:, :, head] = donor[z[layer]][:, :, head]
        writes.append(Write(z[layer], value))
        if freeze_mlps:
            writes.append(Write(mlp[layer], base[mlp[layer]]))
    return clean, writes


def _reference(
    model: HookedModel,
    senders: list[tuple[int, int]],
    receivers: list[tuple[int, int]],
    inputs: tuple[str, ...],
    freeze_mlps: bool,
) -> float:
    """The IOI paper's two runs as full forwards with whole-tensor writes (noising: base clean)."""
    clean, writes = _sender_writes(model, senders, freeze_mlps)
    sites = {"q": "attn.hook_q", "k": "attn.hook_k", "v": "attn.hook_v"}
    inputs_of = [f"blocks.{layer}.{sites[name]}" for layer, _ in receivers for name in inputs]
    recorded = model.run(clean, writes=writes, cache=inputs_of).cache
    group = model.facts.n_heads // model.facts.n_kv_heads
    patches = []
    for layer, head in receivers:
        for name in inputs:
            hook = f"blocks.{layer}.{sites[name]}"
            index = head if name == "q" else head // group
            patches.append(Write(hook, recorded[hook][:, :, [index]], heads=[index]))
    return _metric(model, clean, patches)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize("freeze_mlps", [False, True])
def test_every_sender_matches_full_forwards(family: str, freeze_mlps: bool) -> None:
    model = tiny_hooked(family)
    receivers = [(2, 1), (2, 3), (1, 0)]
    inputs = ("q", "v") if family == "gpt2" else ("k",)
    request = PathPatchingRequest(
        CLEAN,
        CORRUPTED,
        "b",
        receivers=tuple(receivers),
        wrong_answer="a",
        receiver_inputs=inputs,
        freeze_mlps=freeze_mlps,
    )
    result = run_path_patching(model, request)
    for layer in range(2):
        for head in range(4):
            expected = _reference(model, [(layer, head)], receivers, inputs, freeze_mlps)
            assert abs(result.senders.raw[layer, head].item() - expected) < TOLERANCE
    every = [(layer, head) for layer in range(3) for head in range(4)]
    assert abs(result.joint.raw_value - _reference(model, every, receivers, inputs, freeze_mlps)) < TOLERANCE
    assert result.senders.raw[:2].std().item() > 1e-3


def test_all_heads_of_a_layer_into_all_heads_of_the_next_is_a_residual_shift(gpt2: HookedModel) -> None:
    """Senders: all of layer 0; receivers: all of layer 1 through q, k and v; MLPs frozen. Then layer 1's
    attention sees the base residual plus the change of layer 0's attention output, and nothing else moves:
    the same as recomputing layer 1's attention output from that shifted residual and patching it in."""
    clean, corrupted = gpt2.tokenize(CLEAN), gpt2.tokenize(CORRUPTED)
    names = ["blocks.0.hook_attn_out", "blocks.1.hook_resid_pre"]
    base, donor = gpt2.run(clean, cache=names).cache, gpt2.run(corrupted, cache=names).cache
    shifted = base["blocks.1.hook_resid_pre"] + donor["blocks.0.hook_attn_out"] - base["blocks.0.hook_attn_out"]
    attn = gpt2.run(clean, writes=[Write("blocks.1.hook_resid_pre", shifted)], cache=["blocks.1.hook_attn_out"])
    expected = _metric(gpt2, clean, [Write("blocks.1.hook_attn_out", attn.cache["blocks.1.hook_attn_out"])])
    request = PathPatchingRequest(
        CLEAN,
        CORRUPTED,
        "b",
        wrong_answer="a",
        receivers=tuple((1, h) for h in range(4)),
        senders=tuple((0, h) for h in range(4)),
        freeze_mlps=True,
    )
    result = run_path_patching(gpt2, request)
    assert abs(result.joint.raw_value - expected) < TOLERANCE
    assert abs(result.joint.raw_value - result.clean_metric) > 1e-3


def test_senders_without_a_path_have_exactly_no_effect(gpt2: HookedModel) -> None:
    """A sender at or after the receivers' layer cannot reach them; noising with no effect scores 1."""
    request = PathPatchingRequest(
        CLEAN, CORRUPTED, "b", wrong_answer="a", receivers=((1, 2),), senders=((1, 0), (2, 3), (0, 1))
    )
    result = run_path_patching(gpt2, request)
    raw = result.senders.raw
    assert raw[1, 0].item() == raw[2, 3].item() == result.clean_metric
    assert result.senders.normalised is not None
    assert result.senders.normalised[1, 0].item() == 1.0
    assert raw[0, 1].item() != result.clean_metric
    assert torch.isnan(result.senders.values[0, 0])  # not swept
    assert result.senders.values[1, 0].item() == 1.0
    assert result.joint.raw_value == pytest.approx(
        _reference(gpt2, [(0, 1), (1, 0), (2, 3)], [(1, 2)], ("q", "k", "v"), False), abs=TOLERANCE
    )


def _direct_reference(model: HookedModel, senders: list[tuple[int, int]], freeze_mlps: bool) -> float:
    """The senders' outputs from the corrupted run, every other head (and MLP) frozen at clean: one forward."""
    clean, writes = _sender_writes(model, senders, freeze_mlps)
    return _metric(model, clean, writes)


@pytest.mark.parametrize("family", ["gpt2", "gemma3"])
@pytest.mark.parametrize("freeze_mlps", [False, True])
def test_paths_to_the_logits_match_full_forwards(family: str, freeze_mlps: bool) -> None:
    model = tiny_hooked(family)
    request = PathPatchingRequest(CLEAN, CORRUPTED, "b", receivers="logits", wrong_answer="a", freeze_mlps=freeze_mlps)
    result = run_path_patching(model, request)
    assert result.receivers == "logits" and result.receiver_inputs == ()
    n_layers, n_heads = model.facts.n_layers, model.facts.n_heads
    for layer in range(n_layers):
        for head in range(n_heads):
            expected = _direct_reference(model, [(layer, head)], freeze_mlps)
            assert abs(result.senders.raw[layer, head].item() - expected) < TOLERANCE, (layer, head)
    every = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    assert abs(result.joint.raw_value - _direct_reference(model, every, freeze_mlps)) < TOLERANCE
    if freeze_mlps:  # every head from corrupted and every MLP at clean: exactly the heads' direct effects
        assert result.senders.raw[-1].std().item() > 1e-4
