#!/bin/sh
# run.sh BUILD_DIR [bench_local options] -- the local benchmark of
# `make bench`: run BUILD_DIR/bench/bench_local (Sprig vs raw LMDB vs
# SQLite), keep its JSON in bench/results/local.json and regenerate
# docs/benchmarks.md (bench/report.py, with the hand-kept analysis of
# bench/analysis.md) and docs/bench-local.png (gnuplot, bench/chart.gp).
# Options after the build directory go to bench_local (e.g. --quick,
# --seed N).  Exits non-zero if a workload failed; the report still says so.
set -eu

BUILD=${1:?usage: sh bench/run.sh BUILD_DIR [bench_local options]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/bench/bench_local
if [ ! -x "$BIN" ]; then
    echo "run.sh: $BIN is not built (is libsqlite3-dev installed?)" >&2
    exit 1
fi
mkdir -p "$ROOT/bench/results" "$ROOT/docs"
JSON=$ROOT/bench/results/local.json
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sprig-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

status=0
"$BIN" --out "$TMP/local.json" "$@" || status=$?
if [ ! -s "$TMP/local.json" ]; then
    echo "run.sh: bench_local wrote no results (exit $status)" >&2
    exit 1
fi
cp "$TMP/local.json" "$JSON"
python3 "$ROOT/bench/report.py" "$JSON" "$ROOT/bench/analysis.md" \
    "$ROOT/docs/benchmarks.md" "$TMP/chart.dat"
gnuplot -e "dat='$TMP/chart.dat'; out='$ROOT/docs/bench-local.png'" \
    "$ROOT/bench/chart.gp"
echo "run.sh: wrote bench/results/local.json, docs/benchmarks.md," \
    "docs/bench-local.png"
exit $status
