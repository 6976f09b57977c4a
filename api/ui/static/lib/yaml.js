// A small YAML emitter for JSON values (a job's normalized spec): block mappings and
// sequences, flow style for short lists of scalars, strings quoted when YAML would read them
// as something else (a number, a boolean, null, or text with YAML's punctuation).

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_ ./()+-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

export function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (Number.isNaN(value)) return ".nan";
    if (!Number.isFinite(value)) return value > 0 ? ".inf" : "-.inf";
    const text = String(value); // 1e-7 → 1.0e-7: YAML 1.1 readers want the dot
    return /e/.test(text) && !/\./.test(text) ? text.replace("e", ".0e") : text;
  }
  const text = String(value);
  if (text !== "" && PLAIN.test(text) && !RESERVED.test(text) && !text.endsWith(" ")) return text;
  return JSON.stringify(text); // a JSON string is a valid double-quoted YAML scalar
}

function isScalar(value) {
  return value === null || typeof value !== "object";
}

function key(name) {
  return scalar(String(name));
}

// toYaml({a: 1, b: [1, 2], c: [{type: "dense"}]}) → "a: 1\nb: [1, 2]\nc:\n  - type: dense\n"
export function toYaml(value) {
  const lines = [];
  emit(value, 0, lines);
  return lines.join("\n") + "\n";
}

function emit(value, depth, lines) {
  const pad = "  ".repeat(depth);
  if (isScalar(value)) { lines.push(pad + scalar(value)); return; }
  if (Array.isArray(value)) {
    if (!value.length) { lines.push(pad + "[]"); return; }
    for (const item of value) item_(item, depth, lines);
    return;
  }
  const entries = Object.entries(value);
  if (!entries.length) { lines.push(pad + "{}"); return; }
  for (const [k, v] of entries) {
    const inline = inlineOf(v);
    if (inline !== null) lines.push(`${pad}${key(k)}: ${inline}`);
    else { lines.push(`${pad}${key(k)}:`); emit(v, depth + 1, lines); }
  }
}

// A list item: "- scalar", or "- first: x" with the mapping's other keys under it.
function item_(item, depth, lines) {
  const pad = "  ".repeat(depth);
  const inline = inlineOf(item);
  if (inline !== null) { lines.push(`${pad}- ${inline}`); return; }
  const nested = [];
  emit(item, depth + 1, nested);
  nested[0] = `${pad}- ${nested[0].slice(pad.length + 2)}`;
  lines.push(...nested);
}

// What fits on the key's line: a scalar, an empty collection, a short list of scalars.
function inlineOf(value) {
  if (isScalar(value)) return scalar(value);
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    if (value.every(isScalar)) {
      const text = `[${value.map(scalar).join(", ")}]`;
      if (text.length <= 60) return text;
    }
    return null;
  }
  return Object.keys(value).length ? null : "{}";
}
