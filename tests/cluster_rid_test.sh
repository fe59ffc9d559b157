# cluster_rid_test.sh -- request ids on real nodes (issue 18, item 5;
# docs/cluster.md "Guarantees"): three `sprig serve --cluster` processes
# on loopback; four writers increment one key-value counter through the
# client's URL list (the leader first), the leader is killed with kill -9
# while increments are in flight, and the writers ride through it: their
# clients resend a write whose connection was lost, or whose outcome a
# node answered "unknown", to the next node and follow the new leader,
# with the same request id.  Every increment must be acknowledged (the
# application sees one success), and the counter on both survivors must
# equal the number of acknowledged increments EXACTLY: an increment
# applied twice (a retry not recognised) or lost shows.  Then reads with
# --linearizable sent to a follower are answered by the leader with the
# latest value.
#
# usage: sh cluster_rid_test.sh PATH/TO/sprig SCRATCH_DIR
BIN=$1
T=$2
rm -rf "$T" && mkdir -p "$T" || exit 1
fail=0
pids=""

bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}

cleanup() {
    for p in $pids; do
        kill -9 "$p" 2>/dev/null
    done
}
trap cleanup EXIT

# six free loopback ports: three for Raft, three for clients
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
set -- $ports
R1=$1 R2=$2 R3=$3 W1=$4 W2=$5 W3=$6

raft_port() { eval echo "\$R$1"; }
ws_port() { eval echo "\$W$1"; }
url() { echo "ws://127.0.0.1:$(ws_port "$1")"; }

for i in 1 2 3; do
    peers=""
    for j in 1 2 3; do
        [ "$j" = "$i" ] && continue
        peers="$peers${peers:+,}{\"id\":$j,\"raft\":\"127.0.0.1:$(raft_port "$j")\",\"url\":\"$(url "$j")\"}"
    done
    echo "{\"id\":$i,\"raft\":\"127.0.0.1:$(raft_port "$i")\",\"url\":\"$(url "$i")\",\"bootstrap\":true,\"peers\":[$peers]}" >"$T/c$i.json"
done

start() {
    "$BIN" serve --path "$T/n$1" --db app --ws "127.0.0.1:$(ws_port "$1")" \
        --quic off --insecure-open --cluster "$T/c$1.json" \
        >>"$T/n$1.log" 2>&1 &
    eval "PID$1=$!"
    pids="$pids $!"
}


sp() { # sp NODE ARGS...: the CLI against node NODE
    n=$1
    shift
    "$BIN" --url "$(url "$n")" --db app "$@"
}

counter_of() { # counter_of NODE [FLAGS]: the value of key "counter"
    n=$1
    shift
    sp "$n" "$@" kv get counter 2>/dev/null |
        sed -n 's/.*"value":\([0-9-]*\).*/\1/p'
}

for i in 1 2 3; do start "$i"; done

leader=""
tries=0
while [ -z "$leader" ] && [ $tries -lt 300 ]; do
    for i in 1 2 3; do
        if sp "$i" --no-follow schema define app items:natural \
            >/dev/null 2>"$T/err"; then
            leader=$i
            break
        fi
    done
    tries=$((tries + 1))
    [ -z "$leader" ] && sleep 0.2
done
[ -n "$leader" ] || { bad "no leader elected"; cat "$T"/n*.log; exit 1; }
echo "leader: node $leader"
sp "$leader" db create app --schema app >/dev/null || bad "db create"

# the client's list: the leader first, then the two others
list="$(url "$leader")"
for i in 1 2 3; do
    [ "$i" = "$leader" ] || list="$list,$(url "$i")"
done

# four writers, 30 increments each; the leader dies after 20 acks
writer() { # writer N
    k=0
    while [ $k -lt 30 ]; do
        k=$((k + 1))
        if "$BIN" --url "$list" --db app kv incr counter --type i64 \
            >/dev/null 2>>"$T/werr$1"; then
            echo "$1.$k" >>"$T/acked"
        else
            echo "$1.$k" >>"$T/failed"
        fi
    done
}
: >"$T/acked"
: >"$T/failed"
wpids=""
for w in 1 2 3 4; do
    writer "$w" &
    wpids="$wpids $!"
done
while [ "$(wc -l <"$T/acked")" -lt 20 ]; do sleep 0.05; done
eval "kill -9 \$PID$leader"
echo "killed node $leader after $(wc -l <"$T/acked") acknowledged increments"
for p in $wpids; do wait "$p"; done
acked=$(wc -l <"$T/acked")
failed=$(wc -l <"$T/failed")
echo "$acked increments acknowledged, $failed failed"
[ "$failed" = 0 ] || bad "$failed increments failed: $(sort -u "$T"/werr* | head -3)"

old=$leader
for i in 1 2 3; do
    [ "$i" = "$old" ] && continue
    c=""
    for t in $(seq 1 50); do
        c=$(counter_of "$i")
        [ -n "$c" ] && [ "$c" -ge "$acked" ] && break
        sleep 0.2
    done
    # exactly: a retried increment applied twice would make it larger
    [ "$c" = "$acked" ] ||
        bad "node $i: counter $c after $acked acknowledged increments"
    echo "node $i: counter $c"
done

# linearizable reads, sent to each survivor: the follower refuses and
# the client follows the leader, which confirms its leadership first
for i in 1 2 3; do
    [ "$i" = "$old" ] && continue
    "$BIN" --url "$list" --db app kv incr counter --type i64 >/dev/null ||
        bad "an increment after the failover failed"
    acked=$((acked + 1))
    c=$(counter_of "$i" --linearizable)
    [ "$c" = "$acked" ] ||
        bad "linearizable read on node $i: $c, the last write made $acked"
done

cleanup
wait 2>/dev/null
trap - EXIT
if [ $fail -gt 0 ]; then
    for i in 1 2 3; do
        echo "--- node $i log"
        tail -20 "$T/n$i.log"
    done
    echo "$fail failure(s)"
    exit 1
fi
echo "cluster_rid: all passed"
