// Horizontal bars, one per label, from a zero line: blue positive, red negative (sequential: one hue from 0).

import { maxAbs } from "./colour.js";
import { fmt, h, s } from "./dom.js";

const POSITIVE = "#2166ac";
const NEGATIVE = "#b2182b";
const SEQUENTIAL = "#e6550d";
const ROW = 18;
const CHAR_W = 7;
const MAX_LABEL = 28;

const shortLabel = (text) => (text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}…` : text);

/** labels[i], values[i]; tip(i) the tooltip; sequential: values are ≥ 0 and bars start at the left edge. */
export function bars({ labels, values, tip, what = "", width = 640, sequential = false }) {
  const limit = maxAbs(values);
  const numbers = values.filter((v) => typeof v === "number");
  // Bars grow one way when every value has one sign; both ways, from a centred zero, otherwise.
  const negatives = !sequential && numbers.some((v) => v < 0);
  const positives = sequential || numbers.some((v) => v > 0);
  const both = negatives && positives;
  const labelW = 10 + CHAR_W * Math.max(...labels.map((l) => shortLabel(String(l)).length), 1);
  const valueW = 64;
  const plotW = Math.max(160, Math.min(width, 900) - labelW - valueW * 2);
  const half = both ? plotW / 2 : plotW;
  const zero = labelW + (both ? valueW + plotW / 2 : negatives ? valueW + plotW : 0);
  const height = ROW * labels.length + 8;
  const svgW = labelW + plotW + valueW * 2 + 8;
  const rows = labels.map((label, i) => {
    const value = values[i];
    const y = 4 + i * ROW;
    const len = value === null ? 0 : (Math.abs(value) / limit) * half;
    const x = value !== null && value < 0 ? zero - len : zero;
    const colour = sequential ? SEQUENTIAL : value < 0 ? NEGATIVE : POSITIVE;
    const textX = value !== null && value < 0 ? x - 4 : x + len + 4;
    return s("g", { class: "bar-row", dataset: { index: i, value: value ?? "", tip: tip(i) } }, [
      s("rect", { class: "bar-hit", x: 0, y, width: svgW, height: ROW, fill: "transparent" }),
      s("text", { class: "bar-label", x: labelW - 6, y: y + ROW / 2, "text-anchor": "end",
        "dominant-baseline": "central", text: shortLabel(String(label)) }),
      s("rect", { class: "bar", x, y: y + 2, width: Math.max(len, value === null ? 0 : 1), height: ROW - 4,
        fill: colour }),
      s("text", { class: "bar-value", x: textX, y: y + ROW / 2, "text-anchor": value < 0 ? "end" : "start",
        "dominant-baseline": "central", text: fmt(value, 3) }),
    ]);
  });
  const axis = s("line", { class: "zero", x1: zero, x2: zero, y1: 0, y2: height, stroke: "#888" });
  return h("div", { class: "bars-wrap scroll" }, s("svg", {
    class: "bars", width: svgW, height, viewBox: `0 0 ${svgW} ${height}`, role: "img",
    "aria-label": what || "bar chart", dataset: { n: labels.length },
  }, [...rows, axis]));
}
