/*
 * fuzz_schema_record.c -- libFuzzer harness over the stored schema record
 * (sprig__schema_decode, what a storage reads from its registry).  Checks:
 * never a crash; a record decoded encodes and decodes to the same bytes;
 * no allocation larger than a bound proportional to the input (found: a
 * view count of 0xFFFFFFFF asked calloc for about 275 GB); no allocation
 * left live.
 */
#include "core/core.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t limit;

static void *
lim_malloc(size_t n)
{
    if (n > limit) {
        abort();
    }
    return malloc(n);
}

static void *
lim_realloc(void *p, size_t n)
{
    if (n > limit) {
        abort();
    }
    return realloc(p, n);
}

static void *
lim_calloc(size_t n, size_t s)
{
    if (s && n > limit / s) {
        abort();
    }
    return calloc(n, s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        sprig_replace_allocator(lim_malloc, lim_realloc, lim_calloc, free);
        once = true;
    }
    limit = 4096 + size * 256;
    long live = sprig__alloc_live();
    sprig_schema_def *s = NULL, *t = NULL;
    sprig_buf a = {0}, b = {0};
    if (sprig__schema_decode((sprig_bytes){data, size}, &s) == 0) {
        if (sprig__schema_encode(s, &a) ||
            sprig__schema_decode(sprig_buf_bytes(&a), &t) ||
            sprig__schema_encode(t, &b) || a.len != b.len ||
            memcmp(a.data, b.data, a.len)) {
            abort();
        }
    }
    sprig_schema_free(s);
    sprig_schema_free(t);
    sprig_buf_clear(&a);
    sprig_buf_clear(&b);
    if (sprig__alloc_live() != live) {
        abort();
    }
    return 0;
}
