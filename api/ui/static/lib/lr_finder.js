// A job's learning-rate finder (training.lr_finder, docs/vocabulary.md "Learning-rate finder"):
// the smoothed loss against the learning rate on a log axis, the raw loss faint behind it, the
// summary's suggestions marked on the curve and listed, and a button that clones the job at the
// suggested rate. Hidden for a job without a finder.
//
// finderView({onClone}) → {node, update(seriesOf, summary), destroy}: `seriesOf(name)` is the
// page's series ({steps, values}, lib/series.js), `summary` the job's (its `lr_finder` comes
// with the job's end); the curve is drawn as its points arrive.
import { lineChart } from "./chart.js";
import { el, num } from "./dom.js";
import { FINDER_SERIES } from "./series.js";

const LOSS_COLOR = "#2f6fde";
const RAW_COLOR = "#868e9666"; // faint
// The suggestions marked on the curve (suggested_lr is one of them: summary.suggestion says which).
const MARKS = [
  { key: "steepest_lr", label: "steepest descent", color: "#e8590c" },
  { key: "valley_lr", label: "valley (fastai)", color: "#1098ad" },
  { key: "min_loss_lr", label: "lowest loss", color: "#2b8a3e" },
  { key: "min_lr_div_10", label: "lowest loss / 10", color: "#ae3ec9" },
];

// The smoothed and raw losses at their steps' rates, in step order (the rate grows with it).
function curveOf(seriesOf) {
  const lr = seriesOf(FINDER_SERIES.lr);
  if (!lr || !lr.steps.length) return null;
  const rate = new Map(lr.steps.map((step, i) => [step, lr.values[i]]));
  const at = (s) => {
    const out = { x: [], y: [] };
    (s ? s.steps : []).forEach((step, i) => {
      const r = rate.get(step);
      if (r > 0) { out.x.push(r); out.y.push(s.values[i]); }
    });
    return out;
  };
  const loss = at(seriesOf(FINDER_SERIES.loss));
  return loss.x.length ? { loss, raw: at(seriesOf(FINDER_SERIES.raw)) } : null;
}

// The y axis: the smoothed loss's range, padded; the raw loss, noisier and far higher once the
// test diverges, is clipped to it.
function lossRange(curve) {
  const ys = curve.y.filter(Number.isFinite);
  if (!ys.length) return null;
  const low = Math.min(...ys);
  const high = Math.max(...ys);
  const pad = (high - low) * 0.05 || Math.abs(high) * 0.05 || 1;
  return [low - pad, high + pad];
}

// The smoothed loss at the curve's rate nearest `lr` (on the log axis): where a mark sits.
function lossNear(curve, lr) {
  let best = null;
  let gap = Infinity;
  curve.x.forEach((x, i) => {
    const d = Math.abs(Math.log(x / lr));
    if (d < gap && Number.isFinite(curve.y[i])) { gap = d; best = curve.y[i]; }
  });
  return best;
}

function isRate(v) { return typeof v === "number" && Number.isFinite(v); }

export function finderView({ onClone }) {
  const box = el("div", { class: "chart", "data-testid": "chart-lr_finder" },
    el("h3", {}, "loss against the learning rate (log axis)"));
  const list = el("div", { "data-testid": "lr-suggestions" });
  const button = el("button", { "data-testid": "clone-suggested", onclick: () => onClone() },
    "Clone with the suggested rate");
  const node = el("div", { "data-testid": "lr-finder", hidden: true },
    el("h2", {}, "Learning-rate finder"), el("div", { class: "finder" }, box, el("div", {}, list, button)));
  let chart = null;

  function lines(curve, found) {
    const out = [{ label: "loss (smoothed)", ...curve.loss, color: LOSS_COLOR }];
    if (curve.raw.x.length) out.push({ label: "raw loss", ...curve.raw, color: RAW_COLOR, width: 1 });
    for (const m of MARKS) {
      const lr = found[m.key];
      const y = isRate(lr) ? lossNear(curve.loss, lr) : null;
      if (y !== null) out.push({ label: `${m.label} ${num(lr)}`, x: [lr], y: [y], color: m.color });
    }
    return out;
  }

  function rows(found) {
    const which = MARKS.find((m) => m.key === found.suggestion);
    const shown = [{ key: "suggested_lr", label: which ? `suggested (${which.label})` : "suggested" }, ...MARKS].filter((r) => found[r.key] !== undefined);
    const body = shown.map((r) => el("tr", { "data-suggestion": r.key },
      el("th", {}, r.label),
      el("td", { class: "num", "data-value": isRate(found[r.key]) ? String(found[r.key]) : "" }, num(found[r.key]))));
    const end = found.stopped_early ? `stopped at step ${num(found.diverged_at)} (diverged)` : "ran every step";
    return [
      el("table", { class: "kv" }, el("tbody", {}, body)),
      el("p", { class: "muted" }, `${num(found.steps)} steps from ${num(found.min_lr)} to ${num(found.max_lr)}, ${end}`),
    ];
  }

  return {
    node,
    update(seriesOf, summary) {
      const found = (summary || {}).lr_finder || null;
      const curve = curveOf(seriesOf);
      node.hidden = !curve && !found;
      if (node.hidden) return;
      if (curve) {
        const series = lines(curve, found || {});
        const yRange = lossRange(curve.loss);
        if (chart) chart.update(series, yRange);
        else chart = lineChart(box, { xLabel: "learning rate", logX: true, yRange, series });
      }
      list.replaceChildren(...(found ? rows(found) : [el("p", { class: "muted" }, "Suggestions come with the job's end.")]));
      button.hidden = !(found && isRate(found.suggested_lr));
      if (!button.hidden) button.title = `a clone of this job at learning rate ${found.suggested_lr}`;
    },
    destroy() { if (chart) chart.destroy(); chart = null; },
  };
}
