// Colour scales: diverging (ColorBrewer RdBu, centred on 0: red negative, blue positive) and sequential (Oranges).

const RDBU = ["#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7",
  "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061"];
const ORANGES = ["#fff5eb", "#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#a63603", "#7f2704"];

const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

function ramp(stops, t) {
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const [a, b] = [rgb(stops[i]), rgb(stops[i + 1])];
  const f = x - i;
  const [r, g, bl] = a.map((v, k) => Math.round(v + (b[k] - v) * f));
  return `rgb(${r}, ${g}, ${bl})`;
}

/** The largest |value| of nested lists (nulls skipped); 1 when all are 0, so a scale never divides by 0. */
export function maxAbs(values) {
  let max = 0;
  for (const v of [values].flat(Infinity)) if (typeof v === "number" && Math.abs(v) > max) max = Math.abs(v);
  return max || 1;
}

/** Diverging colour of `value` on a scale symmetric about 0 reaching ±`limit`. */
export const diverging = (value, limit) =>
  value === null || value === undefined ? "#e0e0e0" : ramp(RDBU, 0.5 + value / (2 * limit));

/** Sequential colour of a non-negative `value` on [0, `limit`]. */
export const sequential = (value, limit) =>
  value === null || value === undefined ? "#e0e0e0" : ramp(ORANGES, value / limit);

/** Whether text on that value's colour needs to be white to be read. */
export const darkDiverging = (value, limit) => value !== null && Math.abs(value) / limit > 0.55;
export const darkSequential = (value, limit) => value !== null && value / limit > 0.6;

/** Stops of a scale for a CSS linear-gradient legend, low to high. */
export function gradient(kind) {
  const stops = kind === "sequential" ? ORANGES : RDBU;
  return `linear-gradient(to right, ${stops.join(", ")})`;
}
