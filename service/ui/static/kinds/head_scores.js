// Head detectors: one layer × head heatmap per detector (previous-token, duplicate-token, induction, custom
// patterns), the mean over the scored sequences, with the first sequence's tokens.

import { h } from "../dom.js";
import { drawGrid } from "../grid.js";
import { facts, section } from "./parts.js";

const DETECTOR_TEXT = {
  previous_token: "attention to the previous token",
  duplicate_token: "attention to earlier copies of the current token",
  induction: "attention to the token after an earlier copy of the current token",
};

export function render(result, { width }) {
  const parts = [facts([
    ["error measure", result.error_measure],
    ["sequences", String(result.tokens.length)],
    ["tokens per sequence", result.tokens.map((t) => t.length).join(", ")],
    ["first sequence", (result.tokens[0] || []).join(" ")],
  ])];
  for (const [name, grid] of Object.entries(result.scores)) {
    parts.push(section(name, `${DETECTOR_TEXT[name] || "custom pattern"} · ${grid.axes.join(" × ")}`,
      drawGrid(grid, { what: grid.units, width }), { target: name }));
  }
  return h("div", { class: "kind-head-scores" }, parts);
}
