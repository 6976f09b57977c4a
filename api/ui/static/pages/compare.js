// #/compare?ids=a,b[,...]: 2 to 20 jobs side by side (GET /v1/compare): one chart per metric
// with one curve per job (a job keeps its color on every chart), by epoch or by step; the
// parameters that differ; each metric's final and best value per job.
import { api } from "../lib/api.js";
import { color, lineChart } from "../lib/chart.js";
import { el, statusText, table } from "../lib/dom.js";
import { metricText, valueText } from "../lib/format.js";

// loss first, then each score before its val_ twin, lr last.
function order(a, b) {
  const rank = (n) => (n === "loss" ? 0 : n === "val_loss" ? 1 : n === "lr" ? 3 : 2);
  const base = (n) => n.replace(/^val_/, "");
  return rank(a) - rank(b) || base(a).localeCompare(base(b)) || a.localeCompare(b);
}

function label(job) { return `${job.name} (${job.id.slice(0, 8)})`; }

export async function render(root, route) {
  const ids = (route.query.get("ids") || "").split(",").map((s) => s.trim()).filter(Boolean);
  root.append(el("h1", {}, "Compare"));
  if (ids.length < 2 || ids.length > 20) {
    root.append(el("p", { class: "error" }, `choose 2 to 20 jobs to compare (received ${ids.length}): select them in the jobs table`));
    return;
  }
  const axis = el("select", { "data-testid": "x-axis" },
    el("option", { value: "epoch" }, "epoch"), el("option", { value: "step" }, "step"));
  axis.value = route.query.get("x") === "step" ? "step" : "epoch";
  const jobsLine = el("p", { class: "muted" });
  const charts = el("div", { class: "charts" });
  const params = el("div");
  const metrics = el("div");
  const error = el("div");
  root.append(error, jobsLine, el("div", { class: "toolbar" }, el("label", {}, "x axis ", axis)),
    charts, el("h2", {}, "Parameters that differ"), params, el("h2", {}, "Final and best values"), metrics);

  let drawn = [];
  let stopped = false;
  async function load() {
    const c = await api("/v1/compare", { query: { ids: ids.join(","), x: axis.value } });
    if (stopped) return; // left while it loaded: no charts after stop()
    error.replaceChildren();
    for (const chart of drawn) chart.destroy();
    drawn = [];
    jobsLine.replaceChildren(...c.jobs.flatMap((j, i) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = color(i);
      return [swatch, el("a", { href: `#/jobs/${j.id}` }, label(j)), " ", statusText(j.status), "  "];
    }));
    charts.replaceChildren();
    for (const name of Object.keys(c.series).sort(order)) {
      const s = c.series[name];
      const box = el("div", { class: "chart", "data-testid": `chart-${name}` }, el("h3", {}, name));
      charts.append(box);
      drawn.push(lineChart(box, {
        xLabel: c.x, wholeX: true,
        series: c.jobs.map((j, i) => ({ label: label(j), x: s.x, y: s.values[i], color: color(i) })),
      }));
    }
    if (!Object.keys(c.series).length) charts.append(el("p", { class: "muted" }, "no per-epoch series yet"));
    renderTables(c);
  }

  function renderTables(c) {
    const perJob = c.jobs.map((j, i) => ({ label: label(j), value: (row) => row.cell(i), num: true }));
    const paramRows = Object.entries(c.params).map(([path, values]) => ({
      path, cell: (i) => valueText(values[i], String), // as written: 0.001, not 0.001000
    }));
    params.replaceChildren(paramRows.length
      ? table([{ label: "parameter", value: (r) => r.path }, ...perJob], paramRows, { "data-testid": "compare-params" })
      : el("p", { class: "muted", "data-testid": "compare-params" }, "the specs are the same (name and tags aside)"));
    const metricRows = Object.keys(c.metrics).sort(order).flatMap((name) => [
      { name, kind: "final", cell: (i) => metricText(c.metrics[name][i]?.final) },
      { name, kind: "best", cell: (i) => {
        const m = c.metrics[name][i];
        return m && m.best !== null ? `${metricText(m.best)} @ step ${m.best_step}` : "-";
      } },
    ]);
    metrics.replaceChildren(table(
      [{ label: "metric", value: (r) => r.name }, { label: "", value: (r) => r.kind }, ...perJob],
      metricRows, { "data-testid": "compare-metrics" }));
  }

  // The axis goes into the URL (a reload keeps it) without a hashchange (no new render).
  axis.addEventListener("change", () => {
    const query = new URLSearchParams(route.query);
    query.set("x", axis.value);
    history.replaceState(null, "", `#/compare?${query.toString().replaceAll("%2C", ",")}`);
    load().catch(showError);
  });
  function showError(e) {
    if (!stopped) error.replaceChildren(el("div", { class: "error" }, String(e.message || e)));
  }
  await load();
  return () => { stopped = true; for (const chart of drawn) chart.destroy(); drawn = []; };
}
