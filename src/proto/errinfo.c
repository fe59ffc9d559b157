/*
 * errinfo.c -- the structured detail of a failure on the wire (src/proto,
 * sans-I/O).
 *
 * An error frame's `detail` is nil or a map.  For rows answered on error it
 * holds the row's response fields; whenever the failure has a structured
 * detail (sprig_error_info(), kind not NONE) it also holds the field
 * `error_info`:
 *
 *   [kind uint, database str, schema str, collection str, view str,
 *    ns str, key bin, id bin, header [id bin, revision uint, hash bin(16)]
 *    or nil]
 *
 * Names are written as UTF-8 (a byte that is not is sent as U+FFFD, as in
 * messages); the key-value key is bytes.
 * The server builds the map (sprig__detail_build) and the client reads the
 * structured detail back (sprig__detail_errinfo), so sprig_error_info() on
 * the caller's thread says what it would have said locally.
 */
#include "proto/api.h"
#include "proto/envelope.h"

#define ERRINFO_FIELD "error_info"
#define ERRINFO_N 9

static void
put_header(sprig__mp_wr *w, const sprig__errinfo *e)
{
    if (!e->has_header) {
        sprig__mp_nil(w);
        return;
    }
    sprig__mp_array(w, 3);
    sprig__mp_bin(w, (sprig_bytes){e->header.id, e->header.id_len});
    sprig__mp_u64(w, e->header.revision);
    sprig__mp_bin(w, (sprig_bytes){e->header.hash, 16});
}

void
sprig__errinfo_encode(sprig__mp_wr *w, const sprig__errinfo *e)
{
    sprig__mp_array(w, ERRINFO_N);
    sprig__mp_u64(w, (uint64_t)e->kind);
    sprig__mp_str_utf8(w, e->database);
    sprig__mp_str_utf8(w, e->schema);
    sprig__mp_str_utf8(w, e->collection);
    sprig__mp_str_utf8(w, e->view);
    sprig__mp_str_utf8(w, e->ns);
    sprig__mp_bin(w, (sprig_bytes){e->key, e->key_len});
    sprig__mp_bin(w, (sprig_bytes){e->id, e->id_len});
    put_header(w, e);
}

/* Read a str into `dst` (room `cap`, NUL-terminated; truncated). */
static int
get_str(sprig__mp_rd *r, char *dst, size_t cap)
{
    sprig_bytes v;
    int rc = sprig__mp_read_str(r, &v);
    size_t n = rc ? 0 : (v.len < cap - 1 ? v.len : cap - 1);
    if (n) {
        memcpy(dst, v.data, n);
    }
    dst[n] = 0;
    return rc;
}

static int
get_bin(sprig__mp_rd *r, uint8_t *dst, size_t cap, uint32_t *len)
{
    sprig_bytes v;
    int rc = sprig__mp_read_bin(r, &v);
    size_t n = rc ? 0 : (v.len < cap ? v.len : cap);
    if (n) {
        memcpy(dst, v.data, n);
    }
    *len = (uint32_t)n;
    return rc;
}

static int
get_header(sprig__mp_rd *r, sprig__errinfo *e)
{
    e->has_header = false;
    if (sprig__mp_peek(r) == SPRIG__MP_NIL) {
        return sprig__mp_read_nil(r);
    }
    uint32_t n = 0, hl = 0;
    uint8_t hash[SPRIG_ID_MAX];
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 3) {
        return sprig__err(SPRIG_EPROTO,
                          "an error_info header has %u "
                          "elements, not 3",
                          n);
    }
    rc = rc ? rc
            : get_bin(r, e->header.id, sizeof e->header.id, &e->header.id_len);
    rc = rc ? rc : sprig__mp_read_u64(r, &e->header.revision);
    rc = rc ? rc : get_bin(r, hash, sizeof hash, &hl);
    if (rc == 0 && hl != 16) {
        return sprig__err(SPRIG_EPROTO, "an error_info hash is not 16 bytes");
    }
    if (rc == 0) {
        memcpy(e->header.hash, hash, 16);
        e->has_header = true;
    }
    return rc;
}

int
sprig__errinfo_decode(sprig__mp_rd *r, sprig__errinfo *e)
{
    uint32_t n = 0;
    uint64_t kind = 0;
    memset(e, 0, sizeof *e);
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != ERRINFO_N) {
        return sprig__err(SPRIG_EPROTO, "error_info has %u elements, not %d", n,
                          ERRINFO_N);
    }
    rc = rc ? rc : sprig__mp_read_u64(r, &kind);
    rc = rc ? rc : get_str(r, e->database, sizeof e->database);
    rc = rc ? rc : get_str(r, e->schema, sizeof e->schema);
    rc = rc ? rc : get_str(r, e->collection, sizeof e->collection);
    rc = rc ? rc : get_str(r, e->view, sizeof e->view);
    rc = rc ? rc : get_str(r, e->ns, sizeof e->ns);
    rc = rc ? rc : get_bin(r, e->key, sizeof e->key, &e->key_len);
    rc = rc ? rc : get_bin(r, e->id, sizeof e->id, &e->id_len);
    rc = rc ? rc : get_header(r, e);
    if (rc == 0 && kind > SPRIG_ERROR_KIND_KEY) {
        rc = sprig__err(SPRIG_EPROTO, "error_info kind %llu is unknown",
                        (unsigned long long)kind);
    }
    e->kind = rc ? SPRIG_ERROR_KIND_NONE : (int)kind;
    return rc;
}

int
sprig__detail_build(sprig_buf *out, sprig_bytes resp_map,
                    const sprig__errinfo *e)
{
    sprig__mp_rd r;
    uint32_t n = 0;
    out->len = 0;
    if (resp_map.len) {
        sprig__mp_rd_init(&r, resp_map);
        int rc = sprig__mp_read_map(&r, &n);
        if (rc) {
            return rc;
        }
    }
    bool with_info = e && e->kind != SPRIG_ERROR_KIND_NONE;
    if (n == 0 && !with_info) {
        return SPRIG_OK; /* nothing to carry: nil */
    }
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, out);
    sprig__mp_map(&w, n + with_info);
    if (n) {
        sprig__mp_raw(&w, (sprig_bytes){r.p, r.left});
    }
    if (with_info) {
        sprig__mp_str(&w, ERRINFO_FIELD);
        sprig__errinfo_encode(&w, e);
    }
    return sprig__mp_wr_status(&w);
}

int
sprig__detail_errinfo(sprig_bytes detail, sprig__errinfo *e, bool *has_resp)
{
    sprig__mp_rd r;
    uint32_t n = 0;
    memset(e, 0, sizeof *e);
    *has_resp = false;
    if (!detail.len) {
        return SPRIG_OK;
    }
    sprig__mp_rd_init(&r, detail);
    if (sprig__mp_peek(&r) != SPRIG__MP_MAP) {
        return SPRIG_OK; /* nil: nothing */
    }
    int rc = sprig__mp_read_map(&r, &n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        sprig_bytes k;
        rc = sprig__mp_read_str(&r, &k);
        bool info = rc == 0 && k.len == strlen(ERRINFO_FIELD) &&
                    memcmp(k.data, ERRINFO_FIELD, k.len) == 0;
        *has_resp |= rc == 0 && !info;
        rc = rc ? rc : info ? sprig__errinfo_decode(&r, e) : sprig__mp_skip(&r);
    }
    return rc;
}
