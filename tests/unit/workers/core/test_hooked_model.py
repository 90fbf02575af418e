"""HookedModel against TransformerLens (reads and writes) and against transformers' own outputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from transformers import PreTrainedModel

from tests.factories import FAMILIES, TINY_VOCAB, TL_FAMILIES, tiny_model
from tests.oracles.transformer_lens_oracle import hooked_transformer_from_hf
from workers.core.errors import InvalidRequestError, ShapeMismatchError, UnknownHookError
from workers.core.hooked_model import HookedModel
from workers.core.hooks import parse_hook_name
from workers.core.writes import Write, apply_write

TOLERANCE = 1e-4
"""Absolute, float32, tiny models: two correct implementations differ by ~1e-7 here."""


class _NoTokenizer:
    bos_token_id = None


def _hooked(model: PreTrainedModel) -> HookedModel:
    return HookedModel(model, _NoTokenizer(), model_id="tiny")  # type: ignore[arg-type]


def _tokens(seed: int, batch: int = 2, positions: int = 7) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (batch, positions), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=TL_FAMILIES)
def tl_pair(request: pytest.FixtureRequest) -> Iterator[tuple[HookedModel, object]]:
    model = tiny_model(request.param)
    yield _hooked(model), hooked_transformer_from_hf(model)


def test_every_hook_equals_transformer_lens(tl_pair: tuple[HookedModel, object]) -> None:
    hooked, tl = tl_pair
    tokens = _tokens(0)
    tl_logits, tl_cache = tl.run_with_cache(tokens)  # type: ignore[attr-defined]
    ours = hooked.run(tokens, cache=hooked.hook_names)
    assert ours.logits is not None
    assert (ours.logits - tl_logits).abs().max().item() < TOLERANCE
    assert len(ours.cache) == len(hooked.hook_names) > 20
    for name, value in ours.cache.items():
        expected = tl_cache[name]
        assert value.shape == expected.shape, name
        assert (value - expected).abs().max().item() < TOLERANCE, name


WRITES = [
    ("hook_embed", {"positions": [2, 3]}),
    ("blocks.0.hook_resid_pre", {"positions": [4]}),
    ("blocks.1.hook_resid_mid", {"batch": [1], "positions": [1, 5]}),
    ("blocks.1.hook_resid_post", {}),
    ("blocks.2.hook_attn_out", {"positions": [6]}),
    ("blocks.0.hook_mlp_out", {"positions": [0, 6]}),
    ("blocks.1.attn.hook_z", {"heads": [2]}),
    ("blocks.2.attn.hook_z", {"positions": [3, 6], "heads": [0, 3]}),
    ("blocks.0.attn.hook_q", {"heads": [1]}),
    ("blocks.1.attn.hook_k", {"positions": [2], "heads": [1]}),
    ("blocks.2.attn.hook_v", {"heads": [0]}),
    ("blocks.1.attn.hook_pattern", {"heads": [3]}),
    ("blocks.1.mlp.hook_post", {"positions": [5]}),
    ("ln_final.hook_normalized", {"positions": [6]}),
    ("ln_final.hook_scale", {"positions": [6]}),
]


@pytest.mark.parametrize(("hook_name", "selection"), WRITES)
def test_write_changes_output_as_transformer_lens_hook_does(
    tl_pair: tuple[HookedModel, object], hook_name: str, selection: dict[str, list[int]]
) -> None:
    """Patch activations of another prompt in, as activation patching does, through both libraries."""
    hooked, tl = tl_pair
    clean, corrupted = _tokens(1), _tokens(2)
    donor = hooked.run(clean, cache=[hook_name]).cache[hook_name]
    hook_ = parse_hook_name(hook_name)
    index = _selection_index(hook_name, donor, selection)
    write = Write(hook_name, donor[index], **selection)  # type: ignore[arg-type]

    ours = hooked.run(corrupted, writes=[write]).logits
    tl_logits = tl.run_with_hooks(  # type: ignore[attr-defined]
        corrupted, fwd_hooks=[(hook_name, lambda activation, hook: apply_write(activation, hook_, write))]
    )
    baseline = hooked.run(corrupted).logits
    assert ours is not None and baseline is not None
    change, tl_change = ours - baseline, tl_logits - baseline
    assert change.abs().max().item() > 1e-3, "the write must change the output"
    assert (change - tl_change).abs().max().item() < 1e-3 * change.abs().max().item() + 1e-6


def _selection_index(hook_name: str, donor: torch.Tensor, selection: dict[str, list[int]]) -> tuple[object, ...]:
    from workers.core.writes import selection_axes

    axes = selection_axes(parse_hook_name(hook_name))
    chosen = {axes[k if k != "positions" else "position"]: v for k, v in selection.items() if k != "heads"}
    if "heads" in selection:
        chosen[axes["head"]] = selection["heads"]
    if not chosen:
        return (slice(None),)
    last = max(chosen)
    index = []
    for dim in range(last + 1):
        values = torch.tensor(chosen[dim]) if dim in chosen else torch.arange(donor.shape[dim])
        shape = [1] * (last + 1)
        shape[dim] = -1
        index.append(values.view(shape))
    return tuple(index)


# --------------------------------------------------------------------------- families TransformerLens cannot load
@pytest.fixture(scope="module", params=FAMILIES)
def any_family(request: pytest.FixtureRequest) -> HookedModel:
    return _hooked(tiny_model(request.param))


def test_residual_hooks_equal_transformers_hidden_states(any_family: HookedModel) -> None:
    hooked = any_family
    tokens = _tokens(3)
    n_layers = hooked.facts.n_layers
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)] + ["ln_final.hook_normalized"]
    ours = hooked.run(tokens, cache=names)
    with torch.no_grad():
        reference = hooked.model(input_ids=tokens, output_hidden_states=True)
    for layer in range(n_layers):
        expected = reference.hidden_states[layer]
        assert (ours.cache[f"blocks.{layer}.hook_resid_pre"] - expected).abs().max().item() < TOLERANCE
    assert ours.logits is not None
    assert (ours.logits - reference.logits).abs().max().item() < TOLERANCE


def test_pattern_equals_transformers_eager_attentions(any_family: HookedModel) -> None:
    hooked = any_family
    tokens = _tokens(4)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(hooked.facts.n_layers)]
    ours = hooked.run(tokens, cache=names)
    previous = hooked.model.config._attn_implementation
    hooked.model.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            reference = hooked.model(input_ids=tokens, output_attentions=True)
    finally:
        hooked.model.config._attn_implementation = previous
    for layer, name in enumerate(names):
        assert (ours.cache[name] - reference.attentions[layer]).abs().max().item() < TOLERANCE
    assert hooked.model.config._attn_implementation == previous


def test_block_hooks_recompose_the_residual(any_family: HookedModel) -> None:
    """resid_mid = resid_pre + attn_out, resid_post = resid_mid + mlp_out; z, q, v and mlp.hook_post recompute
    the modules' outputs from their weights."""
    hooked = any_family
    tokens = _tokens(5)
    ours = hooked.run(tokens, cache=hooked.hook_names)
    adapter, model = hooked.adapter, hooked.model
    for layer in range(hooked.facts.n_layers):
        c = {name.removeprefix(f"blocks.{layer}."): v for name, v in ours.cache.items()}
        mid = c["hook_resid_pre"] + c["hook_attn_out"]
        assert (c["hook_resid_mid"] - mid).abs().max().item() < TOLERANCE
        assert (c["hook_resid_post"] - (mid + c["hook_mlp_out"])).abs().max().item() < TOLERANCE
        out_proj = adapter.layer_module(model, layer, adapter.layer_out_proj)
        down = adapter.layer_module(model, layer, adapter.layer_mlp_down)
        with torch.no_grad():
            attn_raw = out_proj(c["attn.hook_z"].flatten(-2))
            mlp_raw = down(c["mlp.hook_post"])
        if adapter.family == "gemma":
            post_attn = adapter.layer_module(model, layer, adapter.layer_attn_out)
            post_mlp = adapter.layer_module(model, layer, adapter.layer_mlp_out)
            with torch.no_grad():
                attn_raw, mlp_raw = post_attn(attn_raw), post_mlp(mlp_raw)
        assert (attn_raw - c["hook_attn_out"]).abs().max().item() < TOLERANCE
        assert (mlp_raw - c["hook_mlp_out"]).abs().max().item() < TOLERANCE
    pattern = ours.cache["blocks.0.attn.hook_pattern"]
    assert torch.allclose(pattern.sum(-1), torch.ones_like(pattern.sum(-1)), atol=1e-5)
    assert pattern.triu(1).abs().max().item() == 0.0, "causal: no attention to later positions"


def test_resid_mid_write_reaches_mlp_and_residual(any_family: HookedModel) -> None:
    hooked = any_family
    tokens = _tokens(6)
    donor = hooked.run(_tokens(7), cache=["blocks.1.hook_resid_mid"]).cache["blocks.1.hook_resid_mid"]
    ours = hooked.run(
        tokens,
        writes=[Write("blocks.1.hook_resid_mid", donor)],
        cache=["blocks.1.hook_resid_mid", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post"],
    ).cache
    assert (ours["blocks.1.hook_resid_mid"] - donor).abs().max().item() < TOLERANCE
    expected_post = donor + ours["blocks.1.hook_mlp_out"]
    assert (ours["blocks.1.hook_resid_post"] - expected_post).abs().max().item() < TOLERANCE
    donor_run = hooked.run(_tokens(7), cache=["blocks.1.hook_mlp_out"]).cache["blocks.1.hook_mlp_out"]
    assert (ours["blocks.1.hook_mlp_out"] - donor_run).abs().max().item() < TOLERANCE


def test_start_at_layer_resumes_from_cached_residual(any_family: HookedModel) -> None:
    hooked = any_family
    tokens = _tokens(8)
    full = hooked.run(tokens, cache=["blocks.2.hook_resid_pre", "blocks.2.hook_resid_post"])
    resumed = hooked.run(
        tokens,
        start_at_layer=2,
        start_resid=full.cache["blocks.2.hook_resid_pre"],
        cache=["blocks.2.hook_resid_post"],
    )
    assert full.logits is not None and resumed.logits is not None
    assert (full.logits - resumed.logits).abs().max().item() < TOLERANCE
    assert all(not hasattr(layer, "__dict__") or "forward" not in layer.__dict__ for layer in hooked.layers)


def test_stop_at_layer_reads_early_hooks_without_logits(any_family: HookedModel) -> None:
    hooked = any_family
    tokens = _tokens(9)
    full = hooked.run(tokens, cache=["blocks.0.hook_resid_post"])
    stopped = hooked.run(tokens, cache=["blocks.0.hook_resid_post"], stop_at_layer=1)
    assert stopped.logits is None
    assert torch.equal(stopped.cache["blocks.0.hook_resid_post"], full.cache["blocks.0.hook_resid_post"])
    with pytest.raises(InvalidRequestError, match="never run"):
        hooked.run(tokens, cache=["blocks.1.hook_resid_post"], stop_at_layer=1)


def test_logits_modes(any_family: HookedModel) -> None:
    hooked = any_family
    tokens = _tokens(10)
    full, last = hooked.run(tokens).logits, hooked.run(tokens, logits="last").logits
    assert full is not None and last is not None
    assert last.shape == (2, 1, TINY_VOCAB)
    assert (full[:, -1:] - last).abs().max().item() < TOLERANCE
    assert hooked.run(tokens, logits="none", cache=["ln_final.hook_scale"]).logits is None


# --------------------------------------------------------------------------- errors and hygiene
@pytest.fixture(scope="module")
def gpt2() -> HookedModel:
    return _hooked(tiny_model("gpt2"))


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_are_removed_when_a_hook_function_fails(gpt2: HookedModel) -> None:
    def explode(_: torch.Tensor) -> None:
        raise RuntimeError("boom")

    previous = gpt2.model.config._attn_implementation
    with pytest.raises(RuntimeError, match="boom"):
        gpt2.run(
            _tokens(11),
            hooks={"blocks.1.hook_mlp_out": [explode]},
            cache=["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_mid"],
        )
    assert _hook_count(gpt2.model) == 0
    assert gpt2.model.config._attn_implementation == previous
    assert not any(hasattr(m, "_interp_pattern_fn") for m in gpt2.model.modules())


def test_unknown_hook_names_the_valid_ones(gpt2: HookedModel) -> None:
    with pytest.raises(UnknownHookError, match="hook_resid_pre") as raised:
        gpt2.run(_tokens(12), cache=["blocks.0.hook_resid_middle"])
    assert raised.value.field == "hook"
    with pytest.raises(UnknownHookError, match=r"layers 0\.\.2"):
        gpt2.run(_tokens(12), cache=["blocks.3.hook_resid_pre"])
    with pytest.raises(UnknownHookError, match="no hook_pos_embed"):
        _hooked(tiny_model("llama")).hook("hook_pos_embed")


def test_write_with_wrong_shape_is_refused(gpt2: HookedModel) -> None:
    with pytest.raises(ShapeMismatchError, match=r"\(2, 7, 64\)"):
        gpt2.run(_tokens(13), writes=[Write("blocks.0.hook_resid_pre", torch.zeros(2, 7, 63))])
    with pytest.raises(ShapeMismatchError, match=r"selection has shape \(2, 1, 64\)"):
        gpt2.run(_tokens(13), writes=[Write("blocks.0.hook_resid_pre", torch.zeros(2, 64), positions=[3])])
    with pytest.raises(InvalidRequestError, match="no head axis"):
        gpt2.run(_tokens(13), writes=[Write("blocks.0.hook_resid_pre", torch.zeros(2, 7, 64), heads=[0])])
    assert _hook_count(gpt2.model) == 0


def test_hook_names_are_complete_and_ordered(gpt2: HookedModel) -> None:
    names = gpt2.hook_names
    assert names[:2] == ["hook_embed", "hook_pos_embed"]
    assert names[-2:] == ["ln_final.hook_scale", "ln_final.hook_normalized"]
    assert len(names) == 4 + 3 * 11
    assert names.index("blocks.0.hook_resid_post") < names.index("blocks.1.hook_resid_pre")
