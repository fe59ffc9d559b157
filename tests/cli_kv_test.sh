#!/bin/sh
# cli_kv_test.sh -- end-to-end test of `sprig kv` (tools/sprig/cmd_kv.c):
# every subcommand and option, its exact JSON output and exit status, --help
# at every level, and that values persist between runs.  Registered with
# ctest as `cli_kv` by tools/CMakeLists.txt:
#     sh tests/cli_kv_test.sh BUILD/tools/sprig [SCRATCH_DIR]
# SCRATCH_DIR (default: next to the binary) is emptied first.  Each failed
# check says what it expected; the last line counts passes and failures.

NAME=cli-kv-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

# ---- help and usage (no storage needed) ------------------------------------

for cmd in "kv" "kv get" "kv set" "kv incr" "kv del" "kv list"; do
    # shellcheck disable=SC2086 # $cmd is words on purpose
    run sp $cmd --help
    expect_has "sprig $cmd --help" 0 "usage: sprig"
done
run sp --help
expect_has "sprig --help names kv" 0 "kv get|set|incr|del|list"
run sp kv
expect_err "kv without a command" 2 "missing command"
run sp kv frob
expect_err "kv frob" 2 "unknown command 'frob'"
run sp kv get
expect_err "kv get without a key" 2 "missing argument"
run sp kv get k
expect_err "kv get without a storage" 3 "no storage"

# ---- a storage with a database ---------------------------------------------

run sp schema define app notes
run sp db create default --schema app
expect "db create" 0 '{"name":"default","schema":"app"}'

run sp kv set greeting hello
expect "set bytes" 0 '{"key":"greeting","status":"inserted"}'
run sp kv get greeting
expect "get bytes" 0 '{"key":"greeting","type":"bytes","value":"hello"}'
run sp kv set greeting "hi there" --previous
expect "set --previous" 0 '{"key":"greeting","status":"updated","previous":{"type":"bytes","value":"hello"}}'
run sp kv set greeting nope --if-vacant --previous
expect "set --if-vacant on a key" 0 '{"key":"greeting","status":"not_changed","previous":{"type":"bytes","value":"hi there"}}'
run sp kv set absent nope --if-present --previous
expect "set --if-present on no key" 0 '{"key":"absent","status":"not_changed","previous":null}'
run sp kv get absent
expect_err "get a missing key" 3 "no key 'absent'"
run sp kv set n --type i64 -- -5
expect "set i64 (-- before a negative number)" 0 '{"key":"n","status":"inserted"}'
run sp kv set u 18446744073709551615 --type u64
expect "set u64 max" 0 '{"key":"u","status":"inserted"}'
run sp kv set f 0.5 --type f64
expect "set f64" 0 '{"key":"f","status":"inserted"}'
run sp kv set x 1 --type u64 --ns other
expect "set in a namespace" 0 '{"key":"x","status":"inserted"}'
run sp kv set bad 1x --type i64
expect_err "set a malformed i64" 2 "'1x' is not a i64"
run sp kv set bad --type u64 -- -1
expect_err "set a negative u64" 2 "is not a u64"
run sp kv set bad 1 --type text
expect_err "set an unknown type" 2 "unknown type 'text'"
run sp kv set bad 1 --if-vacant --if-present
expect_err "set with both checks" 2 "exclude each other"
run sp kv set bad 1 --expire-in 5 --expire-at 5
expect_err "set with both expirations" 2 "not both"

# ---- incr -------------------------------------------------------------------

run sp kv incr n
expect "incr by the default 1" 0 '{"key":"n","type":"i64","value":-4}'
run sp kv incr n 10 --decrement
expect "decrement" 0 '{"key":"n","type":"i64","value":-14}'
run sp kv incr fresh 3 --type u64
expect "incr a missing key" 0 '{"key":"fresh","type":"u64","value":3}'
run sp kv incr u
expect_err "incr past u64 max" 1 "out of range"
run sp kv incr u --saturating
expect "incr --saturating" 0 '{"key":"u","type":"u64","value":18446744073709551615}'
run sp kv incr f 2
expect "incr an f64 by an integer" 0 '{"key":"f","type":"f64","value":2.5}'
run sp kv incr greeting
expect_err "incr bytes" 2 "holds bytes"
run sp kv incr n 1 --type bytes
expect_err "incr by bytes" 2 "not bytes"

# ---- list, del, get --delete -------------------------------------------------

run sp kv list
expect "list" 0 '[{"key":"f","type":"f64","value":2.5},{"key":"fresh","type":"u64","value":3},{"key":"greeting","type":"bytes","value":"hi there"},{"key":"n","type":"i64","value":-14},{"key":"u","type":"u64","value":18446744073709551615}]'
run sp kv list --prefix f --limit 1
expect "list --prefix --limit" 0 '[{"key":"f","type":"f64","value":2.5}]'
run sp kv list --prefix f --after f
expect "list --after" 0 '[{"key":"fresh","type":"u64","value":3}]'
run sp kv list --ns other
expect "list a namespace" 0 '[{"key":"x","type":"u64","value":1}]'
run sp kv list --limit many
expect_err "list --limit not a number" 2 "--limit 'many'"
run sp kv get fresh --delete
expect "get --delete" 0 '{"key":"fresh","type":"u64","value":3,"deleted":true}'
run sp kv get fresh
expect_err "gone after get --delete" 3 "no key 'fresh'"
run sp kv del n
expect "del" 0 '{"key":"n","status":"deleted"}'
run sp kv del n
expect "del a missing key" 0 '{"key":"n","status":"not_changed"}'

# ---- expiration ---------------------------------------------------------------

run sp kv set temp t --expire-at 4102444800000
expect "set --expire-at" 0 '{"key":"temp","status":"inserted"}'
run sp kv list --prefix temp
expect "list shows expire_at" 0 '[{"key":"temp","type":"bytes","value":"t","expire_at":4102444800000}]'
run sp kv set temp t2 --keep-expiration
expect "set --keep-expiration" 0 '{"key":"temp","status":"updated"}'
run sp kv list --prefix temp
expect "the expiration was kept" 0 '[{"key":"temp","type":"bytes","value":"t2","expire_at":4102444800000}]'
run sp kv set gone g --expire-at 1 --previous
expect "set --expire-at in the past" 0 '{"key":"gone","status":"not_changed","previous":null}'
run sp kv set soon s --expire-in 3000
expect "set --expire-in" 0 '{"key":"soon","status":"inserted"}'
run sp kv get soon
expect "get before it expires" 0 '{"key":"soon","type":"bytes","value":"s"}'
sleep 4
run sp kv get soon
expect_err "get after it expired" 3 "no key 'soon'"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
