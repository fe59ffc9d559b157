#!/usr/bin/env python3
"""report.py -- turn bench/results/local.json into docs/benchmarks.md and
the data for the chart (docs/bench-local.png, drawn by bench/chart.gp).

For each workload: a table of the rates of Sprig, raw LMDB and SQLite
(median, spread over the runs, CPU per operation), Sprig's ratios against
the targets of docs/design/bench.md (ratio of the medians; the per-run
ratios give its spread), the durability, and the analysis kept by hand in
bench/analysis.md (one `## <workload>` section each), which says where the
time goes and what would close a missed target.

usage: report.py RESULTS.json ANALYSIS.md OUT.md CHART.dat
Only the Python standard library is used.
"""
import json
import sys

NAMES = {
    "sprig": "Sprig",
    "lmdb": "LMDB (raw)",
    "lmdb-longtxn": "LMDB, one long read txn",
    "sqlite": "SQLite (WAL)",
}

PEERS = {
    "lmdb": "raw LMDB",
    "lmdb-longtxn": "LMDB one long txn",
    "sqlite": "SQLite",
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
}


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


def summary_table(r):
    out = [
        "| workload | Sprig | vs raw LMDB | target | | vs SQLite | target | |",
        "|---|---:|---:|---:|:-:|---:|---:|:-:|",
    ]
    for w in r["workloads"]:
        if not w.get("series"):
            continue
        sprig = w["series"]["sprig"]["median"]
        cells = {}
        for q in w["ratios"]:
            if q["vs"] in ("lmdb", "sqlite"):
                t, mark = verdict(q)
                cells[q["vs"]] = [fmt_ratio(q["ratio"]), t, mark]
        row = ["**{}**".format(w["name"]),
               "{} {}".format(fmt_rate(sprig), w["unit"])]
        for peer in ("lmdb", "sqlite"):
            row += cells.get(peer, ["", "", ""])
        out.append("| " + " | ".join(row) + " |")
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
        out.append("| {} | **{}** | {} – {} | {} | {:.2f} |".format(
            NAMES.get(key, key), fmt_rate(s["median"]), fmt_rate(s["min"]),
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
    extra = w.get("extra") or {}
    if extra:
        out += ["", "Also measured: " + ", ".join(
            "{} = {}".format(k.replace("_", " "), fmt_num(v))
            for k, v in extra.items()) + "."]
    out.append("")
    if missed:
        out += ["**Target missed in this run:** " + "; ".join(missed) +
                ". Why, and what would close the gap: see the analysis "
                "below.", ""]
    if notes.get(w["name"]):
        out += ["### Analysis", "", notes[w["name"]], ""]
    return out


def chart_data(r, path):
    """One line per workload: x, ratio/min/max/target vs LMDB, the same
    vs SQLite ('-' when absent)."""
    lines = ["# label x lmdb lmin lmax ltarget sqlite smin smax starget"]
    x = 0
    for w in r["workloads"]:
        if not w.get("series"):
            continue
        cols = []
        for peer in ("lmdb", "sqlite"):
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


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    results, analysis, out_md, out_dat = argv[1:]
    r = json.load(open(results, encoding="utf-8"))
    notes = analysis_sections(analysis)
    md = [
        "# Benchmarks — the local engine",
        "",
        "Sprig against raw LMDB and SQLite (WAL) **in the same run, on the "
        "same documents, with the same durability**, as the rules of "
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
    md += ["![Sprig's ratios against its peers, per workload]"
           "(bench-local.png)", ""]
    if notes.get("summary"):
        md += [notes["summary"], ""]
    if notes.get("method"):
        md += ["## How it is measured", "", notes["method"], ""]
    for w in r["workloads"]:
        if w.get("series"):
            md += workload_section(w, notes)
        else:
            md += ["## {}".format(w["name"]), "",
                   "**Not measured in this run:** {}.".format(
                       w.get("workload") or "it failed"), ""]
    if notes.get("engine"):
        md += ["## Engine performance issues found", "", notes["engine"], ""]
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(md).rstrip() + "\n")
    chart_data(r, out_dat)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
