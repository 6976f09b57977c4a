// The /v1 API from the page: JSON in and out, the problem+json detail as the error, the key.
// When the server requires keys (401), the page asks for one once and keeps it in this
// browser's localStorage; every call sends it as `Authorization: Bearer <key>`.

const KEY = "epochal.key";

export class ApiError extends Error {
  constructor(status, problem) {
    const lines = [problem.detail || problem.title || `HTTP ${status}`];
    for (const e of problem.errors || []) lines.push(`${(e.loc || []).join(".")}: ${e.msg}`);
    super(lines.join("\n"));
    this.status = status;
    this.problem = problem;
  }
}

function headers(extra = {}) {
  const key = localStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}`, ...extra } : { ...extra };
}

// Paths the page builds from ids: /v1/... made of safe characters, no "." or ".." segment
// (app.js checks ids too; this refuses whatever a page might still pass through).
const SAFE_PATH = /^\/v1(\/[A-Za-z0-9_.-]+)*$/;
export function safePath(path) {
  return SAFE_PATH.test(path) && !path.split("/").some((part) => part === "." || part === "..");
}

function url(path, query) {
  if (!safePath(path)) throw new Error(`refused an unsafe API path: ${path}`);
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) u.searchParams.append(k, one);
  }
  return u;
}

// For lib/upload.js (an XMLHttpRequest, for its upload progress): the same key and URLs.
export { headers as authHeaders, url as apiUrl, askForKey };

// api("/v1/jobs", {query: {limit: 20}}), api(`/v1/jobs/${id}/cancel`, {method: "POST"}),
// api("/v1/jobs", {method: "POST", body: spec}); returns the parsed JSON (null for 204).
export async function api(path, { method = "GET", query, body, raw, contentType } = {}) {
  const init = { method, headers: headers() };
  if (raw !== undefined) {
    init.body = raw;
    init.headers["Content-Type"] = contentType || "application/octet-stream";
  } else if (body !== undefined || method !== "GET") {
    init.body = body === undefined ? undefined : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const sent = localStorage.getItem(KEY);
  const r = await fetch(url(path, query), init);
  if (r.status === 401 && keyAgain(sent)) return api(path, { method, query, body, raw, contentType });
  if (!r.ok) {
    const problem = await r.json().catch(() => ({}));
    if (forbiddenOrigin(r.status, problem) && keyAgain(sent, ORIGIN_WHY)) {
      return api(path, { method, query, body, raw, contentType });
    }
    throw new ApiError(r.status, problem);
  }
  return r.status === 204 ? null : r.json();
}

// A file from the API (a model download) fetched with the key and saved through a blob URL:
// a plain link cannot send the Authorization header. Returns the file name it saved as.
export async function download(path, { query, filename } = {}) {
  const r = await fetch(url(path, query), { headers: headers() });
  if (r.status === 401 && askForKey()) return download(path, { query, filename });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({})));
  const named = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
  const name = (named && named[1]) || filename || "download";
  const href = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return name;
}

export function hasKey() {
  return !!localStorage.getItem(KEY);
}

// A server without keys (EPOCHAL_AUTH=off) that is reached on a non-loopback address accepts
// changes from its own page only with a key (api/browsers.py): a 403 forbidden_origin.
const ORIGIN_WHY = "This server needs an API key to accept changes from its page on this address.";

function forbiddenOrigin(status, problem) {
  return status === 403 && String(problem.type || "").endsWith(":forbidden_origin");
}

function askForKey(reason) {
  // A key kept here that drew a 401 was refused (revoked, or mistyped): the prompt says so.
  const why = typeof reason === "string" ? reason
    : localStorage.getItem(KEY) ? "The server refused this browser's API key." : "This Epochal server requires an API key.";
  const key = (window.prompt(`${why} Enter one (epochal keys create makes one):`) || "").trim();
  if (!key) return false;
  localStorage.setItem(KEY, key);
  showKeyStatus();
  return true;
}

// After a 401 to a request sent with key `sent` (null: none): try again at once when another
// call has set a new key since (calls made together ask once), else ask; false: declined.
function keyAgain(sent, why) {
  const now = localStorage.getItem(KEY);
  if (now && now !== sent) return true;
  return askForKey(why);
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY, key); else localStorage.removeItem(KEY);
  showKeyStatus();
}

export function showKeyStatus() {
  const node = document.getElementById("key-status");
  if (node) node.textContent = localStorage.getItem(KEY) ? "key set" : "";
  const button = document.getElementById("key-button");
  if (button) button.textContent = localStorage.getItem(KEY) ? "forget key" : "key";
}

// The header's key control: sets a key when none is kept, forgets the kept one otherwise.
export function keyControl() {
  if (localStorage.getItem(KEY)) {
    if (window.confirm("Forget the API key kept in this browser?")) setKey(null);
    return;
  }
  const key = (window.prompt("API key for this server (epochal keys create makes one):") || "").trim();
  if (key) setKey(key);
}

// The job's server-sent events (GET /v1/jobs/{id}/events) read with fetch, so that the key
// goes in a header (EventSource cannot send one). onEvent({event, data, id}) for each event;
// a dropped stream is reopened with Last-Event-ID until `end`. Returns a function that stops.
// `lastEventId` (name:step,... as the stream's ids) starts after points the page already has
// (read with GET /metrics), so the stream does not send a long series again.
export function followEvents(jobId, onEvent, { interval, lastEventId } = {}) {
  const controller = new AbortController();
  let lastId = lastEventId || null;
  let stopped = false;
  (async () => {
    while (!stopped) {
      try {
        const h = headers(lastId ? { "Last-Event-ID": lastId } : {});
        const sent = localStorage.getItem(KEY);
        const r = await fetch(url(`/v1/jobs/${jobId}/events`, { interval }), { headers: h, signal: controller.signal });
        if (r.status === 401 && keyAgain(sent)) continue;
        if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({})));
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const event = parseEvent(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (!event) continue;
            if (event.id) lastId = event.id;
            onEvent(event);
            if (event.event === "end") { stopped = true; return; }
          }
        }
      } catch (e) {
        if (stopped || e.name === "AbortError") return;
        if (e instanceof ApiError && e.status < 500) { onEvent({ event: "error", data: e }); return; }
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return () => { stopped = true; controller.abort(); };
}

function parseEvent(text) {
  const event = { event: "message", data: "", id: null };
  for (const line of text.split("\n")) {
    if (line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "event") event.event = value;
    else if (field === "data") event.data += (event.data ? "\n" : "") + value;
    else if (field === "id") event.id = value;
  }
  if (!event.data) return null;
  try { event.data = JSON.parse(event.data); } catch { /* left as text */ }
  return event;
}
