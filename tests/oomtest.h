/*
 * oomtest.h -- the allocation-failure scaffolding of the OOM sweeps
 * (test_oom.c over the core operations, test_oom_server.c over the
 * server's request path): a counting allocator installed with
 * sprig_replace_allocator(), and arm / disarm around one attempt.  The
 * failure itself comes from the internal seam sprig__alloc_fail_after();
 * the count tells whether the attempt reached it.  Header-only: one
 * copy per test program.
 */
#ifndef SPRIG_TESTS_OOMTEST_H
#define SPRIG_TESTS_OOMTEST_H

#include "core/core.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

static atomic_ulong oom_calls; /* allocations that reached the allocator */

static void *
oom_count_malloc(size_t n)
{
    atomic_fetch_add(&oom_calls, 1);
    return malloc(n);
}

static void *
oom_count_realloc(void *p, size_t n)
{
    atomic_fetch_add(&oom_calls, 1);
    return realloc(p, n);
}

static void *
oom_count_calloc(size_t n, size_t size)
{
    atomic_fetch_add(&oom_calls, 1);
    return calloc(n, size);
}

/** Install the counting allocator: first thing in main(), before any
 *  other Sprig call (the allocator contract).  0, or nonzero on failure. */
static inline int
oom_install(void)
{
    return sprig_replace_allocator(oom_count_malloc, oom_count_realloc,
                                   oom_count_calloc, free) != SPRIG_OK;
}

/** The n-th allocation from now fails (n >= 1). */
static inline void
oom_arm(unsigned long n)
{
    atomic_store(&oom_calls, 0);
    sprig__alloc_fail_after(n);
}

/** Switch failures off; true if the n-th allocation was reached (failed).
 *  Not reached, the countdown is left at n - made >= 1, and a probe
 *  allocation fails exactly when it is 1, i.e. when n - 1 were made. */
static inline bool
oom_disarm(unsigned long n)
{
    unsigned long made = atomic_load(&oom_calls);
    void *probe = sprig__malloc(1);
    sprig__alloc_fail_after(0);
    sprig__free(probe);
    return probe && made + 1 >= n;
}

#endif
