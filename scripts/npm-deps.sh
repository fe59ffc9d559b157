#!/bin/sh
# Install the npm packages of the project's Node parts, from their
# committed lock files (npm ci: exactly the locked versions; the npm
# registry is the only network used).  Idempotent and quiet when nothing
# changed: a folder is installed again only when its package-lock.json is
# newer than its node_modules.  Run by the Makefile's deps step.
#   clients/js     the JavaScript client (its packages are embedded into
#                  the web console at build time: src/console)
#   console/test   the console's end-to-end test (playwright-core)
# Without npm (or Node) it says so and does nothing: the build then embeds
# the console without the client, and the browser test skips.
set -eu
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
    echo "npm-deps: no npm: the web console is built without the" \
        "JavaScript client and its browser test skips" >&2
    exit 0
fi
for d in clients/js console/test; do
    [ -f "$d/package-lock.json" ] || continue
    stamp="$d/node_modules/.package-lock.json"
    if [ -f "$stamp" ] && [ ! "$d/package-lock.json" -nt "$stamp" ]; then
        continue
    fi
    echo "npm-deps: npm ci in $d"
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
done
