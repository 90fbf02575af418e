"""Exact patching against plain full forwards with writes, across families; resuming, skipping and chunking."""

from __future__ import annotations

import itertools

import pytest
import torch

from tests.unit.workers.core.patching.conftest import CLEAN, CORRUPTED, tiny_hooked
from workers.core.activations import forward_reader
from workers.core.errors import CoreError, JobCancelledError
from workers.core.hooked_model import HookedModel
from workers.core.hooks import HookName
from workers.core.patching import GRANULARITIES, PatchingRequest, run_patching
from workers.core.patching.budget import chunks_by_start_layer
from workers.core.patching.exact import plan_runs
from workers.core.patching.runs import start_layer
from workers.core.patching.targets import plan_target
from workers.core.writes import Write

TOLERANCE = 1e-4
"""Absolute, on logit differences of float32 tiny models."""


def _full_forward_metric(model: HookedModel, tokens: torch.Tensor, writes: list[Write]) -> float:
    """The reference: a full forward from the tokens with the model's own head over the whole vocabulary."""
    logits = model.run(tokens, writes=writes, logits="last").logits
    assert logits is not None
    return float(logits[0, -1, model.token_id("b")] - logits[0, -1, model.token_id("a")])


def _reference_sweep(model: HookedModel, name: str, direction: str = "denoise") -> torch.Tensor:
    """Each patch of a granularity as its own full forward, through ``Write`` selections."""
    granularity = GRANULARITIES[name]
    clean, corrupted = model.tokenize(CLEAN), model.tokenize(CORRUPTED)
    base, donor_tokens = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    facts, n_pos = model.facts, clean.shape[1]
    n_heads = facts.n_kv_heads if granularity.site in ("attn.hook_k", "attn.hook_v") else facts.n_heads
    sizes = {"layer": facts.n_layers, "position": n_pos, "head": n_heads}
    out = torch.zeros(tuple(sizes[axis] for axis in granularity.axes), dtype=torch.float64)
    hooks = [str(HookName(layer, granularity.site)) for layer in range(facts.n_layers)]
    donor = model.run(donor_tokens, cache=hooks).cache
    for cell in itertools.product(*(range(sizes[axis]) for axis in granularity.axes)):
        chosen = dict(zip(granularity.axes, cell, strict=True))
        hook = str(HookName(chosen["layer"], granularity.site))
        value = donor[hook]
        positions = [chosen["position"]] if "position" in chosen else None
        heads = [chosen["head"]] if "head" in chosen else None
        selected = value[:, positions] if positions is not None else value
        if heads is not None:
            selected = selected[:, :, heads]
        write = Write(hook, selected, positions=positions, heads=heads)
        out[cell] = _full_forward_metric(model, base, [write])
    return out


@pytest.mark.parametrize(
    ("family", "name"),
    [
        ("llama", "resid_pre"),
        ("llama", "head_v_by_pos"),
        ("llama", "attn_out_all_pos"),
        ("gemma2", "resid_post"),
        ("gemma2", "head_out"),
        ("gemma3", "resid_mid"),
        ("gemma3", "mlp_out_all_pos"),
        ("gemma3", "head_v"),
        ("qwen3", "resid_pre"),
    ],
)
def test_every_family_matches_full_forwards(family: str, name: str) -> None:
    """Grouped-query heads (llama, gemma), soft-capped logits (gemma2) and Gemma's norms all go through."""
    model = tiny_hooked(family)
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=(name,))
    raw = run_patching(model, request).target(name).raw
    expected = _reference_sweep(model, name)
    assert raw.shape == expected.shape
    assert (raw - expected).abs().max().item() < TOLERANCE


def test_resid_post_and_noising_match_full_forwards(gpt2: HookedModel) -> None:
    for name in ("resid_post", "mlp_out_all_pos"):
        request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=(name,), direction="noise")
        raw = run_patching(gpt2, request).target(name).raw
        assert (raw - _reference_sweep(gpt2, name, "noise")).abs().max().item() < TOLERANCE


def test_identical_activations_give_exactly_the_base_metric(gpt2: HookedModel) -> None:
    """Positions before the first differing token are the same in both runs: no forward, effect exactly 0."""
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=("resid_pre", "head_out"))
    result = run_patching(gpt2, request)
    resid = result.target("resid_pre")
    assert resid.normalised is not None
    assert torch.equal(resid.normalised[:, :4], torch.zeros(3, 4, dtype=torch.float64))
    assert torch.equal(resid.raw[:, :4], torch.full((3, 4), result.corrupted_metric, dtype=torch.float64))
    assert resid.normalised[:, 4:].abs().max().item() > 0.1


def test_chunking_and_readers_do_not_change_values(gpt2: HookedModel) -> None:
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=("every_block", "head_out"))
    default = run_patching(gpt2, request)
    calls: list[tuple[int, ...]] = []
    plain = forward_reader(gpt2)

    def reader(tokens: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        calls.append(tuple(tokens[0].tolist()))
        return plain(tokens, names)

    fractions: list[float] = []
    one_row = PatchingRequest(
        CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=("every_block", "head_out"), memory_budget=1
    )
    chunked = run_patching(gpt2, one_row, reader=reader, progress=fractions.append)
    assert sorted(calls) == sorted(
        [tuple(gpt2.tokenize(CLEAN)[0].tolist()), tuple(gpt2.tokenize(CORRUPTED)[0].tolist())]
    )
    for ours, theirs in zip(chunked.targets, default.targets, strict=True):
        assert (ours.raw - theirs.raw).abs().max().item() < TOLERANCE
    assert len(fractions) > 5
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


def test_cancellation_stops_between_chunks(gpt2: HookedModel) -> None:
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", memory_budget=1)
    fractions: list[float] = []
    with pytest.raises(JobCancelledError):
        run_patching(gpt2, request, progress=fractions.append, should_cancel=lambda: len(fractions) >= 2)
    # the next check after the second report stops it: at most the end of the run in progress is reported
    assert 2 <= len(fractions) <= 3 and fractions[-1] < 1.0


def test_layer_and_position_subsets_are_slices_of_the_full_sweep(gpt2: HookedModel) -> None:
    full = run_patching(gpt2, PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a")).target("resid_pre")
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", layers=(2, 0), positions=(5, 4))
    part = run_patching(gpt2, request).target("resid_pre")
    assert part.labels["layer"] == [2, 0]
    assert part.labels["position"] == ["5: :", "4: b"]
    # the same forwards, batched with other rows: equal up to float rounding
    torch.testing.assert_close(part.raw, full.raw[[2, 0]][:, [5, 4]], rtol=1e-6, atol=1e-6)


def test_logprob_metric_matches_full_forwards(gpt2: HookedModel) -> None:
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", metric="logprob", targets=("resid_pre",))
    result = run_patching(gpt2, request)
    corrupted = gpt2.tokenize(CORRUPTED)
    donor = gpt2.run(gpt2.tokenize(CLEAN), cache=["blocks.1.hook_resid_pre"]).cache["blocks.1.hook_resid_pre"]
    write = Write("blocks.1.hook_resid_pre", donor[:, [4]], positions=[4])
    logits = gpt2.run(corrupted, writes=[write], logits="last").logits
    assert logits is not None
    expected = torch.log_softmax(logits[0, -1], -1)[gpt2.token_id("b")].item()
    assert abs(result.target("resid_pre").raw[1, 4].item() - expected) < TOLERANCE
    assert result.corrupted_metric < 0


@pytest.mark.parametrize("family", ["gpt2", "gemma3"])
@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_heads_patched_together_match_one_full_forward(family: str, direction: str) -> None:
    """Several heads' outputs at some positions, patched at once: one full forward with all those writes."""
    model = tiny_hooked(family)
    heads, positions = ((0, 1), (1, 0), (1, 1)), (1, 3)
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=(), together=heads,
                              positions=positions, direction=direction)
    result = run_patching(model, request)
    assert result.targets == () and result.together is not None
    clean, corrupted = model.tokenize(CLEAN), model.tokenize(CORRUPTED)
    base, donor_tokens = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    hooks = sorted({str(HookName(layer, "attn.hook_z")) for layer, _ in heads})
    donor = model.run(donor_tokens, cache=hooks).cache
    writes = []
    for layer, head in heads:
        hook = str(HookName(layer, "attn.hook_z"))
        writes.append(Write(hook, donor[hook][:, list(positions)][:, :, [head]], positions=list(positions),
                            heads=[head]))
    expected = _full_forward_metric(model, base, writes)
    assert result.together.raw_value == pytest.approx(expected, abs=TOLERANCE)
    clean_metric, corrupted_metric = result.clean_metric, result.corrupted_metric
    want = (expected - corrupted_metric) / (clean_metric - corrupted_metric)
    assert result.together.value == pytest.approx(want, abs=1e-3)
    # Each head alone (the head_out_by_pos sweep's cells) differs from all of them together.
    alone = run_patching(model, PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a",
                                                targets=("head_out",), direction=direction)).target("head_out").raw
    assert all(abs(float(alone[layer, head]) - expected) > 1e-6 for layer, head in heads)


def test_together_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(CoreError) as info:
        PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", together=((0, 0),), method="attribution")
    assert info.value.field == "together"
    with pytest.raises(CoreError) as info:
        run_patching(tiny_hooked("gpt2"), PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a",
                                                          together=((0, 9),)))
    assert (info.value.field, info.value.code) == ("together", "out_of_range")


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_suffix_rows_of_different_start_layers_share_one_forward(family: str) -> None:
    """The sweep's rows start at every layer; merged into one forward, each still equals its full forward."""
    model = tiny_hooked(family)
    n_layers, n_pos = model.facts.n_layers, model.tokenize(CLEAN).shape[1]
    plan = plan_target(GRANULARITIES["resid_pre"], model.facts, range(n_layers), range(n_pos))
    live = {layer: [i for i, unit in enumerate(plan.units) if start_layer(unit.hook) == layer and unit.cell[1] >= 4]
            for layer in range(n_layers)}
    planned = plan_runs(chunks_by_start_layer(live, 1000), plan.units, n_pos, n_layers, 1000)
    assert len(planned) < n_layers
    assert any(len({layer for layer, _ in run.chunks}) > 1 and run.starts for run in planned)
    request = PatchingRequest(CLEAN, CORRUPTED, answer="b", wrong_answer="a", targets=("resid_pre",))
    raw = run_patching(model, request).target("resid_pre").raw
    assert (raw - _reference_sweep(model, "resid_pre")).abs().max().item() < TOLERANCE
