// #/datasets: the built-in data sets and this project's uploads (shapes, classes, columns), and
// an upload form: a CSV, NPZ or Parquet file sent as the body with a progress bar (lib/upload.js).
import { api } from "../lib/api.js";
import { el, num, table } from "../lib/dom.js";
import { contentTypeOf, upload } from "../lib/upload.js";

const FORMATS = { csv: "csv", npz: "npz", parquet: "parquet", pq: "parquet" };

function shape(s) { return s && s.length ? s.join("×") : "scalar"; }

function classes(d) {
  if (d.task !== "classification") return "-";
  const named = Array.isArray(d.classes) ? d.classes.map(String) : [];
  const n = d.num_classes ?? named.length;
  return named.length ? `${n}: ${named.join(", ")}` : String(n ?? "-");
}

function columns(d) {
  if (!d.columns) return d.options && d.options.length ? `options: ${d.options.join(", ")}` : "-";
  return d.target ? `${d.columns.join(", ")} → ${d.target}` : d.columns.join(", ");
}

export async function render(root) {
  root.append(el("h1", {}, "Data sets"));
  const file = el("input", { type: "file", accept: ".csv,.npz,.parquet,.pq", "data-testid": "upload-file" });
  const name = el("input", { type: "text", placeholder: "name (default: the file's)", "data-testid": "upload-name" });
  const target = el("input", { type: "text", placeholder: "target column (CSV, Parquet)", "data-testid": "upload-target" });
  const task = el("select", { "data-testid": "upload-task" },
    el("option", { value: "" }, "task: guess"), el("option", { value: "classification" }, "classification"),
    el("option", { value: "regression" }, "regression"));
  const send = el("button", { type: "submit", "data-testid": "upload-submit" }, "Upload");
  const bar = el("progress", { max: "100", value: "0", "data-testid": "upload-progress" });
  const result = el("div", { "data-testid": "upload-result" });
  const form = el("form", { class: "toolbar" }, file, name, target, task, send, bar);
  const list = el("div");
  root.append(el("h2", {}, "Upload"), form, result, el("h2", {}, "Available"), list);

  async function load() {
    const all = await api("/v1/datasets");
    const t = table([
      { label: "id", value: (d) => d.id },
      { label: "name", value: (d) => d.name },
      { label: "source", value: (d) => (d.format ? `${d.source} (${d.format})` : d.source) },
      { label: "task", value: (d) => d.task },
      { label: "samples", value: (d) => d.samples, num: true },
      { label: "features", value: (d) => shape(d.feature_shape) },
      { label: "classes", value: classes },
      { label: "columns / options", value: columns },
      { label: "about", value: (d) => d.description },
    ], all, { "data-testid": "datasets-table" });
    all.forEach((d, i) => t.tBodies[0].rows[i].setAttribute("data-dataset-id", d.id));
    list.replaceChildren(t);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = file.files[0];
    if (!f) { result.replaceChildren(el("div", { class: "error" }, "choose a CSV, NPZ or Parquet file first")); return; }
    const format = FORMATS[f.name.toLowerCase().split(".").pop()];
    send.disabled = true;
    bar.value = 0;
    result.replaceChildren(el("span", { class: "muted" }, `uploading ${f.name}…`));
    try {
      const d = await upload("/v1/datasets", f, {
        query: { name: name.value.trim() || f.name, target: target.value.trim(), task: task.value, format },
        contentType: contentTypeOf(f.name),
        onProgress: (sent, total) => { bar.value = total ? Math.round((100 * sent) / total) : 0; },
      });
      result.replaceChildren(el("div", { class: "ok", "data-dataset-id": d.id },
        `${d.name}: uploaded as ${d.id} — ${num(d.samples)} rows, features ${shape(d.feature_shape)}, `
        + `${d.task}${d.task === "classification" ? `, classes ${classes(d)}` : ""}; `
        + `use it as dataset.name: ${d.id}`));
      await load();
    } catch (e) {
      bar.value = 0;
      result.replaceChildren(el("div", { class: "error" }, String(e.message || e)));
    } finally {
      send.disabled = false;
    }
  });
  await load();
}
