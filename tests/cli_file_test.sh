#!/bin/sh
# cli_file_test.sh -- end-to-end test of `sprig file` (tools/sprig/cmd_file.c):
# put, get, cat, ls (with pages), stat, mv, rm and gc on a storage, their JSON
# output and exit statuses, a file of several megabytes through stdin and
# back byte for byte, the progress report on stderr, and a database
# without the file store refused; then put, get, ls and rm through a
# `sprig serve` over ws://.  Registered with ctest as `cli_file` by
# tools/CMakeLists.txt:
#     sh tests/cli_file_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-file-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

for cmd in "file" "file put" "file get" "file cat" "file ls" "file stat" \
    "file rm" "file mv" "file gc"; do
    # shellcheck disable=SC2086 # $cmd is words on purpose
    run sp $cmd --help
    expect_has "sprig $cmd --help" 0 "usage: sprig"
done
run sp --help
expect_has "sprig --help names file" 0 "file put|get|cat|ls|stat|rm|mv|gc"
run sp file put
expect_err "put without arguments" 2 "missing argument"

printf 'hello, files\n' >"$T/hello.txt"
run sp file put "$T/hello.txt" /docs/hello.txt --meta '{"lang":"en"}' --quiet
expect "put creates the database" 0 '{"path":"/docs/hello.txt","length":13}'
run sp file cat /docs/hello.txt
expect "cat" 0 "hello, files"
run sp file cat /docs/hello.txt --offset 7 --length 5
expect "cat a range" 0 "files"
run sp file stat /docs/hello.txt
expect_has "stat" 0 '"length":13,'
expect_has "stat metadata" 0 '"metadata":{"lang":"en"}}'
run sp file put "$T/hello.txt" /docs/hello.txt --exclusive --quiet
expect_err "put --exclusive" 4 "exists"
run sp file put "$T/nope" /x --quiet
expect_err "put a missing local file" 3 "nope"
run sp file put "$T/hello.txt" relative --quiet
expect_err "a relative path" 2 "does not start with '/'"

# several megabytes through stdin, with a progress report on stderr
head -c 5000000 /dev/urandom >"$T/big.bin"
run_in "$T/big.bin" sp file put - /docs/big.bin
case $err in *"put:"*) good ;; *) bad "put reports progress" ;; esac
run sp file get /docs/big.bin "$T/back.bin" --quiet
if [ $rc = 0 ] && cmp -s "$T/big.bin" "$T/back.bin"; then good; else
    bad "get gives the bytes back"
fi
(cd "$T" && "$BIN" --path "$DATA" file get /docs/hello.txt --quiet)
if cmp -s "$T/hello.txt" "$T/hello.txt"; then good; else bad "get to ./NAME"; fi
run sp file get /docs/big.bin - --quiet
if [ "$(sp file get /docs/big.bin - --quiet | cksum)" = \
    "$(cksum <"$T/big.bin")" ]; then good; else bad "get to stdout"; fi

run sp file put "$T/hello.txt" /a.txt --quiet
run sp file ls
expect "ls /" 0 "$(printf '[{"name":"a.txt","length":13,"modified_ms":%s},{"name":"docs/","dir":true}]' \
    "$(sp file stat /a.txt | sed 's/.*"modified_ms":\([0-9]*\).*/\1/')")"
run sp file ls /docs --limit 1
expect_has "ls a page" 0 '[{"name":"big.bin","length":5000000,'
run sp file ls /docs --limit 1 --after big.bin
expect_has "ls the next page" 0 '[{"name":"hello.txt","length":13,'
run sp file mv /docs/hello.txt /b.txt
expect "mv" 0 ""
run sp file mv /a.txt /b.txt --exclusive
expect_err "mv --exclusive" 4 "exists"
run sp file cat /docs/hello.txt
expect_err "the old path is gone" 3 "no file '/docs/hello.txt'"
run sp file rm /docs/big.bin
expect "rm" 0 ""
run sp file rm /docs/big.bin
expect_err "rm again" 3 "no file"
run sp file ls /
expect_has "ls after" 0 '[{"name":"a.txt",'

run sp schema define app notes
run sp db create plain --schema app
run sp --db plain file ls
expect_err "a database without the file store" 1 "has no file store"

run sp file gc
expect "gc with nothing to collect" 0 '{"collected_chunks":0}'

# ---- the same commands through a server (--url ws://) ----------------------

"$BIN" serve --path "$DATA" --insecure-open --quic off --ws 127.0.0.1:0 >"$T/serve.log" 2>&1 &
srv=$!
url=""
i=0
while [ $i -lt 200 ] && [ -z "$url" ] && kill -0 $srv 2>/dev/null; do
    sleep 0.1
    url=$(sed -n 's/.*listening on \(ws:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$T/serve.log" 2>/dev/null || true)
    i=$((i + 1))
done
run "$BIN" --url "$url" file put "$T/big.bin" /remote/big.bin --quiet
expect "put over ws://" 0 '{"path":"/remote/big.bin","length":5000000}'
run "$BIN" --url "$url" file get /remote/big.bin "$T/back2.bin" --quiet
if [ $rc = 0 ] && cmp -s "$T/big.bin" "$T/back2.bin"; then good; else
    bad "get over ws:// gives the bytes back"
fi
run "$BIN" --url "$url" file ls /
expect_has "ls over ws://" 0 '{"name":"remote/","dir":true}'
run "$BIN" --url "$url" file rm /remote/big.bin
expect "rm over ws://" 0 ""
kill -TERM $srv
wait $srv

echo "$pass passed, $fail failed"
[ $fail = 0 ]
