"""Patches per patching job: the spec's torch-free count is the core's enumeration, and over the model's
``max_patches`` the spec's own check refuses the job (422 ``too_many_patches``), in the API and the worker alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from service.errors import status_for
from tests.unit.workers.kinds.conftest import MODEL
from workers.core.errors import RegistryConfigError
from workers.core.hooked_model import ModelFacts
from workers.core.patching.targets import COMPOSITES, GRANULARITIES, expand_targets, plan_target
from workers.core.registry import DEFAULT_MAX_PATCHES, Registry
from workers.kinds.patching import COMPOSITE_TARGETS, PATCHING_TARGETS, TARGET_AXES, PatchingSpec, TooManyPatchesError
from workers.kinds.view import ModelView
from workers.runtime import WorkerRuntime

PATCHING = {"kind": "patching", "model": MODEL, "clean_prompt": "ab b:", "corrupted_prompt": "ab a:",
            "answer": "b", "wrong_answer": "a"}


def _core_count(targets: list[str], facts: Any, layers: list[int], positions: list[int]) -> int:
    return sum(len(plan_target(GRANULARITIES[t], cast(ModelFacts, facts), layers, positions).units)
               for t in expand_targets(targets))


def test_the_spec_knows_every_target_the_core_sweeps() -> None:
    assert set(TARGET_AXES) == set(GRANULARITIES) and COMPOSITE_TARGETS == COMPOSITES
    assert set(PATCHING_TARGETS) == set(TARGET_AXES) | set(COMPOSITE_TARGETS)


@pytest.mark.parametrize("target", PATCHING_TARGETS)
@pytest.mark.parametrize("restrict", [{}, {"layers": [1]}, {"positions": [0, 2, 3]}])
def test_the_count_is_the_cores_number_of_patches(
    runtime: WorkerRuntime, target: str, restrict: dict[str, list[int]]
) -> None:
    """On a card with grouped-query attention (2 key/value heads for 4 query heads), so k and v count apart."""
    view = runtime.view(MODEL)
    gqa = ModelView(view.card.model_copy(update={"n_kv_heads": 2}), view.tokenizer, view.entry)
    n_pos = len(view.tokenize(PATCHING["clean_prompt"]))
    spec = PatchingSpec.model_validate({**PATCHING, "targets": [target], **restrict})
    facts = SimpleNamespace(n_heads=gqa.card.n_heads, n_kv_heads=2)  # all plan_target reads of the model
    layers = restrict.get("layers", list(range(gqa.card.n_layers)))
    positions = restrict.get("positions", list(range(n_pos)))
    assert spec.patch_count(gqa, n_pos) == _core_count([target], facts, layers, positions) > 0


def test_composites_and_repeats_count_each_single_target_once(runtime: WorkerRuntime) -> None:
    view = runtime.view(MODEL)
    n_pos, card = len(view.tokenize(PATCHING["clean_prompt"])), view.card
    spec = PatchingSpec.model_validate({**PATCHING, "targets": ["every_block", "resid_pre", "head_out"]})
    assert spec.patch_count(view, n_pos) == 3 * card.n_layers * n_pos + card.n_layers * card.n_heads
    path = PatchingSpec.model_validate({**PATCHING, "method": "path", "receivers": [[1, 0]]})
    assert path.patch_count(view, n_pos) == card.n_layers * card.n_heads  # every sender head
    chosen = PatchingSpec.model_validate({**PATCHING, "method": "path", "receivers": [[1, 0]], "senders": [[0, 1]]})
    assert chosen.patch_count(view, n_pos) == 1


def test_over_max_patches_the_check_refuses_with_422(runtime: WorkerRuntime) -> None:
    view = runtime.view(MODEL)
    n_pos = len(view.tokenize(PATCHING["clean_prompt"]))
    spec = PatchingSpec.model_validate({**PATCHING, "targets": ["resid_pre", "head_out"]})
    needed = spec.patch_count(view, n_pos)
    exact = ModelView(view.card, view.tokenizer, dataclasses.replace(view.entry, max_patches=needed))
    spec.check(exact)  # at the limit: admitted
    tight = ModelView(view.card, view.tokenizer, dataclasses.replace(view.entry, max_patches=needed - 1))
    with pytest.raises(TooManyPatchesError) as refused:
        spec.check(tight)
    assert (refused.value.code, refused.value.field) == ("too_many_patches", "targets")
    assert f"makes {needed} patches" in refused.value.message and f"at most {needed - 1}" in refused.value.message
    assert status_for("too_many_patches") == 422
    path = PatchingSpec.model_validate({**PATCHING, "method": "path", "receivers": [[1, 0]]})
    one = ModelView(view.card, view.tokenizer, dataclasses.replace(view.entry, max_patches=1))
    with pytest.raises(TooManyPatchesError) as refused:
        path.check(one)
    assert refused.value.field == "senders"


def test_max_patches_comes_from_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    path.write_text('[models.a]\nsource = { kind = "random", family = "gpt2" }\nmax_patches = 1234\n'
                    '[models.b]\nsource = { kind = "random", family = "gpt2" }\n', encoding="utf-8")
    registry = Registry.from_toml(path)
    assert (registry.get("a").max_patches, registry.get("b").max_patches) == (1234, DEFAULT_MAX_PATCHES)
    path.write_text('[models.a]\nsource = { kind = "random", family = "gpt2" }\nmax_patches = 0\n', encoding="utf-8")
    with pytest.raises(RegistryConfigError, match="max_patches"):
        Registry.from_toml(path)
