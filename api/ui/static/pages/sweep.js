// #/sweeps/<id>: a sweep's status and counts, its leaderboard, each trial's curve of the sweep's
// metric (a pruned trial dashed, ending where it stopped), one scatter per searched parameter
// (its values against the metric), and pause/resume/cancel. A pruned trial's status says why
// (the leaderboard row's `pruned`, its job's summary.pruned: the rule, the epoch and the reason,
// a health condition's layer and figure included). Refreshed every 2.5 s until the sweep has
// ended and no trial runs.
import { api } from "../lib/api.js";
import { color, lineChart } from "../lib/chart.js";
import { el, progressBar, statusText, table } from "../lib/dom.js";
import { scatterChart } from "../lib/scatter.js";
import { counts, valueText } from "../lib/format.js";

const FINISHED = new Set(["succeeded", "failed", "cancelled", "pruned"]);
const ENDED = new Set(["finished", "cancelled"]);
const MAX_CURVES = 50; // the best-ranked trials drawn; the leaderboard lists them all

// Each action's path written out, so tests/ui/test_endpoints.py reads it.
const ACTIONS = {
  pause: (id) => api(`/v1/sweeps/${id}/pause`, { method: "POST" }),
  resume: (id) => api(`/v1/sweeps/${id}/resume`, { method: "POST" }),
  cancel: (id) => api(`/v1/sweeps/${id}/cancel`, { method: "POST" }),
};

function short(path) { return path.split(".").pop(); }


export async function render(root, route) {
  const id = route.id;
  const status = el("span", { "data-testid": "sweep-status" });
  const countsBox = el("span", { "data-testid": "sweep-counts" });
  const message = el("div");
  const buttons = {};
  for (const action of ["pause", "resume", "cancel"]) {
    buttons[action] = el("button", { "data-testid": action, onclick: () => act(action) }, action);
  }
  const title = el("h1", {}, `Sweep ${id}`);
  const about = el("p", { class: "muted" });
  const board = el("div");
  const trialsBox = el("div", { class: "chart", "data-testid": "chart-trials" });
  const paramsBox = el("div", { class: "charts", "data-testid": "chart-params" });
  root.append(title, about,
    el("div", { class: "toolbar" }, "status ", status, countsBox, buttons.pause, buttons.resume, buttons.cancel),
    message, el("h2", {}, "Leaderboard"), board,
    el("h2", {}, "Trials"), trialsBox, el("h2", {}, "Parameters against the metric"), paramsBox);

  const curves = new Map(); // job id -> {epochs, values} of a finished trial (final)
  let trialsChart = null;
  let scatters = [];
  let scatterKey = "";
  let timer = null;
  let stopped = false;

  async function act(action) {
    message.replaceChildren();
    try {
      await ACTIONS[action](id);
    } catch (e) {
      message.replaceChildren(el("div", { class: "error" }, String(e.message || e)));
    }
    await refresh();
  }

  async function curveOf(entry, metric, width) {
    if (curves.has(entry.job_id)) return curves.get(entry.job_id);
    const m = await api(`/v1/jobs/${entry.job_id}/metrics`, { query: { names: metric, max_points: width } });
    const s = m.series.find((one) => one.name === metric) || { epochs: [], values: [] };
    const curve = { x: s.epochs, y: s.values };
    if (FINISHED.has(entry.status)) curves.set(entry.job_id, curve);
    return curve;
  }

  function statusCell(t) {
    const why = t.pruned;
    if (t.status !== "pruned" || !why) return statusText(t.status);
    const text = `by ${why.rule} at epoch ${why.epoch}${why.reason ? `: ${why.reason}` : ""}`;
    return el("span", {}, statusText(t.status),
      el("div", { class: "muted pruned-reason", "data-testid": "pruned-reason", "data-rule": why.rule, title: text }, text));
  }

  async function load() {
    const [sweep, lb] = await Promise.all([api(`/v1/sweeps/${id}`), api(`/v1/sweeps/${id}/leaderboard`)]);
    const metric = sweep.metric.name;
    const paths = Object.keys(sweep.spec.parameters || {});
    title.textContent = `Sweep ${sweep.name || sweep.id}`;
    about.textContent = `${sweep.id} · ${sweep.method} · ${sweep.metric.goal} ${metric} · at most ${sweep.max_parallel} at once`
      + (sweep.run_cap ? ` · run cap ${sweep.run_cap}` : "");
    status.replaceChildren(statusText(sweep.status));
    const c = sweep.counts;
    const { done, total } = counts(c);
    countsBox.replaceChildren(progressBar(done, total),
      ` ${done}/${total} done · ${c.running} running · ${c.queued} queued · ${c.succeeded} succeeded · ${c.failed} failed · ${c.pruned} pruned · ${c.cancelled} cancelled`);
    buttons.pause.disabled = sweep.status !== "running";
    buttons.resume.disabled = sweep.status !== "paused";
    buttons.cancel.disabled = ENDED.has(sweep.status);

    const trialNo = (t) => (t.trial ?? "-");
    const columns = [
      { label: "rank", value: (t) => t.rank ?? "-", num: true },
      { label: "trial", value: trialNo, num: true },
      { label: "job", value: (t) => el("a", { href: `#/jobs/${t.job_id}` }, t.job_id) },
      { label: "status", value: statusCell },
      { label: metric, value: (t) => t.value, num: true },
      { label: "epoch", value: (t) => t.epoch, num: true },
      ...paths.map((p) => ({ label: short(p), value: (t) => valueText(t.params[p]) })),
    ];
    const t = table(columns, lb.trials, { "data-testid": "leaderboard" });
    lb.trials.forEach((entry, i) => t.tBodies[0].rows[i].setAttribute("data-job-id", entry.job_id));
    paths.forEach((p, i) => t.tHead.rows[0].cells[6 + i].setAttribute("title", p));
    board.replaceChildren(t);

    // Curves: by trial number, so that a trial keeps its color as the ranks change.
    const drawn = lb.trials.slice(0, MAX_CURVES).sort((a, b) => (a.trial ?? 0) - (b.trial ?? 0));
    const width = Math.max(100, Math.floor(trialsBox.clientWidth || 600));
    const got = await Promise.all(drawn.map((entry) => curveOf(entry, metric, width)));
    if (stopped) return sweep;
    const series = drawn.map((entry, i) => ({
      label: `trial ${trialNo(entry)}${entry.status === "pruned" ? " (pruned)" : ""}`,
      x: got[i].x, y: got[i].y, color: color(entry.trial ?? i),
      dash: entry.status === "pruned" ? [6, 4] : undefined,
    }));
    // A pruned trial also gets a marker at its last point: where it stopped.
    drawn.forEach((entry, i) => {
      const n = got[i].x.length;
      if (entry.status !== "pruned" || !n) return;
      series.push({ label: `trial ${trialNo(entry)} stopped`, x: [got[i].x[n - 1]], y: [got[i].y[n - 1]], color: color(entry.trial ?? i) });
    });
    if (!trialsChart) trialsChart = lineChart(trialsBox, { title: metric, xLabel: "epoch", wholeX: true, series });
    else trialsChart.update(series);

    const withValue = lb.trials.filter((entry) => entry.value !== null);
    const key = JSON.stringify(withValue.map((e) => [e.job_id, e.value]));
    if (key !== scatterKey) {
      scatterKey = key;
      for (const s of scatters) s.destroy();
      paramsBox.replaceChildren();
      scatters = paths.map((p, i) => {
        const box = el("div", { class: "chart" });
        paramsBox.append(box);
        return scatterChart(box, {
          title: short(p), xLabel: p, yLabel: metric, colorIndex: i,
          points: withValue.map((e) => ({ x: e.params[p], y: e.value })),
        });
      });
    }
    return sweep;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const sweep = await load();
      const busy = !ENDED.has(sweep.status) || sweep.counts.running > 0 || sweep.counts.queued > 0;
      if (busy && !stopped) timer = setTimeout(refresh, 2500);
    } catch (e) {
      message.replaceChildren(el("div", { class: "error" }, String(e.message || e)));
      if (!stopped) timer = setTimeout(refresh, 2500);
    }
  }

  await load();
  timer = setTimeout(refresh, 2500); // refresh() decides whether to go on
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (trialsChart) trialsChart.destroy();
    for (const s of scatters) s.destroy();
  };
}
