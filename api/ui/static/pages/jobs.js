// #/jobs: the jobs, newest first (or by a final metric), filtered by status, tag, sweep and a
// spec parameter; pages through the API's cursor; live status while any job shown runs;
// select 2–20 jobs to compare them.
//
// The filters, the order and the page live in the hash's query, so a reload (or a link) keeps
// them: #/jobs?status=running&tag=x&sweep=<id>&param=training.epochs=3&metric=val_accuracy
// &order=desc&limit=50&cursor=<next_cursor>&back=<cursor of each earlier page> ("" for the first).
import { api } from "../lib/api.js";
import { el, num, progressBar, statusText } from "../lib/dom.js";
import { when } from "../lib/format.js";
import { refresher } from "../lib/refresh.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "pruned"];
const LIVE = new Set(["queued", "running"]);
const REFRESH_MS = 2000;
const PAGE_SIZE = 50;
const COMPARE_MAX = 20;

export function apiQuery(query) {
  const out = { limit: Number(query.get("limit")) || PAGE_SIZE };
  for (const [key, name] of [["status", "status"], ["tag", "tag"], ["sweep", "sweep_id"], ["cursor", "cursor"]]) {
    if (query.get(key)) out[name] = query.get(key);
  }
  const metric = query.get("metric");
  if (metric) {
    out.order_by = `metric.${metric}`;
    out.order = query.get("order") || "desc";
  }
  for (const p of query.getAll("param")) {
    const at = p.indexOf("=");
    if (at > 0) out[`param.${p.slice(0, at).trim()}`] = p.slice(at + 1).trim();
  }
  return out;
}

function go(query) {
  const text = query.toString();
  location.hash = `#/jobs${text ? `?${text}` : ""}`;
}

// The same filters and order, back on the first page.
function withFilter(query, key, value) {
  const next = new URLSearchParams(query);
  next.delete("cursor");
  next.delete("back");
  next.delete(key);
  for (const v of Array.isArray(value) ? value : [value]) if (v) next.append(key, v);
  return next;
}

export async function render(root, route) {
  const query = route.query;
  const selected = new Set(); // kept across the live refreshes of this page

  root.append(el("h1", {}, "Jobs"));
  const statusSelect = el("select", { "data-testid": "filter-status", title: "status" },
    el("option", { value: "" }, "any status"),
    STATUSES.map((s) => el("option", { value: s, selected: query.get("status") === s }, s)));
  statusSelect.addEventListener("change", () => go(withFilter(query, "status", statusSelect.value)));
  const textFilter = (key, testid, placeholder, size = 14) => {
    const input = el("input", { "data-testid": testid, placeholder, size, value: query.get(key) || "" });
    input.addEventListener("change", () => go(withFilter(query, key, input.value.trim())));
    return input;
  };
  const tag = textFilter("tag", "filter-tag", "tag");
  const sweep = textFilter("sweep", "filter-sweep", "sweep id", 20);
  const param = el("input", {
    "data-testid": "filter-param", size: 30, value: query.getAll("param").join("; "),
    placeholder: "param: training.epochs=5; …", title: "spec path=value (value as JSON), several separated by ;",
  });
  param.addEventListener("change", () =>
    go(withFilter(query, "param", param.value.split(";").map((p) => p.trim()).filter(Boolean))));
  const metric = textFilter("metric", "order-by", "sort by final metric", 16);
  metric.setAttribute("list", "jobs-metrics");
  const metrics = el("datalist", { id: "jobs-metrics" });
  const order = el("select", { "data-testid": "order", title: "order" },
    ["desc", "asc"].map((o) => el("option", { value: o, selected: (query.get("order") || "desc") === o }, o)));
  order.addEventListener("change", () => go(withFilter(query, "order", order.value)));
  const compare = el("button", { "data-testid": "compare-selected", disabled: true }, "Compare");
  compare.addEventListener("click", () => {
    if (selected.size >= 2 && selected.size <= COMPARE_MAX) location.hash = `#/compare?ids=${[...selected].join(",")}`;
  });
  const clear = el("button", { onclick: () => go(new URLSearchParams()) }, "Clear filters");
  root.append(el("div", { class: "toolbar" }, statusSelect, tag, sweep, param, metric, metrics, order, clear, compare));

  const error = el("div");
  const holder = el("div");
  const pager = el("div", { class: "toolbar" });
  root.append(error, holder, pager);

  function updateCompare() {
    compare.disabled = selected.size < 2 || selected.size > COMPARE_MAX;
    compare.textContent = `Compare${selected.size ? ` (${selected.size})` : ""}`;
    compare.title = selected.size > COMPARE_MAX ? `at most ${COMPARE_MAX} jobs` : "select 2 to 20 jobs";
  }

  function row(job, metricName) {
    const box = el("input", { type: "checkbox", "data-select": "", checked: selected.has(job.id), title: "select to compare" });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(job.id); else selected.delete(job.id);
      updateCompare();
    });
    const p = job.progress || {};
    const finals = (job.summary && job.summary.final) || {};
    return el("tr", { "data-job-id": job.id, "data-status": job.status },
      el("td", {}, box),
      el("td", { class: "id" }, el("a", { href: `#/jobs/${job.id}` }, job.id)),
      el("td", {}, job.name),
      el("td", { class: "job-status" }, statusText(job.status)),
      el("td", { class: "job-progress" }, progressBar(p.epoch || 0, p.epochs),
        el("span", { class: "muted" }, ` ${p.epoch || 0}/${p.epochs ?? "?"}`)),
      metricName ? el("td", { class: "num" }, num(finals[metricName])) : null,
      el("td", {}, (job.tags || []).join(", ")),
      el("td", {}, when(job.created_at)));
  }

  async function load(stopped) {
    const page = await api("/v1/jobs", { query: apiQuery(query) });
    if (stopped()) return false;
    const metricName = query.get("metric");
    const known = new Set();
    for (const j of page.items) for (const k of Object.keys((j.summary && j.summary.final) || {})) known.add(k);
    metrics.replaceChildren(...[...known].sort().map((k) => el("option", { value: k })));
    const head = el("tr", {}, el("th", {}, ""), el("th", {}, "id"), el("th", {}, "name"), el("th", {}, "status"),
      el("th", {}, "progress"), metricName ? el("th", { class: "num" }, `final ${metricName}`) : null,
      el("th", {}, "tags"), el("th", {}, "created"));
    const body = page.items.map((j) => row(j, metricName));
    const tableNode = el("table", { "data-testid": "jobs-table" }, el("thead", {}, head), el("tbody", {}, body));
    holder.replaceChildren(tableNode, ...(page.items.length ? [] : [el("p", { class: "muted" }, "No jobs match.")]));
    pagerFor(page);
    updateCompare();
    return page.items.some((j) => LIVE.has(j.status));
  }

  function pagerFor(page) {
    const back = query.getAll("back");
    const prev = el("button", { "data-testid": "page-previous", disabled: !back.length }, "← Previous");
    prev.addEventListener("click", () => {
      const next = new URLSearchParams(query);
      const cursors = back.slice(0, -1);
      next.delete("back");
      next.delete("cursor");
      for (const c of cursors) next.append("back", c);
      if (back[back.length - 1]) next.set("cursor", back[back.length - 1]);
      go(next);
    });
    const nextButton = el("button", { "data-testid": "page-next", disabled: !page.next_cursor }, "Next →");
    nextButton.addEventListener("click", () => {
      const next = new URLSearchParams(query);
      next.append("back", query.get("cursor") || "");
      next.set("cursor", page.next_cursor);
      go(next);
    });
    pager.replaceChildren(prev, el("span", { class: "muted" }, `page ${back.length + 1}`), nextButton);
  }

  const loop = refresher(load, error, REFRESH_MS);
  await loop.refresh();
  return loop.stop;
}
