"""The results pages in headless Chromium on the tiny test models: every kind drawn without a script error, the
values behind a hover, a job followed from queued to finished over its event stream, a failure, the form."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import REGISTRY_TOML, Deployment, make_deployment
from tests.integration.ui.conftest import Tab
from workers.kinds import KINDS as KIND_TABLE

pytestmark = pytest.mark.integration

BROKEN_MODEL = """
# Listed but not loadable: its jobs reach the worker unchecked and fail there with model_load_failed.
[models.broken-gpt2]
max_tokens = 128
weights_revision = "missing"
[models.broken-gpt2.source]
kind = "local"
path = "no-such-model"
"""
PAIR = {"model": "tiny-gpt2", "clean_prompt": "When Mary and John", "corrupted_prompt": "When John and Mary",
        "answer": "a", "wrong_answer": "b"}
PROMPT = {"model": "tiny-gpt2", "prompt": "When Mary and John"}
KINDS: dict[str, dict[str, Any]] = {
    "activations": {"kind": "activations", "model": "tiny-gpt2", "prompts": ["When Mary", "and"],
                    "hooks": ["blocks.1.attn.hook_z", "blocks.0.hook_resid_post"], "positions": [0, -1],
                    "heads": [3, 0], "dims": [1, 2, 3]},
    "activations_file": {"kind": "activations", "model": "tiny-gpt2", "prompt": "When Mary",
                         "hooks": ["blocks.*.hook_resid_post"], "top_k": 3, "output": "safetensors"},
    "attention": {"kind": "attention", **PROMPT, "layers": [1]},
    "patching": {"kind": "patching", **PAIR, "targets": ["resid_pre", "head_out", "every_block", "attn_out_all_pos"]},
    "path_patching": {"kind": "patching", **PAIR, "method": "path", "receivers": [[1, 0]]},
    "path_to_logits": {"kind": "patching", **PAIR, "method": "path", "receivers": "logits"},
    "heads_together": {"kind": "patching", **PAIR, "targets": [], "together": [[0, 1], [1, 2]], "positions": [1, 2]},
    "integrated_gradients": {"kind": "attribution", **PROMPT, "target": {"contrast": ["a", "b"]}},
    "saliency": {"kind": "attribution", **PROMPT, "target": {"token": "a"}, "method": "saliency"},
    "direct_logit_attribution": {"kind": "attribution", **PROMPT, "target": {"token": "a"},
                                 "method": "direct_logit_attribution"},
    "logit_lens": {"kind": "attribution", **PROMPT, "target": {"token": "a"}, "method": "logit_lens", "top_k": 5},
    "layer_integrated_gradients": {"kind": "attribution", **PROMPT, "target": {"token": "a"},
                                   "method": "layer_integrated_gradients", "hook": "blocks.1.attn.hook_z"},
    "head_scores": {"kind": "head_scores", "model": "tiny-gpt2", "repeated_random": {"length": 5, "seed": 1}},
    "integrated_gradients_auto": {"kind": "attribution", **PROMPT, "target": {"contrast": ["a", "b"]},
                                  "n_steps": "auto"},
    "sae_encode": {"kind": "sae_encode", **PROMPT, "sae": "res-1", "top_k": 4},
    "sae_features": {"kind": "sae_features", "model": "tiny-gpt2", "prompts": ["When Mary and John", "hello"],
                     "sae": "res-1", "feature": 5, "top_n": 6},
    "steer": {"kind": "steer", "model": "tiny-gpt2", "prompt": "When Mary", "sae": "res-1", "feature": 3,
              "coefficient": 8, "max_new_tokens": 6},
}


@pytest.fixture(scope="module")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, httpx.Client]]:
    """The test registry plus a model that cannot load, served by one worker (concurrency 1) and the API."""
    directory = tmp_path_factory.mktemp("ui")
    dep = make_deployment(redis_url, directory)
    registry = directory / "ui-registry.toml"
    registry.write_text(REGISTRY_TOML + BROKEN_MODEL, encoding="utf-8")
    dep.env["INTERP_REGISTRY"] = str(registry)
    dep.env["INTERP_MODEL_GROUPS"] += f",broken-gpt2={dep.group('tiny-gpt2')}"
    try:
        dep.start_worker()
        url = dep.start_api()
        with dep.http(url, timeout=120) as client:
            yield dep, client
    finally:
        dep.stop()


def finished(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = client.post("/v1/jobs", json=body, params={"wait": 60}).json()
    assert job.get("status") == "succeeded", job
    return job


def texts(tab: Tab, selector: str) -> list[str]:
    return [str(t) for t in tab.page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.textContent)")]


def count(tab: Tab, selector: str) -> int:
    return tab.page.locator(selector).count()


def _activations(tab: Tab, result: dict[str, Any]) -> None:
    part = result["prompts"][0]["hooks"]["blocks.1.attn.hook_z"]
    section = 'div[data-prompt="0"] section[data-hook="blocks.1.attn.hook_z"]'
    assert count(tab, f"{section} svg.heatmap") == len(part["labels"]["head"]) == 2  # one per head
    assert count(tab, f"{section} rect.cell") == 2 * 2 * 3  # positions × d_head per head
    assert count(tab, 'div[data-prompt="1"] section[data-hook="blocks.0.hook_resid_post"] svg.heatmap') == 1


def _activations_file(tab: Tab, result: dict[str, Any]) -> None:
    hooks = result["prompts"][0]["hooks"]
    assert count(tab, "svg.heatmap") == 0 and count(tab, "section[data-artifact] button.artifact-download") == 1
    assert texts(tab, ".artifact-tensor") == [
        f'in the file as tensor "{part["tensor"]}" (indices: "{part["tensor"]}.indices")' for part in hooks.values()
    ]
    with tab.page.expect_download() as download:
        tab.page.click("button.artifact-download")
    saved = Path(download.value.path())
    assert download.value.suggested_filename == result["artifact"]["name"]
    assert saved.stat().st_size == result["artifact"]["bytes"]


def _attention(tab: Tab, result: dict[str, Any]) -> None:
    n = len(result["tokens"])
    assert count(tab, ".head-pattern svg.heatmap") == 4  # layer 1's four heads
    labels = [f"{i}: {t}" for i, t in enumerate(result["tokens"])]
    assert texts(tab, '.head-pattern[data-head="L1H2"] .col-label') == labels
    assert count(tab, '.head-pattern[data-head="L1H2"] rect.cell') == n * n
    assert count(tab, 'section[data-summary="entropy"] rect.cell') == 4
    tab.page.select_option("#head-select", "L1H0")
    assert tab.page.locator('.head-pattern[data-head="L1H3"]').is_hidden()


def _patching(tab: Tab, result: dict[str, Any]) -> None:
    assert count(tab, "section[data-target]") == len(result["targets"])
    grid = result["targets"]["resid_pre"]
    svg = 'section[data-target="resid_pre"] svg.heatmap'
    assert count(tab, f"{svg} .row-label") == len(grid["labels"]["layer"]) == 2
    assert texts(tab, f"{svg} .col-label") == result["tokens"]
    # every_block: one heatmap per component (resid_pre, attn_out, mlp_out); attn_out_all_pos: bars per layer.
    assert count(tab, 'section[data-target="every_block"] svg.heatmap') == 3
    assert count(tab, 'section[data-target="attn_out_all_pos"] .bar-row') == 2


def _path_to_logits(tab: Tab, result: dict[str, Any]) -> None:
    assert count(tab, 'section[data-target="senders"] svg.heatmap rect.cell') == 2 * 4
    assert "logits (each sender's direct path)" in tab.page.inner_text(".kind-patching")


def _together(tab: Tab, result: dict[str, Any]) -> None:
    assert count(tab, "section[data-target]") == 0
    (shown,) = texts(tab, ".patched-together dd")
    value, raw = re.fullmatch(r"(\S+) \(raw (\S+)\)", shown).groups()  # type: ignore[union-attr]
    assert float(value) == pytest.approx(result["together"]["value"], rel=1e-5)
    assert float(raw) == pytest.approx(result["together"]["raw_value"], rel=1e-5)


def _path(tab: Tab, result: dict[str, Any]) -> None:
    svg = 'section[data-target="senders"] svg.heatmap'
    assert count(tab, f"{svg} rect.cell") == 2 * 4  # layer × head of the tiny model
    assert "L1H0" in tab.page.inner_text(".kind-patching")  # the receiver


def _token_scores(tab: Tab, result: dict[str, Any]) -> None:
    assert texts(tab, ".tokens .tok") == result["tokens"]


def _integrated_gradients(tab: Tab, result: dict[str, Any]) -> None:
    _token_scores(tab, result)
    completeness = result["checks"]["completeness"]
    shown = tab.page.locator(".completeness")
    assert float(shown.get_attribute("data-sum") or "nan") == pytest.approx(completeness["attribution_sum"])
    assert "relative error" in shown.inner_text() and "expected" in shown.inner_text()


def _direct_logit(tab: Tab, result: dict[str, Any]) -> None:
    components = result["grids"]["components"]
    assert texts(tab, 'section[data-grid="components"] .bar-label') == components["labels"]["component"]
    assert count(tab, 'section[data-grid="heads"] rect.cell') == 2 * 4
    assert tab.page.locator(".decomposition").is_visible()


def _logit_lens(tab: Tab, result: dict[str, Any]) -> None:
    lens = result["logit_lens"]
    assert texts(tab, "table.lens th.hook") == [layer["hook"] for layer in lens]
    assert count(tab, "table.lens td.lens-cell") == sum(len(layer["top_k"]) for layer in lens)


def _layer_ig(tab: Tab, result: dict[str, Any]) -> None:
    grid = result["grids"]["attribution"]  # position × head: heads down, tokens across
    assert texts(tab, 'section[data-grid="attribution"] .col-label') == result["tokens"]
    assert count(tab, 'section[data-grid="attribution"] .row-label') == len(grid["labels"]["head"])


def _head_scores(tab: Tab, result: dict[str, Any]) -> None:
    assert count(tab, "section[data-target]") == len(result["scores"]) == 3
    grid = result["scores"]["induction"]
    cells = len(grid["labels"]["layer"]) * len(grid["labels"]["head"])
    assert count(tab, 'section[data-target="induction"] rect.cell') == cells


def _integrated_gradients_auto(tab: Tab, result: dict[str, Any]) -> None:
    c = result["checks"]["completeness"]
    assert c["converged"] and c["steps_used"] >= 9
    text = tab.page.inner_text(".check.completeness")
    assert "steps used" in text and str(c["steps_used"]) in text


def _sae_encode(tab: Tab, result: dict[str, Any]) -> None:
    encoding = result["prompts"][0]
    assert count(tab, "tr.sae-token") == len(encoding["tokens"])
    assert count(tab, "tr.sae-token .feat") == sum(len(f) for f in encoding["features"])


def _sae_features(tab: Tab, result: dict[str, Any]) -> None:
    for n, prompt in enumerate(result["prompts"]):
        assert texts(tab, f'section[data-prompt="{n}"] .tok') == prompt["tokens"]
    effects = result["logit_effects"]
    assert count(tab, ".effects.promoted .bar-row") == len(effects["promoted"]) == 6
    assert count(tab, ".effects.suppressed .bar-row") == len(effects["suppressed"]) == 6


def _steer(tab: Tab, result: dict[str, Any]) -> None:
    assert texts(tab, ".generation.unsteered .gen-tok") == result["unsteered_tokens"]
    assert texts(tab, ".generation.steered .gen-tok") == result["steered_tokens"]


CHECKS: dict[str, Callable[[Tab, dict[str, Any]], None]] = {
    "activations": _activations, "activations_file": _activations_file, "attention": _attention,
    "patching": _patching, "path_patching": _path, "path_to_logits": _path_to_logits, "heads_together": _together,
    "integrated_gradients": _integrated_gradients,
    "saliency": _token_scores, "direct_logit_attribution": _direct_logit, "logit_lens": _logit_lens,
    "layer_integrated_gradients": _layer_ig, "sae_encode": _sae_encode, "sae_features": _sae_features,
    "steer": _steer, "head_scores": _head_scores, "integrated_gradients_auto": _integrated_gradients_auto,
}


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_is_drawn_without_script_errors(
    service: tuple[Deployment, httpx.Client], tab: Tab, name: str
) -> None:
    dep, client = service
    job = finished(client, KINDS[name])
    tab.open_job(dep.api_url, job["id"], dep.api_key)
    tab.wait_drawn(job["kind"])
    CHECKS[name](tab, job["result"])
    tab.screenshot("page")
    assert tab.errors == []


def test_hovering_a_cell_shows_its_value_and_labels(service: tuple[Deployment, httpx.Client], tab: Tab) -> None:
    dep, client = service
    job = finished(client, KINDS["patching"])
    tab.open_job(dep.api_url, job["id"], dep.api_key)
    tab.wait_drawn("patching")
    grid = job["result"]["targets"]["head_out"]
    tab.page.hover('section[data-target="head_out"] rect.cell[data-row="1"][data-col="2"]')
    tip = tab.page.locator("#tooltip")
    assert tip.is_visible()
    lines = tip.inner_text().splitlines()
    assert lines[0] == "layer 1 · head 2"
    assert lines[1].startswith("effect ")
    assert float(lines[1].split()[1]) == pytest.approx(grid["values"][1][2], abs=5e-3)
    assert float(lines[2].split()[1]) == pytest.approx(grid["raw_values"][1][2], abs=5e-3)
    assert tab.errors == []


def test_a_queued_job_shows_progress_then_its_result(service: tuple[Deployment, httpx.Client], tab: Tab) -> None:
    """With the one worker busy on a slow sweep, the second job's page waits in the queue, follows the event
    stream through running, and draws the result once the job ends; every request carries the typed-in key."""
    dep, client = service
    slow = {"kind": "patching", "model": "slow-gpt2", "answer": "a", "wrong_answer": "b",
            "targets": ["resid_pre", "attn_out", "mlp_out"]}
    blocker = client.post("/v1/jobs", json={**slow, "clean_prompt": "a" * 160, "corrupted_prompt": "b" * 160}).json()
    job = client.post("/v1/jobs", json={**slow, "clean_prompt": "ab" * 80, "corrupted_prompt": "ba" * 80}).json()
    assert job["status"] == "queued", job
    page = tab.page
    tab.type_key(dep.api_url, dep.api_key)
    sent: list[tuple[str, str | None]] = []
    page.on("request", lambda r: sent.append((r.url, r.headers.get("authorization"))) if "/v1/" in r.url else None)
    tab.open_job(dep.api_url, job["id"])
    page.wait_for_selector("progress#progress", timeout=30_000)
    tab.screenshot("waiting")
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + 300
    while count(tab, '#job-result[data-kind="patching"]') == 0:
        assert time.monotonic() < deadline, f"the result never replaced the progress bar; saw {seen[-5:]}"
        state = page.evaluate("() => { const p = document.getElementById('progress');"
                              " return p ? [document.getElementById('status-text').textContent, p.value] : null; }")
        if state is not None:
            seen.append((str(state[0]), float(state[1])))
        page.wait_for_timeout(100)
    assert "Waiting in the queue" in {status for status, _ in seen} or "Running" in {status for status, _ in seen}
    values = [value for _, value in seen]
    assert values == sorted(values) and all(0.0 <= v <= 1.0 for v in values)
    assert count(tab, "progress#progress") == 0
    assert count(tab, 'section[data-target="resid_pre"] .row-label') == 4  # slow-gpt2's layers
    assert page.inner_text("#status-badge") == "succeeded"
    tab.screenshot("finished")
    assert any(url.endswith(f"/v1/jobs/{job['id']}/events") for url, _ in sent)
    assert sent and all(key == f"Bearer {dep.api_key}" for _, key in sent), sent
    assert client.get(f"/v1/jobs/{blocker['id']}", params={"wait": 60}).json()["status"] == "succeeded"
    assert tab.errors == []


def test_a_failed_job_shows_its_error_code_and_message(service: tuple[Deployment, httpx.Client], tab: Tab) -> None:
    dep, client = service
    body = {"kind": "attribution", "model": "broken-gpt2", "prompt": "hi", "target": {"token": "a"}}
    job = client.post("/v1/jobs", json=body, params={"wait": 60}).json()
    assert job["status"] == "failed", job
    tab.open_job(dep.api_url, job["id"], dep.api_key)
    tab.page.wait_for_selector("#job-error")
    assert tab.page.inner_text("#job-error .error-code") == job["error"]["code"] == "model_load_failed"
    assert tab.page.inner_text("#job-error .error-message") == job["error"]["message"]
    tab.screenshot("failed")
    assert tab.errors == []


def test_the_form_submits_a_job_and_opens_its_page(service: tuple[Deployment, httpx.Client], tab: Tab) -> None:
    dep, _ = service
    page = tab.page
    tab.type_key(dep.api_url, dep.api_key)
    page.wait_for_selector("#model option[value='tiny-gpt2']", state="attached")
    kinds = page.eval_on_selector_all("#kind option", "nodes => nodes.map(n => n.value)")
    assert set(kinds) == set(KIND_TABLE)  # the kinds the OpenAPI document lists
    page.select_option("#model", "tiny-gpt2")
    page.select_option("#kind", "sae_encode")
    assert '"sae": "res-1"' in page.input_value("#body")  # the model's first SAE filled in
    tab.screenshot("form")
    page.fill("#body", '{"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "hi", "sae": "res-1", "colour": 1}')
    page.click("#submit")
    page.wait_for_selector("#submit-error:not([hidden])")
    assert "invalid_request" in page.inner_text("#submit-error") and "colour" in page.inner_text("#submit-error")
    page.fill("#body", '{"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "hi", "sae": "res-1", "top_k": 3}')
    page.click("#submit")
    page.wait_for_url("**/ui/jobs/*")
    tab.wait_drawn("sae_encode")
    assert count(tab, "tr.sae-token") == 3  # <bos>, h, i
    # Chromium logs the refused submission's 400 as a failed resource; nothing else may have been logged.
    assert [e for e in tab.errors if "status of 400" not in e] == []
    assert len(tab.errors) == 1

