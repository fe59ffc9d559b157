#!/bin/sh
# cli_backup_test.sh -- end-to-end test of `sprig backup`, `restore`,
# `export`, `import`, `compact` and `schema [NAME]` (tools/sprig/
# cmd_backup.c, cmd_schema.c): --help, the JSON summaries of --json,
# progress on stderr when not a terminal, the exit statuses (4: the
# directory or the storage is not empty, 3: no backup or export there, 1:
# a damaged backup, 5: compacting a database a server holds open), and the
# data itself: what a backup or an export holds comes back, locally and
# through a server (--url, the job running in the server).  Registered
# with ctest as `cli_backup` by tools/CMakeLists.txt:
#     sh tests/cli_backup_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-backup-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

for cmd in backup restore export import compact schema; do
    run sp $cmd --help
    expect_has "sprig $cmd --help" 0 "usage: sprig"
done
run sp backup
expect_err "backup without a directory" 2 "missing argument"
run sp backup "$T/b0"
expect_err "backup without a storage" 3 "no storage"

# ---- a storage with two databases ------------------------------------------

run sp schema define app notes names:natural
run sp db create one --schema app
run sp db create two --schema app
i=0
while [ $i -lt 20 ]; do
    sp --db one doc put notes "{\"i\":$i}" >/dev/null
    i=$((i + 1))
done
sp --db two doc put names --id ann '{"a":1}' >/dev/null
sp --db one kv set counter 7 >/dev/null
run sp schema app
expect "schema NAME" 0 '{"name":"app","collections":[{"name":"notes","ids":"u64"},{"name":"names","ids":"natural"}]}'
run sp schema nope
expect_err "schema NAME that is not there" 3 "no schema named 'nope'"

run sp backup "$T/b1" --json
case $out in
'{"command":"backup","dir":"'"$T/b1"'","items":2,"bytes":'*) good ;;
*) bad "backup --json" "wanted the JSON summary" ;;
esac
[ -f "$T/b1/manifest.json" ] && [ -f "$T/b1/one.mdb" ] && good ||
    bad "the backup's files" "wanted manifest.json and one.mdb"
run sp backup "$T/b1"
expect_err "backup into a directory that is not empty" 4 "not empty"
run sp backup "$T/b2"
case "$rc|$out|$err" in
"0|backup: 2 databases"*"|backup: "*) good ;;
*) bad "backup with progress" "wanted a summary and progress lines" ;;
esac

run "$BIN" --path "$T/r1" restore "$T/b1" --json
expect_has "restore --json" 0 '"command":"restore"'
run "$BIN" --path "$T/r1" --db one doc count notes
expect "restored documents" 0 "20"
run "$BIN" --path "$T/r1" --db two doc get names ann
expect_has "restored natural id" 0 '"a":1'
run "$BIN" --path "$T/r1" --db one kv get counter
expect_has "restored key" 0 '"value":"7"'
run "$BIN" --path "$T/r1" restore "$T/b1"
expect_err "restore into a storage with databases" 4 "no database"
run "$BIN" --path "$T/r2" restore "$T/nothing"
expect_err "restore of no backup" 3 "no manifest.json"
# a damaged copy is refused and leaves nothing registered
printf 'XXXX' | dd of="$T/b2/one.mdb" bs=1 seek=9000 conv=notrunc 2>/dev/null
run "$BIN" --path "$T/r3" restore "$T/b2"
expect_err "restore of a damaged backup" 1 "does not match the manifest"
run "$BIN" --path "$T/r3" db list
expect "nothing restored" 0 "[]"

run sp export "$T/e1" --json
expect_has "export --json" 0 '"command":"export","dir":"'"$T/e1"'","items":22'
run "$BIN" --path "$T/i1" import "$T/e1" --json
expect_has "import --json" 0 '"command":"import"'
run "$BIN" --path "$T/i1" --db one doc get notes 1
expect_has "imported document" 0 '"i":0'
run "$BIN" --path "$T/i1" --db one kv get counter
expect_has "imported key" 0 '"value":"7"'
echo '{"id":1,"json":' >>"$T/e1/one/c/notes.jsonl"
run "$BIN" --path "$T/i2" import "$T/e1"
expect_err "import of a bad line" 1 "notes.jsonl:21"

run sp compact --all --json
expect_has "compact --all" 0 '"command":"compact","databases":"(all)","items":2'
run sp compact nosuch
expect_err "compact of no database" 3 "no database named 'nosuch'"
run sp --db one doc count notes
expect "compacted data" 0 "20"

# ---- through a server: the jobs run in it, DIR on its side ------------------

"$BIN" serve --path "$DATA" --insecure-open --quic off --ws 127.0.0.1:0 >"$T/serve.log" 2>&1 &
srv=$!
url=""
i=0
while [ $i -lt 200 ] && [ -z "$url" ] && kill -0 $srv 2>/dev/null; do
    sleep 0.1
    url=$(sed -n 's/.*listening on \(ws:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$T/serve.log" 2>/dev/null || true)
    i=$((i + 1))
done
run "$BIN" --url "$url" --db one doc put notes '{"late":1}'
run "$BIN" --url "$url" backup "$T/b3" --json
expect_has "backup --url" 0 '"items":2'
run "$BIN" --url "$url" export "$T/e3" --json
expect_has "export --url" 0 '"command":"export"'
run "$BIN" --url "$url" compact one
expect_err "compact a database the server holds open" 5 "open handle"
kill -TERM $srv
wait $srv
run "$BIN" --path "$T/r4" restore "$T/b3"
run "$BIN" --path "$T/r4" --db one doc count notes
expect "the server's backup restores" 0 "21"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
