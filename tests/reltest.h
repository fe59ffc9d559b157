/*
 * reltest.h -- what the reliability tests (test_crash.c, test_concurrency.c,
 * test_full.c, test_oom.c) add to testutil.h: a scratch directory per
 * scenario, a bounded random draw over tu_rand(), a monotonic clock, a
 * numeric environment knob, opening a storage with given options, and
 * assertions on stored documents.  Everything is static inline so a test
 * includes only what it uses without warnings.
 */
#ifndef SPRIG_TESTS_RELTEST_H
#define SPRIG_TESTS_RELTEST_H

#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "local/local.h"

/* A fresh, empty scratch directory for scenario `name`, copied to `out`;
 * remove it with tu_rmtree(). */
static inline void
rt_scratch(char *out, size_t n, const char *name)
{
    assert_true((size_t)snprintf(out, n, "%s", tu_tmpdir(name)) < n);
}

/* A uniform draw in [0, n) from tu_rand(). */
static inline uint64_t
rt_below(uint64_t *state, uint64_t n)
{
    return n ? tu_rand(state) % n : 0;
}

/* Microseconds on the monotonic clock. */
static inline uint64_t
rt_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* An environment variable as an unsigned number, or `def`. */
static inline unsigned long
rt_env_ulong(const char *name, unsigned long def)
{
    const char *v = getenv(name);
    return v && *v ? strtoul(v, NULL, 10) : def;
}

/* Open a storage in `dir` with `durability` and map sizes (0: default). */
static inline int
rt_storage_open(const char *dir, sprig_durability durability,
                uint64_t initial_map, uint64_t max_map, sprig_storage **out)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.durability = durability;
    o.initial_map_size = initial_map;
    o.max_map_size = max_map;
    return sprig_storage_open(&o, out);
}

/* sprig_storage_check() finds nothing wrong in `st`. */
static inline void
rt_assert_checked(sprig_storage *st)
{
    sprig_buf rep = {0};
    uint64_t n = 0;
    SPRIG_OK_(sprig_storage_check(st, &rep, &n));
    if (n) {
        fail_msg("sprig_storage_check found %llu problems:\n%.*s",
                 (unsigned long long)n, (int)rep.len, (const char *)rep.data);
    }
    sprig_buf_clear(&rep);
}

/* Assert that document `id` of `coll` holds exactly `want`. */
static inline void
rt_assert_doc(sprig_db *db, const char *coll, sprig_bytes id, const void *want,
              size_t want_len)
{
    sprig_doc *d = NULL;
    int rc = sprig_get(db, coll, id, &d);
    if (rc) {
        print_message("get %s/%.*s: %s (%s)\n", coll, (int)id.len,
                      (const char *)id.data, sprig_strerror(rc),
                      sprig_errmsg());
    }
    assert_int_equal(rc, SPRIG_OK);
    sprig_bytes c = sprig_doc_contents(d);
    assert_int_equal(c.len, want_len);
    assert_memory_equal(c.data, want, want_len);
    sprig_doc_free(d);
}

/* Assert that document `id` of `coll` does not exist. */
static inline void
rt_assert_no_doc(sprig_db *db, const char *coll, sprig_bytes id)
{
    sprig_doc *d = NULL;
    assert_int_equal(sprig_get(db, coll, id, &d), SPRIG_ENOTFOUND);
    assert_null(d);
}

#endif /* SPRIG_TESTS_RELTEST_H */
