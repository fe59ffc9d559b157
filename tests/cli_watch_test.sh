#!/bin/sh
# cli_watch_test.sh -- issue 16's Build 2 against a `sprig serve`: `sprig
# pubsub subscribe TOPIC...` receives what `pubsub publish` sends to its
# topics (and not other topics), as NDJSON, stopping after --count or
# --timeout or on SIGINT; `sprig log` prints the transaction log and
# `log --follow` prints new commits as they happen; `sprig watch` follows
# the changes feed (issue 15): the backlog, one collection, contents, live
# commits, --from to resume, --limit and --timeout, Ctrl-C, every change
# of a concurrent writer once and in order, and a local path; `sprig
# clients` lists the server's connections, its own marked.  Registered
# with ctest as `cli_watch` by tools/CMakeLists.txt:
#     sh tests/cli_watch_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-watch-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
nl='
'
# wait_for FILE TEXT: up to 30 s for TEXT to appear in FILE.
wait_for() {
    i=0
    while [ $i -lt 300 ] && ! grep -qF "$2" "$1" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    grep -qF "$2" "$1"
}

run sp schema define app notes:natural events
run sp db create default --schema app
"$BIN" --path "$DATA" serve --insecure-open --quic off --ws 127.0.0.1:0 >"$T/serve.log" 2>&1 &
srv=$!
wait_for "$T/serve.log" "listening on" || bad "serve starts"
U=$(sed -n 's/.*listening on \(ws:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$T/serve.log")

# ---- pubsub ----------------------------------------------------------------
"$BIN" --url "$U" pubsub subscribe news sports --count 3 >"$T/sub.out" 2>"$T/sub.err" &
sub=$!
wait_for "$T/sub.err" "subscribed to 2 topics" && good || bad "the subscriber says it is subscribed"
run "$BIN" --url "$U" pubsub publish news '{"headline":"hi"}'
expect "pubsub publish" 0 '{"topic":"news","published":true}'
run "$BIN" --url "$U" pubsub publish weather rain
expect "publish to a topic nobody listens to" 0 '{"topic":"weather","published":true}'
run "$BIN" --url "$U" pubsub publish sports 'not json'
printf '[1,2]' >"$T/msg"
run_in "$T/msg" "$BIN" --url "$U" pubsub publish news -
wait $sub
rc=$? out=$(cat "$T/sub.out") err=''
expect "subscribe prints the 3 messages of its topics and stops (--count)" 0 \
    "{\"topic\":\"news\",\"message\":{\"headline\":\"hi\"}}${nl}{\"topic\":\"sports\",\"message\":\"not json\"}${nl}{\"topic\":\"news\",\"message\":[1,2]}"
run "$BIN" --url "$U" pubsub subscribe quiet --timeout 300
[ "$rc" = 0 ] && [ -z "$out" ] && good || bad "--timeout ends a quiet subscription"
"$BIN" --url "$U" pubsub subscribe news >"$T/sub2.out" 2>"$T/sub2.err" &
sub=$!
wait_for "$T/sub2.err" "subscribed" || bad "the second subscriber"
kill -INT $sub
wait $sub
rc=$? out='' err=''
expect "Ctrl-C (SIGINT) ends a subscription, exit 0" 0 ""
run "$BIN" --url "$U" pubsub subscribe
expect_err "subscribe needs a topic" 2 "missing argument TOPIC..."
run "$BIN" --url "$U" pubsub publish news
expect_err "publish needs a message" 2 "missing argument MESSAGE"

# ---- log ---------------------------------------------------------------------
run "$BIN" --url "$U" doc put notes --id a '{"n":1}'
run "$BIN" --url "$U" doc put events '{"e":1}'
run "$BIN" --url "$U" log
case $out in
'[{"transaction":1,"time":"20'*'","changes":[{"collection":"notes","id":"a","revision":1,"deleted":false}]},{"transaction":2,"time":"'*'","changes":[{"collection":"events","id":1,"revision":1,"deleted":false}]}]')
    good ;;
*) bad "log prints both transactions with their changes" ;;
esac
run "$BIN" --url "$U" log --since 2
expect_has "log --since 2" 0 '"transaction":2'
case $out in *'"transaction":1,'*) bad "log --since 2 prints transaction 1" ;; *) good ;; esac
run "$BIN" --url "$U" log --limit 0
expect_err "log --limit 0" 2 "--limit '0'"
"$BIN" --url "$U" log --follow --since 2 >"$T/follow.out" 2>"$T/follow.err" &
fol=$!
wait_for "$T/follow.out" '"transaction":2' && good || bad "log --follow prints the existing ones"
run "$BIN" --url "$U" doc delete notes a
wait_for "$T/follow.out" '"transaction":3' && good || bad "log --follow prints a new commit"
grep -q '"transaction":3,.*"collection":"notes","id":"a","revision":1,"deleted":true' "$T/follow.out" &&
    good || bad "the followed delete: $(cat "$T/follow.out")"
kill -INT $fol
wait $fol
rc=$? out='' err=''
expect "Ctrl-C ends log --follow, exit 0" 0 ""

# ---- watch: the changes feed (issue 15) -------------------------------------
# notime: the output with each "time" value replaced by T
notime() { sed 's/"time":"[^"]*"/"time":T/g'; }
run "$BIN" --help
expect_has "--help lists watch" 0 "watch [COLLECTION] [--from ID] [--limit N] [--contents]"
run "$BIN" --url "$U" watch --from 0 --limit 3
[ "$rc" = 0 ] && [ "$(printf '%s\n' "$out" | notime)" = '{"transaction":1,"time":T,"collection":"notes","id":"a","revision":1,"deleted":false}
{"transaction":2,"time":T,"collection":"events","id":1,"revision":1,"deleted":false}
{"transaction":3,"time":T,"collection":"notes","id":"a","revision":1,"deleted":true}' ] &&
    good || bad "watch --from 0 --limit 3 prints the backlog a change a line: $out"
run "$BIN" --url "$U" watch notes --from 0 --limit 2 --contents
[ "$rc" = 0 ] && [ "$(printf '%s\n' "$out" | notime)" = '{"transaction":1,"time":T,"collection":"notes","id":"a","revision":1,"deleted":false,"contents":null}
{"transaction":3,"time":T,"collection":"notes","id":"a","revision":1,"deleted":true,"contents":null}' ] &&
    good || bad "watch COLLECTION --contents: that collection only, contents null once deleted: $out"
run "$BIN" --url "$U" watch --timeout 300
[ "$rc" = 0 ] && [ -z "$out" ] && good || bad "watch (from now) --timeout ends quietly with nothing new"
# live: from now, with contents, while a writer commits
"$BIN" --url "$U" watch --contents --limit 3 >"$T/watch.out" 2>"$T/watch.err" &
wat=$!
wait_for "$T/watch.err" "watching default after transaction 3" && good || bad "watch says where it starts"
run "$BIN" --url "$U" doc put notes --id b '{"n":2}'
run "$BIN" --url "$U" doc put events '{"e":2}'
run "$BIN" --url "$U" doc put notes --id c '{"n":3}'
wait $wat
rc=$?
[ "$rc" = 0 ] && [ "$(notime <"$T/watch.out")" = '{"transaction":4,"time":T,"collection":"notes","id":"b","revision":1,"deleted":false,"contents":{"n":2}}
{"transaction":5,"time":T,"collection":"events","id":2,"revision":1,"deleted":false,"contents":{"e":2}}
{"transaction":6,"time":T,"collection":"notes","id":"c","revision":1,"deleted":false,"contents":{"n":3}}' ] &&
    good || bad "watch prints live commits with their contents, stops at --limit: $(cat "$T/watch.out")"
run "$BIN" --url "$U" watch --from 4 --limit 2
case $(printf '%s\n' "$out" | notime | tr '\n' ' ') in
'{"transaction":5,'*'{"transaction":6,'*) good ;;
*) bad "watch --from 4 resumes after transaction 4: $out" ;;
esac
# a writer committing 20 while a watcher follows: every one once, in order
"$BIN" --url "$U" watch notes --limit 20 >"$T/watch2.out" 2>"$T/watch2.err" &
wat=$!
wait_for "$T/watch2.err" "watching" || bad "the second watcher starts"
i=0
while [ $i -lt 20 ]; do
    "$BIN" --url "$U" doc put notes --id "w$i" '{}' >/dev/null || bad "write w$i"
    i=$((i + 1))
done
wait $wat
ids=$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$T/watch2.out" | tr '\n' ' ')
want=$(i=0; while [ $i -lt 20 ]; do printf 'w%d ' $i; i=$((i + 1)); done)
[ "$ids" = "$want" ] && good || bad "every change once, in order, across backlog and live: $ids"
txns=$(sed 's/.*"transaction":\([0-9]*\),.*/\1/' "$T/watch2.out")
[ "$(printf '%s\n' "$txns" | sort -n -u | wc -l)" = 20 ] &&
    [ "$(printf '%s\n' "$txns" | sort -n -c 2>&1)" = "" ] &&
    good || bad "the transaction ids increase"
"$BIN" --url "$U" watch >"$T/watch3.out" 2>"$T/watch3.err" &
wat=$!
wait_for "$T/watch3.err" "watching" || bad "the third watcher starts"
kill -INT $wat
wait $wat
[ $? = 0 ] && good || bad "Ctrl-C (SIGINT) ends watch, exit 0"
run "$BIN" --url "$U" watch --from x
expect_err "watch --from needs a number" 2 "--from 'x' is not a number"
run "$BIN" --url "$U" watch a b
[ "$rc" = 2 ] && good || bad "watch takes one collection at most"

# ---- clients: the server's connections (issue 15) ---------------------------
"$BIN" --url "$U" pubsub subscribe idle --timeout 20000 >/dev/null 2>"$T/idle.err" &
idle=$!
wait_for "$T/idle.err" "subscribed" || bad "the idle subscriber starts"
run "$BIN" --url "$U" clients
case $out in
'[{"id":'*'"transport":"ws"'*'"yours":false}'*'"yours":true}]') good ;;
*) bad "clients lists the subscriber, then this command's own connection: $out" ;;
esac
[ "$(printf '%s' "$out" | grep -o '"yours":true' | wc -l)" = 1 ] && good ||
    bad "exactly one connection is marked yours"
kill -INT $idle
wait $idle
run "$BIN" --path "$DATA" clients
expect_err "clients needs --url" 2 "clients needs --url"

kill -TERM $srv
wait $srv
# a local storage: the same feed, through the file
run "$BIN" --path "$DATA" watch events --from 0 --limit 2
case $(printf '%s\n' "$out" | notime | tr '\n' ' ') in
'{"transaction":2,"time":T,"collection":"events","id":1,'*'{"transaction":5,'*) good ;;
*) bad "watch on a local path: $out" ;;
esac
echo "$NAME: $pass passed, $fail failed"
[ $fail = 0 ]
