#!/bin/sh
# cli_watch_test.sh -- issue 16's Build 2 against a `sprig serve`: `sprig
# pubsub subscribe TOPIC...` receives what `pubsub publish` sends to its
# topics (and not other topics), as NDJSON, stopping after --count or
# --timeout or on SIGINT; `sprig log` prints the transaction log and
# `log --follow` prints new commits as they happen; `sprig --help` says
# that `watch` waits for the changes feed.  Registered with ctest as
# `cli_watch` by tools/CMakeLists.txt:
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

# ---- watch -----------------------------------------------------------------
run "$BIN" --help
expect_has "--help says what watch waits for" 0 "watch        not yet: the changes feed of issue 13"
run "$BIN" log --help
expect_has "log --help points from watch to log --follow" 0 "shows every commit"

kill -TERM $srv
wait $srv
echo "$NAME: $pass passed, $fail failed"
[ $fail = 0 ]
