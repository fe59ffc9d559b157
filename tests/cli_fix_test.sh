#!/bin/sh
# cli_fix_test.sh -- issue 16's "Fix" list, with the command lines the
# issue quotes: over --url every message names the server, not the local
# default path; options that do not apply are refused (serve --url, --path
# with --url, --ca without wss://); demo over --url names the URL; a busy
# storage names the server holding it; --url ws://HOST gets port 5646;
# serve takes --ws PORT and --ws :PORT, and a port in use fails before the
# storage is made, with a --ws hint; kv set k -- -5 --type i64; global
# options anywhere; a usage error is the error plus one line pointing to
# --help; missing arguments are named; a view key that is not JSON says
# how to quote it.  Registered with ctest as `cli_fix` by
# tools/CMakeLists.txt:
#     sh tests/cli_fix_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-fix-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

nl='
'
# serve_up LOG ARGS...: start `sprig ARGS...` (a serve) in the background;
# sets srv (its pid) and url (where it listens) once it says so.
serve_up() {
    log=$1
    shift
    "$BIN" "$@" >"$log" 2>&1 &
    srv=$!
    url=""
    i=0
    while [ $i -lt 300 ] && [ -z "$url" ] && kill -0 $srv 2>/dev/null; do
        sleep 0.1
        url=$(sed -n 's/.*listening on \(ws:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$log" 2>/dev/null || true)
        i=$((i + 1))
    done
}
serve_down() {
    kill -TERM $srv 2>/dev/null
    wait $srv 2>/dev/null
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# port_free N: nothing listens on 127.0.0.1:N
port_free() {
    python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $1))" 2>/dev/null
}

cd "$T" || exit 1
run "$BIN" demo
expect_has "setup: sprig demo on ./sprig-data" 0 "storage './sprig-data'"
serve_up "$T/serve.log" --schema "$(dirname "$0")/../examples/schemas/demo.json" serve --insecure-open --quic off --ws 0
U=$url
main_srv=$srv
case $U in ws://*) good ;; *) rc=- out=$(cat "$T/serve.log") && bad "serve starts" ;; esac

# 1. messages over --url name the server
run "$BIN" --url "$U" --db nosuch doc list messages
expect_err "no such database over --url names the server" 3 "no database named 'nosuch' in '$U'"
case $err in *sprig-data*) bad "the message names ./sprig-data" ;; *) good ;; esac
run "$BIN" --url mem: db create x
expect_err "no schema over --url names the storage" 2 "no schema is registered in 'mem:'"

# 2. options that do not apply are refused
run "$BIN" --url "$U" serve
expect_err "sprig --url ws://... serve" 2 "give --path DIR, not --url"
[ -d "$T/sprig-data/db" ] && good
run "$BIN" --url "$U" --path ./other db list
expect_err "--path with --url" 2 "--path and --url name two storages"
run "$BIN" --url "$U" --ca x.pem db list
expect_err "--ca without wss://" 2 "--ca applies to a wss://, quic:// or sprig:// --url only"
run "$BIN" --url "$U" demo
expect_has "sprig --url ... demo names the server" 0 "demo -- storage '$U'"
case $out in *"storage './sprig-data'"*) bad "demo over --url names ./sprig-data" ;; *) good ;; esac
expect_has "demo's closing hint uses --url" 0 "--url $U doc list messages"

# 3. the demo's hint while `make run` serves: busy names the server
run "$BIN" --path ./sprig-data doc list messages
expect_err "busy names the server holding the storage" 5 "held by the server at $U: reach it through the server with --url $U"
run "$BIN" --url "$U" doc count messages
expect "the way the busy message points works" 0 "8"

# 4. --url without a port is 5646; --ws PORT and :PORT; a port in use
run "$BIN" --url ws://127.0.0.1 db list
case $err in *":80"*) bad "--url ws://127.0.0.1 went to port 80" ;; *) good ;; esac
case "$rc:$err" in 0:* | *"127.0.0.1:5646"*) good ;; *) bad "--url ws://127.0.0.1 is not port 5646" ;; esac
p1=19503
port_free $p1 || p1=$(free_port)
serve_up "$T/ws1.log" --path "$T/ws1" serve --insecure-open --quic off --ws $p1
case $url in "ws://127.0.0.1:$p1") good ;; *) rc=- out=$(cat "$T/ws1.log") && bad "serve --ws $p1" ;; esac
serve_down
p2=19504
port_free $p2 || p2=$(free_port)
serve_up "$T/ws2.log" --path "$T/ws2" serve --insecure-open --quic off --ws :$p2
case $url in "ws://127.0.0.1:$p2") good ;; *) rc=- out=$(cat "$T/ws2.log") && bad "serve --ws :$p2" ;; esac
serve_down
busy_port=${U##*:}
run "$BIN" --path "$T/newdir" serve --insecure-open --quic off --ws "127.0.0.1:$busy_port"
expect_err "serve on a port in use" 1 "address already in use"
case $err in *"--ws"*) good ;; *) bad "no --ws hint for a port in use" ;; esac
[ -e "$T/newdir" ] && bad "serve made the storage before failing on the port" || good

# 5. kv set k -- -5 --type i64; global options anywhere; usage errors
run "$BIN" kv set k -- -5 --type i64 --url "$U"
expect "kv set k -- -5 --type i64 (--url after)" 0 '{"key":"k","status":"inserted"}'
run "$BIN" kv get k --url "$U"
expect_has "kv get k: the i64 -5" 0 '"value":-5'
run "$BIN" doc list messages --url "$U" --db default --limit 1
expect_has "--url and --db after the command" 0 '"id":1'
run "$BIN" doc --url "$U" count messages
expect "a global option between the group and its command" 0 "8"
run "$BIN" --url "$U" doc get messages
[ "$rc" = 2 ] && [ "$err" = "sprig: missing argument ID${nl}sprig: see 'sprig doc get --help'" ] &&
    good || bad "missing argument ID, then one line pointing to --help"
run "$BIN" --url "$U" doc get
expect_err "missing arguments named" 2 "missing arguments COLLECTION ID"
run "$BIN" --url "$U" kv set k -5 --bogus
[ "$rc" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 2 ] &&
    good || bad "a usage error is two lines, not the full help"
run "$BIN" --url "$U" view query messages by-author --key me
expect_err "a view key that is not JSON" 2 "quote a string, as in --key '\"me\"'"
run "$BIN" --url "$U" view query messages by-author --key '"me"'
expect "--key '\"me\"'" 0 "[]"

srv=$main_srv
serve_down
[ -f "$T/sprig-data/serve.url" ] && bad "serve.url left after the server stopped" || good
run "$BIN" --path ./sprig-data doc count messages
expect "the storage is free again" 0 "8"

echo "$NAME: $pass passed, $fail failed"
[ $fail = 0 ]
