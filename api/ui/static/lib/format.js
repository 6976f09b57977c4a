// How the pages write values, in one place: numbers for charts, dates, spec and metric values,
// a sweep's trial counts.
import { num } from "./dom.js";

// A number a chart can draw; null (a gap) for NaN, infinities and anything else.
export function finite(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }

// An API timestamp as "2026-12-07 11:09:38"; "-" when there is none.
export function when(iso) { return iso ? iso.replace("T", " ").slice(0, 19) : "-"; }

// A number, short: 0.003 (not 0.003000), 0.04669 (not 0.04668919368886341), 12 as 12.
export function shortNumber(v) { return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))); }

// A spec or metric value: "-" for none, numbers through `asNumber` (shortNumber, num for
// metrics, String for a spec value as written), strings as they are ("NaN" as the API writes
// it), anything else as JSON.
export function valueText(value, asNumber = shortNumber) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number") return asNumber(value);
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function metricText(value) { return valueText(value, num); }

// A sweep's trials: {done, total} from its counts.
export function counts(c) {
  const done = c.succeeded + c.failed + c.cancelled + c.pruned;
  const total = done + c.queued + c.running;
  return { done, total };
}
