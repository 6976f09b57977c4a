// A job's metric series as a page holds them, and which chart each one goes to.
//
// The page reads GET /v1/jobs/{id}/metrics?max_points=… once (long series come downsampled,
// with min/max per bucket), then appends the points that the job's events bring. `cursor()`
// is the events' Last-Event-ID for what the page already has, so the stream does not send a
// long series again.

const STEP_SERIES = "batch_loss";
const DIAG = "diag/";
const VAL = "val_";
const LOSSES = ["loss", "regularization_loss"];
// The learning-rate finder's curve (training.lr_finder), stepped 1..N: drawn against the rate
// by lib/lr_finder.js, not among the curves by step.
const FINDER = "lr_finder/";
export const FINDER_SERIES = { lr: `${FINDER}lr`, loss: `${FINDER}loss`, raw: `${FINDER}raw_loss` };

export function isFinderSeries(name) {
  return name.startsWith(FINDER);
}

function numbers(values) {
  return (values || []).map((v) => (v === null || v === undefined ? null : Number(v))); // "NaN" → NaN
}

export function isStepSeries(name) {
  return name === STEP_SERIES || name.startsWith(DIAG);
}

export class SeriesStore {
  constructor() { this.series = new Map(); }

  names() { return [...this.series.keys()]; }
  get(name) { return this.series.get(name); }

  // Series read from GET /metrics, replacing those of the same name. Points the page holds
  // past a replacement's last step (events that arrived while it was read) are kept.
  replace(list) {
    for (const s of list) {
      const fresh = { steps: [...s.steps], epochs: [...s.epochs], values: numbers(s.values) };
      if (s.min && s.max) { fresh.min = numbers(s.min); fresh.max = numbers(s.max); }
      const old = this.series.get(s.name);
      const last = fresh.steps.length ? fresh.steps[fresh.steps.length - 1] : -1;
      if (old) {
        for (let i = 0; i < old.steps.length; i++) if (old.steps[i] > last) push(fresh, old, i);
      }
      this.series.set(s.name, fresh);
    }
  }

  // New points from a `metrics` event; a point at a step the page already has is skipped.
  // Returns the number of points added.
  append(list) {
    let added = 0;
    for (const s of list) {
      let mine = this.series.get(s.name);
      if (!mine) { mine = { steps: [], epochs: [], values: [] }; this.series.set(s.name, mine); }
      const values = numbers(s.values);
      const last = mine.steps.length ? mine.steps[mine.steps.length - 1] : -1;
      for (let i = 0; i < s.steps.length; i++) {
        if (s.steps[i] <= last) continue;
        push(mine, { steps: s.steps, epochs: s.epochs, values, min: values, max: values }, i);
        added++;
      }
    }
    return added;
  }

  // "name:step,..." (names percent-encoded as the API's events write them), or "" for none.
  cursor() {
    const parts = [];
    for (const [name, s] of [...this.series.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!s.steps.length) continue;
      const quoted = encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
      parts.push(`${quoted}:${s.steps[s.steps.length - 1]}`);
    }
    return parts.join(",");
  }

  longest(names) {
    return Math.max(0, ...names.map((n) => (this.series.get(n) || { steps: [] }).steps.length));
  }
}

function push(into, from, i) {
  into.steps.push(from.steps[i]);
  into.epochs.push(from.epochs[i]);
  into.values.push(from.values[i]);
  if (into.min) {
    into.min.push(from.min ? from.min[i] : from.values[i]);
    into.max.push(from.max ? from.max[i] : from.values[i]);
  }
}

// The charts for these series names, in the page's order: [{name, title, members: [{name, label}],
// envelope}]; `name` is the chart's test id suffix (chart-<name>).
export function chartGroups(all) {
  const names = all.filter((n) => !isFinderSeries(n));
  const have = new Set(names);
  const groups = [];
  const losses = ["loss", "val_loss", "regularization_loss", "val_regularization_loss"].filter((n) => have.has(n));
  if (losses.length) groups.push({ name: "loss", title: "loss", members: losses.map((n) => ({ name: n, label: n })) });
  const scores = [...new Set(names
    .filter((n) => !isStepSeries(n) && n !== "lr")
    .map((n) => n.replace(/^val_/, ""))
    .filter((n) => !LOSSES.includes(n)))].sort();
  for (const m of scores) {
    const members = [m, VAL + m].filter((n) => have.has(n)).map((n) => ({ name: n, label: n }));
    groups.push({ name: m, title: m, members });
  }
  if (have.has("lr")) groups.push({ name: "lr", title: "learning rate", members: [{ name: "lr", label: "lr" }] });
  if (have.has(STEP_SERIES)) {
    groups.push({ name: STEP_SERIES, title: "batch loss (min/max per bucket when downsampled)", envelope: true,
      members: [{ name: STEP_SERIES, label: STEP_SERIES }] });
  }
  const measures = new Map();
  for (const n of names.filter((x) => x.startsWith(DIAG)).sort()) {
    const [, measure, ...layer] = n.split("/");
    if (!measures.has(measure)) measures.set(measure, []);
    measures.get(measure).push({ name: n, label: layer.join("/") });
  }
  if (measures.has("grad_norm")) {
    groups.push({ name: "grad_norms", title: "gradient norm per layer", log: true, members: measures.get("grad_norm") });
    measures.delete("grad_norm");
  }
  for (const [measure, members] of measures) groups.push({ name: `diag-${measure}`, title: measure.replace(/_/g, " "), members });
  return groups;
}

// A group's series for lineChart: x by step, or by epoch (a per-step series at its fraction
// of an epoch, step / steps_per_epoch, so that its points stay distinct; by step while that
// is unknown).
export function chartSeries(store, group, { xAxis = "step", stepsPerEpoch } = {}) {
  return group.members.filter((m) => store.get(m.name)).map((m) => {
    const s = store.get(m.name);
    let x = s.steps;
    if (xAxis === "epoch") {
      if (!isStepSeries(m.name)) x = s.epochs;
      else if (stepsPerEpoch) x = s.steps.map((step) => step / stepsPerEpoch);
    }
    const out = { label: m.label, x, y: s.values };
    if (group.envelope && s.min && s.max) { out.min = s.min; out.max = s.max; }
    return out;
  });
}

// While a job runs, what its diag/grad_norm/<layer> series already tell (the diagnostics write
// their warnings into the summary only at the end), with core/training/diagnostics.py's
// thresholds: a NaN or infinite gradient norm (exploding, at once); a layer's norm below
// VANISHING_RATIO times the last layer's at the last two readings (vanishing). The last layer
// is the one with the highest index in its name (dense_0 … dense_10); without indexes, only the
// first rule. → [{code, layer, step, message}]
const VANISHING_RATIO = 1e-4;
const GRAD_NORM = "diag/grad_norm/";

export function liveDiagnostics(store) {
  const layers = store.names().filter((n) => n.startsWith(GRAD_NORM)).map((n) => ({ layer: n.slice(GRAD_NORM.length), s: store.get(n) }))
    .filter(({ s }) => s.steps.length);
  const out = [];
  for (const { layer, s } of layers) {
    const i = s.values.findIndex((v) => v !== null && !Number.isFinite(v));
    if (i >= 0) out.push({ code: "exploding_gradients", layer, step: s.steps[i], message: `gradient norm ${String(s.values[i])} so far` });
  }
  const index = (layer) => { const m = /(\d+)$/.exec(layer); return m ? Number(m[1]) : null; };
  if (layers.length < 2 || layers.some(({ layer }) => index(layer) === null)) return out;
  const last = layers.reduce((a, b) => (index(b.layer) > index(a.layer) ? b : a));
  const at = (s, step) => s.values[s.steps.indexOf(step)];
  const steps = last.s.steps.slice(-2);
  if (steps.length < 2) return out;
  for (const { layer, s } of layers) {
    if (layer === last.layer) continue;
    const low = steps.every((step) => { const v = at(s, step); const ref = at(last.s, step); return v !== undefined && v !== null && ref > 0 && v < VANISHING_RATIO * ref; });
    if (low) {
      const ratio = at(s, steps[1]) / at(last.s, steps[1]);
      out.push({ code: "vanishing_gradients", layer, step: steps[1], message: `gradient norm ${ratio.toExponential(1)} times the last layer's (${last.layer}) so far` });
    }
  }
  return out;
}
