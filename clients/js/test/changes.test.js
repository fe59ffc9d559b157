// changes.test.js -- the changes feed through the JavaScript client,
// against a real `sprig serve`: the backlog then live changes with no gap
// and no duplicate while a writer commits, one collection's feed with
// contents, and the feed resumed by the client itself across a dropped
// connection and across a server restart (same port, same storage).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, Transaction } from "../index.js";
import { makeStorage, startServer, removeStorage, ADMIN_PW } from
  "../testlib/server.js";

let st, srv;
const clients = [];
const login = async (o = {}) => {
  const c = await connect(srv.url, { user: "admin", password: ADMIN_PW,
                                     timeoutMs: 15000, reconnectDelayMs: 50,
                                     ...o });
  clients.push(c);
  return c;
};
const within = (p, ms, what) => {
  let timer;
  return Promise.race([p, new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms);
  })]).finally(() => clearTimeout(timer));
};
// Take changes from `feed` until `pred(all)` holds.
async function takeUntil(feed, pred, ms, what) {
  const all = [];
  await within((async () => {
    while (!pred(all)) {
      const r = await feed.next();
      if (r.done) throw new Error("the feed ended");
      all.push(r.value);
    }
  })(), ms, what);
  return all;
}

before(async () => {
  st = makeStorage();
  srv = await startServer(st.path);
});

after(async () => {
  for (const c of clients) c.close();
  if (srv) await srv.stop();
  removeStorage(st.dir);
});

test("backlog then live, no gap and no duplicate under a writer",
  async () => {
    const w = await login();
    const db = w.db("default");
    const start = await db.lastTransactionId();
    for (let i = 0; i < 50; i++) await db.insert("messages", `b${i}`);
    const c = await login();
    const feed = await c.db("default").changes({ since: start });
    // a writer keeps committing while the feed switches to live
    const writer = (async () => {
      for (let i = 0; i < 150; i++) {
        await db.apply(new Transaction().insert("messages", `l${i}`)
          .overwrite("people", `p${i % 7}`, { i }));
      }
    })();
    await writer;
    const last = await db.lastTransactionId();
    const all = await takeUntil(feed, (a) => a.length &&
      a[a.length - 1].txn === last && a.length >= 50 + 300, 20000, "all");
    const txns = [...new Set(all.map((x) => x.txn))];
    // every committed id after `start`, once, in order
    assert.equal(txns.length, Number(last - start));
    txns.forEach((t, i) => assert.equal(t, start + 1n + BigInt(i)));
    for (let i = 1; i < all.length; i++)
      assert.ok(all[i].txn >= all[i - 1].txn, "ids never go back");
    assert.equal(all.length, 50 + 300);
    assert.equal(feed.lastId, last);
    await feed.close();
  });

test("one collection, with contents and deletions", async () => {
  const c = await login();
  const db = c.db("default");
  const start = await db.lastTransactionId();
  const feed = await db.changes({ since: start, collection: "people",
                                  contents: true });
  await db.insert("messages", "not in the feed");
  const h = await db.overwrite("people", "zed", { name: "Zed" });
  await db.delete("people", h);
  const got = await takeUntil(feed, (a) => a.length === 2, 10000, "two");
  assert.equal(got[0].collection, "people");
  assert.equal(new TextDecoder().decode(got[0].id), "zed");
  // changed again (deleted) before it was delivered? then no contents
  if (got[0].contents)
    assert.equal(new TextDecoder().decode(got[0].contents), '{"name":"Zed"}');
  assert.equal(got[1].deleted, true);
  assert.equal(got[1].contents, null);
  // live: contents of a change that stays
  await db.overwrite("people", "amy", { name: "Amy" });
  const [amy] = await takeUntil(feed, (a) => a.length === 1, 10000, "amy");
  assert.equal(new TextDecoder().decode(amy.contents), '{"name":"Amy"}');
  await feed.close();
});

test("the feed resumes by itself across a dropped connection", async () => {
  const c = await login();
  const w = await login();
  const db = w.db("default");
  const start = await db.lastTransactionId();
  const feed = await c.db("default").changes({ since: start,
                                               collection: "messages" });
  await db.insert("messages", "before");
  const [first] = await takeUntil(feed, (a) => a.length === 1, 10000, "1st");
  const reconnected = new Promise((r) => c.on("reconnect", r));
  c.dropConnection();
  await db.insert("messages", "while away");
  await within(reconnected, 15000, "reconnect");
  await db.insert("messages", "after");
  const rest = await takeUntil(feed, (a) => a.length === 2, 10000, "rest");
  assert.deepEqual([first, ...rest].map((x) => x.txn),
                   [start + 1n, start + 2n, start + 3n]);
  await feed.close();
});

test("the feed resumes across a server restart", async () => {
  const c = await login();
  let db = c.db("default");
  const start = await db.lastTransactionId();
  const feed = await db.changes({ since: start });
  await db.insert("messages", "one");
  await takeUntil(feed, (a) => a.length === 1, 10000, "one");
  const port = srv.port;
  const reconnected = new Promise((r) => c.on("reconnect", r));
  assert.equal(await srv.stop(), 0);
  srv = await startServer(st.path, port);
  await within(reconnected, 20000, "reconnect after the restart");
  const w = await login();
  db = w.db("default");
  await db.insert("messages", "two");
  const [two] = await takeUntil(feed, (a) => a.length === 1, 10000, "two");
  assert.equal(two.txn, start + 2n);
  assert.equal(feed.lastId, start + 2n);
  await feed.close();
});
