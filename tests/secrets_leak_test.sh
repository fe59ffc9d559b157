#!/bin/sh
# secrets_leak_test.sh -- passwords and token secrets never leak (issue 10):
# a real `sprig serve` is logged in to with a known password, a wrong
# one, a known token secret and a wrong one, and made to create a user
# with a known password over the network (admin.user_create); then the
# plaintexts are searched for, byte for byte, in
#   - a core image of the running server (gcore, from gdb),
#   - the server's log (stdout and stderr),
#   - every error message and output the clients printed,
#   - every file of the storage directory (LMDB files, the command log).
# Any hit fails the test, naming the secret and where.  The control: the
# same search finds a user name (so the search can hit).  When gcore or
# ptrace is not available the test says so and is skipped (exit 77),
# never passed silently.  Registered with ctest as `secrets_leak` by
# tools/CMakeLists.txt:
#     sh tests/secrets_leak_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=secrets-leak-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

if ! command -v gcore >/dev/null 2>&1; then
    echo "SKIP: gcore (gdb) is not installed: no core image to search"
    exit 77
fi

PW_ADMIN='Sekrit-admin-pw-7Qx'
PW_WRONG='Wrong-guess-pw-9Zr'
PW_NEW='Fresh-user-pw-3Kd'
export PW_ADMIN PW_WRONG PW_NEW

run sp admin user create admin --password-env PW_ADMIN --hash-cost min
run sp admin group create admins
run sp admin group grant admins '*' sprig
run sp admin user add-group admin admins
run sp admin token create admin --out "$T/admin.token"
expect "token made" 0 "$(printf '{"token":"%s","user":"admin","file":"%s"}' \
    "$(cut -d: -f1 "$T/admin.token")" "$T/admin.token")"
SECRET=$(cut -d: -f2 "$T/admin.token")
ID=$(cut -d: -f1 "$T/admin.token")
# a wrong secret: the right one with its first 8 digits changed
WRONG_SECRET="deadbeef$(echo "$SECRET" | cut -c9-)"
printf '%s:%s\n' "$ID" "$WRONG_SECRET" >"$T/wrong.token"

# the server's environment holds no secret (only the clients' do)
env -u PW_ADMIN -u PW_WRONG -u PW_NEW \
    "$BIN" serve --path "$DATA" --ws 127.0.0.1:0 --quic off >"$T/serve.log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null' EXIT
url=""
i=0
while [ $i -lt 200 ] && [ -z "$url" ] && kill -0 $srv 2>/dev/null; do
    sleep 0.1
    url=$(sed -n 's/.*listening on \(ws:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$T/serve.log")
    i=$((i + 1))
done
[ -n "$url" ] || { echo "FAIL: serve did not start"; cat "$T/serve.log"; exit 1; }

: >"$T/clients.txt"
# client RUN-NAME ARGS...: run the tool, keep what it printed
client() {
    run "$@"
    printf '%s\n%s\n' "$out" "$err" >>"$T/clients.txt"
}
client "$BIN" --url "$url" --user admin --password-env PW_ADMIN db list
expect "a right password" 0 '[{"name":"_admin","schema":"_admin"}]'
client "$BIN" --url "$url" --user admin --password-env PW_WRONG db list
expect_err "a wrong password" 6 "authentication failed"
client "$BIN" --url "$url" --token-file "$T/admin.token" db list
expect "a right token" 0 '[{"name":"_admin","schema":"_admin"}]'
client "$BIN" --url "$url" --token-file "$T/wrong.token" db list
expect_err "a wrong token secret" 6 "authentication failed"
client "$BIN" --url "$url" --user admin --password-env PW_ADMIN admin user create newbie --password-env PW_NEW
expect "a user made over the network" 0 '{"user":"newbie","ok":true}'
client "$BIN" --url "$url" --user newbie --password-env PW_NEW db list
expect_err "its password logs in (and it may not list)" 6 "not allowed: action 'database.list'"
client "$BIN" --url "$url" --user newbie --password-env PW_WRONG db list
expect_err "a wrong password for it" 6 "authentication failed"

# the core image of the running server
if ! gcore -o "$T/core" $srv >"$T/gcore.log" 2>&1 || ! ls "$T"/core.* >/dev/null 2>&1; then
    echo "SKIP: gcore could not dump the server (ptrace not permitted?):"
    sed 's/^/  /' "$T/gcore.log"
    exit 77
fi
kill -TERM $srv
wait $srv
trap - EXIT

# search WHERE FILES...: no secret in them
search() {
    where=$1
    shift
    for s in "$PW_ADMIN" "$PW_WRONG" "$PW_NEW" "$SECRET" "$WRONG_SECRET"; do
        hits=$(grep -r -a -l -F -e "$s" "$@" 2>/dev/null)
        if [ -n "$hits" ]; then
            rc=- out=$hits err=''
            bad "secret '$s' found in $where"
        else
            good
        fi
    done
}
search "the server's core image" "$T"/core.*
search "the server's log" "$T/serve.log"
search "the clients' output" "$T/clients.txt"
search "the storage's files" "$DATA"
# the control: the search does find what is there
if grep -a -q -F -e newbie "$T"/core.* && grep -r -a -q -F -e newbie "$DATA"; then
    good
else
    rc=- out='' err=''
    bad "the control: a user name is found in the core image and the files"
fi
rm -f "$T"/core.*

echo "$pass passed, $fail failed"
[ $fail = 0 ]
