#!/bin/sh
# bench_login_smoke.sh -- `sprig-bench --user NAME --password-env VAR`
# (ctest bench_login): the load tool against a server with its
# permission engine on (no --insecure-open).  Logged in as a user granted
# everything, 20 connections run kv.set and kv.get with every answer
# checked; without --user every request is refused (exit 1, "not
# allowed"); a wrong password fails the connect phase ("authentication
# failed"); a user granted only kv.get gets its gets through and its sets
# refused.  Speed is not looked at.
#     sh tests/bench_login_smoke.sh SPRIG SPRIG_BENCH TMPDIR
set -eu

SPRIG=${1:?usage: bench_login_smoke.sh SPRIG SPRIG_BENCH TMPDIR}
BENCH=${2:?usage: bench_login_smoke.sh SPRIG SPRIG_BENCH TMPDIR}
TMP=${3:?usage: bench_login_smoke.sh SPRIG SPRIG_BENCH TMPDIR}

NAME=bench_login_smoke
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/serve_lib.sh"

BENCH_PW='bench-login-pw-5Tq'
BENCH_WRONG='not-the-pw'
export BENCH_PW BENCH_WRONG
st() { "$SPRIG" --path "$TMP/st" "$@" >/dev/null; }
# --hash-cost min: 20 logins at once stay well inside the server's
# authentication timeout on a loaded machine
st admin user create bench --password-env BENCH_PW --hash-cost min
st admin group create all
st admin group grant all '*' sprig
st admin user add-group bench all
st admin user create reader --password-env BENCH_PW --hash-cost min
st admin group create readers
st admin group grant readers kv.get sprig
st admin user add-group reader readers
printf '{"name":"bench","collections":[{"name":"docs","id_kind":"u64"}]}' \
    >"$TMP/schema.json"
"$SPRIG" --path "$TMP/st" --schema "$TMP/schema.json" serve \
    --ws 127.0.0.1:0 --quic off >"$TMP/serve.log" 2>&1 &
pid=$!
wait_url

"$BENCH" -u "$url" --user bench --password-env BENCH_PW -c 20 -P 2 -n 2000 \
    -r 500 --load kv -t kv.set,kv.get --timeout 60 -q ||
    fail "sprig-bench --user: errors"

# expect_fail WHAT TEXT ARGS...: sprig-bench exits 1 saying TEXT
expect_fail() {
    what=$1 text=$2
    shift 2
    status=0
    "$BENCH" -u "$url" "$@" --timeout 60 -q >/dev/null 2>"$TMP/err.txt" ||
        status=$?
    [ "$status" -eq 1 ] || fail "$what: exit status $status, not 1"
    grep -q "$text" "$TMP/err.txt" ||
        fail "$what: no '$text' in: $(cat "$TMP/err.txt")"
}
expect_fail "no login" "not allowed" -c 2 -n 20 -t kv.get
expect_fail "a wrong password" "authentication failed" \
    --user bench --password-env BENCH_WRONG -c 2 -n 20 -t kv.get
"$BENCH" -u "$url" --user reader --password-env BENCH_PW -c 2 -n 20 -r 500 \
    -t kv.get --timeout 60 -q >/dev/null || fail "reader: kv.get refused"
expect_fail "reader: kv.set" "not allowed: action 'kv.set'" \
    --user reader --password-env BENCH_PW -c 2 -n 20 -t kv.set
status=0
"$BENCH" -u "$url" --user bench -n 1 2>/dev/null || status=$?
[ "$status" -eq 2 ] || fail "--user without --password-env: status $status"

kill -TERM "$pid"
wait "$pid" || fail "serve did not stop cleanly"
pid=""
echo "$NAME: ok"
