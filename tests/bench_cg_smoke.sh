#!/bin/sh
# bench_cg_smoke.sh BENCH_LOCAL TMPDIR -- the callgrind mode of bench_local
# as a behaviour test (ctest bench_cg_smoke): every row and series that
# bench/callgrind.py counts runs natively with a few hundred operations
# (`bench_local --cg ROW SERIES --n 300`), so each one's set-up, measured
# calls and checks are exercised; then, when valgrind is installed, one
# row runs under callgrind as callgrind.py runs it and must dump a count
# of instructions per operation in a sane range.  Speed is not looked at.
set -eu

BIN=${1:?usage: bench_cg_smoke.sh BENCH_LOCAL TMPDIR}
TMP=${2:?usage: bench_cg_smoke.sh BENCH_LOCAL TMPDIR}

fail() {
    echo "bench_cg_smoke: FAIL: $*" >&2
    exit 1
}

rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
seed=${SPRIG_SEED:-$(date +%s)}
echo "bench_cg_smoke: seed $seed (SPRIG_SEED replays it)"

# the rows and series of bench/callgrind.py
for rs in "local-insert-batch sprig lmdb sqlite" \
    "local-get sprig lmdb sqlite" \
    "local-view-insert sprig sprig-noview sqlite" \
    "local-view-query sprig sqlite" "local-view-reduce sprig sqlite" \
    "local-view-grouped sprig sqlite" "kv-set-lazy-1t sprig lmdb" \
    "kv-incr-lazy-1t sprig lmdb" "kv-get-1t sprig lmdb"; do
    set -- $rs
    row=$1
    shift
    for s in "$@"; do
        out=$("$BIN" --cg "$row" "$s" --n 300 --seed "$seed" \
            --dir "$TMP/d" 2>&1) || fail "$row $s: $out"
        echo "$out" | grep -q '^cg-ops: [1-9]' || fail "$row $s: $out"
    done
done
"$BIN" --cg no-such-row sprig --n 10 --dir "$TMP/d" >/dev/null 2>&1 &&
    fail "an unknown row passed"

if command -v valgrind >/dev/null 2>&1; then
    valgrind -q --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$TMP/cg.out" "$BIN" --cg local-get lmdb \
        --n 2000 --seed "$seed" --dir "$TMP/d" >"$TMP/out.txt" 2>&1 ||
        fail "under valgrind: $(cat "$TMP/out.txt")"
    total=$(sed -n 's/^totals: //p' "$TMP/cg.out".*)
    [ -n "$total" ] || fail "no callgrind dump"
    per=$((total / 2000))
    # a raw LMDB get is ~2,000 instructions; only the measured gets count
    [ "$per" -gt 200 ] && [ "$per" -lt 20000 ] ||
        fail "$per instructions per LMDB get"
    echo "bench_cg_smoke: raw LMDB get: $per instructions under callgrind"
else
    echo "bench_cg_smoke: valgrind not installed: callgrind part skipped"
fi
echo "bench_cg_smoke: ok"
