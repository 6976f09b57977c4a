// Points without lines on uPlot: a parameter's values (x) against a metric (y), one point per
// trial. scatterChart(container, {title, xLabel, yLabel, points: [{x, y, label?}], categories?})
// draws numbers as they are (on a log axis when they are all positive and span two decades or
// more, as learning rates do) and text or booleans as evenly spaced categories. The uPlot root
// carries data-points like lib/chart.js's charts. Returns {destroy()}.
import { color } from "./chart.js";
import { finite } from "./format.js";

// An axis tick: 0.0001 and 0.925 as such, never rounded to 0.
function decade(v) { const e = Math.log10(v); return Math.abs(e - Math.round(e)) < 1e-9; }
function tick(v) { return v === null || v === undefined ? "" : String(Number(v.toPrecision(6))); }

export function scatterChart(container, { title = "", xLabel = "", yLabel = "", points = [], height = 220, colorIndex = 0 } = {}) {
  const numeric = points.every((p) => typeof p.x === "number");
  const categories = numeric ? [] : [...new Set(points.map((p) => String(p.x)))].sort();
  const xs = points.map((p) => (numeric ? p.x : categories.indexOf(String(p.x))));
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const x = order.map((i) => xs[i]);
  const y = order.map((i) => finite(points[i].y));
  const positive = numeric && x.length > 0 && x[0] > 0;
  const log = positive && x[x.length - 1] / x[0] >= 100;
  const c = color(colorIndex);
  const options = {
    title, height,
    width: Math.max(260, Math.floor(container.clientWidth || 320)),
    scales: {
      x: log ? { time: false, distr: 3 } : numeric ? { time: false }
        : { time: false, range: () => [-0.5, Math.max(0.5, categories.length - 0.5)] },
    },
    axes: [
      numeric ? { label: xLabel, values: (u, splits) => splits.map((v) => (log && !decade(v) ? "" : tick(v))) }
        : { label: xLabel, splits: () => categories.map((_, i) => i), values: (u, splits) => splits.map((i) => categories[i] ?? "") },
      { label: yLabel, values: (u, splits) => splits.map(tick) },
    ],
    series: [
      { label: xLabel, value: (u, v) => (v === null || v === undefined ? "-" : numeric ? String(v) : categories[v]) },
      { label: yLabel, stroke: c, fill: c, paths: () => null, points: { show: true, size: 8, stroke: c, fill: c } },
    ],
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(options, [x, y], container);
  plot.root.dataset.points = String(y.filter((v) => v !== null).length);
  return { destroy() { plot.destroy(); } };
}
