/*
 * storedump_main.c -- `sprig-storedump DIR [SKIP]`: a closed storage's
 * LMDB contents (tests/storedump.h: `_admin`, then each database
 * directory; every non-empty table, keys and values) written to stdout, so
 * shell tests can prove real nodes byte-identical with cmp(1).  SKIP: a
 * comma-separated list of node-local keys left out (default
 * "raft.floor,wal.lsn").  Exit 2 when an environment cannot be read.
 */
#include <sprig/sprig.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* storedump.h's checks, without cmocka */
#define assert_int_equal(a, b)                                                 \
    do {                                                                       \
        if ((long long)(a) != (long long)(b)) {                                \
            fprintf(stderr, "sprig-storedump: %s failed (%s:%d)\n", #a,        \
                    __FILE__, __LINE__);                                       \
            exit(2);                                                           \
        }                                                                      \
    } while (0)
#define assert_non_null(p) assert_int_equal((p) != NULL, 1)
#define SPRIG_OK_(x) assert_int_equal((x), 0)

#include "storedump.h"

int
main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: sprig-storedump DIR [SKIP]\n");
        return 2;
    }
    sprig_buf out = {0};
    sd_dump_storage(argv[1], argc > 2 ? argv[2] : "raft.floor,wal.lsn", &out);
    bool ok = fwrite(out.data, 1, out.len, stdout) == out.len;
    sprig_buf_clear(&out);
    return ok ? 0 : 2;
}
