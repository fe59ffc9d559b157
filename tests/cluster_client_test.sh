#!/bin/sh
# cluster_client_test.sh -- the multi-URL client against a real 3-node
# cluster (issue 18): `sprig serve --cluster FILE` x 3 on loopback, driven
# by the CLI (whose --url goes through sprig_open()).
#   - a write sent to each node alone succeeds: a follower answers
#     SPRIG_ENOTLEADER naming the leader, the client follows it and
#     retries (tests/test_multi_url.c tests the same against a server
#     that answers so; this is the real one);
#   - every write is read back through the URL list;
#   - node 1 (the bootstrap node) killed with SIGKILL: a write through the
#     list succeeds within 20 s (a new leader, or the same one).
# Until `sprig serve --cluster` exists it exits 77 (ctest: skipped) saying
# so.  Registered as ctest cluster_client by tools/CMakeLists.txt:
#     sh tests/cluster_client_test.sh BUILD/tools/sprig SCRATCH_DIR
set -u
SPRIG=${1:?usage: cluster_client_test.sh SPRIG SCRATCH_DIR}
TMP=${2:?usage: cluster_client_test.sh SPRIG SCRATCH_DIR}
NAME=cluster_client

if ! "$SPRIG" serve --help 2>&1 | grep -q -- "--cluster"; then
    echo "$NAME: skipped: sprig serve --cluster not available"
    exit 77
fi

rm -rf "$TMP"
mkdir -p "$TMP"
pids=""
cleanup() {
    for p in $pids; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "$NAME: FAIL: $*" >&2
    for i in 1 2 3; do
        [ -f "$TMP/node$i.log" ] && sed "s/^/  node$i: /" "$TMP/node$i.log" >&2
    done
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

for i in 1 2 3; do
    eval "raft$i=127.0.0.1:$(free_port)"
    eval "ws$i=127.0.0.1:$(free_port)"
done
node_conf() { # id bootstrap
    me=$1
    peers=""
    for j in 1 2 3; do
        [ "$j" = "$me" ] && continue
        eval "r=\$raft$j; w=\$ws$j"
        peers="$peers${peers:+,}{\"id\":$j,\"raft\":\"$r\",\"url\":\"ws://$w\"}"
    done
    eval "r=\$raft$me; w=\$ws$me"
    printf '{"id":%s,"raft":"%s","url":"ws://%s","bootstrap":%s,"peers":[%s]}\n' \
        "$me" "$r" "$w" "$2" "$peers"
}
for i in 1 2 3; do
    node_conf "$i" true >"$TMP/node$i.json"
    eval "w=\$ws$i"
    "$SPRIG" --path "$TMP/data$i" serve --cluster "$TMP/node$i.json" \
        --ws "$w" --quic off --insecure-open >"$TMP/node$i.log" 2>&1 &
    eval "pid$i=$!"
    pids="$pids $!"
done
LIST="ws://$ws1,ws://$ws2,ws://$ws3"
sp() { "$SPRIG" --url "$@"; }

# the cluster is up once a schema and a database can be made through it
i=0
until sp "$LIST" schema define app notes >/dev/null 2>&1 &&
    sp "$LIST" db create default --schema app >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "no database made through the cluster in 20 s"
    sleep 0.1
done

# reads are local to the node asked (docs/cluster.md): wait until each
# node applied the creation
for i in 1 2 3; do
    eval "w=\$ws$i"
    j=0
    until sp "ws://$w" db list 2>/dev/null | grep -q '"default"'; do
        j=$((j + 1))
        [ $j -lt 100 ] || fail "node $i never saw the database"
        sleep 0.1
    done
done

# a write sent to each node alone: followers name the leader, the client
# follows
for i in 1 2 3; do
    eval "w=\$ws$i"
    out=$(sp "ws://$w" kv set "k$i" "v$i" 2>&1) ||
        fail "a write sent to node $i: $out"
done
for i in 1 2 3; do # (a follower may lag its leader a little)
    j=0
    until out=$(sp "$LIST" kv get "k$i" 2>&1) && echo "$out" | grep -q "v$i"; do
        j=$((j + 1))
        [ $j -lt 50 ] || fail "read k$i gave $out"
        sleep 0.1
    done
done

# node 1 killed: a write through the list succeeds within 20 s
# shellcheck disable=SC2154 # set by eval above
kill -9 "$pid1"
i=0
until sp "$LIST" kv set after-kill yes >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "no write through the list in 20 s after the kill"
    sleep 0.1
done
i=0
until out=$(sp "$LIST" kv get after-kill 2>&1); do
    i=$((i + 1))
    [ $i -lt 50 ] || fail "read after the kill: $out"
    sleep 0.1
done
echo "$NAME: ok (writes through each node, the list, and after a kill)"
