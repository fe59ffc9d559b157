#!/usr/bin/env python3
"""python_client_test.py -- an independent Sprig client, written from
docs/protocol.md alone, against the real `sprig serve`.

It proves the protocol page is enough to talk to a server from another
language (Python, with only Debian's python3-websockets and
python3-msgpack):

  - connecting with subprotocol sprig.v1, the protocol's token (the only
    spelling a strict WebSocket library, a browser or Node's `ws` may
    offer: the older "sprig/1" is not an RFC 6455 token), and the server
    picking it;
  - db.apply inserting a document with a pushed id, whose header comes
    back as result[4][0]: an 8-byte big-endian id, revision 1, a 16-byte
    hash;
  - db.get reading it back: same id, revision, hash and contents;
  - error frames: an unknown collection is code -5 with a message, an
    unknown API code -14, a frame that is no frame code -14 with id 0;
  - pipelining: many requests in flight with their own ids, answers
    matched by id, whatever their order;
  - the rest of the connection rules: a text message is closed with 1003,
    an upgrade without the subprotocol gets HTTP 400 whose reason names
    sprig.v1, a plain GET the 200 status page (naming sprig.v1 too);
  - SIGTERM stops the server, which exits with status 0.

Usage: python_client_test.py PATH/TO/sprig
Every wait is bounded; the server is killed if it outlives the test.
"""

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import msgpack
    import websockets
except ImportError:
    # Debian's python3-msgpack and python3-websockets (scripts/deps.sh)
    # belong to Debian's own python3: use it when another one (a virtualenv,
    # pyenv) came first in PATH.
    if os.path.exists("/usr/bin/python3") and \
            os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

TIMEOUT = 20  # seconds for any one step
# The protocol's token: RFC 6455 subprotocols are tokens, so
# python3-websockets (like browsers and Node's ws) refuses "sprig/1".
SUBPROTOCOL = "sprig.v1"

REQUEST, RESPONSE, ERROR, PUSH = 0, 1, 2, 3
OP_INSERT = 0


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def request(rid, api, payload):
    return pack([REQUEST, rid, None, api, payload])


async def recv_frame(ws):
    data = await asyncio.wait_for(ws.recv(), TIMEOUT)
    check(isinstance(data, bytes), "a frame is a binary message")
    frame = unpack(data)
    check(isinstance(frame, list) and frame, "a frame is an array")
    return frame


async def call(ws, rid, api, payload):
    """One request; returns the answering frame (response or error)."""
    await ws.send(request(rid, api, payload))
    frame = await recv_frame(ws)
    check(frame[0] in (RESPONSE, ERROR), "answer kind %r" % frame[0])
    check(frame[1] == rid, "answer id %r for request %r" % (frame[1], rid))
    return frame


def response_payload(frame):
    if frame[0] == ERROR:
        raise AssertionError("error %d: %s" % (frame[2], frame[3]))
    check(len(frame) == 3, "a response has 3 elements")
    return frame[2]


ADMIN_PW = "python-admin-pw"


async def login(ws):
    """Log the connection in as the administrator the test made (its
    default session: later requests carry session nil)."""
    frame = await call(ws, 4000, "auth.password",
                       {"user": "admin", "password": ADMIN_PW})
    answer = response_payload(frame)
    check(answer["identity"] == "admin" and answer["session"] >= 1,
          "login %r" % answer)


def insert_op(collection, contents):
    # [op, collection, id (nil: push), contents, revision, hash]
    return [OP_INSERT, collection, None, contents, None, None]


async def pubsub(url):
    """A subscriber on one connection receives, as a pushed frame
    [3, "pubsub.message", {...}], what another connection publishes."""
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL],
                                  open_timeout=TIMEOUT) as sub, \
            websockets.connect(url, subprotocols=[SUBPROTOCOL],
                               open_timeout=TIMEOUT) as pub:
        await login(sub)
        await login(pub)
        frame = await call(sub, 1, "pubsub.subscriber_new", {"db": "default"})
        sid = response_payload(frame)["subscriber"]
        frame = await call(sub, 2, "pubsub.subscribe",
                           {"subscriber": sid, "topic": b"news"})
        response_payload(frame)
        frame = await call(pub, 1, "pubsub.publish",
                           {"db": "default", "topics": [b"sport", b"news"],
                            "payload": b"hello subscribers"})
        response_payload(frame)
        push = await recv_frame(sub)
        check(push[0] == 3 and push[1] == "pubsub.message",
              "push frame %r" % (push,))
        check(push[2] == {"subscriber": sid, "topic": b"news",
                          "payload": b"hello subscribers"},
              "pushed message %r" % (push[2],))
        # unsubscribed: nothing more arrives
        frame = await call(sub, 3, "pubsub.unsubscribe",
                           {"subscriber": sid, "topic": b"news"})
        response_payload(frame)
        await call(pub, 2, "pubsub.publish",
                   {"db": "default", "topics": [b"news"], "payload": b"x"})
        frame = await call(sub, 4, "db.count",
                           {"db": "default", "collection": "messages"})
        check(frame[0] == 1 and frame[1] == 4, "no push after unsubscribe")


async def exercise(url):
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL],
                                  open_timeout=TIMEOUT,
                                  max_size=64 << 20) as ws:
        check(ws.subprotocol == SUBPROTOCOL,
              "subprotocol %r" % ws.subprotocol)
        # not logged in: nothing but logging in
        frame = await call(ws, 3999, "db.count",
                           {"db": "default", "collection": "messages"})
        check(frame[0] == 2 and frame[3].startswith("not allowed"),
              "anonymous request %r" % (frame,))
        await login(ws)

        # insert with a pushed id
        contents = b'{"text":"hi from python"}'
        frame = await call(ws, 1, "db.apply", {
            "db": "default", "txn": [insert_op("messages", contents)]})
        result = response_payload(frame)["result"]
        txn_id, failed, error, conflict, headers = result
        check(txn_id >= 1, "transaction id %r" % txn_id)
        check(failed == -1 and error == 0 and conflict is None,
              "result %r" % result)
        check(len(headers) == 1, "one header per operation")
        doc_id, revision, digest = headers[0]
        check(doc_id == (1).to_bytes(8, "big"), "pushed id %r" % doc_id)
        check(revision == 1, "revision %r" % revision)
        check(isinstance(digest, bytes) and len(digest) == 16, "hash")

        # read it back
        frame = await call(ws, 2, "db.get", {
            "db": "default", "collection": "messages", "id": doc_id})
        got_id, got_rev, got_hash, got_contents = \
            response_payload(frame)["doc"]
        check(got_id == doc_id, "id %r" % got_id)
        check(got_rev == 1, "revision %r" % got_rev)
        check(got_hash == digest, "hash differs")
        check(got_contents == contents, "contents %r" % got_contents)

        # error frames
        frame = await call(ws, 3, "db.get", {
            "db": "default", "collection": "nope", "id": b"x"})
        check(frame[0] == ERROR and len(frame) == 5, "an error frame")
        check(frame[2] == -5, "code %r" % frame[2])
        check(frame[3] == "collection 'nope' is not in schema 'chat'",
              "message %r" % frame[3])
        info = (frame[4] or {}).get("error_info")
        check(isinstance(info, list) and len(info) == 9, "detail %r" % frame[4])
        check(info[0] == 3 and info[1] == "default" and info[2] == "chat"
              and info[3] == "nope", "error_info %r" % info)
        frame = await call(ws, 4, "db.nothing", {})
        check(frame[0] == ERROR and frame[2] == -14, "unknown API %r" % frame)
        check("db.nothing" in frame[3], "message %r" % frame[3])
        await ws.send(pack({"not": "a frame"}))
        frame = await recv_frame(ws)
        check(frame[0] == ERROR and frame[1] == 0 and frame[2] == -14,
              "not a frame: %r" % frame)
        frame = await call(ws, 5, "db.get", {
            "db": "default", "collection": "messages", "id": 7})
        check(frame[0] == ERROR and frame[2] == -14 and "'id'" in frame[3],
              "a field of the wrong type: %r" % frame)

        # pipelining: all sent before any answer is read
        n = 20
        ids = list(range(100, 100 + n))
        for i, rid in enumerate(ids):
            if i % 2 == 0:
                await ws.send(request(rid, "db.apply", {
                    "db": "default",
                    "txn": [insert_op("messages", b"p%d" % rid)]}))
            else:
                await ws.send(request(rid, "db.count", {
                    "db": "default", "collection": "messages"}))
        await ws.send(request(999, "db.get", {
            "db": "default", "collection": "nope", "id": b"x"}))
        answers = {}
        for _ in range(n + 1):
            frame = await recv_frame(ws)
            check(frame[1] not in answers, "two answers for %r" % frame[1])
            answers[frame[1]] = frame
        check(sorted(answers) == ids + [999], "answers %r" % sorted(answers))
        check(answers[999][0] == ERROR and answers[999][2] == -5,
              "the pipelined error")
        pushed = set()
        for i, rid in enumerate(ids):
            payload = response_payload(answers[rid])
            if i % 2 == 0:
                pushed.add(payload["result"][4][0][0])
            else:
                check(1 <= payload["count"] <= 1 + n // 2,
                      "count %r" % payload["count"])
        check(len(pushed) == n // 2, "distinct pushed ids")
        frame = await call(ws, 1000, "db.get_multiple", {
            "db": "default", "collection": "messages",
            "ids": sorted(pushed)})
        docs = response_payload(frame)["docs"]
        check(sorted(d[3] for d in docs) ==
              sorted(b"p%d" % rid for rid in ids[::2]), "pipelined writes")
        frame = await call(ws, 1001, "db.count", {
            "db": "default", "collection": "messages"})
        check(response_payload(frame)["count"] == 1 + n // 2, "final count")

    await pubsub(url)

    # a text message is refused with close code 1003
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL],
                                  open_timeout=TIMEOUT) as ws:
        await ws.send("text")
        try:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
            raise AssertionError("a text message was answered")
        except websockets.exceptions.ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 1003,
                  "close %r" % e.rcvd)

    # an upgrade without the subprotocol is refused with 400 and a reason
    try:
        async with websockets.connect(url, open_timeout=TIMEOUT):
            raise AssertionError("an upgrade without sprig.v1 was accepted")
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == 400, "status %r" % e.status_code)


def plain_get(port):
    """GET /health (the status for monitors; "/" is the web console)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    check(resp.status == 200, "GET status %r" % resp.status)
    health = json.loads(body)
    check(health.get("name") == "sprig", "health %r" % body)
    check(health.get("protocol") == SUBPROTOCOL,
          "health names %s: %r" % (SUBPROTOCOL, body))


def upgrade_without_subprotocol(port):
    """The 400 answer's reason names the token a client must send."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", "/", headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    check(resp.status == 400, "status %r" % resp.status)
    check("subprotocol %s is required" % SUBPROTOCOL in body,
          "the refusal names %s: %r" % (SUBPROTOCOL, body))


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT)
    if out.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (
            " ".join(cmd), out.returncode, out.stderr.decode()))


def start_server(sprig, path):
    proc = subprocess.Popen([sprig, "--path", path, "serve",
                             "--ws", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + TIMEOUT
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise AssertionError("the server did not say where it listens: %r %s"
                         % (lines, proc.stderr.read().decode()))


def main():
    if len(sys.argv) != 2:
        print("usage: python_client_test.py PATH/TO/sprig", file=sys.stderr)
        return 2
    sprig = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="sprig-pyclient-")
    proc = None
    try:
        path = os.path.join(tmp, "storage")
        run([sprig, "--path", path, "schema", "define", "chat", "messages"])
        run([sprig, "--path", path, "db", "create", "default",
             "--schema", "chat"])
        os.environ["SPRIG_PY_ADMIN_PW"] = ADMIN_PW
        for cmd in (["user", "create", "admin", "--password-env",
                     "SPRIG_PY_ADMIN_PW", "--hash-cost", "min"],
                    ["group", "create", "admins"],
                    ["group", "grant", "admins", "*", "sprig"],
                    ["user", "add-group", "admin", "admins"]):
            run([sprig, "--path", path, "admin"] + cmd)
        proc, port = start_server(sprig, path)
        url = "ws://127.0.0.1:%d" % port
        plain_get(port)
        upgrade_without_subprotocol(port)
        asyncio.run(asyncio.wait_for(exercise(url), 4 * TIMEOUT))
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(TIMEOUT)
        check(status == 0, "the server exited with %r: %s" % (
            status, proc.stderr.read().decode()))
        proc = None
        print("python client: ok")
        return 0
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
