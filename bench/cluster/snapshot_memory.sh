# snapshot_memory.sh -- the memory a Raft snapshot of a storage of SIZE MB
# costs (issue 18, docs/cluster.md "Memory bound"): three `sprig serve
# --cluster` nodes (snapshot threshold 16 entries, trailing 4); a
# follower is stopped (SIGSTOP) and the leader restarted, so the follower
# must catch up by InstallSnapshot; SIZE MB of documents (4 KB each, in
# 4 MB transactions: one Raft entry each) are imported through the new
# leader, which takes snapshots of the whole storage as it grows; then the
# follower continues and installs the last one in place.  Prints each
# node's peak resident memory (VmHWM) before and after, and the storage's
# size on disk.  Timing is not measured (the machine's load decides it).
#
# usage: sh snapshot_memory.sh PATH/TO/sprig [SIZE_MB] [SCRATCH]   (make bench-snapshot-memory)
BIN=$1
MB=${2:-100}
T=${3:-/tmp/sprig-snapmem.$$}
rm -rf "$T" && mkdir -p "$T" || exit 1
pids=""
cleanup() {
    for p in $pids; do
        kill -CONT "$p" 2>/dev/null
        kill -9 "$p" 2>/dev/null
    done
}
trap cleanup EXIT
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
    echo "{\"id\":$i,\"raft\":\"127.0.0.1:$(raft_port "$i")\",\"url\":\"$(url "$i")\",\"bootstrap\":true,\"snapshot_threshold\":16,\"snapshot_trailing\":4,\"peers\":[$peers]}" >"$T/c$i.json"
done
start() {
    "$BIN" serve --path "$T/n$1" --db app --ws "127.0.0.1:$(ws_port "$1")" \
        --quic off --insecure-open --cluster "$T/c$1.json" \
        >>"$T/n$1.log" 2>&1 &
    eval "PID$1=$!"
    pids="$pids $!"
}
sp() {
    n=$1
    shift
    "$BIN" --url "$(url "$n")" --db app "$@"
}
hwm() { eval "awk '/VmHWM/ {print \$2/1024 \" MB\"}' /proc/\$PID$1/status"; }
find_leader() { # find_leader CANDIDATES...
    leader=""
    for t in $(seq 1 300); do
        for i in "$@"; do
            if SPRIG_NO_FOLLOW=1 sp "$i" schema define app items:natural \
                >/dev/null 2>&1; then
                leader=$i
                return
            fi
        done
        sleep 0.2
    done
}

python3 - "$MB" >"$T/docs.ndjson" <<'PY'
import os, sys, base64
n = int(sys.argv[1]) * 256  # 4 KB documents
for i in range(n):
    pad = base64.b64encode(os.urandom(3000)).decode()
    print('{"id":"d%d","pad":"%s"}' % (i, pad))
PY
for i in 1 2 3; do start "$i"; done
find_leader 1 2 3
[ -n "$leader" ] || { echo "no leader"; exit 1; }
sp "$leader" db create app --schema app >/dev/null
sleep 2
f=$((leader % 3 + 1))
o=$((6 - leader - f))
eval "kill -STOP \$PID$f"
eval "kill -TERM \$PID$leader; wait \$PID$leader"
start "$leader"
find_leader "$leader" "$o"
echo "size: $MB MB of documents; leader: node $leader; lagging: node $f"
sp "$leader" doc import items "$T/docs.ndjson" --id-field id --quiet ||
    { echo "import failed"; exit 1; }
echo "imported; leader peak RSS $(hwm "$leader"), node $o $(hwm "$o")," \
    "node $f (stopped) $(hwm "$f")"
before=$(hwm "$f")
eval "kill -CONT \$PID$f"
want=$((MB * 256))
for t in $(seq 1 600); do
    [ "$(sp "$f" doc count items 2>/dev/null)" = "$want" ] && break
    sleep 0.5
done
grep "installed a snapshot" "$T/n$f.log"
echo "node $f: peak RSS $before before the install, $(hwm "$f") after"
echo "storage on disk: $(du -sm "$T/n$f/db" | cut -f1) MB of databases," \
    "raft log + snapshots: $(du -sm "$T/n$f/raft" | cut -f1) MB"
uptime
cleanup
wait 2>/dev/null
rm -rf "$T"
