#!/bin/sh
# cli_io_test.sh -- issue 16's Build 1 and 4: `doc put FILE` and `@FILE`;
# `doc import` of NDJSON and of a JSON array, from a file and from stdin,
# ids from --id-field or assigned, in transactions of --batch documents,
# with progress on stderr (lines when it is not a terminal; none with
# --quiet), stopping at a bad document with everything before it imported;
# `doc export` to NDJSON and back with the same ids; `doc update
# --revision` (a conditional update); `view query --after` paging; and
# 100,000 documents imported over --url, counted afterwards, in seconds.
# Registered with ctest as `cli_io` by tools/CMakeLists.txt:
#     sh tests/cli_io_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-io-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)
nl='
'
# expect_out NAME STATUS STDOUT: as expect, whatever is on stderr.
expect_out() {
    if [ "$rc" = "$2" ] && [ "$out" = "$3" ]; then
        good
    else
        bad "$1" "wanted exit $2 and stdout: $3"
    fi
}

run sp schema define app items notes:natural
run sp db create default --schema app
expect "setup" 0 '{"name":"default","schema":"app"}'

# ---- doc put FILE, @FILE -------------------------------------------------
printf '{\n  "from": "file",\n  "n": 1\n}\n' >"$T/doc.json"
run sp doc put items "$T/doc.json"
expect "doc put FILE" 0 '{"id":1,"revision":1}'
run sp doc put items "@$T/doc.json"
expect "doc put @FILE" 0 '{"id":2,"revision":1}'
run sp doc get items 2
expect "@FILE's contents, compact" 0 '{"id":2,"revision":1,"contents":{"from":"file","n":1}}'
run sp doc put items "@$T/nope.json"
expect_err "doc put @MISSING" 3 "cannot open '$T/nope.json'"
printf '{"bad": }' >"$T/bad.json"
run sp doc put items "@$T/bad.json"
expect_err "doc put @FILE of bad JSON" 2 "not valid JSON"
run sp doc put items 7
expect "a JSON argument stays JSON" 0 '{"id":3,"revision":1}'
run sp doc put items nofile.json
expect_err "neither JSON nor a file: a hint" 2 "(to read a file, give @FILE)"

# ---- doc import ----------------------------------------------------------
printf '{"a":1}\n\n{"a":2}\n  {"a":3}\n' >"$T/three.ndjson"
run sp doc import items "$T/three.ndjson"
expect_out "import NDJSON (assigned ids)" 0 '{"imported":3,"transactions":1}'
case $err in *"import: 3 docs"*) good ;; *) bad "progress lines on stderr" ;; esac
run sp doc get items 6
expect "the third imported doc" 0 '{"id":6,"revision":1,"contents":{"a":3}}'
cat >"$T/arr.json" <<'J'
[
  {"k": "alpha", "v": 1},
  {"k": "beta", "v": [1, 2, {"x": "]"}]},
  {"k": "gamma", "v": "a \"quoted\" ] value"},
  {"k": 4, "v": null},
  {"k": "epsilon", "v": true}
]
J
run_in "$T/arr.json" sp doc import notes - --id-field k --batch 2 --quiet
expect "import a JSON array from stdin, --id-field, --batch 2" 0 '{"imported":5,"transactions":3}'
[ -z "$err" ] && good || bad "--quiet prints no progress"
run sp doc get notes beta
expect "id from the field; the doc keeps it" 0 '{"id":"beta","revision":1,"contents":{"k":"beta","v":[1,2,{"x":"]"}]}}'
run sp doc get notes 4
expect "a number id in a natural collection" 0 '{"id":"4","revision":1,"contents":{"k":4,"v":null}}'
run sp doc import notes "$T/arr.json" --id-field k
expect_err "existing ids stop the import" 4 "document 1 (line 2): its id exists (--overwrite replaces it); 0 imported before it"
sed 's/"v": 1}/"v": 100}/' "$T/arr.json" >"$T/arr2.json"
run sp doc import notes "$T/arr2.json" --id-field k --overwrite --quiet
expect "--overwrite replaces them" 0 '{"imported":5,"transactions":1}'
run sp doc get notes alpha
expect "overwritten: revision 2" 0 '{"id":"alpha","revision":2,"contents":{"k":"alpha","v":100}}'
run sp doc import notes "$T/three.ndjson"
expect_err "natural ids need --id-field" 2 "a collection with natural ids needs --id-field NAME"
run sp doc import notes "$T/three.ndjson" --id-field k
expect_err "a document without the id field" 2 "document 1 (line 1) has no top-level field \"k\""
printf '{"a":10}\n{"a":11}\n{"a" 12}\n{"a":13}\n' >"$T/bad.ndjson"
run sp doc import items "$T/bad.ndjson" --quiet
expect_err "a bad document is named" 2 "document 3 (line 3) is not valid JSON"
case $err in *"2 imported before it"*) good ;; *) bad "says how many were imported" ;; esac
run sp doc count items
expect "everything before the bad document is in" 0 8
printf '[{"a":1}, {"a":2}' >"$T/open.json"
run sp doc import items "$T/open.json" --quiet
expect_err "an unclosed array" 2 "not closed with ']'"
printf '[{"a":1} {"a":2}]' >"$T/nocomma.json"
run sp doc import items "$T/nocomma.json" --quiet
expect_err "values without a comma" 2 "expected ',' or ']'"
run sp doc count items
expect "the documents before each error are in (2 + 1)" 0 11
printf '{"n":"x"}\n' >"$T/u.ndjson"
run sp doc import items "$T/u.ndjson" --id-field n
expect_err "a u64 id field that is not a number" 2 "is not a u64 id"
run sp doc import items --batch 0 "$T/u.ndjson"
expect_err "--batch 0" 2 "--batch '0'"

# ---- doc export, and back ------------------------------------------------
run sp doc export notes --id-field k --quiet
expect_has "export NDJSON to stdout" 0 '{"k":"alpha","v":100}'
[ "$(printf '%s\n' "$out" | wc -l)" = 5 ] && good || bad "five lines"
run sp doc export items "$T/items.ndjson" --id-field _id
expect_out "export to FILE prints the count" 0 '{"exported":11}'
head -1 "$T/items.ndjson" | grep -q '^{"_id":1,"from":"file","n":1}$' &&
    good || bad "the id added as _id: $(head -1 "$T/items.ndjson")"
grep -q '^7$' "$T/items.ndjson" && good || bad "a scalar document exported as is"
run sp db create copy --schema app
grep -v '^7$' "$T/items.ndjson" >"$T/objects.ndjson"
run sp --db copy doc import items "$T/objects.ndjson" --id-field _id --quiet
expect "re-import with the same ids" 0 '{"imported":10,"transactions":1}'
run sp --db copy doc export items --id-field _id
grep -v '^7$' "$T/items.ndjson" >"$T/want"
[ "$out" = "$(cat "$T/want")" ] && good || bad "the round trip keeps ids and contents"
run sp doc export items --from 5 --to 6 --quiet
expect "export --from --to" 0 "{\"a\":2}${nl}{\"a\":3}"

# ---- doc update --revision -----------------------------------------------
run sp doc update notes alpha '{"k":"alpha","v":2}' --revision 2
expect "conditional update at the stored revision" 0 '{"id":"alpha","revision":3}'
run sp doc update notes alpha '{"k":"alpha","v":9}' --revision 2
expect_err "a stale revision conflicts" 4 "document 'alpha' is at revision 3, not 2"
run sp doc update notes alpha "@$T/doc.json"
expect "update without --revision" 0 '{"id":"alpha","revision":4}'
run sp doc update notes nope '{}'
expect_err "update of a missing document" 3 "no document 'nope'"
run sp doc update notes alpha '{}' --revision x
expect_err "--revision x" 2 "--revision 'x' is not a number"

# ---- view query --after --------------------------------------------------
V=$T/views
run "$BIN" --path "$V" demo
run "$BIN" --path "$V" demo
run "$BIN" --path "$V" --schema "$SRC/examples/schemas/demo.json" view query messages by-author
all=$out
expect_has "setup: the view" 0 '"key":"ada"'
pages="" after=""
i=0
while [ $i -lt 10 ]; do
    if [ -z "$after" ]; then
        run "$BIN" --path "$V" view query messages by-author --limit 3
    else
        run "$BIN" --path "$V" view query messages by-author --limit 3 --after "$akey" --after-id "$aid"
    fi
    [ "$out" = "[]" ] && break
    pages="$pages${pages:+,}$(printf '%s' "$out" | sed 's/^\[//; s/\]$//')"
    last=$(printf '%s' "$out" | sed 's/.*{"key":\([^,]*\),"value":[^,]*,"id":\([0-9]*\),.*/\1 \2/')
    akey=${last% *}
    aid=${last#* }
    after=1
    i=$((i + 1))
done
[ "[$pages]" = "$all" ] && good || bad "pages of 3 with --after make the whole view" "pages: [$pages]" "all: $all"
[ $i -ge 3 ] && good || bad "more than two pages ($i)"
run "$BIN" --path "$V" view reduce messages by-author --group --after '"ada"'
expect "reduce --group --after KEY" 0 '[{"key":"grace","value":2},{"key":"linus","value":2}]'
run "$BIN" --path "$V" view query messages by-author --after-id 1
expect_err "--after-id alone" 2 "--after-id goes with --after KEY"

# ---- 100,000 documents over --url ----------------------------------------
N=100000
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"n\":%d,\"name\":\"user%d\",\"tags\":[\"a\",\"b\"],\"score\":%d.5}\n", i, i, i }' >"$T/big.ndjson"
"$BIN" --path "$T/big" schema define big docs >/dev/null
"$BIN" --path "$T/big" db create default --schema big >/dev/null
"$BIN" --path "$T/big" serve --insecure-open --quic off --ws 127.0.0.1:0 >"$T/serve.log" 2>&1 &
srv=$!
url=""
i=0
while [ $i -lt 300 ] && [ -z "$url" ]; do
    sleep 0.1
    url=$(sed -n 's/.*listening on \(ws:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$T/serve.log" 2>/dev/null || true)
    i=$((i + 1))
done
t0=$(date +%s.%N)
run "$BIN" --url "$url" doc import docs "$T/big.ndjson"
t1=$(date +%s.%N)
expect_out "import 100,000 documents over --url" 0 '{"imported":100000,"transactions":100}'
case $err in *"import: 100000 docs, 6.4 MB of 6.4 MB in "*) good ;; *) bad "the last progress line" ;; esac
run "$BIN" --url "$url" doc count docs
expect "all 100,000 are there" 0 "$N"
run "$BIN" --url "$url" doc get docs 100000
expect "the last one" 0 '{"id":100000,"revision":1,"contents":{"n":99999,"name":"user99999","tags":["a","b"],"score":99999.5}}'
secs=$(echo "$t1 $t0" | awk '{ printf "%.1f", $1 - $2 }')
echo "cli-io-test: 100,000 documents over --url in $secs s ($(echo "$N $secs" | awk '{ printf "%d", $1 / ($2 > 0 ? $2 : 1) }') docs/s)"
awk -v s="$secs" 'BEGIN { exit !(s < 120) }' && good || bad "100,000 over --url took $secs s"
kill -TERM $srv
wait $srv

echo "$NAME: $pass passed, $fail failed"
[ $fail = 0 ]
