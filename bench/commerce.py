#!/usr/bin/env python3
"""commerce.py -- the commerce benchmark of `make bench` (bench/run.sh runs
it): BonsaiDb's headline workload, a shop of categories, products,
customers, orders and product ratings, driven by `bench_commerce` (see
bench/commerce.c for the mix) from 16 client threads, each with its own
connection, against

  Sprig       `sprig serve --schema bench/commerce-schema.json` at full
              durability, on loopback, through the public C client API;
  PostgreSQL  the same data and mix over libpq, fsync=on,
              synchronous_commit=on (the same durability: an acknowledged
              order or rating is on disk),

both started here from their Debian packages, in a temporary directory,
on ephemeral ports, in the same run, and stopped by their pid at the end
(even on failure or Ctrl-C).  Each side is loaded once, untimed; then
--runs runs per side of --seconds each (after a 1 s warm-up in the same
connections), taking turns in an alternating order.  Reported: each
side's operations per second (median, min - max), Sprig's ratio of the
medians (target: ahead, > 1.0x) with the spread of the per-run ratios,
and per operation kind the rate and the median over the runs of its p50
and p99 latency.  Every answer and the totals are checked by the driver;
a failed run fails the row.

Writes bench/results/commerce.json (read by bench/report.py).

usage: commerce.py BUILD_DIR [--runs N (5)] [--seconds S (4)]
                   [--clients N (16)] [--seed N] [--quick] [--out JSON]
Only the Python standard library is used.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import bench_net
from bench_net import log, die, run, start, stop_all, tail, wait_for

bench_net.PROG = "commerce"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(ROOT, "bench", "commerce-schema.json")
TARGET = 1.0        # design/bench.md: "ahead" of PostgreSQL

def start_sprig(build, tmp):
    cli = os.path.join(build, "tools", "sprig")
    if not os.access(cli, os.X_OK):
        die("%s is not built" % cli)
    logf = os.path.join(tmp, "sprig.log")
    # the driver does not log in (issue 10): the server runs open here
    p = start("sprig", [cli, "--path", os.path.join(tmp, "sprig"),
                        "--schema", SCHEMA, "serve", "--ws", "127.0.0.1:0",
                        "--durability", "full", "--insecure-open"], logf)

    def port():
        m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)", tail(logf, 50))
        return m and int(m.group(1))
    return "ws://127.0.0.1:%d" % wait_for("sprig serve", port, p)


def start_postgres(tmp):
    """bench_net's PostgreSQL (fsync on, ephemeral port); the conninfo and
    the server's version."""
    _, version, port, _ = bench_net.start_postgres(tmp, 60)
    return ("host=127.0.0.1 port=%d user=postgres dbname=postgres" % port,
            version)


def drive(driver, side, target, args, tmp, run_no, load=False):
    """One invocation of bench_commerce; its JSON."""
    out = os.path.join(tmp, "%s-%d.json" % (side, run_no))
    argv = [driver, "--sprig" if side == "sprig" else "--pg", target,
            "--clients", str(args.clients), "--seconds", str(args.seconds),
            "--warmup", str(args.warmup), "--seed", str(args.seed),
            "--run", str(run_no), "--out", out]
    if load:
        argv.append("--load")
    if args.quick:
        argv.append("--small")
    rc, so, se = run(argv, timeout=120 + 4 * args.seconds)
    if rc:
        raise RuntimeError("bench_commerce --%s failed (status %d): %s" % (
            side, rc, (se.strip() or so.strip())[-800:]))
    return json.load(open(out))


def summarize(runs):
    rates = [r["ops_per_s"] for r in runs]
    s = {"median": statistics.median(rates), "min": min(rates),
         "max": max(rates), "runs": [round(x, 1) for x in rates],
         "retries": sum(r["retries"] for r in runs), "kinds": {}}
    for k in runs[0]["kinds"]:
        ks = [r["kinds"][k] for r in runs]
        s["kinds"][k] = {f: round(statistics.median(x[f] for x in ks), 3)
                         for f in ("per_s", "p50_ms", "p99_ms")}
    return s


def measure(args, driver, targets, tmp):
    res = {"sprig": [], "postgres": []}
    for side in ("sprig", "postgres"):
        log("loading %s (and a first, untimed run)" % side)
        drive(driver, side, targets[side], args, tmp, 0, load=True)
    for i in range(1, args.runs + 1):
        order = ("sprig", "postgres") if i % 2 else ("postgres", "sprig")
        for side in order:
            res[side].append(drive(driver, side, targets[side], args, tmp, i))
        log("run %d: Sprig %.0f ops/s, PostgreSQL %.0f ops/s" % (
            i, res["sprig"][-1]["ops_per_s"],
            res["postgres"][-1]["ops_per_s"]))
    return res


def result(args, res, pg_version, seconds, error=None):
    out = {"bench": "commerce", "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                       time.gmtime()),
           "machine": {"nproc": os.cpu_count(), "kernel": platform.release()},
           "postgres": pg_version, "clients": args.clients,
           "seconds_per_run": args.seconds, "warmup": args.warmup,
           "runs": args.runs, "seed": args.seed, "quick": args.quick,
           "seconds": round(seconds, 1),
           "mix": {"product-lookup": 40, "category-query": 15,
                   "rating-query": 20, "order": 15, "rate": 10},
           "failed": error is not None}
    if error is not None:
        out["error"] = error
        return out
    out["series"] = {k: summarize(v) for k, v in res.items()}
    per = [s["ops_per_s"] / p["ops_per_s"]
           for s, p in zip(res["sprig"], res["postgres"])]
    ratio = out["series"]["sprig"]["median"] / \
        out["series"]["postgres"]["median"]
    out["ratio"] = {"vs": "postgres", "ratio": round(ratio, 3),
                    "min": round(min(per), 3), "max": round(max(per), 3),
                    "target": TARGET, "met": ratio > TARGET}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("SPRIG_SEED", time.time())))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                  "commerce.json"))
    args = ap.parse_args()
    if args.quick:
        args.runs, args.seconds, args.warmup = 1, 1.0, 0.2
    driver = os.path.join(args.build, "bench", "bench_commerce")
    if not os.access(driver, os.X_OK):
        die("%s is not built" % driver)
    signal.signal(signal.SIGTERM, lambda s, f: die("interrupted"))
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="sprig-commerce.")
    log("seed %d (SPRIG_SEED or --seed replays it); data in %s" % (
        args.seed, tmp))
    pg_version, error, res = "", None, None
    try:
        targets = {"sprig": start_sprig(args.build, tmp)}
        targets["postgres"], pg_version = start_postgres(tmp)
        res = measure(args, driver, targets, tmp)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        error = str(e)
        log("FAILED: %s" % error)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    out = result(args, res, pg_version, time.time() - t0, error)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    if error is None:
        q = out["ratio"]
        log("Sprig / PostgreSQL: %.2fx (runs %.2f-%.2f), target > %.1fx: %s"
            % (q["ratio"], q["min"], q["max"], TARGET,
               "met" if q["met"] else "MISSED"))
    log("wrote %s" % args.out)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
