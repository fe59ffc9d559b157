#!/bin/sh
# bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR -- the network benchmark's
# tool as a behaviour test (ctest bench_net_smoke): `sprig serve
# --schema` on an ephemeral port and a fresh storage, then `sprig-bench` with 4 clients and 4 requests in
# flight each loads the data and runs ~1,000 requests of every operation
# (kv.set, kv.get, db.get, db.insert), every answer checked; any error
# fails.  Then sprig-bench must notice errors (a database that does not
# exist: exit status 1), and the server must stop cleanly on SIGTERM.
# PubSub: `sprig-bench --pubsub` (1 publisher -> 3 subscribers, a few
# hundred messages, one at a time and pipelined) must see every message
# reach every subscriber once, and fail on a database that does not exist.
# The peers' halves run when the peers are installed (scripts/deps.sh
# --bench), each started on an ephemeral port and stopped by its pid:
# `--pubsub --redis` against redis-server, and `--tarantool` (db.get,
# db.insert, every answer checked) against bench/tarantool_server.lua.
# Speed is not looked at.
set -eu

SPRIG=${1:?usage: bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR}
BENCH=${2:?usage: bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR}
TMP=${3:?usage: bench_net_smoke.sh SPRIG SPRIG_BENCH TMPDIR}

NAME=bench_net_smoke
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/serve_lib.sh"

# `serve --schema FILE` registers the schema and creates the database
# (what `make run` relies on): nothing else prepares the storage here
printf '{"name":"bench","collections":[{"name":"docs","id_kind":"u64"}]}' \
    >"$TMP/schema.json"
# --insecure-open: the load tool does not log in (the benchmark of
# permission checks, bench/auth, does)
"$SPRIG" --path "$TMP/st" --schema "$TMP/schema.json" serve \
    --ws 127.0.0.1:0 --kv-persistence lazy --insecure-open \
    >"$TMP/serve.log" 2>&1 &
pid=$!

wait_url

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

# PubSub: every message reaches every subscriber (checked by the tool)
"$BENCH" -u "$url" --pubsub 100 -c 3 -P 1 --window 1 -d 100 --timeout 60 \
    -q || fail "sprig-bench --pubsub, one at a time"
"$BENCH" -u "$url" --pubsub 300 -c 3 -P 8 --window 32 -d 100 --timeout 60 \
    -q || fail "sprig-bench --pubsub, pipelined"
status=0
"$BENCH" -u "$url" --pubsub 10 -c 2 --db nope --timeout 60 -q \
    >/dev/null 2>"$TMP/err.txt" || status=$?
[ "$status" -eq 1 ] || fail "pubsub on a missing database: status $status"

# the physical-limit probe works
"$BENCH" --tcp-ping 0.2 -c 4 >/dev/null || fail "--tcp-ping"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "sprig serve exited with $status after SIGTERM"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for FILE PATTERN WHAT: until FILE holds PATTERN (20 s)
wait_for() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$peer" 2>/dev/null || fail "$3 exited: $(tail -5 "$1")"
        [ $i -lt 200 ] || fail "$3 did not start"
        sleep 0.1
        i=$((i + 1))
    done
}

stop_peer() {
    kill -TERM "$peer"
    wait "$peer" 2>/dev/null || true
    peer=""
}

if command -v redis-server >/dev/null; then
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --daemonize no --logfile "" >"$TMP/redis.log" 2>&1 &
    peer=$!
    wait_for "$TMP/redis.log" "Ready to accept" redis-server
    "$BENCH" --redis "127.0.0.1:$port" --pubsub 300 -c 3 -P 8 --window 32 \
        -d 100 --timeout 60 -q || fail "sprig-bench --pubsub --redis"
    stop_peer
else
    echo "bench_net_smoke: redis-server not installed: --redis not tried"
fi

if command -v tarantool >/dev/null; then
    port=$(free_port)
    mkdir "$TMP/tt"
    tarantool "$HERE/../bench/tarantool_server.lua" "$port" "$TMP/tt" \
        fsync 500 100 >"$TMP/tarantool.log" 2>&1 &
    peer=$!
    wait_for "$TMP/tarantool.log" "^ready" tarantool
    "$BENCH" --tarantool "127.0.0.1:$port" -c 4 -P 2 -n 300 -r 500 -d 100 \
        --threads 2 -t db.get,db.insert --timeout 60 -q ||
        fail "sprig-bench --tarantool"
    stop_peer
else
    echo "bench_net_smoke: tarantool not installed: --tarantool not tried"
fi
echo "bench_net_smoke: ok"
