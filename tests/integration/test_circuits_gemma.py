"""Two known circuits found in Gemma 3 270M through the service, over HTTP, with real worker processes.

* Induction (Olsson et al. 2022): a ``head_scores`` job on repeated random tokens equals TransformerLens's
  ``detect_head`` on the same tokens; patching the top induction heads' outputs on the second repeat, all at once
  (``together``), removes most of the in-context advantage of the repeated sequence, and as many of the weakest
  heads remove next to none.
* Indirect-object identification (Wang et al. 2022): the head sweep ranks heads; path patching from those heads to
  the logits (``receivers: "logits"``) says which of them carry the name straight to the answer (name movers), and
  equals the core run in this process.

The figures are printed (``pytest -s``) so they can be quoted.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from tests.integration.conftest import Deployment
from tests.unit.workers.core.test_head_detection_gemma import tl_head_scores
from workers.core.hooked_model import HookedModel
from workers.core.patching import PathPatchingRequest, run_path_patching

pytestmark = [pytest.mark.integration, pytest.mark.gemma]

GEMMA = "gemma-3-270m"
DETECTORS = {"induction": "induction_head", "previous_token": "previous_token_head",
             "duplicate_token": "duplicate_token_head"}
TOP_HEADS = 3
REPEATED_WORDS = 12
TRIALS = 4


def finished(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = client.post("/v1/jobs", json=body, params={"wait": 240}).json()
    assert job.get("status") == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def _ranked(grid: list[list[float]]) -> list[tuple[int, int, float]]:
    """Every (layer, head, score) of a layer × head grid, highest first."""
    cells = [(layer, head, value) for layer, row in enumerate(grid) for head, value in enumerate(row)]
    return sorted(cells, key=lambda cell: cell[2], reverse=True)


def _single_token_words(model: HookedModel, count: int) -> list[str]:
    """Lower-case words that are one token with a leading space, and stay so in running text."""
    words: list[str] = []
    for token_id in range(model.facts.d_vocab):
        text = model.tokenizer.decode([token_id])
        if re.fullmatch(r" [a-z]{4,9}", text) and model.tokenize(text)[0].tolist()[1:] == [token_id]:
            words.append(text)
            if len(words) == count:
                break
    return words


def test_induction_heads_found_and_patched_away(
    gemma_service: tuple[Deployment, httpx.Client], gemma: HookedModel, gemma_tl: Any
) -> None:
    _, client = gemma_service
    scores = finished(client, {"kind": "head_scores", "model": GEMMA, "detectors": list(DETECTORS),
                               "repeated_random": {"length": 20, "seed": 5, "batch": 3}})
    for name, tl_name in DETECTORS.items():
        per_sequence = [tl_head_scores(gemma_tl, torch.tensor([ids]), tl_name) for ids in scores["token_ids"]]
        expected = torch.stack(per_sequence).mean(0)
        got = torch.tensor(scores["scores"][name]["values"])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0, msg=name)
    ranked = _ranked(scores["scores"]["induction"]["values"])
    top = [(layer, head, round(score, 3)) for layer, head, score in ranked[:6]]
    print(f"{GEMMA} induction heads (layer, head, score): {top}")
    strongest = [[layer, head] for layer, head, _ in ranked[:TOP_HEADS]]
    weakest = [[layer, head] for layer, head, _ in ranked[-TOP_HEADS:]]

    rng = np.random.default_rng(2)
    words = _single_token_words(gemma, 2000)
    removed: dict[str, list[float]] = {"strongest": [], "weakest": []}
    for _ in range(TRIALS):
        picks = rng.choice(len(words), size=2 * REPEATED_WORDS, replace=False)
        first, other = [words[i] for i in picks[:REPEATED_WORDS]], [words[i] for i in picks[REPEATED_WORDS:]]
        k = int(rng.integers(3, REPEATED_WORDS - 1))
        # Clean: the words, then their start again; the next word is predictable in context. Corrupted: other
        # words first, so nothing earlier says what comes next.
        second_repeat = list(range(REPEATED_WORDS + 1, REPEATED_WORDS + k + 1))  # BOS, the words, their start
        body = {"kind": "patching", "model": GEMMA, "clean_prompt": "".join(first + first[:k]),
                "corrupted_prompt": "".join(other + first[:k]), "answer": first[k], "metric": "logprob",
                "direction": "noise", "targets": [], "positions": second_repeat}
        for name, heads in (("strongest", strongest), ("weakest", weakest)):
            result = finished(client, {**body, "together": heads})
            assert result["clean_metric"] > result["corrupted_metric"] + 2  # the repeat makes the next word likely
            removed[name].append(1 - result["together"]["value"])
    mean = {name: float(np.mean(values)) for name, values in removed.items()}
    print(f"patching the top {TOP_HEADS} induction heads on the second repeat removes {mean['strongest']:.0%} of the "
          f"in-context log-probability advantage (per trial {[round(v, 2) for v in removed['strongest']]}); "
          f"the {TOP_HEADS} weakest heads remove {mean['weakest']:.0%}")
    assert mean["strongest"] > 0.5 > 0.1 > abs(mean["weakest"])


IOI_PAIRS = [
    ("When Mary and John went to the store, John gave a drink to",
     "When Mary and John went to the store, Mary gave a drink to", " Mary", " John"),
    ("Then Sarah and David had a long argument, and afterwards David said to",
     "Then Sarah and David had a long argument, and afterwards Sarah said to", " Sarah", " David"),
]


@pytest.mark.parametrize(("clean", "corrupted", "answer", "wrong"), IOI_PAIRS, ids=["store", "argument"])
def test_name_movers_by_path_patching_to_the_logits(
    gemma_service: tuple[Deployment, httpx.Client], gemma: HookedModel, clean: str, corrupted: str, answer: str,
    wrong: str,
) -> None:
    _, client = gemma_service
    pair = {"kind": "patching", "model": GEMMA, "clean_prompt": clean, "corrupted_prompt": corrupted,
            "answer": answer, "wrong_answer": wrong}
    sweep = finished(client, {**pair, "targets": ["head_out"]})
    ranked = sorted(_ranked(sweep["targets"]["head_out"]["values"]), key=lambda cell: abs(cell[2]), reverse=True)
    senders = [[layer, head] for layer, head, _ in ranked[:10]]
    path = finished(client, {**pair, "method": "path", "receivers": "logits", "senders": senders})
    assert path["path"]["receivers"] == "logits"
    core = run_path_patching(gemma, PathPatchingRequest(clean, corrupted, answer, wrong_answer=wrong,
                                                        receivers="logits", senders=tuple(map(tuple, senders))))
    grid = path["targets"]["senders"]["values"]
    direct = {(layer, head): 1 - grid[layer][head] for layer, head in senders}  # share of the logit difference
    for (layer, head), share in direct.items():
        assert share == pytest.approx(1 - float(core.senders.values[layer, head]), abs=1e-4)
    movers = sorted(direct.items(), key=lambda item: item[1], reverse=True)
    print(f"{answer.strip()}/{wrong.strip()}: direct share of the logit difference per top-swept head, name movers "
          f"first: {[(f'L{layer}H{head}', round(share, 2)) for (layer, head), share in movers]}; all ten: "
          f"{1 - path['path']['joint']['value']:.2f}")
    assert movers[0][1] > 0.3  # one head's direct path alone carries a third of the answer's margin or more
    assert 1 - path["path"]["joint"]["value"] > 0.3
