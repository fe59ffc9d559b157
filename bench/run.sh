#!/bin/sh
# run.sh BUILD_DIR [bench_local options] -- the local part of `make
# bench`, plus the commerce benchmark:
#   1. BUILD_DIR/bench/bench_local (Sprig vs raw LMDB vs SQLite, timed,
#      median and spread over several runs) -> bench/results/local.json;
#   2. bench/callgrind.py: the CPU-bound rows again under callgrind, for
#      instructions per operation beside the time ratios
#      -> bench/results/callgrind.json;
#   3. bench/commerce.py: the commerce workload, 16 clients over loopback,
#      `sprig serve` vs PostgreSQL in the same run
#      -> bench/results/commerce.json;
#   4. bench_files: the file store's write and read MiB/s beside a plain
#      file on the same disk -> bench/results/files.json;
#   5. BUILD_DIR/bench/bench_backup: backup, restore, export and import
#      beside `cp` of the same files -> bench/results/backup.json;
# then regenerate docs/benchmarks.md (bench/report.py, with the hand-kept
# analysis of bench/analysis.md) and docs/bench-local.png (gnuplot,
# bench/chart.gp).  Options after the build directory go to bench_local
# (e.g. --quick, --seed N); --quick also shortens steps 2 and 3, and the
# seed is shared.  Exits non-zero if a step failed; the report still says
# what ran.
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

# the options steps 2 and 3 share with bench_local
quick=""
seed=${SPRIG_SEED:-$(date +%s)}
prev=""
for a in "$@"; do
    [ "$a" = "--quick" ] && quick="--quick"
    [ "$prev" = "--seed" ] && seed=$a
    prev=$a
done

status=0
"$BIN" --out "$TMP/local.json" --seed "$seed" "$@" || status=$?
if [ ! -s "$TMP/local.json" ]; then
    echo "run.sh: bench_local wrote no results (exit $status)" >&2
    exit 1
fi
cp "$TMP/local.json" "$JSON"
python3 "$ROOT/bench/callgrind.py" "$BUILD" --seed "$seed" $quick ||
    status=$?
python3 "$ROOT/bench/commerce.py" "$BUILD" --seed "$seed" $quick ||
    status=$?
# the file store beside a plain file on the same disk
"$BUILD/bench/bench_files" --out "$ROOT/bench/results/files.json" $quick ||
    status=$?
# backup and restore MB/s beside cp of the same files
"$BUILD/bench/bench_backup" --seed "$seed" $quick --tmp "$TMP" \
    --out "$ROOT/bench/results/backup.json" || status=$?
python3 "$ROOT/bench/report.py" "$JSON" "$ROOT/bench/analysis.md" \
    "$ROOT/docs/benchmarks.md" "$TMP/chart.dat"
gnuplot -e "dat='$TMP/chart.dat'; out='$ROOT/docs/bench-local.png'" \
    "$ROOT/bench/chart.gp"
echo "run.sh: wrote bench/results/{local,callgrind,commerce,files}.json," \
    "docs/benchmarks.md, docs/bench-local.png"
exit $status
