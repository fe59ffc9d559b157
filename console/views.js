// views.js -- the Views tab: query a collection's view (all, a key, a
// prefix, a range; either order) a page at a time, with or without the
// documents, and run its reduce (whole, or grouped by key).

import { h, fill, field, select, guard, showBytes, asText } from "./ui.js";
import { keyFromJson, keyToJson } from "./keys.js";
import { idText } from "./docs.js";

const keyText = (b) => keyToJson(b) ?? showBytes(b);

export async function viewsPanel(el, r, st) {
  const cols = st.collectionsOf(r.db).filter((c) => c.views.length);
  if (!cols.length) return fill(el, h("p", { text: "No collection of this database has a view." }));
  const db = st.client.db(r.db);
  const choices = [];
  for (const c of cols) for (const v of c.views) choices.push([`${c.name}/${v.name}`, `${c.name} / ${v.name}`]);
  const viewSel = select({ id: "q-view", name: "view" }, choices);
  const matchSel = select({ id: "q-match", name: "match" },
    [["all", "all keys"], ["key", "one key"], ["prefix", "key prefix"], ["range", "key range"]]);
  const [kl, keyIn] = field("Key (JSON: \"ann\", 42, [\"a\", 1])", { name: "key", id: "q-key" });
  const [el2, endIn] = field("Range end (JSON; empty: no end)", { name: "end", id: "q-end" });
  const orderSel = select({ id: "q-order", name: "order" }, [["asc", "ascending"], ["desc", "descending"]]);
  const [ll, limitIn] = field("Page size", { name: "limit", type: "number", min: 1, value: 20 });
  const withDocs = h("input", { type: "checkbox", id: "q-docs", name: "docs" });
  const info = h("p.hint", { role: "status" });
  const out = h("div.results");
  const pager = h("p.pager");
  const col = () => cols.find((c) => c.name === viewSel.value.split("/")[0]);
  const view = () => col().views.find((v) => v.name === viewSel.value.split("/").slice(1).join("/"));
  const describe = () => {
    const v = view();
    info.textContent = `${v.jsonKey ? `key ${v.jsonKey}` : "C view"}` +
      `${v.jsonValue ? `, value ${v.jsonValue}` : ""}, reduce ${v.reduce}, ${v.policy}`;
  };
  viewSel.addEventListener("change", describe);
  describe();

  const query = () => {
    const q = { order: orderSel.value, limit: Math.max(1, Number(limitIn.value) || 20),
                withDocs: withDocs.checked };
    const k = keyIn.value.trim();
    if (matchSel.value === "key") q.key = keyFromJson(k);
    else if (matchSel.value === "prefix") q.prefix = k ? keyFromJson(k) : new Uint8Array();
    else if (matchSel.value === "range") {
      q.range = { start: k ? keyFromJson(k) : null,
                  end: endIn.value.trim() ? keyFromJson(endIn.value.trim()) : null };
    }
    return q;
  };
  const afters = [null];
  let page = 0;
  const run = async () => {
    const q = query();
    if (afters[page]) q.after = afters[page];
    const ms = await db.query(col().name, view().name, q);
    const rows = ms.map((m) => h("tr", {},
      h("td", { text: keyText(m.key) }),
      h("td", { text: asText(m.value) ?? showBytes(m.value) }),
      h("td", { text: m.source ? idText(col(), m.source.id) : "" }),
      q.withDocs ? h("td.preview", { text: m.doc ? (asText(m.doc.contents) ?? "(binary)") : "" }) : null));
    fill(out, h("table.mappings", {},
      h("caption", { text: `${view().name}: ${ms.length} mapping${ms.length === 1 ? "" : "s"} on page ${page + 1}` }),
      h("thead", {}, h("tr", {}, ["Key", "Value", "Document", q.withDocs ? "Contents" : null]
        .filter(Boolean).map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 4, text: "No mappings." })))));
    const last = ms[ms.length - 1];
    fill(pager,
      h("button", { type: "button", disabled: page === 0, text: "Previous page",
                    onclick: () => { page--; guard(run); } }),
      ` page ${page + 1} `,
      h("button", { type: "button", disabled: ms.length < q.limit || !last || !last.source,
                    text: "Next page",
                    onclick: () => { afters[++page] = { key: last.key, id: last.source.id }; guard(run); } }));
  };
  const reduce = async (grouped) => {
    const q = query();
    delete q.limit;
    if (view().reduce === "none" && !view().reduceFn)
      return fill(out, h("p", { text: "This view has no reduce." }));
    if (!grouped) {
      const v = await db.reduce(col().name, view().name, q);
      fill(pager);
      return fill(out, h("p.reduced", {}, "Reduced: ", h("output#reduced", { text: asText(v) ?? showBytes(v) })));
    }
    const ms = await db.reduceGrouped(col().name, view().name, q);
    fill(pager);
    fill(out, h("table.mappings", {}, h("caption", { text: "Reduced by key" }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Key" }), h("th", { scope: "col", text: "Reduced" }))),
      h("tbody", {}, ms.map((m) => h("tr", {}, h("td", { text: keyText(m.key) }),
        h("td", { text: asText(m.value) ?? showBytes(m.value) }))))));
  };
  fill(el,
    h("form.query", { onsubmit: (e) => { e.preventDefault(); page = 0; afters.length = 1; guard(run); } },
      h("label", { for: "q-view", text: "View" }), viewSel, info,
      h("label", { for: "q-match", text: "Match" }), matchSel,
      kl, keyIn, el2, endIn,
      h("label", { for: "q-order", text: "Order" }), orderSel,
      ll, limitIn,
      h("label.check", {}, withDocs, " with documents"),
      h("p.actions", {},
        h("button", { type: "submit", text: "Query" }),
        h("button", { type: "button", text: "Reduce", onclick: () => guard(() => reduce(false)) }),
        h("button", { type: "button", text: "Reduce by key", onclick: () => guard(() => reduce(true)) }))),
    out, pager);
}
