#!/usr/bin/env python3
# memscan.py -- which of some strings a running process's memory holds:
# the readable mappings of /proc/PID/mem (heap, stacks, the allocator's
# regions, freed memory included), searched for each line of PATTERNS;
# prints those found, one per line.  tests/secrets_leak_test.sh uses it
# instead of a gcore image for an AddressSanitizer build, whose core
# would hold the shadow memory (terabytes of address space); mappings over
# MAX_MB (ASan's shadow and its gaps) are left out and named on stderr.
#     python3 tests/memscan.py PID PATTERNS [MAX_MB]
import sys


def main():
    pid = int(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        pats = [p for p in f.read().split(b"\n") if p]
    max_bytes = int(sys.argv[3] if len(sys.argv) > 3 else 4096) << 20
    found = set()
    skipped = 0
    with open("/proc/%d/maps" % pid) as maps, \
            open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            name = f[5] if len(f) > 5 else ""
            if "r" not in f[1] or name in ("[vvar]", "[vsyscall]"):
                continue
            if hi - lo > max_bytes:
                skipped += hi - lo
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            for p in pats:
                if p not in found and data.find(p) >= 0:
                    found.add(p)
    for p in sorted(found):
        print(p.decode("utf-8", "replace"))
    if skipped:
        print("memscan: %d GiB in mappings over the limit not searched"
              % (skipped >> 30), file=sys.stderr)


main()
