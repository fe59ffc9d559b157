#!/usr/bin/env python3
"""bench_cluster.py -- the cluster benchmark of `make bench-cluster` (issue
18): three Sprig nodes (`sprig serve --cluster FILE`) against three etcd
3.4 nodes (Debian's etcd-server), all on loopback, in the same run, on
ephemeral ports, stopped by their pid at the end (even on failure).

For each system:
  writes   committed writes per second, p50 and p99 latency, with 1 and
           with 64 writes in flight (64 threads, one connection each, one
           write at a time each; a 100-byte value under one of 1,000 keys
           per thread), by BUILD/bench/cluster_load: etcd through its v3
           HTTP/JSON gateway (POST /v3/kv/put, keep-alive), Sprig through
           its C client given the three URLs (it follows the leader);
  failover the leader killed with SIGKILL -> the first write committed on
           the new leader, measured by a client started right after the
           kill against the two survivors (its start, ~ms, is included on
           both sides): it starts a try every 50 ms, each on its own
           connection (a try stuck on a node still waiting for the dead
           leader does not hide a later one that succeeds); --failovers
           N (5) times, each on a fresh cluster, the median reported.
Both persist before answering: etcd fsyncs its WAL, Sprig's Raft log is
libraft's, fsynced by raft_uv.  Election timeouts: etcd's defaults
(heartbeat 100 ms, election 1000 ms); Sprig's are its own (docs/cluster.md).

Until `sprig serve --cluster` exists (the raft branch), the Sprig side is
recorded as "skipped: sprig serve --cluster not available".  The node
config follows the contract {"id":1,"raft":"127.0.0.1:P","url":
"ws://127.0.0.1:Q","bootstrap":true,"peers":[{"id":2,...},...]}, every
node bootstrapping (the first start of each records the same members).

Writes bench/results/cluster.json (with the machine's load average beside
the numbers: timing taken on a busy machine is rough) and the "Cluster"
section of docs/benchmarks.md, between its markers (replaced each run;
appended when missing; --no-report leaves the page alone).
usage: bench_cluster.py BUILD_DIR [--seconds S (5)] [--quick] [--out JSON]
                        [--only etcd|sprig] [--failovers N (5)]
"""
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PROCS = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(cmd, log):
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    PROCS.append(p)
    return p


def stop_all():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()


def load_avg():
    return [round(x, 2) for x in os.getloadavg()]


def run_load(build, args, timeout):
    exe = os.path.join(build, "bench", "cluster_load")
    r = subprocess.run([exe] + args, capture_output=True, text=True,
                       timeout=timeout)
    if r.stderr.strip():
        print(r.stderr.strip(), file=sys.stderr)
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
    return json.loads(line)


# ---- etcd ----------------------------------------------------------------------

def etcd_post(url, path, body, timeout=2):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as f:
        return json.loads(f.read())


def etcd_start(tmp):
    nodes = [{"name": "n%d" % i, "client": free_port(), "peer": free_port()}
             for i in range(1, 4)]
    cluster = ",".join("%s=http://127.0.0.1:%d" % (n["name"], n["peer"])
                       for n in nodes)
    for n in nodes:
        n["url"] = "http://127.0.0.1:%d" % n["client"]
        log = open(os.path.join(tmp, n["name"] + ".log"), "w")
        n["proc"] = start(["etcd", "--name", n["name"],
                           "--data-dir", os.path.join(tmp, n["name"]),
                           "--listen-client-urls", n["url"],
                           "--advertise-client-urls", n["url"],
                           "--listen-peer-urls",
                           "http://127.0.0.1:%d" % n["peer"],
                           "--initial-advertise-peer-urls",
                           "http://127.0.0.1:%d" % n["peer"],
                           "--initial-cluster", cluster,
                           "--initial-cluster-state", "new",
                           "--initial-cluster-token", "sprig-bench",
                           "--logger", "zap", "--log-level", "error"], log)
    return nodes


def etcd_leader(nodes, deadline_s=30):
    """The node that is the leader, once one is elected and every node
    answers."""
    t0 = time.time()
    while time.time() - t0 < deadline_s:
        try:
            for n in nodes:
                if n["proc"].poll() is not None:
                    continue
                st = etcd_post(n["url"], "/v3/maintenance/status", {})
                if st.get("leader") and \
                        st["leader"] == st["header"]["member_id"]:
                    return n
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError("etcd elected no leader in %d s" % deadline_s)


def etcd_check_put(url):
    """One write through the gateway, read back: the API works."""
    k = base64.b64encode(b"bench/check").decode()
    v = base64.b64encode(b"ok").decode()
    etcd_post(url, "/v3/kv/put", {"key": k, "value": v})
    got = etcd_post(url, "/v3/kv/range", {"key": k})
    assert got["kvs"][0]["value"] == v, got


def summarize_failovers(out, name):
    ms = sorted(f["failover_ms"] for f in out["failovers"]
                if f.get("failover_ms") is not None)
    out["failover_ms_median"] = ms[len(ms) // 2] if ms else None
    out["failover_ms_all"] = ms
    print("%-5s failover: median %s ms of %s" % (name,
                                                  out["failover_ms_median"],
                                                  ms))


def bench_etcd(build, tmp, seconds, failovers):
    if not shutil.which("etcd"):
        return {"skipped": "etcd is not installed (scripts/deps.sh bench)"}
    ver = subprocess.run(["etcd", "--version"], capture_output=True,
                         text=True).stdout.splitlines()[0]
    nodes = etcd_start(tmp)
    leader = etcd_leader(nodes)
    etcd_check_put(leader["url"])
    out = {"version": ver, "api": "v3 HTTP/JSON gateway, POST /v3/kv/put, "
           "HTTP/1.1 keep-alive", "runs": []}
    urls = [leader["url"]] + [n["url"] for n in nodes if n is not leader]
    for inflight in (1, 64):
        r = run_load(build, ["--etcd", ",".join(urls), "--inflight",
                             str(inflight), "--seconds", str(seconds)],
                     timeout=seconds + 60)
        r["load_avg"] = load_avg()
        out["runs"].append(r)
        print("etcd  %2d in flight: %s" % (inflight, json.dumps(r)))
    out["failovers"] = [failover(build, "etcd", leader,
                                 [n for n in nodes if n is not leader])]
    for i in range(1, failovers):  # each on a fresh cluster
        stop_all()
        d = os.path.join(tmp, "again%d" % i)
        os.makedirs(d)
        nodes = etcd_start(d)
        leader = etcd_leader(nodes)
        out["failovers"].append(failover(
            build, "etcd", leader, [n for n in nodes if n is not leader]))
    summarize_failovers(out, "etcd")
    return out


def failover(build, system, leader, rest):
    leader["proc"].kill()
    t_kill = time.time()
    urls = ",".join(n["url"] for n in rest)
    r = run_load(build, ["--" + system, urls, "--first-write", "30000"],
                 timeout=60)
    leader["proc"].wait()
    if r.get("first_ok_unix") is None:
        return {"failover_ms": None, "tries": r.get("tries")}
    return {"failover_ms": round((r["first_ok_unix"] - t_kill) * 1e3, 1),
            "tries": r.get("tries"), "load_avg": load_avg()}


# ---- sprig -------------------------------------------------------------------

def sprig_has_cluster(sprig):
    r = subprocess.run([sprig, "serve", "--help"], capture_output=True,
                       text=True)
    return "--cluster" in r.stdout + r.stderr


def sprig_start(sprig, tmp):
    nodes = [{"id": i, "raft": "127.0.0.1:%d" % free_port(),
              "ws": "127.0.0.1:%d" % free_port()} for i in range(1, 4)]
    for n in nodes:
        n["url"] = "ws://" + n["ws"]
    for n in nodes:
        conf = {"id": n["id"], "raft": n["raft"], "url": n["url"],
                "bootstrap": True,
                "peers": [{"id": p["id"], "raft": p["raft"], "url": p["url"]}
                          for p in nodes if p is not n]}
        path = os.path.join(tmp, "node%d.json" % n["id"])
        with open(path, "w") as f:
            json.dump(conf, f)
        log = open(os.path.join(tmp, "node%d.log" % n["id"]), "w")
        n["proc"] = start([sprig, "--path",
                           os.path.join(tmp, "data%d" % n["id"]), "serve",
                           "--cluster", path, "--ws", n["ws"], "--quic",
                           "off", "--insecure-open"], log)
    return nodes


def sprig_leader(build, nodes, deadline_s=30):
    """The leader: the node a write through the multi-URL client lands on
    (it follows SPRIG_ENOTLEADER's hint)."""
    urls = ",".join(n["url"] for n in nodes if n["proc"].poll() is None)
    t0 = time.time()
    while time.time() - t0 < deadline_s:
        r = run_load(build, ["--sprig", urls, "--leader", "1"], timeout=30)
        for n in nodes:
            if r.get("peer") and r["peer"] == n["ws"]:
                return n
        time.sleep(0.2)
    raise RuntimeError("no Sprig leader in %d s" % deadline_s)


def bench_sprig(build, tmp, seconds, failovers):
    sprig = os.path.join(build, "tools", "sprig")
    if not sprig_has_cluster(sprig):
        return {"skipped": "sprig serve --cluster not available"}
    nodes = sprig_start(sprig, tmp)
    leader = sprig_leader(build, nodes)
    urls = ",".join(n["url"] for n in nodes)
    out = {"api": "sprig_kv_set through the C client given the three "
           "URLs (ws://)", "runs": []}
    for inflight in (1, 64):
        r = run_load(build, ["--sprig", urls, "--inflight", str(inflight),
                             "--seconds", str(seconds)],
                     timeout=seconds + 60)
        r["load_avg"] = load_avg()
        out["runs"].append(r)
        print("sprig %2d in flight: %s" % (inflight, json.dumps(r)))
    out["failovers"] = [failover(build, "sprig", leader,
                                 [n for n in nodes if n is not leader])]
    for i in range(1, failovers):  # each on a fresh cluster
        stop_all()
        d = os.path.join(tmp, "again%d" % i)
        os.makedirs(d)
        nodes = sprig_start(sprig, d)
        leader = sprig_leader(build, nodes)
        out["failovers"].append(failover(
            build, "sprig", leader, [n for n in nodes if n is not leader]))
    summarize_failovers(out, "sprig")
    return out


MARK_BEGIN = "<!-- bench-cluster: written by bench/cluster/bench_cluster.py -->"
MARK_END = "<!-- end bench-cluster -->"


def fmt(v, spec="{:.1f}"):
    return "—" if v is None else spec.format(v)


def side_rows(name, d):
    if "skipped" in d or "error" in d:
        return ["| %s | %s | | | |" % (name, d.get("skipped") or
                                        "failed: " + d["error"])]
    rows = []
    for r in d.get("runs", []):
        rows.append("| %s | %d in flight | %s | %s | %s |" % (
            name, r["inflight"], fmt(r.get("writes_per_s"), "{:.0f}"),
            fmt(r.get("p50_ms"), "{:.2f}"), fmt(r.get("p99_ms"), "{:.2f}")))
    return rows


def section(res):
    e, s = res.get("etcd", {}), res.get("sprig", {})
    md = [MARK_BEGIN, "## Cluster: 3 Sprig nodes beside 3 etcd nodes "
          "(issue 18)", "",
          "`make bench-cluster` (`bench/cluster/bench_cluster.py`, also run "
          "by `make bench`), %s, %s cores, load average %s at the start and "
          "%s at the end (a shared, busy machine: these times are rough). "
          "Three nodes of each on loopback; every write committed by a "
          "majority and fsynced before it is answered. Load: "
          "`bench/cluster/cluster_load`, one connection per writer, 100-byte "
          "values; etcd (%s) through its v3 HTTP/JSON gateway (POST "
          "/v3/kv/put, HTTP/1.1 keep-alive: the gateway adds a JSON to "
          "protobuf translation and an in-process gRPC hop per request "
          "beside a native gRPC client), Sprig through its C client given "
          "the three URLs." % (res["date"], res["cpus"],
                               res["load_avg_start"], res["load_avg_end"],
                               e.get("version", "etcd")), "",
          "| system | writers | writes/s | p50 ms | p99 ms |",
          "|---|---|---|---|---|"]
    md += side_rows("etcd", e) + side_rows("sprig", s)
    md += ["", "Failover (leader killed with SIGKILL → first write "
           "committed on a survivor; a try every 50 ms, each on its own "
           "connection; median of the runs, each on a fresh cluster): "
           "etcd %s ms (runs: %s; its default election timeout is "
           "1000 ms, randomised up to 2000 ms); Sprig %s." % (
               fmt(e.get("failover_ms_median")),
               ", ".join("%.0f" % x for x in e.get("failover_ms_all", [])),
               "%s ms (runs: %s)" % (
                   fmt(s.get("failover_ms_median")),
                   ", ".join("%.0f" % x for x in
                             s.get("failover_ms_all", [])))
               if "failovers" in s else "not measured: " +
               (s.get("skipped") or s.get("error", "?"))), ""]
    if "runs" not in s:
        md += ["The target of issue 18 (Sprig ≥ 1.0× etcd's committed "
               "writes/s) cannot be judged until `sprig serve --cluster` "
               "exists; the harness runs the Sprig side as soon as it does.",
               ""]
    md.append(MARK_END)
    return md


def write_section(res, path):
    text = open(path, encoding="utf-8").read() if os.path.exists(path) \
        else ""
    block = "\n".join(section(res))
    if MARK_BEGIN in text and MARK_END in text:
        a = text.index(MARK_BEGIN)
        b = text.index(MARK_END) + len(MARK_END)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                  "cluster.json"))
    ap.add_argument("--only", choices=["etcd", "sprig"])
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    seconds = 1 if a.quick else a.seconds
    failovers = 1 if a.quick else a.failovers
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpus": os.cpu_count(), "load_avg_start": load_avg(),
              "seconds": seconds}
    tmp = tempfile.mkdtemp(prefix="sprig-bench-cluster.")
    status = 0
    try:
        for name, fn in (("etcd", bench_etcd), ("sprig", bench_sprig)):
            if a.only and a.only != name:
                continue
            d = os.path.join(tmp, name)
            os.makedirs(d)
            try:
                result[name] = fn(a.build, d, seconds, failovers)
            except Exception as e:  # noqa: BLE001 -- recorded, run goes on
                result[name] = {"error": str(e)}
                status = 1
            stop_all()
            if "skipped" in result[name]:
                print("%s: %s" % (name, result[name]["skipped"]))
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_avg_end"] = load_avg()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print("bench_cluster: wrote %s" % a.out)
    if not a.no_report:
        write_section(result, os.path.join(ROOT, "docs", "benchmarks.md"))
    return status


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
