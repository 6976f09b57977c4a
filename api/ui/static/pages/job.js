// #/jobs/<id>: one job. Why it stopped and its warnings first (where they cannot be missed), its
// status, progress, timings, device, worker, attempts and error; its learning-rate finder's
// curve and suggestions (lib/lr_finder.js); live curves; the Keras-style summary; checkpoints;
// cancel, resume, clone (at the finder's suggested rate too) and model downloads; the
// normalized spec as YAML.
//
// Live: the curves (lib/curves.js) read the metrics once, then the job's events bring the new
// points and the progress, from where that read left off (Last-Event-ID).
import { api, download, followEvents } from "../lib/api.js";
import { jobCurves } from "../lib/curves.js";
import { el, num, progressBar } from "../lib/dom.js";
import { when } from "../lib/format.js";
import { finderView } from "../lib/lr_finder.js";
import { stopReason } from "../lib/stop_reason.js";
import { toYaml } from "../lib/yaml.js";

const LIVE = new Set(["queued", "running"]);
const RESUMABLE = new Set(["cancelled", "failed"]);
const FORMATS = ["safetensors", "onnx", "torchscript"];
const EVENTS_INTERVAL = 0.5; // seconds between the stream's polls of the store

// Each action's path written out, so tests/ui/test_endpoints.py reads it.
const ACTIONS = {
  cancel: (id) => api(`/v1/jobs/${id}/cancel`, { method: "POST" }),
  resume: (id) => api(`/v1/jobs/${id}/resume`, { method: "POST" }),
  clone: (id, overrides) => api(`/v1/jobs/${id}/clone`, { method: "POST", body: { overrides } }),
};
// The clone that takes the source's learning-rate finder suggestion (docs/vocabulary.md).
const SUGGESTED_RATE = { "training.optimizer.learning_rate": "suggested" };


function seconds(value) {
  if (value === null || value === undefined) return "-";
  if (value >= 100) return `${value.toFixed(0)} s`;
  return value >= 1 ? `${Number(value).toPrecision(3)} s` : `${Number(value * 1000).toPrecision(3)} ms`;
}

// The job's warnings: the API's (a queue no worker takes, a lost worker) and the training
// diagnostics' (vanishing/exploding gradients, dead ReLUs, …) with the initialization
// pre-flight's (`initial_loss`), all in summary.diagnostics.warnings.
export function warningsOf(job) {
  const out = (job.warnings || []).map((w) => ({ code: w.code, message: w.message }));
  for (const w of ((job.summary || {}).diagnostics || {}).warnings || []) {
    out.push({ code: w.type, message: w.message, layer: w.layer, step: w.step });
  }
  return out;
}

// "training.epochs=5\nmodel.layers[0].units=64" → {"training.epochs": 5, ...}; a value is read
// as JSON when it can be (5, true, null, "x", [1, 2]), as text otherwise.
export function parseOverrides(text) {
  const out = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`line ${i + 1}: expected path=value, e.g. training.epochs=5; received ${JSON.stringify(line)}`);
    const value = line.slice(at + 1).trim();
    let parsed;
    try { parsed = JSON.parse(value); } catch { parsed = value; }
    out[line.slice(0, at).trim()] = parsed;
  }
  return out;
}

export async function render(root, route) {
  const id = route.id;
  let job = await api(`/v1/jobs/${id}`);
  let stopEvents = null;
  let stopped = false;

  // --- the page's parts, filled by show(job) ---
  const title = el("h1", {}, job.name, " ", el("span", { class: "muted" }, job.id));
  const warnings = el("div", { "data-testid": "job-warnings" });
  const stopBox = el("div", { "data-testid": "job-stop-reason" });
  const status = el("span", { "data-testid": "job-status" });
  const progress = el("span", { "data-testid": "job-progress", class: "job-progress" });
  const note = el("div");
  const buttons = el("div", { class: "toolbar" });
  const cloneForm = cloneFormFor();
  const details = el("div", { class: "job-details" });
  const error = el("div");
  const summary = el("div", { "data-testid": "job-summary" });
  const checkpoints = el("div", { "data-testid": "job-checkpoints" });
  const spec = el("pre", { "data-testid": "job-spec" }, toYaml(job.spec));

  const finder = finderView({ onClone: () => cloneWith(SUGGESTED_RATE) });
  const curves = jobCurves(job.id, {
    x: route.query.get("x"), progress: () => job.progress,
    onDraw: () => finder.update(curves.series, job.summary),
  });

  root.append(
    title, stopBox, warnings,
    el("div", { class: "toolbar" }, el("strong", {}, "status "), status, progress),
    note, buttons, cloneForm.node, error, details,
    finder.node,
    el("h2", {}, "Curves"), curves.node,
    el("h2", {}, "Model"), summary,
    el("h2", {}, "Checkpoints"), checkpoints,
    el("h2", {}, "Spec"), spec,
  );

  // The API's and the summary's warnings; while the job runs (its diagnostics' warnings come
  // with its end), what its gradient norms already show, marked live.
  function showWarnings() {
    const warned = warningsOf(job);
    const diagnosed = ((job.summary || {}).diagnostics || {}).warnings;
    const live = LIVE.has(job.status) && !diagnosed ? curves.liveWarnings() : [];
    warnings.replaceChildren(...warned.map((w) =>
      el("div", { class: "warning", "data-warning": w.code, role: "alert" },
        el("strong", {}, w.code.replace(/_/g, " ")), w.layer ? ` (${w.layer}, step ${w.step})` : "", ": ", w.message)),
    ...live.map((w) => el("div", { class: "warning", "data-warning": w.code, "data-live": "", role: "status" },
      el("strong", {}, `${w.code.replace(/_/g, " ")} (live)`), ` (${w.layer}, step ${w.step}): ${w.message}`)));
  }

  function show(next) {
    job = next;
    showWarnings();
    stopBox.replaceChildren(...[stopReason(job.summary)].filter(Boolean));
    status.className = `status-${job.status}`;
    status.textContent = job.status;
    showProgress(job.progress);
    note.replaceChildren(...[
      job.cancel_requested && LIVE.has(job.status) ? el("span", { class: "muted" }, "cancel requested… ") : null,
      job.source_job_id ? el("span", {}, "cloned from ", el("a", { href: `#/jobs/${job.source_job_id}` }, job.source_job_id.slice(0, 8)), " ") : null,
      job.sweep_id ? el("span", {}, "trial of sweep ", el("a", { href: `#/sweeps/${job.sweep_id}` }, job.sweep_id.slice(0, 8))) : null,
    ].filter(Boolean));
    showButtons();
    showDetails();
    error.replaceChildren(...(job.error ? [el("div", { class: "error", "data-testid": "job-error" },
      `${job.error.type || "error"}: ${job.error.message || JSON.stringify(job.error)}`)] : []));
    showSummary();
    showCheckpoints();
    finder.update(curves.series, job.summary);
  }

  function showProgress(p) {
    p = p || {};
    const parts = [`epoch ${p.epoch || 0}/${p.epochs ?? "?"}`];
    if (p.step !== undefined) parts.push(`step ${num(p.step)}`);
    progress.replaceChildren(progressBar(p.epoch || 0, p.epochs), " ", parts.join(" · "));
  }

  function showButtons() {
    const live = LIVE.has(job.status);
    const list = [];
    if (live) list.push(el("button", { "data-testid": "cancel", onclick: () => act("cancel") }, "Cancel"));
    if (RESUMABLE.has(job.status) && !job.sweep_id) {
      list.push(el("button", { "data-testid": "resume", onclick: () => act("resume") }, "Resume"));
    }
    list.push(el("button", { "data-testid": "clone", onclick: () => cloneForm.toggle() }, "Clone…"));
    if (job.status === "succeeded") {
      list.push(el("span", { class: "muted" }, "download:"));
      for (const format of FORMATS) {
        list.push(downloadLink(`download-${format}`, format, { format }));
      }
    }
    buttons.replaceChildren(...list);
  }

  function downloadLink(testid, text, query) {
    const path = `/v1/jobs/${job.id}/model`;
    const href = `${path}?${new URLSearchParams(query)}`;
    const a = el("a", { href, "data-testid": testid, download: "" }, text);
    // A plain link cannot send the API key: fetch the file with it and save it from a blob.
    a.addEventListener("click", (e) => {
      e.preventDefault();
      a.classList.add("busy");
      download(path, { query }).catch((x) => problem(x)).finally(() => a.classList.remove("busy"));
    });
    return a;
  }

  function showDetails() {
    const rows = [
      ["queue", job.queue], ["device", job.device || "-"], ["worker", job.worker || "-"],
      ["attempts", String(job.attempts)], ["created", when(job.created_at)],
      ["started", when(job.started_at)], ["finished", when(job.finished_at)],
      ["tags", (job.tags || []).join(", ") || "-"],
    ];
    const s = job.summary || {};
    if (s.duration_seconds !== undefined) rows.push(["duration", seconds(s.duration_seconds)]);
    if (s.resumed_from) rows.push(["resumed from", JSON.stringify(s.resumed_from)]);
    const timings = Object.entries(s.timings || {});
    const finals = Object.entries(s.final || {});
    details.replaceChildren(...[
      el("table", { class: "kv", "data-testid": "job-details" },
        el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))),
      timings.length ? el("table", { class: "kv", "data-testid": "job-timings" },
        el("thead", {}, el("tr", {}, el("th", { colspan: 2 }, "timings"))),
        el("tbody", {}, timings.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "num" }, seconds(v)))))) : null,
      finals.length ? el("table", { class: "kv", "data-testid": "job-final" },
        el("thead", {}, el("tr", {}, el("th", {}, "series"), el("th", { class: "num" }, "final"), el("th", { class: "num" }, "best"))),
        el("tbody", {}, finals.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "num" }, num(v)),
          el("td", { class: "num" }, num((s.best || {})[k])))))) : null,
    ].filter(Boolean));
  }

  function showSummary() {
    const s = job.summary || {};
    const layers = s.layers || [];
    const rows = layers.map((l) => el("tr", {},
      el("td", {}, l.name), el("td", {}, l.type),
      el("td", {}, `(None, ${(l.output_shape || []).join(", ")})`), el("td", { class: "num" }, num(l.params))));
    summary.replaceChildren(
      el("table", { class: "layers" },
        el("thead", {}, el("tr", {}, el("th", {}, "Layer"), el("th", {}, "Type"), el("th", {}, "Output shape"), el("th", { class: "num" }, "Param #"))),
        el("tbody", {}, s.input_shape ? el("tr", { class: "muted" }, el("td", {}, "input"), el("td", {}, ""),
          el("td", {}, `(None, ${s.input_shape.join(", ")})`), el("td", { class: "num" }, "0")) : null, rows)),
      el("p", {}, "Total params: ", el("strong", { "data-testid": "parameter-count" }, num(s.parameter_count)),
        s.train_samples !== undefined ? ` · ${num(s.train_samples)} training samples, ${num(s.val_samples)} validation` : ""),
    );
  }

  function showCheckpoints() {
    const pointers = Object.entries(job.checkpoint || {}).filter(([, c]) => c);
    const stats = (job.summary || {}).checkpoints;
    if (!pointers.length) {
      checkpoints.replaceChildren(el("p", { class: "muted" }, "No checkpoint."));
      return;
    }
    const rows = pointers.map(([which, c]) => el("tr", { "data-checkpoint": which },
      el("td", {}, which), el("td", { class: "num" }, num(c.epoch)), el("td", { class: "num" }, num(c.step)),
      el("td", { class: "num" }, num(c.attempt)),
      el("td", {}, downloadLink(`download-checkpoint-${which}`, "safetensors", { checkpoint: which }))));
    checkpoints.replaceChildren(...[
      el("table", {}, el("thead", {}, el("tr", {}, ["checkpoint", "epoch", "step", "attempt", "weights"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)),
      stats ? el("p", { class: "muted" }, `${num(stats.written)} written, ${num(stats.bytes)} bytes`) : null,
    ].filter(Boolean));
  }

  function problem(e) {
    error.replaceChildren(el("div", { class: "error", "data-testid": "action-error" }, String(e.message || e)));
  }

  async function act(verb) {
    try {
      const next = await ACTIONS[verb](job.id);
      show(next);
      if (LIVE.has(next.status)) follow();
    } catch (e) { problem(e); }
  }

  function cloneFormFor() {
    const text = el("textarea", { rows: 4, cols: 60, "data-testid": "clone-overrides",
      placeholder: "one override a line, path=value:\ntraining.epochs=5\ntraining.optimizer.learning_rate=0.01" });
    const submit = el("button", { "data-testid": "clone-submit" }, "Submit clone");
    const node = el("div", { class: "clone-form", hidden: true },
      el("div", {}, "Overrides (path=value, value as JSON):"), text, el("div", {}, submit));
    submit.addEventListener("click", () => {
      let overrides;
      try { overrides = parseOverrides(text.value); } catch (e) { problem(e); return; }
      cloneWith(overrides);
    });
    return { node, toggle() { node.hidden = !node.hidden; if (!node.hidden) text.focus(); } };
  }

  // A clone of this job with `overrides` (path → value); the page moves to it.
  async function cloneWith(overrides) {
    try {
      const next = await ACTIONS.clone(job.id, overrides);
      location.hash = `#/jobs/${next.id}`;
    } catch (e) { problem(e); }
  }


  function onEvent({ event, data }) {
    if (stopped) return;
    if (event === "metrics") {
      curves.onMetrics(data.series || []);
      if ((data.series || []).some((s) => s.name.startsWith("diag/grad_norm/"))) showWarnings();
    } else if (event === "progress") {
      const changed = data.status !== job.status;
      job = { ...job, status: data.status, progress: data.progress };
      status.className = `status-${job.status}`;
      status.textContent = job.status;
      showProgress(job.progress);
      if (changed) api(`/v1/jobs/${job.id}`).then((j) => { if (!stopped) show(j); }).catch(() => {});
    } else if (event === "end") {
      show(data);
      stopEvents = null;
      curves.finish();
    } else if (event === "error") {
      problem(data);
    }
  }

  function follow() {
    if (stopEvents) stopEvents();
    stopEvents = followEvents(job.id, onEvent, { interval: EVENTS_INTERVAL, lastEventId: curves.cursor() || undefined });
  }

  show(job);
  await curves.load();
  showWarnings();
  if (LIVE.has(job.status)) follow();

  return () => {
    stopped = true;
    if (stopEvents) stopEvents();
    curves.stop();
    finder.destroy();
  };
}
