// A few DOM helpers: elements, tables, numbers. Text is always set as text, never as HTML.

// el("a", {href: "#/jobs", class: "x", onclick: f}, "text", child, [more children])
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A number as people read it: 4 significant digits, thousands grouped; "-" for nothing.
export function num(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "string") return value; // "NaN", "Infinity" as the API writes them
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return Number(value).toPrecision(4);
}

// columns: [{label, value: row => text|Node, num?: bool}]; rows: any[]; attrs for the table.
export function table(columns, rows, attrs = {}) {
  const head = el("tr", {}, columns.map((c) => el("th", {}, c.label)));
  const body = rows.map((row) =>
    el("tr", {}, columns.map((c) => {
      const v = c.value(row);
      return el("td", { class: c.num ? "num" : null }, v instanceof Node ? v : c.num ? num(v) : v ?? "-");
    })),
  );
  return el("table", attrs, el("thead", {}, head), el("tbody", {}, body));
}

export function progressBar(done, total) {
  const share = total ? Math.min(1, done / total) : 0;
  const fill = el("span");
  fill.style.width = `${(share * 100).toFixed(1)}%`; // CSSOM: the page's CSP allows no style attribute
  return el("span", { class: "progress", title: `${done}/${total ?? "?"}` }, fill);
}

export function statusText(status) {
  return el("span", { class: `status-${status}`, "data-status": status }, status);
}
