// #/sweeps: the sweeps, newest first, with their trials' counts and best value; refreshed every
// few seconds while one runs.
import { api } from "../lib/api.js";
import { el, num, progressBar, statusText, table } from "../lib/dom.js";
import { counts, when } from "../lib/format.js";

const ENDED = new Set(["finished", "cancelled"]);
const REFRESH_MS = 2500;

export async function render(root) {
  root.append(el("h1", {}, "Sweeps"));
  const box = el("div");
  const error = el("div");
  root.append(error, box);
  let timer = null;
  let stopped = false;
  async function load() {
    const page = await api("/v1/sweeps", { query: { limit: 100 } });
    if (stopped) return;
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
    clearTimeout(timer);
    if (page.items.some((s) => !ENDED.has(s.status))) timer = setTimeout(refresh, REFRESH_MS);
  }
  async function refresh() {
    try {
      await load();
      error.replaceChildren();
    } catch (e) {
      if (stopped) return;
      error.replaceChildren(el("div", { class: "error" }, String(e.message || e)));
      clearTimeout(timer);
      timer = setTimeout(refresh, REFRESH_MS * 2);
    }
  }
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
