// A job's live curves: the charts of its series (lib/series.js's groups), a log-scale toggle
// and the x axis (step or epoch).
//
// load() reads GET /v1/jobs/{id}/metrics?max_points=<chart width> (long series downsampled,
// with min/max per bucket); onMetrics(series) appends the points a `metrics` event brings, and
// cursor() is the events' Last-Event-ID for what the charts hold. A per-step series (batch_loss,
// diag/…) longer than the chart's width is not appended to: it is read again, downsampled, at
// most every REFETCH_MS, so a long run keeps a bounded number of points on the page; finish()
// reads its last points once the job has ended.
import { api } from "./api.js";
import { lineChart } from "./chart.js";
import { el } from "./dom.js";
import { SeriesStore, chartGroups, chartSeries, isStepSeries, liveDiagnostics } from "./series.js";

const REFETCH_MS = 2000;

// jobCurves(jobId, {x: "step"|"epoch", progress: () => job.progress, onDraw}) → {node, load,
// onMetrics, finish, cursor, liveWarnings, series, stop}; onDraw() after each draw, and
// series(name) the series held ({steps, epochs, values}): for the views beside the curves
// (lib/lr_finder.js).
export function jobCurves(jobId, { x = "step", progress = () => ({}), onDraw = () => {} } = {}) {
  const store = new SeriesStore();
  const charts = new Map(); // group name → {group, chart, box}
  let refetchTimer = null;
  let lastRefetch = 0;
  let drawPending = false;
  let stopped = false;
  let stale = false; // events held back since the last read: finish() reads again

  const logScale = el("input", { type: "checkbox", "data-testid": "log-scale" });
  const xAxis = el("select", { "data-testid": "x-axis" },
    el("option", { value: "step" }, "step"), el("option", { value: "epoch" }, "epoch"));
  xAxis.value = x === "epoch" ? "epoch" : "step";
  const chartsBox = el("div", { class: "charts" });
  const noCurves = el("p", { class: "muted" }, "No points yet.");
  logScale.addEventListener("change", () => { for (const c of charts.values()) c.chart.setLog(logScale.checked || !!c.group.log); });
  xAxis.addEventListener("change", () => rebuildCharts());
  const node = el("div", { class: "curves" },
    el("div", { class: "toolbar" }, el("label", {}, logScale, " log scale"), el("label", {}, "x axis ", xAxis)),
    noCurves, chartsBox);

  function maxPoints() {
    const width = chartsBox.clientWidth || document.body.clientWidth || 900;
    const columns = width >= 940 ? 2 : 1;
    return Math.max(100, Math.min(4000, Math.floor(width / columns)));
  }

  // For per-step series on the epoch axis; before the job says, from an epoch series's last point.
  function stepsPerEpoch() {
    const known = (progress() || {}).steps_per_epoch;
    if (known) return known;
    const loss = store.get("loss");
    const last = loss ? loss.steps.length - 1 : -1;
    return last >= 0 && loss.epochs[last] ? loss.steps[last] / loss.epochs[last] : undefined;
  }

  function drawSoon() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; if (!stopped) draw(); });
  }

  function draw() {
    const groups = chartGroups(store.names());
    noCurves.hidden = store.names().length > 0; // a finder's series alone: drawn beside
    for (const group of groups) {
      const series = chartSeries(store, group, { xAxis: xAxis.value, stepsPerEpoch: stepsPerEpoch() });
      let c = charts.get(group.name);
      if (!c) {
        const box = el("div", { class: "chart", "data-testid": `chart-${group.name}` }, el("h3", {}, group.title));
        chartsBox.append(box);
        const chart = lineChart(box, { title: "", xLabel: xAxis.value, log: logScale.checked || !!group.log, series });
        c = { group, chart, box };
        charts.set(group.name, c);
      } else {
        c.group = group;
        c.chart.update(series);
      }
    }
    onDraw();
  }

  function rebuildCharts() {
    for (const c of charts.values()) { c.chart.destroy(); c.box.remove(); }
    charts.clear();
    draw();
  }

  async function loadMetrics(names) {
    const query = { max_points: maxPoints() };
    if (names) query.names = names.join(",");
    const answer = await api(`/v1/jobs/${jobId}/metrics`, { query });
    lastRefetch = Date.now();
    store.replace(answer.series);
  }

  function refetchStepSeries(now = false) {
    if (refetchTimer) return;
    const wait = now ? 0 : Math.max(0, lastRefetch + REFETCH_MS - Date.now());
    refetchTimer = setTimeout(async () => {
      if (stopped) return;
      stale = false; // an event held back during this read sets it again
      try {
        const names = store.names().filter(isStepSeries);
        if (names.length) { await loadMetrics(names); drawSoon(); }
      } catch { stale = true; /* the next event (or finish) tries again */ }
      refetchTimer = null;
    }, wait);
  }

  function onMetrics(list) {
    const limit = maxPoints();
    const direct = [];
    let deferred = false;
    for (const s of list) {
      const have = (store.get(s.name) || { steps: [] }).steps.length;
      if (isStepSeries(s.name) && have + s.steps.length > limit) deferred = true;
      else direct.push(s);
    }
    if (store.append(direct)) drawSoon();
    if (deferred) { stale = true; refetchStepSeries(); }
  }

  // After the job's end: the last points of a per-step series that is read downsampled.
  function finish() {
    clearTimeout(refetchTimer);
    refetchTimer = null;
    if (stale || store.longest(store.names().filter(isStepSeries)) >= maxPoints()) refetchStepSeries(true);
    drawSoon();
  }

  return {
    node,
    async load() { await loadMetrics(); draw(); },
    onMetrics,
    finish,
    cursor: () => store.cursor(),
    liveWarnings: () => liveDiagnostics(store),
    series: (name) => store.get(name),
    stop() {
      stopped = true;
      clearTimeout(refetchTimer);
      for (const c of charts.values()) c.chart.destroy();
    },
  };
}
