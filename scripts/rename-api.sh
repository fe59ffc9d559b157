#!/bin/sh
# rename-api.sh -- apply the naming rule of docs/api.md ("Names") to the
# public API: rename every symbol below, as a whole word, in every file git
# tracks (sources, headers, tests, benchmarks, examples, docs, scripts),
# then clang-format the C files it changed.  No aliases are kept: nothing
# outside the tree uses the old names.
#
# Idempotent: no new name is also an old one, so a second run (say, after
# merging branches written against the old names) renames only what they
# brought and otherwise changes nothing.  Run it from anywhere inside the
# work tree:  sh scripts/rename-api.sh
set -eu

cd "$(git rev-parse --show-toplevel)"
self=scripts/rename-api.sh

# old new -- one rename a line; the rule each follows is in docs/api.md.
renames='
sprig_list_executed_transactions sprig_list_executed_txns
sprig_last_transaction_id sprig_last_txn_id
sprig_txn_log_changes sprig_txn_log_change_count
sprig_kv_list_count sprig_kv_key_list_count
sprig_kv_list_key sprig_kv_key_list_key
sprig_kv_list_value sprig_kv_key_list_value
sprig_kv_list_expire_at sprig_kv_key_list_expire_at
sprig_kv_list_free sprig_kv_key_list_free
sprig_kv_list sprig_kv_key_list
sprig_buf_free sprig_buf_clear
sprig_key_builder_free sprig_key_builder_clear
sprig_key_reader_free sprig_key_reader_clear
sprig_storage_database sprig_storage_open_database
'

# One sed program (word boundaries: sprig_kv_list never touches
# sprig_kv_list_keys or sprig__kv_list_push) and one grep pattern.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$renames" | awk 'NF == 2 { printf "s/\\<%s\\>/%s/g\n", $1, $2 }' \
    >"$tmp/prog.sed"
pattern=$(echo "$renames" | awk 'NF == 2 { printf "%s%s", sep, $1; sep = "|" }')

# The tracked text files naming an old symbol (not this script: its table
# must keep the old names).
git ls-files -z | xargs -0 grep -IlE "\<($pattern)\>" -- 2>/dev/null |
    grep -vxF "$self" >"$tmp/files" || true

while IFS= read -r f; do
    sed -i -f "$tmp/prog.sed" "$f"
done <"$tmp/files"

if command -v clang-format >/dev/null 2>&1; then
    grep -E '\.(c|h)$' "$tmp/files" | tr '\n' '\0' | xargs -0 -r clang-format -i
fi
echo "rename-api: $(wc -l <"$tmp/files") file(s) changed"
