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
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3
for i in 1 2 3; do cl_config "$i" "1 2 3" true; done
for i in 1 2 3; do cl_start "$i"; done

leader=$(cl_first_leader "1 2 3")
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

cl_finish cluster_rid
