#!/bin/sh
# bench/compare_net.sh REV [bench_net.py options] -- the no-regression
# check of the network benchmarks: builds git revision REV (for example
# the previous main) in a temporary directory (Release, from `git archive`,
# so nothing is registered in the repository and nothing is left behind),
# builds this tree (Release, in $BUILD, default build), then runs every
# net row of bench/bench_net.py with both `sprig serve`s started side by
# side, driven by this tree's sprig-bench, runs taking turns (the order
# alternating), and prints the table of ratios new/old with the spread
# of the per-run ratios (and writes them to /tmp/sprig-compare-net.json).
#   bench/compare_net.sh main~1
#   bench/compare_net.sh abc1234 --only net-doc --runs 7
# A ratio whose per-run range straddles 1.0 is noise on this machine.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:?usage: bench/compare_net.sh REV [bench_net.py options]}
shift
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

old=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sprig-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

echo "compare_net: old = $REV ($old), built in $tmp"
mkdir "$tmp/src"
git -C "$ROOT" archive "$old" | tar -x -C "$tmp/src"
cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
    -DSPRIG_BENCH=OFF >/dev/null
cmake --build "$tmp/build" -j "$JOBS" --target sprig_cli >/dev/null

echo "compare_net: new = $(git -C "$ROOT" describe --always --dirty), \
built in $BUILD"
sh "$ROOT/scripts/deps.sh" --bench
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target sprig_cli sprig_bench >/dev/null

python3 "$ROOT/bench/bench_net.py" "$BUILD" --compare "$tmp/build" "$@"
