/*
 * fuzz_key.c -- libFuzzer harness over tuple keys as they come back from
 * disk: the input is an encoded key.  Checks: the reader and
 * sprig_key_to_json() never crash; what to_json prints is well-formed
 * UTF-8 (sprig.h promises U+FFFD for the rest); and, reading the first 16
 * bytes as two doubles, their f64 keys sort as the numbers do, with every
 * NaN after +inf and all NaNs equal (found: a negative NaN sorted first).
 */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
utf8_ok(const uint8_t *s, size_t n)
{
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    for (size_t i = 0; i < n;) {
        uint32_t c = s[i], need;
        if (c < 0x80) {
            need = 0;
        } else if (c >= 0xC0 && c < 0xF8) {
            need = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        } else {
            return false;
        }
        if (i + need >= n) {
            return false;
        }
        c &= need == 0 ? 0x7F : need == 1 ? 0x1F : need == 2 ? 0x0F : 0x07;
        for (uint32_t j = 1; j <= need; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                return false;
            }
            c = c << 6 | (s[i + j] & 0x3F);
        }
        if (c < min[need] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            return false;
        }
        i += need + 1;
    }
    return true;
}

/* -1, 0, 1 in the documented order: NaN last, all NaNs equal, -0 < +0. */
static int
order(double a, double b)
{
    if (isnan(a) || isnan(b)) {
        return isnan(a) - isnan(b);
    }
    if (a == b && a == 0) {
        return signbit(b) - signbit(a);
    }
    return a < b ? -1 : a > b;
}

static void
check_f64(const uint8_t *data)
{
    double a, b;
    uint8_t ka[8], kb[8];
    memcpy(&a, data, 8);
    memcpy(&b, data + 8, 8);
    sprig_key_f64(a, ka);
    sprig_key_f64(b, kb);
    int m = memcmp(ka, kb, 8), want = order(a, b);
    if ((m < 0 ? -1 : m > 0) != want) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sprig_buf out = {0};
    if (sprig_key_to_json((sprig_bytes){data, size}, &out) == 0 &&
        !utf8_ok(out.data, out.len)) {
        abort();
    }
    sprig_buf_clear(&out);
    if (size >= 16) {
        check_f64(data);
    }
    return 0;
}
