#!/bin/sh
# secrets_leak_test.sh -- passwords and token secrets never leak (issue 10):
# a real `sprig serve` is logged in to, over each transport -- ws://,
# wss:// (TLS through GnuTLS) and quic:// (ngtcp2) -- with a known
# password, a wrong one, a known token secret and a wrong one, and made to
# create a user with a known password over the network (admin.user_create,
# which then logs in, rightly and wrongly); each client closes its
# connection at once (the wrong password's frame is the last thing the
# server read).  Then the plaintexts are searched for, byte for byte, in
#   - a core image of each running server (gcore, from gdb),
#   - the servers' logs (stdout and stderr),
#   - every error message and output the clients printed,
#   - every file of the storage directory (LMDB files, the command log).
# Any hit fails the test, naming the secret and where.  The control: the
# same search finds the created user's name (so the search can hit).
# The copies this catches (and the wipes that remove them): wslay's
# unmasked message and its read buffer (ws_conn.c assembles messages
# itself), the socket read buffer, GnuTLS's decrypted record (tls.c),
# ngtcp2's decrypted packet (quic_ng.c) and the QUIC stream reassembly
# buffer (quic_conn.c), the decoded request and its raw frame
# (auth_srv.c).  When gcore or ptrace is not available the test says so
# and is skipped (exit 77), never passed silently.  Registered with ctest
# as `secrets_leak` by tools/CMakeLists.txt (and `make secrets-leak`):
#     sh tests/secrets_leak_test.sh BUILD/tools/sprig [SCRATCH_DIR]
# SECRETS_LEAK_SERVERS="ws tls" (the default) picks the servers: ws://
# alone, and wss:// with quic://.

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

: >"$T/clients.txt"
: >"$T/serve.log"
srv=""
trap '[ -n "$srv" ] && kill $srv 2>/dev/null' EXIT

# serve_up LOG ARGS...: start the server (its environment holds no
# secret: only the clients' do); sets srv and waits until it listens.
serve_up() {
    log=$1
    shift
    env -u PW_ADMIN -u PW_WRONG -u PW_NEW \
        "$BIN" serve --path "$DATA" "$@" >"$log" 2>&1 &
    srv=$!
    i=0
    while [ $i -lt 300 ] && ! grep -q "stop with Ctrl-C" "$log" &&
        kill -0 $srv 2>/dev/null; do # its last line: every listener is up
        sleep 0.1
        i=$((i + 1))
    done
}

# client ARGS...: run the tool, keep what it printed
client() {
    run "$BIN" "$@"
    printf '%s\n%s\n' "$out" "$err" >>"$T/clients.txt"
}

# logins TRANSPORT URL TRUST...: every login, right and wrong, over URL
logins() {
    t=$1 u=$2
    shift 2
    client --url "$u" "$@" --user admin --password-env PW_ADMIN db list
    expect "$t: a right password" 0 '[{"name":"_admin","schema":"_admin"}]'
    client --url "$u" "$@" --token-file "$T/admin.token" db list
    expect "$t: a right token" 0 '[{"name":"_admin","schema":"_admin"}]'
    client --url "$u" "$@" --token-file "$T/wrong.token" db list
    expect_err "$t: a wrong token secret" 6 "authentication failed"
    client --url "$u" "$@" --user admin --password-env PW_ADMIN \
        admin user create "newbie$t" --password-env PW_NEW
    expect "$t: a user made over the network" 0 \
        "{\"user\":\"newbie$t\",\"ok\":true}"
    client --url "$u" "$@" --user "newbie$t" --password-env PW_NEW db list
    expect_err "$t: its password logs in (and it may not list)" 6 \
        "not allowed: action 'database.list'"
    client --url "$u" "$@" --user "newbie$t" --password-env PW_WRONG db list
    expect_err "$t: a wrong password for it" 6 "authentication failed"
    # last: a wrong password whose connection closes at once
    client --url "$u" "$@" --user admin --password-env PW_WRONG db list
    expect_err "$t: a wrong password" 6 "authentication failed"
}

# An AddressSanitizer build's core image would hold its shadow memory
# (terabytes of address space): there the running server's memory is read
# instead, from /proc/PID/mem (tests/memscan.py; freed memory stays in
# ASan's quarantine, so this is the stricter search).
if ldd "$BIN" 2>/dev/null | grep -q asan; then
    image="memory (ASan: /proc/PID/mem)"
else
    image="core image (gcore)"
fi

# patterns: every secret, then the control word $control
patterns() {
    printf '%s\n' "$PW_ADMIN" "$PW_WRONG" "$PW_NEW" "$SECRET" \
        "$WRONG_SECRET" "$control" >"$T/patterns"
}

# dump SERVER: found = what the running server's memory holds (a core
# image searched, or its memory read), then stop it
dump() {
    patterns
    case $image in
    memory*)
        found=$(python3 "$(dirname "$0")/memscan.py" $srv "$T/patterns" \
            2>"$T/gcore.log")
        [ $? = 0 ] || {
            echo "SKIP: the server's memory could not be read:"
            sed 's/^/  /' "$T/gcore.log"
            exit 77
        }
        ;;
    *)
        if ! gcore -o "$T/core-$1" $srv >"$T/gcore.log" 2>&1 ||
            ! ls "$T/core-$1".* >/dev/null 2>&1; then
            echo "SKIP: gcore could not dump the server (ptrace?):"
            sed 's/^/  /' "$T/gcore.log"
            exit 77
        fi
        found=$(LC_ALL=C grep -a -o -h -F -f "$T/patterns" "$T/core-$1".* |
            sort -u)
        rm -f "$T/core-$1".*
        ;;
    esac
    kill -TERM $srv
    wait $srv
    srv=""
}

# search WHERE FILES...: found = what FILES hold (one pass for every
# secret and the control), then verdict WHERE
search() {
    where=$1
    shift
    patterns
    found=$(LC_ALL=C grep -r -a -o -h -F -f "$T/patterns" "$@" 2>/dev/null |
        sort -u)
    verdict "$where"
}

# verdict WHERE: no secret in $found
verdict() {
    for s in "$PW_ADMIN" "$PW_WRONG" "$PW_NEW" "$SECRET" "$WRONG_SECRET"; do
        if printf '%s\n' "$found" | grep -q -x -F -e "$s"; then
            rc=- out='' err=''
            bad "secret '$s' found in $1"
        else
            good
        fi
    done
}

# control WHERE: $found holds the control word (so the search can hit)
control() {
    if printf '%s\n' "$found" | grep -q -x -F -e "$control"; then
        good
    else
        rc=- out='' err=''
        bad "the control: '$control' is found in $1"
    fi
}

# ws://: one server; wss:// and quic://: another (the storage's
# certificate, made self-signed on its first start, pinned by SHA-256)
for server in ${SECRETS_LEAK_SERVERS:-ws tls}; do
    log=$T/serve-$server.log
    if [ $server = ws ]; then
        serve_up "$log" --ws 127.0.0.1:0 --quic off
    else
        serve_up "$log" --ws 127.0.0.1:0 --wss
    fi
    cat "$log" >>"$T/serve.log"
    fp=$(sed -n 's/.*SHA-256 \([0-9a-f]*\).*/\1/p' "$log")
    ws=$(sed -n 's/.*listening on \(wss*:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$log")
    quic=$(sed -n 's/.*listening on \(quic:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$log")
    if [ $server = ws ] && [ -n "$ws" ]; then
        logins ws "$ws"
        control=newbiews
    elif [ -n "$ws" ] && [ -n "$quic" ] && [ -n "$fp" ]; then
        logins wss "$ws" --ca "$fp"
        logins quic "$quic" --ca "$fp"
        control=newbiequic
    else
        echo "FAIL: serve ($server) did not start"
        cat "$log"
        exit 1
    fi
    dump $server
    cat "$log" >>"$T/serve.log" # what it printed since
    verdict "the server's $image ($server)"
    control "the server's $image ($server)"
done

control=newbie
search "the servers' logs" "$T/serve.log"
search "the clients' output" "$T/clients.txt"
search "the storage's files" "$DATA"
control "the storage's files"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
