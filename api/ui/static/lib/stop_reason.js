// Why a job stopped, as its page shows it at the top: early stopping, a health condition of
// training.stop_on, pruning or a cancel. summary.stop_reason says it in words; summary.stopped_on
// ({type, layer, step, epoch, value}: a stop_on condition) adds the condition, layer and figure.
import { el, num } from "./dom.js";

// What stopped_on's value is, per condition (docs/vocabulary.md, "Stopping on health").
const FIGURE = {
  vanishing_gradients: "gradient norm / last layer's",
  exploding_gradients: "gradient norm",
  dead_relu: "dead fraction",
  divergence: "smoothed loss",
};

const known = (v) => v !== null && v !== undefined;

// The notice for a job's summary, or null when it did not stop early.
export function stopReason(summary) {
  const s = summary || {};
  const on = s.stopped_on;
  if (!s.stop_reason && !on) return null;
  const facts = on ? [
    on.layer ? `layer ${on.layer}` : null,
    known(on.epoch) ? `epoch ${on.epoch}` : null,
    known(on.step) ? `step ${num(on.step)}` : null,
    `${FIGURE[on.type] || "value"} ${known(on.value) ? num(on.value) : "not finite"}`,
  ].filter(Boolean) : [];
  return el("div", { class: "stopped", role: "status", "data-stopped-on": on ? on.type : null },
    el("strong", {}, on ? `Stopped on ${on.type.replace(/_/g, " ")}` : "Stopped"),
    facts.length ? ` (${facts.join(", ")})` : "",
    s.stop_reason ? el("div", { "data-testid": "stop-reason-text" }, s.stop_reason) : "");
}
