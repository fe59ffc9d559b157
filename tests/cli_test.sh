#!/bin/sh
# cli_test.sh -- end-to-end test of the `sprig` command-line tool
# (tools/sprig/): every command, its exact output and exit status, --help at
# every level, `demo` run twice, the storage lock seen from a second
# process.  Global options after the command and --url: cli_url_test.sh.  Registered with ctest as `cli` by tools/CMakeLists.txt:
#     sh tests/cli_test.sh BUILD/tools/sprig [SCRATCH_DIR]
# SCRATCH_DIR (default: next to the binary) is emptied first.  Each failed
# check says what it expected; the last line counts passes and failures.

NAME=cli-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

# ---- help, version, usage errors (no storage needed) ---------------------

for cmd in "" "schema" "schema list" "schema define" "db" "db create" \
    "db list" "db delete" "doc" "doc put" "doc get" "doc list" \
    "doc delete" "doc count" "demo"; do
    # shellcheck disable=SC2086 # $cmd is words on purpose
    run sp $cmd --help
    expect_has "sprig $cmd --help" 0 "usage: sprig"
done
run sp -h
expect_has "sprig -h" 0 "Exit status"
run sp doc put -h
expect_has "sprig doc put -h" 0 "doc put COLLECTION"
if [ -e "$DATA" ]; then
    rc=- out='' err=''
    bad "--help must not create the storage"
else
    good
fi
run "$BIN" --version
expect_has "sprig --version" 0 "sprig 0."

run sp
expect_err "no command" 2 "missing command"
run sp frob
expect_err "unknown command" 2 "unknown command 'frob'"
nl='
'
[ "$err" = "sprig: unknown command 'frob'${nl}sprig: see 'sprig --help'" ] &&
    good || bad "a usage error: the error and one line pointing to --help"
run sp --bogus doc list x
expect_err "unknown global option" 2 "unknown option '--bogus'"
run sp doc frob
expect_err "unknown doc command" 2 "unknown command 'frob'"
run sp doc list events --bogus
expect_err "unknown doc option" 2 "unknown option '--bogus'"
run sp doc get events
expect_err "missing argument" 2 "missing argument"
run sp doc get events 1 2
expect_err "extra argument" 2 "unexpected argument '2'"
run "$BIN" --path
expect_err "--path without a value" 2 "--path needs a value"
run sp doc list events --desc=yes
expect_err "flag with a value" 2 "--desc takes no value"

# ---- no storage yet ------------------------------------------------------

run sp db list
expect_err "db list without a storage" 3 "no storage at '$DATA'"
run sp schema list
expect_err "schema list without a storage" 3 "no storage at"
run sp doc count events
expect_err "doc count without a storage" 3 "no storage at"
run sp db create main
expect_err "db create with no schema" 2 "no schema is registered"

# ---- schemas -------------------------------------------------------------

APP='{"name":"app","collections":[{"name":"notes","ids":"natural"},{"name":"events","ids":"u64"}]}'
run sp schema define app notes:natural events
expect "schema define" 0 "$APP"
run sp schema list
expect "schema list" 0 "[$APP]"
run sp --schema "$DATA" schema list
expect_err "--schema DIR says it is a directory" 2 "is a directory, not a file"
run sp schema define app2 notes:weird
expect_err "schema define: bad id kind" 2 "ids are u64 or natural, not 'weird'"
run sp schema define 'bad name' notes
expect_err "schema define: bad name" 2 "bad character"
run sp schema define app2
expect_err "schema define without collections" 2 "missing argument"
run sp schema define app notes:natural
expect_err "schema redefine dropping a collection" 4 "must keep it"
run sp schema define app notes events
expect_err "schema redefine changing ids" 4 "collection 'notes' with natural"
run sp schema list
expect "refused redefinitions change nothing" 0 "[$APP]"

# ---- databases -----------------------------------------------------------

run sp db create main
expect "db create (the only schema)" 0 '{"name":"main","schema":"app"}'
run sp db create main
expect_err "db create twice" 4 "database 'main' exists"
run sp db create 'bad/name'
expect_err "db create: bad name" 2 "database name 'bad/name' has a bad character"
run sp db create other --schema nope
expect_err "db create: unknown schema" 1 "schema 'nope' is not registered"
run sp schema define second things
expect "schema define second" 0 \
    '{"name":"second","collections":[{"name":"things","ids":"u64"}]}'
run sp db create other
expect_err "db create: several schemas" 2 "several schemas are registered (app, second)"
run sp db create default --schema app
expect "db create --schema" 0 '{"name":"default","schema":"app"}'
run sp db create --schema=second other
expect "db create --schema=" 0 '{"name":"other","schema":"second"}'
run sp db list
expect "db list" 0 '[{"name":"default","schema":"app"},{"name":"main","schema":"app"},{"name":"other","schema":"second"}]'
run sp db delete main
expect "db delete" 0 '{"name":"main","deleted":true}'
run sp db delete main
expect_err "db delete missing" 3 "no database named 'main'"
run sp db list
expect "db list after delete" 0 '[{"name":"default","schema":"app"},{"name":"other","schema":"second"}]'

# ---- documents: u64 ids --------------------------------------------------

run sp doc put events '{"n":1}'
expect "push 1" 0 '{"id":1,"revision":1}'
run sp doc put events '{"n":2}'
expect "push 2" 0 '{"id":2,"revision":1}'
run sp doc put events '  { "n" :
  3 }  '
expect "push 3 (with whitespace)" 0 '{"id":3,"revision":1}'
run sp doc get events 3
expect "stored without whitespace" 0 '{"id":3,"revision":1,"contents":{"n":3}}'
EXACT='{"big":9007199254740993,"u64":18446744073709551615,"f":0.1,"neg":-9223372036854775808,"s":"h\u00e9 \"q\" é","a":[true,false,null,{}]}'
run sp doc put events "$EXACT"
expect "push exact numbers" 0 '{"id":4,"revision":1}'
run sp doc get events 4
expect "contents round-trip exactly" 0 "{\"id\":4,\"revision\":1,\"contents\":$EXACT}"
run sp doc put events -- -5
expect "push a JSON scalar after --" 0 '{"id":5,"revision":1}'
run sp doc get events 5
expect "get a JSON scalar" 0 '{"id":5,"revision":1,"contents":-5}'
run sp doc put events --id 100 '"hundred"'
expect "insert with a u64 id" 0 '{"id":100,"revision":1}'
run sp doc put events --id 100 '"again"'
expect_err "insert an existing id" 4 "conflict"
run sp doc get events 100
expect "a refused insert changes nothing" 0 '{"id":100,"revision":1,"contents":"hundred"}'
run sp doc put events --id abc '{}'
expect_err "u64 id not a number" 2 "id 'abc' is not a decimal u64"
run sp doc put events --id 18446744073709551616 '{}'
expect_err "u64 id overflow" 2 "is not a decimal u64"
run sp doc put events --id -1 '{}'
expect_err "negative u64 id" 2 "id '-1' is not a decimal u64"
run sp doc put events '{bad'
expect_err "invalid JSON" 2 "contents are not valid JSON"
run sp doc put events ''
expect_err "empty contents" 2 "contents are not valid JSON"
run sp doc put events '{"a":1} x'
expect_err "trailing garbage" 2 "contents are not valid JSON"
run sp doc count events
expect "refused puts store nothing" 0 6
run sp doc get events 7
expect_err "get missing" 3 "not found"
run sp doc get events x
expect_err "get with a bad u64 id" 2 "not a decimal u64"
run sp doc get nope 1
expect_err "unknown collection" 1 "collection 'nope' is not in schema 'app'"
run sp --db nope doc get events 1
expect_err "unknown database" 3 "no database named 'nope'"
run sp doc list events --from 2 --to 4 --headers
expect "list u64 range" 0 '[{"id":2,"revision":1},{"id":3,"revision":1},{"id":4,"revision":1}]'
run sp doc list events --from 4 --headers --limit 2
expect "list --from --limit" 0 '[{"id":4,"revision":1},{"id":5,"revision":1}]'
run sp doc list events --to 2
expect "list --to" 0 '[{"id":1,"revision":1,"contents":{"n":1}},{"id":2,"revision":1,"contents":{"n":2}}]'
run sp doc list events --desc --limit 2 --headers
expect "list --desc --limit" 0 '[{"id":100,"revision":1},{"id":5,"revision":1}]'
run sp doc list events --from x
expect_err "list with a bad --from" 2 "not a decimal u64"
run sp doc list events --limit -3
expect_err "list with a bad --limit" 2 "--limit '-3' is not a number"
run sp doc list events --limit 4294967296
expect_err "list with a --limit too big" 2 "is not a number up to"

# ---- documents: natural ids, overwrite, stdin ----------------------------

run sp doc put notes '{"a":1}'
expect_err "push into a natural-id collection" 2 "has natural ids: give --id"
for who in alice bob carol dave; do
    run sp doc put notes --id $who "{\"who\":\"$who\"}"
    expect "put natural id $who" 0 "{\"id\":\"$who\",\"revision\":1}"
done
run sp doc put notes --id alice --overwrite '{"who":"alice","v":2}'
expect "overwrite" 0 '{"id":"alice","revision":2}'
run sp doc put notes --overwrite --id alice '{"who":"alice","v":2}'
expect "overwrite with the same contents" 0 '{"id":"alice","revision":2}'
run sp doc put notes --id=eve --overwrite '{}'
expect "overwrite (upsert) a new id" 0 '{"id":"eve","revision":1}'
run sp doc put notes --overwrite '{}'
expect_err "--overwrite without --id" 2 "--overwrite needs --id"
run sp doc put notes --id alice '{}'
expect_err "insert over an existing natural id" 4 "conflict"
# shellcheck disable=SC1003 # the id is q"t\ (a quote, a backslash)
run sp doc put notes --id 'q"t\' '[]'
expect "natural id needing escapes" 0 '{"id":"q\"t\\","revision":1}'
run sp doc put notes --id "$(printf 'x\377y')" '[]'
expect "natural id that is not UTF-8" 0 '{"id":"x\ufffdy","revision":1}'
run sp doc put notes --id=-dash '1'
expect "natural id starting with -" 0 '{"id":"-dash","revision":1}'
printf '{"from":\n  "stdin"}\n' >"$T/in"
run_in "$T/in" sp doc put notes --id frank -
expect "put from stdin" 0 '{"id":"frank","revision":1}'
run sp doc get notes frank
expect "get what came from stdin" 0 '{"id":"frank","revision":1,"contents":{"from":"stdin"}}'
printf '{"from": nowhere}' >"$T/in"
run_in "$T/in" sp doc put notes --id gina -
expect_err "invalid JSON from stdin" 2 "contents are not valid JSON"
run sp doc get notes gina
expect_err "invalid JSON stored nothing" 3 "not found"
run sp doc list notes --from bob --to dave
expect "list natural range" 0 '[{"id":"bob","revision":1,"contents":{"who":"bob"}},{"id":"carol","revision":1,"contents":{"who":"carol"}},{"id":"dave","revision":1,"contents":{"who":"dave"}}]'
run sp doc list notes --desc --limit 3 --headers
expect "list natural --desc" 0 '[{"id":"x\ufffdy","revision":1},{"id":"q\"t\\","revision":1},{"id":"frank","revision":1}]'
run sp doc list notes --headers --limit 0
expect "list --limit 0 is everything" 0 '[{"id":"-dash","revision":1},{"id":"alice","revision":2},{"id":"bob","revision":1},{"id":"carol","revision":1},{"id":"dave","revision":1},{"id":"eve","revision":1},{"id":"frank","revision":1},{"id":"q\"t\\","revision":1},{"id":"x\ufffdy","revision":1}]'
run sp doc count notes
expect "count" 0 9

# ---- delete --------------------------------------------------------------

run sp doc delete notes alice --revision 1
expect_err "delete with a stale revision" 4 "conflict"
run sp doc delete notes alice --revision 2
expect "delete with the revision" 0 '{"id":"alice","revision":2,"deleted":true}'
run sp doc delete notes alice
expect_err "delete missing" 3 "no document 'alice' in collection 'notes'"
run sp doc delete notes alice --revision 2
expect_err "delete missing with a revision" 3 "not found"
run sp doc delete notes bob
expect "delete whatever is stored" 0 '{"id":"bob","revision":1,"deleted":true}'
run sp doc delete notes carol --revision x
expect_err "delete with a bad --revision" 2 "--revision 'x' is not a number"
run sp doc delete events 100
expect "delete a u64 id" 0 '{"id":100,"revision":1,"deleted":true}'
run sp doc count notes
expect "count after deletes" 0 7
run sp doc get notes alice
expect_err "deleted document is gone" 3 "not found"

# ---- other databases -----------------------------------------------------

run sp --db other doc put things '{"x":1}'
expect "put in --db other" 0 '{"id":1,"revision":1}'
run sp --db other doc count things
expect "count in --db other" 0 1
run sp doc count things
expect_err "collection of another database's schema" 1 "not in schema 'app'"

# ---- demo ----------------------------------------------------------------

run "$BIN" --path "$T/demo" demo
expect_has "demo" 0 "9. Counts: 4 messages, 5 transactions so far."
expect_has "demo ends with a hint" 0 "--path $T/demo doc list messages"
expect_has "demo meets a conflict" 0 "refused with SPRIG_ECONFLICT"
run "$BIN" --path "$T/demo" demo
expect_has "demo again" 0 "9. Counts: 8 messages, 10 transactions so far."
run "$BIN" --path "$T/demo" doc count messages
expect "demo data seen by the tool" 0 8
run "$BIN" --path "$T/demo" doc get messages 2
expect "demo's updated message" 0 '{"id":2,"revision":2,"contents":{"from":"grace","text":"Edited: revisions go up by one."}}'
run "$BIN" --path "$T/demo" schema list
expect "demo's schema" 0 '[{"name":"demo","collections":[{"name":"messages","ids":"u64"}]}]'
run sp demo
expect_err "demo on a database of another schema" 1 "exists with schema 'app'"

# ---- a second process meets the storage lock -----------------------------

# A background `doc put ... -` opens the storage, then waits for its stdin
# (a fifo).  Once /proc/locks shows its lock, a second process must get
# exit 5; then the first finishes its put.
mkfifo "$T/fifo" || exit 1
"$BIN" --path "$DATA" doc put notes --id held - <"$T/fifo" >"$T/held.out" 2>&1 &
holder=$!
exec 3>"$T/fifo"
locked=0
i=0
while [ $i -lt 100 ] && kill -0 $holder 2>/dev/null; do
    if [ -r /proc/locks ]; then
        grep -q "FLOCK.* $holder " /proc/locks && locked=1 && break
    elif [ $i -ge 10 ]; then
        locked=1 && break # no /proc/locks: a second is plenty
    fi
    sleep 0.1
    i=$((i + 1))
done
if [ $locked = 1 ]; then
    good
else
    rc=- out='' err=''
    bad "the holder never took the storage lock"
fi
run sp doc count notes
expect_err "second process: storage busy" 5 "busy: storage"
run "$BIN" --path "$DATA" db list
expect_err "second process: db list busy" 5 "is open in another process"
(echo '{"held":true}' >&3) 2>/dev/null # a dead holder must not kill us
exec 3>&-
wait $holder
rc=$? out=$(cat "$T/held.out") err=''
expect "the holder finishes its put" 0 '{"id":"held","revision":1}'
run sp doc get notes held
expect "after the holder exits, the storage opens" 0 '{"id":"held","revision":1,"contents":{"held":true}}'

# ---- check ----------------------------------------------------------------
run sp check
expect "check: a healthy storage" 0 "$DATA: 0 findings"
run sp --read-only check
expect "check --read-only" 0 "$DATA: 0 findings"

# ---- --read-only ---------------------------------------------------------
run sp --read-only doc get notes held
expect "--read-only reads" 0 '{"id":"held","revision":1,"contents":{"held":true}}'
run sp --read-only doc put notes --id ro '{}'
expect_err "--read-only refuses a write" 6 "is open read-only"
run sp doc get notes ro
expect_err "--read-only wrote nothing" 3 "not found"
run "$BIN" --read-only --url ws://127.0.0.1:1 db list
expect_err "--read-only is for a local storage" 2 "opens a local storage"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
