// server.js -- the server's health (/health of the server that served the
// page, refreshed every few seconds) and this connection.

import { h, fill } from "./ui.js";

function uptime(s) {
  const d = Math.floor(s / 86400), hr = Math.floor(s / 3600) % 24,
    m = Math.floor(s / 60) % 60;
  return `${d ? `${d} d ` : ""}${hr ? `${hr} h ` : ""}${m} min ${s % 60} s`;
}

export async function serverPanel(el, st) {
  const box = h("dl.health", { "aria-live": "polite" });
  const section = h("section.server", {}, h("h2", { text: "Server" }), box,
    h("p.hint", { text: "Connected clients: the server does not list them yet; " +
                        "the count above is of open connections." }));
  const load = async () => {
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
  };
  await load();
  const timer = setInterval(load, 5000);
  st.cleanup.push(() => clearInterval(timer));
  fill(el, section);
  return section;
}
