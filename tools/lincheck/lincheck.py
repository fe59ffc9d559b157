#!/usr/bin/env python3
"""lincheck.py -- a linearizability checker for histories of key-value
operations (issue 18: the Jepsen-style cluster test checks its histories
with it).

It reads a history of concurrent operations on a few keys, one JSON object
per line, and answers whether some order of the operations, consistent with
their real-time order, is a legal sequential history of a register per key
(Herlihy and Wing's linearizability).  The search is Wing and Gong's, with
Lowe's memoisation (a cache of (set of linearized operations, register
state) already explored), run on each key alone: registers are independent
objects and linearizability is compositional, so a history is linearizable
iff each key's sub-history is -- which turns one exponential search into
several small ones.

History format (JSON lines; blank lines and lines starting with '#' are
skipped):

    {"process": 3, "type": "invoke", "f": "write", "key": "k1", "value": 7,
     "time": 1733490000123456789}
    {"process": 3, "type": "ok",     "f": "write", "key": "k1", "value": 7,
     "time": 1733490000124456789}

- process: any JSON scalar naming a client; a process has at most one
  operation in flight: each invoke is completed by that process's next
  event (ok, fail or info).
- type: "invoke" (the operation starts), "ok" (it took effect, with this
  result), "fail" (it certainly did not take effect), "info" (the outcome
  is unknown -- a timeout, a lost connection: it may have taken effect at
  any moment after its invocation, or never).  An invoke with no
  completion at the end of the history counts as "info".
- f: "read" (ok's value is the value read; null = the key is absent),
  "write" (invoke's value is written), "cas" (invoke's value is
  [expected, new]: if the register holds `expected` it becomes `new`;
  record a CAS whose comparison failed as "fail" -- it changed nothing).
  Documents with revisions map onto these: an update naming the revision
  it replaces is a CAS from the value of that revision.
- key: the register (any JSON scalar); value: any JSON value, compared by
  equality; every register starts absent (null).
- time (optional, any number, e.g. nanoseconds): when every event has one,
  events are ordered by it (ties: file order, and an invoke and a
  completion at the same time count as concurrent); otherwise file order
  is time order.

Usage: lincheck.py [--quiet] HISTORY.jsonl ('-' reads stdin)
Exit status 0: linearizable; 1: not linearizable (the key and the
operation no order could place are printed); 2: a malformed history.
Also a module: check_history(events) -> Result.
"""

import json
import sys

READ, WRITE, CAS = "read", "write", "cas"
INF = float("inf")


class HistoryError(Exception):
    """The history is not well formed (the message says where)."""


class Op:
    """One operation: its call and return times (return INF when its
    outcome is unknown), what it does and what it answered."""

    __slots__ = ("index", "process", "f", "key", "arg", "result", "call",
                 "ret", "unknown", "line")

    def __init__(self, index, process, f, key, arg, line):
        self.index, self.process, self.f, self.key = index, process, f, key
        self.arg, self.result, self.line = arg, None, line
        self.call, self.ret, self.unknown = 0, INF, True

    def __repr__(self):
        what = {READ: "read -> %s" % json.dumps(self.result),
                WRITE: "write %s" % json.dumps(self.arg),
                CAS: "cas %s" % json.dumps(self.arg)}[self.f]
        return "process %s %s on key %s (line %d%s)" % (
            json.dumps(self.process), what, json.dumps(self.key), self.line,
            ", outcome unknown" if self.unknown else "")


def canon(v):
    """A hashable, equality-preserving form of a JSON value."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def step(state, op):
    """The register model: (legal, next state) of applying `op` to the
    canonical `state`."""
    if op.f == READ:
        return canon(op.result) == state, state
    if op.f == WRITE:
        return True, canon(op.arg)
    expected, new = op.arg
    if canon(expected) != state:
        return False, state
    return True, canon(new)


# ---- reading a history -----------------------------------------------------

def parse_lines(lines):
    """JSON-lines text -> list of (line number, event dict)."""
    events = []
    for n, text in enumerate(lines, 1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            ev = json.loads(text)
        except ValueError as e:
            raise HistoryError("line %d: not JSON (%s)" % (n, e))
        if not isinstance(ev, dict):
            raise HistoryError("line %d: not a JSON object" % n)
        events.append((n, ev))
    return events


def check_event(n, ev):
    for field in ("process", "type", "f", "key"):
        if field not in ev:
            raise HistoryError("line %d: no \"%s\"" % (n, field))
    if ev["type"] not in ("invoke", "ok", "fail", "info"):
        raise HistoryError("line %d: type %r is not invoke, ok, fail or info"
                           % (n, ev["type"]))
    if ev["f"] not in (READ, WRITE, CAS):
        raise HistoryError("line %d: f %r is not read, write or cas"
                           % (n, ev["f"]))
    if ev["f"] == CAS and ev["type"] == "invoke":
        v = ev.get("value")
        if not isinstance(v, list) or len(v) != 2:
            raise HistoryError("line %d: a cas's value is [expected, new]"
                               % n)


def is_timed(events):
    """Does every event carry a numeric time?"""
    return bool(events) and all(
        isinstance(ev.get("time"), (int, float)) and
        not isinstance(ev.get("time"), bool) for _, ev in events)


def order_events(events):
    """Sort by time when every event has one (stable: file order breaks
    ties)."""
    if is_timed(events):
        events = sorted(events, key=lambda e: e[1]["time"])
    return events


def pair_events(events):
    """Events -> operations (fail ones and unknown reads dropped: they
    constrain nothing).  Positions are the event order; a completion at
    the same time as an invoke counts as after it (concurrent)."""
    open_ops, ops, pos = {}, [], {}
    timed = is_timed(events)
    for i, (n, ev) in enumerate(events):
        check_event(n, ev)
        proc = canon(ev["process"])
        t = ev["time"] if timed else i
        if ev["type"] == "invoke":
            if proc in open_ops:
                raise HistoryError("line %d: process %s invokes with an "
                                   "operation in flight" % (n, proc))
            op = Op(len(ops), ev["process"], ev["f"], ev["key"],
                    ev.get("value"), n)
            op.call = (t, 0, i)
            open_ops[proc] = op
            continue
        op = open_ops.pop(proc, None)
        if op is None:
            raise HistoryError("line %d: process %s completes an operation "
                               "it did not invoke" % (n, proc))
        if op.f != ev["f"] or canon(op.key) != canon(ev["key"]):
            raise HistoryError("line %d: the completion does not match the "
                               "invoke of line %d" % (n, op.line))
        if ev["type"] == "fail":
            continue
        if ev["type"] == "ok":
            op.ret, op.unknown = (t, 1, i), False
            if op.f == READ:
                op.result = ev.get("value")
        elif op.f == READ:
            continue  # an unknown read changed nothing
        ops.append(op)
    for op in open_ops.values():  # never completed: unknown
        if op.f != READ:
            ops.append(op)
    return ops


# ---- the WGL search ----------------------------------------------------------

class Entry:
    """A node of the doubly linked list of calls and returns."""

    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op, self.is_call = op, is_call
        self.match = self.prev = self.next = None


def build_list(ops):
    """The ops' calls and returns in time order, as a linked list behind a
    sentinel head.  Unknown outcomes return at infinity (the end)."""
    items = []
    for op in ops:
        c, r = Entry(op, True), Entry(op, False)
        c.match = r
        items.append(((op.call, 0), c))
        ret_key = op.ret if not op.unknown else (INF, 2, op.index)
        items.append(((ret_key, 1), r))
    items.sort(key=lambda x: x[0])
    head = Entry(None, False)
    prev = head
    for _, e in items:
        prev.next, e.prev = e, prev
        prev = e
    return head


def lift(e):
    """Take a call and its return out of the list."""
    e.prev.next = e.next
    if e.next:
        e.next.prev = e.prev
    r = e.match
    r.prev.next = r.next
    if r.next:
        r.next.prev = r.prev


def unlift(e):
    """Put them back (the reverse of lift: return first)."""
    r = e.match
    r.prev.next = r
    if r.next:
        r.next.prev = r
    e.prev.next = e
    if e.next:
        e.next.prev = e


class Result:
    """The verdict: ok, and when not, the key, the operation no order could
    place and how many of the key's operations the best order placed."""

    def __init__(self, ok, key=None, stuck=None, placed=0, total=0):
        self.ok, self.key, self.stuck = ok, key, stuck
        self.placed, self.total = placed, total

    def __bool__(self):
        return self.ok

    def describe(self):
        if self.ok:
            return "linearizable"
        return ("not linearizable: key %s: no order of its %d operations "
                "places %r (the longest order placed %d)"
                % (json.dumps(self.key), self.total, self.stuck, self.placed))


def check_key(ops):
    """The WGL search over one register's operations; Result."""
    head = build_list(ops)
    state, linearized = canon(None), 0
    stack, cache = [], set()
    best, stuck = 0, None
    e = head.next
    while e is not None:
        if e.is_call:
            legal, nstate = step(state, e.op)
            bits = linearized | (1 << e.op.index)
            if legal and (bits, nstate) not in cache:
                cache.add((bits, nstate))
                stack.append((e, state))
                state, linearized = nstate, bits
                lift(e)
                if len(stack) > best:
                    best = len(stack)
                e = head.next
            else:
                e = e.next
            continue
        if e.op.unknown:
            return Result(True)  # only unknown outcomes remain: skip them
        if stuck is None or len(stack) >= best:
            stuck = e.op
        if not stack:
            return Result(False, ops[0].key, stuck, best, len(ops))
        call, state = stack.pop()
        linearized &= ~(1 << call.op.index)
        unlift(call)
        e = call.next
    return Result(True)


def check_ops(ops):
    """Every key alone (per-key decomposition); the first failing key's
    Result, or ok."""
    by_key = {}
    for op in ops:
        by_key.setdefault(canon(op.key), []).append(op)
    for key in sorted(by_key):
        kops = by_key[key]
        for i, op in enumerate(kops):
            op.index = i
        r = check_key(kops)
        if not r:
            return r
    return Result(True)


def check_history(events):
    """events: list of dicts (file order) -> Result."""
    numbered = order_events(list(enumerate(events, 1)))
    return check_ops(pair_events(numbered))


def check_lines(lines):
    return check_ops(pair_events(order_events(parse_lines(lines))))


def main(argv):
    args = [a for a in argv[1:] if a != "--quiet"]
    quiet = "--quiet" in argv[1:]
    if len(args) != 1:
        print("usage: lincheck.py [--quiet] HISTORY.jsonl", file=sys.stderr)
        return 2
    try:
        if args[0] == "-":
            lines = sys.stdin.readlines()
        else:
            with open(args[0]) as f:
                lines = f.readlines()
        r = check_lines(lines)
    except (OSError, HistoryError) as e:
        print("lincheck: %s" % e, file=sys.stderr)
        return 2
    if not quiet or not r:
        print(r.describe())
    return 0 if r else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
