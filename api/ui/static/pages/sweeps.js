// #/sweeps: the sweeps, newest first, with their trials' counts and best value; refreshed every
// few seconds while one runs.
import { api } from "../lib/api.js";
import { el, num, progressBar, statusText, table } from "../lib/dom.js";
import { counts, when } from "../lib/format.js";
import { refresher } from "../lib/refresh.js";

const ENDED = new Set(["finished", "cancelled"]);
const REFRESH_MS = 2500;

export async function render(root) {
  root.append(el("h1", {}, "Sweeps"));
  const box = el("div");
  const error = el("div");
  root.append(error, box);
  async function load(stopped) {
    const page = await api("/v1/sweeps", { query: { limit: 100 } });
    if (stopped()) return false;
    const columns = [
      { label: "id", value: (s) => el("a", { href: `#/sweeps/${s.id}` }, s.id) },
      { label: "name", value: (s) => s.name || "-" },
      { label: "status", value: (s) => statusText(s.status) },
      { label: "method", value: (s) => s.method },
      { label: "metric", value: (s) => `${s.metric.name} (${s.metric.goal})` },
      { label: "trials", value: (s) => { const { done, total } = counts(s.counts); return el("span", {}, progressBar(done, total), ` ${done}/${total}`); } },
      { label: "best", value: (s) => (s.best ? num(s.best.value) : "-") },
      { label: "created", value: (s) => when(s.created_at) },
    ];
    const t = table(columns, page.items, { "data-testid": "sweeps-table" });
    page.items.forEach((s, i) => t.tBodies[0].rows[i].setAttribute("data-sweep-id", s.id));
    box.replaceChildren(page.items.length ? t : el("p", { class: "muted" }, "no sweeps yet: epochal sweep <file> starts one"));
    return page.items.some((s) => !ENDED.has(s.status));
  }
  const loop = refresher(load, error, REFRESH_MS);
  await loop.refresh();
  return loop.stop;
}
