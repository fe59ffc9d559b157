/*
 * crc_hw.h -- private to src/local: the CRC-32C step on the CPU's CRC32
 * instruction (SSE 4.2), inline so a caller chaining several pieces (the
 * value CRC of codec.c, run on every read) pays no call per piece.  The
 * command log's sprig__crc32c_update (wal.c) and the value CRC both use
 * it; callers check sprig__crc_hw_ok() first and fall back to the table.
 */
#ifndef SPRIG_CRC_HW_H
#define SPRIG_CRC_HW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#define SPRIG__CRC_HW 1

/** Continue raw (not inverted) CRC-32C `c` over n bytes at p: eight bytes
 *  a step (32 unrolled), the tail in 4-, 2- and 1-byte steps. */
__attribute__((target("sse4.2"))) static inline uint32_t
sprig__crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    for (; n >= 32; n -= 32, p += 32) { /* unrolled: fewer loop steps */
        uint64_t v0, v1, v2, v3; /* four loads: no copy through the stack */
        memcpy(&v0, p, 8);
        memcpy(&v1, p + 8, 8);
        memcpy(&v2, p + 16, 8);
        memcpy(&v3, p + 24, 8);
        c64 = __builtin_ia32_crc32di(c64, v0);
        c64 = __builtin_ia32_crc32di(c64, v1);
        c64 = __builtin_ia32_crc32di(c64, v2);
        c64 = __builtin_ia32_crc32di(c64, v3);
    }
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
    }
    c = (uint32_t)c64;
    if (n & 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = __builtin_ia32_crc32si(c, v);
        p += 4;
    }
    if (n & 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        c = __builtin_ia32_crc32hi(c, v);
        p += 2;
    }
    return n & 1 ? __builtin_ia32_crc32qi(c, *p) : c;
}

/** Does this CPU have the instruction (checked once per caller file)? */
static inline bool
sprig__crc_hw_ok(void)
{
    static int hw = -1;
    if (hw < 0) {
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    return hw == 1;
}
#endif

#endif /* SPRIG_CRC_HW_H */
