// server.js -- the server's health (/health of the server that served the
// page) and its connected clients (the server.clients row through the
// JavaScript client), both refreshed every few seconds and on demand; the
// console's own connection is marked "you".

import { h, fill } from "./ui.js";

const REFRESH_MS = 3000;

function uptime(s) {
  const d = Math.floor(s / 86400), hr = Math.floor(s / 3600) % 24,
    m = Math.floor(s / 60) % 60;
  return `${d ? `${d} d ` : ""}${hr ? `${hr} h ` : ""}${m} min ${s % 60} s`;
}

async function loadHealth(box, st) {
  try {
    const r = await fetch("/health", { cache: "no-store" });
    const j = await r.json();
    fill(box,
      h("dt", { text: "Server" }), h("dd", { text: `${j.name} ${j.version} (protocol ${j.protocol})` }),
      h("dt", { text: "Up for" }), h("dd", { text: uptime(j.uptime_s) }),
      h("dt", { text: "Open connections" }), h("dd#connections", { text: String(j.connections) }),
      h("dt", { text: "You" }), h("dd", { text: st.client.identity || "(anonymous)" }));
  } catch (e) {
    fill(box, h("dt", { text: "Health" }), h("dd", { text: `unavailable: ${e.message}` }));
  }
}

function clientRow(c) {
  const since = new Date(c.connectedMs).toISOString().replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
  return h(`tr${c.yours ? ".yours" : ""}`, { "data-id": String(c.id) },
    h("td.id", { text: String(c.id) }),
    h("td.peer", { text: c.peer }),
    h("td.transport", { text: c.transport }),
    h("td.identity", { text: c.identity || "(none)" }),
    h("td.since", { text: since }),
    h("td.sessions", { text: String(c.sessions) }),
    h("td.requests", { text: String(c.requests) }),
    h("td.you", { text: c.yours ? "you" : "" }));
}

async function loadClients(box, st) {
  try {
    const list = await st.client.connectedClients();
    const head = h("tr", {}, ["Id", "Peer", "Transport", "Identity",
      "Connected since", "Sessions", "Requests", ""].map(
      (t) => h("th", { scope: "col", text: t })));
    fill(box, h("table.clients", { "aria-label": "Connected clients" },
      h("caption", { text: `${list.length} connected client${list.length === 1 ? "" : "s"}` }),
      h("thead", {}, head), h("tbody", {}, list.map(clientRow))));
  } catch (e) {
    fill(box, h("p.error", { text: `Cannot list the clients: ${e.message}` }));
  }
}

export async function serverPanel(el, st) {
  const box = h("dl.health", { "aria-live": "polite" });
  const clients = h("div.clients");
  const load = () => Promise.all([loadHealth(box, st), loadClients(clients, st)]);
  const section = h("section.server", {}, h("h2", { text: "Server" }), box,
    h("h3", { text: "Connected clients" }),
    h("p", {}, h("button", { type: "button", onclick: load, text: "Refresh" }),
      h("span.hint", { text: ` (every ${REFRESH_MS / 1000} s by itself)` })),
    clients);
  await load();
  const timer = setInterval(load, REFRESH_MS);
  st.cleanup.push(() => clearInterval(timer));
  fill(el, section);
  return section;
}
