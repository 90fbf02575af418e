// The pages' one way to the API: every request carries the key typed into the page, as the API will ask for it.
// EventSource cannot send headers, so the event stream is read with fetch and a streamed body instead.

const KEY_ITEM = "interp.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

/** An API error: the envelope's code, message and field, and the HTTP status. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.field = error.field ?? null;
  }
}

async function request(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || { message: text });
  return data;
}

/** The ApiError of a failed streamed or binary response, from its JSON envelope when it has one. */
async function errorOf(response) {
  try {
    return new ApiError(response.status, (await response.json()).error || {});
  } catch {
    return new ApiError(response.status, {});
  }
}

/** A file a job links to (result.artifact), fetched with the page's key and saved through a temporary link. */
export async function downloadArtifact(link) {
  const response = await fetch(link.url, { headers: headers() });
  if (!response.ok) throw await errorOf(response);
  const url = URL.createObjectURL(await response.blob());
  const anchor = Object.assign(document.createElement("a"), { href: url, download: link.name });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const getJob = (id) => request("GET", `/v1/jobs/${encodeURIComponent(id)}`);
export const submitJob = (body) => request("POST", "/v1/jobs", body);
export const listModels = () => request("GET", "/v1/models");
export const listJobs = (limit = 10) => request("GET", `/v1/jobs?limit=${limit}`);
export const openapi = () => request("GET", "/schema/openapi.json");

/** Split a text/event-stream into events: {event, data, id}; comments (keep-alives) are skipped. */
export function parseEvents(buffer) {
  const events = [];
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop();
  for (const block of blocks) {
    const event = { event: "message", data: "", id: null };
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "event") event.event = value;
      else if (field === "id") event.id = value;
    }
    if (data.length) events.push({ ...event, data: data.join("\n") });
  }
  return { events, rest };
}

/** Calls onEvent(JobEvent) for each event of the job's stream until it ends; resolves when the stream closes. */
export async function streamJobEvents(id, onEvent, signal) {
  const response = await fetch(`/v1/jobs/${encodeURIComponent(id)}/events`, {
    headers: headers({ Accept: "text/event-stream" }),
    signal,
  });
  if (!response.ok || !response.body) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const parsed = parseEvents(buffer + value);
    buffer = parsed.rest;
    for (const event of parsed.events) onEvent(JSON.parse(event.data));
  }
}
