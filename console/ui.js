// ui.js -- small DOM helpers for the console.  Every piece of data from
// the server goes into the page as text (textContent), never as HTML, so
// a document cannot inject markup or script.

/** h("tag.class#id", {attr: value, onclick: fn}, ...children). */
export function h(spec, attrs = {}, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement(m[1] || "div");
  for (const part of (m[2] || "").match(/[.#][\w-]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

/** A labelled input: returns [label, input]. */
export function field(label, attrs = {}) {
  const id = attrs.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  const input = h(attrs.textarea ? "textarea" : attrs.select ? "select"
                                                               : "input",
                  { ...attrs, id, textarea: null, select: null });
  return [h("label", { for: id, text: label }), input];
}

/** A <select> with `options` ([value, text] or strings). */
export function select(attrs, options) {
  const s = h("select", attrs);
  for (const o of options) {
    const [v, t] = Array.isArray(o) ? o : [o, o];
    s.append(h("option", { value: v, text: t }));
  }
  return s;
}

const td = new TextDecoder("utf-8", { fatal: true });
const te = new TextEncoder();

/** Bytes as text when they are printable UTF-8, else null. */
export function asText(bytes) {
  try {
    const s = td.decode(bytes);
    return /[\u0000-\u0008\u000e-\u001f\u007f]/.test(s) ? null : s;
  } catch (_) {
    return null;
  }
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(s) {
  if (!/^([0-9a-f]{2})*$/i.test(s)) throw new Error(`not hex: ${s}`);
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(2 * i, 2), 16);
  return b;
}

export function utf8(s) {
  return te.encode(s);
}

/** Bytes for display: text, or 0x-hex. */
export function showBytes(bytes) {
  if (!bytes) return "";
  const t = asText(bytes);
  return t !== null ? t : `0x${hex(bytes)}`;
}

/**
 * Re-indent JSON text without parsing its values (so integers past 2^53
 * and number spellings stay exactly as stored).  Returns null when the
 * text is not JSON.
 */
export function prettyJson(text) {
  try {
    JSON.parse(text);
  } catch (_) {
    return null;
  }
  let out = "", depth = 0, inStr = false, esc = false;
  const nl = () => "\n" + "  ".repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      out += c;
      if (esc) esc = false;
      else if (c === "\\") esc = true;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') { inStr = true; out += c; }
    else if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      let j = i + 1;
      while (/\s/.test(text[j] || "")) j++;
      if (text[j] === close) { out += c + close; i = j; continue; }
      depth++; out += c + nl();
    } else if (c === "}" || c === "]") { depth--; out += nl() + c; }
    else if (c === ",") out += "," + nl();
    else if (c === ":") out += ": ";
    else if (!/\s/.test(c)) out += c;
  }
  return out;
}

/** A short message in the notice area (kind "error" or "info"). */
export function notify(msg, kind = "info") {
  const n = document.getElementById("notice");
  n.className = `notice ${kind}`;
  n.textContent = msg;
  n.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { n.hidden = true; }, kind === "error"
                                                        ? 12000 : 4000);
}

/** Run `fn`; a failure is shown, not thrown. */
export async function guard(fn) {
  try {
    return await fn();
  } catch (e) {
    notify(e && e.message ? e.message : String(e), "error");
    return undefined;
  }
}
