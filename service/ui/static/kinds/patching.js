// Activation patching: one heatmap per target (layer × position with the prompt's tokens across, layer × head for
// head targets), path patching's senders grid (layer × head), and the metrics that normalise them.

import { exact, fmt, h } from "../dom.js";
import { drawGrid } from "../grid.js";
import { facts, section, warnings } from "./parts.js";

const TARGET_TEXT = {
  resid_pre: "residual stream entering each block",
  resid_mid: "residual stream between attention and MLP",
  resid_post: "residual stream leaving each block",
  attn_out: "attention output",
  mlp_out: "MLP output",
  attn_out_all_pos: "attention output, all positions at once",
  mlp_out_all_pos: "MLP output, all positions at once",
  head_out: "each head's output (hook_z), all positions",
  head_out_by_pos: "each head's output, per position",
  head_q: "each head's query", head_k: "each key head", head_v: "each value head",
  head_q_by_pos: "each head's query, per position", head_k_by_pos: "each key head, per position",
  head_v_by_pos: "each value head, per position",
  head_pattern: "each head's attention pattern",
  head_pattern_by_pos: "each head's pattern row of one destination",
  head_pattern_dest_src: "each head's weight from one destination to one source",
  every_block: "residual, attention and MLP per block",
  senders: "each sender head's effect through the receivers",
};

export function render(result, { width }) {
  const normalised = result.normalised;
  const what = normalised ? "normalised effect" : result.metric;
  const head = facts([
    ["method", result.method],
    ["direction", result.direction],
    ["metric", result.metric],
    ["clean", fmt(result.clean_metric)],
    ["corrupted", fmt(result.corrupted_metric)],
    ["values", normalised ? "(patched − corrupted) / (clean − corrupted): 1 restores clean" : "raw metric"],
  ]);
  const parts = [head, warnings(result.warnings)];
  if (result.path) {
    const { receivers, receiver_inputs: inputs, joint } = result.path;
    parts.push(facts([
      ["receivers", receivers === "logits" ? "logits (each sender's direct path)"
        : receivers.map(([l, hd]) => `L${l}H${hd}`).join(", ")],
      ["through", inputs.length ? inputs.join(", ") : null],
      ["all senders jointly", `${exact(joint.value)} (raw ${exact(joint.raw_value)})`],
    ]));
  }
  if (result.together) {
    const { value, raw_value: raw } = result.together;
    parts.push(h("div", { class: "patched-together" }, [facts([
      ["listed heads together", value === null ? `raw ${exact(raw)}` : `${exact(value)} (raw ${exact(raw)})`],
    ])]));
  }
  for (const [name, grid] of Object.entries(result.targets)) {
    const axes = grid.axes.join(" × ");
    parts.push(section(`${name}`, `${TARGET_TEXT[name] || ""} · ${axes}`, drawGrid(grid, {
      tokens: result.tokens, what: grid.normalised ? "effect" : result.metric, width,
    }), { target: name }));
  }
  return h("div", { class: "kind-patching", dataset: { what } }, parts);
}
