// Line charts on uPlot (vendor/uPlot.iife.min.js, the global `uPlot`).
// lineChart(container, {title, xLabel, log, logX, yRange, wholeX, series: [{label, x: [], y: [],
// min?: [], max?: [], color?, dash?, width?}]}) draws every series over one x axis (uPlot.join
// aligns series of different x; `logX`: a log x axis, its values all positive; `yRange`: [low,
// high] fixed, what lies outside clipped); a series with `min` and `max` (a downsampled one) gets
// its envelope as a band. The chart object's update(series, yRange?) redraws with new data,
// setLog(on) switches the y scale, points() counts the points drawn (what a test reads),
// destroy() removes it. A series that turns NaN or infinite
// stops there (a gap, not a line drawn over it) and its legend label says "NaN from step N"; the
// uPlot root's data-non-finite lists those notes.

const COLORS = ["#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f59f00", "#c2255c",
  "#5c7cfa", "#868e96", "#0b7285", "#a61e4d", "#5f3dc4", "#364fc7", "#d9480f", "#087f5b",
  "#e67700", "#495057", "#9c36b5", "#1864ab", "#c92a2a"];

export function color(i) { return COLORS[i % COLORS.length]; }

import { finite } from "./format.js";

export { finite };

// Where a series first became NaN or infinite: "NaN from step 120" (xLabel names the axis).
function nonFinite(s, xLabel) {
  const i = s.y.findIndex((v) => typeof v === "number" && !Number.isFinite(v));
  return i < 0 ? "" : `${String(s.y[i])} from ${xLabel} ${s.x[i]}`;
}

// A non-finite value is a gap (null), never bridged: a diverging loss stops where it diverged,
// and its legend label says from where. The `undefined` uPlot.join puts where another series
// has an x this one lacks is no gap.
function layout(series, xLabel) {
  const tables = [];
  const specs = [];
  const bands = [];
  const broken = [];
  series.forEach((s, i) => {
    const c = s.color || color(i);
    const note = nonFinite(s, xLabel);
    if (note) broken.push(`${s.label}: ${note}`);
    tables.push([s.x, s.y.map(finite)]);
    specs.push({ label: note ? `${s.label} (${note})` : s.label, stroke: c, width: s.width ?? 1.5, spanGaps: false,
      points: { show: s.x.length < 60 }, dash: s.dash });
    if (s.min && s.max) {
      tables.push([s.x, s.max.map(finite)], [s.x, s.min.map(finite)]);
      const at = specs.length + 1; // 1-based uPlot series index of the max
      specs.push({ label: `${s.label} max`, stroke: c + "55", width: 0.5, spanGaps: false, points: { show: false } },
        { label: `${s.label} min`, stroke: c + "55", width: 0.5, spanGaps: false, points: { show: false } });
      bands.push({ series: [at, at + 1], fill: c + "22" });
    }
  });
  const data = tables.length ? uPlot.join(tables) : [[]];
  return { data, specs, bands, broken };
}

// Tick spacings for an axis of whole numbers (epochs, steps): never 1.5.
const WHOLE = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];

export function lineChart(container, { title = "", xLabel = "step", log = false, logX = false, yRange = null, series = [], height = 260, wholeX = false } = {}) {
  let current = series;
  let logScale = log;
  let plot = null;
  const width = () => Math.max(320, Math.floor(container.clientWidth || 480));

  function build() {
    if (plot) plot.destroy();
    const { data, specs, bands, broken } = layout(current, xLabel);
    const options = {
      title, width: width(), height,
      scales: { x: logX ? { time: false, distr: 3 } : { time: false }, y: logScale ? { distr: 3 } : yRange ? { range: () => [...yRange] } : {} },
      axes: [wholeX ? { label: xLabel, incrs: WHOLE } : logX ? { label: xLabel, values: decades } : { label: xLabel }, {}],
      series: [{ label: xLabel }, ...specs],
      bands,
      legend: { live: true },
    };
    plot = new uPlot(options, logScale ? positive(data) : data, container);
    mark(data, broken);
  }

  // data-points (what tests read) and data-non-finite ("loss: NaN from step 12; ...").
  function mark(data, broken) {
    plot.root.dataset.points = String(count(data));
    if (broken.length) plot.root.dataset.nonFinite = broken.join("; ");
    else delete plot.root.dataset.nonFinite;
  }

  build();
  const resize = () => plot && plot.setSize({ width: width(), height });
  window.addEventListener("resize", resize);
  return {
    update(next, range) {
      const sameShape = next.length === current.length && next.every((s, i) => !!s.min === !!current[i].min);
      const before = plot ? plot.root.dataset.nonFinite || "" : "";
      current = next;
      const ranged = !!yRange;
      if (range !== undefined) yRange = range;
      const { data, broken } = layout(current, xLabel);
      // A label changes (a series became non-finite): uPlot takes labels when it is built.
      if (!sameShape || ranged !== !!yRange || !plot || broken.join("; ") !== before) { build(); return; }
      plot.setData(logScale ? positive(data) : data);
      mark(data, broken);
    },
    setLog(on) { logScale = !!on; build(); },
    points() { return plot ? Number(plot.root.dataset.points) : 0; },
    destroy() { window.removeEventListener("resize", resize); if (plot) plot.destroy(); plot = null; },
  };
}

// A log axis's ticks: its powers of ten labelled (1e-7 … 0.01, 0.1, 1, 10 …), the ticks between
// them not (uPlot's own labels round 1e-7 to 0).
function decades(u, splits) {
  return splits.map((v) => {
    if (v === null || v === undefined || v <= 0) return "";
    const power = Math.round(Math.log10(v));
    if (Math.abs(Math.log10(v) - power) > 1e-9) return "";
    return power >= -3 && power <= 4 ? String(Number((10 ** power).toPrecision(1))) : `1e${power}`;
  });
}

// On a log scale a value <= 0 cannot be drawn: it becomes a gap.
function positive(data) {
  return data.map((column, i) => (i === 0 ? column : column.map((v) => (v === undefined || (v !== null && v > 0) ? v : null))));
}

function count(data) {
  let n = 0;
  for (let i = 1; i < data.length; i++) for (const v of data[i]) if (v !== null && v !== undefined) n++;
  return n;
}
