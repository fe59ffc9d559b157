#!/bin/sh
# custom_api_example_test.sh -- runs examples/custom-api.c (the counter
# server) and examples/custom-api-client.c against it twice: the counter
# moves by 6 per client run and persists, each increment's push reaches the
# client, a malformed amount comes back as the server's application error,
# and SIGTERM stops the server cleanly with the final value.
# Usage: custom_api_example_test.sh SERVER CLIENT TMPDIR
set -eu
server=$1 client=$2 tmp=$3
. "$(dirname "$0")/counter_server.sh"
expect() { grep -qx "$1" "$2" || { echo "missing line: $1"; cat "$2"; exit 1; }; }
"$client" "$url" >"$tmp/c1.out"
cat "$tmp/c1.out"
expect "The counter starts at 0" "$tmp/c1.out"
expect "Incremented by 3: 6" "$tmp/c1.out"
expect "Incrementing by 'lots': refused (application error 1): amount 'lots' is not a number" "$tmp/c1.out"
expect "Push counter.changed: 1" "$tmp/c1.out"
expect "Push counter.changed: 3" "$tmp/c1.out"
expect "Push counter.changed: 6" "$tmp/c1.out"
expect "The counter is now 6 (+6)" "$tmp/c1.out"
"$client" "$url" >"$tmp/c2.out"
expect "The counter starts at 6" "$tmp/c2.out"
expect "Push counter.changed: 12" "$tmp/c2.out"
expect "The counter is now 12 (+6)" "$tmp/c2.out"
kill -TERM $pid
wait $pid
trap - EXIT
expect "Server stopped; the counter is 12" "$tmp/server.out"
echo "custom-api example: ok"
