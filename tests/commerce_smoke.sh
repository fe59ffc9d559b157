#!/bin/sh
# commerce_smoke.sh SPRIG BENCH_COMMERCE SCHEMA TMPDIR -- the commerce
# benchmark's driver as a behaviour test (ctest commerce_smoke): `sprig
# serve --schema bench/commerce-schema.json` on an ephemeral port and a
# fresh storage, then bench_commerce loads the shop and runs its mix for
# ~2 s from 4 clients.  The driver checks every answer and that the
# database gained exactly the orders (with their customers' counters) and
# ratings it acknowledged; this script also checks the JSON it wrote: every
# kind of operation ran and orders were placed.  A second run without
# --load must find the data and pass the same checks.  Speed is not
# looked at.
set -eu

SPRIG=${1:?usage: commerce_smoke.sh SPRIG BENCH_COMMERCE SCHEMA TMPDIR}
DRIVER=${2:?usage: commerce_smoke.sh SPRIG BENCH_COMMERCE SCHEMA TMPDIR}
SCHEMA=${3:?usage: commerce_smoke.sh SPRIG BENCH_COMMERCE SCHEMA TMPDIR}
TMP=${4:?usage: commerce_smoke.sh SPRIG BENCH_COMMERCE SCHEMA TMPDIR}

NAME=commerce_smoke
. "$(cd "$(dirname "$0")" && pwd)/serve_lib.sh"

# --insecure-open: the load tool does not log in
"$SPRIG" --path "$TMP/st" --schema "$SCHEMA" serve --ws 127.0.0.1:0 \
    --insecure-open >"$TMP/serve.log" 2>&1 &
pid=$!

wait_url

seed=${SPRIG_SEED:-$(date +%s)}
echo "commerce_smoke: seed $seed (SPRIG_SEED replays it)"

# every kind ran at least once and some orders landed (the driver itself
# compared the database with what it acknowledged)
check_json() {
    for k in product-lookup category-query rating-query order rate; do
        n=$(sed -n "s/.*\"$k\": {\"n\": \([0-9]*\).*/\1/p" "$1")
        [ -n "$n" ] && [ "$n" -gt 0 ] || fail "$1: no $k operations"
    done
}

"$DRIVER" --sprig "$url" --load --small --clients 4 --seconds 2 \
    --warmup 0.2 --seed "$seed" --out "$TMP/run1.json" ||
    fail "bench_commerce (with --load) failed"
check_json "$TMP/run1.json"
"$DRIVER" --sprig "$url" --small --clients 4 --seconds 0.5 --warmup 0 \
    --seed "$seed" --run 1 --out "$TMP/run2.json" ||
    fail "bench_commerce (second run) failed"
check_json "$TMP/run2.json"

# a wrong database is an error, not a pass
status=0
"$DRIVER" --sprig "$url" --db nope --small --clients 1 --seconds 0.2 \
    --warmup 0 >/dev/null 2>"$TMP/err.txt" || status=$?
[ "$status" -eq 1 ] || fail "a missing database gave exit status $status"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "sprig serve exited with $status after SIGTERM"
echo "commerce_smoke: ok"
