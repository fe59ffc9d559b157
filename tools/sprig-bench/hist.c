/*
 * hist.c -- latency histogram of sprig-bench.  Log-linear buckets in the
 * manner of HdrHistogram: values below 2^HIST_SUB_BITS ns are exact, and
 * every power of two above is cut into HIST_SUB equal buckets, so a
 * quantile is off by at most 1/HIST_SUB (~3 %) of its value.  Adding is a
 * count-leading-zeros and an increment; each client thread keeps its own
 * histogram, merged at the end of a run.
 */
#include "bench.h"

#include <string.h>

static unsigned
bucket_of(uint64_t v)
{
    if (v < HIST_SUB) {
        return (unsigned)v;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The largest value that falls into bucket `i`. */
static uint64_t
bucket_top(unsigned i)
{
    if (i < HIST_SUB) {
        return i;
    }
    unsigned shift = i / HIST_SUB - 1;
    uint64_t m = i % HIST_SUB + HIST_SUB;
    return ((m + 1) << shift) - 1;
}

void
hist_init(hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

void
hist_add(hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns < h->min_ns) {
        h->min_ns = ns;
    }
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

void
hist_merge(hist *dst, const hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        dst->b[i] += src->b[i];
    }
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns) {
        dst->min_ns = src->min_ns;
    }
    if (src->max_ns > dst->max_ns) {
        dst->max_ns = src->max_ns;
    }
}

uint64_t
hist_quantile(const hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)(q * (double)h->count + 0.5);
    if (want < 1) {
        want = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t top = bucket_top(i);
            return top > h->max_ns ? h->max_ns : top;
        }
    }
    return h->max_ns;
}
