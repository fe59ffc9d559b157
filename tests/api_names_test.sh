#!/bin/sh
# api_names_test.sh -- the naming rule of docs/api.md ("Names") holds in the
# public headers, and no file of the tree uses a name scripts/rename-api.sh
# renames (after merging a branch written against the old names, run that
# script).  Checks, each failing with the offending names:
#   1. no C name in include/sprig/*.h says "transaction" (the rule: txn);
#   2. every function whose name starts with a list type's name
#      (sprig_<item>_list_...) is an accessor of that type: its first
#      parameter is a sprig_<item>_list pointer;
#   3. no tracked file but the script names an old symbol of its table;
#   4. the script is idempotent: run on a copy of the tree, it changes
#      nothing.
# Usage: api_names_test.sh SOURCE_DIR SCRATCH_DIR
set -eu
src=$1
tmp=$2
fail=0
if ! git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    echo "api names: skipped ($src is not a git work tree)"
    exit 77
fi
rm -rf "$tmp"
mkdir -p "$tmp"

bad=$(grep -ohE '\bsprig_[a-z0-9_]*transaction[a-z0-9_]*\b' \
    "$src"/include/sprig/*.h | sort -u)
if [ -n "$bad" ]; then
    echo "FAIL: C names that say 'transaction' (the rule is txn): $bad"
    fail=1
fi

# One declaration a line: from SPRIG_API to the closing ';'.
awk '/SPRIG_API/ { d = "" } /SPRIG_API/, /;/ { d = d " " $0 }
     /;/ && d != "" { print d; d = "" }' "$src"/include/sprig/*.h \
    >"$tmp/decls"
for t in $(grep -ohE 'typedef struct (sprig_[a-z0-9_]+_list) ' \
    "$src"/include/sprig/*.h | awk '{ print $3 }' | sort -u); do
    grep -oE "\b${t}_[a-z0-9_]+\([^)]*" "$tmp/decls" |
        while IFS= read -r d; do
            case "${d#*\(}" in
            "const $t *"* | "$t *"*) ;;
            *) echo "FAIL: ${d%%\(*} starts with list type $t but is not" \
                "its accessor" ;;
            esac
        done
done >"$tmp/accessors"
if [ -s "$tmp/accessors" ]; then
    cat "$tmp/accessors"
    fail=1
fi

old=$(sed -n "/^renames='/,/^'/p" "$src/scripts/rename-api.sh" |
    awk 'NF == 2 { printf "%s%s", sep, $1; sep = "|" }')
if [ -z "$old" ]; then
    echo "FAIL: no rename table in scripts/rename-api.sh"
    fail=1
fi
left=$(cd "$src" && git ls-files -z | xargs -0 grep -IlE "\\<($old)\\>" -- \
    2>/dev/null | grep -vxF scripts/rename-api.sh || true)
if [ -n "$left" ]; then
    echo "FAIL: old names still used (run sh scripts/rename-api.sh) in:"
    echo "$left"
    fail=1
fi

# Idempotence on a copy of the tracked files, committed in a scratch git.
copy=$tmp/tree
mkdir -p "$copy"
git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$copy/")
git -C "$copy" init -q
git -C "$copy" add -A
git -C "$copy" -c user.name=t -c user.email=t@t commit -qm copy
(cd "$copy" && sh scripts/rename-api.sh >/dev/null)
changed=$(git -C "$copy" status --porcelain)
if [ -n "$changed" ]; then
    echo "FAIL: rename-api.sh is not idempotent; it changed: $changed"
    fail=1
fi
[ "$fail" = 0 ] && rm -rf "$tmp" && echo "api names: ok"
exit "$fail"
