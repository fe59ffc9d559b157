"""cluster_procs.py -- three real `sprig serve --cluster` processes on
loopback for the failure tests of issue 18 (tests/cluster_kill_leader_test.py,
tests/cluster_jepsen_test.py): ephemeral ports, one cluster file and one
storage per node, start / kill -9 / SIGTERM / SIGSTOP / SIGCONT of a node,
and finding the leader.

The leader is the node that accepts a write sent to it alone with
following turned off (the CLI's --no-follow): a follower refuses it with
SPRIG_ENOTLEADER.  Every CLI call runs
with a time limit, so a stopped (SIGSTOP) node cannot hang the harness.
Standard library only.
"""

import json
import os
import signal
import socket
import subprocess
import time


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    """Three nodes 1..3 under directory `tmp`, served by the CLI `sprig`."""

    def __init__(self, sprig, tmp, n=3, log=print):
        self.sprig, self.tmp, self.n, self.log = sprig, tmp, n, log
        ports = free_ports(2 * n)
        self.raft = {i: ports[i - 1] for i in range(1, n + 1)}
        self.ws = {i: ports[n + i - 1] for i in range(1, n + 1)}
        self.procs = {}
        self.stopped = set()  # SIGSTOPped nodes
        os.makedirs(tmp, exist_ok=True)
        for i in self.ids():
            peers = [self.peer(j) for j in self.ids() if j != i]
            conf = dict(self.peer(i), bootstrap=True, peers=peers)
            with open(self.conf(i), "w") as f:
                json.dump(conf, f)

    def ids(self):
        return list(range(1, self.n + 1))

    def url(self, i):
        return "ws://127.0.0.1:%d" % self.ws[i]

    def urls(self):
        return ",".join(self.url(i) for i in self.ids())

    def peer(self, i):
        return {"id": i, "raft": "127.0.0.1:%d" % self.raft[i],
                "url": self.url(i)}

    def conf(self, i):
        return os.path.join(self.tmp, "c%d.json" % i)

    def path(self, i):
        return os.path.join(self.tmp, "n%d" % i)

    def logfile(self, i):
        return os.path.join(self.tmp, "n%d.log" % i)

    # ---- processes -------------------------------------------------------

    def start(self, i):
        out = open(self.logfile(i), "a")
        out.write("=== start at %.3f\n" % time.time())
        out.flush()
        self.procs[i] = subprocess.Popen(
            [self.sprig, "serve", "--path", self.path(i), "--ws",
             "127.0.0.1:%d" % self.ws[i], "--quic", "off", "--insecure-open",
             "--cluster", self.conf(i)],
            stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def alive(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def kill9(self, i):
        self.cont(i)
        p = self.procs.pop(i)
        p.kill()
        p.wait()

    def term(self, i, timeout=30):
        """A clean stop; returns the exit status (None: it had to be killed)."""
        self.cont(i)
        p = self.procs.pop(i)
        p.terminate()
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None

    def stop(self, i):
        os.kill(self.procs[i].pid, signal.SIGSTOP)
        self.stopped.add(i)

    def cont(self, i):
        if i in self.stopped and i in self.procs:
            os.kill(self.procs[i].pid, signal.SIGCONT)
        self.stopped.discard(i)

    def kill_all(self):
        for i in list(self.procs):
            self.kill9(i)

    # ---- the CLI ---------------------------------------------------------

    def cli(self, args, url=None, path=None, db=None, timeout=10,
            no_follow=False):
        """(exit status, stdout, stderr); status None on a timeout."""
        cmd = [self.sprig]
        cmd += ["--url", url] if url else ["--path", path]
        if db:
            cmd += ["--db", db]
        if no_follow:
            cmd += ["--no-follow"]
        try:
            r = subprocess.run(cmd + args, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "", "timed out"
        return r.returncode, r.stdout, r.stderr

    def find_leader(self, db, among=None, limit=60.0):
        """The node that takes a key-value write of `db` alone (kv set
        leader.probe), trying the nodes in turn for `limit` seconds."""
        among = among or [i for i in self.ids()
                          if self.alive(i) and i not in self.stopped]
        end = time.time() + limit
        while time.time() < end:
            for i in among:
                rc, _, _ = self.cli(["kv", "set", "leader.probe", str(i)],
                                    url=self.url(i), db=db, timeout=10,
                                    no_follow=True)
                if rc == 0:
                    return i
            time.sleep(0.2)
        return None

    def first_leader(self, limit=180.0):
        """The first leader: where the schema definition of the probe
        database goes through (it is local only once it exists), then
        that database is created."""
        end = time.time() + limit
        while time.time() < end:
            for i in self.ids():
                rc, _, _ = self.cli(["schema", "define", "probe",
                                     "p:natural"], url=self.url(i),
                                    timeout=10, no_follow=True)
                if rc == 0:
                    return i if self.create_db("probe", "probe", end) else None
            time.sleep(0.2)
        return None

    def create_db(self, name, schema, end):
        """Create database `name` through the cluster (the client
        follows the leader), retrying until `end`; an existing one is
        fine (a retry after an unknown outcome)."""
        while time.time() < end:
            rc, _, err = self.cli(["db", "create", name, "--schema", schema],
                                  url=self.urls(), timeout=10)
            if rc == 0 or "exists" in err:
                return True
            self.log("db create %s: %s (retrying)" % (name, err.strip()))
            time.sleep(0.3)
        return False

    def tail_logs(self, lines=30):
        for i in self.ids():
            try:
                with open(self.logfile(i)) as f:
                    text = f.readlines()[-lines:]
            except OSError:
                text = []
            self.log("--- node %d log (last %d lines)" % (i, lines))
            for line in text:
                self.log("    " + line.rstrip())
