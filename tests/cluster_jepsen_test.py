"""cluster_jepsen_test.py -- a Jepsen-style linearizability run against a
real 3-process cluster (issue 18, "Done when"; ctest cluster_jepsen, and
`make jepsen` for the long form).

Three `sprig serve --cluster` processes on loopback (tests/cluster_procs.py).
`sprig-lin-record` (tools/lincheck/lin_record.c) runs C client processes
doing writes, compare-and-sets and (by --reads) reads on K registers
through the multi-URL client, recording every invocation and outcome.
Meanwhile a nemesis thread injects faults, in a seeded random order:

  kill      kill -9 of the leader, restarted 1-2 s later (it rejoins);
  pause     SIGSTOP of the leader for 2-3 s (longer than the 1 s election
            timeout: the others elect a new leader while the old one keeps
            its sockets and answers nothing -- a partition as the others
            see it), then SIGCONT: it comes back believing it leads;
  pause-f   SIGSTOP of a follower for 1.5-2.5 s, then SIGCONT;

with 1-2 s of calm after each.  Then tools/lincheck/lincheck.py decides
whether one order of the operations explains every answer; the run fails
on a non-linearizable history (or, with --expect-violation, the negative
control, on a linearizable one: reads on any node are not linearizable, and
the checker must say so).  The seed (SPRIG_SEED, else the time) picks the
recorder's operations and the fault schedule, and is printed.

With --control, a short control round follows (reads on any node, the
same faults, 5 x 40 operations): it must be found NOT linearizable, which
shows that the checker can fail on this very setup.  A control round may
by chance record no stale read; it is tried up to three times (each with
the next seed) before the test says the control failed.

usage: python3 cluster_jepsen_test.py SPRIG SPRIG_LIN_RECORD TMP
       [--rounds R (1)] [--clients C (5)] [--keys K (3)] [--ops M (60)]
       [--interval-ms I (300)]
       [--reads linearizable (default)|none|client|any]
       [--expect-violation] [--control] [--check-limit S (300)]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_procs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "tools", "lincheck", "lincheck.py")


def say(msg):
    print("cluster_jepsen: " + msg, flush=True)


class Nemesis(threading.Thread):
    """Faults in a seeded order until `done` is set."""

    def __init__(self, cl, rng, done):
        super().__init__(daemon=True)
        self.cl, self.rng, self.done = cl, rng, done
        self.events = []  # (monotonic ns, text)
        self.counts = {"kill": 0, "pause": 0, "pause-f": 0}
        self.error = None

    def note(self, text):
        self.events.append((time.monotonic_ns(), text))
        say("nemesis: " + text)

    def sleep(self, lo, hi):
        self.done.wait(self.rng.uniform(lo, hi))

    def leader(self):
        return self.cl.find_leader("probe", limit=15)

    def kill(self):
        leader = self.leader()
        if leader is None:
            return self.note("kill: no leader found")
        self.cl.kill9(leader)
        self.note("kill -9 of leader node %d" % leader)
        self.sleep(1.0, 2.0)
        self.cl.start(leader)
        self.note("node %d restarted" % leader)
        self.counts["kill"] += 1

    def pause(self):
        leader = self.leader()
        if leader is None:
            return self.note("pause: no leader found")
        self.cl.stop(leader)
        self.note("SIGSTOP of leader node %d" % leader)
        self.sleep(2.0, 3.0)
        self.cl.cont(leader)
        self.note("SIGCONT of node %d (the old leader)" % leader)
        self.counts["pause"] += 1

    def pause_follower(self):
        leader = self.leader()
        others = [i for i in self.cl.ids() if i != leader]
        if leader is None or not others:
            return self.note("pause-f: no leader found")
        f = self.rng.choice(others)
        self.cl.stop(f)
        self.note("SIGSTOP of follower node %d" % f)
        self.sleep(1.5, 2.5)
        self.cl.cont(f)
        self.note("SIGCONT of node %d (a follower)" % f)
        self.counts["pause-f"] += 1

    def run(self):
        faults = [self.kill, self.pause, self.pause_follower]
        try:
            self.sleep(1.0, 2.0)
            while not self.done.is_set():
                self.rng.shuffle(faults)
                for fault in faults:
                    if self.done.is_set():
                        break
                    fault()
                    self.sleep(1.0, 2.0)
        except Exception as e:  # reported by the main thread
            self.error = repr(e)
        for i in self.cl.ids():
            self.cl.cont(i)


def summary(history):
    counts = {}
    with open(history) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            e = json.loads(line)
            if e["type"] == "invoke":
                continue
            k = "%s %s" % (e["f"], e["type"])
            counts[k] = counts.get(k, 0) + 1
    return counts


def check(history, limit):
    """(linearizable?, checker output); None when it ran out of time."""
    try:
        r = subprocess.run([sys.executable, CHECKER, history],
                           capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None, "the checker ran over %d s" % limit
    if r.returncode not in (0, 1):
        return None, "checker error: " + r.stdout + r.stderr
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def one_round(a, r, seed, totals):
    tmp = os.path.join(a.tmp, "round%d" % r)
    shutil.rmtree(tmp, ignore_errors=True)
    cl = cluster_procs.Cluster(a.sprig, tmp, log=say)
    done = threading.Event()
    nem = Nemesis(cl, random.Random(seed), done)
    try:
        for i in cl.ids():
            cl.start(i)
        first = cl.first_leader()
        if first is None:
            say("FAIL: no leader elected")
            return False
        history = os.path.join(tmp, "history.jsonl")
        rec = subprocess.Popen(
            [a.record, "--url", cl.urls(), "--out", history, "--clients",
             str(a.clients), "--keys", str(a.keys), "--ops", str(a.ops),
             "--seed", str(seed), "--timeout-ms", "2000", "--interval-ms",
             str(a.interval_ms), "--reads", a.reads])
        nem.start()
        t0 = time.time()
        rc = rec.wait()
        done.set()
        nem.join(60)
        took = time.time() - t0
    finally:
        done.set()
        cl.kill_all()
    if rc != 0 or not os.path.exists(history):
        say("FAIL: sprig-lin-record exited with %s" % rc)
        return False
    if nem.error:
        say("FAIL: the nemesis failed: %s" % nem.error)
        return False
    counts = summary(history)
    ops = sum(counts.values())
    lin, out = check(history, a.check_limit)
    say("round %d (seed %d): %d operations in %.1f s, %s; faults %s; "
        "checker: %s" % (r, seed, ops, took, json.dumps(counts, sort_keys=True),
                         json.dumps(nem.counts, sort_keys=True), out))
    totals["ops"] += ops
    for k, v in nem.counts.items():
        totals[k] += v
    if lin is None:
        say("FAIL: " + out)
        return False
    if a.expect_violation:
        if lin:
            say("FAIL: reads %s, yet the history checked linearizable"
                % a.reads)
        return not lin
    if not lin:
        say("FAIL: not linearizable (history kept in %s)" % history)
        for t, text in nem.events:
            say("  nemesis at %d: %s" % (t, text))
    return lin


def control(a, seed):
    c = argparse.Namespace(**vars(a))
    c.reads, c.expect_violation, c.clients, c.ops = "any", True, 5, 40
    c.interval_ms = 100
    totals = {"ops": 0, "kill": 0, "pause": 0, "pause-f": 0}
    for t in range(3):
        say("control round %d: reads on any node must be caught" % (t + 1))
        if one_round(c, 100 + t, seed + t, totals):
            return True
    say("FAIL: the control never showed a violation in 3 rounds")
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sprig")
    ap.add_argument("record")
    ap.add_argument("tmp")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--ops", type=int, default=60)
    ap.add_argument("--interval-ms", type=int, default=300)
    ap.add_argument("--reads", default="linearizable",
                    choices=["none", "client", "any", "linearizable"])
    ap.add_argument("--expect-violation", action="store_true")
    ap.add_argument("--control", action="store_true")
    ap.add_argument("--check-limit", type=int, default=300)
    a = ap.parse_args()
    env = os.environ.get("SPRIG_SEED")
    seed = int(env) if env else int(time.time() * 1000) % 1000000007
    say("seed %d (SPRIG_SEED=%d replays the schedule and the operations)"
        % (seed, seed))
    os.makedirs(a.tmp, exist_ok=True)
    totals = {"ops": 0, "kill": 0, "pause": 0, "pause-f": 0}
    ok = True
    for r in range(1, a.rounds + 1):
        ok = one_round(a, r, seed + r - 1, totals) and ok
    if a.control:
        ok = control(a, seed + a.rounds) and ok
    say("%d round(s), %d operations, %d kills, %d leader stops, "
        "%d follower stops: %s" % (a.rounds, totals["ops"], totals["kill"],
                                   totals["pause"], totals["pause-f"],
                                   "passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
