/*
 * fuzz_schema_record.c -- libFuzzer harness over the stored schema record
 * (sprig__schema_decode, what a storage reads from its registry).  Checks:
 * never a crash; a record decoded encodes and decodes to the same bytes;
 * no allocation larger than a bound proportional to the input (found: a
 * view count of 0xFFFFFFFF asked calloc for about 275 GB); no allocation
 * left live.
 */
#include "core/core.h"
#include "fuzzlimit.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long live = fz_begin(size);
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
    fz_end(live);
    return 0;
}
