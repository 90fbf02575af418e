"""Real results as numpy arrays, tidy pandas frames and plotly figures, checked cell by cell against the typed
result they came from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from interp_client import Client, models

from tests.client.conftest import PATCHING

pytestmark = pytest.mark.integration

TEXT = "The cat sat on the"


@pytest.fixture(scope="module")
def patching(service: Any) -> models.PatchingResult:
    with Client(service.url, api_key=service.api_key, timeout=60) as client:
        body = {**PATCHING, "targets": ["resid_pre", "head_out", "head_out_by_pos", "every_block"]}
        return client.patching(**body).result(timeout=120)


def _attribution(service: Any, method: str) -> models.AttributionResult:
    with Client(service.url, api_key=service.api_key, timeout=60) as client:
        return client.attribution(model="tiny-gpt2", prompt=TEXT, target={"contrast": [" ", "m"]}, method=method,
                                  n_steps=8).result(timeout=120)


def test_patching_to_numpy(patching: models.PatchingResult) -> None:
    arrays = patching.to_numpy()
    n = len(patching.tokens)
    assert {k: v.shape for k, v in arrays.items()} == {
        "resid_pre": (2, n), "head_out": (2, 4), "head_out_by_pos": (2, n, 4), "every_block": (3, 2, n)}
    grid = patching.targets["head_out_by_pos"]
    assert arrays["head_out_by_pos"][1, 3, 2] == grid.values[1][3][2]
    assert np.array_equal(patching.to_numpy(raw=True)["resid_pre"], np.array(patching.targets["resid_pre"].raw_values))
    assert np.array_equal(grid.to_numpy(), arrays["head_out_by_pos"])


def test_patching_to_pandas_is_one_row_per_cell_with_labels(patching: models.PatchingResult) -> None:
    frame = patching.to_pandas()
    n = len(patching.tokens)
    assert len(frame) == 2 * n + 2 * 4 + 2 * n * 4 + 3 * 2 * n
    assert frame.groupby("target").size().to_dict() == {"resid_pre": 2 * n, "head_out": 8, "head_out_by_pos": 8 * n,
                                                        "every_block": 6 * n}
    cell = frame[(frame.target == "resid_pre") & (frame.layer == 1) & (frame.position == 3)].iloc[0]
    grid = patching.targets["resid_pre"]
    assert cell.value == grid.values[1][3] and cell.raw_value == grid.raw_values[1][3]
    assert (cell.position_label, cell.token) == ("3: e", patching.tokens[3])
    head = frame[(frame.target == "head_out") & (frame.layer == 0) & (frame["head"] == 2)].iloc[0]
    assert head.value == patching.targets["head_out"].values[0][2] and pd.isna(head.position)
    block = frame[(frame.target == "every_block") & (frame.component == 1) & (frame.layer == 0) & (frame.position == 5)]
    assert block.iloc[0].component_label == "attn_out"
    assert block.iloc[0].value == patching.targets["every_block"].values[1][0][5]


def test_patching_figure_is_a_heatmap_per_target_centred_on_zero(patching: models.PatchingResult) -> None:
    figure = patching.figure()
    heatmaps = [trace for trace in figure.data if trace.type == "heatmap"]
    titles = [a.text for a in figure.layout.annotations]
    assert titles[:3] == ["resid_pre", "head_out", "head_out_by_pos"] and len(heatmaps) == len(titles) == 6
    resid = heatmaps[0]
    assert list(resid.y) == ["0", "1"] and list(resid.x) == patching.targets["resid_pre"].labels["position"]
    assert [list(row) for row in resid.z] == patching.targets["resid_pre"].values
    assert figure.layout.coloraxis.cmid == 0.0 and figure.layout.coloraxis.colorscale[0][1] == "rgb(103,0,31)"
    assert heatmaps[2].x[0] == "0: <bos> · 0"  # position · head across
    assert titles[3:] == ["every_block: resid_pre", "every_block: attn_out", "every_block: mlp_out"]


def test_attribution_scores(service: Any) -> None:
    result = _attribution(service, "saliency")
    assert np.array_equal(result.to_numpy()["scores"], np.array(result.scores))
    frame = result.to_pandas()
    assert list(frame.columns) == ["position", "token", "token_id", "score"]
    assert frame.token.tolist() == result.tokens and frame.score.tolist() == result.scores
    bars = result.figure().data[0]
    assert bars.type == "bar" and list(bars.y) == result.scores and bars.x[1] == f"1: {result.tokens[1]}"


def test_direct_logit_attribution_components(service: Any) -> None:
    result = _attribution(service, "direct_logit_attribution")
    assert result.grids is not None
    components = result.grids["components"]
    assert result.to_numpy()["heads"].shape == (2, 4)
    frame = result.to_pandas()
    rows = frame[frame.grid == "components"]
    assert rows.component_label.tolist() == components.labels["component"]
    assert rows.value.tolist() == components.values
    bars = result.figure().data[0]
    assert bars.type == "bar" and list(bars.x) == components.labels["component"] and list(bars.y) == components.values


def test_logit_lens_table(service: Any) -> None:
    result = _attribution(service, "logit_lens")
    lens = result.logit_lens or []
    frame = result.to_pandas()
    assert len(frame) == sum(len(layer.targets) + len(layer.top_k) for layer in lens)
    top = frame[(frame.layer == 0) & (frame["list"] == "top_k") & (frame["rank"] == 1)].iloc[0]
    assert (top.token, top.probability) == (lens[0].top_k[0].token, lens[0].top_k[0].probability)
    table = result.figure().data[0]
    assert table.type == "table" and list(table.cells.values[0]) == [layer.hook for layer in lens]


def test_sae_results(service: Any) -> None:
    with Client(service.url, api_key=service.api_key, timeout=60) as client:
        encoded = client.sae_encode(model="tiny-gpt2", prompts=["Features here", "and there"], sae="res-1",
                                    top_k=3).result(timeout=120)
        feature = client.sae_features(model="tiny-gpt2", prompt="Once upon", sae="res-1", feature=7).result(timeout=120)
    frame = encoded.to_pandas()
    assert len(frame) == 3 * sum(len(p.tokens) for p in encoded.prompts)
    row = frame[(frame.prompt == 1) & (frame.position == 2) & (frame["rank"] == 0)].iloc[0]
    best = encoded.prompts[1].features[2][0]
    assert (row.token, row.feature, row.activation) == (encoded.prompts[1].tokens[2], best.feature, best.activation)
    bars = encoded.figure().data
    assert [b.type for b in bars] == ["bar", "bar"] and max(bars[0].y) == max(
        f.activation for token in encoded.prompts[0].features for f in token)
    assert np.array_equal(feature.to_numpy()[0], np.array(feature.prompts[0].activations))
    assert feature.to_pandas().activation.tolist() == feature.prompts[0].activations
    assert list(feature.figure().data[0].y) == feature.prompts[0].activations


def test_steer_result(service: Any) -> None:
    with Client(service.url, api_key=service.api_key, timeout=60) as client:
        result = client.steer(model="tiny-gpt2", prompt="Once upon", sae="res-1", feature=7, coefficient=8.0,
                              max_new_tokens=4).result(timeout=120)
    frame = result.to_pandas()
    assert frame[frame.variant == "steered"].token.tolist() == result.steered_tokens
    assert list(result.figure().data[0].cells.values[1]) == [result.prompt, result.unsteered_text, result.steered_text]
