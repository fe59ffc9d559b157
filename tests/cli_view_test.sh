#!/bin/sh
# cli_view_test.sh -- end-to-end test of `sprig --schema FILE` and
# `sprig view query|reduce` (tools/sprig/cmd_view.c): a schema file with
# declarative views registered from the command line, documents put through
# the CLI, every match option, --desc, --limit, --docs, --group, reduces,
# the stored schema reused without --schema, and the errors (bad schema
# files naming the line or field, bad keys, unknown views, views without a
# reduce) with their exit statuses.  Registered with ctest as `cli_view` by
# tools/CMakeLists.txt:
#     sh tests/cli_view_test.sh BUILD/tools/sprig [SCRATCH_DIR]

NAME=cli-view-test
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

cat >"$T/shop.json" <<'EOF'
{
  "name": "shop",
  "collections": [
    {"name": "products", "id_kind": "natural",
     "views": [
       {"name": "by-category", "policy": "eager",
        "json_key": "category", "json_value": "price", "reduce": "sum"},
       {"name": "by-brand-category",
        "json_key": ["brand.name", "category"], "reduce": "count"},
       {"name": "by-sku", "policy": "unique", "json_key": "sku"},
       {"name": "no-reduce", "json_key": "category"}]}]
}
EOF

# ---- help -----------------------------------------------------------------

for cmd in "view" "view query" "view reduce"; do
    # shellcheck disable=SC2086 # $cmd is words on purpose
    run sp $cmd --help
    expect_has "sprig $cmd --help" 0 "usage: sprig"
done
run sp --help
expect_has "sprig --help lists --schema" 0 "--schema FILE"
run sp --help
expect_has "sprig --help lists view" 0 "view query COLLECTION VIEW"

# ---- a schema file, documents --------------------------------------------

S="--schema $T/shop.json"
# shellcheck disable=SC2086 # $S is words on purpose
run sp $S db create shop --schema shop
expect "db create with a schema file" 0 '{"name":"shop","schema":"shop"}'
put() {
    # shellcheck disable=SC2086
    run sp --db shop doc put products --id "$1" "$2"
    expect "put $1" 0 "{\"id\":\"$1\",\"revision\":1}"
}
put a '{"sku":1,"category":"books","price":12,"brand":{"name":"acme"}}'
put b '{"sku":2,"category":"books","price":7.5,"brand":{"name":"zeta"}}'
put c '{"sku":3,"category":"games","price":30,"brand":{"name":"acme"}}'
put d '{"sku":4,"category":"toys","price":5}'
run sp --db shop doc put products --id f '{"sku":1,"category":"x"}'
expect_err "a duplicate unique key" 1 "unique"

# ---- queries ----------------------------------------------------------------

q() {
    run sp --db shop view query products "$@"
}
q by-category
expect "all mappings" 0 '[{"key":"books","value":12,"id":"a","revision":1},{"key":"books","value":7.5,"id":"b","revision":1},{"key":"games","value":30,"id":"c","revision":1},{"key":"toys","value":5,"id":"d","revision":1}]'
q by-category --key '"books"'
expect "--key" 0 '[{"key":"books","value":12,"id":"a","revision":1},{"key":"books","value":7.5,"id":"b","revision":1}]'
q by-category --range '"c"' '"h"'
expect "--range" 0 '[{"key":"games","value":30,"id":"c","revision":1}]'
q by-category --desc --limit 2
expect "--desc --limit" 0 '[{"key":"toys","value":5,"id":"d","revision":1},{"key":"games","value":30,"id":"c","revision":1}]'
q by-brand-category --prefix '["acme"]'
expect "--prefix on a tuple (lazy view)" 0 '[{"key":["acme","books"],"value":null,"id":"a","revision":1},{"key":["acme","games"],"value":null,"id":"c","revision":1}]'
q by-sku --key 3 --docs
expect "--docs" 0 '[{"key":3,"value":null,"id":"c","revision":1,"doc":{"sku":3,"category":"games","price":30,"brand":{"name":"acme"}}}]'
q by-sku --key -1
expect "a negative key" 0 '[]'

# ---- reduces ----------------------------------------------------------------

r() {
    run sp --db shop view reduce products "$@"
}
r by-category
expect "reduce all" 0 '54.5'
r by-category --key '"books"'
expect "reduce --key" 0 '19.5'
r by-category --group
expect "--group" 0 '[{"key":"books","value":19.5},{"key":"games","value":30},{"key":"toys","value":5}]'
r by-category --group --desc --limit 1
expect "--group --desc --limit" 0 '[{"key":"toys","value":5}]'
r by-brand-category --prefix '"acme"'
expect "count over a prefix" 0 '2'
r by-brand-category --range '["acme"]' '["acme","zzz"]' --group
expect "--range --group" 0 '[{"key":["acme","books"],"value":1},{"key":["acme","games"],"value":1}]'

# ---- the stored schema serves later runs without --schema --------------------

run sp --db shop doc put products --id g '{"sku":7,"category":"games","price":1}'
expect "put without --schema" 0 '{"id":"g","revision":1}'
r by-category --key '"games"'
expect "the stored declarative view still works" 0 '31'

# ---- errors ------------------------------------------------------------------

r no-reduce
expect_err "reduce of a view without reduce" 2 "has no reduce"
q nosuch
expect_err "unknown view" 1 "has no view 'nosuch'"
q by-category --key '{"a":1}'
expect_err "a key that is not a scalar or array" 2 "--key '{\"a\":1}'"
q by-category --key 'nope'
expect_err "a key that is not JSON" 2 "not JSON"
q by-category --key '"a"' --prefix '"b"'
expect_err "two match options" 2 "one of --key, --range, --prefix"
q by-category --range '"a"'
expect_err "--range without TO" 2 "--range needs FROM and TO"
q by-category --limit x
expect_err "a bad limit" 2 "--limit 'x' is not a number"
q
expect_err "missing arguments" 2 "missing argument"
run sp --db shop view frob
expect_err "unknown view command" 2 "unknown command 'frob'"

printf '{\n  "name": "x",\n  "collections": [\n    {"name": "c",, }\n  ]\n}\n' >"$T/syntax.json"
run sp --schema "$T/syntax.json" db list
expect_err "a schema file with a syntax error names its line" 2 "syntax.json:4:"
printf '{"name":"x","collections":[{"name":"c","views":[{"name":"v","json_key":5}]}]}' >"$T/field.json"
run sp --schema "$T/field.json" db list
expect_err "a bad field is named by its path" 2 "collections[0].views[0].json_key: expected a string"
run sp --schema "$T/nonexistent.json" db list
expect_err "a missing schema file" 3 "nonexistent.json"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
