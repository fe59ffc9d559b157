#!/bin/sh
# cli_api_test.sh -- `sprig apis` and `sprig call` (issue 12) against a
# real server with custom APIs: examples/custom-api.c (the counter server).
# The listing without a login has the built-in rows (server.apis, db.get)
# and hides the counter's APIs, which the logged-in user sees with their
# action, resource, summary and flags; a JSON request goes out as
# MessagePack and comes back as the same JSON (counter.echo), from the
# argument and from stdin; --raw sends text (counter.increment); an
# application error, an unknown API, a refused call and bad JSON exit
# non-zero with the server's words.
# Usage: cli_api_test.sh SERVER SPRIG TMPDIR
set -eu
server=$1 sprig=$2 tmp=$3
. "$(dirname "$0")/counter_server.sh"
fail() { echo "FAIL: $*"; exit 1; }
has() { grep -qF -- "$1" "$2" || { echo "missing: $1"; cat "$2"; fail "$3"; }; }
hasnt() { ! grep -qF -- "$1" "$2" || { cat "$2"; fail "$3"; }; }
export PW="counter password"
as_demo="--url $url --user counter-demo --password-env PW"
# the listing, anonymous: built-in rows, no counter
sleep 0.2 # the server makes its user right after it prints the URL
"$sprig" --url "$url" apis >"$tmp/anon.json"
has '"name":"server.apis","action":"api.list"' "$tmp/anon.json" "server.apis listed"
has '"name":"db.get","action":"document.get","resource":"sprig.db.{db}.collection.{collection}.document.{id}"' "$tmp/anon.json" "db.get and its pattern"
hasnt 'counter.' "$tmp/anon.json" "counter APIs hidden from an anonymous caller"
# logged in: the counter's APIs with their rows
"$sprig" $as_demo apis >"$tmp/demo.json"
has '{"name":"counter.increment","action":"counter.write","resource":"sprig.api.counter.increment","summary":"Add an amount to the counter; push the new value.","custom":true,"write":true}' "$tmp/demo.json" "counter.increment row"
has '"name":"counter.get","action":"counter.read","resource":"sprig.api.counter.get","summary":"","custom":true,"write":false}' "$tmp/demo.json" "counter.get row"
has '"name":"counter.echo"' "$tmp/demo.json" "counter.echo row"
# JSON -> MessagePack -> JSON, from the argument and from stdin
req='{"a":[1,-2,3.5,true,null,"x",300,-40000,70000],"b":{"c":"é"}}'
out=$("$sprig" $as_demo call counter.echo "$req")
[ "$out" = "$req" ] || fail "echo: got $out"
out=$(printf '%s' '[1,{"k":[]}]' | "$sprig" $as_demo call counter.echo -)
[ "$out" = '[1,{"k":[]}]' ] || fail "echo from stdin: got $out"
out=$("$sprig" $as_demo call counter.echo)
[ "$out" = 'null' ] || fail "an empty call: got $out"
# --raw: text both ways (the counter speaks decimal text)
out=$("$sprig" $as_demo call --raw counter.increment 5)
[ "$out" = '"5"' ] || fail "increment: got $out"
out=$("$sprig" $as_demo call --raw counter.get)
[ "$out" = '"5"' ] || fail "get: got $out"
# errors: the application's, an unknown API, refused, bad JSON
set +e
"$sprig" $as_demo call --raw counter.increment lots 2>"$tmp/err1"; rc1=$?
"$sprig" $as_demo call counter.nope 2>"$tmp/err2"; rc2=$?
"$sprig" --url "$url" call --raw counter.get 2>"$tmp/err3"; rc3=$?
"$sprig" $as_demo call counter.echo '{"a":' 2>"$tmp/err4"; rc4=$?
set -e
[ $rc1 -eq 1 ] || fail "an application error exits 1, not $rc1"
has "amount 'lots' is not a number" "$tmp/err1" "the handler's message"
[ $rc2 -ne 0 ] || fail "an unknown API exits non-zero"
has "unknown API 'counter.nope'" "$tmp/err2" "the unknown API named"
[ $rc3 -eq 6 ] || fail "a refused call exits 6, not $rc3"
[ $rc4 -eq 2 ] || fail "bad JSON exits 2, not $rc4"
has "not JSON" "$tmp/err4" "bad JSON said"
kill -TERM $pid
wait $pid
trap - EXIT
echo "cli apis/call: ok"
