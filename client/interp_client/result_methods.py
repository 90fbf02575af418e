"""What analysis code does with a result: ``to_numpy()``, ``to_pandas()``, ``figure()``.

These classes are the bases of the generated result models (``scripts/generate_models.py`` maps them), so the
object ``job.result()`` returns converts itself. They hold no fields; each method hands the model to the module of
its extra (``arrays``, ``frames``, ``figures``), imported only when called, so the client itself needs none of
numpy, pandas or plotly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pydantic import BaseModel

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go
    from numpy.typing import NDArray

    from interp_client import models

__all__ = [
    "AttributionMethods",
    "GridMethods",
    "PatchGridMethods",
    "PatchingMethods",
    "SaeEncodeMethods",
    "SaeFeaturesMethods",
    "SteerMethods",
]


class GridMethods(BaseModel):
    """Numbers over named axes."""

    def to_numpy(self) -> NDArray[np.float64]:
        """The values in ``axes`` order, NaN where undefined."""
        from interp_client.arrays import to_array

        return to_array(cast("models.Grid", self).values)

    def to_pandas(self, tokens: list[str] | None = None) -> pd.DataFrame:
        """One row per cell (axis indexes, their labels, ``value``); ``tokens`` adds a ``token`` column."""
        from interp_client.frames import grid_frame

        return grid_frame(cast("models.Grid", self), tokens)

    def figure(self) -> go.Figure:
        """A heatmap: the leading axis down, the others across, centred on 0."""
        import plotly.graph_objects as go

        from interp_client.figures import DIVERGING, grid_heatmap

        figure = go.Figure(grid_heatmap(cast("models.Grid", self)))
        figure.update_layout(coloraxis={"colorscale": DIVERGING, "cmid": 0.0})
        return figure


class PatchGridMethods(GridMethods):
    """A patching sweep over named axes."""

    def to_numpy(self, *, raw: bool = False) -> NDArray[np.float64]:
        """Normalised effects in ``axes`` order (``raw``: the patched metric itself), NaN where undefined."""
        from interp_client.arrays import to_array

        grid = cast("models.PatchGrid", self)
        return to_array(grid.raw_values if raw else grid.values)


class PatchingMethods(BaseModel):
    def to_numpy(self, *, raw: bool = False) -> dict[str, NDArray[np.float64]]:
        """Each target's grid as an array (``raw``: the patched metric rather than the normalised effect)."""
        from interp_client.arrays import patching_arrays

        return patching_arrays(cast("models.PatchingResult", self), raw=raw)

    def to_pandas(self) -> pd.DataFrame:
        """One row per cell of every target: target, layer, position, head, …, their labels, value, raw_value."""
        from interp_client.frames import patching_frame

        return patching_frame(cast("models.PatchingResult", self))

    def figure(self) -> go.Figure:
        """A heatmap per target, layer × position (× head), token labels, diverging scale centred on 0."""
        from interp_client.figures import patching_figure

        return patching_figure(cast("models.PatchingResult", self))


class AttributionMethods(BaseModel):
    def to_numpy(self) -> dict[str, NDArray[np.float64]]:
        """``scores`` (one per token) when the method has them, and each grid by name."""
        from interp_client.arrays import attribution_arrays

        return attribution_arrays(cast("models.AttributionResult", self))

    def to_pandas(self) -> pd.DataFrame:
        """Token scores, the grids' cells, or the logit lens's listed tokens, by method."""
        from interp_client.frames import attribution_frame

        return attribution_frame(cast("models.AttributionResult", self))

    def figure(self) -> go.Figure:
        """Token scores as bars, direct logit attribution as a component bar chart, the logit lens as a table."""
        from interp_client.figures import attribution_figure

        return attribution_figure(cast("models.AttributionResult", self))


class SaeEncodeMethods(BaseModel):
    def to_pandas(self) -> pd.DataFrame:
        """One row per prompt, token and listed feature, with the token's L0 and reconstruction error."""
        from interp_client.frames import sae_frame

        return sae_frame(cast("models.SaeEncodeResult", self))

    def figure(self) -> go.Figure:
        """Per prompt, the most active features as bars."""
        from interp_client.figures import sae_figure

        return sae_figure(cast("models.SaeEncodeResult", self))


class SaeFeaturesMethods(BaseModel):
    def to_numpy(self) -> list[NDArray[np.float64]]:
        """The feature's activation at each token, one array per prompt."""
        from interp_client.arrays import feature_arrays

        return feature_arrays(cast("models.SaeFeaturesResult", self))

    def to_pandas(self) -> pd.DataFrame:
        from interp_client.frames import feature_frame

        return feature_frame(cast("models.SaeFeaturesResult", self))

    def figure(self) -> go.Figure:
        """The feature's activation per token as bars."""
        from interp_client.figures import feature_figure

        return feature_figure(cast("models.SaeFeaturesResult", self))


class SteerMethods(BaseModel):
    def to_pandas(self) -> pd.DataFrame:
        """One row per generated token, unsteered and steered."""
        from interp_client.frames import steer_frame

        return steer_frame(cast("models.SteerResult", self))

    def figure(self) -> go.Figure:
        """Both texts in a table."""
        from interp_client.figures import steer_figure

        return steer_figure(cast("models.SteerResult", self))
