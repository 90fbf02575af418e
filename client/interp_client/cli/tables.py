"""Results, jobs and models as plain-text tables for a terminal: the few numbers a person reads first."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from interp_client import models
from interp_client.cells import GridLike, cells
from interp_client.kinds import JobRecord

__all__ = ["job_table", "model_table", "render_job"]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    text = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in text)]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(cells_: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells_, widths, numeric,
                                                                              strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in text)])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _token(token: str) -> str:
    return json.dumps(token, ensure_ascii=False)


def _top_cells(grid: GridLike, top: int) -> str:
    """The ``top`` cells of largest magnitude, each with its axis labels."""
    raw = getattr(grid, "raw_values", None)
    found = []
    for coords, entries in cells(grid, grid.values, *([raw] if raw is not None else [])):
        if entries[0] is not None:
            found.append(([coords.get(f"{axis}_label", coords[axis]) for axis in grid.axes], entries))
    found.sort(key=lambda item: -abs(item[1][0]))
    headers = [*grid.axes, "value", *(["raw"] if raw is not None else [])]
    return table(headers, [[*labels, *entries] for labels, entries in found[:top]])


def _patching(result: models.PatchingResult, top: int) -> str:
    effect = "normalised effect" if result.normalised else "raw metric (clean equals corrupted)"
    parts = [f"{result.method} patching ({result.direction}), {result.metric}: clean {result.clean_metric:.4g}, "
             f"corrupted {result.corrupted_metric:.4g}; values are the {effect}"]
    for name, grid in result.targets.items():
        parts.append(f"\n{name}: top {top} of {len(list(cells(grid)))} cells")
        parts.append(_top_cells(grid, top))
    return "\n".join(parts)


def _attribution(result: models.AttributionResult, top: int) -> str:
    parts = [f"{result.method}: {result.target.description} = {result.target.value:.4g}"]
    if result.logit_lens:
        rows = [[lens.hook, lens.value, *(f"{t.probability:.3g} (#{t.rank})" for t in lens.targets),
                 ", ".join(f"{_token(t.token)} {t.probability:.2f}" for t in lens.top_k[:5])]
                for lens in result.logit_lens]
        targets = [f"p({_token(t.token)})" for t in result.logit_lens[0].targets]
        parts.append(table(["hook", "value", *targets, "top tokens"], rows))
    elif result.scores is not None:
        peak = max((abs(s) for s in result.scores if s is not None), default=0.0) or 1.0
        rows = [[i, _token(token), score, "#" * round(20 * abs(score or 0.0) / peak)]
                for i, (token, score) in enumerate(zip(result.tokens, result.scores, strict=True))]
        parts.append(table(["pos", "token", "score", ""], rows))
    for name, grid in ({} if result.logit_lens else result.grids or {}).items():  # the lens table says it all
        parts.append(f"\n{name}: top {top}")
        parts.append(_top_cells(grid, top))
    return "\n".join(parts)


def _sae_encode(result: models.SaeEncodeResult, top: int) -> str:
    ev = result.reconstruction.explained_variance
    parts = [f"{result.sae} on {result.hook}: mse {result.reconstruction.mse:.4g}, explained variance "
             f"{_cell(ev)} over {result.reconstruction.tokens} tokens"]
    for encoding in result.prompts:
        parts.append(f"\n{_token(encoding.prompt)}")
        rows = [[i, _token(token), l0, ", ".join(f"f{f.feature} {f.activation:.3g}" for f in features[:top])]
                for i, (token, l0, features) in enumerate(zip(encoding.tokens, encoding.l0, encoding.features,
                                                               strict=True))]
        parts.append(table(["pos", "token", "l0", "top features"], rows))
    return "\n".join(parts)


def _sae_features(result: models.SaeFeaturesResult, top: int) -> str:
    parts = [f"feature {result.feature} of {result.sae} on {result.hook}"]
    for prompt in result.prompts:
        parts.append(f"\nmax {prompt.max_activation:.4g} at {prompt.max_position}: "
                     f"{_token(prompt.tokens[prompt.max_position])}")
        parts.append(table(["pos", "token", "activation"],
                           [[i, _token(t), a] for i, (t, a) in enumerate(zip(prompt.tokens, prompt.activations,
                                                                              strict=True))]))
    if result.logit_effects is not None:
        effects = result.logit_effects
        rows = [[_token(p.token), p.effect, _token(s.token), s.effect]
                for p, s in zip(effects.promoted[:top], effects.suppressed[:top], strict=False)]
        parts.append("\nlogit effects of the decoder direction")
        parts.append(table(["promoted", "effect", "suppressed", "effect"], rows))
    return "\n".join(parts)


def _head_scores(result: models.HeadScoresResult, top: int) -> str:
    parts = [f"head scores ({result.error_measure}) over {len(result.tokens)} sequence(s)"]
    for name, grid in result.scores.items():
        ranked = sorted(((score, layer, head) for layer, row in zip(grid.labels["layer"], grid.values, strict=True)
                         for head, score in zip(grid.labels["head"], row, strict=True) if score is not None),
                        reverse=True)
        parts.append(f"\n{name}: top heads")
        parts.append(table(["head", "score"], [[f"L{layer}H{head}", score] for score, layer, head in ranked[:top]]))
    return "\n".join(parts)


def _steer(result: models.SteerResult, top: int) -> str:
    how = f"clamped at {result.clamp}" if result.clamp is not None else f"added × {result.coefficient}"
    return "\n".join([
        f"feature {result.feature} of {result.sae} on {result.hook}, {how}",
        f"prompt:    {result.prompt}",
        f"unsteered: {result.unsteered_text}",
        f"steered:   {result.steered_text}",
    ])


RENDERERS: dict[type[Any], Callable[[Any, int], str]] = {
    models.PatchingResult: _patching,
    models.AttributionResult: _attribution,
    models.SaeEncodeResult: _sae_encode,
    models.SaeFeaturesResult: _sae_features,
    models.HeadScoresResult: _head_scores,
    models.SteerResult: _steer,
}


def render_job(job: JobRecord, top: int = 10) -> str:
    """A job's status line, then its result (or its error) as tables."""
    head = f"job {job.id}: {job.kind} on {job.model}, {job.status}"
    if job.error is not None:
        field = f" (field {job.error.field})" if job.error.field else ""
        return f"{head}\n{job.error.code}: {job.error.message}{field}"
    if job.result is None:
        return f"{head} ({job.progress:.0%})"
    render = RENDERERS.get(type(job.result))
    body = render(job.result, top) if render else job.result.model_dump_json(indent=2)
    return f"{head}\n{body}"


def job_table(jobs: Sequence[JobRecord]) -> str:
    rows = [[j.id, j.kind, j.model, j.status, f"{j.progress:.0%}", j.created_at.isoformat(timespec="seconds")]
            for j in jobs]
    return table(["id", "kind", "model", "status", "progress", "created"], rows)


def model_table(items: Sequence[models.ModelInfo]) -> str:
    rows = [[m.id, "yes" if m.ready else "no", m.n_layers, m.d_model, m.n_heads, m.max_tokens,
             ", ".join(s.id for s in m.saes) or "-"] for m in items]
    return table(["id", "ready", "layers", "d_model", "heads", "max tokens", "saes"], rows)
