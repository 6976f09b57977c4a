// A list page's refresh loop. `load(isStopped)` draws the page and answers whether something on
// it still runs; it is called again `periodMs` later while it does. A failure is shown in
// `errorBox` and retried after twice the period. `stop()` ends the loop (the page was left).
import { el } from "./dom.js";

export function refresher(load, errorBox, periodMs) {
  let timer = null;
  let stopped = false;
  const isStopped = () => stopped;
  async function refresh() {
    clearTimeout(timer);
    try {
      const live = await load(isStopped);
      if (stopped) return;
      errorBox.replaceChildren();
      if (live) timer = setTimeout(refresh, periodMs);
    } catch (e) {
      if (stopped) return;
      errorBox.replaceChildren(el("div", { class: "error" }, String(e.message || e)));
      timer = setTimeout(refresh, periodMs * 2);
    }
  }
  return { refresh, stop: () => { stopped = true; clearTimeout(timer); } };
}
