#!/bin/sh
# cli_make_test.sh -- the Makefile's front door as issue 16 asks: `make run
# PORT=N` builds the tool alone and serves on port N (with no
# "Entering/Leaving directory" noise); `make install PREFIX=DIR` installs
# under DIR; each target installs what it needs (scripts/deps.sh TARGET:
# clang for fuzz, clang-format and git for format-check, libunistring-dev
# for pkg-config --static).  Registered with ctest as `cli_make` by
# tools/CMakeLists.txt:
#     sh tests/cli_make_test.sh SOURCE BUILD SCRATCH

SRC=$1
BUILD=$2
T=$3
rm -rf "$T" && mkdir -p "$T" || exit 1
fail=0
bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}
has() { # has WHAT TEXT WORD...: TEXT has every WORD
    what=$1
    text=$2
    shift 2
    for w in "$@"; do
        case " $text " in
        *" $w "*) ;;
        *) bad "$what lacks $w: $text" ;;
        esac
    done
}

has "deps.sh --list fuzz" "$(sh "$SRC/scripts/deps.sh" --list fuzz)" clang cmake
has "deps.sh --list format-check" \
    "$(sh "$SRC/scripts/deps.sh" --list format-check)" clang-format git
has "deps.sh --list" "$(sh "$SRC/scripts/deps.sh" --list)" libunistring-dev \
    libedit-dev
sh "$SRC/scripts/deps.sh" nope >/dev/null 2>&1
[ $? = 2 ] || bad "deps.sh with an unknown target should exit 2"

out=$(make -s -C "$SRC" -n install PREFIX=/opt/x BUILD="$BUILD" 2>&1)
case $out in
*"cmake --install $BUILD --prefix /opt/x"*) ;;
*) bad "make install PREFIX=/opt/x does not install there: $out" ;;
esac
for t in fuzz format-check; do
    out=$(make -s -C "$SRC" -n $t BUILD="$BUILD" 2>&1)
    case $out in
    *"scripts/deps.sh $t"*) ;;
    *) bad "make $t does not install what it needs: $out" ;;
    esac
done

# make run PORT=N: the tool alone is built, then the demo, then the server.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$SRC" && exec make run PORT="$port" QUIC_PORT=0 BUILD="$BUILD" DATA="$T/data") \
    >"$T/run.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q "listening on" "$T/run.log"; do
    sleep 0.1
    i=$((i + 1))
done
grep -q "listening on ws://127.0.0.1:$port " "$T/run.log" ||
    bad "make run PORT=$port does not listen there: $(cat "$T/run.log")"
grep -q "demo -- storage" "$T/run.log" || bad "make run ran no demo"
grep -q "Entering directory\|Leaving directory" "$T/run.log" &&
    bad "make prints Entering/Leaving directory"
grep -q "Building.*test_\|Linking.*test_" "$T/run.log" &&
    bad "make run builds the tests"
n=$(SPRIG_PW=demo "$BUILD/tools/sprig" --url "ws://127.0.0.1:$port" \
    --user demo --password-env SPRIG_PW doc count messages)
[ "${n:-0}" -ge 4 ] || bad "the demo's messages are not served: $n"
# Stop the server: SIGTERM to make's descendants (deepest first).
kill_tree() {
    for c in $(pgrep -P "$1"); do
        kill_tree "$c"
    done
    kill -TERM "$1" 2>/dev/null
}
kill_tree $pid
wait $pid 2>/dev/null
[ -f "$T/data/serve.url" ] && bad "the server left serve.url behind"

echo "cli_make: $fail failed"
[ $fail = 0 ]
