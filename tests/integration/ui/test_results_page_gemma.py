"""The results pages on Gemma 3 270M: the IOI patching heatmaps, integrated gradients over the prompt's tokens, and
the default SAE's features per token, each checked against the job's JSON in headless Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Deployment, make_deployment
from tests.integration.ui.conftest import Tab

pytestmark = [pytest.mark.integration, pytest.mark.gemma]

GEMMA = "gemma-3-270m"
CLEAN = "When Mary and John went to the store, John gave a drink to"
IOI = {
    "kind": "patching",
    "model": GEMMA,
    "clean_prompt": CLEAN,
    "corrupted_prompt": "When Mary and John went to the store, Mary gave a drink to",
    "answer": " Mary",
    "wrong_answer": " John",
    "targets": ["resid_pre", "head_out"],
}


@pytest.fixture(scope="module")
def gemma_service(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path
) -> Iterator[tuple[Deployment, httpx.Client]]:
    """The default registry (Gemma and its SAE res-6) on one worker: the first conversion of the GGUF takes about
    a minute and a half, later loads seconds."""
    dep = make_deployment(redis_url, tmp_path_factory.mktemp("gemma-ui"), INTERP_CACHE_DIR=str(model_cache_dir),
                          INTERP_JOB_MEMORY_BYTES=str(8 * 1024**3))
    del dep.env["INTERP_REGISTRY"]
    dep.env["INTERP_MODEL_GROUPS"] = f"{GEMMA}={dep.group(GEMMA)}"
    try:
        dep.start_worker(models=(GEMMA,))
        url = dep.start_api()
        with dep.http(url, timeout=300) as client:
            yield dep, client
    finally:
        dep.stop()
        dep.redis.delete(f"interp.models.{dep.group(GEMMA)}")


def finished(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """The job once it ended (long-polls are capped at a minute; the first job may wait for Gemma to load)."""
    job: dict[str, Any] = client.post("/v1/jobs", json=body, params={"wait": 60}).json()
    deadline = time.monotonic() + 600
    while job.get("status") in ("queued", "running") and time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job['id']}", params={"wait": 60}).json()
    assert job.get("status") == "succeeded", job
    return job


def texts(tab: Tab, selector: str) -> list[str]:
    return [str(t) for t in tab.page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.textContent)")]


def hover_tip(tab: Tab, selector: str) -> list[str]:
    tab.page.hover(selector)
    tip = tab.page.locator("#tooltip")
    assert tip.is_visible()
    return tip.inner_text().splitlines()


def test_ioi_patching_heatmaps(gemma_service: tuple[Deployment, httpx.Client], tab: Tab) -> None:
    dep, client = gemma_service
    job = finished(client, IOI)
    result = job["result"]
    tab.open_job(dep.api_url, job["id"], dep.api_key)
    tab.wait_drawn("patching", timeout_s=30)
    resid = 'section[data-target="resid_pre"] svg.heatmap'
    assert len(texts(tab, f"{resid} .row-label")) == 18
    assert texts(tab, f"{resid} .col-label") == result["tokens"]
    grid = result["targets"]["resid_pre"]["values"]
    # The second " John" (position 10) at layer 4: where the clean answer is carried before it moves to the end.
    position = max(i for i, t in enumerate(result["tokens"]) if t == " John")
    lines = hover_tip(tab, f'{resid} rect.cell[data-row="4"][data-col="{position}"]')
    assert lines[0] == f'layer 4 · position {position} " John"'
    assert abs(float(lines[1].split()[1]) - grid[4][position]) < 0.005
    heads = 'section[data-target="head_out"] svg.heatmap'
    assert (len(texts(tab, f"{heads} .row-label")), texts(tab, f"{heads} .col-label")) == (18, ["0", "1", "2", "3"])
    head_values = result["targets"]["head_out"]["values"]
    lines = hover_tip(tab, f'{heads} rect.cell[data-row="9"][data-col="1"]')
    assert lines[0] == "layer 9 · head 1"
    assert abs(float(lines[1].split()[1]) - head_values[9][1]) < 0.005
    tab.screenshot("ioi")
    assert tab.errors == []


def test_integrated_gradients_tokens_and_completeness(
    gemma_service: tuple[Deployment, httpx.Client], tab: Tab
) -> None:
    dep, client = gemma_service
    body = {"kind": "attribution", "model": GEMMA, "prompt": CLEAN, "target": {"contrast": [" Mary", " John"]},
            "method": "integrated_gradients", "n_steps": 32}
    job = finished(client, body)
    result = job["result"]
    tab.open_job(dep.api_url, job["id"], dep.api_key)
    tab.wait_drawn("attribution", timeout_s=30)
    tokens = tab.page.locator(".tokens .tok")
    assert texts(tab, ".tokens .tok") == result["tokens"]
    scores = result["scores"]
    top, bottom = scores.index(max(scores)), scores.index(min(scores))
    colour = "n => getComputedStyle(n).backgroundColor"
    assert tokens.nth(top).evaluate(colour) != tokens.nth(bottom).evaluate(colour)
    assert abs(float(hover_tip(tab, f'.tokens .tok[data-index="{top}"]')[1].split()[1]) - scores[top]) < 0.005
    completeness = result["checks"]["completeness"]
    shown = tab.page.locator(".completeness")
    text = shown.inner_text()
    assert "sum of attributions" in text and "expected" in text and "relative error" in text
    assert float(shown.get_attribute("data-sum") or "nan") == pytest.approx(completeness["attribution_sum"])
    assert float(shown.get_attribute("data-expected") or "nan") == pytest.approx(completeness["expected"])
    assert float(shown.get_attribute("data-relative-error") or "nan") == pytest.approx(completeness["relative_error"])
    tab.screenshot("integrated-gradients")
    assert tab.errors == []


def test_sae_features_per_token(gemma_service: tuple[Deployment, httpx.Client], tab: Tab) -> None:
    dep, client = gemma_service
    body = {"kind": "sae_encode", "model": GEMMA, "prompt": "The Eiffel Tower is in Paris", "sae": "res-6",
            "top_k": 5}
    job = finished(client, body)
    encoding = job["result"]["prompts"][0]
    tab.open_job(dep.api_url, job["id"], dep.api_key)
    tab.wait_drawn("sae_encode", timeout_s=30)
    rows = tab.page.locator("tr.sae-token")
    assert rows.count() == len(encoding["tokens"])
    for i, features in enumerate(encoding["features"]):
        shown = rows.nth(i).locator(".feat")
        assert shown.count() == len(features) == 5
        assert [int(v) for v in shown.evaluate_all("ns => ns.map(n => n.dataset.feature)")] == [
            f["feature"] for f in features
        ]
    widths = tab.page.eval_on_selector_all(".feat-bar", "ns => ns.map(n => parseFloat(n.style.width))")
    assert max(widths) == pytest.approx(100.0) and min(widths) > 0
    tab.screenshot("sae-encode")
    assert tab.errors == []
