// client.test.js -- the JavaScript client against a real `sprig serve`
// (authentication on; node --test).  Every operation group of the
// client: login (password, token), storage admin, CRUD with revisions
// and conflicts, transactions, views (query, paging, reduces), key-value
// (64-bit values exact), PubSub (iterator and callback), u64 document
// ids beyond 2^53, generic calls, and reconnecting with re-login and
// resubscription.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, Transaction, SprigError, codes, u64, idToBigInt }
  from "../index.js";
import { makeStorage, startServer, removeStorage, ADMIN_PW } from
  "../testlib/server.js";

let st, srv;
const clients = [];
const login = async (o = {}) => {
  const c = await connect(srv.url, { user: "admin", password: ADMIN_PW,
                                     timeoutMs: 15000, ...o });
  clients.push(c);
  return c;
};
const within = (p, ms, what) => {
  let timer;
  return Promise.race([p, new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms);
  })]).finally(() => clearTimeout(timer));
};

before(async () => {
  st = makeStorage();
  srv = await startServer(st.path);
});

after(async () => {
  for (const c of clients) c.close();
  if (srv) assert.equal(await srv.stop(), 0, "the server exits with 0");
  removeStorage(st.dir);
});

test("logins: password, token, refused without or with a wrong one",
  async () => {
    const c = await login();
    assert.equal(c.identity, "admin");
    const t = await connect(srv.url, { token: st.token });
    clients.push(t);
    assert.equal(t.identity, "admin");
    assert.equal(await t.db("default").count("messages"), 0);
    await assert.rejects(connect(srv.url, { user: "admin",
                                            password: "wrong" }),
      (e) => e instanceof SprigError && e.code === codes.PERM);
    const anon = await connect(srv.url, {});
    clients.push(anon);
    await assert.rejects(anon.db("default").count("messages"),
      (e) => e.code === codes.PERM && /not allowed/.test(e.message));
    const r = await login({ user: "reader" });
    await assert.rejects(r.listDatabases(), (e) => e.code === codes.PERM);
  });

test("connected clients: this one marked, another listed, refused without the grant",
  async () => {
    const c = await login();
    const other = await login({ user: "reader" });
    const l = await c.connectedClients();
    const mine = l.filter((x) => x.yours);
    assert.equal(mine.length, 1, "exactly one connection is the caller's");
    assert.equal(mine[0].identity, "admin");
    assert.equal(mine[0].transport, "ws");
    assert.match(mine[0].peer, /^127\.0\.0\.1:\d+$/);
    assert.equal(typeof mine[0].id, "bigint");
    assert.ok(mine[0].requests >= 2, "the login and this call counted");
    assert.ok(Math.abs(mine[0].connectedMs - Date.now()) < 600000);
    assert.ok(l.some((x) => !x.yours && x.identity === "reader"),
              "the second client is listed");
    for (let i = 1; i < l.length; i++)
      assert.ok(l[i - 1].connectedMs <= l[i].connectedMs, "oldest first");
    const again = (await c.connectedClients()).find((x) => x.yours);
    assert.equal(again.id, mine[0].id);
    assert.equal(again.requests, mine[0].requests + 1);
    await assert.rejects(other.connectedClients(),
      (e) => e.code === codes.PERM && /server\.clients/.test(e.message));
  });

test("storage admin: databases and schemas", async () => {
  const c = await login();
  await c.registerSchema({ name: "shop", collections: [
    { name: "items", idKind: "natural", views: [
      { name: "by-kind", policy: "eager", jsonKey: "kind",
        jsonValue: "price", reduce: "sum" }] }] });
  const schemas = await c.listSchemas();
  const shop = schemas.find((s) => s.name === "shop");
  assert.equal(shop.collections[0].name, "items");
  assert.equal(shop.collections[0].idKind, "natural");
  assert.equal(shop.collections[0].views[0].jsonKey, "kind");
  await c.createDatabase("shop1", "shop");
  await assert.rejects(c.createDatabase("shop1", "shop"),
                       (e) => e.code === codes.EXIST);
  await c.createDatabase("shop1", "shop", { onlyIfNeeded: true });
  const names = (await c.listDatabases()).map((d) => `${d.name}:${d.schema}`);
  assert.ok(names.includes("shop1:shop") && names.includes("default:chat"));
  await c.openDatabase("shop1");
  await c.deleteDatabase("shop1");
  await assert.rejects(c.openDatabase("shop1"),
                       (e) => e.code === codes.NOTFOUND);
});

test("documents: insert, get, update, conflict, overwrite, delete, list",
  async () => {
    const c = await login();
    const db = c.db("default");
    const h = await db.insert("messages", { text: "hi" });
    assert.equal(h.id.length, 8);
    assert.equal(h.revision, 1);
    const d = await db.get("messages", h.id);
    assert.deepEqual(d.json(), { text: "hi" });
    assert.deepEqual(d.hash, h.hash);
    const h2 = await db.update("messages", h, { text: "hi again" });
    assert.equal(h2.revision, 2);
    // a stale revision conflicts, and the error names the stored header
    await assert.rejects(db.update("messages", h, "stale"), (e) => {
      assert.equal(e.code, codes.CONFLICT);
      assert.equal(e.result.failed, 0);
      assert.equal(e.result.conflict.revision, 2);
      assert.equal(e.errorInfo.collection, "messages");
      return true;
    });
    await db.overwrite("people", "ann", { name: "Ann" });
    await db.overwrite("people", "bob", { name: "Bob" });
    assert.equal((await db.get("people", "ann")).json().name, "Ann");
    const people = await db.list("people");
    assert.deepEqual(people.map((p) => p.text()),
                     ['{"name":"Ann"}', '{"name":"Bob"}']);
    const desc = await db.list("people", { order: "desc", limit: 1 });
    assert.equal(desc[0].json().name, "Bob");
    assert.equal(await db.count("people", { range: { start: "b" } }), 1);
    const many = await db.getMultiple("people", ["ann", "bob"]);
    assert.equal(many.length, 2);
    const del = await db.delete("people", { id: "bob", revision: 1 });
    assert.equal(del.revision, 1);
    await assert.rejects(db.get("people", "bob"), (e) => {
      assert.equal(e.code, codes.NOTFOUND);
      assert.equal(new TextDecoder().decode(e.errorInfo.id), "bob");
      return true;
    });
    await assert.rejects(db.get("nope", "x"), (e) => e.code === codes.SCHEMA);
  });

test("transactions: all or nothing, the failed operation named, the log",
  async () => {
    const c = await login();
    const db = c.db("default");
    const before = await db.lastTransactionId();
    assert.equal(typeof before, "bigint");
    const r = await db.apply(new Transaction()
      .overwrite("people", "cy", "{}")
      .insert("messages", "one")
      .insert("messages", "two"));
    assert.equal(r.id, before + 1n);
    assert.equal(r.headers.length, 3);
    await assert.rejects(db.apply(new Transaction()
      .insert("people", "dee", "{}")
      .insert("people", "cy", "{}")), (e) => {
      assert.equal(e.code, codes.CONFLICT); // an existence check
      assert.equal(e.result.failed, 1);
      return true;
    });
    await assert.rejects(db.get("people", "dee"),
                         (e) => e.code === codes.NOTFOUND);
    const log = await db.listExecutedTransactions(r.id);
    assert.equal(log.length, 1);
    assert.equal(log[0].id, r.id);
    assert.equal(log[0].changes.length, 3);
    assert.equal(log[0].changes[0].collection, "people");
  });

test("views: query, paging with after, reduce, grouped", async () => {
  const c = await login();
  await c.createDatabase("shop2", "shop");
  const db = c.db("shop2");
  const items = [["a", "fruit", 3], ["b", "fruit", 4], ["c", "veg", 10],
                 ["d", "veg", 1], ["e", "fruit", 5]];
  const t = new Transaction();
  for (const [id, kind, price] of items)
    t.overwrite("items", id, { kind, price });
  await db.apply(t);
  const fruitKey = new Uint8Array([0x30, ...new TextEncoder()
    .encode("fruit"), 0]);
  const fruit = await db.query("items", "by-kind", { key: fruitKey,
                                                     withDocs: true });
  assert.equal(fruit.length, 3);
  assert.equal(fruit[0].doc.json().kind, "fruit");
  // paging: two by two, each page continuing after the last mapping
  const seen = [];
  let after = null;
  for (;;) {
    const page = await db.query("items", "by-kind", { limit: 2, after });
    seen.push(...page.map((m) => new TextDecoder().decode(m.source.id)));
    if (page.length < 2) break;
    const last = page[page.length - 1];
    after = { key: last.key, id: last.source.id };
  }
  assert.deepEqual(seen.sort(), ["a", "b", "c", "d", "e"]);
  assert.equal(await db.reduceJson("items", "by-kind", {}), 23);
  assert.equal(await db.reduceJson("items", "by-kind", { key: fruitKey }),
               12);
  const grouped = await db.reduceGrouped("items", "by-kind");
  assert.deepEqual(grouped.map((m) => new TextDecoder().decode(m.value)),
                   ["12", "11"]);
  assert.equal(await db.deleteDocs("items", "by-kind", { key: fruitKey }),
               3);
  assert.equal(await db.count("items"), 2);
  await c.deleteDatabase("shop2");
});

test("key-value: values of every kind, 64-bit integers exact", async () => {
  const c = await login();
  const kv = c.db("default").kv("js");
  assert.equal((await kv.set("s", "text")).status, "inserted");
  assert.equal(new TextDecoder().decode(await kv.get("s")), "text");
  const big = 2n ** 62n + 7n; // beyond 2^53: a Number would round it
  await kv.set("n", big);
  assert.equal(await kv.get("n"), big);
  assert.equal(await kv.increment("n", 2n), big + 2n);
  assert.equal(await kv.decrement("n", 1n), big + 1n);
  await kv.set("f", 1.5);
  assert.equal(await kv.get("f"), 1.5);
  const prev = await kv.set("s", "new", { returnPrevious: true });
  assert.equal(prev.status, "updated");
  assert.equal(new TextDecoder().decode(prev.previous), "text");
  assert.equal((await kv.set("s", "x", { check: "vacant" })).status,
               "unchanged");
  const keys = (await kv.list()).map((e) => e.key);
  assert.deepEqual(keys, ["f", "n", "s"]);
  assert.deepEqual((await kv.list({ after: "f", limit: 1 }))
    .map((e) => e.key), ["n"]);
  assert.equal(await kv.delete("s"), true);
  assert.equal(await kv.get("s"), null);
  assert.equal(await kv.get("f", { andDelete: true }), 1.5);
  assert.equal(await kv.get("f"), null);
});

test("u64 document ids beyond 2^53 come back exact", async () => {
  const c = await login();
  const db = c.db("default");
  const id = 2n ** 60n + 3n; // 2^60+3 has no exact double
  assert.notEqual(BigInt(Number(id)), id);
  const h = await db.insert("messages", "big id", id);
  assert.equal(idToBigInt(h.id), id);
  const d = await db.get("messages", u64(id));
  assert.equal(idToBigInt(d.id), id);
  assert.equal(d.text(), "big id");
  const next = await db.insert("messages", "after it");
  assert.equal(idToBigInt(next.id), id + 1n);
});

test("PubSub: an async iterator and a callback", async () => {
  const sub = await login();
  const pub = await login();
  const it = await sub.db("default").subscribe(["news"]);
  const got = [];
  const cbSub = await sub.db("default").subscribe("sport",
                                                  (m) => got.push(m.text()));
  await pub.db("default").publish(["sport", "news"], "hello");
  await pub.db("default").publish("news", "second");
  const m1 = await within(it.next(), 10000, "first message");
  assert.equal(new TextDecoder().decode(m1.value.topic), "news");
  assert.equal(m1.value.text(), "hello");
  const m2 = await within(it.next(), 10000, "second message");
  assert.equal(m2.value.text(), "second");
  await within((async () => { while (!got.length)
    await new Promise((r) => setTimeout(r, 10)); })(), 10000, "callback");
  assert.deepEqual(got, ["hello"]);
  await it.unsubscribe("news");
  await pub.db("default").publish("news", "not delivered");
  await sub.db("default").count("messages"); // a round trip after it
  await cbSub.close();
  await it.close();
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test("generic calls and pushes: call(api, payload), onPush", async () => {
  const c = await login();
  const a = await c.call("db.count", { db: "default", collection: "people" });
  assert.equal(typeof Number(a.count), "number");
  await assert.rejects(c.call("no.such.api", {}),
                       (e) => e.code === codes.PROTO);
  // a custom API's frame ({data}); this server program registers none
  await assert.rejects(c.callApi("counter.increment", "x"),
    (e) => e.code === codes.PROTO && /counter\.increment/.test(e.message));
  const seen = [];
  const off = c.onPush("pubsub.message", (p) => seen.push(p));
  const s = await c.db("default").subscribe("raw");
  await c.db("default").publish("raw", "x");
  await within(s.next(), 10000, "message");
  assert.equal(seen.length, 1);
  assert.equal(seen[0].subscriber, BigInt(seen[0].subscriber) ===
    BigInt(s.id) ? seen[0].subscriber : -1);
  off();
  await s.close();
});

test("reconnect: logs in again and resubscribes", async () => {
  const c = await login({ reconnectDelayMs: 50 });
  const pub = await login();
  const s = await c.db("default").subscribe("again");
  const oldId = s.id;
  const reconnected = new Promise((r) => c.on("reconnect", r));
  c.dropConnection();
  await within(reconnected, 15000, "reconnect");
  assert.equal(c.identity, "admin");
  assert.notEqual(s.id, null);
  assert.ok(s.id !== oldId || true);
  assert.equal(await c.db("default").count("people") >= 0, true);
  await pub.db("default").publish("again", "after reconnect");
  const m = await within(s.next(), 10000, "message after reconnect");
  assert.equal(m.value.text(), "after reconnect");
  await s.close();
});
