// #/jobs: the jobs, newest first.
import { api } from "../lib/api.js";
import { el, progressBar, statusText, table } from "../lib/dom.js";

export async function render(root) {
  root.append(el("h1", {}, "Jobs"));
  const page = await api("/v1/jobs", { query: { limit: 50 } });
  const columns = [
    { label: "id", value: (j) => el("a", { href: `#/jobs/${j.id}` }, j.id) },
    { label: "name", value: (j) => j.name },
    { label: "status", value: (j) => statusText(j.status) },
    { label: "progress", value: (j) => progressBar(j.progress.epoch || 0, j.progress.epochs) },
    { label: "created", value: (j) => j.created_at.replace("T", " ").slice(0, 19) },
  ];
  root.append(table(columns, page.items, { "data-testid": "jobs-table" }));
}
