"""Results drawn with plotly (the ``plotly`` extra), as evaluation dashboards embed them.

Patching: one heatmap per target, the leading axis (layer) down and the others across with their token labels, on
a diverging scale centred on 0. Attribution: token scores as bars, direct logit attribution as a component bar
chart, the logit lens as a table. SAE encodings and single features as bars; steering as a table of both texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("figure needs plotly: pip install 'interp-client[plotly]'") from exc

from interp_client.cells import GridLike, shape, value_at

if TYPE_CHECKING:
    from interp_client.models import AttributionResult, PatchingResult, SaeEncodeResult, SaeFeaturesResult, SteerResult

__all__ = ["attribution_figure", "feature_figure", "grid_heatmap", "patching_figure", "sae_figure", "steer_figure"]

DIVERGING = "RdBu"
TOP_FEATURES = 20


def _labels(grid: GridLike, axis: str, size: int) -> list[str]:
    labels = grid.labels.get(axis) or []
    return [str(label) for label in labels] if len(labels) == size else [str(i) for i in range(size)]


def _matrix(grid: GridLike, values: list[Any]) -> tuple[list[str], list[str], list[list[Any]]]:
    """Rows (the leading axis), columns (the others, flattened: ``"3: Mary · 2"``) and the values between."""
    sizes = shape(values, len(grid.axes))
    if len(sizes) == 1:
        return ["value"], _labels(grid, grid.axes[0], sizes[0]), [list(values)]
    rows = _labels(grid, grid.axes[0], sizes[0])
    columns: list[tuple[list[int], str]] = [([], "")]
    for axis, size in zip(grid.axes[1:], sizes[1:], strict=True):
        names = _labels(grid, axis, size)
        columns = [([*index, i], f"{label} · {names[i]}" if label else names[i])
                   for index, label in columns for i in range(size)]
    z = [[value_at(values, [r, *index]) for index, _ in columns] for r in range(sizes[0])]
    return rows, [label for _, label in columns], z


def grid_heatmap(grid: GridLike, *, name: str = "", coloraxis: str = "coloraxis") -> go.Heatmap:
    rows, columns, z = _matrix(grid, grid.values)
    return go.Heatmap(
        z=z, x=columns, y=rows, coloraxis=coloraxis, name=name,
        hovertemplate=f"{grid.axes[0]} %{{y}}<br>{' · '.join(grid.axes[1:])} %{{x}}<br>%{{z:.4g}}<extra>{name}</extra>",
    )


def _panels(result: PatchingResult) -> list[tuple[str, GridLike]]:
    """One panel per target; a grid led by ``component`` (``every_block``) gives one panel per component."""
    panels: list[tuple[str, GridLike]] = []
    for name, grid in result.targets.items():
        if grid.axes[0] == "component" and len(grid.axes) > 1:
            for i, component in enumerate(grid.labels.get("component", [])):
                part = grid.model_copy(update={"axes": grid.axes[1:], "values": grid.values[i]})
                panels.append((f"{name}: {component}", part))
        else:
            panels.append((name, grid))
    return panels


def patching_figure(result: PatchingResult) -> go.Figure:
    panels = _panels(result)
    figure = make_subplots(rows=len(panels), cols=1, subplot_titles=[name for name, _ in panels],
                           vertical_spacing=min(0.6 / len(panels), 0.12))  # room for slanted token labels
    for row, (name, grid) in enumerate(panels, start=1):
        figure.add_trace(grid_heatmap(grid, name=name), row=row, col=1)
        figure.update_yaxes(title_text=grid.axes[0], autorange="reversed", type="category", row=row, col=1)
        figure.update_xaxes(type="category", tickangle=-45, row=row, col=1)
    unit = "normalised effect" if result.normalised else result.metric
    figure.update_layout(
        coloraxis={"colorscale": DIVERGING, "cmid": 0.0, "colorbar": {"title": {"text": unit}}},
        height=max(360, 320 * len(panels)),
        title={"text": f"activation patching ({result.method}, {result.direction}): {result.metric}"},
    )
    return figure


def _token_labels(tokens: list[str]) -> list[str]:
    return [f"{i}: {token}" for i, token in enumerate(tokens)]


def attribution_figure(result: AttributionResult) -> go.Figure:
    title = f"{result.method}: {result.target.description}"
    if result.logit_lens:
        header = ["layer", "value", *(f"p({t.token!r})" for t in result.logit_lens[0].targets), "top tokens"]
        columns = [
            [lens.hook for lens in result.logit_lens],
            [f"{lens.value:.4g}" for lens in result.logit_lens],
            *([f"{lens.targets[i].probability:.3g} (#{lens.targets[i].rank})" for lens in result.logit_lens]
              for i in range(len(result.logit_lens[0].targets))),
            [", ".join(f"{t.token!r} {t.probability:.2f}" for t in lens.top_k[:5]) for lens in result.logit_lens],
        ]
        figure = go.Figure(go.Table(header={"values": header}, cells={"values": columns}))
    elif result.scores is not None:
        figure = go.Figure(go.Bar(x=_token_labels(result.tokens), y=result.scores, name="score"))
        figure.update_xaxes(type="category", tickangle=-45, title_text="token")
        figure.update_yaxes(title_text="attribution")
    elif result.grids and "components" in result.grids:
        grid = result.grids["components"]
        figure = go.Figure(go.Bar(x=[str(label) for label in grid.labels.get("component", [])], y=grid.values))
        figure.update_xaxes(type="category", tickangle=-45, title_text="component")
        figure.update_yaxes(title_text="direct logit attribution")
    else:
        name, grid = next(iter((result.grids or {}).items()))
        figure = go.Figure(grid_heatmap(grid, name=name))
        figure.update_layout(coloraxis={"colorscale": DIVERGING, "cmid": 0.0})
        figure.update_yaxes(autorange="reversed", type="category")
    figure.update_layout(title={"text": title})
    return figure


def sae_figure(result: SaeEncodeResult) -> go.Figure:
    """Per prompt, the features with the largest activation on any token (bars), the token named on hover."""
    figure = make_subplots(rows=len(result.prompts), cols=1, subplot_titles=[p.prompt[:80] for p in result.prompts])
    for row, encoding in enumerate(result.prompts, start=1):
        best: dict[int, tuple[float, str]] = {}
        for position, (token, features) in enumerate(zip(encoding.tokens, encoding.features, strict=True)):
            for item in features:
                if item.feature not in best or item.activation > best[item.feature][0]:
                    best[item.feature] = (item.activation, f"{position}: {token}")
        top = sorted(best.items(), key=lambda kv: -kv[1][0])[:TOP_FEATURES]
        figure.add_trace(go.Bar(x=[f"f{feature}" for feature, _ in top], y=[a for _, (a, _) in top],
                                hovertext=[where for _, (_, where) in top], name=f"prompt {row - 1}"),
                         row=row, col=1)
        figure.update_xaxes(type="category", row=row, col=1)
        figure.update_yaxes(title_text="max activation", row=row, col=1)
    figure.update_layout(title={"text": f"{result.sae} on {result.hook}: top features"}, showlegend=False,
                         height=max(320, 280 * len(result.prompts)))
    return figure


def feature_figure(result: SaeFeaturesResult) -> go.Figure:
    """The feature's activation at each token, as bars, one panel per prompt."""
    figure = make_subplots(rows=len(result.prompts), cols=1)
    for row, prompt in enumerate(result.prompts, start=1):
        figure.add_trace(go.Bar(x=_token_labels(prompt.tokens), y=prompt.activations, name=f"prompt {row - 1}"),
                         row=row, col=1)
        figure.update_xaxes(type="category", tickangle=-45, row=row, col=1)
    figure.update_layout(title={"text": f"feature {result.feature} of {result.sae} ({result.hook})"},
                         showlegend=False, height=max(320, 280 * len(result.prompts)))
    return figure


def steer_figure(result: SteerResult) -> go.Figure:
    how = f"clamped at {result.clamp}" if result.clamp is not None else f"× {result.coefficient}"
    figure = go.Figure(go.Table(
        header={"values": ["", "text"]},
        cells={"values": [["prompt", "unsteered", f"steered (feature {result.feature} {how})"],
                          [result.prompt, result.unsteered_text, result.steered_text]]},
    ))
    figure.update_layout(title={"text": f"steering with {result.sae} feature {result.feature}"})
    return figure
