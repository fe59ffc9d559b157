# counter_server.sh -- sourced by the tests of examples/custom-api.c
# (custom_api_example_test.sh, cli_api_test.sh): start the counter server
# on a fresh storage under $tmp and wait for the URL it prints.
# Needs: $server (its program), $tmp (a scratch directory, recreated).
# Sets: $pid (killed on exit), $url (ws://...).
rm -rf "$tmp" && mkdir -p "$tmp"
"$server" "$tmp/store" >"$tmp/server.out" 2>"$tmp/server.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
url=
for _ in $(seq 1 200); do
    url=$(sed -n 's/^Counter server on \(ws:[^ ]*\)$/\1/p' "$tmp/server.out" 2>/dev/null || true)
    [ -n "$url" ] && break
    sleep 0.05
done
[ -n "$url" ] || { echo "the server printed no URL"; cat "$tmp/server.err"; exit 1; }
