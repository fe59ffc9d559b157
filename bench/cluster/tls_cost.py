#!/usr/bin/env python3
"""tls_cost.py -- what node-to-node TLS costs (issue 18; `make
bench-cluster-tls`): committed writes per second and p50/p99 latency on
three loopback `sprig serve --cluster` nodes, plain TCP beside TLS (the
cluster file's "tls" object, certificates of a CA made with openssl at run
time), with 1 and 64 writes in flight, by bench/cluster_load (the load of
`make bench-cluster`: sprig_kv_set of a 100-byte value through the
multi-URL client).  Rounds alternate plain and TLS on fresh clusters, so
a change in the machine's load hits both; the median of the rounds is
reported, with the load average beside it (the machine is shared: the
numbers are rough).

--callgrind S: instead, run every node of each cluster under callgrind,
write for S seconds (1 in flight) after a warm-up of S/4, and report the
instructions all three nodes spent per committed write (the counts
callgrind dumps at the end of those S seconds, zeroed at their start,
divided by the writes made), and the same less what the nodes spend
idle (heartbeats, timers: measured over S idle seconds before).

usage: tls_cost.py BUILD_DIR [--seconds S (5)] [--rounds R (3)]
                             [--callgrind S] [--out JSON]
"""
import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cluster as bc  # noqa: E402


def make_certs(d):
    def ossl(*a):
        subprocess.run(["openssl"] + list(a), check=True,
                       capture_output=True)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/ca.key",
         "-out", d + "/ca.pem", "-days", "30", "-subj", "/CN=bench CA")
    for i in (1, 2, 3):
        n = "%s/n%d" % (d, i)
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", n + ".key", "-out", n + ".csr", "-subj",
             "/CN=node %d" % i)
        ossl("x509", "-req", "-in", n + ".csr", "-CA", d + "/ca.pem",
             "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", n + ".pem",
             "-days", "30")


def start_nodes(sprig, d, tls, wrap=None):
    nodes = [{"id": i, "raft": "127.0.0.1:%d" % bc.free_port(),
              "ws": "127.0.0.1:%d" % bc.free_port()} for i in (1, 2, 3)]
    for n in nodes:
        n["url"] = "ws://" + n["ws"]
    for n in nodes:
        conf = {"id": n["id"], "raft": n["raft"], "url": n["url"],
                "bootstrap": True,
                "peers": [{"id": p["id"], "raft": p["raft"], "url": p["url"]}
                          for p in nodes if p is not n]}
        if tls:
            conf["tls"] = {"ca": "ca.pem", "cert": "n%d.pem" % n["id"],
                           "key": "n%d.key" % n["id"]}
        path = os.path.join(d, "node%d.json" % n["id"])
        with open(path, "w") as f:
            json.dump(conf, f)
        log = open(os.path.join(d, "node%d.log" % n["id"]), "w")
        cmd = [sprig, "--path", os.path.join(d, "data%d" % n["id"]), "serve",
               "--cluster", path, "--ws", n["ws"], "--quic", "off",
               "--insecure-open"]
        if wrap:
            cmd = wrap(n["id"]) + cmd
        n["proc"] = bc.start(cmd, log)
    return nodes


def round_trip(build, sprig, tmp, tls, seconds, k):
    d = os.path.join(tmp, "%s%d" % ("tls" if tls else "tcp", k))
    os.makedirs(d)
    if tls:
        for f in glob.glob(os.path.join(tmp, "n*.*")) + \
                glob.glob(os.path.join(tmp, "ca.*")):
            shutil.copy(f, d)
    nodes = start_nodes(sprig, d, tls)
    bc.sprig_leader(build, nodes, deadline_s=60)
    urls = ",".join(n["url"] for n in nodes)
    out = {}
    for inflight in (1, 64):
        r = bc.run_load(build, ["--sprig", urls, "--inflight", str(inflight),
                                "--seconds", str(seconds)],
                        timeout=seconds + 60)
        r["load_avg"] = bc.load_avg()
        out[inflight] = r
        print("%s %2d in flight: %s" % ("tls" if tls else "tcp", inflight,
                                         json.dumps(r)), flush=True)
    bc.stop_all()
    bc.PROCS.clear()
    return out


def throughput(build, sprig, tmp, seconds, rounds):
    runs = {"tcp": [], "tls": []}
    for k in range(rounds):
        for tls in (False, True):
            runs["tls" if tls else "tcp"].append(
                round_trip(build, sprig, tmp, tls, seconds, k))
    res = {}
    for mode, rs in runs.items():
        for inflight in (1, 64):
            key = "%s_%d" % (mode, inflight)
            res[key] = {f: statistics.median(r[inflight][f] for r in rs)
                        for f in ("writes_per_s", "p50_ms", "p99_ms")}
            res[key]["errors"] = sum(r[inflight]["errors"] for r in rs)
            res[key]["load_avg"] = [r[inflight]["load_avg"] for r in rs]
    for inflight in (1, 64):
        a, b = res["tcp_%d" % inflight], res["tls_%d" % inflight]
        res["tls_over_tcp_%d" % inflight] = round(
            b["writes_per_s"] / a["writes_per_s"], 3) if a[
                "writes_per_s"] else None
    return res


def dump_total(pid):
    """Ask callgrind for a dump of process `pid` now; its total Ir."""
    subprocess.run(["callgrind_control", "-d", str(pid)],
                   capture_output=True, timeout=120)


def callgrind_cost(build, sprig, tmp, tls, n):
    d = os.path.join(tmp, "cg-%s" % ("tls" if tls else "tcp"))
    os.makedirs(d)
    if tls:
        for f in glob.glob(os.path.join(tmp, "n*.*")) + \
                glob.glob(os.path.join(tmp, "ca.*")):
            shutil.copy(f, d)

    def wrap(i):
        return ["valgrind", "--tool=callgrind",
                "--callgrind-out-file=%s/cg.%d.%%p" % (d, i)]
    nodes = start_nodes(sprig, d, tls, wrap)
    bc.sprig_leader(build, nodes, deadline_s=300)
    urls = ",".join(n["url"] for n in nodes)

    def writes(secs):
        return bc.run_load(build, ["--sprig", urls, "--inflight", "1",
                                   "--seconds", str(secs)], timeout=3600)

    def totals():
        tot = 0
        for nd in nodes:
            for f in glob.glob("%s/cg.%d.*" % (d, nd["id"])):
                os.unlink(f)
            dump_total(nd["proc"].pid)
        time.sleep(1)
        for nd in nodes:
            for f in glob.glob("%s/cg.%d.*" % (d, nd["id"])):
                m = re.search(r"^summary: (\d+)", open(f).read(), re.M)
                tot += int(m.group(1)) if m else 0
        return tot

    writes(max(n / 4, 1))
    totals()  # zeroes the counters (callgrind does after each dump)
    t0 = time.time()
    time.sleep(n)
    idle = totals() / (time.time() - t0)  # heartbeats, timers: per second
    t0 = time.time()
    r = writes(n)
    ir = totals()
    secs = time.time() - t0
    bc.stop_all()
    bc.PROCS.clear()
    w = r.get("writes") or 0
    net = ir - idle * secs
    return {"writes": w, "seconds": round(secs, 2), "ir": ir,
            "idle_ir_per_s": round(idle),
            "ir_per_write": round(ir / w) if w else None,
            "ir_per_write_less_idle": round(net / w) if w else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--callgrind", type=float, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()
    sprig = os.path.join(a.build, "tools", "sprig")
    tmp = tempfile.mkdtemp(prefix="sprig-tls-cost-")
    try:
        make_certs(tmp)
        if a.callgrind:
            res = {"callgrind": {
                m: callgrind_cost(a.build, sprig, tmp, m == "tls",
                                  a.callgrind) for m in ("tcp", "tls")}}
        else:
            res = throughput(a.build, sprig, tmp, a.seconds, a.rounds)
        res["uptime_load_avg_end"] = bc.load_avg()
        print(json.dumps(res, indent=1))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        bc.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
