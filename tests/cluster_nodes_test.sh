# cluster_nodes_test.sh -- three real `sprig serve --cluster` processes on
# loopback (issue 18; docs/cluster.md): Raft over TCP (raft_uv), each node
# with its own durable Raft log under <storage>/raft/.
#
#  - the nodes elect a leader; a write sent to a follower is refused
#    naming the leader, the client follows it, so the write succeeds and
#    reaches every node;
#  - writes through the leader reach every node;
#  - kill -9 of the leader while a writer runs: the two others elect a new
#    leader, which takes writes; every acknowledged write (and every
#    acknowledged increment, exactly once) is on both survivors;
#
# usage: sh cluster_nodes_test.sh PATH/TO/sprig SCRATCH_DIR
BIN=$1
T=$2
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3
for i in 1 2 3; do cl_config "$i" "1 2 3" true; done
for i in 1 2 3; do cl_start "$i"; done

# the leader: the node where a schema definition goes through (a minute at
# most: elections, and the servers starting under load)
leader=$(cl_first_leader "1 2 3")
[ -n "$leader" ] || { bad "no leader elected"; cat "$T"/n*.log; exit 1; }
echo "leader: node $leader"
sp "$leader" db create app --schema app >/dev/null || bad "db create on the leader"
# reads are local: wait until each node applied the creation
for i in 1 2 3; do
    for t in 1 2 3 4 5 6 7 8 9 10; do
        sp "$i" db list 2>/dev/null | grep -q '"app"' && break
        sleep 0.2
    done
done

# writes through the leader reach every node
for k in 1 2 3 4 5; do
    sp "$leader" doc put items --id "a$k" "{\"k\":$k}" >/dev/null 2>"$T/err" ||
        bad "write a$k through the leader: $(cat "$T/err")"
done
for i in 1 2 3; do
    n=""
    for t in 1 2 3 4 5 6 7 8 9 10; do
        n=$(sp "$i" doc count items 2>/dev/null)
        [ "$n" = 5 ] && break
        sleep 0.2
    done
    [ "$n" = 5 ] || bad "node $i holds $n of the 5 documents"
done

# a write sent to a follower: the follower refuses it naming the leader
# and its client URL (the exact words: test_cluster_fixture), the client
# follows that URL and retries, so it succeeds -- and lands on every node
f=$((leader % 3 + 1))
sp "$f" doc put items --id via-follower '{"x":1}' >/dev/null 2>"$T/err" ||
    bad "a write sent to follower $f failed: $(cat "$T/err")"
for i in 1 2 3; do
    got=""
    for t in 1 2 3 4 5 6 7 8 9 10; do
        got=$(sp "$i" doc get items via-follower 2>/dev/null) && break
        sleep 0.2
    done
    case "$got" in *'"x":1'*) ;; *) bad "node $i lacks the follower's write" ;; esac
done

# kill -9 of the leader under write load
: >"$T/acked"
(
    k=0
    while :; do
        k=$((k + 1))
        sp "$leader" doc put items --id "w$k" "{\"k\":$k}" >/dev/null 2>&1 ||
            break
        sp "$leader" kv incr counter --type i64 >/dev/null 2>&1 || break
        echo "$k" >>"$T/acked"
    done
) &
writer=$!
while [ "$(wc -l <"$T/acked")" -lt 15 ]; do sleep 0.1; done
eval "kill -9 \$PID$leader"
wait "$writer"
acked=$(wc -l <"$T/acked")
echo "killed node $leader after $acked acknowledged writes"

# a new leader among the survivors takes writes
old=$leader
leader=""
tries=0
while [ -z "$leader" ] && [ $tries -lt 150 ]; do
    for i in 1 2 3; do
        [ "$i" = "$old" ] && continue
        if sp "$i" --no-follow doc put items --id after '{"after":1}' >/dev/null 2>&1; then
            leader=$i
            break
        fi
    done
    tries=$((tries + 1))
    [ -z "$leader" ] && sleep 0.2
done
[ -n "$leader" ] || bad "no new leader after the kill"
echo "new leader: node $leader"

# every acknowledged write on every survivor (a follower may lag a little:
# reads are local)
check_node() { # check_node NODE: every acked document; the counter
    i=$1
    for t in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
        sp "$i" doc list items --limit 100000 >"$T/list$i" 2>/dev/null
        c=$(counter_of "$i")
        missing=0
        for k in $(cat "$T/acked"); do
            grep -q "\"id\":\"w$k\"" "$T/list$i" || missing=$((missing + 1))
        done
        [ $missing = 0 ] && [ -n "$c" ] && [ "$c" -ge "$acked" ] && break
        sleep 0.3
    done
    [ $missing = 0 ] || bad "node $i lacks $missing acknowledged writes"
    # an increment was acknowledged $acked times; one more may have
    # committed unacknowledged when the leader died, none twice
    [ -n "$c" ] && [ "$c" -ge "$acked" ] && [ "$c" -le $((acked + 1)) ] ||
        bad "node $i: counter $c after $acked acknowledged increments"
    echo "node $i: all $acked acknowledged writes, counter $c"
}
for i in 1 2 3; do
    [ "$i" = "$old" ] || check_node "$i"
done
cl_finish cluster_nodes
