#!/usr/bin/env python3
"""auth_callgrind.py -- instructions per request with permission checks on
and off (issue 10), beside auth_bench's requests/s ratio (`make
bench-auth` runs both).  Instruction counts do not move with the machine's
load, so they stand beside the time ratio of a shared, noisy machine.

For each side a `sprig serve` runs under `valgrind --tool=callgrind` on a
fresh storage (database "app", collection docs): "off" with
--insecure-open, "on" checking every request against user "reader",
granted like auth_bench's (document actions on sprig.db.a*.collection.*
among 8 unrelated statements).  sprig-bench (`--user reader
--password-env` on the checking side) then runs db.get with 50 clients
twice, N1 and N2 requests; the server's counters are zeroed before and
dumped after each run (callgrind_control), and the instructions per
request are (I(N2) - I(N1)) / (N2 - N1): connecting and logging in cancel
out.  Every thread of the server counts (loop, workers).

Writes bench/results/auth_callgrind.json and prints one line per side and
their ratio.  usage: auth_callgrind.py BUILD_DIR [--quick] [--out JSON]
Only the Python standard library is used.
"""
import argparse
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
PASSWORD = "auth-callgrind-pw"


def run(argv, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=900, **kw)
    if r.returncode:
        raise RuntimeError("%s: status %d: %s" % (
            " ".join(argv[:4]), r.returncode,
            (r.stderr or r.stdout).decode(errors="replace")[-400:]))
    return r.stdout.decode(errors="replace")


def storage(sprig, d, checks):
    """A fresh storage; with checks, user reader and its grants."""
    st = os.path.join(d, "st")
    if checks:
        env = dict(os.environ, CG_PW=PASSWORD)
        a = [sprig, "--path", st, "admin"]
        run(a + ["user", "create", "reader", "--password-env", "CG_PW",
                 "--hash-cost", "min"], env=env)
        run(a + ["group", "create", "readers"])
        for i in range(8):
            run(a + ["group", "grant", "readers", "kv,document",
                     "sprig.db.other%d" % i])
        run(a + ["group", "grant", "readers", "document",
                 "sprig.db.a*.collection.*"])
        run(a + ["user", "add-group", "reader", "readers"])
    return st


def totals(path):
    text = open(path, errors="replace").read()
    t = re.search(r"^totals: (\d+)", text, re.M) or \
        re.search(r"^summary: (\d+)", text, re.M)
    if not t:
        raise RuntimeError("no totals in " + path)
    return int(t.group(1))


def side(build, checks, n1, n2, tmp):
    """Instructions per db.get of the server, checks on or off."""
    sprig = os.path.join(build, "tools", "sprig")
    bench = os.path.join(build, "tools", "sprig-bench")
    d = tempfile.mkdtemp(prefix="on." if checks else "off.", dir=tmp)
    st = storage(sprig, d, checks)
    schema = os.path.join(d, "schema.json")
    with open(schema, "w") as f:
        f.write('{"name":"app","collections":'
                '[{"name":"docs","id_kind":"u64"}]}')
    out = os.path.join(d, "cg.out")
    log = open(os.path.join(d, "serve.log"), "w+")
    argv = ["valgrind", "-q", "--tool=callgrind",
            "--callgrind-out-file=" + out, sprig, "--path", st, "--schema",
            schema, "--db", "app", "serve", "--ws", "127.0.0.1:0", "--quic",
            "off"] + ([] if checks else ["--insecure-open"])
    srv = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = None
        for _ in range(600):
            log.seek(0)
            m = re.search(r"listening on (ws://[0-9.]+:\d+)", log.read())
            if m:
                url = m.group(1)
                break
            if srv.poll() is not None:
                break
            time.sleep(0.2)
        if not url:
            log.seek(0)
            raise RuntimeError("serve did not start: " + log.read()[-400:])
        env = dict(os.environ, CG_PW=PASSWORD)
        b = [bench, "-u", url, "--db", "app", "-c", "50", "-r", "1000",
             "--timeout", "600", "-q"]
        b += ["--user", "reader", "--password-env", "CG_PW"] if checks else []
        run(b + ["-n", "1000", "--load", "doc"], env=env)
        counts = []
        for n in (n1, n2):
            run(["callgrind_control", "-z", str(srv.pid)])
            run(b + ["-n", str(n), "-t", "db.get"], env=env)
            before = set(glob.glob(out + ".*"))
            run(["callgrind_control", "-d", str(srv.pid)])
            dumps = sorted(set(glob.glob(out + ".*")) - before)
            if not dumps:
                raise RuntimeError("callgrind_control -d made no dump")
            counts.append(sum(totals(p) for p in dumps))
    finally:
        srv.terminate()
        srv.wait(timeout=300)
    shutil.rmtree(d, ignore_errors=True)
    return counts, (counts[1] - counts[0]) / float(n2 - n1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true",
                    help="fewer requests (a smoke run)")
    ap.add_argument("--out", default=os.path.join(
        ROOT, "bench", "results", "auth_callgrind.json"))
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            sys.exit("auth_callgrind: %s is not installed "
                     "(scripts/deps.sh --bench)" % tool)
    n1, n2 = (200, 600) if args.quick else (2000, 6000)
    tmp = tempfile.mkdtemp(prefix="sprig-auth-cg.")
    res = {}
    try:
        for name, checks in (("off", False), ("on", True)):
            counts, per = side(args.build, checks, n1, n2, tmp)
            res[name] = {"instructions": counts, "per_request": per}
            print("callgrind: db.get, checks %-3s: %.0f instructions per "
                  "request (server, all threads; %d and %d requests)"
                  % (name, per, n1, n2), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = res["on"]["per_request"] / res["off"]["per_request"]
    print("callgrind: checks on / off = %.3fx instructions per request"
          % ratio)
    doc = {"bench": "auth_callgrind", "operation": "db.get", "clients": 50,
           "load_1min": os.getloadavg()[0],
           "requests": [n1, n2], "sides": res, "ratio_on_off": ratio,
           "method": __doc__.split("\n\n")[1].replace("\n", " ")}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


main()
