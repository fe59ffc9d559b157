#!/bin/sh
# Install the Debian packages Sprig needs, and only those missing.
# Idempotent and quiet when nothing is missing; otherwise it says what it
# installs and shows apt's progress.  The one set-up step, run by each
# Makefile target for what that target needs:
#   scripts/deps.sh               build (make build, run)
#   scripts/deps.sh test          also chromium (make test: the console's
#                                 browser test)
#   scripts/deps.sh bench         also the benchmark peers (make bench)
#   scripts/deps.sh fuzz          also clang (make fuzz: libFuzzer)
#   scripts/deps.sh format        clang-format and git (make format)
#   scripts/deps.sh format-check  the same (make format-check)
#   scripts/deps.sh --list [T]    print the packages of target T, install
#                                 nothing
set -eu

BUILD_PKGS="build-essential pkg-config cmake liblmdb-dev libsodium-dev \
liblz4-dev libjansson-dev libcmocka-dev libmsgpack-dev python3 \
python3-websockets python3-msgpack \
libuv1-dev libgnutls28-dev libwslay-dev libhttp-parser-dev openssl \
libngtcp2-dev libngtcp2-crypto-gnutls-dev libunistring-dev libedit-dev \
gdb libraft-dev"
# libunistring-dev: `pkg-config --static sprig` (through gnutls) links
# -lunistring.  libedit-dev: `sprig shell`'s line editing.  gdb: gcore, for
# the core image `make secrets-leak` searches for passwords.  libraft-dev:
# consensus for the cluster (src/cluster, issue 18).
BENCH_PKGS="libsqlite3-dev sqlite3 gnuplot-nox redis-server redis-tools \
postgresql valgrind libpq-dev tarantool etcd-server"
FUZZ_PKGS="clang"
FORMAT_PKGS="clang-format git"
# The web console's end-to-end test drives Debian's Chromium (make test).
TEST_PKGS="chromium"

list=0
if [ "${1:-}" = "--list" ]; then
    list=1
    shift
fi
target=${1:-build}
case $target in
build | run | "") PKGS="$BUILD_PKGS" ;;
test) PKGS="$BUILD_PKGS $TEST_PKGS" ;;
bench | --bench) PKGS="$BUILD_PKGS $BENCH_PKGS" ;;
fuzz) PKGS="$BUILD_PKGS $FUZZ_PKGS" ;;
format | format-check) PKGS="$FORMAT_PKGS" ;;
*)
    echo "deps: unknown target '$target' (build, bench, fuzz, format," \
        "format-check)" >&2
    exit 2
    ;;
esac
# The JavaScript client (clients/js) and its tests need node and npm:
# Debian's nodejs and npm, unless a node with its npm is there already
# (e.g. nodesource's nodejs, which bundles npm and conflicts with
# Debian's npm package).
case $target in
format*) ;;
*)
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        PKGS="$PKGS nodejs npm"
    ;;
esac
# SQLite is a benchmark peer; the build uses it when it is there.
case $target in format*) ;; *) PKGS="$PKGS libsqlite3-dev" ;; esac
if [ $list = 1 ]; then
    echo $PKGS
    exit 0
fi

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
n=$(echo $missing | wc -w)
echo "deps: installing $n Debian package(s) for '$target' with apt-get" \
    "(with their dependencies; a few minutes on a fresh machine):"
echo "deps:$missing"
export DEBIAN_FRONTEND=noninteractive
echo "deps: apt-get update"
apt-get update -qq
status=$(mktemp)
# shellcheck disable=SC2086
{
    apt-get install -y -q --no-install-recommends $missing 2>&1
    echo $? >"$status"
} | grep --line-buffered -E '^(Get:|Setting up|E:)' |
    sed -u -e 's/^Get:[0-9]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .*/deps: fetching \1/' \
        -e 's/^Setting up \([^ ]*\) .*/deps: set up \1/' || true
rc=$(cat "$status")
rm -f "$status"
if [ "$rc" != 0 ]; then
    echo "deps: apt-get install failed (exit $rc)" >&2
    exit 1
fi
echo "deps: done"
