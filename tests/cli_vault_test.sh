#!/bin/sh
# cli_vault_test.sh -- end-to-end test of the vault from the command line
# (issue 13): `sprig --encrypt --vault-key FILE` makes an encrypted storage
# whose raw files hold none of the documents' text; opening it without the
# key, with another key or with a key file others may read fails with exit
# status 6 and says why; `vault rotate` re-encrypts (the data reads after);
# a passphrase storage opens with SPRIG_PASSPHRASE only.  Registered with
# ctest as `cli_vault` by tools/CMakeLists.txt:
#     sh tests/cli_vault_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-vault-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

KEY=$T/vault.key

run sp vault --help
expect_has "vault --help" 0 "vault rotate"
run sp vault rotate --help
expect_has "vault rotate --help" 0 "usage: sprig"
run sp --help
expect_has "--help lists --vault-key" 0 "--vault-key FILE"

# ---- an encrypted storage, its key outside the data directory ---------------

run sp --encrypt --compress --vault-key "$KEY" schema define app notes:natural
expect_has "schema define on a new encrypted storage" 0 '"app"'
run sp --vault-key "$KEY" db create default --schema app
expect "db create" 0 '{"name":"default","schema":"app"}'
run sp --vault-key "$KEY" doc put notes --id n1 '{"text":"CLI-CANARY-91c2"}'
expect "doc put" 0 '{"id":"n1","revision":1}'
run sp --vault-key "$KEY" kv set k CLI-CANARY-91c2
expect "kv set" 0 '{"key":"k","status":"inserted"}'
if grep -r -l "CLI-CANARY-91c2" "$DATA" >/dev/null 2>&1; then
    rc=1 out="" err=""
    bad "the plaintext is in the raw files" "$(grep -r -l CLI-CANARY-91c2 "$DATA")"
else
    good
fi
[ -e "$DATA/vault.key" ] && bad "a key file inside the data directory" || good
mode=$(stat -c %a "$KEY")
[ "$mode" = 600 ] && good || bad "key file mode $mode, not 600"

run sp doc get notes n1
expect_err "no key" 6 "vault key file"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/other.key"
chmod 600 "$T/other.key"
run sp --vault-key "$T/other.key" doc get notes n1
expect_err "another key" 6 "does not open"
chmod 644 "$KEY"
run sp --vault-key "$KEY" doc get notes n1
expect_err "a key others may read" 6 "chmod 600"
chmod 600 "$KEY"
run sp --vault-key "$KEY" doc get notes n1
expect "get with the key" 0 '{"id":"n1","revision":1,"contents":{"text":"CLI-CANARY-91c2"}}'

run sp --vault-key "$KEY" vault rotate
expect_has "vault rotate" 0 '"databases":1,"values":2'
run sp --vault-key "$KEY" doc get notes n1
expect "get after the rotation" 0 '{"id":"n1","revision":1,"contents":{"text":"CLI-CANARY-91c2"}}'
run sp --vault-key "$KEY" kv get k
expect "kv get after the rotation" 0 '{"key":"k","type":"bytes","value":"CLI-CANARY-91c2"}'

# ---- a storage without a vault -------------------------------------------------

run "$BIN" --path "$T/plain" schema define app notes:natural
run "$BIN" --path "$T/plain" vault rotate
expect_err "rotate without a vault" 2 "no vault"

# ---- one encrypted collection, from a schema file ------------------------------

cat >"$T/mixed.json" <<'JSON'
{"name": "mixed",
 "collections": [{"name": "secrets", "id_kind": "natural", "encrypted": true},
                 {"name": "notes", "id_kind": "natural"}]}
JSON
M="$BIN --path $T/mixed --schema $T/mixed.json"
run $M db create default --schema mixed
expect "db create (schema file)" 0 '{"name":"default","schema":"mixed"}'
run $M doc put secrets --id s '{"x":"SECRET-COLL-CANARY"}'
expect "put into the encrypted collection" 0 '{"id":"s","revision":1}'
run $M doc put notes --id n '{"x":"OPEN-COLL-CANARY"}'
run $M doc get secrets s
expect "get from the encrypted collection" 0 '{"id":"s","revision":1,"contents":{"x":"SECRET-COLL-CANARY"}}'
grep -r -q "SECRET-COLL-CANARY" "$T/mixed" && bad "the encrypted collection's text is in the files" || good
grep -r -q "OPEN-COLL-CANARY" "$T/mixed" && good || bad "the plain collection's text is not in the files"
cat >"$T/bad.json" <<'JSON'
{"name": "b", "collections": [{"name": "c", "encrypted": "yes"}]}
JSON
run "$BIN" --path "$T/bad" --schema "$T/bad.json" db create x --schema b
expect_err "a non-boolean encrypted" 2 "encrypted: expected true or false"

# ---- a passphrase ------------------------------------------------------------

P="$BIN --path $T/pass"
run env SPRIG_PASSPHRASE="tr0ub4dor" $P --encrypt schema define app notes:natural
expect_has "schema define with a passphrase" 0 '"app"'
run env SPRIG_PASSPHRASE="tr0ub4dor" $P db create default --schema app
run env SPRIG_PASSPHRASE="tr0ub4dor" $P doc put notes --id a '{"x":1}'
expect "put with a passphrase" 0 '{"id":"a","revision":1}'
run env SPRIG_PASSPHRASE="wrong" $P doc get notes a
expect_err "a wrong passphrase" 6 "does not open"
run env -u SPRIG_PASSPHRASE $P doc get notes a
expect_err "no passphrase" 6 "passphrase"
run env SPRIG_PASSPHRASE="tr0ub4dor" $P doc get notes a
expect "get with the passphrase" 0 '{"id":"a","revision":1,"contents":{"x":1}}'

echo "$pass passed, $fail failed"
[ $fail = 0 ]
