#!/usr/bin/env python3
"""bench_net.py -- the network benchmarks of `make bench-net` (and `make
bench`): Sprig served over WebSockets against Redis, PostgreSQL and
Tarantool, all started here on loopback, in the same run, on ephemeral
ports, in the foreground, and stopped by their pid at the end (even on
failure or Ctrl-C).

  net-kv   50 clients, key-value set and get, unpipelined (-P 1) and
           pipelined (-P 16): `sprig-bench` against `sprig serve` vs
           `redis-benchmark` against `redis-server`, at two durabilities:
           Sprig lazy key-value persistence vs Redis with its default
           snapshots (no AOF), and Sprig immediate (full durability) vs
           Redis `appendonly yes` + `appendfsync always` (sets only).
  net-doc  50 clients, document get by id vs `pgbench -S` (select-only),
           and document insert vs a pgbench insert script, PostgreSQL with
           fsync on and synchronous_commit on, Sprig at full durability;
           the same two against Tarantool (memtx, `wal_mode='fsync'`),
           loaded through IPROTO by `sprig-bench --tarantool` (the same
           driver as Sprig's side; bench/tarantool_server.lua).
  net-quic the net-kv and net-doc loads over quic:// against the same
           server over ws:// (issue 11): QUIC vs WebSockets, p50/p99
           and throughput, the transport the only difference; then where
           the difference comes from: the server's instructions per
           request over each (`sprig serve` under callgrind, kv.get,
           10 clients, -P 1), by library (when valgrind is installed).
  pubsub   1 publisher -> 10 subscribers on separate connections,
           messages delivered per second and publish -> receive latency:
           `sprig-bench --pubsub` against `sprig serve` and, with
           --redis, against Redis PUBLISH/SUBSCRIBE (same loop, payloads,
           flow control and checks), one message at a time (window 1:
           latency) and with up to 64 undelivered (throughput).

Each row: a warm-up of both sides (which also sizes the runs to about
--seconds each), then --runs runs taking turns (the order alternates), the
median and spread of each side, and Sprig's ratio as the ratio of the
medians (the per-run ratios give its spread).  Beside them: the loopback's
raw TCP round trips per second (the physical limit of unpipelined
request/answer traffic here) and each server's CPU per request.  The load
generators run on the same 2 cores as the servers, for both sides alike.

Writes bench/results/net.json, then regenerates docs/benchmarks.md through
bench/report.py (whose Network section reads net.json and the hand-kept
bench/analysis-net.md).

With --compare OLD_BUILD the peers stay off: every row runs Sprig of
BUILD_DIR ("new") against Sprig of OLD_BUILD ("old"), both served at once
and driven by BUILD_DIR's sprig-bench, taking turns, and a table of the
ratios new/old with their spread is printed (bench/compare_net.sh builds
the old one from a git revision).

usage: bench_net.py BUILD_DIR [--runs N (5)] [--seconds S (1.2)] [--quick]
                    [--out JSON] [--no-report] [--compare OLD_BUILD]
                    [--only NAME,...]
Only the Python standard library is used.
"""
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS = 50
KEYSPACE = 100000   # keys and documents; = pgbench scale 1 (100k rows)
DATASIZE = 100      # bytes of each value / document
PG_SCALE = 1
KV_TARGET = 1.0     # issue 5 / design/bench.md: >= 1.0x Redis
DOC_TARGET = 2.0    # >= 2x PostgreSQL
TT_TARGET = 1.0     # >= 1.0x Tarantool
PUBSUB_TARGET = 1.0  # >= 1.0x Redis PUBLISH/SUBSCRIBE
SUBSCRIBERS = 10
PUBSUB_SIZE = 100   # bytes of each message (16 of them the clock + seq)

procs = []          # every server started, stopped by pid at the end
PROG = "bench_net"  # the prefix of messages; commerce.py sets its own


def log(msg):
    print(PROG + ": " + msg, flush=True)


def die(msg):
    raise SystemExit(PROG + ": " + msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(name, argv, logfile, **kw):
    f = open(logfile, "wb")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, **kw)
    f.close()
    p.bench_name, p.bench_log = name, logfile
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        except ProcessLookupError:
            pass
    if p in procs:
        procs.remove(p)


def stop_all():
    for p in list(procs):
        stop(p, signal.SIGINT if p.bench_name == "postgres" else
             signal.SIGTERM)


def on_signal(signum, frame):
    raise SystemExit("bench_net: interrupted (signal %d)" % signum)


def wait_for(what, cond, p, timeout=30):
    t = time.time() + timeout
    while time.time() < t:
        v = cond()
        if v:
            return v
        if p.poll() is not None:
            die("%s exited (status %s); see %s:\n%s" % (
                what, p.returncode, p.bench_log, tail(p.bench_log)))
        time.sleep(0.05)
    die("%s did not start in %d s; see %s" % (what, timeout, p.bench_log))


def tail(path, n=15):
    try:
        return "\n".join(open(path, errors="replace").read().splitlines()[-n:])
    except OSError:
        return ""


def run(argv, timeout=300, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, **kw)
    return r.returncode, r.stdout.decode(errors="replace"), \
        r.stderr.decode(errors="replace")


def proc_cpu_s(pid):
    """utime + stime of a process (all its threads) and of its reaped
    children, in seconds."""
    try:
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---- the servers ------------------------------------------------------------

class Sprig:
    def __init__(self, build, tmp, bench_build=None, tag="sprig"):
        """`sprig serve` of BUILD (its storage in TMP/TAG), loaded by the
        sprig-bench of BENCH_BUILD (default: the same build)."""
        self.cli = os.path.join(build, "tools", "sprig")
        self.bench = os.path.join(bench_build or build, "tools",
                                  "sprig-bench")
        for b in (self.cli, self.bench):
            if not os.access(b, os.X_OK):
                die("%s is not built" % b)
        self.tag = tag
        self.path = os.path.join(tmp, tag)
        self.tmp = tmp
        self.p = None
        for args in (["schema", "define", "bench", "docs"],
                     ["db", "create", "default", "--schema", "bench"]):
            rc, out, err = run([self.cli, "--path", self.path] + args)
            if rc:
                die("sprig %s: %s" % (" ".join(args), err.strip()))

    def serve(self, kv_persistence):
        """(Re)start `sprig serve` (full durability) with the given
        key-value persistence mode."""
        if self.p:
            stop(self.p)
        logf = os.path.join(self.tmp, "%s-%s.log" % (self.tag,
                                                      kv_persistence))
        argv = [self.cli, "--path", self.path, "serve", "--ws",
                "127.0.0.1:0", "--durability", "full", "--kv-persistence",
                kv_persistence]
        # sprig-bench does not log in: servers that check permissions
        # (issue 10) run open here; bench/auth_bench measures the checks
        rc, out, err = run([self.cli, "serve", "--help"])
        if "--insecure-open" in out:
            argv.append("--insecure-open")
        self.p = start(self.tag, argv, logf)

        def port():
            m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)",
                          tail(logf, 50))
            return m and int(m.group(1))
        self.url = "ws://127.0.0.1:%d" % wait_for("sprig serve", port,
                                                  self.p)
        # QUIC beside it (issue 11): port and certificate fingerprint
        log_text = tail(logf, 50)
        m = re.search(r"listening on (quic://127\.0\.0\.1:\d+)", log_text)
        f = re.search(r"SHA-256 ([0-9a-f]{64})", log_text)
        self.qurl = m.group(1) if m else None
        self.pin = f.group(1) if f else None
        self.mode = kv_persistence

    def load(self, what):
        rc, out, err = run([self.bench, "-u", self.url, "-c", "8", "-P", "16",
                            "-r", str(KEYSPACE), "-d", str(DATASIZE),
                            "--load", what, "-q"])
        if rc:
            die("loading Sprig (%s): %s" % (what, err.strip() or out))

    def measure(self, op, pipeline, n, threads=1, quic=False):
        if quic and not self.qurl:
            raise RuntimeError("sprig serve did not say where QUIC listens")
        url = ["-u", self.qurl, "--pin", self.pin] if quic else \
            ["-u", self.url]
        argv = [self.bench] + url + [
            "-c", str(CLIENTS), "-P", str(pipeline), "-n", str(n), "-t", op,
            "-r", str(KEYSPACE), "-d", str(DATASIZE), "--threads",
            str(threads), "--csv"]
        return measure_cmd(argv, self.p.pid, parse_bench_csv, n)

    def pubsub(self, n, window):
        return measure_cmd(pubsub_argv(self.bench, n, window, "-u",
                                       self.url),
                           self.p.pid, parse_bench_csv, n * SUBSCRIBERS)


def pubsub_argv(bench, n, window, *target):
    return [bench, "--pubsub", str(n), "-c", str(SUBSCRIBERS), "-P", "16",
            "--window", str(window), "-d", str(PUBSUB_SIZE), "--csv"] + \
        list(target)


class Redis:
    def __init__(self, tmp):
        for b in ("redis-server", "redis-benchmark", "redis-cli"):
            if not shutil.which(b):
                die("%s is not installed (scripts/deps.sh --bench)" % b)
        self.tmp = tmp
        self.p = None

    def serve(self, durable):
        if self.p:
            stop(self.p)
        d = os.path.join(self.tmp, "redis-%s" % ("aof" if durable else "rdb"))
        os.makedirs(d, exist_ok=True)
        self.port = free_port()
        argv = ["redis-server", "--bind", "127.0.0.1", "--port",
                str(self.port), "--dir", d, "--daemonize", "no",
                "--protected-mode", "yes", "--logfile", ""]
        if durable:
            argv += ["--appendonly", "yes", "--appendfsync", "always",
                     "--save", ""]
        else:
            argv += ["--appendonly", "no"]  # default snapshots (save ...)
        self.p = start("redis", argv, d + ".log")
        wait_for("redis-server", lambda: run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port),
             "ping"])[1].strip() == "PONG", self.p)
        rc, out, _ = run(["redis-cli", "-h", "127.0.0.1", "-p",
                          str(self.port), "config", "get", "save"])
        self.save = " ".join(out.split()[1:]) or "(none)"
        self.durable = durable

    def load(self):
        """SET key:%012d value(k) for the whole keyspace (redis-cli --pipe),
        the keys redis-benchmark -r picks from, values of DATASIZE bytes."""
        pad = "x" * (DATASIZE - 27)
        cmds = []
        for k in range(KEYSPACE):
            key = "key:%012d" % k
            val = '{"k":"%012d","p":"%s"}' % (k, pad)
            cmds.append("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(key), key, len(val), val))
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p",
                            str(self.port), "--pipe"],
                           input="".join(cmds).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        if r.returncode:
            die("loading Redis: %s" % r.stderr.decode(errors="replace"))

    def measure(self, op, pipeline, n):
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port),
                "-c", str(CLIENTS), "-n", str(n), "-P", str(pipeline), "-t",
                {"kv.set": "set", "kv.get": "get"}[op], "-r", str(KEYSPACE),
                "-d", str(DATASIZE), "--csv"]
        return measure_cmd(argv, self.p.pid, parse_bench_csv, n)

    def pubsub(self, bench, n, window):
        return measure_cmd(pubsub_argv(bench, n, window, "--redis",
                                       "127.0.0.1:%d" % self.port),
                           self.p.pid, parse_bench_csv, n * SUBSCRIBERS)


class Tarantool:
    """Tarantool (memtx) with the documents of net-doc, loaded by
    bench/tarantool_server.lua, driven by `sprig-bench --tarantool`."""

    def __init__(self, tmp, bench):
        if not shutil.which("tarantool"):
            die("tarantool is not installed (scripts/deps.sh --bench)")
        self.bench = bench
        d = os.path.join(tmp, "tarantool")
        os.makedirs(d)
        self.port = free_port()
        logf = os.path.join(tmp, "tarantool.log")
        self.p = start("tarantool", [
            "tarantool", os.path.join(ROOT, "bench", "tarantool_server.lua"),
            str(self.port), d, "fsync", str(KEYSPACE), str(DATASIZE)],
            logf)
        wait_for("tarantool", lambda: "ready" in tail(logf, 50), self.p,
                 timeout=120)

    def measure(self, op, n):
        argv = [self.bench, "--tarantool", "127.0.0.1:%d" % self.port,
                "-c", str(CLIENTS), "-n", str(n), "-t", op, "-r",
                str(KEYSPACE), "-d", str(DATASIZE), "--threads", "2",
                "--csv"]
        return measure_cmd(argv, self.p.pid, parse_bench_csv, n)


INSERT_SQL = """\\set k random(1, 1000000000)
INSERT INTO docs (doc) VALUES ('{"k":"' || lpad(:k::text, 12, '0') || '","p":"%s"}');
""" % ("x" * (DATASIZE - 27))


def start_postgres(tmp, max_connections):
    """initdb + postgres on an ephemeral port under tmp, fsync on (as the
    postgres user when we are root, which postgres refuses to run as; the
    clients connect over TCP as the database user postgres, trust on
    loopback); (bin directory, version, port, process)."""
    base = "/usr/lib/postgresql"
    vers = sorted(d for d in os.listdir(base)
                  if os.path.isdir(os.path.join(base, d, "bin"))) \
        if os.path.isdir(base) else []
    if not vers:
        die("PostgreSQL is not installed (scripts/deps.sh --bench)")
    bindir = os.path.join(base, vers[-1], "bin")
    data, sock = os.path.join(tmp, "pg"), os.path.join(tmp, "pgsock")
    os.makedirs(data)
    os.makedirs(sock)
    kw = {}
    if os.geteuid() == 0:
        os.chmod(tmp, 0o755)
        shutil.chown(data, "postgres")
        shutil.chown(sock, "postgres")
        kw = {"user": "postgres"}
    rc, out, err = run([os.path.join(bindir, "initdb"), "-D", data, "-U",
                        "postgres", "-A", "trust", "--no-sync", "-E",
                        "UTF8"], cwd=tmp, **kw)
    if rc:
        die("initdb: %s" % (err.strip() or out))
    port = free_port()
    p = start("postgres", [os.path.join(bindir, "postgres"), "-D", data,
                           "-k", sock, "-p", str(port),
                           "-c", "listen_addresses=127.0.0.1",
                           "-c", "max_connections=%d" % max_connections,
                           "-c", "fsync=on", "-c", "synchronous_commit=on"],
              os.path.join(tmp, "pg.log"), cwd=tmp, **kw)
    wait_for("postgres", lambda: run(
        [os.path.join(bindir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
         str(port)])[0] == 0, p, timeout=60)
    return bindir, vers[-1], port, p


class Postgres:
    def __init__(self, tmp):
        if not shutil.which("pgbench"):
            die("PostgreSQL is not installed (scripts/deps.sh --bench)")
        self.tmp = tmp
        self.bin, self.version, self.port, self.p = start_postgres(tmp, 120)
        self.pg = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        rc, out, err = run(["pgbench"] + self.pg + ["-i", "-q", "-s",
                                                    str(PG_SCALE), "postgres"])
        if rc:
            die("pgbench -i: %s" % err.strip())
        rc, out, err = run(["psql"] + self.pg + [
            "-q", "-v", "ON_ERROR_STOP=1", "-c",
            "CREATE TABLE docs (id bigserial PRIMARY KEY, doc text NOT NULL)",
            "postgres"])
        if rc:
            die("psql: %s" % err.strip())
        self.insert_sql = os.path.join(tmp, "insert.sql")
        with open(self.insert_sql, "w") as f:
            f.write(INSERT_SQL)

    def measure(self, op, n):
        """n transactions in all (-t n/50 per client), like the sized runs
        of the other tools: a duration (-T) would count pgbench's
        connection phase, which took 2.7 s for 50 clients on a loaded
        machine (no transaction at all in -T 2); the rate pgbench reports
        leaves that phase out."""
        what = ["-S"] if op == "db.get" else ["-f", self.insert_sql]
        argv = ["pgbench"] + self.pg + what + [
            "-c", str(CLIENTS), "-j", "2", "-t", str(max(1, n // CLIENTS)),
            "-M", "prepared", "-n", "postgres"]
        return measure_cmd(argv, self.p.pid, parse_pgbench, None,
                           settle=0.3)


# ---- measuring ------------------------------------------------------------

def parse_bench_csv(out):
    """The data row of sprig-bench / redis-benchmark --csv."""
    rows = [l for l in out.splitlines() if l.startswith('"') and
            not l.startswith('"test"')]
    if not rows:
        return None
    cols = [c.strip('"') for c in rows[-1].split('","')]
    r = {"rate": float(cols[1]), "avg_ms": float(cols[2]),
         "p50_ms": float(cols[4]), "p99_ms": float(cols[6])}
    if len(cols) > 8:
        r["errors"] = int(cols[8])
    if len(cols) > 9:
        r["out_of_order"] = int(cols[9])
    return r


def parse_pgbench(out):
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)",
                  out)
    if not m:
        return None
    r = {"rate": float(m.group(1))}
    m = re.search(r"latency average = ([0-9.]+) ms", out)
    if m:
        r["avg_ms"] = float(m.group(1))
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"number of failed transactions: (\d+)", out)
    r["errors"] = int(m.group(1)) if m else 0
    return r


def measure_cmd(argv, server_pid, parse, n, settle=0.0):
    s0, c0, t0 = proc_cpu_s(server_pid), children_cpu_s(), time.time()
    rc, out, err = run(argv)
    wall = time.time() - t0
    if settle:
        time.sleep(settle)  # let the postmaster reap its backends
    s1, c1 = proc_cpu_s(server_pid), children_cpu_s()
    r = parse(out)
    if rc or r is None:
        raise RuntimeError("%s failed (status %d): %s" % (
            os.path.basename(argv[0]), rc, (err.strip() or out.strip())[-600:]))
    reqs = n if n else r.get("requests") or r["rate"] * wall
    r["server_cpu_us"] = (s1 - s0) * 1e6 / reqs if reqs else 0
    r["client_cpu_us"] = (c1 - c0) * 1e6 / reqs if reqs else 0
    r["requests"] = reqs
    return r


def summarize(runs):
    rates = [r["rate"] for r in runs]
    out = {"median": statistics.median(rates), "min": min(rates),
           "max": max(rates), "runs": [round(x, 1) for x in rates]}
    for k in ("p50_ms", "p99_ms", "avg_ms", "server_cpu_us",
              "client_cpu_us", "out_of_order"):
        vals = [r[k] for r in runs if k in r]
        if vals:
            out[k] = round(statistics.median(vals), 3)
    return out


def size_runs(rate, seconds, lo, hi):
    return int(max(lo, min(hi, rate * seconds)))


def row(name, label, peer_name, sprig_fn, peer_fn, warm_n, target, args,
        extra=None):
    """Warm up, size, then args.runs alternating runs of both sides."""
    log("%s: %s" % (name, label))
    res = {"name": name, "row": label, "peer": peer_name,
           "series": {}, "failed": False}
    res.update(extra or {})
    try:
        ws = sprig_fn(warm_n)
        wp = peer_fn(warm_n)
        ns = size_runs(ws["rate"], args.seconds, warm_n, 50 * warm_n)
        np_ = size_runs(wp["rate"], args.seconds, warm_n, 50 * warm_n)
        sr, pr = [], []
        for i in range(args.runs):
            if i % 2 == 0:
                sr.append(sprig_fn(ns))
                pr.append(peer_fn(np_))
            else:
                pr.append(peer_fn(np_))
                sr.append(sprig_fn(ns))
            log("  run %d: Sprig %.0f/s, %s %.0f/s" % (
                i + 1, sr[-1]["rate"], peer_name, pr[-1]["rate"]))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log("  FAILED: %s" % e)
        res["failed"] = True
        res["error"] = str(e)
        return res
    res["series"]["sprig"] = summarize(sr)
    res["series"][peer_name] = summarize(pr)
    res["errors"] = sum(r.get("errors", 0) for r in sr)
    per_run = [a["rate"] / b["rate"] for a, b in zip(sr, pr) if b["rate"]]
    ratio = res["series"]["sprig"]["median"] / \
        res["series"][peer_name]["median"]
    res["ratio"] = {"vs": peer_name, "ratio": round(ratio, 3),
                    "min": round(min(per_run), 3),
                    "max": round(max(per_run), 3), "target": target,
                    "met": ratio >= target if target else None}
    log("  => Sprig %.0f/s vs %s %.0f/s: %.2fx (target %s)" % (
        res["series"]["sprig"]["median"], peer_name,
        res["series"][peer_name]["median"], ratio,
        "%.1fx" % target if target else "-"))
    return res


def tcp_ping(sprig, clients, seconds):
    rc, out, err = run([sprig.bench, "--tcp-ping", str(seconds), "-c",
                        str(clients), "--csv"])
    m = re.search(r'"tcp.ping","([0-9.]+)"', out)
    return float(m.group(1)) if rc == 0 and m else None


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    u = platform.uname()
    return {"nproc": os.cpu_count(), "cpu": cpu,
            "kernel": "%s %s %s" % (u.system, u.release, u.machine)}


def version_of(argv, pattern):
    try:
        rc, out, err = run(argv, timeout=20)
        m = re.search(pattern, out + err)
        return m.group(1) if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def kv_rows(sprig, peer, peer_name, args, rows, target):
    """net-kv: lazy rows, then durable ones (`peer`: Redis, or the old
    Sprig of --compare, whose serve() takes the same mode)."""
    redis = isinstance(peer, Redis)
    sprig.serve("lazy")
    if redis:
        peer.serve(durable=False)
        peer.load()
        dur = ("lazy: Sprig `--kv-persistence lazy` (no fsync per change; "
               "flushed after 10,000 changes or 1 s) vs Redis default "
               "snapshots (`save %s`, no AOF)" % peer.save)
    else:
        peer.serve("lazy")
        peer.load("kv")
        dur = "lazy: `--kv-persistence lazy` on both builds"
    sprig.load("kv")
    for op, pipe in (("kv.set", 1), ("kv.get", 1), ("kv.set", 16),
                     ("kv.get", 16)):
        rows.append(row(
            "net-kv", "%s, %d clients, -P %d, lazy" % (op[3:], CLIENTS, pipe),
            peer_name, lambda n, o=op, p=pipe: sprig.measure(o, p, n),
            lambda n, o=op, p=pipe: peer.measure(o, p, n),
            20000 if pipe == 1 else 100000, target, args,
            {"op": op, "pipeline": pipe, "clients": CLIENTS,
             "durability": dur, "mode": "lazy"}))
    sprig.serve("immediate")
    if redis:
        peer.serve(durable=True)
        peer.load()
        dur = ("durable: Sprig `--kv-persistence immediate` at full "
               "durability (fsync before the answer; group commit) vs Redis "
               "`appendonly yes`, `appendfsync always`")
    else:
        peer.serve("immediate")
        dur = "durable: `--kv-persistence immediate`, full, on both builds"
    for pipe in (1, 16):
        rows.append(row(
            "net-kv", "set, %d clients, -P %d, durable" % (CLIENTS, pipe),
            peer_name, lambda n, p=pipe: sprig.measure("kv.set", p, n),
            lambda n, p=pipe: peer.measure("kv.set", p, n),
            5000 if pipe == 1 else 20000, target, args,
            {"op": "kv.set", "pipeline": pipe, "clients": CLIENTS,
             "durability": dur, "mode": "durable"}))


DOC_OPS = (("db.get", "get by id, %d clients" % CLIENTS, 20000),
           ("db.insert", "insert, %d clients" % CLIENTS, 5000))


def doc_fn(sprig):
    # two client threads, as pgbench -j 2
    return lambda n, o: sprig.measure(o, 1, n, threads=2)


def doc_rows_pg(sprig, pg, args, rows):
    dur = ("full: Sprig `--durability full` (fsync before the answer; "
           "group commit) vs PostgreSQL `fsync=on`, "
           "`synchronous_commit=on`")
    for op, label, warm in DOC_OPS:
        def pg_fn(n, o=op):
            return pg.measure(o, n)
        rows.append(row(
            "net-doc", label, "postgres",
            lambda n, o=op: doc_fn(sprig)(n, o), pg_fn, warm, DOC_TARGET,
            args, {"op": op, "pipeline": 1, "clients": CLIENTS,
                   "durability": dur,
                   "peer_workload": "pgbench -S (select-only)" if op ==
                   "db.get" else "pgbench -f insert.sql (one INSERT)"}))


def doc_rows_peer(sprig, peer, peer_name, target, dur, args, rows):
    """net-doc against Tarantool, or the old Sprig of --compare."""
    for op, label, warm in DOC_OPS:
        rows.append(row(
            "net-doc", label, peer_name,
            lambda n, o=op: doc_fn(sprig)(n, o),
            lambda n, o=op: (peer.measure(o, n) if peer_name == "tarantool"
                             else doc_fn(peer)(n, o)),
            warm, target, args,
            {"op": op, "pipeline": 1, "clients": CLIENTS, "durability": dur,
             "peer_workload": "sprig-bench --tarantool (IPROTO %s)" % (
                 "SELECT by primary key" if op == "db.get" else
                 "INSERT, id from a sequence")
             if peer_name == "tarantool" else "the same"}))


PUBSUB_ROWS = ((1, "1 → %d subscribers, one message at a time" % SUBSCRIBERS,
                2000),
               (64, "1 → %d subscribers, up to 64 undelivered" % SUBSCRIBERS,
                5000))


def pubsub_rows(sprig, peer_fn, peer_name, target, args, rows):
    dur = ("messages of %d bytes on one topic, not persisted on either "
           "side; rate = messages delivered per second (published x %d), "
           "latency = publish -> receive; at most 16 publishes "
           "unanswered" % (PUBSUB_SIZE, SUBSCRIBERS))
    for window, label, warm in PUBSUB_ROWS:
        rows.append(row(
            "pubsub", label, peer_name,
            lambda n, w=window: sprig.pubsub(max(1, n // SUBSCRIBERS), w),
            lambda n, w=window: peer_fn(max(1, n // SUBSCRIBERS), w),
            warm * SUBSCRIBERS, target, args,
            {"op": "pubsub", "window": window, "subscribers": SUBSCRIBERS,
             "durability": dur}))


def quic_rows(sprig, args, rows):
    """net-kv and net-doc over quic:// (issue 11), Sprig against itself
    over ws://: the same server process, the same storage, the same
    sprig-bench, only the transport differs.  Lazy key-value persistence
    (as net-kv's lazy rows) and full durability for documents."""
    sprig.serve("lazy")
    sprig.load("kv")
    sprig.load("doc")
    dur = ("transport only: one `sprig serve` (`--kv-persistence lazy`, "
           "`--durability full`), loaded by `sprig-bench` over quic:// "
           "(left) and over ws:// (right), taking turns")
    work = [("kv.set", 1, 1, 20000), ("kv.get", 1, 1, 20000),
            ("kv.set", 16, 1, 100000), ("kv.get", 16, 1, 100000),
            ("db.get", 1, 2, 20000), ("db.insert", 1, 2, 5000)]
    for op, pipe, threads, warm in work:
        rows.append(row(
            "net-quic", "%s over quic://, %d clients, -P %d" % (
                op, CLIENTS, pipe), "ws",
            lambda n, o=op, p=pipe, t=threads: sprig.measure(
                o, p, n, threads=t, quic=True),
            lambda n, o=op, p=pipe, t=threads: sprig.measure(
                o, p, n, threads=t),
            warm, None, args,
            {"op": op, "pipeline": pipe, "clients": CLIENTS,
             "durability": dur, "mode": "transport"}))


def cg_by_object(path):
    """Instructions of a callgrind dump, by ELF object (Sprig's own code
    by its layer: sprig:proto, sprig:transport, ...)."""
    rc, out, err = run(["callgrind_annotate", "--threshold=100", path])
    by = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*?):(.*) \[(.*)\]$",
                     line)
        if not m:
            continue
        obj, src = os.path.basename(m.group(4)), m.group(2)
        if obj == "sprig":  # relative to the current directory, or not
            layer = re.search(r"(?:^|/)src/([^/]+)/", src)
            obj = "sprig:" + (layer.group(1) if layer else "?")
        by[obj] = by.get(obj, 0) + int(m.group(1).replace(",", ""))
    return by


def serve_under_callgrind(sprig, tmp):
    """`sprig serve` of the build under callgrind, instrumentation off:
    (process, ws URL, quic URL, pin, callgrind out file)."""
    path = os.path.join(tmp, "cg-store")
    for a in (["schema", "define", "bench", "docs"],
              ["db", "create", "default", "--schema", "bench"]):
        run([sprig.cli, "--path", path] + a)
    out, logf = os.path.join(tmp, "cg.out"), os.path.join(tmp, "cg.log")
    p = start("sprig-callgrind", [
        shutil.which("valgrind"), "-q", "--tool=callgrind",
        "--instr-atstart=no", "--callgrind-out-file=" + out, sprig.cli,
        "--path", path, "serve", "--ws", "127.0.0.1:0", "--quic",
        "127.0.0.1:0", "--durability", "full", "--kv-persistence", "lazy",
        "--insecure-open"], logf)

    def urls():
        t = tail(logf, 50)
        w = re.search(r"listening on (ws://127\.0\.0\.1:\d+)", t)
        q = re.search(r"listening on (quic://127\.0\.0\.1:\d+)", t)
        f = re.search(r"SHA-256 ([0-9a-f]{64})", t)
        return (w.group(1), q.group(1), f.group(1)) if w and q and f \
            else None
    w, q, f = wait_for("sprig serve under callgrind", urls, p, timeout=180)
    return p, w, q, f, out


CG_SIZES = (1000, 4000)  # kv.get per dump; per request = the difference


def quic_callgrind(sprig, tmp):
    """The server's instructions per request over quic:// and ws://: each
    transport loaded twice (CG_SIZES kv.get, 10 clients, -P 1) with
    callgrind's instrumentation on and a dump after each; the difference
    of the two dumps over the difference of the sizes leaves out the
    handshakes and warm-up.  None when valgrind is not installed."""
    ctl = shutil.which("callgrind_control")
    if not (shutil.which("valgrind") and ctl and
            shutil.which("callgrind_annotate")):
        log("net-quic callgrind: valgrind is not installed, skipped")
        return None
    log("net-quic: server instructions per request (callgrind)")
    p, ws, qu, pin, out = serve_under_callgrind(sprig, tmp)
    run([sprig.bench, "-u", ws, "-c", "8", "-P", "16", "-r", "1000", "-d",
         str(DATASIZE), "--load", "kv", "-q"], timeout=900)
    dumps = {}
    for name, url in (("quic", ["-u", qu, "--pin", pin]),
                      ("ws", ["-u", ws])):
        for n in CG_SIZES:
            run([ctl, "-i", "on", str(p.pid)])
            rc, o, e = run([sprig.bench] + url + [
                "-c", "10", "-P", "1", "-n", str(n), "-t", "kv.get", "-r",
                "1000", "-d", str(DATASIZE), "--csv"], timeout=900)
            run([ctl, "-i", "off", str(p.pid)])
            if rc:
                stop(p)
                raise RuntimeError("sprig-bench under callgrind: " +
                                   (e.strip() or o.strip())[-300:])
            run([ctl, "--dump=%s%d" % (name, n), str(p.pid)])
            dumps[(name, n)] = "%s.%d" % (out, len(dumps) + 1)
    stop(p)
    reqs = CG_SIZES[1] - CG_SIZES[0]
    res = {"requests": reqs, "clients": 10, "op": "kv.get", "per_request":
           {}, "by_object": {}}
    for name in ("quic", "ws"):
        a, b = (cg_by_object(dumps[(name, n)]) for n in CG_SIZES)
        objs = {k: round((b.get(k, 0) - a.get(k, 0)) / reqs)
                for k in set(a) | set(b)}
        res["by_object"][name] = {k: v for k, v in objs.items()
                                  if abs(v) >= 100}
        res["per_request"][name] = sum(objs.values())
    log("  => server instructions per kv.get: quic %d, ws %d" % (
        res["per_request"]["quic"], res["per_request"]["ws"]))
    return res


def report_compare(rows):
    log("new / old (Sprig of BUILD_DIR over Sprig of --compare):")
    print("| bench | row | new | old | new/old | per-run new/old |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        if r.get("failed") or "ratio" not in r:
            print("| %s | %s | FAILED | | | |" % (r["name"], r["row"]))
            continue
        q = r["ratio"]
        print("| %s | %s | %.0f/s | %.0f/s | **%.2f×** | %.2f – %.2f |" % (
            r["name"], r["row"], r["series"]["sprig"]["median"],
            r["series"]["old"]["median"], q["ratio"], q["min"], q["max"]))
    sys.stdout.flush()


def compare_run(args, tmp, only):
    """--compare: every row, Sprig new against Sprig old."""
    rows = []
    new = Sprig(args.build, tmp, tag="new")
    old = Sprig(args.compare, tmp, bench_build=args.build, tag="old")
    if "net-kv" in only:
        kv_rows(new, old, "old", args, rows, None)
    if "net-doc" in only:
        for side in (new, old):
            if not side.p:
                side.serve("immediate")
        new.load("doc")
        old.load("doc")
        doc_rows_peer(new, old, "old", None, "full, on both builds", args,
                      rows)
    if "pubsub" in only:
        for side in (new, old):
            if not side.p:
                side.serve("immediate")
        pubsub_rows(new, old.pubsub, "old", None, args, rows)
    return rows, {}


def peer_run(args, tmp, only):
    """The normal run: Sprig against its peers."""
    rows = []
    sprig = Sprig(args.build, tmp)
    limits = {}
    for c in (1, CLIENTS):
        limits[str(c)] = tcp_ping(sprig, c, 1.0)
    log("loopback TCP ping-pong: %s round trips/s (1 connection), "
        "%s (50)" % (limits["1"], limits[str(CLIENTS)]))
    redis = Redis(tmp) if ("net-kv" in only or "pubsub" in only) else None
    if "net-kv" in only:
        kv_rows(sprig, redis, "redis", args, rows, KV_TARGET)
    if "pubsub" in only:
        if not redis.p:
            redis.serve(durable=False)
        if not sprig.p:
            sprig.serve("immediate")
        pubsub_rows(sprig, lambda n, w: redis.pubsub(sprig.bench, n, w),
                    "redis", PUBSUB_TARGET, args, rows)
    if redis and redis.p:
        stop(redis.p)
    if "net-doc" in only:
        if not sprig.p:
            sprig.serve("immediate")
        sprig.load("doc")
        pg = Postgres(tmp)
        doc_rows_pg(sprig, pg, args, rows)
        stop(pg.p, signal.SIGINT)
        tt = Tarantool(tmp, sprig.bench)
        doc_rows_peer(sprig, tt, "tarantool", TT_TARGET,
                      "full: Sprig `--durability full` (fsync before the "
                      "answer; group commit) vs Tarantool memtx with "
                      "`wal_mode='fsync'` (the WAL written and fsynced "
                      "before the answer; transactions waiting together "
                      "share one sync)", args, rows)
        stop(tt.p)
    if "net-quic" in only:
        quic_rows(sprig, args, rows)
    stop(sprig.p)
    if "net-quic" in only and not args.quick:
        try:
            limits["quic_callgrind"] = quic_callgrind(sprig, tmp)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            log("  net-quic callgrind FAILED: %s" % e)
    return rows, limits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    # 5 short runs rather than 3 long ones: the machine is shared, and
    # taking turns more often exposes both sides to the same background
    # load (the same reason bench_local cuts its work into slices)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.2,
                    help="length of each timed run (about)")
    ap.add_argument("--quick", action="store_true",
                    help="1 run of ~0.5 s per side and row (a check)")
    ap.add_argument("--out", default=None,
                    help="default bench/results/net.json (with --compare: "
                    "sprig-compare-net.json in the temporary directory)")
    ap.add_argument("--no-report", action="store_true",
                    help="do not regenerate docs/benchmarks.md")
    ap.add_argument("--compare", metavar="OLD_BUILD",
                    help="Sprig of OLD_BUILD instead of the peers")
    ap.add_argument("--only", default="net-kv,net-doc,pubsub,net-quic",
                    help="comma-separated benches to run")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.seconds = 1, 0.5
    only = set(args.only.split(","))
    if args.out is None:
        args.out = os.path.join(tempfile.gettempdir(), "sprig-compare-net"
                                ".json") if args.compare else os.path.join(
                                    ROOT, "bench", "results", "net.json")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t_start = time.time()
    tmp = tempfile.mkdtemp(prefix="sprig-bench-net.")
    try:
        rows, limits = (compare_run if args.compare else peer_run)(
            args, tmp, only)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    cli = os.path.join(args.build, "tools", "sprig")
    result = {
        "bench": "compare-net" if args.compare else "net",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": "Sprig %s, Redis %s, PostgreSQL %s, Tarantool %s" % (
            version_of([cli, "--version"], r"(\d+\.\d+\.\d+)"),
            version_of(["redis-server", "--version"], r"v=(\S+)"),
            version_of(["pgbench", "--version"], r"(\d+\.\d+)"),
            version_of(["tarantool", "--version"], r"Tarantool (\S+)")),
        "machine": dict(machine(), loopback_round_trips_per_s={
            k: v for k, v in limits.items() if k != "quic_callgrind"}),
        "quic_callgrind": limits.get("quic_callgrind"),
        "quick": args.quick, "runs": args.runs, "seconds_per_run":
        args.seconds, "clients": CLIENTS, "keyspace": KEYSPACE,
        "datasize": DATASIZE, "seconds": round(time.time() - t_start, 1),
        "rows": rows,
    }
    if args.compare:
        result["old_build"] = os.path.abspath(args.compare)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    log("wrote %s (%.0f s)" % (os.path.relpath(args.out, ROOT),
                               result["seconds"]))
    if args.compare:
        report_compare(rows)
    elif not args.no_report:
        regenerate_report()
    failed = [r for r in rows if r.get("failed") or r.get("errors")]
    return 1 if failed else 0


def regenerate_report():
    local = os.path.join(ROOT, "bench", "results", "local.json")
    if not os.path.exists(local):
        log("no bench/results/local.json: docs/benchmarks.md not "
            "regenerated (run make bench)")
        return
    r = subprocess.run([sys.executable,
                        os.path.join(ROOT, "bench", "report.py"),
                        local, os.path.join(ROOT, "bench", "analysis.md"),
                        os.path.join(ROOT, "docs", "benchmarks.md"),
                        os.path.join(tempfile.gettempdir(),
                                     "sprig-net-chart.dat")])
    if r.returncode == 0:
        log("regenerated docs/benchmarks.md")


if __name__ == "__main__":
    sys.exit(main())
