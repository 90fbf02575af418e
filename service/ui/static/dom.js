// Small element builders for HTML and SVG, and the one tooltip every chart shares.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "style" && typeof value === "object") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: h("td", {class: "num", text: "1.0"}) or h("ul", {}, [h("li", {}, "a")]). */
export const h = (tag, attrs, children) => fill(document.createElement(tag), attrs, children);

/** An SVG element, same arguments. */
export const s = (tag, attrs, children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);

/** A number as people read it: 4 significant digits, no exponent for ordinary magnitudes. */
export function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e-3 && abs < 1e5) return String(Number(value.toPrecision(digits)));
  return value.toExponential(digits - 1);
}

/** A value in full (6 significant digits, about float32's precision): what a tooltip shows. */
export const exact = (value) => (typeof value === "number" ? String(Number(value.toPrecision(6))) : fmt(value));

let tooltip = null;

function placeTip(event) {
  const pad = 14;
  const { innerWidth, innerHeight } = window;
  const rect = tooltip.getBoundingClientRect();
  let x = event.clientX + pad;
  let y = event.clientY + pad;
  if (x + rect.width > innerWidth - 4) x = event.clientX - rect.width - pad;
  if (y + rect.height > innerHeight - 4) y = event.clientY - rect.height - pad;
  tooltip.style.left = `${Math.max(4, x)}px`;
  tooltip.style.top = `${Math.max(4, y)}px`;
}

/** Show `data-tip` of whatever the pointer is over (cells, bars, tokens) in the page's #tooltip. */
export function enableTooltips() {
  tooltip = document.getElementById("tooltip");
  if (!tooltip) return;
  document.addEventListener("pointerover", (event) => {
    const target = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (!target) return;
    tooltip.textContent = target.dataset.tip;
    tooltip.hidden = false;
    placeTip(event);
  });
  document.addEventListener("pointermove", (event) => {
    if (!tooltip.hidden) placeTip(event);
  });
  document.addEventListener("pointerout", (event) => {
    const target = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (target && !target.contains(event.relatedTarget)) tooltip.hidden = true;
  });
}
