#!/usr/bin/env python3
"""callgrind.py -- instruction counts beside the CPU-bound ratios of
`make bench` (bench/run.sh runs it): for every CPU-bound row, the same
workload as bench_local's (smaller: N operations) for Sprig and for each
peer, each under `valgrind --tool=callgrind --instr-atstart=no` running
`bench_local --cg ROW SERIES --n N`, which leaves its set-up
uninstrumented and counts only the measured operations, on every thread
(Sprig's writer thread included; see bench/wl_cg.c).  Instructions per
operation do not move with the machine's load, so they stand beside the
time ratios of a shared, noisy machine.

Writes bench/results/callgrind.json: per row, N, each series'
instructions and instructions per operation, and Sprig's ratio against
each peer (lower is better) with its target where design/bench.md or
issue 9 sets one.  Two valgrind processes run at a time (the machine has
2 cores); the whole takes about two minutes.

usage: callgrind.py BUILD_DIR [--seed N] [--quick] [--out JSON]
Only the Python standard library is used.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# row, operations, series (Sprig first), [(peer, target of Sprig's
# instructions / the peer's, or None)]
ROWS = [
    ("local-insert-batch", 20000, ["sprig", "lmdb", "sqlite"],
     [("lmdb", 1.3), ("sqlite", None)]),
    ("local-get", 20000, ["sprig", "lmdb", "sqlite"],
     [("lmdb", 1.3), ("sqlite", None)]),
    ("local-get-miss", 20000, ["sprig", "lmdb"], [("lmdb", None)]),
    ("local-insert-named", 20000, ["sprig"], []),
    ("local-view-insert", 5000, ["sprig", "sprig-noview", "sqlite"],
     [("sqlite", 1.5), ("sprig-noview", None)]),
    ("local-view-query", 10000, ["sprig", "sqlite"], [("sqlite", None)]),
    ("local-view-reduce", 10000, ["sprig", "sqlite"], [("sqlite", None)]),
    ("local-view-grouped", 10000, ["sprig", "sqlite"], [("sqlite", None)]),
    ("kv-set-lazy-1t", 10000, ["sprig", "lmdb"], [("lmdb", None)]),
    ("kv-incr-lazy-1t", 10000, ["sprig", "lmdb"], [("lmdb", None)]),
    ("kv-get-1t", 10000, ["sprig", "lmdb"], [("lmdb", None)]),
]

# What one operation is, per row (the unit of "instructions per op").
OPS = {
    "local-insert-batch": "document inserted (1,000 per transaction)",
    "local-get": "random get by id",
    "local-get-miss": "get of an absent id between stored ones",
    "local-insert-named": "document inserted under a random named id "
                          "(1,000 per transaction)",
    "local-view-insert": "document inserted (1,000 per transaction)",
    "local-view-query": "key query (~N/500 mappings each)",
    "local-view-reduce": "range reduce (count and sum)",
    "local-view-grouped": "grouped range reduce",
    "kv-set-lazy-1t": "set (lazy persistence)",
    "kv-incr-lazy-1t": "increment (lazy persistence)",
    "kv-get-1t": "get",
}


def log(msg):
    print("callgrind: " + msg, flush=True)


def count(valgrind, binary, row, series, n, seed, tmp):
    """Instructions of one engine's part of one row, and its operations."""
    d = tempfile.mkdtemp(prefix="%s-%s." % (row, series), dir=tmp)
    out = os.path.join(d, "cg.out")
    argv = [valgrind, "-q", "--tool=callgrind", "--instr-atstart=no",
            "--callgrind-out-file=" + out, binary, "--cg", row, series,
            "--n", str(n), "--seed", str(seed), "--dir",
            os.path.join(d, "data")]
    t0 = time.time()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=900)
    so, se = r.stdout.decode(errors="replace"), r.stderr.decode(
        errors="replace")
    m = re.search(r"^cg-ops: (\d+)$", so, re.M)
    dumps = glob.glob(out + ".*")
    if r.returncode or not m or not dumps:
        raise RuntimeError("%s %s: status %d: %s" % (
            row, series, r.returncode, (se.strip() or so.strip())[-600:]))
    text = open(dumps[0], errors="replace").read()
    t = re.search(r"^totals: (\d+)", text, re.M) or \
        re.search(r"^summary: (\d+)", text, re.M)
    if not t:
        raise RuntimeError("%s %s: no totals in %s" % (row, series, dumps[0]))
    shutil.rmtree(d, ignore_errors=True)
    return int(t.group(1)), int(m.group(1)), time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("SPRIG_SEED", time.time())))
    ap.add_argument("--quick", action="store_true",
                    help="a tenth of the operations")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                  "callgrind.json"))
    args = ap.parse_args()
    valgrind = shutil.which("valgrind")
    binary = os.path.join(args.build, "bench", "bench_local")
    if not valgrind:
        sys.exit("callgrind: valgrind is not installed "
                 "(scripts/deps.sh --bench)")
    if not os.access(binary, os.X_OK):
        sys.exit("callgrind: %s is not built" % binary)
    version = subprocess.run([valgrind, "--version"], stdout=subprocess.PIPE
                             ).stdout.decode().strip()
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="sprig-callgrind.")
    log("%s, seed %d" % (version, args.seed))
    jobs, rows, failed = {}, {}, []
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
            for row, n, series, _ in ROWS:
                n = max(100, n // 10) if args.quick else n
                for s in series:
                    jobs[(row, s)] = ex.submit(count, valgrind, binary, row,
                                               s, n, args.seed, tmp)
            for row, n, series, peers in ROWS:
                rows[row] = one_row(row, series, peers, jobs, failed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"bench": "callgrind", "valgrind": version, "seed": args.seed,
           "quick": args.quick, "seconds": round(time.time() - t0, 1),
           "rows": rows, "failed": failed}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    log("wrote %s (%.0f s)" % (args.out, time.time() - t0))
    return 1 if failed else 0


def one_row(row, series, peers, jobs, failed):
    res = {"ops": OPS.get(row, "operation"), "series": {}, "ratios": []}
    for s in series:
        try:
            instr, ops, secs = jobs[(row, s)].result()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            log("FAILED: %s" % e)
            failed.append("%s %s" % (row, s))
            continue
        res["n"] = ops
        res["series"][s] = {"instructions": instr,
                            "per_op": round(instr / ops, 1)}
        log("%-20s %-13s %12.0f instructions/op  (%d ops, %.0f s)" % (
            row, s, instr / ops, ops, secs))
    sp = res["series"].get("sprig")
    for peer, target in peers:
        p = res["series"].get(peer)
        if not sp or not p:
            continue
        ratio = sp["per_op"] / p["per_op"]
        q = {"vs": peer, "ratio": round(ratio, 3), "target": target,
             "met": None if target is None else ratio <= target}
        res["ratios"].append(q)
        log("%-20s sprig / %-13s %.2fx instructions%s" % (
            row, peer, ratio, "" if target is None else
            "  target <= %.1fx: %s" % (target, "met" if q["met"]
                                        else "MISSED")))
    return res


if __name__ == "__main__":
    sys.exit(main())
