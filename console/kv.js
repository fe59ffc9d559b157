// kv.js -- the Key-value tab: a namespace's keys (from a prefix, a page at
// a time), their values and expirations; set and delete keys.

import { h, fill, field, select, guard, notify, showBytes } from "./ui.js";

const PAGE = 50;

function valueText(v) {
  if (v === null) return "(none)";
  if (typeof v === "bigint") return `${v} (integer)`;
  if (typeof v === "number") return `${v} (float)`;
  return showBytes(v);
}

export async function kvPanel(el, r, st) {
  const db = st.client.db(r.db);
  const [nl, nsIn] = field("Namespace (empty: none)", { name: "ns", id: "kv-ns" });
  const [pl, prefixIn] = field("Key prefix", { name: "prefix", id: "kv-prefix" });
  const out = h("div.results");
  const pager = h("p.pager");
  const afters = [null];
  let page = 0;
  const list = async () => {
    const kv = db.kv(nsIn.value);
    const items = await kv.list({ prefix: prefixIn.value, after: afters[page], limit: PAGE });
    fill(out, h("table.kv", {},
      h("caption", { text: `namespace '${nsIn.value}': ${items.length} key${items.length === 1 ? "" : "s"} on page ${page + 1}` }),
      h("thead", {}, h("tr", {}, ["Key", "Value", "Expires", ""].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, items.length ? items.map((it) => h("tr", {},
        h("td", { text: it.key }), h("td", { text: valueText(it.value) }),
        h("td", { text: it.expireAtMs ? new Date(it.expireAtMs).toISOString() : "never" }),
        h("td", {}, h("button", { type: "button", text: "Delete", "aria-label": `Delete key ${it.key}`,
          onclick: () => guard(async () => { await kv.delete(it.key); notify(`Deleted key ${it.key}.`); await list(); }) }))))
        : h("tr", {}, h("td", { colspan: 4, text: "No keys." })))));
    const last = items[items.length - 1];
    fill(pager,
      h("button", { type: "button", disabled: page === 0, text: "Previous page", onclick: () => { page--; guard(list); } }),
      ` page ${page + 1} `,
      h("button", { type: "button", disabled: items.length < PAGE, text: "Next page",
                    onclick: () => { afters[++page] = last.key; guard(list); } }));
  };
  const [kl, keyIn] = field("Key", { name: "key", id: "kv-key", required: true });
  const [vl, valIn] = field("Value", { name: "value", id: "kv-value" });
  const kindSel = select({ id: "kv-kind", name: "kind" }, [["text", "text"], ["int", "integer"], ["float", "float"]]);
  const set = async () => {
    const s = valIn.value;
    const v = kindSel.value === "int" ? BigInt(s) : kindSel.value === "float" ? Number(s) : s;
    await db.kv(nsIn.value).set(keyIn.value, kindSel.value === "float" ? { kind: "float", value: v } : v);
    notify(`Set key ${keyIn.value}.`);
    await list();
  };
  fill(el,
    h("form.inline", { onsubmit: (e) => { e.preventDefault(); page = 0; afters.length = 1; guard(list); } },
      nl, nsIn, pl, prefixIn, h("button", { type: "submit", text: "List keys" })),
    out, pager,
    h("form.inline", { onsubmit: (e) => { e.preventDefault(); guard(set); } },
      h("h3", { text: "Set a key" }), kl, keyIn, vl, valIn,
      h("label", { for: "kv-kind", text: "as" }), kindSel,
      h("button", { type: "submit", text: "Set" })));
  await list();
}
