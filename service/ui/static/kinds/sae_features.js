// One SAE feature: its activation over each prompt's tokens (intensity by activation, the peak outlined) and the
// tokens its decoder direction promotes and suppresses most (direct logit effects).

import { bars } from "../bars.js";
import { exact, fmt, h } from "../dom.js";
import { tokenStrip } from "../tokens.js";
import { facts, section } from "./parts.js";

function activations(prompt) {
  const { tokens, activations: acts, max_position: peak } = prompt;
  const signed = acts.some((a) => a < 0);
  return h("div", { class: "feature-acts" }, [
    facts([["max activation", exact(prompt.max_activation)],
      ["at", `position ${peak} ${JSON.stringify(tokens[peak])}`]]),
    tokenStrip({
      tokens, scores: acts, kind: signed ? "diverging" : "sequential", what: "activation", mark: [peak],
      tip: (i) => `position ${i} ${JSON.stringify(tokens[i])}\nactivation ${exact(acts[i])}`,
    }),
  ]);
}

function effects(list, what, width) {
  return bars({
    labels: list.map((e) => JSON.stringify(e.token)), values: list.map((e) => e.effect), what, width,
    tip: (i) => `${JSON.stringify(list[i].token)} (id ${list[i].token_id})\nlogit effect ${exact(list[i].effect)}`,
  });
}

export function render(result, { width }) {
  const parts = [facts([["SAE", result.sae], ["hook", result.hook], ["feature", String(result.feature)]])];
  result.prompts.forEach((prompt, n) => {
    const title = result.prompts.length > 1 ? `Prompt ${n + 1}` : "Activations";
    parts.push(section(title, `feature ${result.feature} at each token · peak ${fmt(prompt.max_activation, 3)}`,
      activations(prompt), { prompt: n }));
  });
  if (result.logit_effects) {
    const half = Math.max(320, Math.floor(width / 2) - 24);
    parts.push(section("Logit effects", "direct path: the decoder direction through the unembedding",
      h("div", { class: "side-by-side" }, [
        h("div", { class: "effects promoted" }, [h("h3", { text: "Promoted" }),
          effects(result.logit_effects.promoted, "promoted tokens", half)]),
        h("div", { class: "effects suppressed" }, [h("h3", { text: "Suppressed" }),
          effects(result.logit_effects.suppressed, "suppressed tokens", half)]),
      ])));
  }
  return h("div", { class: "kind-sae-features" }, parts);
}
