// Activations: per prompt and hook, the sliced values as heatmaps (position × feature; one per head for per-head
// hooks and patterns); with top_k, each cell's tooltip names the index it came from. A result too large for JSON
// is a safetensors file: the page offers it for download and says which tensor holds each hook.

import { downloadArtifact } from "../api.js";
import { exact, h } from "../dom.js";
import { heatmap } from "../heatmap.js";
import { facts, section } from "./parts.js";

const MAX_HEADS_DRAWN = 16;

/** The hook's values as 2-D matrices: one, or one per head when the hook has a head axis and three axes. */
function matrices(part) {
  const { axes, labels, values, indices } = part;
  const names = (axis) => labels[axis].map(String);
  if (axes.length === 2) {
    return [{ title: null, rowAxis: axes[0], colAxis: axes[1], rows: names(axes[0]), cols: names(axes[1]), values,
      index: indices ? (i, j) => indices[i][j] : null }];
  }
  const headAt = axes.indexOf("head");
  const [rowAxis, colAxis] = axes.filter((_, n) => n !== headAt);
  const heads = labels.head.slice(0, MAX_HEADS_DRAWN);
  return heads.map((head, k) => {
    const pick = (m) => (headAt === 0 ? m[k] : m.map((row) => row[k]));
    const picked = indices ? pick(indices) : null;
    return { title: `head ${head}`, rowAxis, colAxis, rows: names(rowAxis), cols: names(colAxis), values: pick(values),
      index: picked ? (i, j) => picked[i][j] : null };
  });
}

function filed(name, part) {
  const text = `in the file as tensor "${part.tensor}"${part.sliced_axis ? ` (indices: "${part.tensor}.indices")` : ""}`;
  return section(name, `shape ${part.shape.join(" × ")} · ${part.axes.join(", ")}`,
    h("p", { class: "artifact-tensor", text }), { hook: name });
}

function artifactPart(link) {
  const expires = new Date(link.expires_at * 1000).toLocaleString();
  const status = h("span", { class: "artifact-status" });
  const button = h("button", { type: "button", class: "artifact-download", text: `Download ${link.name}` });
  button.addEventListener("click", () => {
    status.textContent = "";
    downloadArtifact(link).catch((error) => { status.textContent = `${error.code}: ${error.message}`; });
  });
  return section("Values file", `${link.bytes.toLocaleString()} bytes · safetensors · until ${expires}`,
    h("div", {}, [button, status]), { artifact: link.name });
}

function hookPart(name, part, width) {
  if (part.values === null) return filed(name, part);
  const drawn = matrices(part).map((m) => h("div", { class: "hook-matrix", dataset: { head: m.title || "" } }, [
    m.title ? h("h3", { text: m.title }) : null,
    heatmap({
      rows: m.rows, cols: m.cols, values: m.values, rowAxis: m.rowAxis, colAxis: m.colAxis, width, what: name,
      tip: (i, j) => `${m.rowAxis} ${m.rows[i]} · ${m.colAxis} ${m.cols[j]}` +
        `${m.index ? ` (index ${m.index(i, j)} of ${part.sliced_axis})` : ""}\nvalue ${exact(m.values[i][j])}`,
    }),
  ]));
  return section(name, `shape ${part.shape.join(" × ")} · ${part.axes.join(", ")}`, h("div", {}, drawn),
    { hook: name });
}

export function render(result, { width }) {
  const parts = [facts([["model", result.model], ["prompts", String(result.prompts.length)]])];
  if (result.artifact) parts.push(artifactPart(result.artifact));
  result.prompts.forEach((prompt, n) => {
    parts.push(h("div", { class: "activations-prompt", dataset: { prompt: n } }, [
      h("h2", { text: result.prompts.length > 1 ? `Prompt ${n + 1}` : "Activations" }),
      h("p", { class: "tokens-line", text: prompt.tokens.map((t) => JSON.stringify(t)).join(" ") }),
      ...Object.entries(prompt.hooks).map(([name, part]) => hookPart(name, part, width)),
    ]));
  });
  return h("div", { class: "kind-activations" }, parts);
}
