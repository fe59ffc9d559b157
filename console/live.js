// live.js -- the PubSub and Changes tabs: watch a topic's messages (and
// publish to it), and follow the database's committed changes live from
// now or from a transaction id (the changes feed: the backlog, then live
// pushes; resumed by the client after a reconnect).

import { codes } from "sprig-client";
import { h, fill, field, select, guard, notify, showBytes } from "./ui.js";
import { idText } from "./docs.js";

const KEEP = 200; // lines kept in a log

function logBox(label) {
  return h("ol.log", { "aria-live": "polite", "aria-label": label, reversed: true });
}

function addLine(log, ...children) {
  log.prepend(h("li", {}, h("time", { text: new Date().toLocaleTimeString() }), " ", ...children));
  while (log.children.length > KEEP) log.lastChild.remove();
}

export async function livePanel(el, r, st) {
  return r.tab === "pubsub" ? pubsub(el, r, st) : changes(el, r, st);
}

async function pubsub(el, r, st) {
  const db = st.client.db(r.db);
  const [tl, topicIn] = field("Topic", { name: "topic", id: "ps-topic", required: true });
  const [pl, pubTopic] = field("Topic", { name: "pub-topic", id: "ps-pub-topic", required: true });
  const [ml, payload] = field("Message", { name: "payload", id: "ps-payload" });
  const log = logBox("Messages");
  const watching = h("p.hint", { role: "status", text: "Not watching." });
  const subs = [];
  st.cleanup.push(() => subs.forEach((s) => s.close()));
  const watch = async () => {
    const topic = topicIn.value;
    const s = await db.subscribe([topic], (m) =>
      addLine(log, h("strong", { text: showBytes(m.topic) }), ": ", h("span.payload", { text: showBytes(m.payload) })));
    subs.push(s);
    watching.textContent = `Watching: ${subs.map((x) => [...x.topics].map(showBytes).join(", ")).join(", ")}`;
    if (!pubTopic.value) pubTopic.value = topic;
  };
  fill(el,
    h("form.inline", { onsubmit: (e) => { e.preventDefault(); guard(watch); } },
      tl, topicIn, h("button", { type: "submit", text: "Watch" })),
    watching, log,
    h("form.inline", { onsubmit: (e) => { e.preventDefault(); guard(async () => {
      await db.publish(pubTopic.value, payload.value);
      notify(`Published to ${pubTopic.value}.`);
    }); } },
      h("h3", { text: "Publish" }), pl, pubTopic, ml, payload, h("button", { type: "submit", text: "Publish" })));
}

async function changes(el, r, st) {
  const db = st.client.db(r.db);
  const cols = st.collectionsOf(r.db);
  const colSel = select({ id: "ch-col", name: "collection" },
    [["", "all collections"], ...cols.map((c) => [c.name, c.name])]);
  const [sl, sinceIn] = field("From transaction id (empty: from now)", { name: "since", id: "ch-since" });
  const withContents = h("input", { type: "checkbox", id: "ch-contents" });
  const log = logBox("Changes");
  const status = h("p.hint", { role: "status", text: "Not following." });
  let stop = null;
  st.cleanup.push(() => stop && stop());
  const line = (c) => {
    const col = cols.find((x) => x.name === c.collection);
    const id = col ? idText(col, c.id) : showBytes(c.id);
    const href = `#/db/${encodeURIComponent(r.db)}/docs/${encodeURIComponent(c.collection)}/${encodeURIComponent(id)}`;
    addLine(log, `txn ${c.txn}: `, h("strong", { text: c.deleted ? "deleted" : "changed" }), ` ${c.collection} `,
      c.deleted ? h("span", { text: id }) : h("a", { href, text: id }), ` revision ${c.revision}`,
      c.contents ? h("code.payload", { text: ` ${showBytes(c.contents)}` }) : null);
  };
  const follow = async () => {
    if (stop) stop();
    const since = sinceIn.value.trim() ? BigInt(sinceIn.value.trim()) : await db.lastTransactionId();
    const o = { since, collection: colSel.value, contents: withContents.checked };
    try {
      const feed = await db.changes(o, line);
      stop = () => feed.close();
      status.textContent = `Following changes after transaction ${since}.`;
    } catch (e) {
      if (e.code !== codes.PROTO && e.code !== codes.INVAL) throw e;
      stop = poll(db, o, line); // a server without the changes feed
      status.textContent = `Following changes after transaction ${since} (polling the transaction log: this server has no changes feed).`;
    }
  };
  fill(el,
    h("form.inline", { onsubmit: (e) => { e.preventDefault(); guard(follow); } },
      h("label", { for: "ch-col", text: "Collection" }), colSel, sl, sinceIn,
      h("label.check", {}, withContents, " with contents"),
      h("button", { type: "submit", text: "Follow" }),
      h("button", { type: "button", text: "Stop", onclick: () => { if (stop) stop(); stop = null; status.textContent = "Stopped."; } })),
    status, log);
}

/** Follow the transaction log by polling, once a second. */
function poll(db, o, line) {
  let last = o.since, busy = false;
  const tick = () => guard(async () => {
    if (busy) return;
    busy = true;
    try {
      const log = await db.listExecutedTransactions(last + 1n, 1000);
      for (const t of log) {
        last = t.id;
        for (const c of t.changes)
          if (!o.collection || c.collection === o.collection) line({ txn: t.id, ...c });
      }
    } finally {
      busy = false;
    }
  });
  const timer = setInterval(tick, 1000);
  tick();
  return () => clearInterval(timer);
}
