// The dashboard's router: #/<page>/<id>?<query> → pages/<page>.js's render(root, route).
// A page's render may return a function that stops what it started (streams, timers).
import { keyControl, showKeyStatus } from "./lib/api.js";
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
  const [section, id] = path.split("/").map((part) => {
    try { return decodeURIComponent(part); } catch { return part; } // "%zz": left as typed
  });
  const page = id && section.endsWith("s") ? section.slice(0, -1) : section;
  return { page, id, query: new URLSearchParams(search || "") };
}

// An id goes into /v1 paths: only the characters ids are made of, never "." or "..", so a
// crafted link (#/sweeps/..%2Fjobs%2F<id>) cannot point a page's buttons at another resource.
const ID = /^[A-Za-z0-9_.-]+$/;
export function validId(id) {
  return ID.test(id) && id !== "." && id !== "..";
}

// Each navigation renders into a fresh child of #main; a render that resolves after the user
// has moved on is stopped at once and its container dropped, so pages never mix.
let stop = null;
let shown = 0;

async function show() {
  const route = parseRoute(location.hash);
  const root = document.getElementById("main");
  const turn = ++shown;
  if (stop) { stop(); stop = null; }
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    a.classList.toggle("active", route.page.startsWith(a.dataset.nav.replace(/s$/, "")));
  }
  const box = el("div", { class: "page" });
  root.replaceChildren(box);
  const load = PAGES[route.page];
  if (!load) { box.append(el("p", { class: "error" }, `no page ${route.page}`)); return; }
  if (route.id && !validId(route.id)) {
    box.append(el("div", { class: "error", "data-testid": "page-error" }, `not a valid id: ${route.id}`));
    return;
  }
  let stopper = null;
  try {
    const module = await load();
    if (turn !== shown) return;
    stopper = (await module.render(box, route)) || null;
  } catch (e) {
    if (turn === shown) box.append(el("div", { class: "error", "data-testid": "page-error" }, String(e.message || e)));
  }
  if (turn !== shown) {
    if (stopper) stopper();
    box.remove();
    return;
  }
  stop = stopper;
}

window.addEventListener("hashchange", show);
document.getElementById("key-button").addEventListener("click", keyControl);
showKeyStatus();
show();
