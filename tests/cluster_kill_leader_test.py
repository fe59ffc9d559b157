"""cluster_kill_leader_test.py -- kill -9 of the leader under write load
loses no acknowledged write (issue 18, "Done when"; ctest
cluster_kill_leader).

Three real `sprig serve --cluster` processes on loopback
(tests/cluster_procs.py).  `sprig-write-load` (tools/lincheck/write_load.c)
runs W writer processes through the multi-URL client (the list of all three
nodes): each inserts documents with unique ids and increments a counter of
its own, recording every outcome (ok, fail = certainly not applied, info =
unknown).  Under that load the leader is killed with kill -9, restarted
(it rejoins as a follower) and, once the cluster took more writes, the
leader of that moment is killed and restarted too (ROUNDS kills in all).
Then, with every node up:

  - every node applies everything: the three nodes' document sets and
    counters, read locally on each node, become equal (waited for);
  - every acknowledged document is present, no document refused with a
    certain failure is, every present one was acknowledged or unknown;
  - counter w is at least writer w's acknowledged increments and at most
    those plus its unknown ones (an increment applied twice would exceed
    that bound, one lost would fall below it);
  - each node stops cleanly (SIGTERM), `sprig check` passes on each
    storage, and the document sets and key-value pairs read from the
    three storage directories are identical; with --dump SPRIG_STOREDUMP
    (tests/storedump_main.c) the three storages' LMDB contents are
    byte-identical too.

usage: python3 cluster_kill_leader_test.py SPRIG SPRIG_WRITE_LOAD TMP
       [--rounds N (2)] [--writers W (4)] [--settle S (3.0)]
       [--dump SPRIG_STOREDUMP]
Exit 0 when every check passes, 1 otherwise.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_procs  # noqa: E402

failures = []


def say(msg):
    print("cluster_kill_leader: " + msg, flush=True)


def bad(msg):
    failures.append(msg)
    say("FAIL: " + msg)


def outcomes(out):
    """Parse the load's outcome lines (the merged file, or the writers'
    files while it runs)."""
    docs = {"ok": set(), "fail": set(), "info": set()}
    incr = {}
    files = [out] if os.path.exists(out) else [
        os.path.join(os.path.dirname(out), f)
        for f in os.listdir(os.path.dirname(out))
        if f.startswith(os.path.basename(out) + ".w")]
    for fn in files:
        with open(fn) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 4:
                    continue  # a line being written
                kind, what, res, _ = parts
                if kind == "doc":
                    docs[res].add(int(what))
                else:
                    incr.setdefault(int(what), {"ok": 0, "fail": 0, "info": 0})
                    incr[int(what)][res] += 1
    return docs, incr


def acked(out):
    return len(outcomes(out)[0]["ok"])


def wait_acked(out, n, load, limit=60.0):
    end = time.time() + limit
    while time.time() < end and load.poll() is None:
        if acked(out) >= n:
            return True
        time.sleep(0.1)
    return False


def node_state(cl, i, writers):
    """(document ids, {writer: counter}) read locally on node i, or None."""
    rc, out, _ = cl.cli(["doc", "list", "items", "--headers", "--limit", "0"],
                        url=cl.url(i), db="load", timeout=20)
    if rc != 0:
        return None
    ids = {int(h["id"]) for h in json.loads(out)}
    return ids, counters(cl, writers, url=cl.url(i))


def counters(cl, writers, url=None, path=None):
    c = {}
    for w in range(writers):
        rc, out, _ = cl.cli(["kv", "get", "ctr%d" % w], url=url, path=path,
                            db="load", timeout=20)
        c[w] = json.loads(out)["value"] if rc == 0 else 0
    return c


def converge(cl, writers, must, limit=60.0):
    """Wait until the three nodes hold the same documents and counters,
    including every document of `must`; the state, or None."""
    end = time.time() + limit
    last = None
    while time.time() < end:
        states = [node_state(cl, i, writers) for i in cl.ids()]
        if all(states):
            last = states
            same = all(s == states[0] for s in states)
            if same and must <= states[0][0]:
                return states[0]
        time.sleep(0.5)
    if last:
        for i, s in zip(cl.ids(), last):
            say("node %d: %d documents, counters %s, lacks %d acknowledged"
                % (i, len(s[0]), s[1], len(must - s[0])))
    return None


def check_outcomes(docs, incr, state):
    ids, ctr = state
    lost = docs["ok"] - ids
    if lost:
        bad("%d acknowledged documents lost (e.g. %s)"
            % (len(lost), sorted(lost)[:5]))
    phantom = docs["fail"] & ids
    if phantom:
        bad("%d documents refused for certain are present (e.g. %s)"
            % (len(phantom), sorted(phantom)[:5]))
    stray = ids - docs["ok"] - docs["info"]
    if stray:
        bad("%d documents nobody wrote (e.g. %s)" % (len(stray),
                                                     sorted(stray)[:5]))
    for w, n in sorted(incr.items()):
        v = ctr.get(w, 0)
        if not n["ok"] <= v <= n["ok"] + n["info"]:
            bad("counter %d is %d after %d acknowledged and %d unknown "
                "increments" % (w, v, n["ok"], n["info"]))
    unknown_docs_applied = len(docs["info"] & ids)
    say("documents: %d acknowledged, %d unknown (%d of them applied), "
        "%d refused; all acknowledged present on every node"
        % (len(docs["ok"]), len(docs["info"]), unknown_docs_applied,
           len(docs["fail"])) if not lost else "documents checked")
    say("counters: %s" % ", ".join(
        "%d: %d (ok %d, unknown %d)" % (w, ctr.get(w, 0), n["ok"], n["info"])
        for w, n in sorted(incr.items())))


def storage_dump(cl, i, writers):
    rc, out, err = cl.cli(["doc", "list", "items", "--limit", "0"],
                          path=cl.path(i), db="load", timeout=60)
    if rc != 0:
        bad("node %d: doc list from the storage: %s" % (i, err.strip()))
        return None
    rc2, kv, err2 = cl.cli(["kv", "list", "--limit", "0"], path=cl.path(i),
                           db="load", timeout=60)
    if rc2 != 0:
        bad("node %d: kv list from the storage: %s" % (i, err2.strip()))
    return out, kv


def byte_dumps(cl, dump):
    raw = {}
    for i in cl.ids():
        r = subprocess.run([dump, cl.path(i)], capture_output=True,
                           timeout=120)
        if r.returncode != 0:
            bad("node %d: sprig_storedump: %s" % (i, r.stderr[-300:]))
            return
        raw[i] = r.stdout
    if all(raw[i] == raw[1] for i in cl.ids()):
        say("the 3 storages are byte-identical (%d bytes dumped)"
            % len(raw[1]))
    else:
        bad("the storages differ byte for byte (%s bytes dumped)" %
            ", ".join(str(len(raw[i])) for i in cl.ids()))


def offline_checks(cl, writers, dump):
    dumps = {}
    for i in cl.ids():
        st = cl.term(i)
        if st != 0:
            bad("node %d did not stop cleanly (status %s)" % (i, st))
    for i in cl.ids():
        rc, out, err = cl.cli(["check"], path=cl.path(i), timeout=120)
        if rc != 0:
            bad("sprig check on node %d: %s %s" % (i, out[-500:], err[-500:]))
        dumps[i] = storage_dump(cl, i, writers)
    if dumps[1] is not None and all(dumps[i] == dumps[1] for i in cl.ids()):
        say("sprig check passed on the 3 storages; their documents and "
            "key-value pairs are identical (%d bytes of listing)"
            % len(dumps[1][0]))
    else:
        bad("the three storages differ in documents or key-value pairs")
    if dump:
        byte_dumps(cl, dump)


def kill_round(cl, out, load, r, step):
    leader = cl.find_leader("probe", limit=60)
    if leader is None:
        bad("round %d: no leader found" % r)
        return False
    before = acked(out)
    t0 = time.time()
    cl.kill9(leader)
    say("round %d: kill -9 of leader node %d after %d acknowledged documents"
        % (r, leader, before))
    if not wait_acked(out, before + step, load):
        bad("round %d: no writes acknowledged after killing node %d"
            % (r, leader))
        return False
    say("round %d: %d more acknowledged %.1f s after the kill"
        % (r, step, time.time() - t0))
    cl.start(leader)
    say("round %d: node %d restarted" % (r, leader))
    return wait_acked(out, acked(out) + step, load)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sprig")
    ap.add_argument("load")
    ap.add_argument("tmp")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--dump")
    a = ap.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    cl = cluster_procs.Cluster(a.sprig, a.tmp, log=say)
    load = None
    try:
        for i in cl.ids():
            cl.start(i)
        first = cl.first_leader()
        if first is None:
            bad("no leader elected")
            return 1
        say("first leader: node %d" % first)
        out = os.path.join(a.tmp, "load.out")
        stop = os.path.join(a.tmp, "load.stop")
        load = subprocess.Popen([a.load, "--url", cl.urls(), "--out", out,
                                 "--stop", stop, "--writers",
                                 str(a.writers)])
        if not wait_acked(out, 60, load):
            bad("the load did not get going")
            return 1
        for r in range(1, a.rounds + 1):
            if not kill_round(cl, out, load, r, 40):
                break
        time.sleep(a.settle)
        open(stop, "w").close()
        if load.wait(60) != 0:
            bad("sprig-write-load exited with %s" % load.returncode)
        docs, incr = outcomes(out)
        state = converge(cl, a.writers, docs["ok"])
        if state is None:
            bad("the nodes did not converge on every acknowledged write "
                "within 60 s")
            state = node_state(cl, cl.ids()[0], a.writers) or (set(), {})
        check_outcomes(docs, incr, state)
        offline_checks(cl, a.writers, a.dump)
    finally:
        if load and load.poll() is None:
            load.kill()
        if failures:
            cl.tail_logs()
        cl.kill_all()
    if failures:
        say("%d failure(s)" % len(failures))
        return 1
    say("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
