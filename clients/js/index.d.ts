// index.d.ts -- TypeScript types of sprig-client (written by hand; the
// package has no build step).  See README.md for what each call does.

/** Bytes as accepted by the client: bytes as is, a string as UTF-8, any
 *  other value as its JSON text. */
export type BytesLike = Uint8Array | ArrayBuffer | ArrayBufferView | string |
  object | number | boolean | null;
/** A document id: bytes, a string (UTF-8; natural-id collections) or an
 *  integer (the 8-byte big-endian id of a u64 collection). */
export type IdLike = Uint8Array | string | number | bigint;

export const SUBPROTOCOL: "sprig.v1";

export const codes: Readonly<{
  NOTFOUND: -1; CONFLICT: -2; EXIST: -3; INVAL: -4; SCHEMA: -5; UNIQUE: -6;
  TOOBIG: -7; NOMEM: -8; IO: -9; FULL: -10; CORRUPT: -11; PERM: -12;
  AUTH: -13; PROTO: -14; CLOSED: -15; TIMEDOUT: -16; CONNECT: -17;
  BUSY: -18; NOTLEADER: -19; RANGE: -20;
}>;

export interface Header { id: Uint8Array; revision: number;
                          hash: Uint8Array | null }
/** A header as sent: the id may be any IdLike; hash optional. */
export interface HeaderIn { id: IdLike; revision: number | bigint;
                            hash?: Uint8Array | null }

export interface ErrorInfo {
  kind: number; database: string; schema: string; collection: string;
  view: string; ns: string; key: Uint8Array; id: Uint8Array;
  header: Header | null;
}

export interface TxnResult {
  /** The transaction id (0n for a failed one). */
  id: bigint;
  /** Index of the failed operation, -1 for none. */
  failed: number;
  error: number;
  conflict: Header | null;
  headers: Header[];
}

export class SprigError extends Error {
  code: number;
  codeName: string;
  detail: any;
  api: string | null;
  errorInfo: ErrorInfo | null;
  /** db.apply's result when a transaction failed. */
  result: TxnResult | null;
}

export class Doc {
  id: Uint8Array;
  revision: number;
  hash: Uint8Array;
  contents: Uint8Array;
  readonly header: Header;
  text(): string;
  json(): any;
}

export const op: Readonly<{ INSERT: 0; UPDATE: 1; OVERWRITE: 2; DELETE: 3;
                            CHECK: 4 }>;

export class Transaction {
  ops: any[];
  insert(collection: string, contents: BytesLike, id?: IdLike | null): this;
  update(collection: string, header: HeaderIn, contents: BytesLike): this;
  overwrite(collection: string, id: IdLike, contents: BytesLike): this;
  delete(collection: string, header: HeaderIn): this;
  check(collection: string, id: IdLike, header?: HeaderIn | null): this;
}

export interface Range {
  start?: IdLike | null; end?: IdLike | null;
  startExcluded?: boolean; endExcluded?: boolean;
}

export interface Query {
  key?: BytesLike; keys?: BytesLike[]; range?: Range; prefix?: BytesLike;
  order?: "asc" | "desc"; limit?: number;
  access?: "before" | "after" | "none";
  after?: { key: BytesLike; id: IdLike } | null;
  withDocs?: boolean;
}

export interface Mapping {
  key: Uint8Array; value: Uint8Array; source: Header | null;
  doc: Doc | null;
}

export interface DatabaseInfo { name: string; schema: string }

/** One open connection of the server (Client.connectedClients()). */
export interface ConnectedClient {
  id: bigint;           // the server's connection id
  peer: string;         // "127.0.0.1:54321"
  transport: string;    // "ws", "wss", "quic"
  connectedMs: number;  // when it opened, ms since 1970
  identity: string;     // its default session's identity, or ""
  sessions: number;     // sessions (logins) open on it
  requests: number;     // requests it sent so far
  yours: boolean;       // the connection of the client that asked
}

export interface ViewDef {
  name: string; version?: number; policy?: "lazy" | "eager" | "unique";
  jsonKey?: string | null; jsonValue?: string | null;
  reduce?: "none" | "count" | "sum" | "min" | "max"; reduceFn?: boolean;
}
export interface CollectionDef {
  name: string; idKind?: "u64" | "natural"; flags?: number;
  views?: ViewDef[];
}
export interface Schema { name: string; collections: CollectionDef[] }

export interface LogEntry {
  id: bigint; timestampMs: number;
  changes: { collection: string; id: Uint8Array; revision: number;
             deleted: boolean }[];
}

/** A key-value value: bytes, an integer (bigint), a float (number) or
 *  null (no value). */
export type KvValue = Uint8Array | bigint | number | null;
export type KvValueIn = KvValue | string |
  { kind: "bytes" | "int" | "uint" | "float" | "none"; value: any };

export interface Message { topic: Uint8Array; payload: Uint8Array;
                           text(): string }

export interface Change {
  /** The transaction id (strictly increasing along a feed). */
  txn: bigint;
  timestampMs: number;
  collection: string;
  id: Uint8Array;
  revision: number;
  deleted: boolean;
  /** With `contents: true`: the document's contents at this revision, or
   *  null when deleted or changed again since (a later change follows). */
  contents: Uint8Array | null;
}

export interface ConnectOptions {
  user?: string; password?: string;
  /** "ID:HEXSECRET", as `sprig admin token create` writes it. */
  token?: string;
  /** Reconnect (and log in, resubscribe, resume feeds) after a drop;
   *  default true. */
  reconnect?: boolean;
  /** Per-request timeout and connect timeout, ms (default 30000). */
  timeoutMs?: number;
  reconnectDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** A WebSocket constructor to use instead of globalThis.WebSocket/ws. */
  WebSocket?: any;
}

export class Client {
  readonly url: string;
  identity: string | null;
  session: number | null;
  constructor(url: string, options?: ConnectOptions);
  open(): Promise<this>;
  on(event: "reconnect", cb: () => void): this;
  on(event: "disconnect" | "error", cb: (err: Error) => void): this;
  loginPassword(user: string, password: string):
    Promise<{ identity: string; session: number }>;
  loginToken(token: string): Promise<{ identity: string; session: number }>;
  logout(): Promise<void>;
  /** Any API by name (custom APIs included); resolves the answer map. */
  call(api: string, payload?: Record<string, any>,
       opts?: { session?: number | null; timeoutMs?: number }):
    Promise<Record<string, any>>;
  /** Handle pushes of `api`; returns the function that removes it. */
  onPush(api: string, cb: (payload: any, api: string) => void): () => void;
  /** A custom API: payload {data: bytes}, answer's data bytes. */
  callApi(api: string, data?: BytesLike,
          opts?: { session?: number | null; timeoutMs?: number }):
    Promise<Uint8Array>;
  /** Pushes [3, api, {data}] of a custom API. */
  onApiPush(api: string, cb: (data: Uint8Array) => void): () => void;
  ready(timeoutMs?: number): Promise<void>;
  close(): void;
  /** Drop the socket as a network failure would (reconnect follows). */
  dropConnection(): void;

  listDatabases(): Promise<DatabaseInfo[]>;
  createDatabase(name: string, schema: string,
                 opts?: { onlyIfNeeded?: boolean }): Promise<void>;
  deleteDatabase(name: string): Promise<void>;
  openDatabase(name: string): Promise<Database>;
  listSchemas(): Promise<Schema[]>;
  registerSchema(schema: Schema): Promise<void>;
  maintain(kind: "backup" | "restore" | "export" | "import" | "compact" |
           number, arg: string):
    Promise<{ items: number; itemsTotal: number; bytes: number;
              bytesTotal: number }>;
  /** The server's open connections, oldest first; `yours` marks this
   *  client's own (needs `server.clients` on `sprig`). */
  connectedClients(): Promise<ConnectedClient[]>;
  db(name: string): Database;
}

export class Database {
  readonly client: Client;
  readonly name: string;
  get(collection: string, id: IdLike): Promise<Doc>;
  getMultiple(collection: string, ids: IdLike[]): Promise<Doc[]>;
  list(collection: string, opts?: { range?: Range | null;
       order?: "asc" | "desc"; limit?: number; headersOnly?: boolean }):
    Promise<Doc[]>;
  count(collection: string, opts?: { range?: Range | null }):
    Promise<number>;
  apply(t: Transaction | any[]): Promise<TxnResult>;
  insert(collection: string, contents: BytesLike, id?: IdLike | null):
    Promise<Header>;
  update(collection: string, header: HeaderIn, contents: BytesLike):
    Promise<Header>;
  overwrite(collection: string, id: IdLike, contents: BytesLike):
    Promise<Header>;
  delete(collection: string, header: HeaderIn): Promise<Header>;
  listExecutedTransactions(since?: bigint | number, limit?: number):
    Promise<LogEntry[]>;
  lastTransactionId(): Promise<bigint>;
  query(collection: string, view: string, q?: Query): Promise<Mapping[]>;
  reduce(collection: string, view: string, q?: Query): Promise<Uint8Array>;
  reduceJson(collection: string, view: string, q?: Query): Promise<any>;
  reduceGrouped(collection: string, view: string, q?: Query):
    Promise<Mapping[]>;
  deleteDocs(collection: string, view: string, q?: Query): Promise<number>;
  kv(ns?: string): KeyValue;
  publish(topics: BytesLike | BytesLike[], payload: BytesLike):
    Promise<void>;
  subscribe(topics?: BytesLike | BytesLike[],
            cb?: ((m: Message) => void) | null): Promise<Subscriber>;
  changes(opts?: { since?: bigint | number; collection?: string;
                   contents?: boolean },
          cb?: ((c: Change) => void) | null): Promise<ChangesFeed>;
}

export class KeyValue {
  set(key: string, value: KvValueIn, opts?: {
    expireAtMs?: number | bigint; expireInMs?: number | bigint;
    keepExpiration?: boolean; check?: "any" | "vacant" | "present";
    returnPrevious?: boolean }):
    Promise<{ status: "inserted" | "updated" | "deleted" | "unchanged";
              previous: KvValue }>;
  get(key: string, opts?: { andDelete?: boolean }): Promise<KvValue>;
  increment(key: string, amount?: bigint | number,
            opts?: { decrement?: boolean; saturating?: boolean }):
    Promise<KvValue>;
  decrement(key: string, amount?: bigint | number,
            opts?: { saturating?: boolean }): Promise<KvValue>;
  delete(key: string): Promise<boolean>;
  list(opts?: { prefix?: string; after?: string | null; limit?: number }):
    Promise<{ key: string; value: KvValue; expireAtMs: number }[]>;
}

export class Subscriber implements AsyncIterableIterator<Message> {
  id: number | null;
  subscribe(topic: BytesLike): Promise<void>;
  unsubscribe(topic: BytesLike): Promise<void>;
  close(): Promise<void>;
  next(): Promise<IteratorResult<Message>>;
  return(): Promise<IteratorResult<Message>>;
  [Symbol.asyncIterator](): AsyncIterableIterator<Message>;
}

export class ChangesFeed implements AsyncIterableIterator<Change> {
  id: number | null;
  /** The last transaction id delivered: pass it as `since` to resume. */
  readonly lastId: bigint;
  close(): Promise<void>;
  next(): Promise<IteratorResult<Change>>;
  return(): Promise<IteratorResult<Change>>;
  [Symbol.asyncIterator](): AsyncIterableIterator<Change>;
}

export function connect(url: string, options?: ConnectOptions):
  Promise<Client>;
export function u64(n: number | bigint): Uint8Array;
export function idToBigInt(id: Uint8Array): bigint;
export function toBytes(v: BytesLike): Uint8Array;
export function encodeValue(v: KvValueIn): [number, any];
export function decodeValue(a: [number, any]): KvValue;

declare const _default: {
  connect: typeof connect; Client: typeof Client;
  Database: typeof Database; KeyValue: typeof KeyValue;
  Transaction: typeof Transaction; SprigError: typeof SprigError;
  codes: typeof codes; op: typeof op; u64: typeof u64;
  idToBigInt: typeof idToBigInt; toBytes: typeof toBytes;
  encodeValue: typeof encodeValue; decodeValue: typeof decodeValue;
  SUBPROTOCOL: typeof SUBPROTOCOL;
};
export default _default;
