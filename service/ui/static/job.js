// One job's page: its status while queued or running (queue position, a progress bar fed by the job's event
// stream), then its result drawn by the kind's renderer, or its error.

import { ApiError, getJob, streamJobEvents } from "./api.js";
import { enableTooltips, fmt, h } from "./dom.js";
import { keyBox } from "./key.js";
import * as activations from "./kinds/activations.js";
import * as attention from "./kinds/attention.js";
import * as attribution from "./kinds/attribution.js";
import * as headScores from "./kinds/head_scores.js";
import { facts } from "./kinds/parts.js";
import * as patching from "./kinds/patching.js";
import * as saeEncode from "./kinds/sae_encode.js";
import * as saeFeatures from "./kinds/sae_features.js";
import * as steer from "./kinds/steer.js";

const RENDERERS = { head_scores: headScores, activations, attention, attribution, patching, sae_encode: saeEncode, sae_features: saeFeatures, steer };
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const QUEUE_POLL_MS = 2000;
const FALLBACK_POLL_MS = 1000;

const jobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const $ = (id) => document.getElementById(id);
let following = null; // the AbortController of the event stream being read

const TITLES = { head_scores: "Head detectors", activations: "Activations", attention: "Attention patterns", attribution: "Attribution", patching: "Activation patching", sae_encode: "SAE encoding",
  sae_features: "SAE feature", steer: "Steering" };
const title = (kind) => TITLES[kind] || kind;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : null);

function showHead(job) {
  document.title = `${title(job.kind)} job ${job.id} · interp-service`;
  const seconds = job.started_at && job.finished_at ? (new Date(job.finished_at) - new Date(job.started_at)) / 1000 : null;
  const stats = Object.entries(job.stats || {}).map(([k, v]) => `${k.replace(/_/g, " ")} ${fmt(v, 3)}`).join(", ");
  $("job-head").replaceChildren(
    h("h1", {}, [`${title(job.kind)} job `, h("code", { text: job.id })]),
    facts([
      ["model", job.model],
      ["status", h("span", { class: `badge status-${job.status}`, id: "status-badge", text: job.status })],
      ["created", when(job.created_at)],
      ["finished", when(job.finished_at)],
      ["ran for", seconds === null ? null : `${fmt(seconds, 3)} s`],
      ["stats", stats || null],
    ]),
  );
  const json = $("job-json");
  json.hidden = false;
  json.querySelector("pre").textContent = JSON.stringify(job, null, 2);
}

function showProgress(status, progress, queuePosition) {
  let bar = $("progress");
  if (!bar) {
    bar = h("progress", { id: "progress", max: 1, value: 0, "aria-label": "job progress" });
    $("job-status").replaceChildren(h("div", { class: "status-line" }, [
      h("span", { id: "status-text" }), h("span", { id: "queue-text", class: "muted" }),
    ]), h("div", { class: "progress-line" }, [bar, h("span", { id: "progress-text", class: "muted" })]));
  }
  bar.value = progress;
  $("progress-text").textContent = `${Math.round(progress * 100)}%`;
  $("status-text").textContent = status === "queued" ? "Waiting in the queue" : "Running";
  const ahead = status === "queued" && queuePosition !== null && queuePosition !== undefined;
  $("queue-text").textContent = ahead
    ? ` · ${queuePosition === 0 ? "next to run" : `${queuePosition} job${queuePosition === 1 ? "" : "s"} ahead`}`
    : "";
  const badge = $("status-badge");
  if (badge) {
    badge.textContent = status;
    badge.className = `badge status-${status}`;
  }
}

function showError(error) {
  return h("div", { class: "error-box", id: "job-error" }, [
    h("h2", { text: "The job failed" }),
    facts([
      ["code", h("code", { class: "error-code", text: error.code })],
      ["field", error.field ?? null],
      ["retryable", error.retryable ? "yes: submitting it again may succeed" : null],
    ]),
    h("p", { class: "error-message", text: error.message }),
  ]);
}

function showFinal(job) {
  $("job-status").replaceChildren();
  showHead(job);
  const out = $("job-result");
  if (job.status === "failed") {
    out.replaceChildren(showError(job.error || { code: "unknown", message: "no error was recorded" }));
    return;
  }
  if (job.status === "cancelled") {
    out.replaceChildren(h("div", { class: "notice", text: "The job was cancelled before it finished." }));
    return;
  }
  const renderer = RENDERERS[job.kind];
  if (!renderer) {
    out.replaceChildren(h("p", { class: "notice", text: `No drawing for kind ${job.kind} yet: see the JSON below.` }));
    return;
  }
  try {
    out.replaceChildren(renderer.render(job.result, { width: Math.max(480, out.clientWidth || 960), job }));
    out.dataset.kind = job.kind;
  } catch (error) {
    console.error("could not draw the result", error);
    out.replaceChildren(h("div", { class: "error-box", text: `Could not draw this result: ${error.message}` }));
  }
}

function showLoadError(error) {
  const auth = error instanceof ApiError && (error.status === 401 || error.status === 403);
  $("job-result").replaceChildren(h("div", { class: "error-box", id: "load-error" }, [
    h("h2", { text: auth ? "The API asked for a key" : "Could not read the job" }),
    h("p", {}, [error instanceof ApiError ? h("code", { text: error.code }) : null, " ", error.message]),
    auth ? h("p", { text: "Type your API key in the box above." }) : null,
  ]));
}

async function poll(everyMs) {
  for (;;) {
    const job = await getJob(jobId);
    if (TERMINAL.has(job.status)) return job;
    showProgress(job.status, job.progress, job.queue_position);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Follow the job's events until it ends; the queue position is re-read while it waits (events do not carry it). */
async function follow(job) {
  following = new AbortController();
  let status = job.status;
  let queuedTimer = null;
  const refreshQueue = async () => {
    if (status !== "queued") return;
    try {
      const fresh = await getJob(jobId);
      if (fresh.status === "queued") showProgress(fresh.status, fresh.progress, fresh.queue_position);
    } catch {
      /* the stream reports the job's fate; a missed queue position is not worth an error */
    }
  };
  queuedTimer = setInterval(refreshQueue, QUEUE_POLL_MS);
  let ended = false;
  try {
    await streamJobEvents(jobId, (event) => {
      status = event.status;
      if (TERMINAL.has(event.status)) ended = true;
      else showProgress(event.status, event.progress, status === "queued" ? job.queue_position : null);
    }, following.signal);
  } catch (error) {
    if (error.name === "AbortError") return null;
    if (error instanceof ApiError && error.status < 500) throw error;
  } finally {
    clearInterval(queuedTimer);
  }
  // The stream closed: read the finished job; if it closed early (a proxy, a restart), poll until the job ends.
  const final = ended ? await getJob(jobId) : null;
  return final && TERMINAL.has(final.status) ? final : poll(FALLBACK_POLL_MS);
}

async function load() {
  if (following) following.abort();
  try {
    const job = await getJob(jobId);
    showHead(job);
    if (TERMINAL.has(job.status)) {
      showFinal(job);
      return;
    }
    $("job-result").replaceChildren();
    showProgress(job.status, job.progress, job.queue_position);
    const final = await follow(job);
    if (final) showFinal(final);
  } catch (error) {
    showLoadError(error);
  }
}

enableTooltips();
keyBox(load);
load();
