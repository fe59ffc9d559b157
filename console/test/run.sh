#!/bin/sh
# run.sh -- ctest's entry to the console's browser test: skip (77) with the
# reason when a piece it needs is missing, else run e2e.mjs.
#   run.sh NODE SPRIG_BINARY OUT_DIR JS_CLIENT_DIR
node=$1 sprig=$2 out=$3 js=$4
here=$(cd "$(dirname "$0")" && pwd)
for need in "$js/index.js:the JavaScript client (clients/js)" \
    "$js/node_modules/@msgpack/msgpack:clients/js's packages (npm ci)" \
    "$here/node_modules/playwright-core:playwright-core (npm ci in console/test)" \
    "/usr/bin/chromium:Debian's chromium (scripts/deps.sh test)"; do
    if [ ! -e "${need%%:*}" ]; then
        echo "console_e2e: skipped: no ${need#*:} (${need%%:*})"
        exit 77
    fi
done
mkdir -p "${SPRIG_TEST_TMP:-/tmp}"
exec "$node" "$here/e2e.mjs" "$sprig" "$out" "$js"
