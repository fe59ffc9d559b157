# cluster_snapshot_live_test.sh -- a snapshot installed under a running
# server (issue 18; docs/cluster.md "Snapshots"): three `sprig serve
# --cluster` processes with low snapshot thresholds (cluster file fields
# "snapshot_threshold" / "snapshot_trailing"); a follower is stopped
# (SIGSTOP) while writes commit and the others compact their logs past
# it; continued (SIGCONT), it catches up by InstallSnapshot, which its
# storage takes in place (src/local/install.c) while its server serves.
#
# The leader is restarted (SIGTERM, start) while the follower is stopped:
# a leader that stays up streams every new entry to a stopped follower's
# socket (the kernel and libuv buffer it all), so the follower would catch
# up from its socket buffer, never needing a snapshot; a new leader
# process starts the follower in probe mode, sends it nothing but
# heartbeats, and must send a snapshot once its log is compacted.
#
#  - the follower says it installed a snapshot; its server stays up;
#  - a client that keeps reading from the follower never gets an error
#    for a read it started after SIGCONT (reads in flight while the server
#    is frozen may time out);
#  - a changes feed (`sprig watch`) held open on the follower across the
#    install goes on and delivers every change it missed;
#  - a write after the install reaches every node;
#  - all stopped: the three storages are byte-identical (every LMDB table
#    of every environment, tests/storedump.h; the node-local "raft.floor"
#    and "wal.lsn" left out) and `sprig check` finds nothing wrong.
#
# usage: sh cluster_snapshot_live_test.sh PATH/TO/sprig PATH/TO/sprig-storedump SCRATCH
BIN=$1
DUMP=$2
T=$3
# documents written while the follower is stopped (the ASan build passes
# fewer: each CLI process costs ~10x there, and a stop longer than the
# client's 90 s idle limit would end the feed's connection); either is
# well past the snapshot threshold
N=${SNAP_LIVE_WRITES:-120}
THRESHOLD=${SNAP_LIVE_THRESHOLD:-32}
TRAILING=$((THRESHOLD / 4))
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3

for i in 1 2 3; do
    cl_config "$i" "1 2 3" true \
        "\"snapshot_threshold\":$THRESHOLD,\"snapshot_trailing\":$TRAILING"
done

count_on() { sp "$1" doc count items 2>/dev/null; }
# wait_count NODE WANT SECONDS (doubled: the loop this replaces counted
# polls, not seconds, and gave a loaded machine more time)
wait_count() { cl_wait_count "$1" items "$2" $(($3 * 2)); }

for i in 1 2 3; do cl_start "$i"; done

leader=$(cl_first_leader "1 2 3")
[ -n "$leader" ] || { bad "no leader elected"; cat "$T"/n*.log; exit 1; }
f=$((leader % 3 + 1)) # the follower that will lag
echo "leader: node $leader; lagging follower: node $f"
sp "$leader" db create app --schema app >/dev/null || bad "db create"
for k in 1 2 3 4 5; do
    sp "$leader" doc put items --id "pre$k" "{\"k\":$k}" >/dev/null ||
        bad "write pre$k"
done
for i in 1 2 3; do
    wait_count "$i" 5 20 || bad "node $i did not apply the first writes"
done

# on the follower: a changes feed held open, and a client that keeps
# reading (each read through the server's cached database handle)
sp "$f" watch items --timeout 600000 >"$T/watch" 2>"$T/watch.err" &
watcher=$!
pids="$pids $watcher"
for t in $(seq 1 300); do # following before the follower stops
    grep -q "^watching" "$T/watch.err" && break
    sleep 0.2
done
grep -q "^watching" "$T/watch.err" || bad "the feed did not start: $(cat "$T/watch.err")"
: >"$T/reads"
(
    while [ ! -e "$T/stop-reading" ]; do
        when=before
        [ -e "$T/resumed" ] && when=after
        if n=$(sp "$f" doc count items 2>"$T/read.err"); then
            echo "ok-$when $n" >>"$T/reads"
        else
            echo "error-$when $(head -1 "$T/read.err")" >>"$T/reads"
        fi
    done
) &
reader=$!
sleep 1

# stop the follower; restart the leader (see above); the new leader
# commits N writes and the two compact their logs
eval "kill -STOP \$PID$f"
eval "kill -TERM \$PID$leader; wait \$PID$leader"
cl_start "$leader"
o=$((6 - leader - f)) # the third node
leader=$(cl_leader_by "$o $((6 - o - f))" doc put items --id pre6 '{"k":6}')
[ -n "$leader" ] || { bad "no leader after the restart"; exit 1; }
echo "leader after the restart: node $leader"
for w in 1 2 3; do
    (
        for k in $(seq $w 3 $N); do
            # a put that timed out on a loaded machine is tried again
            ok=""
            for a in 1 2 3; do
                sp "$leader" doc put items --id "s$k" "{\"k\":$k}" \
                    >/dev/null 2>"$T/put$w.err" && ok=1 && break
                # an attempt that timed out may have committed
                [ $a -gt 1 ] && grep -q "already exists" "$T/put$w.err" &&
                    ok=1 && break
            done
            [ -n "$ok" ] || echo "s$k $(head -1 "$T/put$w.err")" >>"$T/lost"
        done
    ) &
    eval "wr$w=$!"
done
wait "$wr1" "$wr2" "$wr3"
[ -e "$T/lost" ] && bad "writes failed on the leader: $(cat "$T/lost")"
total=$((N + 6))
echo "committed $N writes while node $f was stopped"
: >"$T/resumed"
eval "kill -CONT \$PID$f"

wait_count "$f" "$total" 90 || bad "node $f did not catch up: $(count_on "$f") of $total"
grep -q "installed a snapshot" "$T/n$f.log" ||
    bad "node $f caught up without installing a snapshot"
grep "installed a snapshot" "$T/n$f.log"
sleep 1
: >"$T/stop-reading"
wait "$reader"
ok_after=$(grep -c ok-after "$T/reads")
errors=$(grep -c error-after "$T/reads")
echo "reader on node $f: $(grep -c ok-before "$T/reads") reads before" \
    "SIGSTOP, $(grep -c error-before "$T/reads") cut by it; after SIGCONT:" \
    "$ok_after reads, $errors errors"
[ "$errors" = 0 ] || bad "the reader on node $f got errors: $(grep error-after "$T/reads" | head -3)"
[ "$ok_after" -gt 0 ] || bad "the reader on node $f made no progress"
eval "kill -0 \$PID$f" 2>/dev/null || bad "node $f's server died"

# the feed delivered every change it missed (one per document written
# after it started)
for t in $(seq 1 50); do
    [ "$(grep -c '"id":"s' "$T/watch")" -ge "$N" ] && break
    sleep 0.2
done
seen=$(grep -c '"id":"s' "$T/watch")
echo "feed on node $f: $seen of the $N changes"
[ "$seen" -ge "$N" ] || bad "the feed on node $f delivered $seen of $N changes"
kill "$watcher" 2>/dev/null

# a write after the install reaches every node
sp "$leader" doc put items --id after '{"after":1}' >/dev/null ||
    bad "write after the install"
for i in 1 2 3; do
    wait_count "$i" $((total + 1)) 30 || bad "node $i lacks the last write"
done

# byte-identical, and sound
cl_cleanup
wait 2>/dev/null
trap - EXIT
for i in 1 2 3; do
    "$DUMP" "$T/n$i" >"$T/dump$i" || bad "dump of node $i"
done
for i in 2 3; do
    cmp -s "$T/dump1" "$T/dump$i" ||
        bad "node $i differs from node 1 ($(wc -c <"$T/dump$i") / $(wc -c <"$T/dump1") bytes)"
done
echo "dumps: $(wc -c <"$T/dump1") bytes each"
for i in 1 2 3; do
    "$BIN" --path "$T/n$i" check >"$T/check$i" 2>&1 ||
        bad "sprig check on node $i: $(tail -3 "$T/check$i")"
done

cl_finish cluster_snapshot_live
