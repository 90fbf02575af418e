// Pieces every kind's page uses: a titled section, a row of labelled facts, warnings, a check's verdict.

import { h } from "../dom.js";

/** A titled section around `body`; dataset marks it for tests and links (data-target="resid_pre"). */
export function section(title, subtitle, body, dataset = {}) {
  return h("section", { class: "panel", dataset }, [
    h("h2", {}, [title, subtitle ? h("span", { class: "subtitle", text: subtitle }) : null]),
    body,
  ]);
}

/** Labelled values in one row: [[label, value], …]; null values are left out. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => h("div", {}, [h("dt", { text: k }), h("dd", {}, v)])));
}

export function warnings(list) {
  if (!list || !list.length) return null;
  return h("ul", { class: "warnings" }, list.map((w) => h("li", { text: w })));
}

/** A self-check's verdict: ok (within tolerance) or a warning saying what to change. */
export function verdict(ok, good, bad) {
  return h("span", { class: ok ? "check-ok" : "check-bad", text: ok ? `✓ ${good}` : `⚠ ${bad}` });
}
