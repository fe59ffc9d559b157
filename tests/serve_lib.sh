# serve_lib.sh -- the prologue shared by the smoke scripts that drive a real
# `sprig serve` (bench_net_smoke.sh, commerce_smoke.sh), sourced by them.
# The sourcing script sets NAME (its name, for messages) and TMP (its
# scratch directory, emptied here and removed on exit).  Provides fail,
# the variables pid (the server) and peer (another process) that are
# stopped on exit when set, and wait_url, which sets url once the server
# started in the background logs to "$TMP/serve.log" that it listens.

# fail MESSAGE...: report, show the server's log, exit 1.
fail() {
    echo "$NAME: FAIL: $*" >&2
    [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" >&2
    exit 1
}

rm -rf "$TMP"
mkdir -p "$TMP"
pid=""
peer=""
cleanup() {
    for p in $pid $peer; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_url: url = the server's ws://127.0.0.1:PORT (at most 20 s; fails if
# the server exits first or never says where it listens).
wait_url() {
    url=""
    i=0
    while [ $i -lt 200 ]; do # 20 s
        # the log may not exist yet: the background shell opens it
        url=$(sed -n 's/.*listening on \(ws:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' \
            "$TMP/serve.log" 2>/dev/null || true)
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || fail "sprig serve exited"
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$url" ] || fail "sprig serve did not start"
}
