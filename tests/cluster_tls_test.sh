# cluster_tls_test.sh -- node-to-node TLS (issue 18; docs/cluster.md,
# "Node-to-node TLS"): five real `sprig serve --cluster` processes on
# loopback, certificates made at run time with openssl.  Nodes 1-3 hold
# certificates of the cluster CA; node 4 one of another CA (its "tls" names
# the cluster's CA file, so only the others' check can refuse it); node 5
# has no "tls" (plain TCP).  Five voters: 1-3 are a majority.  Every Raft
# connection to nodes 1-3 goes through a recording TCP proxy (python3).
#
#  (a) nodes 1-3 elect a leader and replicate over TLS (a 1 MB document
#      too, whole);
#  (b) the bytes on the wire are TLS: the first byte of each direction of
#      every recorded connection is a handshake record (0x16), and a
#      distinctive document body written through the cluster never appears
#      in them, while it does reach the followers (and is in plain form in
#      the nodes' Raft logs on disk: the entries do carry it);
#  (c) node 4 (another CA) never receives an entry, and the logs say why
#      (its certificate does not verify; it was refused);
#  (d) node 5 (plain TCP) never receives an entry; the TLS nodes' logs say
#      it does not speak TLS, and node 5 warns that its traffic is
#      unencrypted;
#  (e) every node stops cleanly on SIGTERM (exit status 0) with its TLS
#      connections open;
#  (f) nodes 1-3 start again and go on over TLS (a new write reaches all
#      three; the wire check of (b) covers their new connections too).
#
# usage: sh cluster_tls_test.sh PATH/TO/sprig SCRATCH_DIR
BIN=$1
T=$2
. "$(dirname "$0")/cluster_lib.sh"
# ports: Raft and clients of nodes 1-5, proxies in front of nodes 1-3
# (X1-X3)
cl_init 5 3
mkdir -p "$T/wire" || exit 1

# ---- certificates: the cluster CA and nodes 1-4 (node 4: another CA)
ossl() { openssl "$@" >/dev/null 2>&1 || { echo "openssl $1 failed"; exit 1; }; }
mkca() { # mkca NAME
    ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/$1.key" -out "$T/$1.pem" -days 30 -subj "/CN=$1"
}
mknode() { # mknode N CA
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/n$1.key" -out "$T/n$1.csr" -subj "/CN=sprig node $1"
    ossl x509 -req -in "$T/n$1.csr" -CA "$T/$2.pem" -CAkey "$T/$2.key" \
        -CAcreateserial -out "$T/n$1.pem" -days 30
}
mkca ca
mkca otherca
for i in 1 2 3; do mknode "$i" ca; done
mknode 4 otherca

v() { eval echo "\$$1$2"; }
# where node FROM reaches node N: through the proxy for 1-3, except from
# node 5 (whose plain TCP would be recorded, and is refused directly just
# the same)
cl_peer_raft() {
    if [ "$2" -le 3 ] && [ "$1" != 5 ]; then
        echo "127.0.0.1:$(v X "$2")"
    else
        raft_addr "$2"
    fi
}
P1=$X1 P2=$X2 P3=$X3

# ---- the recording proxy: LISTEN:TARGET pairs; each connection's bytes
# go to wire/<listen port>.<n>.up (towards the target) and .down
cat >"$T/proxy.py" <<'EOF'
import socket, sys, threading
out = sys.argv[1]
count = [0]
lock = threading.Lock()
def pump(a, b, path):
    with open(path, "wb") as f:
        while True:
            try:
                d = a.recv(65536)
            except OSError:
                d = b""
            if not d:
                break
            f.write(d)
            f.flush()
            try:
                b.sendall(d)
            except OSError:
                break
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(lport, tport):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", lport))
    l.listen(64)
    while True:
        c, _ = l.accept()
        try:
            t = socket.create_connection(("127.0.0.1", tport))
        except OSError:
            c.close()
            continue
        with lock:
            count[0] += 1
            n = count[0]
        base = "%s/%d.%d" % (out, lport, n)
        threading.Thread(target=pump, args=(c, t, base + ".up"), daemon=True).start()
        threading.Thread(target=pump, args=(t, c, base + ".down"), daemon=True).start()
ts = []
for pair in sys.argv[2:]:
    lp, tp = pair.split(":")
    th = threading.Thread(target=serve, args=(int(lp), int(tp)), daemon=True)
    th.start()
    ts.append(th)
for th in ts:
    th.join()
EOF
python3 "$T/proxy.py" "$T/wire" "$P1:$R1" "$P2:$R2" "$P3:$R3" &
pids="$pids $!"

# ---- cluster files
for i in 1 2 3 4 5; do
    tls="\"tls\":{\"ca\":\"ca.pem\",\"cert\":\"n$i.pem\",\"key\":\"n$i.key\"}"
    [ "$i" = 5 ] && tls=""
    cl_config "$i" "1 2 3 4 5" true "$tls"
done

for i in 1 2 3 4 5; do cl_start "$i"; done

# ---- (a) a leader among 1-3, replication over TLS
leader=$(cl_first_leader "1 2 3")
[ -n "$leader" ] || { bad "no leader elected"; tail -5 "$T"/n*.log; exit 1; }
echo "leader: node $leader"
sp "$leader" db create app --schema app >/dev/null || bad "db create on the leader"
marker="tls-canary-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
echo "marker: $marker"
sp "$leader" doc put items --id canary "{\"secret\":\"$marker\"}" >/dev/null \
    2>"$T/err" || bad "write through the leader: $(cat "$T/err")"
for i in 1 2 3; do
    got=""
    for t in $(seq 1 50); do
        got=$(sp "$i" doc get items canary 2>/dev/null) && break
        sleep 0.2
    done
    case "$got" in
    *"$marker"*) echo "node $i holds the document" ;;
    *) bad "node $i lacks the document written through the leader" ;;
    esac
done
# a large entry (1 MB of random text: many TLS records, the pumps'
# back-pressure) arrives whole on both followers
python3 -c '
import base64, os, json, sys
body = base64.b64encode(os.urandom(768 * 1024)).decode()
json.dump({"big": body}, open(sys.argv[1], "w"))' "$T/big.json"
# (on a loaded machine the leader may step down while the entry crosses
# the Python proxy: the write's outcome is then unknown, so it is retried,
# through the client following the new leader)
ok=""
for try in 1 2 3; do
    if sp "$leader" doc put items --id big --overwrite "@$T/big.json" \
        >/dev/null 2>"$T/err"; then
        ok=1
        break
    fi
    echo "large write, try $try: $(cat "$T/err")"
    sleep 1
done
[ -n "$ok" ] || bad "the large write: $(cat "$T/err")"
want=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["big"]))' "$T/big.json")
for i in 1 2 3; do
    n=""
    for t in $(seq 1 50); do
        sp "$i" doc get items big >"$T/big$i.out" 2>/dev/null &&
            n=$(python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["big"]
s = open(sys.argv[2]).read()
print(len(a) if a in s else -1)' "$T/big.json" "$T/big$i.out" 2>/dev/null) &&
            [ "$n" = "$want" ] && break
        sleep 0.2
    done
    [ "$n" = "$want" ] || bad "node $i lacks the large document whole ($n)"
done
# a few more writes, so heartbeats and appends both cross the proxies
for k in 1 2 3 4 5; do
    sp "$leader" doc put items --id "d$k" "{\"k\":$k}" >/dev/null 2>&1 ||
        bad "write d$k"
done

# ---- (c), (d): nodes 4 and 5 never received an entry (they had ~10 s)
sleep 2
for i in 4 5; do
    dbs=$(sp "$i" db list 2>&1)
    case "$dbs" in
    *'"app"'*) bad "node $i received the cluster's entries: $dbs" ;;
    esac
done
grep -q 'does not verify against the cluster CA' "$T/n1.log" "$T/n2.log" \
    "$T/n3.log" || bad "no TLS node logged node 4's certificate refused"
grep -q 'refused the \(TLS handshake\|session\)' "$T/n4.log" ||
    bad "node 4 did not log that it was refused"
grep -q 'does not speak TLS' "$T/n1.log" "$T/n2.log" "$T/n3.log" ||
    bad "no TLS node logged that node 5 does not speak TLS"
grep -q 'unencrypted' "$T/n5.log" || bad "node 5 did not warn"
grep -q 'unencrypted' "$T/n1.log" && bad "node 1 warned though it has TLS"

# ---- (e) every node stops cleanly (SIGTERM) with its TLS connections
# open: exit status 0 within 30 s (under ASan: no leak, no error)
for i in 1 2 3 4 5; do kill -TERM "$(v PID "$i")"; done
(sleep 30; for i in 1 2 3 4 5; do kill -9 "$(v PID "$i")" 2>/dev/null; done) &
watchdog=$!
for i in 1 2 3 4 5; do
    wait "$(v PID "$i")"
    st=$?
    [ $st = 0 ] || bad "node $i stopped with status $st (SIGTERM; 137: hung)"
done
kill "$watchdog" 2>/dev/null

# ---- (f) nodes 1-3 start again (their Raft logs hold the cluster) and
# go on over TLS: a new leader, a write reaching all three, the old one kept
for i in 1 2 3; do cl_start "$i"; done
leader=$(cl_leader_by "1 2 3" doc put items --id again '{"again":1}')
[ -n "$leader" ] || bad "no leader after the restart"
echo "leader after the restart: node $leader"
for i in 1 2 3; do
    got=""
    for t in $(seq 1 50); do
        got=$(sp "$i" doc get items again 2>/dev/null) && break
        sleep 0.2
    done
    [ -n "$got" ] || bad "node $i lacks the write made after the restart"
    sp "$i" doc get items canary 2>/dev/null | grep -q "$marker" ||
        bad "node $i lost the document written before the restart"
done
for i in 1 2 3; do kill -TERM "$(v PID "$i")"; done
for i in 1 2 3; do wait "$(v PID "$i")"; done

# ---- (b) the wire
cl_cleanup # the proxy too, so the recordings are complete
wait 2>/dev/null
trap - EXIT
python3 - "$T/wire" "$marker" "$P1" "$P2" "$P3" >"$T/wire.out" 2>&1 <<'EOF'
import os, sys
d, marker = sys.argv[1], sys.argv[2].encode()
ports = set(sys.argv[3:])
bad, total, seen = 0, 0, {}
for name in sorted(os.listdir(d)):
    data = open(os.path.join(d, name), "rb").read()
    port, n, way = name.split(".")
    total += len(data)
    if data:
        seen.setdefault(port, set()).add(way)
    if data and data[0] != 0x16:
        print("FAIL: %s starts with 0x%02x, not a TLS handshake record" % (name, data[0]))
        bad += 1
    if marker in data:
        print("FAIL: the marker is in the clear in %s" % name)
        bad += 1
for p in ports:
    if seen.get(p) != {"up", "down"}:
        print("FAIL: no recorded traffic both ways through proxy port %s" % p)
        bad += 1
print("wire: %d files, %d bytes recorded" % (len(os.listdir(d)), total))
if total < 4096:
    print("FAIL: only %d bytes recorded" % total)
    bad += 1
sys.exit(1 if bad else 0)
EOF
st=$?
cat "$T/wire.out"
[ $st = 0 ] || bad "the recorded Raft traffic is not (only) TLS"
# the control: the entries carry the body in plain form (it is in the Raft
# log on disk), so its absence on the wire is the encryption's doing
grep -rqa "$marker" "$T/n$leader/raft" ||
    bad "the marker is not in the leader's Raft log: the wire check proves nothing"

cl_finish cluster_tls
