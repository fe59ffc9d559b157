/*
 * buf.c -- borrowed bytes, owned buffers and a bounds-checked reader.
 *
 * The reader (sprig__rd) is what every decoder of stored or received bytes
 * uses, so running out of input is always SPRIG_ECORRUPT, never a crash.
 */
#include "core.h"

sprig_bytes
sprig_str(const char *s)
{
    sprig_bytes b = {s, s ? strlen(s) : 0};
    return b;
}

sprig_bytes
sprig_buf_bytes(const sprig_buf *b)
{
    sprig_bytes r = {b->data, b->len};
    return r;
}

int
sprig__buf_reserve(sprig_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) {
        return SPRIG_OK;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            return sprig__err(SPRIG_ENOMEM, "buffer too large");
        }
        cap *= 2;
    }
    void *p = sprig__realloc(b->data, cap);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory growing a buffer");
    }
    b->data = p;
    b->cap = cap;
    return SPRIG_OK;
}

int
sprig_buf_append(sprig_buf *b, const void *data, size_t len)
{
    int rc = sprig__buf_reserve(b, len);
    if (rc) {
        return rc;
    }
    if (len) {
        memcpy((uint8_t *)b->data + b->len, data, len);
    }
    b->len += len;
    return SPRIG_OK;
}

void
sprig_buf_clear(sprig_buf *b)
{
    if (b) {
        sprig__free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
    }
}

int
sprig__buf_put_u64(sprig_buf *b, uint64_t v)
{
    uint8_t tmp[8];
    sprig__put_u64be(tmp, v);
    return sprig_buf_append(b, tmp, 8);
}

int
sprig__buf_put_u32(sprig_buf *b, uint32_t v)
{
    uint8_t tmp[4];
    sprig__put_u32be(tmp, v);
    return sprig_buf_append(b, tmp, 4);
}

int
sprig__buf_put_u8(sprig_buf *b, uint8_t v)
{
    return sprig_buf_append(b, &v, 1);
}

int
sprig__bytes_cmp(sprig_bytes a, sprig_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c) {
        return c;
    }
    return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

int
sprig__rd_bytes(sprig__rd *r, size_t n, const uint8_t **p)
{
    if (r->left < n) {
        return sprig__err(SPRIG_ECORRUPT,
                          "record truncated: %zu bytes "
                          "wanted, %zu left",
                          n, r->left);
    }
    *p = r->p;
    r->p += n;
    r->left -= n;
    return SPRIG_OK;
}

int
sprig__rd_u64(sprig__rd *r, uint64_t *v)
{
    const uint8_t *p = NULL;
    int rc = sprig__rd_bytes(r, 8, &p);
    if (rc == 0) {
        *v = sprig__get_u64be(p);
    }
    return rc;
}

int
sprig__rd_u32(sprig__rd *r, uint32_t *v)
{
    const uint8_t *p = NULL;
    int rc = sprig__rd_bytes(r, 4, &p);
    if (rc == 0) {
        *v = sprig__get_u32be(p);
    }
    return rc;
}

int
sprig__rd_u8(sprig__rd *r, uint8_t *v)
{
    const uint8_t *p = NULL;
    int rc = sprig__rd_bytes(r, 1, &p);
    if (rc == 0) {
        *v = *p;
    }
    return rc;
}

/* ---- resource-name parts ------------------------------------------------ */

static bool
name_safe_byte(uint8_t b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
           (b >= '0' && b <= '9') || b == '_' || b == '-';
}

int
sprig__name_segment(sprig_buf *out, sprig_bytes seg, bool first)
{
    static const char hex[] = "0123456789ABCDEF";
    if (sprig__buf_reserve(out, seg.len * 3 + 2) != 0) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    uint8_t *base = out->data, *p = base + out->len;
    if (!first) {
        *p++ = '.';
    }
    for (size_t i = 0; i < seg.len; i++) {
        uint8_t b = ((const uint8_t *)seg.data)[i];
        if (name_safe_byte(b)) {
            *p++ = b;
        } else {
            *p++ = '%';
            *p++ = (uint8_t)hex[b >> 4];
            *p++ = (uint8_t)hex[b & 15];
        }
    }
    *p = 0; /* a C string (not counted in len) */
    out->len = (size_t)(p - base);
    return SPRIG_OK;
}
