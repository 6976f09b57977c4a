// The dashboard's router: #/<page>/<id>?<query> → pages/<page>.js's render(root, route).
// A page's render may return a function that stops what it started (streams, timers).
import { showKeyStatus } from "./lib/api.js";
import { el } from "./lib/dom.js";

const PAGES = {
  jobs: () => import("./pages/jobs.js"),
  job: () => import("./pages/job.js"),
  compare: () => import("./pages/compare.js"),
  sweeps: () => import("./pages/sweeps.js"),
  sweep: () => import("./pages/sweep.js"),
  datasets: () => import("./pages/datasets.js"),
};

// "#/jobs/abc?x=1" → {page: "job", id: "abc", query: URLSearchParams}; "#/jobs" → {page: "jobs"}.
export function parseRoute(hash) {
  const [path, search] = (hash.replace(/^#\/?/, "") || "jobs").split("?");
  const [section, id] = path.split("/").map(decodeURIComponent);
  const page = id && section.endsWith("s") ? section.slice(0, -1) : section;
  return { page, id, query: new URLSearchParams(search || "") };
}

let stop = null;

async function show() {
  const route = parseRoute(location.hash);
  const root = document.getElementById("main");
  if (stop) { stop(); stop = null; }
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    a.classList.toggle("active", route.page.startsWith(a.dataset.nav.replace(/s$/, "")));
  }
  root.replaceChildren();
  const load = PAGES[route.page];
  if (!load) { root.append(el("p", { class: "error" }, `no page ${route.page}`)); return; }
  try {
    const module = await load();
    stop = (await module.render(root, route)) || null;
  } catch (e) {
    root.append(el("div", { class: "error", "data-testid": "page-error" }, String(e.message || e)));
  }
}

window.addEventListener("hashchange", show);
showKeyStatus();
show();
