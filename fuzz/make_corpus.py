#!/usr/bin/env python3
"""make_corpus.py -- write the seed corpora of fuzz_frame and fuzz_request.

  fuzz/corpus/frame/    whole messages: a valid request and response frame
                        per API row (as docs/protocol.md describes them),
                        error and push frames, and malformed ones (truncated,
                        wrong types, deep nesting, lying lengths, ...)
  fuzz/corpus/request/  a flags byte (bit 0: response), an API name, a NUL,
                        and a payload: the same payloads without the frame

Deterministic: running it again rewrites the same files (it removes the
generated ones first, so files libFuzzer added, e.g. crash reproducers
named crash-*, stay).  Needs Debian's python3-msgpack.

    python3 fuzz/make_corpus.py            # from the repository root
"""

import os
import sys

try:
    import msgpack
except ImportError:
    if os.path.exists("/usr/bin/python3") and \
            os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "seed-"  # generated files; others (crash reproducers) are kept


def pack(v):
    return msgpack.packb(v, use_bin_type=True)


def u64id(n):
    return n.to_bytes(8, "big")


HASH = bytes(range(16))
HEADER = [u64id(1), 1, HASH]
DOC = [u64id(1), 1, HASH, b'{"text":"hi"}']
UNBOUNDED = [0, None]
RANGE = [[1, b"a"], [2, b"z"]]
# a schema: collections [name, id kind, flags, views], each view [name,
# version, policy, json_key|nil, json_value|nil, builtin reduce, has a
# reduce function]; a collection of 3 elements (older clients) has no views
SCHEMA = ["chat", [
    ["messages", 0, 0, [["by-author", 1, 1, "from", None, 1, False],
                        ["by-len", 3, 0, None, None, 0, True]]],
    ["users", 1, 0, [["by-tag", 2, 2, "tags,name", "age", 2, False]]],
    ["old", 0, 0]]]
TXN = [
    [0, "messages", None, b"pushed", None, None],       # insert, push
    [0, "users", b"alice", b"{}", None, None],          # insert, natural
    [1, "users", b"bob", b"v2", 3, None],               # update, rev only
    [2, "users", b"carol", b"over", None, None],        # overwrite
    [3, "users", b"dave", None, 2, HASH],               # delete, rev + hash
    [4, "users", b"erin", None, None, None],            # check, exists
    [4, "users", b"fay", None, 1, HASH],                # check, revision
]
TXN_RESULT_OK = [7, -1, 0, None, [HEADER, [b"alice", 1, HASH]]]
TXN_RESULT_FAIL = [0, 2, -2, [b"bob", 4, HASH], []]
TXN_LOG = [[1, 1700000000000, [["messages", u64id(1), 1, False]]],
           [2, 1700000000001, [["users", b"dave", 2, True],
                               ["users", b"erin", 1, False]]]]

# Each row: api, request payload, response payload (docs/protocol.md).
ROWS = [
    ("storage.create_database",
     {"name": "main", "schema": "chat", "only_if_needed": True}, {}),
    ("storage.delete_database", {"name": "main"}, {}),
    ("storage.list_databases", {},
     {"list": [["main", "chat"], ["other", "chat"]]}),
    ("storage.database", {"name": "main"}, {}),
    ("storage.register_schema", {"schema": SCHEMA}, {}),
    ("storage.list_schemas", {}, {"list": [SCHEMA, ["empty", []]]}),
    ("db.apply", {"db": "main", "txn": TXN}, {"result": TXN_RESULT_OK}),
    ("db.get", {"db": "main", "collection": "messages", "id": u64id(1)},
     {"doc": DOC}),
    ("db.get_multiple",
     {"db": "main", "collection": "users", "ids": [b"alice", b"bob", b""]},
     {"docs": [DOC, [b"bob", 3, HASH, b""]]}),
    ("db.list",
     {"db": "main", "collection": "users", "range": RANGE, "order": 1,
      "limit": 10, "headers_only": False},
     {"docs": [DOC]}),
    ("db.count",
     {"db": "main", "collection": "users", "range": [UNBOUNDED, [1, b"m"]]},
     {"count": 42}),
    ("db.list_executed_transactions",
     {"db": "main", "since": 1, "limit": 100}, {"log": TXN_LOG}),
    ("db.last_transaction_id", {"db": "main"}, {"id": 2}),
    # key-value: a value is [kind, v] (0 bytes, 1 i64, 2 u64, 3 f64, 4 none)
    ("kv.set",
     {"db": "main", "ns": "sess", "key": "k", "value": [0, b"v"],
      "expire_at_ms": 0, "expire_in_ms": 60000, "keep_expiration": False,
      "check": 1, "return_previous": True},
     {"status": 1, "previous": [4, None]}),
    ("kv.get", {"db": "main", "ns": "sess", "key": "k", "and_delete": False},
     {"value": [3, 2.5]}),
    ("kv.increment",
     {"db": "main", "ns": "n", "key": "c", "amount": [1, -3],
      "decrement": True, "saturating": True},
     {"value": [2, 7]}),
    ("kv.delete", {"db": "main", "ns": "n", "key": "c"}, {"status": 3}),
    ("kv.list",
     {"db": "main", "ns": "sess", "prefix": "k", "after": "k1", "limit": 10},
     {"list": [["k1", [0, b"v"], 0], ["k2", [1, -1], 1700000000000]]}),
]

# view queries: [collection, view, match kind, key, keys, [start, end],
# order, limit, access, after (nil or [key, id])]
QUERY = ["messages", "by-author", 3, b"", [], [[1, b"a"], [2, b"m"]], 1, 10,
         0, [b"a", u64id(1)]]
QUERY_KEYS = ["messages", "by-author", 2, b"", [b"a", b"b"],
              [[0, None], [0, None]], 0, 0, 2, None]
# nil for the key, keys and range a match kind does not use
QUERY_NILS = ["messages", "by-author", 0, None, None, None, 0, 0, 0, None]
MAPPINGS = [[b"a", b"1", HEADER, DOC], [b"b", b"2", HEADER, None],
            [b"c", b"3", None, None]]
ROWS += [
    ("view.query", {"db": "main", "query": QUERY, "with_docs": True},
     {"mappings": MAPPINGS}),
    ("view.reduce", {"db": "main", "query": QUERY_KEYS, "with_docs": False},
     {"value": b"42"}),
    ("view.reduce_grouped",
     {"db": "main", "query": QUERY, "with_docs": False},
     {"mappings": [[b"a", b"2", None, None]]}),
    ("view.delete_docs", {"db": "main", "query": QUERY_KEYS,
                          "with_docs": False}, {"deleted": 3}),
    ("pubsub.publish",
     {"db": "main", "topics": [b"news", b"sport"], "payload": b"hello"}, {}),
    ("pubsub.subscriber_new", {"db": "main"}, {"subscriber": 1}),
    ("pubsub.subscribe", {"subscriber": 1, "topic": b"news"}, {}),
    ("pubsub.unsubscribe", {"subscriber": 1, "topic": b"news"}, {}),
    ("pubsub.subscriber_free", {"subscriber": 1}, {}),
]


def frames():
    """(name, bytes) of whole messages for fuzz_frame."""
    out = []
    for i, (api, req, resp) in enumerate(ROWS):
        out.append(("req-" + api, pack([0, i + 1, None, api, req])))
        out.append(("resp-" + api, pack([1, i + 1, resp])))
    out.append(("req-session", pack([0, 9, 123, "db.get", ROWS[7][1]])))
    out.append(("req-list-norange", pack([0, 10, None, "db.list", {
        "db": "main", "collection": "users", "order": 0, "limit": 0,
        "headers_only": True}])))
    out.append(("err-plain", pack(
        [2, 3, -5, "collection 'nope' is not in schema 'chat'", None])))
    out.append(("err-apply-detail", pack(
        [2, 4, -2, "revision mismatch", {"result": TXN_RESULT_FAIL}])))
    out.append(("err-id0", pack([2, 0, -14, "expected an array", None])))
    out.append(("push", pack([3, "pubsub.message",
                              {"subscriber": 1, "topic": b"t",
                               "payload": b"p"}])))
    # malformed
    get = pack([0, 8, None, "db.get", ROWS[7][1]])
    for cut in (1, 4, 11, len(get) - 1):
        out.append(("bad-truncated-%d" % cut, get[:cut]))
    out.append(("bad-trailing", get + b"\xc0"))
    out.append(("bad-empty", b""))
    out.append(("bad-reserved", b"\xc1"))
    out.append(("bad-map", pack({"kind": 0})))
    out.append(("bad-short", pack([0, 1])))
    out.append(("bad-kind", pack([9, 1, None])))
    out.append(("bad-id-big", pack([0, 1 << 32, None, "db.get", {}])))
    out.append(("bad-id-neg", pack([0, -1, None, "db.get", {}])))
    out.append(("bad-id-zero", pack([0, 0, None, "db.get", ROWS[7][1]])))
    out.append(("req-query-nils", pack([0, 11, None, "view.query", {
        "db": "main", "query": QUERY_NILS, "with_docs": False}])))
    out.append(("bad-view-short", pack([0, 1, None, "storage.register_schema",
                                        {"schema": ["s", [["c", 0, 0, [
                                            ["v", 1, 0, "a", None, 0]]]]]}])))
    out.append(("bad-api-int", pack([0, 1, None, 5, {}])))
    out.append(("bad-api-unknown", pack([0, 1, None, "db.nope", {}])))
    out.append(("bad-payload-array", pack([0, 1, None, "db.get", []])))
    out.append(("bad-field-type", pack([0, 1, None, "db.get", {
        "db": 1, "collection": "x", "id": b"x"}])))
    dup = b"\x84" + b"".join(pack(v) for v in (
        "db", "a", "collection", "x", "id", b"x", "db", "b"))
    out.append(("bad-field-dup", b"\x95" + pack([0, 1, None, "db.get"])[1:] +
                dup))
    out.append(("bad-txn-map", pack([0, 1, None, "db.apply",
                                     {"db": "main", "txn": {}}])))
    out.append(("bad-op-kind", pack([0, 1, None, "db.apply", {
        "db": "main", "txn": [[9, "c", b"x", b"x", None, None]]}])))
    out.append(("bad-op-hash", pack([0, 1, None, "db.apply", {
        "db": "main", "txn": [[1, "c", b"x", b"x", 1, b"short"]]}])))
    out.append(("bad-range-kind", pack([0, 1, None, "db.count", {
        "db": "main", "collection": "c", "range": [[7, None], UNBOUNDED]}])))
    out.append(("bad-schema-kind", pack([0, 1, None, "storage.register_schema",
                                         {"schema": ["s", [["c", 9, 0]]]}])))
    out.append(("bad-nul-name", pack([0, 1, None, "storage.database",
                                      {"name": "a\x00b"}])))
    out.append(("bad-deep", b"\x95\x00\x01\xc0\xa6db.get" + b"\x91" * 40 +
                b"\xc0"))
    out.append(("bad-array-lies", b"\x95\x00\x01\xc0\xa6db.get\xdd\xff\xff"
                b"\xff\xff"))
    out.append(("bad-str-lies", b"\x95\x00\x01\xc0\xdb\xff\xff\xff\xff"))
    out.append(("bad-ext", pack([0, 1, None, "db.get",
                                 msgpack.ExtType(5, b"abc")])))
    out.append(("bad-float-id", b"\x95\x00\xcb" + b"\x00" * 8 +
                b"\xc0\xa6db.get\x80"))
    out.append(("bad-log-huge", pack([1, 1, {"log": [[1, 2, [[
        "c", b"x", 1, False]] * 200]]}])))
    out.append(("bad-result-short", pack([1, 1, {"result": [1, -1, 0]}])))
    out.append(("bad-doc-hash", pack([1, 1, {"doc": [b"x", 1, b"h", b""]}])))
    # regressions: inputs that once crashed or misbehaved
    out.append(("req-view.query-nils", b"\x00view.query\x00" + pack(
        {"db": "main", "query": QUERY_NILS, "with_docs": False})))
    out.append(("req-schema-old-shape", b"\x00storage.register_schema\x00" +
                pack({"schema": ["chat", [["messages", 0, 0]]]})))
    out.append(("regress-key-not-string",  # UBSan: shift by an unset index
                b"\x95\x00\x01\xc0\xa6db.get\x81\x01\xa4main"))
    out.append(("regress-error-not-utf8",  # messages are re-encoded as UTF-8
                b"\x95\x02\x01\xfb\xa4\xff\xfeok\xc0"))
    return out


def requests():
    """(name, bytes) for fuzz_request: flags, name, NUL, payload."""
    out = []
    for api, req, resp in ROWS:
        out.append(("req-" + api, b"\x00" + api.encode() + b"\x00" +
                    pack(req)))
        out.append(("resp-" + api, b"\x01" + api.encode() + b"\x00" +
                    pack(resp)))
    out.append(("resp-db.apply-fail", b"\x01db.apply\x00" +
                pack({"result": TXN_RESULT_FAIL})))
    out.append(("req-view.query-nils", b"\x00view.query\x00" + pack(
        {"db": "main", "query": QUERY_NILS, "with_docs": False})))
    out.append(("req-schema-old-shape", b"\x00storage.register_schema\x00" +
                pack({"schema": ["chat", [["messages", 0, 0]]]})))
    out.append(("regress-key-not-string", b"\x00db.get\x00\x81\x01\xa4main"))
    out.append(("bad-db.apply-deep", b"\x00db.apply\x00\x82" + pack("db") +
                pack("m") + pack("txn") + b"\x91" * 40 + b"\xc0"))
    return out


def write(sub, items):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith(PREFIX):
            os.remove(os.path.join(d, f))
    for name, data in items:
        with open(os.path.join(d, PREFIX + name), "wb") as f:
            f.write(data)
    print("%s: %d files" % (d, len(items)))


def main():
    write("frame", frames())
    write("request", requests())
    return 0


if __name__ == "__main__":
    sys.exit(main())
