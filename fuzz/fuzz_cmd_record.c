/*
 * fuzz_cmd_record.c -- libFuzzer harness over the command encoding
 * (sprig__cmd_decode): what a database's command log holds on disk and
 * replays at open, and what the cluster replicates.  Checks: never a
 * crash; a record that decodes encodes back to exactly its input (the
 * encoding is canonical: no trailing bytes, every field checked), and
 * decodes again; no allocation larger than a bound proportional to the
 * input; no allocation left live.
 */
#include "core/cmd.h"
#include "fuzzlimit.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long live = fz_begin(size);
    sprig__cmd c, d;
    sprig_buf a = {0}, b = {0};
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    if (sprig__cmd_decode((sprig_bytes){data, size}, &c) == 0) {
        if (sprig__cmd_encode(&c, &a) || a.len != size ||
            memcmp(a.data, data, size) ||
            sprig__cmd_decode(sprig_buf_bytes(&a), &d) ||
            sprig__cmd_encode(&d, &b) || a.len != b.len ||
            memcmp(a.data, b.data, a.len)) {
            abort();
        }
    }
    sprig__cmd_clear(&c);
    sprig__cmd_clear(&d);
    sprig_buf_clear(&a);
    sprig_buf_clear(&b);
    fz_end(live);
    return 0;
}
