"""Results as tidy pandas frames (the ``pandas`` extra): one row per cell, token, feature or listed token.

Axis columns hold indexes (``layer``, ``position``, ``head``, …); an axis whose labels say more than the index gets
an ``{axis}_label`` column beside it (``position_label`` is ``"3: Mary"``), and a ``position`` axis a ``token``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("to_pandas needs pandas: pip install 'interp-client[pandas]'") from exc

from interp_client.cells import GridLike, cells

if TYPE_CHECKING:
    from interp_client.models import (
        AttributionResult,
        PatchGrid,
        PatchingResult,
        SaeEncodeResult,
        SaeFeaturesResult,
        SteerResult,
    )

__all__ = [
    "attribution_frame",
    "feature_frame",
    "grid_frame",
    "patching_frame",
    "sae_frame",
    "steer_frame",
]


def _frame(rows: Iterable[dict[str, Any]], *, int_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Rows as a frame; index columns missing in some rows stay integers (pandas' nullable ``Int64``)."""
    frame = pd.DataFrame(list(rows))
    for column in int_columns:
        if column in frame and frame[column].isna().any():
            frame[column] = frame[column].astype("Int64")
    return frame


def _grid_rows(grid: GridLike, tokens: list[str] | None, /, **extra: Any) -> Iterable[dict[str, Any]]:
    raw = getattr(grid, "raw_values", None)
    for coords, entries in cells(grid, grid.values, *([raw] if raw is not None else [])):
        row = {**extra, **coords}
        if tokens is not None and "position" in coords and coords["position"] < len(tokens):
            row["token"] = tokens[coords["position"]]
        row["value"] = entries[0]
        if raw is not None:
            row["raw_value"] = entries[1]
        yield row


def grid_frame(grid: GridLike, tokens: list[str] | None = None) -> pd.DataFrame:
    """One row per cell: the axis indexes (and labels), ``value`` (and ``raw_value`` for a patching grid)."""
    return _frame(_grid_rows(grid, tokens), int_columns=grid.axes)


def patching_frame(result: PatchingResult) -> pd.DataFrame:
    """Every target's cells: ``target``, its axes (``layer``, ``position``, ``head``, …), ``value``, ``raw_value``."""
    targets: dict[str, PatchGrid] = result.targets
    axes = {axis for grid in targets.values() for axis in grid.axes}
    rows = (row for name, grid in targets.items() for row in _grid_rows(grid, result.tokens, target=name))
    return _frame(rows, int_columns=axes)


def attribution_frame(result: AttributionResult) -> pd.DataFrame:
    """Logit lens: one row per layer and listed token; gradient methods: one row per token with its ``score``;
    direct logit attribution and other grid methods: every grid's cells, named in ``grid``."""
    if result.logit_lens:
        return _frame(
            {"layer": layer, "hook": lens.hook, "value": lens.value, "list": listed, "rank": ranked.rank,
             "token": ranked.token, "token_id": ranked.token_id, "probability": ranked.probability}
            for layer, lens in enumerate(result.logit_lens)
            for listed, tokens in (("target", lens.targets), ("top_k", lens.top_k))
            for ranked in tokens
        )
    if result.scores is not None:
        return _frame(
            {"position": i, "token": token, "token_id": token_id, "score": score}
            for i, (token, token_id, score) in enumerate(zip(result.tokens, result.token_ids, result.scores,
                                                            strict=True))
        )
    grids = result.grids or {}
    axes = {axis for grid in grids.values() for axis in grid.axes}
    return _frame((row for name, grid in grids.items() for row in _grid_rows(grid, result.tokens, grid=name)),
                  int_columns=axes)


def sae_frame(result: SaeEncodeResult) -> pd.DataFrame:
    """One row per prompt, token and listed feature: ``rank`` 0 is the token's largest; ``l0`` and ``token_mse``
    are the token's."""
    return _frame(
        {"prompt": p, "position": position, "token": token, "rank": rank, "feature": item.feature,
         "activation": item.activation, "l0": encoding.l0[position], "token_mse": encoding.token_mse[position]}
        for p, encoding in enumerate(result.prompts)
        for position, (token, features) in enumerate(zip(encoding.tokens, encoding.features, strict=True))
        for rank, item in enumerate(features)
    )


def feature_frame(result: SaeFeaturesResult) -> pd.DataFrame:
    """One row per prompt and token: the feature's ``activation`` there."""
    return _frame(
        {"prompt": p, "position": position, "token": token, "activation": activation}
        for p, prompt in enumerate(result.prompts)
        for position, (token, activation) in enumerate(zip(prompt.tokens, prompt.activations, strict=True))
    )


def steer_frame(result: SteerResult) -> pd.DataFrame:
    """One row per generated token of each ``variant`` (``unsteered``, ``steered``)."""
    return _frame(
        {"variant": variant, "position": position, "token": token}
        for variant, tokens in (("unsteered", result.unsteered_tokens), ("steered", result.steered_tokens))
        for position, token in enumerate(tokens)
    )
