// Attention patterns, CircuitsVis-style: one destination × source heatmap per layer and head (tokens on both
// axes), a head selector to show one or all, and the per-head summaries as layer × head heatmaps.

import { exact, h } from "../dom.js";
import { drawGrid } from "../grid.js";
import { heatmap } from "../heatmap.js";
import { section } from "./parts.js";

const SUMMARIES = [
  ["entropy", "entropy of each destination's pattern, mean (nats)"],
  ["bos_attention", "attention to the first token (BOS), mean over destinations"],
  ["previous_token_attention", "attention to the previous token, mean over destinations 1..n−1"],
];

function headMap(tokens, values, layer, head, width) {
  const labels = tokens.map((t, i) => `${i}: ${t}`);
  return h("div", { class: "head-pattern", dataset: { head: `L${layer}H${head}` } }, [
    h("h3", { text: `L${layer}H${head}` }),
    heatmap({
      rows: labels, cols: labels, values, rowAxis: "destination", colAxis: "source", limit: 1, width, withLegend: false,
      what: `L${layer}H${head} attention`,
      tip: (i, j) => `L${layer}H${head}: ${JSON.stringify(tokens[i])} → ${JSON.stringify(tokens[j])}\n` +
        `weight ${exact(values[i][j])}`,
    }),
  ]);
}

export function render(result, { width }) {
  const { patterns, tokens } = result;
  const maps = [];
  patterns.labels.layer.forEach((layer, i) => {
    patterns.labels.head.forEach((head, j) => {
      maps.push(headMap(tokens, patterns.values[i][j], layer, head, Math.min(width, 480)));
    });
  });
  const select = h("select", { id: "head-select" }, [h("option", { value: "", text: "all heads" }),
    ...maps.map((m) => h("option", { value: m.dataset.head, text: m.dataset.head }))]);
  select.addEventListener("change", () => {
    maps.forEach((m) => { m.hidden = select.value !== "" && m.dataset.head !== select.value; });
  });
  const parts = [section("Attention patterns", "destination (row) × source (column), per head",
    h("div", {}, [h("label", {}, ["show ", select]), h("div", { class: "small-multiples" }, maps)]),
    { grid: "patterns" })];
  for (const [key, text] of SUMMARIES) {
    if (result[key]) {
      parts.push(section(key.replace(/_/g, " "), text, drawGrid(result[key], { what: result[key].units, width }),
        { summary: key }));
    }
  }
  return h("div", { class: "kind-attention" }, parts);
}
