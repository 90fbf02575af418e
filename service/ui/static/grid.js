// A result grid ({axes, labels, values[, raw_values]}) drawn as researchers draw it: two axes as a heatmap
// (layer down, tokens across), any further axes as one heatmap per index (small multiples), one axis as bars.

import { bars } from "./bars.js";
import { maxAbs } from "./colour.js";
import { exact, h } from "./dom.js";
import { heatmap } from "./heatmap.js";
import { legend } from "./legend.js";

const ACROSS = ["position", "src_position", "key_position", "token", "head", "sublayer"];
const DOWN = { src_position: "dest_position", key_position: "query_position" };
const MAX_PANELS = 12;

/** A position label such as "3: Mary" names token 3; shown as that token when the result's tokens are known. */
function axisLabel(axis, label, tokens) {
  if (tokens && /position$/.test(axis)) {
    const match = /^(\d+): /s.exec(String(label));
    if (match && tokens[Number(match[1])] !== undefined) return tokens[Number(match[1])];
  }
  return String(label);
}

function describe(axis, label) {
  const text = String(label);
  if (/position$/.test(axis)) {
    const match = /^(\d+): (.*)$/s.exec(text);
    return match ? `${axis} ${match[1]} ${JSON.stringify(match[2])}` : `${axis} ${JSON.stringify(text)}`;
  }
  return /^[A-Za-z]/.test(text) && axis !== "layer" ? text : `${axis} ${text}`;
}

/** Which axes go across and down; the rest are facets. */
function layout(axes) {
  let col = axes.length - 1;
  for (const name of ACROSS) {
    if (axes.includes(name)) {
      col = axes.indexOf(name);
      break;
    }
  }
  const others = axes.map((_, i) => i).filter((i) => i !== col);
  let row = others.find((i) => axes[i] === DOWN[axes[col]]);
  if (row === undefined) row = others.find((i) => axes[i] === "layer");
  if (row === undefined) row = others[0];
  return { row, col, facets: others.filter((i) => i !== row) };
}

const at = (values, index) => index.reduce((v, i) => (v == null ? null : v[i]), values);

function product(lengths) {
  return lengths.reduce((acc, n) => acc.flatMap((prefix) => Array.from({ length: n }, (_, i) => [...prefix, i])), [[]]);
}

/**
 * Draw `grid` into a new element. tokens: the result's tokens (position labels become them);
 * what: the quantity's name for legends and tooltips; width: pixels available.
 */
export function drawGrid(grid, { tokens = null, what = "value", width = 960 } = {}) {
  const { axes, labels } = grid;
  const raw = grid.raw_values;
  const label = (axis, i) => (labels[axis] ? labels[axis][i] : i);
  if (axes.length === 1) {
    const axis = axes[0];
    const names = grid.values.map((_, i) => (/position$/.test(axis) ? axisLabel(axis, label(axis, i), tokens)
      : describe(axis, label(axis, i))));
    return bars({
      labels: names, values: grid.values, width, what,
      tip: (i) => `${describe(axis, label(axis, i))}\n${what} ${exact(grid.values[i])}` +
        (raw ? `\nraw ${exact(raw[i])}` : ""),
    });
  }
  const { row, col, facets } = layout(axes);
  const lengths = axes.map((axis, i) => (labels[axis] ? labels[axis].length : at(grid.values, Array(i).fill(0)).length));
  const limit = maxAbs(grid.values);
  const panel = (fixed, panelWidth = width, withLegend = true) => {
    const index = (i, j) => axes.map((_, k) => (k === row ? i : k === col ? j : fixed[facets.indexOf(k)]));
    const rowsN = lengths[row];
    const colsN = lengths[col];
    const values = Array.from({ length: rowsN }, (_, i) => Array.from({ length: colsN }, (_, j) => at(grid.values, index(i, j))));
    const facetText = facets.map((k, n) => describe(axes[k], label(axes[k], fixed[n])));
    return heatmap({
      rows: Array.from({ length: rowsN }, (_, i) => axisLabel(axes[row], label(axes[row], i), tokens)),
      cols: Array.from({ length: colsN }, (_, j) => axisLabel(axes[col], label(axes[col], j), tokens)),
      values, rowAxis: axes[row], colAxis: axes[col], limit, width: panelWidth, what, withLegend,
      tip: (i, j) => {
        const place = [...facetText, describe(axes[row], label(axes[row], i)), describe(axes[col], label(axes[col], j))];
        const rawText = raw ? `\nraw ${exact(at(raw, index(i, j)))}` : "";
        return `${place.join(" · ")}\n${what} ${exact(values[i][j])}${rawText}`;
      },
    });
  };
  if (!facets.length) return panel([]);
  const combos = product(facets.map((k) => lengths[k]));
  const title = (fixed) => facets.map((k, n) => describe(axes[k], label(axes[k], fixed[n]))).join(" · ");
  if (combos.length <= MAX_PANELS) {
    const each = Math.max(320, Math.floor(width / Math.min(combos.length, 2)) - 16);
    const figures = combos.map((fixed) => h("figure", { class: "facet" }, [
      h("figcaption", { text: title(fixed) }), panel(fixed, each, false),
    ]));
    return h("div", {}, [h("div", { class: "facets" }, figures), legend("diverging", limit, what)]);
  }
  const holder = h("div", { class: "facet" });
  const select = h("select", { "aria-label": facets.map((k) => axes[k]).join(" × ") },
    combos.map((fixed, n) => h("option", { value: n, text: title(fixed) })));
  const show = () => holder.replaceChildren(panel(combos[Number(select.value)]));
  select.addEventListener("change", show);
  show();
  return h("div", { class: "facet-picker" }, [h("label", {}, [`${facets.map((k) => axes[k]).join(" × ")} `, select]), holder]);
}
