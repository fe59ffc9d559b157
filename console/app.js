// app.js -- the Sprig web console: log in, then browse the server's
// databases in a sidebar and work on one in tabs (documents, views,
// key-value, PubSub, changes), plus the server's health.  Plain ES
// modules over the JavaScript client (sprig-client, the import map of
// index.html); the page talks only to the server that served it.

import { Client, SprigError } from "sprig-client";
import { h, fill, field, notify, guard } from "./ui.js";
import { docsPanel } from "./docs.js";
import { viewsPanel } from "./views.js";
import { kvPanel } from "./kv.js";
import { livePanel } from "./live.js";
import { serverPanel } from "./server.js";

const main = document.getElementById("main");
const connEl = document.getElementById("conn");
const whoEl = document.getElementById("who");
const logoutBtn = document.getElementById("logout");

/** What every panel shares. */
export const state = {
  client: null,
  dbs: [],          // [{name, schema}]
  schemas: new Map(), // name -> {name, collections}
  cleanup: [],      // functions closing the open panel's feeds
  collectionsOf: (name) => collections(name),
};

const wsUrl = () =>
  `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;

function setConn(text, ok) {
  connEl.textContent = text;
  connEl.classList.toggle("ok", !!ok);
}

// ---- log in ---------------------------------------------------------------

function loginView(message) {
  const [ul, user] = field("User", { name: "user", autocomplete: "username",
                                      required: true });
  const [pl, pass] = field("Password", { name: "password", type: "password",
                                          autocomplete: "current-password" });
  const [tl, token] = field("or token (id:secret)", { name: "token",
                                                      autocomplete: "off" });
  const status = h("p.hint", { role: "status", text: message || "" });
  const form = h("form.login", { onsubmit: (e) => {
    e.preventDefault();
    login(user.value, pass.value, token.value.trim(), status);
  } },
  h("h2", { text: "Log in" }),
  h("p.hint", { text: `to ${location.host}` }),
  ul, user, pl, pass, tl, token,
  h("button", { type: "submit", text: "Log in" }), status);
  fill(main, form);
  user.focus();
}

async function login(user, password, token, status) {
  status.textContent = "Connecting…";
  const opts = token ? { token } : { user, password };
  const c = new Client(wsUrl(), { ...opts, reconnect: true });
  try {
    await c.open();
  } catch (e) {
    c.close();
    status.textContent = `Cannot log in: ${e.message}`;
    return;
  }
  state.client = c;
  c.on("disconnect", () => setConn("disconnected: reconnecting…", false));
  c.on("reconnect", () => setConn(`connected to ${location.host}`, true));
  setConn(`connected to ${location.host}`, true);
  whoEl.textContent = c.identity ? `as ${c.identity}` : "";
  logoutBtn.hidden = false;
  await refresh();
  route();
}

async function logout() {
  closePanel();
  const c = state.client;
  state.client = null;
  if (c) {
    try { await c.logout(); } catch (_) { /* closing anyway */ }
    c.close();
  }
  logoutBtn.hidden = true;
  whoEl.textContent = "";
  setConn("not connected", false);
  location.hash = "#/";
  loginView("Logged out.");
}

// ---- databases --------------------------------------------------------------

/** Reload the databases and schemas. */
export async function refresh() {
  const c = state.client;
  const [dbs, schemas] = await Promise.all([c.listDatabases(),
                                            c.listSchemas()]);
  state.dbs = dbs.sort((a, b) => a.name.localeCompare(b.name));
  state.schemas = new Map(schemas.map((s) => [s.name, s]));
}

/** The collections of database `name` (from its schema). */
export function collections(name) {
  const d = state.dbs.find((x) => x.name === name);
  const s = d && state.schemas.get(d.schema);
  return s ? s.collections : [];
}

function sidebar(current) {
  const nav = h("nav.side", { "aria-label": "Databases" },
                h("h2", { text: "Databases" }));
  const list = h("ul");
  for (const d of state.dbs) {
    const open = current.db === d.name;
    const item = h("li", {},
      h("a", { href: `#/db/${encodeURIComponent(d.name)}`,
               "aria-current": open && !current.collection ? "page" : null,
               text: d.name }),
      h("span.schema", { text: ` (${d.schema})` }));
    if (open) {
      const sub = h("ul");
      for (const col of collections(d.name)) {
        sub.append(h("li", {}, h("a", {
          href: `#/db/${encodeURIComponent(d.name)}/docs/` +
                encodeURIComponent(col.name),
          "aria-current": current.collection === col.name ? "page" : null,
          text: col.name })));
      }
      item.append(sub);
    }
    list.append(item);
  }
  if (!state.dbs.length) list.append(h("li.hint", { text: "none visible" }));
  nav.append(list, h("p", {}, h("a", { href: "#/server",
                                        text: "Server health and clients" })));
  return nav;
}

const tabs = [
  ["docs", "Documents"], ["views", "Views"], ["kv", "Key-value"],
  ["pubsub", "PubSub"], ["changes", "Changes"],
];

function tabBar(r) {
  const first = collections(r.db)[0];
  const bar = h("nav.tabs", { "aria-label": "Database tools" });
  for (const [id, label] of tabs) {
    let href = `#/db/${encodeURIComponent(r.db)}/${id}`;
    if (id === "docs" && (r.collection || first))
      href += `/${encodeURIComponent(r.collection || first.name)}`;
    bar.append(h("a", { href, "aria-current": r.tab === id ? "page" : null,
                        text: label }));
  }
  return bar;
}

// ---- routing ----------------------------------------------------------------

/** #/db/NAME/TAB/COLLECTION/ID... -> {db, tab, collection, rest}. */
function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/")
    .map((p) => decodeURIComponent(p));
  if (parts[0] === "server") return { server: true };
  if (parts[0] !== "db" || !parts[1]) return {};
  return { db: parts[1], tab: parts[2] || "docs", collection: parts[3] || "",
           rest: parts.slice(4) };
}

function closePanel() {
  for (const f of state.cleanup.splice(0)) {
    try { f(); } catch (_) { /* closing anyway */ }
  }
}

export function route() {
  if (!state.client) return;
  closePanel();
  const r = parseHash();
  const content = h("section.content");
  fill(main, h("div.layout", {}, sidebar(r), content));
  if (r.server) return serverPanel(content, state);
  if (!r.db) {
    fill(content, h("h2", { text: "Welcome" }), h("p", {
      text: state.dbs.length ? "Choose a database on the left."
                             : "No database is visible to this user." }));
    const box = h("div");
    content.append(box);
    return serverPanel(box, state);
  }
  if (!state.dbs.some((d) => d.name === r.db)) {
    return fill(content, h("p", { text: `No database '${r.db}'.` }));
  }
  const body = h("div.panel");
  content.append(h("h2", { text: r.db }), tabBar(r), body);
  const panels = { docs: docsPanel, views: viewsPanel, kv: kvPanel,
                   pubsub: livePanel, changes: livePanel };
  const p = panels[r.tab];
  if (!p) return fill(body, h("p", { text: `No tab '${r.tab}'.` }));
  return guard(() => p(body, r, state));
}

window.addEventListener("hashchange", route);
logoutBtn.addEventListener("click", logout);
export { SprigError };
loginView();
