#!/bin/sh
# bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR -- the network benchmark's
# tool as a behaviour test (ctest bench_net_smoke): `sprig serve
# --schema` on an ephemeral port and a fresh storage, then `sprig-bench` with 4 clients and 4 requests in
# flight each loads the data and runs ~1,000 requests of every operation
# (kv.set, kv.get, db.get, db.insert), every answer checked; any error
# fails.  Then sprig-bench must notice errors (a database that does not
# exist: exit status 1), and the server must stop cleanly on SIGTERM.
# Speed is not looked at.
set -eu

SPRIG=${1:?usage: bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR}
BENCH=${2:?usage: bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR}
TMP=${3:?usage: bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR}

fail() {
    echo "bench_net_smoke: FAIL: $*" >&2
    [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" >&2
    exit 1
}

rm -rf "$TMP"
mkdir -p "$TMP"
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# `serve --schema FILE` registers the schema and creates the database
# (what `make run` relies on): nothing else prepares the storage here
printf '{"name":"bench","collections":[{"name":"docs","id_kind":"u64"}]}' \
    >"$TMP/schema.json"
"$SPRIG" --path "$TMP/st" --schema "$TMP/schema.json" serve \
    --ws 127.0.0.1:0 --kv-persistence lazy >"$TMP/serve.log" 2>&1 &
pid=$!

url=""
i=0
while [ $i -lt 200 ]; do # 20 s
    url=$(sed -n 's/.*listening on \(ws:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' \
        "$TMP/serve.log")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || fail "sprig serve exited"
    sleep 0.1
    i=$((i + 1))
done
[ -n "$url" ] || fail "sprig serve did not start"

"$BENCH" -u "$url" -c 4 -P 4 -n 1000 -r 500 -d 100 --load kv,doc \
    -t kv.set,kv.get,db.get,db.insert --timeout 60 -q ||
    fail "sprig-bench reported errors"
# small values (not JSON) and one client thread per connection pair
"$BENCH" -u "$url" -c 4 -P 1 -n 200 -r 500 -d 5 --threads 2 --load kv \
    -t kv.set,kv.get --timeout 60 -q || fail "sprig-bench -d 5 --threads 2"

# errors are noticed: every answer is an error frame
status=0
"$BENCH" -u "$url" -c 2 -P 2 -n 20 --db nope -t db.get --timeout 60 -q \
    >/dev/null 2>"$TMP/err.txt" || status=$?
[ "$status" -eq 1 ] || fail "errors gave exit status $status, not 1"
grep -q "error" "$TMP/err.txt" || fail "no error message: $(cat "$TMP/err.txt")"

# the physical-limit probe works
"$BENCH" --tcp-ping 0.2 -c 4 >/dev/null || fail "--tcp-ping"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "sprig serve exited with $status after SIGTERM"
echo "bench_net_smoke: ok"
