/*
 * mp.c -- MessagePack writing (over msgpack-c's packer) and reading (our
 * own bounds-checked cursor).  See mp.h for why reading is our own.
 */
#include "proto/mp.h"

/* ---- writing ---------------------------------------------------------- */

static int
wr_append(void *data, const char *p, size_t n)
{
    sprig__mp_wr *w = data;
    if (w->err == 0 && sprig_buf_append(w->buf, p, n) != 0) {
        w->err = SPRIG_ENOMEM;
    }
    return 0;
}

void
sprig__mp_wr_init(sprig__mp_wr *w, sprig_buf *buf)
{
    w->buf = buf;
    w->err = 0;
    msgpack_packer_init(&w->pk, w, wr_append);
}

int
sprig__mp_wr_status(const sprig__mp_wr *w)
{
    return w->err ? sprig__err(SPRIG_ENOMEM, "out of memory encoding")
                  : SPRIG_OK;
}

void
sprig__mp_nil(sprig__mp_wr *w)
{
    msgpack_pack_nil(&w->pk);
}

void
sprig__mp_bool(sprig__mp_wr *w, bool v)
{
    if (v) {
        msgpack_pack_true(&w->pk);
    } else {
        msgpack_pack_false(&w->pk);
    }
}

void
sprig__mp_u64(sprig__mp_wr *w, uint64_t v)
{
    msgpack_pack_uint64(&w->pk, v);
}

void
sprig__mp_i64(sprig__mp_wr *w, int64_t v)
{
    msgpack_pack_int64(&w->pk, v);
}

void
sprig__mp_f64(sprig__mp_wr *w, double v)
{
    msgpack_pack_double(&w->pk, v);
}

void
sprig__mp_strn(sprig__mp_wr *w, const void *s, size_t n)
{
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, s, n);
}

void
sprig__mp_str(sprig__mp_wr *w, const char *s)
{
    sprig__mp_strn(w, s, strlen(s));
}

void
sprig__mp_bin(sprig__mp_wr *w, sprig_bytes b)
{
    msgpack_pack_bin(&w->pk, b.len);
    msgpack_pack_bin_body(&w->pk, b.data, b.len);
}

void
sprig__mp_array(sprig__mp_wr *w, uint32_t n)
{
    msgpack_pack_array(&w->pk, n);
}

void
sprig__mp_map(sprig__mp_wr *w, uint32_t n)
{
    msgpack_pack_map(&w->pk, n);
}

void
sprig__mp_raw(sprig__mp_wr *w, sprig_bytes value)
{
    wr_append(w, value.data, value.len);
}

/* ---- reading ---------------------------------------------------------- */

void
sprig__mp_rd_init(sprig__mp_rd *r, sprig_bytes in)
{
    r->p = in.data;
    r->left = in.len;
}

sprig__mp_type
sprig__mp_peek(const sprig__mp_rd *r)
{
    if (r->left == 0) {
        return SPRIG__MP_BAD;
    }
    uint8_t b = r->p[0];
    if (b <= 0x7f || b == 0xcc || b == 0xcd || b == 0xce || b == 0xcf) {
        return SPRIG__MP_UINT;
    }
    if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3)) {
        return SPRIG__MP_INT;
    }
    if ((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf) {
        return SPRIG__MP_MAP;
    }
    if ((b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd) {
        return SPRIG__MP_ARRAY;
    }
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) {
        return SPRIG__MP_STR;
    }
    switch (b) {
    case 0xc0: return SPRIG__MP_NIL;
    case 0xc2:
    case 0xc3: return SPRIG__MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6: return SPRIG__MP_BIN;
    case 0xca:
    case 0xcb: return SPRIG__MP_FLOAT;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: return SPRIG__MP_EXT;
    default: return SPRIG__MP_BAD;
    }
}

const char *
sprig__mp_type_name(sprig__mp_type t)
{
    static const char *names[] = {
        "nil",   "bool",      "unsigned integer", "negative integer",
        "float", "string",    "binary",           "array",
        "map",   "extension", "nothing"};
    return names[t];
}

static int
want(const sprig__mp_rd *r, const char *what)
{
    if (r->left == 0) {
        return sprig__err(SPRIG_EPROTO, "message truncated: expected %s", what);
    }
    if (sprig__mp_peek(r) == SPRIG__MP_BAD) {
        return sprig__err(SPRIG_EPROTO,
                          "expected %s, found the reserved byte 0x%02x", what,
                          r->p[0]);
    }
    return sprig__err(SPRIG_EPROTO, "expected %s, found %s", what,
                      sprig__mp_type_name(sprig__mp_peek(r)));
}

/* Take n bytes (after the marker byte was consumed). */
static int
take(sprig__mp_rd *r, size_t n, const uint8_t **p)
{
    if (r->left < n) {
        return sprig__err(SPRIG_EPROTO,
                          "message truncated: %zu bytes "
                          "wanted, %zu left",
                          n, r->left);
    }
    *p = r->p;
    r->p += n;
    r->left -= n;
    return SPRIG_OK;
}

/* Read a big-endian unsigned of `n` bytes (1, 2, 4, 8). */
static int
take_be(sprig__mp_rd *r, size_t n, uint64_t *v)
{
    const uint8_t *p = NULL;
    int rc = take(r, n, &p);
    if (rc == 0) {
        *v = 0;
        for (size_t i = 0; i < n; i++) {
            *v = (*v << 8) | p[i];
        }
    }
    return rc;
}

int
sprig__mp_read_nil(sprig__mp_rd *r)
{
    if (sprig__mp_peek(r) != SPRIG__MP_NIL) {
        return want(r, "nil");
    }
    r->p++;
    r->left--;
    return SPRIG_OK;
}

int
sprig__mp_read_bool(sprig__mp_rd *r, bool *v)
{
    if (sprig__mp_peek(r) != SPRIG__MP_BOOL) {
        return want(r, "a boolean");
    }
    *v = r->p[0] == 0xc3;
    r->p++;
    r->left--;
    return SPRIG_OK;
}

/* Any integer, as a sign flag and magnitude bits. */
static int
read_int(sprig__mp_rd *r, bool *neg, uint64_t *bits)
{
    sprig__mp_type t = sprig__mp_peek(r);
    if (t != SPRIG__MP_UINT && t != SPRIG__MP_INT) {
        return want(r, "an integer");
    }
    uint8_t b = r->p[0];
    r->p++;
    r->left--;
    *neg = t == SPRIG__MP_INT;
    if (b <= 0x7f || b >= 0xe0) {
        *bits = b <= 0x7f ? b : (uint64_t)(int64_t)(int8_t)b;
        return SPRIG_OK;
    }
    size_t n = (size_t)1 << ((b & 0x03));
    int rc = take_be(r, n, bits);
    if (rc == 0 && *neg && n < 8) { /* sign-extend */
        unsigned shift = (unsigned)(64 - 8 * n);
        *bits = (uint64_t)(((int64_t)(*bits << shift)) >> shift);
    }
    return rc;
}

int
sprig__mp_read_u64(sprig__mp_rd *r, uint64_t *v)
{
    bool neg = false;
    int rc = read_int(r, &neg, v);
    if (rc == 0 && neg && (int64_t)*v < 0) {
        return sprig__err(SPRIG_EPROTO,
                          "expected an unsigned integer, "
                          "found %lld",
                          (long long)(int64_t)*v);
    }
    return rc;
}

int
sprig__mp_read_i64(sprig__mp_rd *r, int64_t *v)
{
    bool neg = false;
    uint64_t bits = 0;
    int rc = read_int(r, &neg, &bits);
    if (rc == 0 && !neg && bits > INT64_MAX) {
        return sprig__err(SPRIG_EPROTO, "integer %llu is out of range",
                          (unsigned long long)bits);
    }
    if (rc == 0) {
        *v = (int64_t)bits;
    }
    return rc;
}

int
sprig__mp_read_f64(sprig__mp_rd *r, double *v)
{
    sprig__mp_type t = sprig__mp_peek(r);
    if (t == SPRIG__MP_UINT || t == SPRIG__MP_INT) {
        bool neg;
        uint64_t bits;
        int rc = read_int(r, &neg, &bits);
        *v = neg ? (double)(int64_t)bits : (double)bits;
        return rc;
    }
    if (t != SPRIG__MP_FLOAT) {
        return want(r, "a number");
    }
    bool single = r->p[0] == 0xca;
    r->p++;
    r->left--;
    uint64_t bits = 0;
    int rc = take_be(r, single ? 4 : 8, &bits);
    if (rc == 0 && single) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, 4);
        *v = f;
    } else if (rc == 0) {
        memcpy(v, &bits, 8);
    }
    return rc;
}

/* Length of a str/bin/array/map after its marker; `kind` says which. */
static int
read_len(sprig__mp_rd *r, sprig__mp_type kind, uint64_t *n)
{
    uint8_t b = r->p[0];
    r->p++;
    r->left--;
    switch (kind) {
    case SPRIG__MP_STR:
        if (b >= 0xa0 && b <= 0xbf) {
            *n = b & 0x1f;
            return SPRIG_OK;
        }
        return take_be(r, (size_t)1 << (b - 0xd9), n);
    case SPRIG__MP_BIN: return take_be(r, (size_t)1 << (b - 0xc4), n);
    case SPRIG__MP_ARRAY:
        if (b <= 0x9f) {
            *n = b & 0x0f;
            return SPRIG_OK;
        }
        return take_be(r, b == 0xdc ? 2 : 4, n);
    default: /* map */
        if (b <= 0x8f) {
            *n = b & 0x0f;
            return SPRIG_OK;
        }
        return take_be(r, b == 0xde ? 2 : 4, n);
    }
}

static int
read_blob(sprig__mp_rd *r, sprig__mp_type kind, sprig_bytes *v)
{
    uint64_t n;
    const uint8_t *p = NULL;
    int rc = read_len(r, kind, &n);
    rc = rc ? rc : take(r, (size_t)n, &p);
    if (rc == 0) {
        v->data = p;
        v->len = (size_t)n;
    }
    return rc;
}

int
sprig__mp_read_str(sprig__mp_rd *r, sprig_bytes *v)
{
    if (sprig__mp_peek(r) != SPRIG__MP_STR) {
        return want(r, "a string");
    }
    return read_blob(r, SPRIG__MP_STR, v);
}

int
sprig__mp_read_bin(sprig__mp_rd *r, sprig_bytes *v)
{
    sprig__mp_type t = sprig__mp_peek(r);
    if (t != SPRIG__MP_BIN && t != SPRIG__MP_STR) {
        return want(r, "binary");
    }
    return read_blob(r, t, v);
}

int
sprig__mp_read_array(sprig__mp_rd *r, uint32_t *n)
{
    uint64_t len = 0;
    if (sprig__mp_peek(r) != SPRIG__MP_ARRAY) {
        return want(r, "an array");
    }
    int rc = read_len(r, SPRIG__MP_ARRAY, &len);
    if (rc == 0 && len > r->left) {
        return sprig__err(SPRIG_EPROTO,
                          "array claims %llu elements with "
                          "%zu bytes left",
                          (unsigned long long)len, r->left);
    }
    *n = (uint32_t)len;
    return rc;
}

int
sprig__mp_read_map(sprig__mp_rd *r, uint32_t *n)
{
    uint64_t len = 0;
    if (sprig__mp_peek(r) != SPRIG__MP_MAP) {
        return want(r, "a map");
    }
    int rc = read_len(r, SPRIG__MP_MAP, &len);
    if (rc == 0 && len * 2 > r->left) {
        return sprig__err(SPRIG_EPROTO,
                          "map claims %llu pairs with %zu "
                          "bytes left",
                          (unsigned long long)len, r->left);
    }
    *n = (uint32_t)len;
    return rc;
}

static int skip_depth(sprig__mp_rd *r, int depth);

static int
skip_items(sprig__mp_rd *r, uint64_t n, int depth)
{
    int rc = SPRIG_OK;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        rc = skip_depth(r, depth + 1);
    }
    return rc;
}

static int
skip_depth(sprig__mp_rd *r, int depth)
{
    if (depth > SPRIG__MP_MAX_DEPTH) {
        return sprig__err(SPRIG_EPROTO, "nesting deeper than %d",
                          SPRIG__MP_MAX_DEPTH);
    }
    sprig__mp_type t = sprig__mp_peek(r);
    uint32_t n;
    sprig_bytes b;
    bool bv;
    int64_t iv;
    uint64_t uv = 0, len = 0;
    double dv;
    const uint8_t *p = NULL;
    switch (t) {
    case SPRIG__MP_NIL: return sprig__mp_read_nil(r);
    case SPRIG__MP_BOOL: return sprig__mp_read_bool(r, &bv);
    case SPRIG__MP_UINT: return sprig__mp_read_u64(r, &uv);
    case SPRIG__MP_INT: return sprig__mp_read_i64(r, &iv);
    case SPRIG__MP_FLOAT: return sprig__mp_read_f64(r, &dv);
    case SPRIG__MP_STR:
    case SPRIG__MP_BIN: return read_blob(r, t, &b);
    case SPRIG__MP_ARRAY: {
        int rc = sprig__mp_read_array(r, &n);
        return rc ? rc : skip_items(r, n, depth);
    }
    case SPRIG__MP_MAP: {
        int rc = sprig__mp_read_map(r, &n);
        return rc ? rc : skip_items(r, (uint64_t)n * 2, depth);
    }
    case SPRIG__MP_EXT: {
        uint8_t m = r->p[0];
        r->p++;
        r->left--;
        static const uint8_t fixlen[] = {1, 2, 4, 8, 16};
        int rc = SPRIG_OK;
        if (m >= 0xd4) {
            len = fixlen[m - 0xd4];
        } else {
            rc = take_be(r, (size_t)1 << (m - 0xc7), &len);
        }
        return rc ? rc : take(r, (size_t)len + 1, &p); /* type byte + data */
    }
    default:
        if (r->left == 0) {
            return sprig__err(SPRIG_EPROTO, "message truncated: a value is "
                                            "missing");
        }
        return sprig__err(SPRIG_EPROTO, "malformed MessagePack (byte 0x%02x)",
                          r->p[0]);
    }
}

int
sprig__mp_skip(sprig__mp_rd *r)
{
    return skip_depth(r, 0);
}
