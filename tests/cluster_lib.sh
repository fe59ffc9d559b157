# cluster_lib.sh -- shell helpers for tests of real `sprig serve --cluster`
# processes on loopback (cluster_nodes, cluster_restart, cluster_ops,
# cluster_rid, cluster_tls, cluster_snapshot_live):
# ports, cluster files, starting and stopping nodes, the CLI against a
# node, finding the leader, waiting for a node to catch up, and comparing
# two stopped nodes byte for byte (sprig_storedump).  Sourced, not run.
#
# The sourcing script sets BIN (the sprig binary) and T (a scratch
# directory, emptied here) and may set CL_SERVE_ARGS (default
# "--insecure-open") and CL_LOGIN (the CLI's login options, e.g.
# "--token-file F") before calling cl_init MAX_NODES.  Failures are
# counted with bad(); cl_finish NAME prints the logs and exits 1 after any.

fail=0
pids=""
CL_SERVE_ARGS=${CL_SERVE_ARGS---insecure-open}

bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}

# every process started (a stopped one continued first), with kill -9
cl_cleanup() {
    for p in $pids; do
        kill -CONT "$p" 2>/dev/null
        kill -9 "$p" 2>/dev/null
    done
}

# cl_init MAX [EXTRA]: an empty $T, two free loopback ports per node (Raft
# R<i>, clients W<i>) for nodes 1..MAX, and EXTRA more (X1..X<EXTRA>, e.g.
# for proxies)
cl_init() {
    rm -rf "$T" && mkdir -p "$T" || exit 1
    trap cl_cleanup EXIT
    CL_MAX=$1
    ports=$(python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' \
        $((2 * CL_MAX + ${2:-0})))
    i=0
    for p in $ports; do
        i=$((i + 1))
        if [ $i -le "$CL_MAX" ]; then
            eval "R$i=$p"
        elif [ $i -le $((2 * CL_MAX)) ]; then
            eval "W$((i - CL_MAX))=$p"
        else
            eval "X$((i - 2 * CL_MAX))=$p"
        fi
    done
}

raft_port() { eval echo "\$R$1"; }
ws_port() { eval echo "\$W$1"; }
url() { echo "ws://127.0.0.1:$(ws_port "$1")"; }
raft_addr() { echo "127.0.0.1:$(raft_port "$1")"; }
pid_of() { eval echo "\$PID$1"; }
# cl_peer_raft FROM N: where node FROM reaches node N's Raft port (a test
# may redefine it after sourcing, e.g. to put a proxy in between)
cl_peer_raft() { raft_addr "$2"; }

# cl_config NODE "MEMBERS" BOOTSTRAP [EXTRA]: $T/c<NODE>.json naming the
# other MEMBERS as peers; BOOTSTRAP true|false; EXTRA: more JSON members
# (e.g. '"snapshot_threshold":64')
cl_config() {
    peers=""
    for j in $2; do
        [ "$j" = "$1" ] && continue
        peers="$peers${peers:+,}{\"id\":$j,\"raft\":\"$(cl_peer_raft "$1" "$j")\",\"url\":\"$(url "$j")\"}"
    done
    echo "{\"id\":$1,\"raft\":\"$(raft_addr "$1")\",\"url\":\"$(url "$1")\",\"bootstrap\":$3${4:+,$4},\"peers\":[$peers]}" >"$T/c$1.json"
}

# cl_start NODE: serve $T/n<NODE> as a node (log appended to $T/n<NODE>.log)
cl_start() {
    # shellcheck disable=SC2086 # CL_SERVE_ARGS is a word list
    "$BIN" serve --path "$T/n$1" --db app --ws "127.0.0.1:$(ws_port "$1")" \
        --quic off $CL_SERVE_ARGS --cluster "$T/c$1.json" \
        >>"$T/n$1.log" 2>&1 &
    eval "PID$1=$!"
    pids="$pids $!"
}

# cl_stop NODE: SIGTERM, wait for the exit; a status other than 0 is a
# failure (a clean stop)
cl_stop() {
    p=$(pid_of "$1")
    kill -TERM "$p"
    wait "$p"
    st=$?
    [ $st = 0 ] || bad "node $1 exited $st after SIGTERM"
}

# cl_kill NODE: kill -9 and reap
cl_kill() {
    p=$(pid_of "$1")
    kill -9 "$p"
    wait "$p" 2>/dev/null
}

sp() { # sp NODE ARGS...: the CLI against node NODE (login: $CL_LOGIN)
    n=$1
    shift
    # shellcheck disable=SC2086 # CL_LOGIN is a word list
    "$BIN" --url "$(url "$n")" --db app $CL_LOGIN "$@"
}

counter_of() { # counter_of NODE [FLAGS]: the value of key "counter" (empty: none)
    n=$1
    shift
    sp "$n" "$@" kv get counter 2>/dev/null |
        sed -n 's/.*"value":\([0-9-]*\).*/\1/p'
}

# cl_leader_by "NODES" ARGS...: the first node among NODES where the CLI
# command ARGS (a write) goes through with following off -- the leader;
# nothing (status 1) after ~60 s.
cl_leader_by() {
    cl_nodes=$1
    shift
    tries=0
    while [ $tries -lt 300 ]; do
        for i in $cl_nodes; do
            if SPRIG_NO_FOLLOW=1 sp "$i" "$@" >/dev/null 2>&1; then
                echo "$i"
                return 0
            fi
        done
        tries=$((tries + 1))
        sleep 0.2
    done
    return 1
}

# cl_first_leader "NODES": the leader of a new cluster -- the node among
# NODES where defining schema "app" (collection items, natural ids) goes
# through; nothing (status 1) after ~60 s.
cl_first_leader() { cl_leader_by "$1" schema define app items:natural; }

# cl_leader "NODES": the node among NODES that takes a write (a key-value
# set of "leader-probe"); empty after ~60 s.  Needs database app.
cl_leader() { cl_leader_by "$1" kv set leader-probe 1; }

# cl_wait_count NODE COLL N [SECONDS]: until NODE holds N documents in COLL
# (reads are local); 1 when it does not within SECONDS (default 30)
cl_wait_count() {
    end=$(($(date +%s) + ${4:-30}))
    while :; do
        n=$(sp "$1" doc count "$2" 2>/dev/null)
        [ "$n" = "$3" ] && return 0
        [ "$(date +%s)" -ge $end ] && {
            echo "node $1 holds ${n:-no} documents of $3 in $2" >&2
            return 1
        }
        sleep 0.2
    done
}

# cl_wait_counter NODE N [SECONDS]: until NODE's "counter" is N
cl_wait_counter() {
    end=$(($(date +%s) + ${3:-30}))
    while :; do
        [ "$(counter_of "$1")" = "$2" ] && return 0
        [ "$(date +%s)" -ge $end ] && return 1
        sleep 0.2
    done
}

# cl_same A B: the stopped nodes A and B hold byte-identical data
# (sprig_storedump; $DUMP is its path) and both pass `sprig check`
cl_same() {
    for i in "$1" "$2"; do
        "$DUMP" "$T/n$i" >"$T/dump$i" || bad "cannot dump node $i"
        "$BIN" --path "$T/n$i" check >"$T/check$i" 2>&1 ||
            bad "sprig check of node $i: $(tail -3 "$T/check$i")"
    done
    cmp -s "$T/dump$1" "$T/dump$2" ||
        bad "nodes $1 and $2 differ ($(wc -c <"$T/dump$1") and $(wc -c <"$T/dump$2") bytes dumped)"
}

# cl_finish NAME: reap, print the logs after failures, exit
cl_finish() {
    cl_cleanup
    wait 2>/dev/null
    trap - EXIT
    if [ $fail -gt 0 ]; then
        for f in "$T"/n*.log; do
            echo "--- $f"
            tail -20 "$f"
        done
        echo "$fail failure(s)"
        exit 1
    fi
    echo "$1: all passed"
}
