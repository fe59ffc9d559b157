/*
 * fuzz_bstate.c -- libFuzzer harness over the built-in reduce state stored
 * per view key.  Input: the first SPRIG__BSTATE_LEN bytes (when there are
 * that many) are a stored state to decode; the rest are number texts,
 * separated by spaces, added to a fresh state.  Checks: never a crash; a
 * decoded state encodes back to the same 67 meaningful bytes; an encoded
 * state has every byte written, the reserved tail zero (found: 8
 * uninitialised stack bytes went into the database file per key).
 */
#include "core/view.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
encode_fully(const sprig__bstate *s, uint8_t out[SPRIG__BSTATE_LEN])
{
    uint8_t other[SPRIG__BSTATE_LEN];
    memset(out, 0x00, SPRIG__BSTATE_LEN);
    memset(other, 0xFF, sizeof other);
    sprig__bstate_encode(s, out);
    sprig__bstate_encode(s, other);
    if (memcmp(out, other, sizeof other) != 0) {
        abort(); /* a byte depends on what was in the buffer */
    }
    for (size_t i = 67; i < SPRIG__BSTATE_LEN; i++) {
        if (out[i]) {
            abort();
        }
    }
}

static void
add_numbers(const uint8_t *p, size_t n)
{
    sprig__bstate s;
    uint8_t enc[SPRIG__BSTATE_LEN];
    sprig__bstate_init(&s);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j] != ' ') {
            j++;
        }
        sprig__bstate_add(&s, (sprig_bytes){p + i, j - i});
        i = j + 1;
    }
    encode_fully(&s, enc);
    sprig_buf r = {0};
    for (int k = SPRIG_REDUCE_COUNT; k <= SPRIG_REDUCE_MAX; k++) {
        r.len = 0;
        sprig__bstate_result(&s, (sprig_builtin_reduce)k, &r);
    }
    sprig_buf_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sprig__bstate s;
    uint8_t enc[SPRIG__BSTATE_LEN];
    size_t n = size < SPRIG__BSTATE_LEN ? size : SPRIG__BSTATE_LEN;
    if (sprig__bstate_decode((sprig_bytes){data, n}, &s) == 0) {
        encode_fully(&s, enc);
        if (memcmp(enc, data, 67) != 0) {
            abort();
        }
    }
    add_numbers(data + n, size - n);
    return 0;
}
