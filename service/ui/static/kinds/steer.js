// Steering: the generation without and with the feature's direction, side by side, tokens that differ marked.

import { h } from "../dom.js";
import { facts } from "./parts.js";

function column(title, prompt, tokens, other, kind) {
  const first = tokens.findIndex((t, i) => t !== other[i]);
  return h("div", { class: `generation ${kind}` }, [
    h("h3", { text: title }),
    h("p", { class: "gen-text" }, [
      h("span", { class: "prompt", text: prompt }),
      ...tokens.map((token, i) => h("span", {
        class: `gen-tok${first >= 0 && i >= first ? " differs" : ""}`, text: token,
        dataset: { index: i, tip: `new token ${i + 1}: ${JSON.stringify(token)}` },
      })),
    ]),
  ]);
}

export function render(result) {
  const how = result.clamp === null ? `added × ${result.coefficient}` : `clamped at ${result.clamp}`;
  return h("div", { class: "kind-steer" }, [
    facts([["SAE", result.sae], ["hook", result.hook], ["feature", String(result.feature)], ["direction", how]]),
    h("div", { class: "side-by-side" }, [
      column("Without steering", result.prompt, result.unsteered_tokens, result.steered_tokens, "unsteered"),
      column(`With feature ${result.feature} ${how}`, result.prompt, result.steered_tokens, result.unsteered_tokens,
        "steered"),
    ]),
    h("p", { class: "muted", text: "Tokens from the first difference on are underlined." }),
  ]);
}
