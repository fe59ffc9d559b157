#!/usr/bin/env python3
"""report.py -- turn bench/results/local.json into docs/benchmarks.md and
the data for the chart (docs/bench-local.png, drawn by bench/chart.gp).

For each workload: a table of the rates of Sprig and its peers (raw LMDB,
SQLite, or a baseline of Sprig's own: median, spread over the runs, CPU
per operation), Sprig's ratios against
the targets of docs/design/bench.md (ratio of the medians; the per-run
ratios give its spread), the durability, and the analysis kept by hand in
bench/analysis.md (one `## <workload>` section each), which says where the
time goes and what would close a missed target.  Workloads of one family
(a "group" in the JSON, e.g. kv-local) share one section with one row per
workload and one `## <group>` analysis.

Beside RESULTS.json, when they exist: bench/results/callgrind.json
(bench/callgrind.py: instructions per operation of the CPU-bound rows,
shown in their sections with their targets) and commerce.json
(bench/commerce.py: the commerce benchmark against PostgreSQL, a part of
its own at the end); a "Targets" list says for every target whether the
run met it.  When bench/results/net.json (written by bench/bench_net.py,
`make bench-net`) sits beside RESULTS.json, a "Network" part follows: Sprig over
WebSockets against Redis and PostgreSQL, with the hand-kept analysis of
bench/analysis-net.md (beside ANALYSIS.md).

usage: report.py RESULTS.json ANALYSIS.md OUT.md CHART.dat
Only the Python standard library is used.
"""
import json
import os
import sys

NAMES = {
    "sprig": "Sprig",
    "lmdb": "LMDB (raw)",
    "lmdb-longtxn": "LMDB, one long read txn",
    "sqlite": "SQLite (WAL)",
    "sprig-noview": "Sprig, no view",
    "sprig-2views": "Sprig, two eager views (sum + count)",
    "sprig-lazy": "Sprig, lazy view: inserts + the first query",
    "sqlite-noindex": "SQLite (WAL), no index",
    "sqlite-covering": "SQLite (WAL), covering index (category, price)",
    "queues": "pthread queues (baseline)",
    "encrypted": "Sprig, encrypted (XChaCha20-Poly1305)",
    "plain": "Sprig, neither (baseline)",
    "lz4": "Sprig, LZ4-compressed",
    "encrypted+lz4": "Sprig, compressed then encrypted",
}

# Series names that mean something else in one workload.
WORKLOAD_NAMES = {
    ("local-view-insert", "sprig"): "Sprig, one eager view",
    ("local-view-insert", "sqlite"): "SQLite (WAL), index on category",
    ("local-view-query", "sqlite"): "SQLite (WAL), index on category",
    ("local-view-reduce", "sqlite"): "SQLite (WAL), index on category",
    ("local-view-grouped", "sqlite"): "SQLite (WAL), index on category",
}

PEERS = {
    "lmdb": "raw LMDB",
    "lmdb-longtxn": "LMDB one long txn",
    "sqlite": "SQLite",
    "sprig-noview": "Sprig without the view",
    "sqlite-covering": "SQLite, covering index",
    "queues": "pthread queues",
}

ABOUT = {
    "local-insert-batch":
        "Documents pushed by Sprig into an empty database in transactions "
        "of 1,000 (`sprig_txn` of 1,000 `sprig_txn_insert(..., NULL id)`, "
        "one `sprig_txn_apply`); raw LMDB puts the same documents under "
        "8-byte big-endian ids (`MDB_NOOVERWRITE`), 1,000 per "
        "`mdb_txn_commit`; SQLite inserts them as `INSERT INTO docs(id, "
        "doc)` rows (id INTEGER PRIMARY KEY, doc BLOB), 1,000 per "
        "`BEGIN`/`COMMIT`. The loaded databases are the data of local-get.",
    "local-insert-durable":
        "One thread, one document per transaction, each acknowledged only "
        "once durable: `sprig_insert` (pushed id); LMDB "
        "`mdb_txn_begin`/`mdb_put`/`mdb_txn_commit`; SQLite one autocommit "
        "`INSERT`. A fresh database per run, after a small untimed warm-up.",
    "local-insert-concurrent":
        "8 threads, each inserting its own documents one per durable "
        "transaction. Sprig: all threads share one `sprig_db` handle, so "
        "group commit can batch them; LMDB: each thread its own "
        "txn+commit (LMDB serialises writers); SQLite: each thread its own "
        "connection (busy_timeout 10 s, statements that still get "
        "SQLITE_BUSY are retried and counted).",
    "local-get":
        "Random gets by id over the documents loaded by local-insert-batch, "
        "the same random sequence for every engine (seed below). Sprig: "
        "`sprig_get` + `sprig_doc_free`. LMDB: one read transaction per "
        "get (`mdb_txn_renew`, `mdb_get`, copy the value, `mdb_txn_reset`: "
        "the equivalent of an API call that sees the latest commit) — the "
        "ratio uses this one — and, beside it, all gets in one long read "
        "transaction (the physical upper bound). SQLite: a prepared "
        "`SELECT doc FROM docs WHERE id = ?`, copying the blob.",
    "local-get-miss":
        "Random gets of absent ids over the same documents: each id is a "
        "stored document's 8-byte key followed by one byte (0x80), so it "
        "falls between two stored ones. Sprig: `sprig_get` answering "
        "SPRIG_ENOTFOUND after checking both neighbours' CRCs (a key "
        "renamed in order would sit there; src/local/miss.c). LMDB: a "
        "plain `mdb_get` miss, one read transaction per get as local-get. "
        "No target: the row shows what the check costs.",
    "local-view-insert":
        "JSON documents `{\"id\":k,\"category\":\"c123\","
        "\"price\":4567,...}` of 140–160 bytes, 500 categories (uniform), "
        "integer prices, loaded into empty databases 1,000 per transaction "
        "by every loader in turn. Sprig declares on its collection the "
        "declarative view `by-category` (`json_key` category, `json_value` "
        "price, `SPRIG_REDUCE_SUM`), eager: the target compares it with the "
        "same inserts without the view. Beside it: both eager views the "
        "queries use (with `count-by-category`, `SPRIG_REDUCE_COUNT`); the "
        "view lazy, timed over the inserts plus the first query (which "
        "indexes every document); SQLite's table `items(id INTEGER PRIMARY "
        "KEY, category TEXT, price INTEGER, doc BLOB)` with an index on "
        "category (the program hands SQLite the two fields; Sprig reads "
        "them from the JSON), without index, and with a covering index on "
        "(category, price). The two-view database and the two indexed "
        "SQLite tables of the last run are the data of the queries.",
    "local-view-query":
        "Random key queries: all mappings of one category. Sprig: the key "
        "made with `sprig_key_from_json(\"\\\"c123\\\"\")`, "
        "`sprig_view_query_mappings` (`SPRIG_MATCH_KEY`) on `by-category`, "
        "then each mapping's id and price (parsed from its JSON value); "
        "SQLite: `SELECT id, price FROM items WHERE category = ?`. Every "
        "answer (count, sum of prices, sum of ids) is checked against the "
        "generated documents.",
    "local-view-reduce":
        "Count and sum of prices over a random range of 1–20 categories. "
        "Sprig: `sprig_view_reduce` (`SPRIG_MATCH_RANGE`, both ends "
        "included) on `count-by-category`, then on `by-category`; SQLite: "
        "`SELECT count(*), sum(price) FROM items WHERE category BETWEEN ? "
        "AND ?`. Checked against the generated documents.",
    "local-view-grouped":
        "The same ranges, per category. Sprig: `sprig_view_reduce_grouped` "
        "on both views; SQLite: `SELECT category, count(*), sum(price) FROM "
        "items WHERE category BETWEEN ? AND ? GROUP BY category`. Checked "
        "against the generated documents.",
    "pubsub":
        "One publisher thread, 10 subscriber threads each blocked in "
        "`sprig_subscriber_recv` (a message 10 s late counts as lost), one "
        "topic, fresh subscribers per slice. Rate: a burst of messages published back to back, "
        "divided by the time until the last subscriber has the last one "
        "(queues are bounded above the burst: nothing may be dropped). "
        "Latency: then messages paced at 5,000/s, each carrying its "
        "publish time (`CLOCK_MONOTONIC`); p50 and p99 over every delivery "
        "of a run. Every subscriber checks it gets every message once, in "
        "order. The peer is the least an in-process fan-out does: one "
        "reference-counted copy per message appended to each subscriber's "
        "queue under its mutex, with a condition-variable signal. "
        "design/bench.md's peer, Redis PUBLISH/SUBSCRIBE, is a network "
        "server and belongs with the network benchmarks.",
    "kv-local":
        "Sprig's key-value store in-process (`sprig_kv_set`, "
        "`sprig_kv_increment` by u64 1, `sprig_kv_get` with a copied "
        "value) against raw LMDB doing the same work in the same run: one "
        "write transaction per set (put) or increment (get, add, put), one "
        "read transaction per get (renew, get, copy, reset). Sets write "
        "100-byte values over 1,000 existing keys, increments 1,000 "
        "existing counters: thread t of T owns every T-th key, so each "
        "key's final value is known and checked after every run (all "
        "keys, byte for byte; every counter exactly). Gets read random "
        "keys among 100,000 preloaded ones, checking every length. 8 "
        "threads share one `sprig_db` (group commit batches their writes); "
        "LMDB serialises its writers, one commit each.",
}

KV_DURABILITY = [
    ("immediate", "Sprig `SPRIG_KV_IMMEDIATE` at `SPRIG_DURABILITY_FULL`: "
     "a call returns once its commit has synced data and meta; raw LMDB "
     "with default flags, one such durable commit (fdatasync of the data, "
     "then the meta page) per acknowledged set or increment — the same "
     "guarantee."),
    ("lazy", "Sprig `SPRIG_KV_LAZY` with the server's thresholds (flush "
     "after 10,000 changes or 1 s): commits with `MDB_NOSYNC`, its "
     "housekeeper thread syncs; raw LMDB with `MDB_NOSYNC` and an "
     "`mdb_env_sync` after 10,000 commits or 1 s, done by the writing "
     "thread that notices — the same window of loss on a power failure "
     "(nothing on a process crash, both)."),
]


def fmt_rate(v):
    if v >= 100000:
        return "{:,.0f}k".format(v / 1000)
    if v >= 10000:
        return "{:,.1f}k".format(v / 1000)
    return "{:,.0f}".format(v)


def fmt_num(v):
    return "{:,.0f}".format(v) if v == int(v) else "{:.2f}".format(v)


def fmt_ratio(v):
    return "{:.2f}×".format(v)


def verdict(q):
    if q.get("target") is None:
        return "—", ""
    mark = "✓" if q["met"] else "✗"
    return "≥ {:.1f}×".format(q["target"]), mark


def analysis_sections(path):
    """The `## name` sections of the hand-written analysis, by name."""
    sections, name, lines = {}, None, []
    try:
        text = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        return sections
    for line in text:
        if line.startswith("## "):
            if name:
                sections[name] = "\n".join(lines).strip()
            name, lines = line[3:].strip(), []
        elif name:
            lines.append(line)
    if name:
        sections[name] = "\n".join(lines).strip()
    return sections


def machine_table(r):
    m = r["machine"]
    out = [
        "| | |",
        "|---|---|",
        "| date | {} |".format(r["date"]),
        "| machine | {} CPUs ({}), {} |".format(m["nproc"], m["cpu"],
                                               m["kernel"]),
        "| disk (physical limit) | **{:,.0f} fsyncs/s** "
        "(4 KB `pwrite` + `fdatasync` loop, ~1 s) |".format(
            m["fsyncs_per_s"]),
        "| versions | {} |".format(r.get("versions", "")),
        "| random seed | {} |".format(r["seed"]),
        "| whole run | {:.0f} s{} |".format(
            r["seconds"], " (--quick)" if r["quick"] else ""),
    ]
    return out


def other_ratio(w):
    """The first ratio against neither raw LMDB nor SQLite (a baseline of
    Sprig's own, or SQLite with another index), preferring one with a
    target."""
    others = [q for q in w["ratios"] if q["vs"] not in ("lmdb", "sqlite")]
    return next((q for q in others if q.get("target") is not None),
                others[0] if others else None)


def summary_table(r):
    out = [
        "| workload | Sprig | vs raw LMDB | target | | vs SQLite | target | "
        "| vs other | target | |",
        "|---|---:|---:|---:|:-:|---:|---:|:-:|---:|---:|:-:|",
    ]
    for w in r["workloads"]:
        if not w.get("series", {}).get("sprig"):
            continue
        sprig = w["series"]["sprig"]["median"]
        cells = {}
        for q in w["ratios"]:
            if q["vs"] in ("lmdb", "sqlite"):
                t, mark = verdict(q)
                cells[q["vs"]] = [fmt_ratio(q["ratio"]), t, mark]
        q = other_ratio(w)
        if q:
            t, mark = verdict(q)
            cells["other"] = ["{} {}".format(
                fmt_ratio(q["ratio"]), PEERS.get(q["vs"], q["vs"])), t, mark]
        row = ["**{}**".format(w["name"]),
               "{} {}".format(fmt_rate(sprig), w["unit"])]
        for peer in ("lmdb", "sqlite", "other"):
            row += cells.get(peer, ["", "", ""])
        out.append("| " + " | ".join(row) + " |")
    return out


def latency_table(w):
    """The extras named "<series> p50 latency us" / "... p99 ...", as a
    table (pubsub)."""
    extra = w.get("extra") or {}
    rows = []
    for key in w["series"]:
        p50 = extra.get("{} p50 latency us".format(key))
        p99 = extra.get("{} p99 latency us".format(key))
        if p50 is not None and p99 is not None:
            rows.append("| {} | {:.0f} | {:.0f} |".format(
                NAMES.get(key, key), p50, p99))
    if not rows:
        return []
    return ["", "Latency, publish to receive (paced messages; medians of "
            "the runs' percentiles):", "",
            "| engine | p50 µs | p99 µs |", "|---|---:|---:|"] + rows


def group_section(ws, group, notes):
    """One section for a family of workloads (each a row): Sprig and its
    one peer, their ratio and target, CPU per operation."""
    out = ["## {}".format(group), ""]
    if group in ABOUT:
        out += [ABOUT[group], ""]
    if group == "kv-local":
        out += ["**Durability** of the writes (gets are reads):", ""]
        out += ["- **{}**: {}".format(k, v) for k, v in KV_DURABILITY]
        out.append("")
    out += ["| workload | Sprig | peer | ratio of medians | per-run ratios "
            "| target | | CPU µs/op Sprig / peer | runs |",
            "|---|---:|---:|---:|---:|---:|:-:|---:|---:|"]
    missed = []
    for w in ws:
        if w.get("failed") or not w.get("ratios"):
            out.append("| **{}**: {} | FAILED | | | | | ✗ | | |".format(
                w["name"], w["workload"]))
            missed.append("{} (failed)".format(w["name"]))
            continue
        s = w["series"]["sprig"]
        for q in w["ratios"]:
            p = w["series"][q["vs"]]
            t, mark = verdict(q)
            out.append(
                "| **{}**: {} | {} ({} – {}) | {} {} | **{}** | {} – {} | {} "
                "| {} | {:.1f} / {:.1f} | {} |".format(
                    w["name"], w["workload"], fmt_rate(s["median"]),
                    fmt_rate(s["min"]), fmt_rate(s["max"]),
                    PEERS.get(q["vs"], q["vs"]), fmt_rate(p["median"]),
                    fmt_ratio(q["ratio"]), fmt_ratio(q["min"]),
                    fmt_ratio(q["max"]), t, mark, s["cpu_us_per_op"],
                    p["cpu_us_per_op"], len(s["runs"])))
            if q.get("met") is False:
                missed.append("{} {} {} (target {})".format(
                    w["name"], fmt_ratio(q["ratio"]),
                    PEERS.get(q["vs"], q["vs"]), t))
    out += ["", "Rates in {}: median (min – max over the runs).".format(
        ws[0]["unit"]), ""]
    if missed:
        out += ["**Target missed in this run:** " + "; ".join(missed) +
                ". Why, and what would close the gap: see the analysis "
                "below.", ""]
    out += cg_group_table(ws)
    if notes.get(group):
        out += ["### Analysis", "", notes[group], ""]
    return out


def workload_section(w, notes):
    out = ["## {}".format(w["name"]), ""]
    out.append("**Workload:** {}. **Durability:** {}.".format(
        w["workload"], w["durability"]))
    out.append("")
    if w["name"] in ABOUT:
        out += [ABOUT[w["name"]], ""]
    if w.get("failed"):
        out += ["**This workload FAILED in this run** (see the output of "
                "bench_local); its numbers are incomplete.", ""]
    out += [
        "| engine | median {} | spread (min – max) | runs | CPU µs/op |".format(
            w["unit"]),
        "|---|---:|---:|---:|---:|",
    ]
    for key, s in w["series"].items():
        name = WORKLOAD_NAMES.get((w["name"], key), NAMES.get(key, key))
        out.append("| {} | **{}** | {} – {} | {} | {:.2f} |".format(
            name, fmt_rate(s["median"]), fmt_rate(s["min"]),
            fmt_rate(s["max"]), len(s["runs"]), s["cpu_us_per_op"]))
    out += ["", "| Sprig vs | ratio of medians | per-run ratios | target | |",
            "|---|---:|---:|---:|:-:|"]
    missed = []
    for q in w["ratios"]:
        t, mark = verdict(q)
        out.append("| {} | **{}** | {} – {} | {} | {} |".format(
            PEERS.get(q["vs"], q["vs"]), fmt_ratio(q["ratio"]),
            fmt_ratio(q["min"]), fmt_ratio(q["max"]), t, mark))
        if q.get("met") is False:
            missed.append("{} {} (target {})".format(
                fmt_ratio(q["ratio"]), PEERS.get(q["vs"], q["vs"]), t))
    ser = w["series"]
    if ser.get("lmdb", {}).get("median") and ser.get("sqlite", {}).get(
            "median"):
        out += ["", "Between the peers: raw LMDB / SQLite = {} "
                "(medians).".format(fmt_ratio(ser["lmdb"]["median"] /
                                              ser["sqlite"]["median"]))]
    extra = {k: v for k, v in (w.get("extra") or {}).items()
             if "latency us" not in k}
    if extra:
        out += ["", "Also measured: " + ", ".join(
            "{} = {}".format(k.replace("_", " "), fmt_num(v))
            for k, v in extra.items()) + "."]
    out += latency_table(w)
    out += cg_table(w["name"])
    out.append("")
    if missed:
        out += ["**Target missed in this run:** " + "; ".join(missed) +
                ". Why, and what would close the gap: see the analysis "
                "below.", ""]
    if notes.get(w["name"]):
        out += ["### Analysis", "", notes[w["name"]], ""]
    return out


# ---- callgrind counts (callgrind.json) and the targets -------------------

CG = {}  # the rows of bench/results/callgrind.json, by name (set by main)


def cg_verdict(q):
    if q.get("target") is None:
        return "—", ""
    return "≤ {:.1f}×".format(q["target"]), "✓" if q["met"] else "✗"


def cg_table(name):
    """Instructions per operation of workload `name` (callgrind), Sprig's
    ratios against its peers and their targets (lower is better)."""
    row = CG.get(name)
    if not row or not row.get("series"):
        return []
    out = ["", "**Instructions per operation** (callgrind, {:,} operations "
           "of the same workload, one op = one {}; every thread counted; "
           "unlike the times, these do not move with the machine's "
           "load):".format(row.get("n", 0), row["ops"]), "",
           "| engine | instructions / op | | Sprig vs | instruction ratio "
           "| target | |", "|---|---:|---|---|---:|---:|:-:|"]
    ratios = {q["vs"]: q for q in row["ratios"]}
    for key, v in row["series"].items():
        name = WORKLOAD_NAMES.get((name, key), NAMES.get(key, key))
        q = ratios.get(key)
        cells = ["", "", "", ""]
        if q:
            t, mark = cg_verdict(q)
            cells = [PEERS.get(key, key), "**{}**".format(
                fmt_ratio(q["ratio"])), t, mark]
        out.append("| {} | {:,.0f} | | {} |".format(
            name, v["per_op"], " | ".join(cells)))
    return out


def cg_group_table(ws):
    """The instruction counts of a family's rows (kv-local), one line
    each."""
    rows = [(w["name"], CG[w["name"]]) for w in ws if w["name"] in CG]
    if not rows:
        return []
    out = ["**Instructions per operation** (callgrind, the one-thread "
           "rows whose time is CPU, every thread counted):", "",
           "| workload | operations | Sprig | peer | instruction ratio | "
           "target | |", "|---|---:|---:|---:|---:|---:|:-:|"]
    for name, row in rows:
        for q in row["ratios"]:
            t, mark = cg_verdict(q)
            out.append("| {} | {:,} | {:,.0f} | {} {:,.0f} | **{}** | {} | "
                       "{} |".format(name, row.get("n", 0),
                                     row["series"]["sprig"]["per_op"],
                                     PEERS.get(q["vs"], q["vs"]),
                                     row["series"][q["vs"]]["per_op"],
                                     fmt_ratio(q["ratio"]), t, mark))
    return out + [""]


def targets_list(r, cm):
    """Every target of the run, met or missed, in one list: the ratios of
    the medians (a target is met only when the median meets it), the
    instruction ratios, and the commerce benchmark."""
    out = []
    for w in r["workloads"]:
        for q in w.get("ratios", []):
            if q.get("target") is None:
                continue
            out.append("- **{}**: Sprig {} {} (median; runs {} – {}), "
                       "target ≥ {:.1f}× — **{}**".format(
                           w["name"], fmt_ratio(q["ratio"]),
                           PEERS.get(q["vs"], q["vs"]), fmt_ratio(q["min"]),
                           fmt_ratio(q["max"]), q["target"],
                           "met" if q["met"] else "missed"))
    for name, row in CG.items():
        for q in row["ratios"]:
            if q.get("target") is not None:
                out.append("- **{}**, instructions per operation: Sprig {} "
                           "{}'s, target ≤ {:.1f}× — **{}**".format(
                               name, fmt_ratio(q["ratio"]),
                               PEERS.get(q["vs"], q["vs"]), q["target"],
                               "met" if q["met"] else "missed"))
    if cm and cm.get("ratio"):
        q = cm["ratio"]
        out.append("- **commerce**: Sprig {} PostgreSQL (median; runs {} – "
                   "{}), target: ahead (> 1.0×) — **{}**".format(
                       fmt_ratio(q["ratio"]), fmt_ratio(q["min"]),
                       fmt_ratio(q["max"]), "met" if q["met"] else "missed"))
    elif cm:
        out.append("- **commerce**: FAILED in this run — **missed**")
    if not out:
        return []
    return ["## Targets: met or missed", "",
            "Every target of this run, as the medians (and, for instructions, "
            "the callgrind counts) have it; the per-run spread beside each "
            "ratio:", ""] + out + [""]


# ---- the commerce benchmark (commerce.json) ------------------------------

def commerce_part(cm, notes):
    out = ["# Commerce: Sprig vs PostgreSQL, 16 clients over the network",
           "",
           "BonsaiDb's headline workload: a shop of categories, products, "
           "customers, orders and product ratings, driven by "
           "`bench_commerce` (`bench/commerce.c`) from {} client threads, "
           "each with its own connection, against `sprig serve` (full "
           "durability; the public C client API; declarative eager views "
           "products/by-category and ratings/rating-sum + rating-count, "
           "`bench/commerce-schema.json`) and PostgreSQL {} (libpq, "
           "prepared statements, the same documents plus indexed columns, "
           "`fsync=on`, `synchronous_commit=on`), both on loopback, "
           "started by `bench/commerce.py` in the same run. The mix "
           "(seeded, reproducible; seed {}): {}. An order is a "
           "multi-document transaction (Sprig: read the customer, then "
           "insert the order and update the customer at the revision "
           "read, retrying on a conflict; PostgreSQL: one INSERT … "
           "RETURNING feeding an UPDATE). Every answer is checked, and "
           "after each run the database must hold exactly the orders and "
           "ratings acknowledged.".format(
               cm.get("clients", 16), cm.get("postgres", ""),
               cm.get("seed", ""), ", ".join(
                   "{}% {}".format(v, k) for k, v in cm["mix"].items())),
           ""]
    if cm.get("failed"):
        return out + ["**FAILED in this run:** {}".format(
            cm.get("error", "")[:400]), ""]
    sp, pg, q = cm["series"]["sprig"], cm["series"]["postgres"], cm["ratio"]
    out += ["| side | operations/s (median) | spread (min – max) | runs | "
            "order conflicts retried |", "|---|---:|---:|---:|---:|",
            "| Sprig | **{}** | {} – {} | {} | {} |".format(
                fmt_rate(sp["median"]), fmt_rate(sp["min"]),
                fmt_rate(sp["max"]), len(sp["runs"]), sp["retries"]),
            "| PostgreSQL | **{}** | {} – {} | {} | — |".format(
                fmt_rate(pg["median"]), fmt_rate(pg["min"]),
                fmt_rate(pg["max"]), len(pg["runs"])),
            "",
            "Sprig / PostgreSQL: **{}** (per-run ratios {} – {}); target: "
            "ahead (> 1.0×) — **{}**. Runs of {:g} s after a {:g} s "
            "warm-up, the sides taking turns.".format(
                fmt_ratio(q["ratio"]), fmt_ratio(q["min"]),
                fmt_ratio(q["max"]), "met" if q["met"] else "missed",
                cm["seconds_per_run"], cm["warmup"]),
            "",
            "| operation | Sprig /s | p50 ms | p99 ms | PostgreSQL /s | "
            "p50 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for k, a in sp["kinds"].items():
        b = pg["kinds"].get(k, {})
        out.append("| {} | {} | {:.2f} | {:.2f} | {} | {:.2f} | {:.2f} "
                   "|".format(k, fmt_rate(a["per_s"]), a["p50_ms"],
                              a["p99_ms"], fmt_rate(b.get("per_s", 0)),
                              b.get("p50_ms", 0), b.get("p99_ms", 0)))
    out += ["", "Latencies: medians over the runs of each run's "
            "percentiles.", ""]
    if notes.get("commerce"):
        out += ["### Analysis", "", notes["commerce"], ""]
    return out


def chart_data(r, path):
    """One line per workload: x, ratio/min/max/target vs LMDB, the same
    vs SQLite, the same vs the other peer of the summary ('-' when
    absent)."""
    lines = ["# label x lmdb lmin lmax ltarget sqlite smin smax starget "
             "other omin omax otarget"]
    x = 0
    for w in r["workloads"]:
        if not w.get("series") or not w.get("ratios"):
            continue
        cols = []
        for peer in ("lmdb", "sqlite", "other"):
            if peer == "other":
                q = other_ratio(w)
            else:
                q = next((q for q in w["ratios"] if q["vs"] == peer), None)
            if q is None:
                cols += ["-"] * 4
            else:
                cols += ["{:.4f}".format(q["ratio"]),
                         "{:.4f}".format(q["min"]),
                         "{:.4f}".format(q["max"]),
                         "{:.2f}".format(q["target"])
                         if q.get("target") is not None else "-"]
        label = w["name"].replace("local-", "")
        lines.append('"{}" {} {}'.format(label, x, " ".join(cols)))
        x += 1
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# ---- the network benchmarks (net.json) ---------------------------------

NET_PEERS = {"redis": "Redis", "postgres": "PostgreSQL",
             "tarantool": "Tarantool", "old": "old build",
             "ws": "Sprig over ws://"}
NET_TOOLS = {"sprig": "`sprig-bench` → `sprig serve`",
             "redis": "`redis-benchmark` → `redis-server` (key-value) and "
                      "`sprig-bench --pubsub --redis` → `redis-server` "
                      "(PUBLISH/SUBSCRIBE)",
             "postgres": "`pgbench` → `postgres`",
             "tarantool": "`sprig-bench --tarantool` (IPROTO) → `tarantool` "
                          "(bench/tarantool_server.lua)"}


def net_rate(v):
    return fmt_rate(v) + "/s"


def net_verdict(q):
    if not q or q.get("target") is None:
        return "—", ""
    return "≥ {:.1f}×".format(q["target"]), "✓" if q["met"] else "✗"


def net_summary(rows):
    out = ["| bench | row | Sprig | peer | ratio | per-run ratios | "
           "p99 ms Sprig / peer | target | |",
           "|---|---|---:|---:|---:|---:|---:|---:|:-:|"]
    for r in rows:
        peer = NET_PEERS.get(r["peer"], r["peer"])
        if r.get("failed") or "ratio" not in r:
            out.append("| {} | {} | FAILED | {} | | | | | ✗ |".format(
                r["name"], r["row"], peer))
            continue
        q = r["ratio"]
        t, mark = net_verdict(q)
        ss, sp = r["series"]["sprig"], r["series"][r["peer"]]
        out.append("| {} | {} | {} | {} {} | **{}** | {} – {} | {} / {} | "
                   "{} | {} |"
                   .format(r["name"], r["row"], net_rate(ss["median"]), peer,
                           net_rate(sp["median"]), fmt_ratio(q["ratio"]),
                           fmt_ratio(q["min"]), fmt_ratio(q["max"]),
                           net_fmt(ss.get("p99_ms")),
                           net_fmt(sp.get("p99_ms")), t, mark))
    return out


def net_fmt(v, spec="{:.2f}"):
    return spec.format(v) if v is not None else "—"


def net_rows(rows, name):
    """Per row: each side's median, spread, latency and CPU per request."""
    out = []
    for dur in dict.fromkeys(r.get("durability", "") for r in rows
                             if r["name"] == name):
        out += ["**Durability:** {}.".format(dur), ""]
        out += ["| row | side | median | spread (min – max) | p50 ms | "
                "p99 ms | server CPU µs/req | client CPU µs/req |",
                "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["name"] != name or r.get("durability", "") != dur:
                continue
            if r.get("failed"):
                out.append("| {} | — | FAILED: {} | | | | | |".format(
                    r["row"], r.get("error", "")[:200].replace("|", "/")))
                continue
            for side in ("sprig", r["peer"]):
                s = r["series"][side]
                label = "Sprig" if side == "sprig" else NET_PEERS.get(
                    side, side)
                p50 = s.get("p50_ms")
                if p50 is None and s.get("avg_ms") is not None:
                    p50_txt = "avg {}".format(net_fmt(s["avg_ms"]))
                else:
                    p50_txt = net_fmt(p50)
                out.append("| {} | {} | **{}** | {} – {} | {} | {} | {} | "
                           "{} |".format(
                               r["row"], label, net_rate(s["median"]),
                               fmt_rate(s["min"]), fmt_rate(s["max"]),
                               p50_txt, net_fmt(s.get("p99_ms")),
                               net_fmt(s.get("server_cpu_us"), "{:.1f}"),
                               net_fmt(s.get("client_cpu_us"), "{:.1f}")))
        out.append("")
    for r in rows:
        if r["name"] != name or r.get("failed"):
            continue
        for side in ("sprig", r["peer"]):
            ooo = r["series"].get(side, {}).get("out_of_order")
            if ooo:
                out += ["{} ({}): a median of {:,.0f} messages per run "
                        "reached a subscriber after a later one (out of "
                        "publish order).".format(
                            "Sprig" if side == "sprig" else
                            NET_PEERS.get(side, side), r["row"], ooo), ""]
    missed = [r for r in rows if r["name"] == name and
              (r.get("failed") or r.get("ratio", {}).get("met") is False)]
    if missed:
        out += ["**Target missed in this run:** " + "; ".join(
            "{} ({})".format(r["row"], "failed" if r.get("failed") else
                             "{} vs target {}".format(
                                 fmt_ratio(r["ratio"]["ratio"]),
                                 net_verdict(r["ratio"])[0]))
            for r in missed) + ". Why, and what would close the gap: see "
            "the analysis below.", ""]
    return out


def quic_cg_table(cg):
    """net-quic: the server's instructions per request over quic:// and
    ws://, by library (bench_net.py's quic_callgrind)."""
    if not cg:
        return []
    q, w = cg["by_object"]["quic"], cg["by_object"]["ws"]
    keys = sorted(set(q) | set(w), key=lambda k: -(q.get(k, 0) -
                                                   w.get(k, 0)))
    out = ["**Where the difference comes from**: the server's instructions "
           "per `{}` (callgrind: `sprig serve` under valgrind, {} clients, "
           "-P 1, the difference between a dump of {:,} more requests and "
           "the one before, so handshakes and warm-up drop out; the "
           "kernel's work -- system calls, UDP or TCP -- is not "
           "counted):".format(cg["op"], cg["clients"], cg["requests"]), "",
           "| code | quic:// | ws:// | quic − ws |", "|---|---:|---:|---:|"]
    for k in keys:
        out.append("| {} | {:,} | {:,} | {:+,} |".format(
            k, q.get(k, 0), w.get(k, 0), q.get(k, 0) - w.get(k, 0)))
    pq, pw = cg["per_request"]["quic"], cg["per_request"]["ws"]
    out += ["| **total** | **{:,}** | **{:,}** | **{:+,}** ({:.2f}×) |"
            .format(pq, pw, pq - pw, pq / pw if pw else 0), ""]
    return out


def network_part(net, notes):
    m = net["machine"]
    rtt = m.get("loopback_round_trips_per_s", {})
    one, many = rtt.get("1"), rtt.get(str(net.get("clients", 50)))
    md = [
        "# Network: net-kv, net-doc and pubsub",
        "",
        "Sprig served over WebSockets (`sprig serve`, protocol sprig/1) "
        "against Redis, PostgreSQL and Tarantool, **all started on "
        "loopback in the same run**, each loaded by a benchmark tool with "
        "the same clients, pipeline depth and data size: {}, {}, {}, {}. "
        "Generated by "
        "`make bench-net` (`bench/bench_net.py` → "
        "`bench/results/net.json` → `bench/report.py`); the analysis "
        "comes from `bench/analysis-net.md`.".format(
            NET_TOOLS["sprig"], NET_TOOLS["redis"], NET_TOOLS["postgres"],
            NET_TOOLS["tarantool"]),
        "",
        "| | |",
        "|---|---|",
        "| date | {} |".format(net["date"]),
        "| machine | {} CPUs ({}), {} — the load generators run on the "
        "same cores as the servers |".format(m["nproc"], m["cpu"],
                                             m["kernel"]),
        "| loopback (physical limit) | **{}** round trips/s with 1 "
        "connection, **{}** with {} (raw TCP ping-pong of 16 bytes, echo "
        "server on one thread: `sprig-bench --tcp-ping`) |".format(
            fmt_rate(one) if one else "?", fmt_rate(many) if many else "?",
            net.get("clients", 50)),
        "| versions | {} |".format(net.get("versions", "")),
        "| data | {:,} keys / documents of {} bytes; {} clients |".format(
            net.get("keyspace", 0), net.get("datasize", 0),
            net.get("clients", 50)),
        "| runs | warm-up, then {} per side and row of ~{:g} s each, "
        "taking turns; whole run {:.0f} s{} |".format(
            net["runs"], net["seconds_per_run"], net["seconds"],
            " (--quick)" if net.get("quick") else ""),
        "",
        "## Network summary",
        "",
    ]
    md += net_summary(net["rows"]) + [""]
    if notes.get("summary"):
        md += [notes["summary"], ""]
    if notes.get("method"):
        md += ["## How the network benchmarks are run", "",
               notes["method"], ""]
    for name in dict.fromkeys(r["name"] for r in net["rows"]):
        md += ["## {}".format(name), ""]
        md += net_rows(net["rows"], name)
        if name == "net-quic":
            md += quic_cg_table(net.get("quic_callgrind"))
        if notes.get(name):
            md += ["### Analysis", "", notes[name], ""]
    if notes.get("server"):
        md += ["## Server performance issues found", "", notes["server"],
               ""]
    return md


def files_part(fj):
    """The file store beside a plain file (files.json, bench_files)."""
    rows = fj.get("rows", [])
    plain = next((x for x in rows if x["name"].startswith("plain")), None)
    md = ["## The file store (F16) beside a plain file", "",
          "`bench_files`: one file of {:.0f} MiB written through "
          "`sprig_files_put_stream` and read back with "
          "`sprig_files_read_stream` (64 KiB chunks, 4 MiB per "
          "transaction), beside the same bytes written to a plain file "
          "on the same disk (`write` + `fsync`) and read back (`read`, "
          "from the page cache), median of {} runs, in one run on a "
          "machine with {} CPUs at load average {:.1f} (shared: "
          "absolute numbers are noisy, the ratios less so).".format(
              fj["size_bytes"] / 1048576.0, fj["runs"], fj.get("cpus", "?"),
              fj.get("loadavg", -1)), "",
          "| | write MiB/s | read MiB/s | write vs plain | read vs plain |",
          "|---|---:|---:|---:|---:|"]
    for x in rows:
        wr = x["write_mib_s"] / plain["write_mib_s"] if plain else 0
        rr = x["read_mib_s"] / plain["read_mib_s"] if plain else 0
        md.append("| {} | {:.1f} | {:.1f} | {:.2f}× | {:.2f}× |".format(
            x["name"], x["write_mib_s"], x["read_mib_s"], wr, rr))
    return md + [""]


def import_part(ij):
    """`sprig doc import` beside sqlite3's .import (import.json, written by
    bench/bench_import.py)."""
    md = ["## Bulk import from the CLI beside sqlite3 `.import`", "",
          "`bench/bench_import.py`: the same {} rows imported by `sprig doc "
          "import` (NDJSON, locally and over `--url` on loopback) and by "
          "`sqlite3 .import` (CSV into a table), {} runs each in one run on "
          "{} CPUs at load average {:.1f} before / {:.1f} after (shared: "
          "absolute numbers are noisy).".format(
              ij["results"][0]["rows"] if ij.get("results") else "?",
              ij["results"][0]["runs"] if ij.get("results") else "?",
              ij.get("cores", "?"), ij.get("load_before", -1),
              ij.get("load_after", -1)), "",
          "| | median s | spread (min – max) s | rows/s |",
          "|---|---:|---:|---:|"]
    for x in ij.get("results", []):
        md.append("| {} | {:.2f} | {:.2f} – {:.2f} | {:,} |".format(
            x["peer"], x["seconds_median"], x["seconds_min"],
            x["seconds_max"], x["rows_per_second"]))
    return md + [""]


def backup_part(bj):
    """Backup, restore, export, import beside cp (backup.json, written by
    bench/bench_backup)."""
    rows = bj.get("rows", [])
    cp = next((x for x in rows if x["job"] == "cp+fsync"), None)
    md = ["## Backup and restore beside `cp`", "",
          "`bench/bench_backup`: {} databases holding {} MiB of 1 KiB "
          "documents ({:.0f} MiB of data files), each job {} times in one "
          "run; MB/s counts the bytes each job wrote. `cp` copies the data "
          "files, `cp+fsync` also syncs them, as a backup and a restore "
          "do.".format(bj.get("databases", "?"), bj.get("mb", "?"),
                       bj.get("data_bytes", 0) / 1048576.0,
                       bj.get("runs", "?")), "",
          "| job | median s | spread (min – max) s | MB/s | vs cp+fsync |",
          "|---|---:|---:|---:|---:|"]
    for x in rows:
        ratio = x["mb_per_s"] / cp["mb_per_s"] if cp else 0
        md.append("| {} | {:.3f} | {:.3f} – {:.3f} | {:.1f} | {:.2f}× |"
                  .format(x["job"], x["median_s"], x["min_s"], x["max_s"],
                          x["mb_per_s"], ratio))
    return md + [""]


def auth_part(aj, cg=None):
    """Permission checks on against off (auth.json, bench/auth_bench; and
    auth_callgrind.json, bench/auth_callgrind.py, when there is one)."""
    lines = ["## Permission checks on against off", "",
             "`bench/auth_bench` (`make bench-auth`): {} clients over ws://, "
             "{} alternating rounds of {:g} s with checks off "
             "(`--insecure-open`) and on (a logged-in user granted through "
             "patterns), in one run; median (min-max).".format(
                 aj["clients"], aj["rounds"], aj["seconds"]), ""]
    if "load_before" in aj:
        lines += ["Machine load (1-minute load average, 2 cores shared): "
                  "{:.1f} before, {:.1f} after.".format(
                      aj["load_before"], aj["load_after"]), ""]
    lines += ["| requests | checks off, req/s | checks on, req/s | "
              "on / off (target ≥ 0.95×) |", "|---|---:|---:|---:|"]
    kinds = [("get", "`db.get`"),
             ("write", "overwrite (a 1-operation transaction)")]
    for key, name in kinds:
        k = aj.get(key)
        if not k:
            continue
        lines.append("| {} | {:,} ({:,}-{:,}) | {:,} ({:,}-{:,}) | "
                     "{:.3f}× |".format(name, k["off"], k["off_min"],
                                        k["off_max"], k["on"], k["on_min"],
                                        k["on_max"], k["ratio"]))
    if "get" not in aj:
        lines.append("| `db.get` | {:,} | {:,} | {:.3f}× |".format(
            aj["req_s_off"], aj["req_s_on"], aj["ratio"]))
    lines += ["", "| | value |", "|---|---:|",
              "| one permission check (9 statements) | {} ns of CPU |".format(
                  aj["ns_per_check"]),
              "| logins/s at the default argon2id cost ({} MiB) | {:.2f} |"
              .format(aj["memlimit_mib"], aj["logins_s"]),
              "| logins refused busy (bound: {} hashing at once) | {:,} |"
              .format(aj["max_hashing"], aj["login_busy"]), ""]
    if cg:
        lines += auth_cg_part(cg)
    lines += [
        "**The network benchmarks with checks on.** `sprig-bench --user "
        "NAME --password-env VAR` logs every connection in (auth.password) "
        "before its tests, so any `sprig-bench` row can be run against a "
        "server that enforces authentication instead of `--insecure-open` "
        "(bench/bench_net.py keeps `--insecure-open`: its peers check "
        "nothing either). Create the user with `sprig --path DIR admin user "
        "create NAME --password-env VAR --hash-cost min`: at the default "
        "argon2id cost 50 connections logging in at once, 4 hashes at a "
        "time, can outlast the server's 10 s authentication timeout on a "
        "loaded machine; logins refused as busy are sent again after 10 "
        "ms. The login is not timed (ctest `bench_login`).", ""]
    return lines


def auth_cg_part(cg):
    """Instructions per request, checks on and off (auth_callgrind.json)."""
    on, off = cg["sides"]["on"], cg["sides"]["off"]
    return [
        "Instructions per request of the server (callgrind, every thread; "
        "`bench/auth_callgrind.py`, run by `make bench-auth`): `sprig serve` "
        "under valgrind, {} clients of sprig-bench doing `{}` with checks "
        "off (`--insecure-open`) and on (`--user`, the same grants as "
        "above); the counters are zeroed and dumped around runs of {:,} and "
        "{:,} requests and the difference divided, so connecting and "
        "logging in cancel out. User-space instructions only: the system "
        "calls that dominate a request's time are not counted, so this "
        "ratio is larger than the req/s one. Load-independent.".format(
            cg["clients"], cg["operation"], cg["requests"][0],
            cg["requests"][1]), "",
        "| `{}` | checks off | checks on | on / off |".format(
            cg["operation"]),
        "|---|---:|---:|---:|",
        "| instructions per request | {:,.0f} | {:,.0f} | {:.3f}× |".format(
            off["per_request"], on["per_request"], cg["ratio_on_off"]), ""]


def load_beside(here, name):
    """bench/results/<name> when it exists (callgrind.json, written by
    bench/callgrind.py; commerce.json, by bench/commerce.py), else None."""
    path = os.path.join(here, name)
    if not os.path.exists(path):
        return None
    return json.load(open(path, encoding="utf-8"))


def split_sections(lines):
    """[(heading, lines)] of a Markdown page: a section starts at a "# " or
    "## " line (with the comment lines just before it); the first has
    heading None (what precedes any heading)."""
    secs, cur = [], (None, [])
    for line in lines:
        if line.startswith(("# ", "## ")):
            lead = []
            while cur[1] and cur[1][-1].startswith("<!--"):
                lead.insert(0, cur[1].pop())
            secs.append(cur)
            cur = (line.strip(), lead + [line])
        else:
            cur[1].append(line)
    secs.append(cur)
    return secs


def keep_hand_sections(md, old_path):
    """The sections of the page at `old_path` that this generator does not
    make (written by other tools -- bench_js.mjs -- or by hand) stay: each
    after the section it followed, or at the end.  Regenerating must not
    drop them."""
    if not os.path.exists(old_path):
        return md
    old = split_sections(open(old_path, encoding="utf-8").read()
                         .rstrip("\n").split("\n"))
    new = split_sections("\n".join(md).split("\n"))
    made = {h for h, _ in new}
    kept, prev = set(), None
    for h, body in old:
        if h is not None and h not in made:
            at = next((i + 1 for i, (nh, _) in enumerate(new)
                       if prev is not None and nh == prev), len(new))
            while at < len(new) and new[at][0] in kept:
                at += 1  # after the ones kept there before it
            if body and body[-1].strip():
                body = body + [""]
            new.insert(at, (h, body))
            kept.add(h)
        prev = h
    out = []
    for _, body in new:
        if out and out[-1].strip() and body and body[0].strip():
            out.append("")
        out += body
    return out


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    results, analysis, out_md, out_dat = argv[1:]
    r = json.load(open(results, encoding="utf-8"))
    notes = analysis_sections(analysis)
    here = os.path.dirname(os.path.abspath(results))
    cg = load_beside(here, "callgrind.json")
    CG.update(cg.get("rows", {}) if cg else {})
    cm = load_beside(here, "commerce.json")
    md = [
        "# Benchmarks — the local engine",
        "",
        "Sprig — documents, views, key-value store, PubSub — against raw "
        "LMDB and SQLite (WAL) **in the same run, on the "
        "same data, with the same durability**, as the rules of "
        "`design/bench.md` ask: absolute numbers on a shared, noisy "
        "machine only travel with their peers beside them. Generated by "
        "`make bench` (`bench/run.sh`: `bench_local` → "
        "`bench/results/local.json` → `bench/report.py` + "
        "`bench/chart.gp`); do not edit by hand — the analysis sections "
        "come from `bench/analysis.md`.",
        "",
    ]
    md += machine_table(r) + [""]
    md += ["## Summary", ""] + summary_table(r) + [""]
    md += targets_list(r, cm)
    md += ["![Sprig's ratios against its peers, per workload]"
           "(bench-local.png)", ""]
    if notes.get("summary"):
        md += [notes["summary"], ""]
    if notes.get("method"):
        md += ["## How it is measured", "", notes["method"], ""]
    done = set()
    for w in r["workloads"]:
        g = w.get("group")
        if g and g not in done:
            done.add(g)
            md += group_section([x for x in r["workloads"]
                                 if x.get("group") == g], g, notes)
        elif g:
            continue
        elif w.get("series"):
            md += workload_section(w, notes)
        else:
            md += ["## {}".format(w["name"]), "",
                   "**Not measured in this run:** {}.".format(
                       w.get("workload") or "it failed"), ""]
    if notes.get("engine"):
        md += ["## Engine performance issues found", "", notes["engine"], ""]
    net_json = os.path.join(os.path.dirname(os.path.abspath(results)),
                            "net.json")
    if os.path.exists(net_json):
        net = json.load(open(net_json, encoding="utf-8"))
        md += network_part(net, analysis_sections(os.path.join(
            os.path.dirname(os.path.abspath(analysis)), "analysis-net.md")))
    if cm:
        md += commerce_part(cm, notes)
    fj = load_beside(here, "files.json")
    if fj:
        md += files_part(fj)
    bj = load_beside(here, "backup.json")
    if bj:
        md += backup_part(bj)
    ij = load_beside(here, "import.json")
    if ij:
        md += import_part(ij)
    aj = load_beside(here, "auth.json")
    if aj:
        md += auth_part(aj, load_beside(here, "auth_callgrind.json"))
    if notes.get("codec"):
        md += ["## Encryption and compression (the value codec)", "",
               notes["codec"], ""]
    md = keep_hand_sections(md, out_md)
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(md).rstrip() + "\n")
    chart_data(r, out_dat)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
