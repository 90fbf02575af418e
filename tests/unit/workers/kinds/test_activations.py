"""The ``activations`` kind: TransformerLens's ``run_with_cache`` sliced by hand equals the job's result."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from safetensors.torch import load

from tests.factories import TL_FAMILIES
from tests.oracles.transformer_lens_oracle import hooked_transformer_from_hf
from tests.unit.workers.core.patching.conftest import tiny_hooked
from tests.unit.workers.kinds.conftest import MODEL, submit
from workers.core.activations import forward_reader
from workers.core.errors import CoreError
from workers.core.hooked_model import HookedModel
from workers.core.progress import never_cancel, no_progress
from workers.core.shared_forwards import embedding_gradients_together
from workers.kinds import KINDS, job_spec_adapter
from workers.kinds.activations import ARTIFACT_NAME, MAX_RESULT_BYTES, ActivationsResult, ActivationsSpec, run
from workers.kinds.artifacts import ArtifactLink, artifact_url
from workers.kinds.context import JobContext
from workers.kinds.view import ModelView
from workers.runtime import WorkerRuntime
from workers.tasks import execute_job

TOLERANCE = 1e-4
"""Absolute, float32, tiny models (as tests/unit/workers/core/test_hooked_model.py)."""

PROMPTS = ["ab b:", "hello there"]
SLICED: dict[str, Any] = {
    "hooks": [
        "blocks.*.hook_resid_post",
        "blocks.0.attn.hook_z",
        "blocks.1.attn.hook_k",
        "blocks.2.attn.hook_pattern",
        "blocks.1.mlp.hook_post",
        "ln_final.hook_normalized",
    ],
    "layers": [2, 0],
    "positions": [0, -1, 2],
    "heads": [1, 0],
    "dims": [5, 0, 7],
}


def context(model: HookedModel, runtime: WorkerRuntime | None = None) -> JobContext:
    """A runner's context on ``model``; files go to ``runtime``'s store as job ``unit``'s."""

    def save(name: str, data: bytes) -> ArtifactLink:
        if runtime is None:
            raise AssertionError("this run was not meant to write a file")
        runtime.store.put_artifact("unit", name, data, 60)
        return ArtifactLink(name=name, url=artifact_url("unit", name), bytes=len(data), expires_at=time.time() + 60)

    return JobContext(
        model=model,
        entry=None,  # type: ignore[arg-type]
        reader=forward_reader(model),
        progress=no_progress,
        should_cancel=never_cancel,
        load_sae=lambda _: None,  # type: ignore[arg-type,return-value]
        save_artifact=save,
        gradient=lambda request: embedding_gradients_together(model, [request])[0],
    )


@pytest.fixture(scope="module", params=TL_FAMILIES)
def tl_pair(request: pytest.FixtureRequest) -> Iterator[tuple[HookedModel, Any]]:
    model = tiny_hooked(request.param)
    yield model, hooked_transformer_from_hf(model.model)


def expected_slice(name: str, tensor: torch.Tensor, n_pos: int) -> torch.Tensor:
    """The TL tensor ``[pos, ...]`` (or ``[head, q, k]``) sliced as SLICED says, written out per site."""
    positions = [p % n_pos for p in SLICED["positions"]]
    heads, dims = SLICED["heads"], SLICED["dims"]
    if name.endswith("attn.hook_pattern"):
        return tensor[heads][:, positions]
    if name.endswith(("attn.hook_z", "attn.hook_k")):
        return tensor[positions][:, heads][:, :, dims]
    return tensor[positions][:, dims]


def test_sliced_hooks_equal_transformer_lens(tl_pair: tuple[HookedModel, Any]) -> None:
    model, tl = tl_pair
    spec = ActivationsSpec.model_validate({"kind": "activations", "model": "m", "prompts": PROMPTS, **SLICED})
    result = run(context(model), spec)
    assert [p.tokens for p in result.prompts] == [model.token_strings(model.tokenize(p)) for p in PROMPTS]
    for prompt, got in zip(PROMPTS, result.prompts, strict=True):
        tokens = model.tokenize(prompt)
        n_pos = tokens.shape[1]
        _, cache = tl.run_with_cache(tokens)
        assert list(got.hooks) == [
            "blocks.2.hook_resid_post",
            "blocks.0.hook_resid_post",
            "blocks.0.attn.hook_z",
            "blocks.1.attn.hook_k",
            "blocks.2.attn.hook_pattern",
            "blocks.1.mlp.hook_post",
            "ln_final.hook_normalized",
        ]
        for name, part in got.hooks.items():
            want = expected_slice(name, cache[name][0], n_pos)
            values = torch.tensor(part.values)
            assert list(values.shape) == part.shape == list(want.shape), name
            assert (values - want).abs().max().item() < TOLERANCE, name
        z = got.hooks["blocks.0.attn.hook_z"]
        assert z.axes == ["position", "head", "d_head"]
        labels = got.tokens
        assert z.labels == {"position": [labels[0], labels[-1], labels[2]], "head": [1, 0], "d_head": [5, 0, 7]}
        pattern = got.hooks["blocks.2.attn.hook_pattern"]
        assert pattern.axes == ["head", "query_position", "key_position"]
        assert pattern.labels["key_position"] == labels
        assert got.hooks["blocks.1.mlp.hook_post"].axes == ["position", "d_mlp"]


def test_top_k_keeps_the_largest_magnitudes_with_their_indices(tl_pair: tuple[HookedModel, Any]) -> None:
    model, tl = tl_pair
    body: dict[str, Any] = {
        "kind": "activations",
        "model": "m",
        "prompt": "hello",
        "hooks": ["blocks.1.mlp.hook_post", "blocks.0.attn.hook_q"],
        "top_k": 4,
        "positions": [-1, 1],
    }
    got = run(context(model), ActivationsSpec.model_validate(body)).prompts[0]
    tokens = model.tokenize("hello")
    _, cache = tl.run_with_cache(tokens)
    for name in body["hooks"]:
        part = got.hooks[name]
        assert part.axes[-1] == "top_k" and part.labels["top_k"] == [0, 1, 2, 3]
        full = cache[name][0][[tokens.shape[1] - 1, 1]]
        values, indices = torch.tensor(part.values), torch.tensor(part.indices)
        assert values.shape[-1] == 4 and indices.shape == values.shape
        # Independently: the gathered values sit at their indices, and no left-out value is larger.
        assert (full.gather(-1, indices) - values).abs().max().item() < TOLERANCE
        smallest_kept = values.abs().min(-1).values
        mask = torch.ones_like(full, dtype=torch.bool).scatter(-1, indices, False)
        left_out = torch.where(mask, full.abs(), torch.zeros_like(full)).max(-1).values
        assert bool((left_out <= smallest_kept + 1e-6).all()), name
        assert bool((values.abs()[..., :-1] >= values.abs()[..., 1:]).all())


def test_the_kind_is_in_the_table() -> None:
    assert KINDS["activations"].spec is ActivationsSpec and KINDS["activations"].result is ActivationsResult
    spec = job_spec_adapter.validate_python(
        {"kind": "activations", "model": MODEL, "prompt": "x", "hooks": ["hook_embed"]}
    )
    assert isinstance(spec, ActivationsSpec)


@pytest.mark.parametrize(
    ("change", "code", "field", "words"),
    [
        ({"hooks": ["blocks.0.hook_nope"]}, "unknown_hook", "hooks.0", "hook_resid_pre"),
        ({"hooks": ["hook_embed", "blocks.7.hook_resid_pre"]}, "unknown_hook", "hooks.1", "layers 0..1"),
        ({"hooks": ["blocks.*.hook_resid_pre"], "layers": [2]}, "out_of_range", "layers", "0..1"),
        ({"positions": [5]}, "out_of_range", "positions", "-3..2"),
        ({"positions": [-4]}, "out_of_range", "positions", "-3..2"),
        ({"heads": [4], "hooks": ["blocks.0.attn.hook_z"]}, "out_of_range", "heads", "0..3"),
        ({"dims": [64]}, "out_of_range", "dims", "0..63"),
        ({"prompt": "x" * 100}, "prompt_too_long", "prompt", "64"),
        (
            {"hooks": ["blocks.*.mlp.hook_post"], "prompt": None, "prompts": ["x" * 60] * 16, "output": "json"},
            "result_too_large",
            "hooks",
            "bytes",
        ),
    ],
)
def test_bad_requests_are_refused_at_the_check(
    runtime: WorkerRuntime, change: dict[str, Any], code: str, field: str, words: str
) -> None:
    body = {"kind": "activations", "model": MODEL, "prompt": "ab", "hooks": ["blocks.0.hook_resid_pre"], **change}
    with pytest.raises(CoreError) as info:
        ActivationsSpec.model_validate(body).check(runtime.view(MODEL))
    assert (info.value.code, info.value.field) == (code, field)
    assert words in str(info.value)


def test_too_large_names_the_bytes(runtime: WorkerRuntime) -> None:
    view = runtime.view(MODEL)
    body = {"kind": "activations", "model": MODEL, "prompts": ["x" * 60] * 16, "hooks": ["blocks.*.mlp.hook_post"],
            "output": "json"}
    spec = ActivationsSpec.model_validate(body)
    want = 4 * 16 * 2 * 61 * view.card.d_mlp  # float32 × prompts × layers × positions × d_mlp
    assert spec.result_bytes(view.hook, view.card, spec.prompt_lengths(view)) == want > MAX_RESULT_BYTES
    with pytest.raises(CoreError, match=f"take {want} bytes"):
        spec.check(view)
    ActivationsSpec.model_validate({**body, "positions": [-1]}).check(view)
    ActivationsSpec.model_validate({**body, "output": "auto"}).check(view)  # a file instead
    small = ModelView(view.card, view.tokenizer, dataclasses.replace(view.entry, max_artifact_bytes=want - 1))
    with pytest.raises(CoreError, match=f"take {want} bytes.*bound of {want - 1}.*max_artifact_bytes") as info:
        ActivationsSpec.model_validate({**body, "output": "auto"}).check(small)
    assert (info.value.code, info.value.field) == ("result_too_large", "hooks")


def test_a_large_result_is_a_safetensors_file_with_the_same_numbers(runtime: WorkerRuntime) -> None:
    prompts = ["x" * 60] * 6 + ["a b c d"]
    body: dict[str, Any] = {"kind": "activations", "model": MODEL, "prompts": prompts,
                            "hooks": ["blocks.*.mlp.hook_post", "blocks.0.attn.hook_q"], "top_k": 200}
    spec = ActivationsSpec.model_validate(body)
    view = runtime.view(MODEL)
    assert spec.result_bytes(view.hook, view.card, spec.prompt_lengths(view)) > MAX_RESULT_BYTES
    job_id = submit(runtime, body)
    record = execute_job(runtime, "activations", job_id)
    assert record is not None and record.status == "succeeded", record.error
    result = ActivationsResult.model_validate(record.result)
    assert result.artifact is not None and result.artifact.name == ARTIFACT_NAME
    assert result.artifact.url == f"/v1/jobs/{job_id}/artifacts/{ARTIFACT_NAME}"
    assert result.artifact.expires_at > time.time() + runtime.settings.artifact_ttl_s - 60
    data = runtime.store.get_artifact(job_id, ARTIFACT_NAME)
    assert data is not None and len(data) == result.artifact.bytes
    tensors = load(data)
    model = runtime.model(MODEL)
    for i, (prompt, got) in enumerate(zip(prompts, result.prompts, strict=True)):
        cache = model.run(model.tokenize(prompt), cache=list(got.hooks)).cache
        for hook, part in got.hooks.items():
            assert part.values is None and part.tensor == f"{i}/{hook}"
            values, indices = tensors[part.tensor], tensors[f"{part.tensor}.indices"]
            assert list(values.shape) == part.shape and indices.dtype == torch.int32
            full = cache[hook][0].float()
            assert (full.gather(-1, indices.long()) - values).abs().max().item() < 1e-6, hook
    inline = ActivationsSpec.model_validate({**body, "prompts": prompts[-1:], "top_k": 2})
    same = run(context(model), inline).prompts[0].hooks["blocks.0.attn.hook_q"]
    filed = run(context(model, runtime), inline.model_copy(update={"output": "safetensors"}))
    assert filed.artifact is not None
    again = load(runtime.store.get_artifact("unit", ARTIFACT_NAME) or b"")["0/blocks.0.attn.hook_q"]
    assert torch.equal(again, torch.tensor(same.values))


def test_a_job_through_the_worker(runtime: WorkerRuntime) -> None:
    body: dict[str, Any] = {
        "kind": "activations",
        "model": MODEL,
        "prompts": ["ab", "abc"],
        "hooks": ["blocks.1.hook_resid_post"],
        "dims": [0, 1],
    }
    record = execute_job(runtime, "activations", submit(runtime, body))
    assert record is not None and record.status == "succeeded", record.error
    result = ActivationsResult.model_validate(record.result)
    model = runtime.model(MODEL)
    for prompt, got in zip(body["prompts"], result.prompts, strict=True):
        want = model.run(model.tokenize(prompt), cache=["blocks.1.hook_resid_post"]).cache["blocks.1.hook_resid_post"]
        values = torch.tensor(got.hooks["blocks.1.hook_resid_post"].values)
        assert (values - want[0][:, [0, 1]]).abs().max().item() < 1e-6
