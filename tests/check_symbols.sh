#!/bin/sh
# check_symbols.sh -- only sprig_ names leave the shared library.
#
# Usage: sh check_symbols.sh path/to/libsprig.so
#
# Lists the dynamic symbols the library defines (nm -D --defined-only) and
# fails if a function or data symbol does not start with `sprig_`, or starts
# with `sprig__` (the internal prefix).  Symbols the linker itself defines
# (_init, _fini, _edata, _end, __bss_start) and absolute version nodes are
# not the library's and are skipped.  Prints each offender and the number of
# symbols checked; exits 1 on any offender, 2 when it cannot run.
set -u

lib=${1:-}
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
    echo "check_symbols: no library given or '$lib' does not exist" >&2
    exit 2
fi
if ! command -v nm >/dev/null 2>&1; then
    echo "check_symbols: nm is not installed" >&2
    exit 2
fi
syms=$(nm -D --defined-only "$lib") || {
    echo "check_symbols: nm failed on $lib" >&2
    exit 2
}

# nm prints "address type name" (the address may be blank); keep type+name.
# Function and data types: T t W w V v D d B b R r G g S s i u.
printf '%s\n' "$syms" | awk -v lib="$lib" '
    NF >= 2 {
        type = $(NF - 1); name = $NF
        sub(/@.*/, "", name)                 # drop symbol versions
        if (type == "A") next                # version nodes
        if (name ~ /^(_init|_fini|_edata|_end|__bss_start)$/) next
        if (type !~ /^[TtWwVvDdBbRrGgSsiu]$/) next
        checked++
        if (name !~ /^sprig_/ || name ~ /^sprig__/) {
            print "check_symbols: exported symbol not in the public namespace: " name " (" type ")"
            bad++
        }
    }
    END {
        printf "check_symbols: %d exported symbols checked in %s, %d offenders\n", checked, lib, bad
        if (checked == 0) {
            print "check_symbols: no exported symbols found: is this the library?"
            exit 1
        }
        exit (bad > 0 ? 1 : 0)
    }'
