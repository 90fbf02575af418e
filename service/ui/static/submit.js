// The submission form: a kind, a served model and the job's JSON body (an example per kind to start from);
// POST /v1/jobs, then the job's page. The kinds offered are the ones the API's OpenAPI document lists.

import { ApiError, listJobs, listModels, openapi, submitJob } from "./api.js";
import { h } from "./dom.js";
import { keyBox } from "./key.js";

const CLEAN = "When Mary and John went to the store, John gave a drink to";
const CORRUPTED = "When Mary and John went to the store, Mary gave a drink to";

/** A body to start from, per kind: the indirect-object-identification task where a kind takes prompts. */
const EXAMPLES = {
  activations: () => ({ prompt: CLEAN, hooks: ["blocks.0.attn.hook_pattern", "blocks.*.hook_resid_post"], positions: [-1], top_k: 8 }),
  attention: () => ({ prompt: CLEAN, layers: [0] }),
  patching: () => ({ clean_prompt: CLEAN, corrupted_prompt: CORRUPTED, answer: " Mary", wrong_answer: " John",
    targets: ["resid_pre", "head_out"] }),
  attribution: () => ({ prompt: CLEAN, target: { contrast: [" Mary", " John"] }, method: "integrated_gradients",
    n_steps: 50 }),
  sae_encode: (sae) => ({ prompt: "The Eiffel Tower is in Paris", sae, top_k: 5 }),
  sae_features: (sae) => ({ prompts: ["The Eiffel Tower is in Paris", CLEAN], sae, feature: 0, top_n: 10 }),
  steer: (sae) => ({ prompt: "I think that", sae, feature: 0, coefficient: 8, max_new_tokens: 20 }),
};

const $ = (id) => document.getElementById(id);
let models = [];

function kindsFrom(doc) {
  try {
    const schema = doc.paths["/v1/jobs"].post.requestBody.content["application/json"].schema;
    const mapping = (schema.discriminator || {}).mapping || {};
    const names = Object.keys(mapping);
    return names.length ? names : Object.keys(EXAMPLES);
  } catch {
    return Object.keys(EXAMPLES);
  }
}

function firstSae(modelId) {
  const model = models.find((m) => m.id === modelId);
  return model && model.saes.length ? model.saes[0].id : "";
}

function example() {
  const kind = $("kind").value;
  const model = $("model").value;
  const make = EXAMPLES[kind] || (() => ({}));
  return { kind, model, ...make(firstSae(model)) };
}

function showBody(body) {
  $("body").value = JSON.stringify(body, null, 2);
}

function onModelChange() {
  try {
    const body = JSON.parse($("body").value);
    body.model = $("model").value;
    if ("sae" in body) body.sae = firstSae(body.model);
    showBody(body);
  } catch {
    showBody(example());
  }
}

function showSubmitError(error) {
  const box = $("submit-error");
  box.hidden = false;
  box.replaceChildren(
    h("strong", {}, error instanceof ApiError ? [h("code", { text: error.code }), error.field ? ` (${error.field})` : ""]
      : "not sent"),
    h("p", { text: error.message }),
  );
}

async function onSubmit(event) {
  event.preventDefault();
  $("submit-error").hidden = true;
  let body;
  try {
    body = JSON.parse($("body").value);
  } catch (error) {
    showSubmitError(new Error(`the body is not JSON: ${error.message}`));
    return;
  }
  $("submit").disabled = true;
  $("submit-state").textContent = "submitting…";
  try {
    const job = await submitJob(body);
    location.assign(`/ui/jobs/${encodeURIComponent(job.id)}`);
  } catch (error) {
    showSubmitError(error);
    $("submit-state").textContent = "";
  } finally {
    $("submit").disabled = false;
  }
}

async function showRecent() {
  const list = $("recent-jobs");
  try {
    const page = await listJobs(10);
    list.replaceChildren(...page.items.map((job) => h("li", {}, [
      h("a", { href: `/ui/jobs/${encodeURIComponent(job.id)}`, text: `${job.kind} on ${job.model}` }),
      " ", h("span", { class: `badge status-${job.status}`, text: job.status }),
      " ", h("span", { class: "muted", text: new Date(job.created_at).toLocaleString() }),
    ])));
    if (!page.items.length) list.replaceChildren(h("li", { class: "muted", text: "none yet" }));
  } catch (error) {
    list.replaceChildren(h("li", { class: "muted", text: `could not list jobs: ${error.message}` }));
  }
}

async function start() {
  $("submit-error").hidden = true;
  const [doc, served] = await Promise.allSettled([openapi(), listModels()]);
  const kinds = doc.status === "fulfilled" ? kindsFrom(doc.value) : Object.keys(EXAMPLES);
  models = served.status === "fulfilled" ? served.value.items : [];
  $("kind").replaceChildren(...kinds.map((k) => h("option", { value: k, text: k })));
  $("model").replaceChildren(...models.map((m) => h("option", { value: m.id, text: m.ready ? m.id : `${m.id} (loading)` })));
  if (served.status === "rejected") showSubmitError(served.reason);
  showBody(example());
  showRecent();
}

$("kind").addEventListener("change", () => showBody(example()));
$("model").addEventListener("change", onModelChange);
$("reset-body").addEventListener("click", () => showBody(example()));
$("job-form").addEventListener("submit", onSubmit);
keyBox(start);
start();
