// sprig-client: the JavaScript client of the Sprig document database.
//
// It speaks protocol sprig/1 (docs/protocol.md) over one WebSocket with
// subprotocol "sprig.v1": MessagePack frames [0, id, nil, api, payload]
// out, [1, id, payload] / [2, id, code, message, detail] / [3, api,
// payload] in.  The same file runs in browsers (the native WebSocket) and
// in Node (the `ws` package, loaded only when globalThis.WebSocket is
// missing).  64-bit integers are decoded as BigInt where they may exceed
// 2^53 (transaction ids, key-value integers); see README.md for the API.

import { Encoder, Decoder } from "@msgpack/msgpack";
import { blake2b } from "@noble/hashes/blake2b";

export const SUBPROTOCOL = "sprig.v1";

/** Error codes of the protocol (negative numbers, docs/protocol.md). */
export const codes = Object.freeze({
  NOTFOUND: -1, CONFLICT: -2, EXIST: -3, INVAL: -4, SCHEMA: -5, UNIQUE: -6,
  TOOBIG: -7, NOMEM: -8, IO: -9, FULL: -10, CORRUPT: -11, PERM: -12,
  AUTH: -13, PROTO: -14, CLOSED: -15, TIMEDOUT: -16, CONNECT: -17,
  BUSY: -18, NOTLEADER: -19, RANGE: -20,
});
const codeNames = Object.fromEntries(
  Object.entries(codes).map(([k, v]) => [v, k]));

/** An error answered by the server (or a local failure with a code). */
export class SprigError extends Error {
  constructor(code, message, detail = null, api = null) {
    super(message);
    this.name = "SprigError";
    this.code = code;
    this.codeName = codeNames[code] || "UNKNOWN";
    this.detail = detail;
    this.api = api;
    const info = detail && detail.error_info;
    this.errorInfo = Array.isArray(info) ? decodeErrorInfo(info) : null;
    this.result = detail && detail.result ? decodeTxnResult(detail.result)
                                          : null;
  }
}

function decodeErrorInfo(a) {
  return { kind: Number(a[0]), database: a[1], schema: a[2],
           collection: a[3], view: a[4], ns: a[5], key: a[6], id: a[7],
           header: a[8] ? decodeHeader(a[8]) : null };
}

const encoder = new Encoder({ useBigInt64: true });

// With useBigInt64, @msgpack/msgpack writes a Number integer past 32 bits
// as a float64, which the server refuses where it wants an integer: send
// such Numbers as BigInt (exact up to 2^53, as the Number was).
function ints64(v) {
  if (typeof v === "number")
    return Number.isInteger(v) && (v > 0xffffffff || v < -0x80000000)
      ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(ints64);
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const o = {};
    for (const k of Object.keys(v)) o[k] = ints64(v[k]);
    return o;
  }
  return v;
}
const decoder = new Decoder({ useBigInt64: true });
const te = new TextEncoder();
const td = new TextDecoder();

// ---- value helpers --------------------------------------------------------

/** The 8-byte big-endian id of a u64 collection. */
export function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** The integer an 8-byte u64 id holds, as a BigInt. */
export function idToBigInt(id) {
  if (!(id instanceof Uint8Array) || id.length !== 8)
    throw new SprigError(codes.INVAL, "a u64 id is 8 bytes");
  return new DataView(id.buffer, id.byteOffset, 8).getBigUint64(0);
}

/** Bytes from Uint8Array | ArrayBuffer | string (UTF-8) | other (JSON). */
export function toBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v))
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === "string") return te.encode(v);
  return te.encode(JSON.stringify(v, (_k, x) =>
    typeof x === "bigint" ? x.toString() : x));
}

// an id: bytes, a string (UTF-8), or a number/bigint (u64 id)
function idBytes(id) {
  if (typeof id === "number" || typeof id === "bigint") return u64(id);
  return toBytes(id);
}

const big = (x) => (x === null || x === undefined ? x : BigInt(x));
const num = (x) => (x === null || x === undefined ? x : Number(x));

/** A document as read from the server. */
export class Doc {
  constructor(a) {
    this.id = a[0];
    this.revision = Number(a[1]);
    this.hash = a[2];
    this.contents = a[3];
  }
  get header() { return { id: this.id, revision: this.revision,
                          hash: this.hash }; }
  /** The contents as UTF-8 text. */
  text() { return td.decode(this.contents); }
  /** The contents parsed as JSON. */
  json() { return JSON.parse(this.text()); }
}

function decodeHeader(h) {
  return { id: h[0], revision: Number(h[1]), hash: h[2] };
}

function encodeHeaderRev(h) {
  if (h === null || typeof h !== "object")
    throw new SprigError(codes.INVAL, "a header {id, revision} is needed");
  return [idBytes(h.id), BigInt(h.revision), h.hash || null];
}

function decodeTxnResult(r) {
  return { id: big(r[0]), failed: Number(r[1]), error: Number(r[2]),
           conflict: r[3] ? decodeHeader(r[3]) : null,
           headers: (r[4] || []).map(decodeHeader) };
}

/** Operation kinds of a transaction. */
export const op = Object.freeze({
  INSERT: 0, UPDATE: 1, OVERWRITE: 2, DELETE: 3, CHECK: 4 });

/** A transaction under construction: chain the calls, then db.apply(t). */
export class Transaction {
  constructor() { this.ops = []; }
  insert(collection, contents, id = null) {
    this.ops.push([op.INSERT, collection, id === null ? null : idBytes(id),
                   toBytes(contents), null, null]);
    return this;
  }
  update(collection, header, contents) {
    const [id, rev, hash] = encodeHeaderRev(header);
    this.ops.push([op.UPDATE, collection, id, toBytes(contents), rev, hash]);
    return this;
  }
  overwrite(collection, id, contents) {
    this.ops.push([op.OVERWRITE, collection, idBytes(id), toBytes(contents),
                   null, null]);
    return this;
  }
  delete(collection, header) {
    const [id, rev, hash] = encodeHeaderRev(header);
    this.ops.push([op.DELETE, collection, id, null, rev, hash]);
    return this;
  }
  check(collection, id, header = null) {
    const h = header ? encodeHeaderRev(header) : [idBytes(id), null, null];
    this.ops.push([op.CHECK, collection, idBytes(id), null, h[1], h[2]]);
    return this;
  }
}

// ---- ranges, queries, key-value values --------------------------------------

function bound(b, kind) {
  if (b === undefined || b === null) return [0, null];
  return [kind, idBytes(b)];
}

/** {start, end, startExcluded, endExcluded} -> protocol range (or nil). */
function encodeRange(r) {
  if (!r) return null;
  return [bound(r.start, r.startExcluded ? 2 : 1),
          bound(r.end, r.endExcluded ? 2 : 1)];
}

const orders = { asc: 0, desc: 1 };
const accesses = { before: 0, after: 1, none: 2 };

function encodeQuery(collection, view, q = {}) {
  let match = 0, key = null, keys = null, range = null;
  if (q.key !== undefined) { match = 1; key = toBytes(q.key); }
  else if (q.keys !== undefined) { match = 2; keys = q.keys.map(toBytes); }
  else if (q.range !== undefined) { match = 3; range = encodeRange(q.range); }
  else if (q.prefix !== undefined) { match = 4; key = toBytes(q.prefix); }
  const after = q.after ? [toBytes(q.after.key), idBytes(q.after.id)] : null;
  return [collection, view, match, key, keys, range,
          orders[q.order || "asc"] ?? q.order, q.limit || 0,
          accesses[q.access || "before"] ?? q.access, after];
}

function decodeMapping(m) {
  return { key: m[0], value: m[1], source: m[2] ? decodeHeader(m[2]) : null,
           doc: m[3] ? new Doc(m[3]) : null };
}

/** A key-value value for the wire: [kind, v]. */
export function encodeValue(v) {
  if (v === null || v === undefined) return [4, null];
  if (typeof v === "bigint")
    return v < 0n ? [1, v] : (v > 0x7fffffffffffffffn ? [2, v] : [1, v]);
  if (typeof v === "number")
    return Number.isInteger(v) ? [1, BigInt(v)] : [3, v];
  if (typeof v === "object" && !(v instanceof Uint8Array) &&
      !ArrayBuffer.isView(v) && "kind" in v) {
    const kinds = { bytes: 0, int: 1, uint: 2, float: 3, none: 4 };
    const k = kinds[v.kind] ?? v.kind;
    return [k, k === 1 || k === 2 ? BigInt(v.value)
                                  : k === 0 ? toBytes(v.value) : v.value];
  }
  return [0, toBytes(v)];
}

/** [kind, v] -> Uint8Array | bigint | number | null. */
export function decodeValue(a) {
  if (!Array.isArray(a)) return null;
  switch (Number(a[0])) {
  case 0: return a[1];
  case 1: case 2: return BigInt(a[1]);
  case 3: return Number(a[1]);
  default: return null;
  }
}

// ---- the connection ---------------------------------------------------------

async function webSocketClass(opt) {
  if (opt.WebSocket) return opt.WebSocket;
  if (globalThis.WebSocket) return globalThis.WebSocket;
  const mod = await import("ws");
  return mod.WebSocket || mod.default;
}

function tokenMac(key, id, nonce, serverMs, clientMs) {
  const t = new Uint8Array(16);
  const dv = new DataView(t.buffer);
  dv.setBigUint64(0, BigInt(serverMs));
  dv.setBigUint64(8, BigInt(clientMs));
  const h = blake2b.create({ dkLen: 32, key });
  h.update(te.encode("sprig-token/1"));
  h.update(te.encode(id));
  h.update(nonce);
  h.update(t);
  return h.digest();
}

function hexBytes(s) {
  if (!/^([0-9a-fA-F]{2})+$/.test(s))
    throw new SprigError(codes.INVAL, "a token secret is hex");
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(2 * i, 2), 16);
  return b;
}

/** A queue that an async iterator drains; close() ends the iteration. */
class PushQueue {
  constructor(onClose) {
    this.items = [];
    this.waiters = [];
    this.done = false;
    this.error = null;
    this.onClose = onClose;
  }
  put(x) {
    if (this.done) return;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: x, done: false });
    else this.items.push(x);
  }
  fail(err) {
    this.error = err;
    this.end();
  }
  end() {
    this.done = true;
    for (const w of this.waiters.splice(0))
      this.error ? w.reject(this.error) : w.resolve({ value: undefined,
                                                       done: true });
  }
  next() {
    if (this.items.length)
      return Promise.resolve({ value: this.items.shift(), done: false });
    if (this.done)
      return this.error ? Promise.reject(this.error)
                        : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) =>
      this.waiters.push({ resolve, reject }));
  }
  async return() {
    await this.onClose();
    return { value: undefined, done: true };
  }
  [Symbol.asyncIterator]() { return this; }
}

/**
 * A connection to a Sprig server.  Create it with connect(url, options).
 * Every operation returns a promise; failures reject with SprigError.
 */
export class Client {
  constructor(url, options = {}) {
    this.url = url;
    this.options = { reconnect: true, timeoutMs: 30000,
                     reconnectDelayMs: 100, reconnectMaxDelayMs: 5000,
                     ...options };
    this.nextId = 1;
    this.pending = new Map();
    this.pushHandlers = new Map();
    this.subscribers = new Set();
    this.feeds = new Set();
    this.listeners = { reconnect: [], disconnect: [], error: [] };
    this.ws = null;
    this.closed = false;
    this.identity = null;
    this.session = null;
    this.connecting = null;
  }

  /** Listen for "reconnect" (after re-auth and resubscription),
   *  "disconnect" (err) and "error" (err) events. */
  on(event, cb) {
    (this.listeners[event] ||= []).push(cb);
    return this;
  }

  emit(event, arg) {
    for (const cb of this.listeners[event] || []) {
      try { cb(arg); } catch (_) { /* a listener's bug is not ours */ }
    }
  }

  /** Open the WebSocket and log in (options.user/password or token). */
  async open() {
    await this.openSocket();
    await this.authenticate();
    return this;
  }

  async openSocket() {
    const WS = await webSocketClass(this.options);
    const ws = new WS(this.url, SUBPROTOCOL);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new SprigError(codes.TIMEDOUT, `connecting to ${this.url} ` +
                              "timed out"));
        try { ws.close(); } catch (_) { /* already closing */ }
      }, this.options.timeoutMs);
      ws.onopen = () => { clearTimeout(timer); resolve(); };
      ws.onerror = (e) => {
        clearTimeout(timer);
        reject(new SprigError(codes.CONNECT, `cannot connect to ${this.url}` +
                              (e && e.message ? `: ${e.message}` : "")));
      };
    });
    if (ws.protocol !== SUBPROTOCOL) {
      ws.close();
      throw new SprigError(codes.PROTO,
                           `the server chose subprotocol '${ws.protocol}'`);
    }
    this.ws = ws;
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onerror = () => {};
    ws.onclose = (ev) => this.onClose(ws, ev);
  }

  async authenticate() {
    const o = this.options;
    let a = null;
    if (o.token) a = await this.loginToken(o.token);
    else if (o.user !== undefined)
      a = await this.loginPassword(o.user, o.password);
    return a;
  }

  /** Log in with a password; the session becomes the default. */
  async loginPassword(user, password) {
    const a = await this.call("auth.password", { user, password });
    this.options.user = user;
    this.options.password = password;
    delete this.options.token;
    this.identity = a.identity;
    this.session = Number(a.session);
    return { identity: a.identity, session: this.session };
  }

  /** Log in with a token "id:hexsecret" by challenge-response (the secret
   *  never crosses the wire). */
  async loginToken(token) {
    const colon = token.indexOf(":");
    if (colon <= 0) throw new SprigError(codes.INVAL, "a token is id:secret");
    const id = token.slice(0, colon);
    const key = blake2b(hexBytes(token.slice(colon + 1).trim()),
                        { dkLen: 32 });
    const ch = await this.call("auth.challenge", {});
    const clientMs = BigInt(Date.now()); // a Number past 2^32 goes as float
    const mac = tokenMac(key, id, ch.nonce, ch.server_ms, clientMs);
    const a = await this.call("auth.token", {
      token: id, nonce: ch.nonce, server_ms: ch.server_ms,
      client_ms: clientMs, mac });
    this.options.token = token;
    this.identity = a.identity;
    this.session = Number(a.session);
    return { identity: a.identity, session: this.session };
  }

  /** End the default session (requests then run unauthenticated). */
  async logout() {
    await this.call("auth.logout", { session: 0 });
    delete this.options.user;
    delete this.options.password;
    delete this.options.token;
    this.identity = null;
    this.session = null;
  }

  onMessage(data) {
    let f;
    try {
      f = decoder.decode(data instanceof ArrayBuffer ? new Uint8Array(data)
                                                      : data);
    } catch (e) {
      this.emit("error", e);
      return;
    }
    if (!Array.isArray(f)) return;
    const kind = Number(f[0]);
    if (kind === 3) return this.dispatchPush(f[1], f[2]);
    const p = this.pending.get(Number(f[1]));
    if (!p) {
      if (kind === 2) this.emit("error", new SprigError(Number(f[2]), f[3]));
      return;
    }
    this.pending.delete(Number(f[1]));
    clearTimeout(p.timer);
    if (kind === 1) p.resolve(f[2] || {});
    else p.reject(new SprigError(Number(f[2]), f[3], f[4], p.api));
  }

  /** Call `cb(payload, api)` for each push of `api` (e.g. a custom API's
   *  push); returns a function that removes the handler. */
  onPush(api, cb) {
    if (!this.pushHandlers.has(api)) this.pushHandlers.set(api, new Set());
    this.pushHandlers.get(api).add(cb);
    return () => this.pushHandlers.get(api).delete(cb);
  }

  dispatchPush(api, payload) {
    for (const cb of this.pushHandlers.get(api) || []) {
      try { cb(payload, api); } catch (e) { this.emit("error", e); }
    }
  }

  /**
   * Send request `api` with `payload` (a map); resolves with the answer's
   * payload map, rejects with SprigError.  The generic entry point (custom
   * APIs included).  `session` names a session other than the default.
   */
  call(api, payload = {}, { session = null, timeoutMs } = {}) {
    if (!this.ws || this.ws.readyState !== 1)
      return Promise.reject(new SprigError(
        this.closed ? codes.CLOSED : codes.CONNECT,
        `not connected to ${this.url}`, null, api));
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    const bytes = encoder.encode([0, id, session, api, ints64(payload)]);
    return new Promise((resolve, reject) => {
      const ms = timeoutMs ?? this.options.timeoutMs;
      const timer = ms > 0 ? setTimeout(() => {
        this.pending.delete(id);
        reject(new SprigError(codes.TIMEDOUT, `${api}: no answer in ${ms} ms`,
                              null, api));
      }, ms) : null;
      this.pending.set(id, { resolve, reject, timer, api });
      this.ws.send(bytes);
    });
  }

  onClose(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    const err = new SprigError(this.closed ? codes.CLOSED : codes.CONNECT,
                               `connection closed (${ev && ev.code}` +
                               `${ev && ev.reason ? ": " + ev.reason : ""})`);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    if (this.closed) return;
    this.emit("disconnect", err);
    if (this.options.reconnect) this.reconnect();
    else this.endStreams(err);
  }

  endStreams(err) {
    for (const s of this.subscribers) s.queue.fail(err);
    for (const f of this.feeds) f.queue.fail(err);
  }

  async reconnect() {
    let delay = this.options.reconnectDelayMs;
    while (!this.closed) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.closed) return;
      try {
        await this.openSocket();
        await this.authenticate();
        for (const s of this.subscribers) await s.restore();
        for (const f of this.feeds) await f.restore();
        this.emit("reconnect");
        return;
      } catch (e) {
        if (this.ws) { try { this.ws.close(); } catch (_) { /* closing */ } }
        this.ws = null;
        this.emit("error", e);
        delay = Math.min(delay * 2, this.options.reconnectMaxDelayMs);
      }
    }
  }

  /**
   * Call a custom API of the server program (docs/protocol.md, "Custom
   * APIs and their pushes"): the request's payload is one byte string
   * {data}; resolves the answer's `data` bytes.  An application error
   * rejects with SprigError whose code is in -30000..-39999.
   */
  async callApi(api, data = new Uint8Array(0), opts = {}) {
    const a = await this.call(api, { data: toBytes(data) }, opts);
    return a.data ?? new Uint8Array(0);
  }

  /** Handle the pushes of custom API `api`: cb(dataBytes).  Returns the
   *  function that removes the handler. */
  onApiPush(api, cb) {
    return this.onPush(api, (p) => cb(p && p.data !== undefined ? p.data
                                                                : new Uint8Array(0)));
  }

  /** Resolves once the connection is open again (at once if it is). */
  async ready(timeoutMs = this.options.timeoutMs) {
    const end = Date.now() + timeoutMs;
    while (!this.ws || this.ws.readyState !== 1) {
      if (this.closed || Date.now() > end)
        throw new SprigError(codes.CONNECT, "not connected");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Close the connection; pending requests reject with CLOSED. */
  close() {
    this.closed = true;
    this.endStreams(null);
    for (const s of this.subscribers) s.queue.end();
    for (const f of this.feeds) f.queue.end();
    if (this.ws) this.ws.close(1000);
  }

  /** Drop the socket as if the network failed (tests, reconnect). */
  dropConnection() {
    if (this.ws) {
      if (typeof this.ws.terminate === "function") this.ws.terminate();
      else this.ws.close();
    }
  }

  // ---- storage admin ----

  async listDatabases() {
    const a = await this.call("storage.list_databases", {});
    return a.list.map(([name, schema]) => ({ name, schema }));
  }
  async createDatabase(name, schema, { onlyIfNeeded = false } = {}) {
    await this.call("storage.create_database",
                    { name, schema, only_if_needed: onlyIfNeeded });
  }
  async deleteDatabase(name) {
    await this.call("storage.delete_database", { name });
  }
  /** Check that database `name` exists (and open it on the server). */
  async openDatabase(name) {
    await this.call("storage.database", { name });
    return this.db(name);
  }
  async listSchemas() {
    const a = await this.call("storage.list_schemas", {});
    return a.list.map(decodeSchema);
  }
  async registerSchema(schema) {
    await this.call("storage.register_schema",
                    { schema: encodeSchema(schema) });
  }
  /** Run maintenance: kind "backup" | "restore" | "export" | "import" |
   *  "compact" (or 1..5) with its argument. */
  async maintain(kind, arg) {
    const kinds = { backup: 1, restore: 2, export: 3, import: 4, compact: 5 };
    const a = await this.call("storage.maintain",
                              { kind: kinds[kind] ?? kind, arg });
    return { items: num(a.items), itemsTotal: num(a.items_total),
             bytes: num(a.bytes), bytesTotal: num(a.bytes_total) };
  }

  /** The server's open connections, oldest first (the `server.clients`
   *  row; needs that action on `sprig`): {id (BigInt), peer, transport,
   *  connectedMs, identity, sessions, requests, yours}, `yours` marking
   *  this client's own connection. */
  async connectedClients() {
    const a = await this.call("server.clients", {});
    return a.clients.map(([id, peer, transport, connectedMs, identity,
                           sessions, requests, yours]) => ({
      id: BigInt(id), peer, transport, connectedMs: num(connectedMs),
      identity, sessions: num(sessions), requests: num(requests),
      yours: !!yours }));
  }

  /** A handle on database `name` (no round trip). */
  db(name) { return new Database(this, name); }
}

const idKinds = { u64: 0, natural: 1 };
const policies = { lazy: 0, eager: 1, unique: 2 };
const reduces = { none: 0, count: 1, sum: 2, min: 3, max: 4 };
const rev = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) =>
  [v, k]));
const idKindNames = rev(idKinds), policyNames = rev(policies),
  reduceNames = rev(reduces);

function decodeSchema(s) {
  return {
    name: s[0],
    collections: s[1].map((c) => ({
      name: c[0], idKind: idKindNames[Number(c[1])], flags: Number(c[2]),
      views: (c[3] || []).map((v) => ({
        name: v[0], version: Number(v[1]), policy: policyNames[Number(v[2])],
        jsonKey: v[3], jsonValue: v[4], reduce: reduceNames[Number(v[5])],
        reduceFn: v[6] })),
    })),
  };
}

function encodeSchema(s) {
  return [s.name, s.collections.map((c) => [
    c.name, idKinds[c.idKind ?? "u64"] ?? c.idKind, c.flags || 0,
    (c.views || []).map((v) => [
      v.name, v.version ?? 1, policies[v.policy ?? "lazy"] ?? v.policy,
      v.jsonKey ?? null, v.jsonValue ?? null,
      reduces[v.reduce ?? "none"] ?? v.reduce, v.reduceFn ?? false]),
  ])];
}

/** A database on the server: documents, views, key-value, PubSub, changes. */
export class Database {
  constructor(client, name) {
    this.client = client;
    this.name = name;
  }

  call(api, payload) { return this.client.call(api, { db: this.name,
                                                      ...payload }); }

  // ---- documents ----

  /** Document `id` of `collection`; rejects NOTFOUND when missing. */
  async get(collection, id) {
    const a = await this.call("db.get", { collection, id: idBytes(id) });
    return new Doc(a.doc);
  }
  /** Documents for `ids` (missing ones are left out). */
  async getMultiple(collection, ids) {
    const a = await this.call("db.get_multiple",
                              { collection, ids: ids.map(idBytes) });
    return a.docs.map((d) => new Doc(d));
  }
  async list(collection, { range = null, order = "asc", limit = 0,
                           headersOnly = false } = {}) {
    const a = await this.call("db.list", {
      collection, range: encodeRange(range), order: orders[order] ?? order,
      limit, headers_only: headersOnly });
    return a.docs.map((d) => new Doc(d));
  }
  async count(collection, { range = null } = {}) {
    const a = await this.call("db.count",
                              { collection, range: encodeRange(range) });
    return Number(a.count);
  }

  /** Apply a Transaction (or an array of raw operations) all or nothing:
   *  resolves {id, headers}; a failure rejects with SprigError whose
   *  `result` names the failed operation (and `conflict` header). */
  async apply(t) {
    const txn = t instanceof Transaction ? t.ops : t;
    const a = await this.call("db.apply", { txn });
    return decodeTxnResult(a.result);
  }
  /** Insert; `id` null/omitted pushes a u64 id.  Resolves the header. */
  async insert(collection, contents, id = null) {
    return (await this.apply(new Transaction().insert(collection, contents,
                                                      id))).headers[0];
  }
  /** Update if the stored revision is header.revision (else CONFLICT). */
  async update(collection, header, contents) {
    return (await this.apply(new Transaction().update(collection, header,
                                                      contents))).headers[0];
  }
  async overwrite(collection, id, contents) {
    return (await this.apply(new Transaction().overwrite(
      collection, id, contents))).headers[0];
  }
  async delete(collection, header) {
    return (await this.apply(new Transaction().delete(collection,
                                                      header))).headers[0];
  }

  /** Executed transactions with ids >= since, oldest first. */
  async listExecutedTransactions(since = 0n, limit = 0) {
    const a = await this.call("db.list_executed_transactions",
                              { since: BigInt(since), limit });
    return a.log.map((e) => ({
      id: BigInt(e[0]), timestampMs: Number(e[1]),
      changes: e[2].map((c) => ({ collection: c[0], id: c[1],
                                  revision: Number(c[2]), deleted: c[3] })),
    }));
  }
  async lastTransactionId() {
    return BigInt((await this.call("db.last_transaction_id", {})).id);
  }

  // ---- views ----

  /** Mappings of `view`: q = {key | keys | range | prefix, order, limit,
   *  access, after: {key, id}, withDocs}. */
  async query(collection, view, q = {}) {
    const a = await this.call("view.query", {
      query: encodeQuery(collection, view, q), with_docs: !!q.withDocs });
    return a.mappings.map(decodeMapping);
  }
  /** The reduced value (bytes; JSON text for built-in reduces). */
  async reduce(collection, view, q = {}) {
    const a = await this.call("view.reduce", {
      query: encodeQuery(collection, view, q), with_docs: false });
    return a.value;
  }
  /** As reduce(), parsed as JSON (built-in reduces). */
  async reduceJson(collection, view, q = {}) {
    return JSON.parse(td.decode(await this.reduce(collection, view, q)));
  }
  async reduceGrouped(collection, view, q = {}) {
    const a = await this.call("view.reduce_grouped", {
      query: encodeQuery(collection, view, q), with_docs: false });
    return a.mappings.map(decodeMapping);
  }
  async deleteDocs(collection, view, q = {}) {
    const a = await this.call("view.delete_docs", {
      query: encodeQuery(collection, view, q), with_docs: false });
    return Number(a.deleted);
  }

  // ---- key-value ----

  /** The key-value namespace `ns` ("" = none). */
  kv(ns = "") { return new KeyValue(this, ns); }

  // ---- PubSub ----

  async publish(topics, payload) {
    const list = Array.isArray(topics) ? topics : [topics];
    await this.call("pubsub.publish",
                    { topics: list.map(toBytes), payload: toBytes(payload) });
  }

  /** A subscriber to `topics`: an async iterator of {topic, payload}, or
   *  pass `cb(message)`.  It is re-made after a reconnect. */
  async subscribe(topics = [], cb = null) {
    const s = new Subscriber(this, cb);
    await s.create();
    for (const t of Array.isArray(topics) ? topics : [topics])
      await s.subscribe(t);
    return s;
  }

  // ---- changes feed ----

  /** Follow committed changes after transaction id `since` (0n: from the
   *  start), of one `collection` or all; `contents` adds each document's
   *  contents.  An async iterator of changes, or pass `cb(change)`.
   *  Resumes after a reconnect from the last id delivered. */
  async changes({ since = 0n, collection = "", contents = false } = {},
                cb = null) {
    const f = new ChangesFeed(this, BigInt(since), collection, contents, cb);
    await f.create();
    return f;
  }
}

/** Key-value operations of one namespace. */
export class KeyValue {
  constructor(db, ns) {
    this.db = db;
    this.ns = ns;
  }
  /** Set `key` to `value` (bytes/string -> bytes, bigint/integer -> int,
   *  non-integer number -> float, {kind, value} explicit).  Options:
   *  expireAtMs, expireInMs, keepExpiration, check ("any" | "vacant" |
   *  "present"), returnPrevious.  Resolves {status, previous}. */
  async set(key, value, o = {}) {
    const checks = { any: 0, vacant: 1, present: 2 };
    const a = await this.db.call("kv.set", {
      ns: this.ns, key, value: encodeValue(value),
      expire_at_ms: BigInt(o.expireAtMs || 0),
      expire_in_ms: BigInt(o.expireInMs || 0),
      keep_expiration: !!o.keepExpiration,
      check: checks[o.check || "any"] ?? o.check,
      return_previous: !!o.returnPrevious });
    const statuses = { 1: "inserted", 2: "updated", 3: "deleted",
                       4: "unchanged" };
    return { status: statuses[Number(a.status)],
             previous: a.previous ? decodeValue(a.previous) : null };
  }
  /** The value of `key` (null when the key holds none). */
  async get(key, { andDelete = false } = {}) {
    try {
      const a = await this.db.call("kv.get", { ns: this.ns, key,
                                               and_delete: andDelete });
      return decodeValue(a.value);
    } catch (e) {
      if (e instanceof SprigError && e.code === codes.NOTFOUND) return null;
      throw e;
    }
  }
  /** Add `amount` (default 1n); resolves the new value (bigint). */
  async increment(key, amount = 1n, { decrement = false,
                                      saturating = false } = {}) {
    const a = await this.db.call("kv.increment", {
      ns: this.ns, key, amount: encodeValue(typeof amount === "number" &&
        Number.isInteger(amount) ? BigInt(amount) : amount),
      decrement, saturating });
    return decodeValue(a.value);
  }
  async decrement(key, amount = 1n, o = {}) {
    return this.increment(key, amount, { ...o, decrement: true });
  }
  /** Delete `key`; resolves true when it held a value. */
  async delete(key) {
    const a = await this.db.call("kv.delete", { ns: this.ns, key });
    return Number(a.status) === 3;
  }
  /** Keys in order: [{key, value, expireAtMs}] from `prefix`, after
   *  `after`, at most `limit` (0 = server's default). */
  async list({ prefix = "", after = null, limit = 0 } = {}) {
    const p = { ns: this.ns, prefix, limit };
    if (after !== null) p.after = after;
    const a = await this.db.call("kv.list", p);
    return a.list.map((e) => ({ key: e[0], value: decodeValue(e[1]),
                                expireAtMs: Number(e[2]) }));
  }
}

/** A PubSub subscriber (server-side state, re-made on reconnect). */
/**
 * What a subscriber and a changes feed share: server-side state named by
 * `this.id` on `this.client`, pushes routed by `this.off`'s handler into
 * `this.queue` (an async iterator), and a release that stops both sides.
 */
class PushStream {
  /** Leave `set`, stop the pushes and the iterator, then free the server's
   *  state with `api` ({[key]: id}) if the connection still stands. */
  async release(set, api, key) {
    set.delete(this);
    this.off();
    this.queue.end();
    const id = this.id;
    this.id = null;
    if (id !== null && this.client.ws) {
      try {
        await this.client.call(api, { [key]: id });
      } catch (_) { /* the connection is gone: so is the server's state */ }
    }
  }
  next() { return this.queue.next(); }
  return() { return this.queue.return(); }
  [Symbol.asyncIterator]() { return this; }
}

export class Subscriber extends PushStream {
  constructor(db, cb) {
    super();
    this.db = db;
    this.client = db.client;
    this.cb = cb;
    this.topics = new Set();
    this.id = null;
    this.queue = new PushQueue(() => this.close());
    this.off = this.client.onPush("pubsub.message", (p) => {
      if (this.id === null || Number(p.subscriber) !== this.id) return;
      const m = { topic: p.topic, payload: p.payload,
                  text() { return td.decode(this.payload); } };
      if (this.cb) this.cb(m);
      else this.queue.put(m);
    });
  }
  async create() {
    const a = await this.db.call("pubsub.subscriber_new", {});
    this.id = Number(a.subscriber);
    this.client.subscribers.add(this);
  }
  async restore() {
    this.id = null;
    await this.create();
    for (const t of this.topics)
      await this.client.call("pubsub.subscribe",
                             { subscriber: this.id, topic: t });
  }
  async subscribe(topic) {
    const t = toBytes(topic);
    await this.client.call("pubsub.subscribe", { subscriber: this.id,
                                                 topic: t });
    this.topics.add(t);
  }
  async unsubscribe(topic) {
    const t = toBytes(topic);
    await this.client.call("pubsub.unsubscribe", { subscriber: this.id,
                                                   topic: t });
    for (const x of this.topics)
      if (td.decode(x) === td.decode(t)) this.topics.delete(x);
  }
  close() {
    return this.release(this.client.subscribers, "pubsub.subscriber_free",
                        "subscriber");
  }
}

/** A changes feed (server-side state, resumed on reconnect). */
export class ChangesFeed extends PushStream {
  constructor(db, since, collection, contents, cb) {
    super();
    this.db = db;
    this.client = db.client;
    this.last = since;
    this.collection = collection;
    this.contents = contents;
    this.cb = cb;
    this.id = null;
    this.queue = new PushQueue(() => this.close());
    this.off = this.client.onPush("db.changes", (p) => this.onPush(p));
  }
  onPush(p) {
    if (this.id === null) {
      // the first pushes may come in the same read as the answer that
      // names the feed, before create() has seen it: keep them
      if (this.creating) this.early.push(p);
      return;
    }
    if (Number(p.feed) !== this.id) return;
    for (const e of p.entries) {
      const txn = BigInt(e[0]);
      if (txn <= this.last) continue; // never a duplicate, even on resume
      this.last = txn;
      for (const c of e[2]) {
        const ch = { txn, timestampMs: Number(e[1]), collection: c[0],
                     id: c[1], revision: Number(c[2]), deleted: c[3],
                     contents: c[4] ?? null };
        if (this.cb) this.cb(ch);
        else this.queue.put(ch);
      }
    }
  }
  async create() {
    this.creating = true;
    this.early = [];
    try {
      const a = await this.db.call("db.changes_subscribe", {
        collection: this.collection, since: this.last,
        contents: this.contents });
      this.id = Number(a.feed);
    } finally {
      this.creating = false;
    }
    this.client.feeds.add(this);
    for (const p of this.early.splice(0)) this.onPush(p);
  }
  async restore() {
    this.id = null;
    await this.create();
  }
  /** The id of the last transaction delivered (resume from it). */
  get lastId() { return this.last; }
  close() {
    return this.release(this.client.feeds, "db.changes_unsubscribe", "feed");
  }
}

/**
 * Connect to `url` (ws:// or wss://) and log in: options {user, password}
 * or {token: "id:hexsecret"}; reconnect (default true), timeoutMs,
 * WebSocket (a constructor to use instead of the global/`ws` one).
 */
export async function connect(url, options = {}) {
  const c = new Client(url, options);
  try {
    await c.open();
  } catch (e) {
    c.close();
    throw e;
  }
  return c;
}

export default { connect, Client, Database, KeyValue, Transaction,
                 SprigError, codes, op, u64, idToBigInt, toBytes,
                 encodeValue, decodeValue, SUBPROTOCOL };
