/*
 * key.c -- the order-preserving key encoding (scalars and tagged tuples).
 *
 * Encoded keys compare with memcmp in the natural order of the values they
 * encode; the layout is described in sprig.h.  The tuple reader validates
 * everything it reads: malformed input is SPRIG_ECORRUPT, never a crash,
 * because keys come back from disk and, later, from the network.
 */
#include "core.h"

void
sprig_key_u64(uint64_t v, uint8_t out[8])
{
    sprig__put_u64be(out, v);
}

void
sprig_key_i64(int64_t v, uint8_t out[8])
{
    sprig__put_u64be(out, (uint64_t)v ^ 0x8000000000000000ull);
}

static uint64_t
f64_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    if (bits & 0x8000000000000000ull) {
        return ~bits;
    }
    return bits | 0x8000000000000000ull;
}

static double
f64_unbits(uint64_t bits)
{
    if (bits & 0x8000000000000000ull) {
        bits &= ~0x8000000000000000ull;
    } else {
        bits = ~bits;
    }
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

void
sprig_key_f64(double v, uint8_t out[8])
{
    sprig__put_u64be(out, f64_bits(v));
}

static int
need8(sprig_bytes key)
{
    if (key.len != 8) {
        return sprig__err(SPRIG_ECORRUPT,
                          "an encoded number key has 8 bytes, not %zu",
                          key.len);
    }
    return SPRIG_OK;
}

int
sprig_key_decode_u64(sprig_bytes key, uint64_t *out)
{
    int rc = need8(key);
    if (rc == 0) {
        *out = sprig__get_u64be(key.data);
    }
    return rc;
}

int
sprig_key_decode_i64(sprig_bytes key, int64_t *out)
{
    int rc = need8(key);
    if (rc == 0) {
        *out = (int64_t)(sprig__get_u64be(key.data) ^ 0x8000000000000000ull);
    }
    return rc;
}

int
sprig_key_decode_f64(sprig_bytes key, double *out)
{
    int rc = need8(key);
    if (rc == 0) {
        *out = f64_unbits(sprig__get_u64be(key.data));
    }
    return rc;
}

sprig_bytes
sprig_id_u64(uint64_t n, uint8_t storage[8])
{
    sprig_key_u64(n, storage);
    sprig_bytes b = {storage, 8};
    return b;
}

/* ---- tuples ----------------------------------------------------------- */

static int
add_tag_u64(sprig_key_builder *kb, sprig_key_kind tag, uint64_t v)
{
    uint8_t tmp[9];
    tmp[0] = (uint8_t)tag;
    sprig__put_u64be(tmp + 1, v);
    return sprig_buf_append(&kb->buf, tmp, 9);
}

int
sprig_key_add_null(sprig_key_builder *kb)
{
    return sprig__buf_put_u8(&kb->buf, SPRIG_KEY_NULL);
}

int
sprig_key_add_bool(sprig_key_builder *kb, bool v)
{
    return sprig__buf_put_u8(&kb->buf, v ? SPRIG_KEY_TRUE : SPRIG_KEY_FALSE);
}

int
sprig_key_add_u64(sprig_key_builder *kb, uint64_t v)
{
    return add_tag_u64(kb, SPRIG_KEY_POSINT, v);
}

int
sprig_key_add_i64(sprig_key_builder *kb, int64_t v)
{
    if (v >= 0) {
        return add_tag_u64(kb, SPRIG_KEY_POSINT, (uint64_t)v);
    }
    /* two's complement keeps negatives in order among themselves */
    return add_tag_u64(kb, SPRIG_KEY_NEGINT, (uint64_t)v);
}

int
sprig_key_add_f64(sprig_key_builder *kb, double v)
{
    return add_tag_u64(kb, SPRIG_KEY_FLOAT, f64_bits(v));
}

/* Escape 0x00 as 0x00 0xFF and terminate the element with 0x00. */
static int
add_escaped(sprig_key_builder *kb, sprig_key_kind tag, const uint8_t *p,
            size_t n)
{
    int rc = sprig__buf_reserve(&kb->buf, n + 2);
    if (rc) {
        return rc;
    }
    rc = sprig__buf_put_u8(&kb->buf, (uint8_t)tag);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = sprig__buf_put_u8(&kb->buf, p[i]);
        if (rc == 0 && p[i] == 0) {
            rc = sprig__buf_put_u8(&kb->buf, 0xFF);
        }
    }
    if (rc == 0) {
        rc = sprig__buf_put_u8(&kb->buf, 0x00);
    }
    return rc;
}

int
sprig_key_add_str(sprig_key_builder *kb, const char *s)
{
    return add_escaped(kb, SPRIG_KEY_STRING, (const uint8_t *)s, strlen(s));
}

int
sprig_key_add_bytes(sprig_key_builder *kb, sprig_bytes v)
{
    return add_escaped(kb, SPRIG_KEY_BYTES, v.data, v.len);
}

sprig_bytes
sprig_key_bytes(const sprig_key_builder *kb)
{
    return sprig_buf_bytes(&kb->buf);
}

void
sprig_key_builder_clear(sprig_key_builder *kb)
{
    if (kb) {
        sprig_buf_clear(&kb->buf);
    }
}

void
sprig_key_reader_init(sprig_key_reader *r, sprig_bytes key)
{
    memset(r, 0, sizeof *r);
    r->key = key;
}

void
sprig_key_reader_clear(sprig_key_reader *r)
{
    if (r) {
        sprig_buf_clear(&r->scratch);
    }
}

/* Unescape a string/bytes element into the scratch buffer. */
static int
read_escaped(sprig_key_reader *r, sprig_key_elem *out)
{
    const uint8_t *p = r->key.data;
    r->scratch.len = 0;
    while (r->pos < r->key.len) {
        uint8_t c = p[r->pos++];
        if (c != 0) {
            if (sprig__buf_put_u8(&r->scratch, c)) {
                return SPRIG_ENOMEM;
            }
            continue;
        }
        if (r->pos < r->key.len && p[r->pos] == 0xFF) {
            r->pos++;
            if (sprig__buf_put_u8(&r->scratch, 0)) {
                return SPRIG_ENOMEM;
            }
            continue;
        }
        out->bytes.data = r->scratch.data ? r->scratch.data : (void *)"";
        out->bytes.len = r->scratch.len;
        return 1;
    }
    return sprig__err(SPRIG_ECORRUPT, "key string element is unterminated");
}

int
sprig_key_next(sprig_key_reader *r, sprig_key_elem *out)
{
    if (r->pos >= r->key.len) {
        return 0;
    }
    const uint8_t *p = r->key.data;
    uint8_t tag = p[r->pos++];
    memset(out, 0, sizeof *out);
    out->kind = (sprig_key_kind)tag;
    switch (tag) {
    case SPRIG_KEY_NULL:
    case SPRIG_KEY_FALSE:
    case SPRIG_KEY_TRUE: return 1;
    case SPRIG_KEY_NEGINT:
    case SPRIG_KEY_POSINT:
    case SPRIG_KEY_FLOAT: {
        if (r->key.len - r->pos < 8) {
            return sprig__err(SPRIG_ECORRUPT, "key number element truncated");
        }
        uint64_t v = sprig__get_u64be(p + r->pos);
        r->pos += 8;
        if (tag == SPRIG_KEY_POSINT) {
            out->num.u64 = v;
        } else if (tag == SPRIG_KEY_NEGINT) {
            if (!(v & 0x8000000000000000ull)) {
                return sprig__err(SPRIG_ECORRUPT,
                                  "negative key integer is not negative");
            }
            out->num.i64 = (int64_t)v;
        } else {
            out->num.f64 = f64_unbits(v);
        }
        return 1;
    }
    case SPRIG_KEY_STRING:
    case SPRIG_KEY_BYTES: return read_escaped(r, out);
    default:
        return sprig__err(SPRIG_ECORRUPT, "unknown key element tag 0x%02x",
                          tag);
    }
}
