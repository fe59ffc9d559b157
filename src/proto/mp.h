/*
 * mp.h -- MessagePack for the wire protocol (src/proto, sans-I/O).
 *
 * Writing goes through msgpack-c's packer into a sprig_buf.  Reading uses
 * our own cursor, sprig__mp_rd, over borrowed bytes: it allocates nothing,
 * checks every declared count against the bytes that remain (a 5-byte
 * frame cannot claim four billion elements), bounds nesting depth, and
 * returns SPRIG_EPROTO with a detail naming what was wanted and found.
 * Strings and binaries come back as pointers into the input.
 */
#ifndef SPRIG_PROTO_MP_H
#define SPRIG_PROTO_MP_H

#include "core/core.h"

#include <msgpack.h>

/* ---- writing ---------------------------------------------------------- */

/** A packer writing into `buf` (which the caller owns). */
typedef struct sprig__mp_wr {
    msgpack_packer pk;
    sprig_buf *buf;
    int err; /* sticky: SPRIG_ENOMEM once an append failed */
} sprig__mp_wr;

void sprig__mp_wr_init(sprig__mp_wr *w, sprig_buf *buf);
void sprig__mp_nil(sprig__mp_wr *w);
void sprig__mp_bool(sprig__mp_wr *w, bool v);
void sprig__mp_u64(sprig__mp_wr *w, uint64_t v);
void sprig__mp_i64(sprig__mp_wr *w, int64_t v);
void sprig__mp_f64(sprig__mp_wr *w, double v);
void sprig__mp_str(sprig__mp_wr *w, const char *s);
void sprig__mp_strn(sprig__mp_wr *w, const void *s, size_t n);
void sprig__mp_bin(sprig__mp_wr *w, sprig_bytes b);
void sprig__mp_array(sprig__mp_wr *w, uint32_t n);
void sprig__mp_map(sprig__mp_wr *w, uint32_t n);
/** Append bytes that already are one encoded value. */
void sprig__mp_raw(sprig__mp_wr *w, sprig_bytes value);
/** 0, or SPRIG_ENOMEM if any write failed. */
int sprig__mp_wr_status(const sprig__mp_wr *w);

/* ---- reading ---------------------------------------------------------- */

#define SPRIG__MP_MAX_DEPTH 32

typedef enum sprig__mp_type {
    SPRIG__MP_NIL,
    SPRIG__MP_BOOL,
    SPRIG__MP_UINT, /* a non-negative integer */
    SPRIG__MP_INT,  /* a negative integer */
    SPRIG__MP_FLOAT,
    SPRIG__MP_STR,
    SPRIG__MP_BIN,
    SPRIG__MP_ARRAY,
    SPRIG__MP_MAP,
    SPRIG__MP_EXT,
    SPRIG__MP_BAD /* a reserved byte (0xc1) or no input left */
} sprig__mp_type;

typedef struct sprig__mp_rd {
    const uint8_t *p;
    size_t left;
} sprig__mp_rd;

void sprig__mp_rd_init(sprig__mp_rd *r, sprig_bytes in);
sprig__mp_type sprig__mp_peek(const sprig__mp_rd *r);
/** Name of a type, for error details. */
const char *sprig__mp_type_name(sprig__mp_type t);

int sprig__mp_read_nil(sprig__mp_rd *r);
int sprig__mp_read_bool(sprig__mp_rd *r, bool *v);
/** Any integer that fits; negative → SPRIG_EPROTO. */
int sprig__mp_read_u64(sprig__mp_rd *r, uint64_t *v);
/** Any integer in int64 range. */
int sprig__mp_read_i64(sprig__mp_rd *r, int64_t *v);
/** A float, or an integer converted. */
int sprig__mp_read_f64(sprig__mp_rd *r, double *v);
/** A str (bytes borrowed from the input, not NUL-terminated). */
int sprig__mp_read_str(sprig__mp_rd *r, sprig_bytes *v);
/** A bin, or a str accepted as bytes. */
int sprig__mp_read_bin(sprig__mp_rd *r, sprig_bytes *v);
/** An array header: *n elements follow (each at least one byte). */
int sprig__mp_read_array(sprig__mp_rd *r, uint32_t *n);
/** A map header: *n key/value pairs follow. */
int sprig__mp_read_map(sprig__mp_rd *r, uint32_t *n);
/** Skip one whole value (any type), nesting at most SPRIG__MP_MAX_DEPTH. */
int sprig__mp_skip(sprig__mp_rd *r);

#endif
