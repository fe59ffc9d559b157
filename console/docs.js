// docs.js -- the Documents tab: a collection's documents a page at a time
// (by id), go to an id, filter by text, view one, edit it (a revision
// conflict shows theirs beside yours, to retry with either), create and
// delete.

import { codes, idToBigInt, u64 } from "sprig-client";
import { h, fill, field, notify, guard, asText, hex, fromHex, utf8,
         prettyJson } from "./ui.js";

const PAGE = 25;
const td = new TextDecoder();

/** Ids as people read them: u64 collections in decimal, natural ones as
 *  text (or 0x-hex when not printable). */
export function idText(col, id) {
  if (col.idKind === "u64" && id.length === 8) return idToBigInt(id).toString();
  const t = asText(id);
  return t !== null ? t : `0x${hex(id)}`;
}

/** The id bytes of what a person typed. */
export function idFromText(col, s) {
  if (col.idKind === "u64") {
    if (!/^\d+$/.test(s)) throw new Error(`id '${s}' is not a number`);
    return u64(BigInt(s));
  }
  return s.startsWith("0x") ? fromHex(s.slice(2)) : utf8(s);
}

const idRoute = (col, id) => (col.idKind === "u64" || asText(id) !== null
  ? idText(col, id) : `0x${hex(id)}`);

function preview(doc) {
  const t = asText(doc.contents);
  if (t === null) return `(${doc.contents.length} bytes)`;
  return t.length > 100 ? `${t.slice(0, 100)}…` : t;
}

export async function docsPanel(el, r, st) {
  const col = st.collectionsOf(r.db).find((c) => c.name === r.collection);
  if (!col) {
    return fill(el, h("p", { text: r.collection
      ? `No collection '${r.collection}'.` : "This database has no collection." }));
  }
  const db = st.client.db(r.db);
  const base = `#/db/${encodeURIComponent(r.db)}/docs/` +
               encodeURIComponent(col.name);
  if (r.rest[0] === "new") return editor(el, db, col, base, null);
  if (r.rest[0] !== undefined) {
    const id = idFromText(col, r.rest[0]);
    return docView(el, db, col, base, id, r.rest[1] === "edit");
  }
  return listView(el, db, col, base);
}

// ---- the list -----------------------------------------------------------------

async function listView(el, db, col, base) {
  const count = await db.count(col.name);
  const table = h("table.docs", {},
    h("caption", { text: `${col.name}: ${count} document${count === 1 ? "" : "s"}` }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Id" }),
      h("th", { scope: "col", text: "Revision" }),
      h("th", { scope: "col", text: "Contents" }))));
  const tbody = h("tbody");
  table.append(tbody);
  const pager = h("p.pager");
  const [gl, goto] = field("Go to id", { name: "goto" });
  const [fl, filter] = field("Filter (text in the contents)", { name: "filter",
                                                                 type: "search" });
  const tools = h("div.tools", {},
    h("form.inline", { onsubmit: (e) => {
      e.preventDefault();
      guard(() => { idFromText(col, goto.value.trim());
        location.hash = `${base}/${encodeURIComponent(goto.value.trim())}`; });
    } }, gl, goto, h("button", { type: "submit", text: "Open" })),
    h("form.inline", { onsubmit: (e) => { e.preventDefault(); show(); } },
      fl, filter, h("button", { type: "submit", text: "Filter" })),
    h("a.button", { href: `${base}/new`, text: "New document" }));
  fill(el, tools, table, pager);

  const starts = [null]; // the id each page starts after (null: the first)
  let page = 0;
  async function show() {
    const text = filter.value;
    const docs = text ? await scan(db, col, starts[page], text)
                      : await db.list(col.name, { limit: PAGE,
                          range: starts[page] ? { start: starts[page],
                                                  startExcluded: true } : null });
    tbody.replaceChildren();
    for (const d of docs) {
      tbody.append(h("tr", {},
        h("td", {}, h("a", { href: `${base}/${encodeURIComponent(idRoute(col, d.id))}`,
                             text: idText(col, d.id) })),
        h("td", { text: String(d.revision) }),
        h("td.preview", { text: preview(d) })));
    }
    if (!docs.length)
      tbody.append(h("tr", {}, h("td", { colspan: 3, text: text
        ? "No document on this page of the collection contains it." : "No documents." })));
    const last = docs.length ? docs[docs.length - 1].id : null;
    fill(pager,
      h("button", { type: "button", disabled: page === 0, text: "Previous page",
                    onclick: () => { page--; guard(show); } }),
      ` page ${page + 1} `,
      h("button", { type: "button", disabled: docs.length < PAGE || !last,
                    text: "Next page",
                    onclick: () => { starts[++page] = last; guard(show); } }));
  }
  await show();
}

/** Up to a page of documents containing `text`, reading at most 20 pages
 *  of the collection after `after`. */
async function scan(db, col, after, text) {
  const out = [];
  let start = after;
  for (let i = 0; i < 20 && out.length < PAGE; i++) {
    const docs = await db.list(col.name, { limit: 200, range: start
      ? { start, startExcluded: true } : null });
    for (const d of docs) {
      if (td.decode(d.contents).includes(text)) out.push(d);
      if (out.length === PAGE) break;
    }
    if (docs.length < 200) break;
    start = docs[docs.length - 1].id;
  }
  return out;
}

// ---- one document -----------------------------------------------------------------

function contentsText(doc) {
  const t = asText(doc.contents);
  if (t === null) return `0x${hex(doc.contents)}`;
  return prettyJson(t) ?? t;
}

async function docView(el, db, col, base, id, edit) {
  let doc;
  try {
    doc = await db.get(col.name, id);
  } catch (e) {
    if (e.code === codes.NOTFOUND)
      return fill(el, h("p", { text: `No document ${idText(col, id)} in ${col.name}.` }),
                  h("a", { href: base, text: "Back to the list" }));
    throw e;
  }
  if (edit) return editor(el, db, col, base, doc);
  const confirmBox = h("span");
  fill(el,
    h("p", {}, h("a", { href: base, text: `← ${col.name}` })),
    h("h3", { text: `Document ${idText(col, doc.id)}` }),
    h("dl.meta", {}, h("dt", { text: "Revision" }), h("dd.revision", { text: String(doc.revision) }),
      h("dt", { text: "Hash" }), h("dd", { text: hex(doc.hash) })),
    h("pre.json", { tabindex: 0, "aria-label": "Contents", text: contentsText(doc) }),
    h("p.actions", {},
      h("a.button", { href: `${base}/${encodeURIComponent(idRoute(col, doc.id))}/edit`, text: "Edit" }),
      h("button", { type: "button", text: "Delete", onclick: () => fill(confirmBox,
        ` Delete document ${idText(col, doc.id)}? `,
        h("button.danger", { type: "button", text: "Yes, delete", onclick: () => guard(async () => {
          await db.delete(col.name, doc.header);
          notify(`Deleted document ${idText(col, doc.id)}.`);
          location.hash = base;
        }) }),
        h("button", { type: "button", text: "No", onclick: () => fill(confirmBox) })) }),
      confirmBox));
}

/** Edit `doc` (null: a new document). */
function editor(el, db, col, base, doc) {
  const [tl, area] = field("Contents (JSON)", { textarea: true, name: "contents",
    rows: 18, spellcheck: "false",
    value: doc ? contentsText(doc) : "{\n  \n}" });
  const [il, idIn] = field(col.idKind === "u64" ? "Id (empty: the next number)"
                                                 : "Id", { name: "id" });
  const status = h("p.hint", { role: "status" });
  const conflict = h("div");
  let header = doc ? doc.header : null;
  const save = async (text, hdr) => {
    try {
      JSON.parse(text);
    } catch (e) {
      status.textContent = `Not JSON: ${e.message}`;
      return;
    }
    try {
      if (!doc) {
        const idText0 = idIn.value.trim();
        const id = idText0 ? idFromText(col, idText0) : null;
        if (!id && col.idKind !== "u64") throw new Error("an id is needed");
        const hd = await db.insert(col.name, utf8(text), id);
        notify(`Created document ${idText(col, hd.id)}.`);
        location.hash = `${base}/${encodeURIComponent(idRoute(col, hd.id))}`;
        return;
      }
      const hd = await db.update(col.name, hdr, utf8(text));
      notify(`Saved revision ${hd.revision}.`);
      location.hash = `${base}/${encodeURIComponent(idRoute(col, doc.id))}`;
    } catch (e) {
      if (doc && e.code === codes.CONFLICT) return showConflict(text);
      status.textContent = `Not saved: ${e.message}`;
    }
  };
  // theirs vs yours: keep mine (over theirs' revision), take theirs, cancel
  const showConflict = async (mine) => {
    const theirs = await db.get(col.name, doc.id);
    const [yl, yours] = field("Yours", { textarea: true, rows: 14, value: mine,
                                         spellcheck: "false" });
    fill(conflict, h("section.conflict", { "aria-labelledby": "conflict-h" },
      h("h3#conflict-h", { text: "Conflict: someone else changed this document" }),
      h("p", { text: `You edited revision ${header.revision}; it is now at ` +
                     `revision ${theirs.revision}.` }),
      h("div.sides", {},
        h("div", {}, h("h4", { text: `Theirs (revision ${theirs.revision})` }),
          h("pre.json.theirs", { text: contentsText(theirs) })),
        h("div", {}, yl, yours)),
      h("p.actions", {},
        h("button", { type: "button", text: "Save mine over theirs",
                      onclick: () => { header = theirs.header; save(yours.value, header); } }),
        h("button", { type: "button", text: "Take theirs",
                      onclick: () => { header = theirs.header; area.value = contentsText(theirs);
                                       fill(conflict); } }),
        h("button", { type: "button", text: "Cancel",
                      onclick: () => { location.hash = `${base}/${encodeURIComponent(idRoute(col, doc.id))}`; } }))));
    yours.focus();
  };
  fill(el,
    h("p", {}, h("a", { href: base, text: `← ${col.name}` })),
    h("h3", { text: doc ? `Edit document ${idText(col, doc.id)} (revision ${doc.revision})`
                        : `New document in ${col.name}` }),
    h("form.editor", { onsubmit: (e) => { e.preventDefault(); save(area.value, header); } },
      doc ? null : [il, idIn], tl, area,
      h("p.actions", {},
        h("button", { type: "submit", text: doc ? "Save" : "Create" }),
        h("button", { type: "button", text: "Format", onclick: () => {
          const p = prettyJson(area.value);
          if (p === null) status.textContent = "Not JSON."; else area.value = p;
        } }),
        h("a.button", { href: doc ? `${base}/${encodeURIComponent(idRoute(col, doc.id))}` : base,
                        text: "Cancel" })),
      status),
    conflict);
  area.focus();
}
