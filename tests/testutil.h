/*
 * testutil.h -- small helpers shared by the cmocka tests: a scratch
 * directory per test program, a reproducible seed, and assertion macros
 * that print Sprig's error detail when a call fails.
 */
#ifndef SPRIG_TESTUTIL_H
#define SPRIG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sprig/sprig.h"

/* Assert a Sprig call returns `want`, printing the detail otherwise. */
#define SPRIG_EXPECT(want, call)                                               \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != (want)) {                                                   \
            print_message("%s:%d: %s returned %d (%s: %s), wanted %d\n",       \
                          __FILE__, __LINE__, #call, rc_, sprig_strerror(rc_), \
                          sprig_errmsg(), (want));                             \
            fail();                                                            \
        }                                                                      \
    } while (0)
#define SPRIG_OK_(call) SPRIG_EXPECT(SPRIG_OK, call)

/* A fresh scratch directory for this process: $SPRIG_TEST_TMP/<tag>.<pid>.
 * Returned pointer is static; removed by tu_rmtree(). */
static inline const char *
tu_tmpdir(const char *tag)
{
    static char dir[1024];
    const char *root = getenv("SPRIG_TEST_TMP");
    char cmd[2200];
    if (!root || !*root) {
        root = "/tmp/sprig-test";
    }
    snprintf(dir, sizeof dir, "%s/%s.%ld", root, tag, (long)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        exit(1);
    }
    return dir;
}

static inline void
tu_rmtree(const char *dir)
{
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
}

/* The seed: $SPRIG_SEED or the time; printed so a failure can be replayed. */
static inline uint64_t
tu_seed(void)
{
    const char *s = getenv("SPRIG_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    printf("seed=%llu (replay with SPRIG_SEED=%llu)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

/* xorshift64*: small, fast, reproducible. */
static inline uint64_t
tu_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Compare bytes with an expected C string. */
static inline int
tu_bytes_eq(sprig_bytes b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

#endif
