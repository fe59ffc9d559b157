/*
 * fuzzlimit.h -- the allocation bound shared by the harnesses over single
 * decoders (fuzz_cmd_record, fuzz_schema_record): an allocator, installed
 * with sprig_replace_allocator() on the first input, that aborts on any
 * request larger than the bound set for the current input -- so a length
 * or count read from the input cannot ask for gigabytes -- and the check
 * that an input left no allocation live.  Header-only: one copy per
 * harness.
 */
#ifndef SPRIG_FUZZ_FUZZLIMIT_H
#define SPRIG_FUZZ_FUZZLIMIT_H

#include "core/core.h"

#include <stdlib.h>

static size_t fz_bound;

static void *
fz_malloc(size_t n)
{
    if (n > fz_bound) {
        abort();
    }
    return malloc(n);
}

static void *
fz_realloc(void *p, size_t n)
{
    if (n > fz_bound) {
        abort();
    }
    return realloc(p, n);
}

static void *
fz_calloc(size_t n, size_t s)
{
    if (s && n > fz_bound / s) {
        abort();
    }
    return calloc(n, s);
}

/** Start an input of `size` bytes: install the bounded allocator (first
 *  call), bound requests to 4 KiB + 256 x the input, and return the
 *  gateway's live count to hand to fz_end(). */
static inline long
fz_begin(size_t size)
{
    static bool once;
    if (!once) {
        sprig_replace_allocator(fz_malloc, fz_realloc, fz_calloc, free);
        once = true;
    }
    fz_bound = 4096 + size * 256;
    return sprig__alloc_live();
}

/** End an input: abort if an allocation it made is still live. */
static inline void
fz_end(long live)
{
    if (sprig__alloc_live() != live) {
        abort();
    }
}

#endif
