#!/bin/sh
# cli_url_test.sh -- the `sprig` tool's global options after the command,
# and --url for every placement sprig_open() takes: file:DIR, mem:, unknown
# schemes refused by name, and a `sprig serve` (started with --path after
# the command) reached over ws://, over wss:// (its self-signed
# certificate trusted with --ca), and over quic:// (the certificate serve
# made, trusted by its fingerprint), and `sprig certificate`.  Registered with ctest as `cli_url` by
# tools/CMakeLists.txt:
#     sh tests/cli_url_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-url-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

run sp schema define app notes:natural events
run sp db create default --schema app
run_in /dev/null sp doc put notes --id held '{"held":true}'
run sp doc get notes held
expect "setup" 0 '{"id":"held","revision":1,"contents":{"held":true}}'

# ---- global options after the command; --url opens any placement ---------

DBS='[{"name":"default","schema":"app"}]'
run "$BIN" db list --path "$DATA"
expect "--path after the command" 0 "$DBS"
run "$BIN" doc get notes held --db=default --path "$DATA"
expect "--db and --path after a doc command" 0 '{"id":"held","revision":1,"contents":{"held":true}}'
run "$BIN" db list --url "file:$DATA"
expect "--url file:DIR" 0 "$DBS"
run "$BIN" db list --url mem:
expect "--url mem: (a new, empty storage)" 0 "[]"
run "$BIN" db list --url foo:bar
expect_err "--url with an unknown scheme" 2 "URL scheme 'foo'"
run "$BIN" db list --url gopher://127.0.0.1:1
expect_err "--url with a transport not built" 2 "'gopher'"
run "$BIN" serve --url mem:
expect_err "serve wants --path" 2 "not --url"

# serve_up LOG ARGS...: start `sprig ARGS...` (a serve) in the background;
# sets srv (its pid) and url (where it listens) once it says so.
serve_up() {
    log=$1
    shift
    "$BIN" "$@" >"$log" 2>&1 &
    srv=$!
    url=""
    i=0
    while [ $i -lt 200 ] && [ -z "$url" ] && kill -0 $srv 2>/dev/null; do
        sleep 0.1
        url=$(sed -n 's/.*listening on \(wss*:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$log" 2>/dev/null || true)
        i=$((i + 1))
    done
}

# serve_down NAME: SIGTERM, and it must exit 0.
serve_down() {
    kill -TERM $srv
    wait $srv
    rc=$? out='' err=''
    expect "$1" 0 ""
}

# The server lets in only whom the admin records allow (issue 10): the
# first administrator, made with `sprig admin` on the stopped storage, and
# a token for a reader.
serve_up "$T/serve0.log" serve --path "$DATA" --ws 127.0.0.1:0
run grep -c "admin user create admin --password" "$T/serve0.log"
expect "a fresh serve says how to create the first administrator" 0 1
run "$BIN" db list --url "$url"
expect_err "no login: refused" 6 "not allowed: action 'database.list'"
serve_down "serve stops on SIGTERM"
export SPRIG_TEST_PW='pw-of-the-admin 1'
run "$BIN" --path "$DATA" admin user create admin --password-env SPRIG_TEST_PW --hash-cost min
expect "admin user create" 0 '{"user":"admin","ok":true}'
run "$BIN" --path "$DATA" admin user create admin --password-env SPRIG_TEST_PW --hash-cost min
expect_err "admin user create: the name is taken" 4 "exists"
run "$BIN" --path "$DATA" admin group create admins
expect "admin group create" 0 '{"group":"admins","ok":true}'
run "$BIN" --path "$DATA" admin group grant admins '*' sprig
expect "admin group grant" 0 '{"group":"admins","ok":true}'
run "$BIN" --path "$DATA" admin user add-group admin admins
expect "admin user add-group" 0 '{"user":"admin","ok":true}'
run "$BIN" --path "$DATA" admin user create reader
expect "admin user create (token-only)" 0 '{"user":"reader","ok":true}'
run "$BIN" --path "$DATA" admin group create readers
run "$BIN" --path "$DATA" admin group grant readers 'database.open,document.get' sprig.db.default
expect "admin group grant a database" 0 '{"group":"readers","ok":true}'
run "$BIN" --path "$DATA" admin group grant readers 'database.list,schema.list' sprig
run "$BIN" --path "$DATA" admin user add-group reader readers
run "$BIN" --path "$DATA" admin token create reader --out "$T/reader.token"
case $out in '{"token":"'*'","user":"reader","file":"'*) good ;; *) bad "admin token create" ;; esac
run stat -c %a "$T/reader.token"
expect "the token file is private" 0 600
DBS='[{"name":"_admin","schema":"_admin"},{"name":"default","schema":"app"}]'

serve_up "$T/serve.log" serve --path "$DATA" --ws 127.0.0.1:0
case $url in ws://*) good ;; *) rc=- out=$(cat "$T/serve.log") err='' && bad "serve --path DIR (after the command) starts" ;; esac
run "$BIN" db list --url "$url" --user admin --password-env SPRIG_TEST_PW
expect "db list --url ws:// --user (after the command)" 0 "$DBS"
run "$BIN" --user admin --password-env SPRIG_TEST_PW doc get notes held --url "$url"
expect "doc get over ws://" 0 '{"id":"held","revision":1,"contents":{"held":true}}'
run "$BIN" --url "$url" --user admin --password-env SPRIG_TEST_PW doc get notes nope
expect_err "not found over ws://" 3 "not found"
export SPRIG_BAD_PW=wrong
run "$BIN" --url "$url" --user admin --password-env SPRIG_BAD_PW db list
expect_err "a wrong password" 6 "authentication failed"
run "$BIN" --url "$url" --token-file "$T/reader.token" doc get notes held
expect "doc get with --token-file" 0 '{"id":"held","revision":1,"contents":{"held":true}}'
run "$BIN" --url "$url" --token-file "$T/reader.token" db delete default
expect_err "the reader may not delete the database" 6 "not allowed: action 'database.delete' on resource 'sprig.db.default' for 'reader'"
run "$BIN" --url "$url" --token-file "$T/reader.token" doc put notes --id x '{}'
expect_err "nor write to it" 6 "not allowed: action 'document.insert' on resource 'sprig.db.default.collection.notes.document.x' for 'reader'"
# administration over the network: the admin, logged in, changes the
# records of the running server; the change holds on the next request
export SPRIG_DAVE_PW='pw-of-dave 2'
run "$BIN" --url "$url" --user admin --password-env SPRIG_TEST_PW admin user create dave --password-env SPRIG_DAVE_PW
expect "admin user create over ws://" 0 '{"user":"dave","ok":true}'
run "$BIN" --url "$url" --user dave --password-env SPRIG_DAVE_PW doc get notes held
expect_err "dave may not read yet" 6 "not allowed: action 'database.list' on resource 'sprig' for 'dave'"
run "$BIN" --url "$url" --user admin --password-env SPRIG_TEST_PW admin user add-group dave readers
expect "admin user add-group over ws://" 0 '{"user":"dave","ok":true}'
run "$BIN" --url "$url" --user dave --password-env SPRIG_DAVE_PW doc get notes held
expect "dave reads once in readers" 0 '{"id":"held","revision":1,"contents":{"held":true}}'
run "$BIN" --url "$url" --token-file "$T/reader.token" admin user add-group reader admins
expect_err "the reader may not make itself an administrator" 6 "not allowed: action 'user.change_groups' on resource 'sprig.user.reader' for 'reader'"
run "$BIN" --url "$url" --user admin --password-env SPRIG_TEST_PW admin token create dave --out "$T/dave.token"
case $out in '{"token":"'*'","user":"dave","file":"'*) good ;; *) bad "admin token create over ws://" ;; esac
run "$BIN" --url "$url" --token-file "$T/dave.token" doc get notes held
expect "dave's token, made over ws://, logs in" 0 '{"id":"held","revision":1,"contents":{"held":true}}'
run "$BIN" --url "$url" --user admin --password-env SPRIG_TEST_PW admin user remove-group dave readers
expect "admin user remove-group over ws://" 0 '{"user":"dave","ok":true}'
run "$BIN" --url "$url" --token-file "$T/dave.token" doc get notes held
expect_err "dave out of readers: refused" 6 "not allowed: action 'database.list' on resource 'sprig' for 'dave'"
run "$BIN" --url "$url" --user admin --password-env SPRIG_TEST_PW admin user create eve --hash-cost min
expect_err "--hash-cost goes with --path" 2 "--hash-cost goes with --path"
serve_down "serve stops on SIGTERM"
run grep -r -a -l -F -e "$SPRIG_TEST_PW" -e "$SPRIG_DAVE_PW" -e "$(cut -d: -f2 "$T/reader.token")" -e "$(cut -d: -f2 "$T/dave.token")" "$DATA" "$T/serve.log" "$T/serve0.log"
expect "no password or token secret in the storage's files or the log" 1 ""

# wss://: the server's self-signed certificate, trusted with --ca
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1; then
    serve_up "$T/serve-tls.log" serve --path "$DATA" --ws 127.0.0.1:0 \
        --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
    case $url in wss://*) good ;; *) rc=- out=$(cat "$T/serve-tls.log") err='' && bad "serve over TLS starts" ;; esac
    run "$BIN" db list --url "$url" --ca "$T/cert.pem" --user admin --password-env SPRIG_TEST_PW
    expect "db list --url wss:// --ca CERT" 0 "$DBS"
    run "$BIN" db list --url "$url" --user admin --password-env SPRIG_TEST_PW
    expect_err "wss:// without trusting the certificate" 1 "certificate"
    serve_down "TLS serve stops on SIGTERM"
else
    echo "note: no openssl, wss:// part skipped"
fi

# quic://: serve makes the storage's certificate on its first start (QUIC
# is on by default: --ws HOST:0 puts it on a free port too) and prints its
# SHA-256, which --ca takes; `certificate show` prints the same
serve_up "$T/serve-quic.log" serve --path "$DATA" --ws 127.0.0.1:0
q=$(sed -n 's/.*listening on \(quic:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$T/serve-quic.log")
fp=$(sed -n 's/.*SHA-256 \([0-9a-f]*\).*/\1/p' "$T/serve-quic.log")
case $q in quic://*) good ;; *) rc=- out=$(cat "$T/serve-quic.log") err='' && bad "serve listens on QUIC too" ;; esac
run "$BIN" db list --url "$q" --ca "$fp" --user admin --password-env SPRIG_TEST_PW
expect "db list --url quic:// --ca SHA256" 0 "$DBS"
run "$BIN" doc get notes held --url "sprig://${q#quic://}" --ca "$fp" \
    --user admin --password-env SPRIG_TEST_PW
expect "doc get over sprig:// (the alias)" 0 '{"id":"held","revision":1,"contents":{"held":true}}'
run "$BIN" db list --url "$q"
expect_err "quic:// without trusting the certificate" 1 "certificate"
run "$BIN" db list --url "$q" --ca 0000000000000000000000000000000000000000000000000000000000000000
expect_err "quic:// with a wrong fingerprint" 1 "is not the pinned"
serve_down "QUIC serve stops on SIGTERM"
run "$BIN" certificate show --path "$DATA"
case $out in *"\"sha256\":\"$fp\""*) good ;; *) bad "certificate show prints the served fingerprint" ;; esac
run "$BIN" certificate install-self-signed --path "$DATA"
expect_err "install-self-signed keeps an installed certificate" 4 "--overwrite"
run "$BIN" certificate install-self-signed --overwrite --path "$DATA"
case $out in *'"created":true'*) good ;; *) bad "install-self-signed --overwrite makes a new one" ;; esac

echo "$pass passed, $fail failed"
[ $fail = 0 ]
