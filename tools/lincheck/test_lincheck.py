#!/usr/bin/env python3
"""test_lincheck.py -- the self-tests of lincheck.py (ctest: lincheck).

1. Hand-made histories with a known verdict: linearizable ones (concurrent
   writes read either way, a CAS chain, an unknown write seen or not seen,
   reads of the initial absence) and non-linearizable ones (a stale read,
   a lost write, a read of a value never written, a CAS applied twice, a
   read that goes back in time), each also with its events given times
   and shuffled in the file, which must not change the verdict.
2. Random histories from a simulated linearizable store (a register per
   key, each operation taking effect at one instant inside its interval,
   some outcomes unknown and applied or not): every one must pass.
3. Random histories from simulated buggy stores -- reads served by a
   replica lagging behind, or acknowledged writes lost -- which must fail.
4. Small random histories (up to 7 operations, half of them garbage
   results) judged by lincheck and by a brute-force search over every
   order and every choice of unknown outcomes: the verdicts must agree.
5. The command line: exit 0 / 1 / 2 and the message naming the key.

Randomness is seeded: the seed is printed; SPRIG_SEED replays it.
"""

import itertools
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lincheck  # noqa: E402

FAILURES = []


def expect(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def ev(p, t, f, key, value=None):
    d = {"process": p, "type": t, "f": f, "key": key}
    if value is not None or t == "ok" and f == "read":
        d["value"] = value
    return d


def inv(p, f, v=None, key="x"):
    return ev(p, "invoke", f, key, v)


def ok(p, f, v=None, key="x"):
    return ev(p, "ok", f, key, v)


# ---- 1. hand-made histories -----------------------------------------------

GOOD = {
    "sequential write then read": [
        inv(1, "write", 1), ok(1, "write", 1),
        inv(1, "read"), ok(1, "read", 1)],
    "read of the initial absence": [
        inv(1, "read"), ok(1, "read", None)],
    "concurrent writes, reads see the later order": [
        inv(1, "write", 1), inv(2, "write", 2), ok(1, "write", 1),
        ok(2, "write", 2), inv(3, "read"), ok(3, "read", 1),
        inv(3, "read"), ok(3, "read", 1)],
    "read concurrent with a write sees the old value": [
        inv(1, "write", 1), ok(1, "write", 1), inv(2, "write", 2),
        inv(3, "read"), ok(3, "read", 1), ok(2, "write", 2)],
    "read concurrent with a write sees the new value": [
        inv(1, "write", 1), ok(1, "write", 1), inv(2, "write", 2),
        inv(3, "read"), ok(3, "read", 2), ok(2, "write", 2)],
    "a CAS chain": [
        inv(1, "write", 0), ok(1, "write", 0),
        inv(1, "cas", [0, 1]), inv(2, "cas", [1, 2]),
        ok(2, "cas", [1, 2]), ok(1, "cas", [0, 1]),
        inv(3, "read"), ok(3, "read", 2)],
    "an unknown write that took effect": [
        inv(1, "write", 1), ev(1, "info", "write", "x", 1),
        inv(2, "read"), ok(2, "read", 1)],
    "an unknown write that never took effect": [
        inv(1, "write", 1), ev(1, "info", "write", "x", 1),
        inv(2, "read"), ok(2, "read", None), inv(2, "read"),
        ok(2, "read", None)],
    "an unknown write taking effect late": [
        inv(1, "write", 1), ev(1, "info", "write", "x", 1),
        inv(2, "read"), ok(2, "read", None), inv(2, "read"),
        ok(2, "read", 1)],
    "an invoke never completed is unknown": [
        inv(1, "write", 5), inv(2, "read"), ok(2, "read", 5)],
    "a failed write constrains nothing": [
        inv(1, "write", 9), ev(1, "fail", "write", "x", 9),
        inv(2, "read"), ok(2, "read", None)],
    "keys are independent": [
        inv(1, "write", 1, "a"), ok(1, "write", 1, "a"),
        inv(1, "write", 2, "b"), ok(1, "write", 2, "b"),
        inv(2, "read", None, "a"), ok(2, "read", 1, "a"),
        inv(2, "read", None, "b"), ok(2, "read", 2, "b")],
    "documents as values": [
        inv(1, "write", {"n": 1, "tags": ["a"]}),
        ok(1, "write", {"n": 1, "tags": ["a"]}),
        inv(2, "read"), ok(2, "read", {"tags": ["a"], "n": 1})],
}

BAD = {
    "stale read": [
        inv(1, "write", 1), ok(1, "write", 1),
        inv(1, "write", 2), ok(1, "write", 2),
        inv(2, "read"), ok(2, "read", 1)],
    "lost write": [
        inv(1, "write", 1), ok(1, "write", 1),
        inv(2, "read"), ok(2, "read", None)],
    "read of a value never written": [
        inv(1, "write", 1), ok(1, "write", 1),
        inv(2, "read"), ok(2, "read", 3)],
    "a CAS applied twice": [
        inv(1, "write", 0), ok(1, "write", 0),
        inv(1, "cas", [0, 1]), ok(1, "cas", [0, 1]),
        inv(2, "cas", [0, 2]), ok(2, "cas", [0, 2])],
    "reads going back in time": [
        inv(1, "write", 1), ok(1, "write", 1), inv(1, "write", 2),
        inv(2, "read"), ok(2, "read", 2), inv(3, "read"),
        ok(3, "read", 1), ok(1, "write", 2)],
    "an unknown write seen, then unseen": [
        inv(1, "write", 1), ok(1, "write", 1),
        inv(2, "write", 2), ev(2, "info", "write", "x", 2),
        inv(3, "read"), ok(3, "read", 2), inv(3, "read"),
        ok(3, "read", 1)],
    "one bad key among good ones": [
        inv(1, "write", 1, "a"), ok(1, "write", 1, "a"),
        inv(2, "write", 1, "b"), ok(2, "write", 1, "b"),
        inv(2, "read", None, "b"), ok(2, "read", None, "b")],
}


def timed_shuffle(events, rng):
    """The same history with times on every event, shuffled in the file."""
    out = [dict(e, time=1000 + 10 * i) for i, e in enumerate(events)]
    rng.shuffle(out)
    return out


def test_hand_made(rng):
    for name, h in GOOD.items():
        r = lincheck.check_history(h)
        expect(r.ok, "linearizable history judged not: %s (%s)"
               % (name, r.describe()))
        expect(lincheck.check_history(timed_shuffle(h, rng)).ok,
               "timed, shuffled: %s" % name)
    for name, h in BAD.items():
        r = lincheck.check_history(h)
        expect(not r.ok, "non-linearizable history passed: %s" % name)
        expect(not lincheck.check_history(timed_shuffle(h, rng)).ok,
               "timed, shuffled: %s" % name)
    r = lincheck.check_history(BAD["one bad key among good ones"])
    expect(r.key == "b", "the failing key is b, not %r" % r.key)


# ---- 2, 3. simulated stores --------------------------------------------------

def simulate(rng, nproc=5, nops=60, nkeys=3, unknown=0.05, bug=None):
    """A history of `nproc` processes doing `nops` operations each against
    a store whose operations take effect at one instant inside their
    interval.  bug: None, "stale" (a read may return the value of `lag`
    time units ago) or "lost" (an acknowledged write may never apply)."""
    ops, counter = [], itertools.count(1)
    for p in range(nproc):
        t = rng.uniform(0, 5)
        for _ in range(nops):
            start = t + rng.uniform(0.1, 3)
            end = start + rng.uniform(0.5, 10)
            key = "k%d" % rng.randrange(nkeys)
            f = rng.choice(["read", "read", "write", "cas"])
            if f == "write":
                arg = next(counter)
            elif f == "cas":
                arg = [rng.randrange(0, next(counter)), next(counter)]
            else:
                arg = None
            ops.append({"p": p, "f": f, "key": key, "arg": arg,
                        "start": start, "end": end,
                        "at": rng.uniform(start, end),
                        "unknown": rng.random() < unknown})
            t = end
    return run_store(rng, ops, bug)


def run_store(rng, ops, bug):
    """Apply the ops at their instants; emit invoke/completion events."""
    store, past = {}, {}  # key -> value; key -> [(time, value)]
    for op in sorted(ops, key=lambda o: o["at"]):
        key, cur = op["key"], store.get(op["key"])
        op["type"] = "info" if op["unknown"] else "ok"
        if op["f"] == "read":
            op["result"] = cur
            if bug == "stale" and rng.random() < 0.3:
                old = [v for t, v in past.get(key, []) if t < op["at"] - 30]
                op["result"] = old[-1] if old else None
            continue
        if op["unknown"] and rng.random() < 0.5:
            continue  # timed out and never applied
        new = op["arg"] if op["f"] == "write" else op["arg"][1]
        if op["f"] == "cas" and cur != op["arg"][0]:
            op["type"] = "info" if op["unknown"] else "fail"
            continue
        if bug == "lost" and op["f"] == "write" and rng.random() < 0.2:
            continue
        store[key] = new
        past.setdefault(key, []).append((op["at"], new))
    events = []
    for op in ops:
        events.append({"process": op["p"], "type": "invoke", "f": op["f"],
                       "key": op["key"], "value": op["arg"],
                       "time": op["start"]})
        done = {"process": op["p"], "type": op["type"], "f": op["f"],
                "key": op["key"], "time": op["end"]}
        done["value"] = op["result"] if op["f"] == "read" else op["arg"]
        events.append(done)
    return events


def test_simulated(rng, rounds=25):
    for i in range(rounds):
        h = simulate(rng)
        r = lincheck.check_history(h)
        expect(r.ok, "simulated linearizable store, round %d: %s"
               % (i, r.describe()))
    for bug in ("stale", "lost"):
        caught = 0
        for i in range(rounds):
            h = simulate(rng, nproc=3, nops=100, nkeys=2, bug=bug)
            caught += not lincheck.check_history(h).ok
        expect(caught == rounds, "buggy store (%s): %d of %d histories "
               "caught" % (bug, caught, rounds))
        print("buggy store (%s): %d of %d histories caught"
              % (bug, caught, rounds))


# ---- 4. brute force ----------------------------------------------------------

def brute_force(ops):
    """Is there an order of a subset of `ops` (every known op, any of the
    unknown) respecting real time that the register model accepts?"""
    known = [o for o in ops if not o.unknown]
    unknown = [o for o in ops if o.unknown]
    for k in range(len(unknown) + 1):
        for extra in itertools.combinations(unknown, k):
            chosen = known + list(extra)
            for perm in itertools.permutations(chosen):
                if legal_order(perm):
                    return True
    return False


def legal_order(perm):
    for i, a in enumerate(perm):
        for b in perm[i + 1:]:
            if not b.unknown and b.ret < a.call:
                return False  # b returned before a was invoked
    state = lincheck.canon(None)
    for o in perm:
        good, state = lincheck.step(state, o)
        if not good:
            return False
    return True


def garble(rng, events):
    """Replace some read results with random small values."""
    for e in events:
        if e["f"] == "read" and e["type"] == "ok" and rng.random() < 0.5:
            e["value"] = rng.choice([None, 1, 2, 3, 4])
    return events


def test_brute_force(rng, rounds=300):
    agree = passed = 0
    for i in range(rounds):
        h = simulate(rng, nproc=3, nops=rng.randint(1, 3), nkeys=1,
                     unknown=0.2)
        h = h if i % 2 == 0 else garble(rng, h)
        ops = lincheck.pair_events(
            lincheck.order_events(list(enumerate(h, 1))))
        for j, o in enumerate(ops):
            o.index = j
        if len(ops) > 7:
            continue
        want = brute_force(ops)
        got = lincheck.check_ops(ops).ok
        agree += want == got
        passed += got
        expect(want == got, "brute force says %s, lincheck %s, round %d: %s"
               % (want, got, i, json.dumps(h)))
    print("brute force: %d histories agreed (%d linearizable)"
          % (agree, passed))


# ---- 5. the command line -----------------------------------------------------

def run_cli(events, tmp):
    path = os.path.join(tmp, "h.jsonl")
    with open(path, "w") as f:
        f.write("# a history\n\n")
        for e in events:
            f.write(json.dumps(e) + "\n")
    return subprocess.run([sys.executable, os.path.join(HERE, "lincheck.py"),
                           path], capture_output=True, text=True)


def test_cli(tmp):
    r = run_cli(GOOD["a CAS chain"], tmp)
    expect(r.returncode == 0 and "linearizable" in r.stdout,
           "cli on a good history: %d %s" % (r.returncode, r.stdout))
    r = run_cli(BAD["stale read"], tmp)
    expect(r.returncode == 1 and '"x"' in r.stdout and "read -> 1" in
           r.stdout, "cli on a bad history: %d %s" % (r.returncode, r.stdout))
    r = run_cli([inv(1, "write", 1), inv(1, "read")], tmp)
    expect(r.returncode == 2 and "in flight" in r.stderr,
           "cli on a malformed history: %d %s" % (r.returncode, r.stderr))


def main():
    seed = int(os.environ.get("SPRIG_SEED", random.SystemRandom()
                              .randrange(1 << 31)))
    print("test_lincheck: seed %d (SPRIG_SEED=%d replays it)" % (seed, seed))
    rng = random.Random(seed)
    tmp = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    os.makedirs(tmp, exist_ok=True)
    test_hand_made(rng)
    test_simulated(rng)
    test_brute_force(rng)
    test_cli(tmp)
    if FAILURES:
        print("test_lincheck: %d failures (seed %d)" % (len(FAILURES), seed))
        return 1
    print("test_lincheck: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
