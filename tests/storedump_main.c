/*
 * storedump_main.c -- `sprig_storedump DIR`: the LMDB contents of the
 * (closed) storage in DIR as one byte string on stdout, the dump of
 * storedump.h (every non-empty table of `_admin` and of each database
 * directory, every key and value), leaving out the node-local key
 * "raft.floor".  The cluster shell tests (cluster_restart, cluster_ops)
 * compare two nodes' dumps with cmp to prove their data byte-identical.
 * Exit 0, or 2 when a storage cannot be read (the message on stderr).
 */
#include "sprig/sprig.h"

#include <stdio.h>
#include <stdlib.h>

/* storedump.h's cmocka assertions, as plain checks that exit */
#define assert_int_equal(a, b)                                                 \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            fprintf(stderr, "sprig_storedump: %s = %lld, not %lld\n", #a, a_,  \
                    b_);                                                       \
            exit(2);                                                           \
        }                                                                      \
    } while (0)
#define assert_non_null(p) assert_int_equal((p) != NULL, 1)
#define SPRIG_OK_(call) assert_int_equal((call), SPRIG_OK)

#include "storedump.h"

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sprig_storedump STORAGE-DIR\n");
        return 2;
    }
    sprig_buf b = {0};
    sd_dump_storage(argv[1], "raft.floor", &b);
    int ok = fwrite(b.data, 1, b.len, stdout) == b.len;
    sprig_buf_clear(&b);
    return ok ? 0 : 2;
}
