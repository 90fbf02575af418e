// SAE encoding: for each token its top features as activation bars (a feature keeps its colour on every row),
// its L0 and reconstruction error; per prompt and pooled, the reconstruction quality.

import { exact, fmt, h } from "../dom.js";
import { facts, section } from "./parts.js";

/** A stable colour per feature id (golden-angle hues), so one feature reads the same on every token. */
const featureColour = (id) => `hsl(${(id * 137.508) % 360}, 55%, 52%)`;

function quality(reconstruction, loss) {
  return facts([
    ["tokens counted", String(reconstruction.tokens)],
    ["MSE", exact(reconstruction.mse)],
    ["explained variance", reconstruction.explained_variance === null ? "—" : fmt(reconstruction.explained_variance)],
    ...(loss ? [
      ["clean loss", fmt(loss.clean_loss)],
      ["loss with SAE", fmt(loss.sae_loss)],
      ["zero-ablation loss", fmt(loss.zero_ablation_loss)],
      ["loss recovered", loss.loss_recovered === null ? "—" : fmt(loss.loss_recovered)],
    ] : []),
  ]);
}

/** Bars share one scale: the largest activation over the tokens the figures count (BOS, when left out of them,
 * often fires thousands of times harder than any other token and would flatten every other bar). */
function barScale(encoding) {
  const skipFirst = encoding.reconstruction.tokens < encoding.tokens.length;
  const counted = encoding.features.filter((_, i) => !(skipFirst && i === 0)).flat();
  return Math.max(...(counted.length ? counted : encoding.features.flat()).map((f) => f.activation), 1e-12);
}

function featureBar(f, i, token, max) {
  const clipped = f.activation > max;
  return h("div", {
    class: `feat${clipped ? " clipped" : ""}`, dataset: { feature: f.feature, activation: f.activation,
      tip: `feature ${f.feature} at position ${i} ${JSON.stringify(token)}\nactivation ${exact(f.activation)}` +
        (clipped ? "\n(off the scale of the other tokens)" : "") },
  }, [
    h("span", { class: "feat-id", text: `#${f.feature}` }),
    h("span", { class: "feat-track" }, h("span", {
      class: "feat-bar", style: { width: `${Math.min(100, (100 * f.activation) / max)}%`,
        backgroundColor: featureColour(f.feature) },
    })),
    h("span", { class: "feat-value", text: fmt(f.activation, 3) }),
  ]);
}

function tokenTable(encoding) {
  const { tokens, features, l0, token_mse: mse } = encoding;
  const max = barScale(encoding);
  const rows = tokens.map((token, i) => h("tr", { class: "sae-token", dataset: { index: i } }, [
    h("td", { class: "num muted", text: String(i) }),
    h("td", {}, h("span", { class: "tok plain", text: token, dataset: { tip: `position ${i} ${JSON.stringify(token)}` } })),
    h("td", { class: "num", text: String(l0[i]), dataset: { tip: `L0 ${l0[i]}: features active at this token` } }),
    h("td", { class: "num", text: fmt(mse[i], 3), dataset: { tip: `reconstruction MSE ${exact(mse[i])}` } }),
    h("td", {}, h("div", { class: "feats" }, features[i].map((f) => featureBar(f, i, token, max)))),
  ]));
  const table = h("table", { class: "sae" }, [
    h("thead", {}, h("tr", {}, ["pos", "token", "L0", "MSE", "top features (activation)"].map((t) => h("th", { text: t })))),
    h("tbody", {}, rows),
  ]);
  table.addEventListener("pointerover", (event) => {
    const feat = event.target.closest(".feat");
    for (const node of table.querySelectorAll(".feat.same")) node.classList.remove("same");
    if (!feat) return;
    for (const node of table.querySelectorAll(`.feat[data-feature="${feat.dataset.feature}"]`)) node.classList.add("same");
  });
  const clippedNote = features.flat().some((f) => f.activation > max)
    ? h("p", { class: "muted", text: "Striped bars are off the scale: the token (BOS) is left out of the figures." })
    : null;
  return h("div", { class: "scroll" }, [table, clippedNote]);
}

export function render(result) {
  const parts = [facts([["SAE", result.sae], ["hook", result.hook], ["top features per token", String(result.top_k)]])];
  if (result.prompts.length > 1) parts.push(section("All prompts", "pooled", quality(result.reconstruction, result.loss)));
  result.prompts.forEach((encoding, n) => {
    parts.push(section(result.prompts.length > 1 ? `Prompt ${n + 1}` : "Features per token", encoding.prompt,
      h("div", {}, [quality(encoding.reconstruction, encoding.loss), tokenTable(encoding)]), { prompt: n }));
  });
  return h("div", { class: "kind-sae-encode" }, parts);
}
