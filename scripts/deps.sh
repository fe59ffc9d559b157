#!/bin/sh
# Install the Debian packages Sprig needs, and only those missing.
# Idempotent and quiet when nothing is missing.  The one set-up step.
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh --bench  also the benchmark peers
set -eu

PKGS="build-essential pkg-config cmake liblmdb-dev libsodium-dev liblz4-dev \
libjansson-dev libcmocka-dev libmsgpack-dev python3 \
python3-websockets python3-msgpack \
libuv1-dev libgnutls28-dev libwslay-dev libhttp-parser-dev openssl \
libngtcp2-dev libngtcp2-crypto-gnutls-dev"
BENCH_PKGS="libsqlite3-dev sqlite3 gnuplot-nox redis-server redis-tools \
postgresql valgrind libpq-dev tarantool"

[ "${1:-}" = "--bench" ] && PKGS="$PKGS $BENCH_PKGS"
# SQLite is a benchmark peer; the build uses it when it is there.
PKGS="$PKGS libsqlite3-dev"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
