// The prompt's tokens in a line, each highlighted by a score: colour intensity by size, hue by sign.

import { darkDiverging, darkSequential, diverging, maxAbs, sequential } from "./colour.js";
import { h } from "./dom.js";
import { legend } from "./legend.js";

/**
 * tokens[i] with scores[i] (null: no score); tip(i) the tooltip; kind "diverging" (signed scores) or
 * "sequential" (activations ≥ 0); mark: indices to outline (the predicted position, the strongest token).
 */
export function tokenStrip({ tokens, scores, tip, kind = "diverging", what = "score", mark = [] }) {
  const limit = maxAbs(scores);
  const colour = kind === "sequential" ? sequential : diverging;
  const dark = kind === "sequential" ? darkSequential : darkDiverging;
  const spans = tokens.map((token, i) => {
    const score = scores[i] ?? null;
    return h("span", {
      class: `tok${dark(score, limit) ? " on-dark" : ""}${mark.includes(i) ? " marked" : ""}`,
      style: { backgroundColor: colour(score, limit) },
      dataset: { index: i, score: score ?? "", tip: tip(i) },
      text: token,
    });
  });
  return h("div", { class: "tokens-wrap" }, [h("div", { class: "tokens" }, spans), legend(kind, limit, what)]);
}
