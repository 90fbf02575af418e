// Attribution: per-token scores as the prompt highlighted (intensity by size, hue by sign) with integrated
// gradients' completeness check; direct logit attribution as bars of components and layer × head heatmaps;
// the logit lens as a layer × top-token table of probabilities.

import { bars } from "../bars.js";
import { darkSequential, sequential } from "../colour.js";
import { exact, fmt, h } from "../dom.js";
import { drawGrid } from "../grid.js";
import { tokenStrip } from "../tokens.js";
import { facts, section, verdict, warnings } from "./parts.js";

const COMPLETE_WITHIN = 0.05; // relative error under which integrated gradients are taken as converged
const TOP_COMPONENTS = 20;

const METHOD_TEXT = {
  saliency: "saliency (|gradient| of the embedding)",
  input_x_gradient: "input × gradient",
  integrated_gradients: "integrated gradients",
  layer_integrated_gradients: "layer integrated gradients",
  gradient_x_activation: "gradient × activation",
  direct_logit_attribution: "direct logit attribution",
  logit_lens: "logit lens",
};

function completeness(c) {
  return h("div", {
    class: "check completeness",
    dataset: { sum: c.attribution_sum, expected: c.expected, relativeError: c.relative_error },
  }, [
    h("h3", { text: "Completeness" }),
    facts([
      ["sum of attributions", exact(c.attribution_sum)],
      ["expected f(x) − f(baseline)", `${exact(c.expected)} = ${fmt(c.input_value)} − ${fmt(c.baseline_value)}`],
      ["relative error", exact(c.relative_error)],
      ["delta", exact(c.delta)],
      ...(c.steps_used == null ? [] : [["steps used", `${c.steps_used}` +
        (c.evaluations > c.steps_used ? ` (${c.evaluations} gradient evaluations)` : "")]]),
      ...(c.converged == null ? [] : [[`within ${exact(c.tolerance)}`, c.converged ? "yes" : "no"]]),
    ]),
    verdict(c.converged ?? Math.abs(c.relative_error) <= COMPLETE_WITHIN, "converged",
      "not converged: raise n_steps or change the baseline"),
  ]);
}

function decomposition(d) {
  return h("div", { class: "check decomposition", dataset: { sum: d.component_sum, target: d.target_value } }, [
    h("h3", { text: "Decomposition" }),
    facts([
      ["sum of components", exact(d.component_sum)],
      ["target value", exact(d.target_value)],
      ["residual error", exact(d.residual_error)],
    ]),
  ]);
}

function tokenScores(result) {
  const { tokens, scores, target } = result;
  return tokenStrip({
    tokens, scores, what: "attribution",
    mark: [target.position],
    tip: (i) => `position ${i} ${JSON.stringify(tokens[i])}\nscore ${exact(scores[i])}` +
      (i === target.position ? "\n(the prediction is made here)" : ""),
  });
}

function components(grid, width) {
  const labels = grid.labels.component;
  const n = labels.length;
  const m = Math.min(TOP_COMPONENTS, n);
  const order = labels.map((_, i) => i);
  const top = [...order].sort((a, b) => Math.abs(grid.values[b]) - Math.abs(grid.values[a])).slice(0, m);
  const holder = h("div");
  const note = h("span", { class: "muted" });
  const toggle = h("button", { type: "button", class: "small" });
  let all = n <= TOP_COMPONENTS;
  const update = () => {
    const indices = all ? order : top;
    holder.replaceChildren(bars({
      labels: indices.map((i) => labels[i]), values: indices.map((i) => grid.values[i]), width,
      what: "direct logit attribution",
      tip: (k) => `${labels[indices[k]]}\ncontribution ${exact(grid.values[indices[k]])}`,
    }));
    note.textContent = all ? `all ${n} components in model order` : `the largest ${m} of ${n} by |contribution|`;
    toggle.textContent = all ? `show the largest ${m}` : `show all ${n}`;
  };
  toggle.addEventListener("click", () => {
    all = !all;
    update();
  });
  update();
  return h("div", {}, [h("p", {}, [note, " ", n > TOP_COMPONENTS ? toggle : null]), holder]);
}

function lensTable(result) {
  const layers = result.logit_lens;
  const k = Math.max(...layers.map((l) => l.top_k.length));
  const targetNames = layers[0].targets.map((t) => JSON.stringify(t.token));
  const cell = (ranked, hook) => h("td", {
    class: `lens-cell${darkSequential(ranked.probability, 1) ? " on-dark" : ""}`,
    style: { backgroundColor: sequential(ranked.probability, 1) },
    dataset: { tip: `${hook}\n#${ranked.rank} ${JSON.stringify(ranked.token)} (id ${ranked.token_id})\np ${exact(ranked.probability)}` },
  }, [h("span", { class: "tok-text", text: ranked.token }), h("span", { class: "prob", text: fmt(ranked.probability, 2) })]);
  const head = h("tr", {}, [
    h("th", { text: "layer" }),
    ...targetNames.map((t) => h("th", { class: "target-col", text: `target ${t}` })),
    ...Array.from({ length: k }, (_, i) => h("th", { text: `#${i + 1}` })),
  ]);
  const rows = layers.map((layer) => h("tr", {}, [
    h("th", { class: "hook", text: layer.hook }),
    ...layer.targets.map((t) => h("td", {
      class: "target-col", dataset: { tip: `${layer.hook}\n${JSON.stringify(t.token)}: p ${exact(t.probability)}, rank ${t.rank}` },
    }, [h("span", { class: "prob", text: fmt(t.probability, 3) }), h("span", { class: "rank", text: ` #${t.rank}` })])),
    ...layer.top_k.map((ranked) => cell(ranked, layer.hook)),
  ]));
  return h("div", { class: "scroll" }, h("table", { class: "lens" }, [h("thead", {}, head), h("tbody", {}, rows)]));
}

export function render(result, { width }) {
  const { target, checks } = result;
  const parts = [
    facts([
      ["method", METHOD_TEXT[result.method] || result.method],
      ["target", target.description],
      ["value", exact(target.value)],
      ...Object.entries(result.options).filter(([, v]) => v !== null).map(([key, v]) => [key, String(v)]),
    ]),
    warnings(result.warnings),
  ];
  if (result.scores) parts.push(section("Tokens", "highlighted by attribution: blue raises the target, red lowers it", tokenScores(result)));
  if (checks.completeness) parts.push(completeness(checks.completeness));
  if (checks.decomposition) parts.push(decomposition(checks.decomposition));
  if (result.logit_lens.length) {
    parts.push(section("Logit lens", "each layer's residual read through the unembedding: top tokens", lensTable(result)));
    if (result.grids.value) {
      parts.push(section("Target value per layer", target.description, drawGrid(result.grids.value, { what: "value", width })));
    }
  } else {
    for (const [name, grid] of Object.entries(result.grids)) {
      const body = name === "components" && grid.axes.length === 1
        ? components(grid, width)
        : drawGrid(grid, { tokens: result.tokens, what: "attribution", width });
      parts.push(section(name, grid.axes.join(" × "), body, { grid: name }));
    }
  }
  return h("div", { class: "kind-attribution" }, parts);
}
