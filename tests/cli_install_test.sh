#!/bin/sh
# cli_install_test.sh -- `make install PREFIX=DIR` (cmake --install BUILD
# --prefix DIR): the tool, the library (shared and static), sprig.h and
# sprig.pc land under DIR and nowhere else; sprig.pc is right for DIR
# though the build was configured for another prefix; and the README's C
# snippet, built with -Wall -Wextra -Werror against the static library
# with `pkg-config --static` (which links -lunistring through gnutls), runs.
# Registered with ctest as `cli_install` by tools/CMakeLists.txt:
#     sh tests/cli_install_test.sh BUILD SOURCE SCRATCH [EXTRA_CFLAGS]

BUILD=$1
SRC=$2
T=$3
EXTRA=${4:-}
rm -rf "$T" && mkdir -p "$T" || exit 1
P=$T/prefix
fail=0
bad() {
    echo "FAIL: $*"
    fail=$((fail + 1))
}

cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 ||
    bad "cmake --install --prefix: $(tail -3 "$T/install.log")"
[ -x "$P/bin/sprig" ] || bad "no $P/bin/sprig"
[ -f "$P/include/sprig/sprig.h" ] || bad "no sprig.h under the prefix"
a=$(find "$P" -name libsprig.a | head -1)
pc=$(find "$P" -name sprig.pc | head -1)
[ -n "$a" ] || bad "no libsprig.a under the prefix"
[ -n "$pc" ] || bad "no sprig.pc under the prefix"
outside=$(grep -E "Installing:|Up-to-date:" "$T/install.log" | grep -v "$P")
[ -z "$outside" ] || bad "installed outside the prefix: $outside"
grep -q "Installing: $P" "$T/install.log" || bad "nothing installed"
"$P/bin/sprig" --version | grep -q "^sprig " || bad "installed sprig --version"

export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
inc=$(pkg-config --variable=includedir sprig)
[ "$(cd "$inc" && pwd)" = "$(cd "$P/include" && pwd)" ] ||
    bad "sprig.pc's includedir $inc is not the prefix's"

# The README's snippet: its #includes at the top, the rest in main().
awk '/^## Using Sprig from C/{f=1} f&&/^```c/{g=1;next} g&&/^```/{exit} g{print}' \
    "$SRC/README.md" >"$T/snippet.c"
{
    grep '^#include' "$T/snippet.c"
    echo '#include <stdio.h>'
    echo 'int main(void) {'
    grep -v '^#include' "$T/snippet.c"
    echo 'return 0; }'
} >"$T/prog.c"
[ "$(wc -l <"$T/snippet.c")" -gt 5 ] || bad "no C snippet in README.md"
libs=$(pkg-config --static --libs sprig | sed "s|-lsprig|$a|")
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror $EXTRA $(pkg-config --cflags sprig) \
    -o "$T/prog" "$T/prog.c" $libs >"$T/cc.log" 2>&1 ||
    bad "the README snippet does not build: $(cat "$T/cc.log")"
if [ -x "$T/prog" ]; then
    (cd "$T" && ./prog) || bad "the README snippet's program failed"
    ldd "$T/prog" | grep -q libsprig && bad "linked libsprig.so, not .a"
    [ -d "$T/app.sprig" ] || bad "the snippet made no storage app.sprig"
fi

echo "cli_install: $fail failed"
[ $fail = 0 ]
