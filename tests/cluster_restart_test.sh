# cluster_restart_test.sh -- restarts of real `sprig serve --cluster`
# nodes (issue 18; docs/cluster.md, "Restarts"), three processes on
# loopback:
#
#  - SIGTERM of a follower (a clean stop, exit 0), writes without it,
#    restart: it catches up (every document, the counter);
#  - SIGTERM of all three: the stopped nodes hold byte-identical data
#    (sprig_storedump) and pass `sprig check`; restarted, every
#    acknowledged write is there and writes go on;
#  - kill -9 of a node (ROUNDS times, alternating the leader and a
#    follower; default 2, CLUSTER_RESTART_ROUNDS=20 for the long run):
#    writes while it is down, restart, it catches up within 20 s (the time
#    each took is printed);
#  - a last SIGTERM of all three: byte-identical again.
#
# usage: sh cluster_restart_test.sh PATH/TO/sprig PATH/TO/sprig_storedump
#        SCRATCH_DIR
BIN=$1
DUMP=$2
T=$3
ROUNDS=${CLUSTER_RESTART_ROUNDS:-2}
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3
for i in 1 2 3; do cl_config "$i" "1 2 3" true; done
for i in 1 2 3; do cl_start "$i"; done

# the first leader: where the schema definition goes through
leader=$(cl_first_leader "1 2 3")
[ -n "$leader" ] || { bad "no leader elected"; cl_finish cluster_restart; }
sp "$leader" db create app --schema app >/dev/null || bad "db create"
echo "leader: node $leader"

docs=0 # documents acknowledged so far (ids d1..d$docs), one increment each
# write N: N documents and N increments through node $leader (the client
# follows ENOTLEADER, so a leader change in between is fine)
write() {
    k=0
    while [ $k -lt "$1" ]; do
        k=$((k + 1))
        d=$((docs + 1))
        sp "$leader" doc put items --id "d$d" "{\"k\":$d}" >/dev/null \
            2>"$T/err" || { bad "write d$d: $(cat "$T/err")"; return 1; }
        sp "$leader" kv incr counter --type i64 >/dev/null 2>"$T/err" ||
            { bad "increment $d: $(cat "$T/err")"; return 1; }
        docs=$d
    done
}

# caught_up NODE [SECONDS]: every acknowledged document and increment
caught_up() {
    cl_wait_count "$1" items $docs "${2:-30}" &&
        cl_wait_counter "$1" $docs 10 ||
        bad "node $1 did not catch up: $docs documents, counter $docs wanted, counter $(counter_of "$1")"
}

# stop_all_same: SIGTERM every node; all three byte-identical
stop_all_same() {
    for i in 1 2 3; do cl_stop "$i"; done
    cl_same 1 2
    cl_same 1 3
}

write 10
for i in 1 2 3; do caught_up "$i"; done

# 1. a follower stopped cleanly misses writes, restarts, catches up
f=$((leader % 3 + 1))
cl_stop "$f"
write 10
cl_start "$f"
caught_up "$f"
echo "follower $f: stopped (SIGTERM), restarted, caught up ($docs documents)"

# 2. all three stopped cleanly and restarted: nothing lost, writes go on
for i in 1 2 3; do caught_up "$i"; done
stop_all_same
echo "all three stopped (SIGTERM): byte-identical, sprig check clean"
for i in 1 2 3; do cl_start "$i"; done
leader=$(cl_leader "1 2 3") || bad "no leader after restarting all three"
[ -n "$leader" ] || cl_finish cluster_restart
for i in 1 2 3; do caught_up "$i"; done
write 5
for i in 1 2 3; do caught_up "$i"; done
echo "all three restarted: leader node $leader, $docs documents everywhere"

# 3. kill -9 rounds: the leader in odd rounds, a follower in even ones
r=0
while [ $r -lt "$ROUNDS" ]; do
    r=$((r + 1))
    if [ $((r % 2)) = 1 ]; then
        victim=$leader
    else
        victim=$((leader % 3 + 1))
    fi
    cl_kill "$victim"
    others=""
    for i in 1 2 3; do [ "$i" = "$victim" ] || others="$others $i"; done
    leader=$(cl_leader "$others") || { bad "round $r: no leader"; break; }
    write 5 || break
    cl_start "$victim"
    t0=$(date +%s.%N)
    caught_up "$victim" 20
    t1=$(date +%s.%N)
    echo "round $r: node $victim killed (-9) and restarted, caught up" \
        "in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s ($docs documents)"
done

# 4. byte-identical after the kills
for i in 1 2 3; do caught_up "$i"; done
stop_all_same
echo "after $ROUNDS kill -9 rounds: byte-identical, sprig check clean"
cl_finish cluster_restart
