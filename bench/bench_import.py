#!/usr/bin/env python3
"""bench_import.py BUILD_DIR [--rows N] [--runs R] [--quick] -- bulk import
from the command line, part of `make bench` (alone: `make bench-import`).

The same rows (default 100,000 of {"n", "name", "email", "score", "city"})
are imported, each timed from the command's start to its exit:
  * `sprig doc import` into a local storage (--path: the engine in the
    process, transactions of 1,000 documents);
  * `sprig --url ws://... doc import` into `sprig serve` on loopback (one
    round trip per 1,000-document transaction);
  * sqlite3's `.import` of the same rows as CSV into a table (the sqlite3
    shell, one transaction).
Every run starts from an empty store; the count is checked after each.
Prints a table and writes bench/results/import.json: the median of R runs
(default 3) and the spread (min, max), the machine's load average before
and after (the runs share the machine with whatever else runs on it).
"""
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def args():
    a = sys.argv[1:]
    if not a:
        sys.exit("usage: bench_import.py BUILD_DIR [--rows N] [--runs R] "
                 "[--quick]")
    build, rows, runs = a[0], 100000, 3
    i = 1
    while i < len(a):
        if a[i] == "--rows":
            rows, i = int(a[i + 1]), i + 1
        elif a[i] == "--runs":
            runs, i = int(a[i + 1]), i + 1
        elif a[i] == "--quick":
            rows, runs = 20000, 1
        i += 1
    return os.path.join(build, "tools", "sprig"), rows, runs


def write_rows(tmp, rows):
    nd, cs = os.path.join(tmp, "rows.ndjson"), os.path.join(tmp, "rows.csv")
    cities = ["Lisbon", "Oslo", "Lagos", "Lima", "Kyoto", "Perth"]
    with open(nd, "w") as f, open(cs, "w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["n", "name", "email", "score", "city"])
        for i in range(rows):
            r = [i, "user%d" % i, "user%d@example.com" % i, i % 1000 / 10,
                 cities[i % len(cities)]]
            f.write(json.dumps(dict(zip(["n", "name", "email", "score",
                                         "city"], r))) + "\n")
            w.writerow(r)
    return nd, cs


def timed(cmd, **kw):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (cmd, p.returncode, p.stderr))
    return dt, p.stdout


def fresh_storage(sprig, path):
    shutil.rmtree(path, ignore_errors=True)
    for cmd in (["schema", "define", "bench", "rows"],
                ["db", "create", "default", "--schema", "bench"]):
        subprocess.run([sprig, "--path", path] + cmd, check=True,
                       capture_output=True)


def run_local(sprig, tmp, nd, rows):
    path = os.path.join(tmp, "local")
    fresh_storage(sprig, path)
    dt, _ = timed([sprig, "--path", path, "doc", "import", "rows", nd,
                   "--quiet"])
    _, n = timed([sprig, "--path", path, "doc", "count", "rows"])
    assert int(n) == rows, n
    return dt


def run_url(sprig, tmp, nd, rows):
    path = os.path.join(tmp, "served")
    fresh_storage(sprig, path)
    log = open(os.path.join(tmp, "serve.log"), "w+")
    srv = subprocess.Popen([sprig, "--path", path, "serve", "--ws",
                            "127.0.0.1:0"], stdout=log, stderr=log)
    try:
        url = ""
        for _ in range(300):
            time.sleep(0.1)
            log.seek(0)
            for line in log.read().splitlines():
                if "listening on " in line:
                    url = line.split("listening on ")[1].split()[0]
            if url:
                break
        dt, _ = timed([sprig, "--url", url, "doc", "import", "rows", nd,
                       "--quiet"])
        _, n = timed([sprig, "--url", url, "doc", "count", "rows"])
        assert int(n) == rows, n
    finally:
        srv.terminate()
        srv.wait()
    return dt


def run_sqlite(tmp, cs, rows):
    db = os.path.join(tmp, "rows.sqlite")
    if os.path.exists(db):
        os.remove(db)
    dt, _ = timed(["sqlite3", db], input=".mode csv\n.import %s rows\n" % cs)
    _, n = timed(["sqlite3", db, "select count(*) from rows"])
    assert int(n) == rows, n
    return dt


def main():
    sprig, rows, runs = args()
    if not shutil.which("sqlite3"):
        sys.exit("bench_import: sqlite3 is not installed "
                 "(scripts/deps.sh bench)")
    tmp = tempfile.mkdtemp(prefix="sprig-import.")
    load0 = os.getloadavg()
    try:
        nd, cs = write_rows(tmp, rows)
        peers = [("sprig doc import (local --path)",
                  lambda: run_local(sprig, tmp, nd, rows)),
                 ("sprig doc import (--url ws:// loopback)",
                  lambda: run_url(sprig, tmp, nd, rows)),
                 ("sqlite3 .import (CSV, local)",
                  lambda: run_sqlite(tmp, cs, rows))]
        times = {name: [] for name, _ in peers}
        for _ in range(runs):  # interleaved, so load hits every peer alike
            for name, fn in peers:
                times[name].append(fn())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()
    results = []
    print("bulk import of %d rows, median of %d run(s); load average "
          "%.1f before, %.1f after (%d cores)" %
          (rows, runs, load0[0], load1[0], os.cpu_count()))
    print("%-42s %10s %12s %s" % ("", "seconds", "rows/s", "(min-max s)"))
    for name, ts in times.items():
        med = statistics.median(ts)
        results.append({"peer": name, "rows": rows, "runs": runs,
                        "seconds_median": round(med, 3),
                        "seconds_min": round(min(ts), 3),
                        "seconds_max": round(max(ts), 3),
                        "rows_per_second": round(rows / med)})
        print("%-42s %10.2f %12.0f (%.2f-%.2f)" %
              (name, med, rows / med, min(ts), max(ts)))
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "import.json"),
              "w") as f:
        json.dump({"benchmark": "import", "load_before": load0[0],
                   "load_after": load1[0], "cores": os.cpu_count(),
                   "results": results}, f, indent=2)
        f.write("\n")


main()
