#!/bin/sh
# lin_record_test.sh SPRIG SPRIG_LIN_RECORD TMPDIR -- the history recorder
# (tools/lincheck/lin_record.c) against one real `sprig serve` (ctest
# lin_record; issue 18):
#   - 5 client processes, 150 reads/writes/CAS each on 3 registers, through
#     a URL list whose first node is down (the multi-URL client);
#   - the history holds every invocation completed, and some CAS applied;
#   - tools/lincheck/lincheck.py finds it linearizable (one server is);
#   - the same history with one read's answer changed to a value nobody
#     wrote is found not linearizable (the check can fail).
# SPRIG_SEED replays the recorder's choices.
set -u
SPRIG=${1:?usage: lin_record_test.sh SPRIG SPRIG_LIN_RECORD TMPDIR}
REC=${2:?usage: lin_record_test.sh SPRIG SPRIG_LIN_RECORD TMPDIR}
TMP=${3:?usage: lin_record_test.sh SPRIG SPRIG_LIN_RECORD TMPDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="$HERE/../tools/lincheck/lincheck.py"
NAME=lin_record
# shellcheck source=tests/serve_lib.sh
. "$HERE/serve_lib.sh"

"$SPRIG" --path "$TMP/st" serve --ws 127.0.0.1:0 --quic off \
    --insecure-open >"$TMP/serve.log" 2>&1 &
pid=$!
wait_url

dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
H="$TMP/history.jsonl"
"$REC" --url "ws://127.0.0.1:$dead,$url" --out "$H" --clients 5 \
    --keys 3 --ops 150 || fail "sprig-lin-record failed"

lines=$(wc -l <"$H")
[ "$lines" -eq 1500 ] || fail "the history has $lines events, not 1500"
casok=$(grep -c '"type":"ok","f":"cas"' "$H")
[ "$casok" -gt 0 ] || fail "no CAS applied in the history"
unknown=$(grep -c '"type":"info"' "$H")
[ "$unknown" -eq 0 ] || fail "$unknown outcomes unknown against a healthy server"

out=$(python3 "$CHECK" "$H") || fail "not linearizable: $out"
echo "$NAME: $lines events, $casok CAS applied: $out"

# one read's answer changed to a value nobody wrote
python3 - "$H" "$TMP/bad.jsonl" <<'EOF'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
for e in reversed(evs):
    if e["type"] == "ok" and e["f"] == "read":
        e["value"] = 987654321
        break
with open(sys.argv[2], "w") as f:
    for e in evs:
        f.write(json.dumps(e) + "\n")
EOF
if out=$(python3 "$CHECK" "$TMP/bad.jsonl"); then
    fail "a corrupted history passed: $out"
fi
echo "$NAME: the corrupted copy: $out"
kill "$pid"
wait "$pid" || fail "sprig serve did not stop cleanly"
pid=""
echo "$NAME: ok"
