/*
 * alloc.c -- the one allocation gateway.
 *
 * Every allocation in Sprig goes through here, so the allocator can be
 * replaced (sprig_replace_allocator), live allocations counted, and the
 * n-th allocation made to fail in out-of-memory tests.
 */
#include "core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void *(*a_malloc)(size_t) = malloc;
static void *(*a_realloc)(void *, size_t) = realloc;
static void *(*a_calloc)(size_t, size_t) = calloc;
static void (*a_free)(void *) = free;

static atomic_long live;
static atomic_ulong fail_countdown;

int
sprig_replace_allocator(void *(*malloc_fn)(size_t),
                        void *(*realloc_fn)(void *, size_t),
                        void *(*calloc_fn)(size_t, size_t),
                        void (*free_fn)(void *))
{
    if (!malloc_fn || !realloc_fn || !calloc_fn || !free_fn) {
        return sprig__err(SPRIG_EINVAL, "every allocator function is needed");
    }
    a_malloc = malloc_fn;
    a_realloc = realloc_fn;
    a_calloc = calloc_fn;
    a_free = free_fn;
    return SPRIG_OK;
}

void
sprig__alloc_fail_after(unsigned long n)
{
    atomic_store(&fail_countdown, n);
}

long
sprig__alloc_live(void)
{
    return atomic_load(&live);
}

/* True when the fault-injection countdown says this allocation fails. */
static bool
should_fail(void)
{
    unsigned long c =
        atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c == 0) {
        return false;
    }
    while (c != 0 &&
           !atomic_compare_exchange_weak(&fail_countdown, &c, c - 1)) {
    }
    return c == 1;
}

void *
sprig__malloc(size_t n)
{
    if (should_fail()) {
        return NULL;
    }
    void *p = a_malloc(n ? n : 1);
    if (p) {
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    }
    return p;
}

void *
sprig__calloc(size_t n, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    void *p = a_calloc(n ? n : 1, size ? size : 1);
    if (p) {
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    }
    return p;
}

void *
sprig__realloc(void *p, size_t n)
{
    if (should_fail()) {
        return NULL;
    }
    void *q = a_realloc(p, n ? n : 1);
    if (q && !p) {
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    }
    return q;
}

void
sprig__free(void *p)
{
    if (p) {
        atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
        a_free(p);
    }
}

void
sprig__free_wiped(void *p, size_t n)
{
    if (p && n) {
        explicit_bzero(p, n);
    }
    sprig__free(p);
}

void *
sprig__realloc_wiped(void *p, size_t used, size_t n)
{
    uint8_t *q = sprig__malloc(n);
    if (q && p) {
        memcpy(q, p, used < n ? used : n);
        sprig__free_wiped(p, used);
    }
    return q;
}

char *
sprig__strdup(const char *s)
{
    return sprig__memdup(s, strlen(s) + 1);
}

void *
sprig__memdup(const void *p, size_t n)
{
    void *q = sprig__malloc(n);
    if (q && n) {
        memcpy(q, p, n);
    }
    return q;
}
