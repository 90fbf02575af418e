// A colour legend: the scale's gradient with its ends and centre labelled.

import { gradient } from "./colour.js";
import { fmt, h } from "./dom.js";

/** `kind` is "diverging" (−limit … 0 … +limit) or "sequential" (0 … limit); `what` names the quantity. */
export function legend(kind, limit, what = "") {
  const ticks = kind === "sequential" ? [0, limit / 2, limit] : [-limit, 0, limit];
  return h("div", { class: "legend" }, [
    what ? h("span", { class: "legend-what", text: what }) : null,
    h("div", { class: "legend-scale" }, [
      h("div", { class: "legend-bar", style: { background: gradient(kind) } }),
      h("div", { class: "legend-ticks" }, ticks.map((t) => h("span", { text: fmt(t, 3) }))),
    ]),
  ]);
}
