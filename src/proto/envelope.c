/*
 * envelope.c -- encoding and decoding the frames of protocol sprig/1 (the
 * layout is in envelope.h and docs/protocol.md).  Decoding never trusts
 * the input: every field is type-checked and the frame must end exactly
 * where its array does.
 */
#include "proto/envelope.h"

/* The raw bytes of the next value. */
static int
raw_value(sprig__mp_rd *r, sprig_bytes *out)
{
    const uint8_t *start = r->p;
    int rc = sprig__mp_skip(r);
    if (rc == 0) {
        out->data = start;
        out->len = (size_t)(r->p - start);
    }
    return rc;
}

static int
read_id(sprig__mp_rd *r, uint32_t *id)
{
    uint64_t v;
    *id = 0;
    int rc = sprig__mp_read_u64(r, &v);
    if (rc == 0 && v > UINT32_MAX) {
        return sprig__err(SPRIG_EPROTO, "request id %llu is over 2^32-1",
                          (unsigned long long)v);
    }
    *id = rc ? 0 : (uint32_t)v;
    return rc;
}

/* A request's id is 1 to 2^32-1: id 0 is what an error frame carries when
 * it answers no request in particular, so a client could not tell the
 * answer to a request of id 0 from one to garbage. */
static int
decode_request(sprig__mp_rd *r, uint32_t n, sprig__frame *f)
{
    if (n != 5) {
        return sprig__err(SPRIG_EPROTO,
                          "a request frame has 5 elements, "
                          "not %u",
                          n);
    }
    int rc = read_id(r, &f->id);
    if (rc == 0 && f->id == 0) {
        rc = sprig__err(SPRIG_EPROTO, "request id 0 is reserved: "
                                      "ids are 1 to 2^32-1");
    }
    if (rc == 0 && sprig__mp_peek(r) == SPRIG__MP_NIL) {
        rc = sprig__mp_read_nil(r);
    } else if (rc == 0) {
        f->has_session = true;
        rc = sprig__mp_read_u64(r, &f->session);
    }
    rc = rc ? rc : sprig__mp_read_str(r, &f->api);
    return rc ? rc : raw_value(r, &f->payload);
}

static int
decode_error(sprig__mp_rd *r, uint32_t n, sprig__frame *f)
{
    if (n != 5) {
        return sprig__err(SPRIG_EPROTO,
                          "an error frame has 5 elements, "
                          "not %u",
                          n);
    }
    int64_t code = 0;
    int rc = read_id(r, &f->id);
    rc = rc ? rc : sprig__mp_read_i64(r, &code);
    bool app = code <= -30000 && code >= -39999; /* custom APIs' own */
    if (rc == 0 && (code >= 0 || (code < -1000 && !app))) {
        rc = sprig__err(SPRIG_EPROTO, "error code %lld is not an error",
                        (long long)code);
    }
    f->code = (int)code;
    rc = rc ? rc : sprig__mp_read_str(r, &f->message);
    return rc ? rc : raw_value(r, &f->detail);
}

static int
decode_body(sprig__mp_rd *r, uint32_t n, sprig__frame *f)
{
    switch (f->kind) {
    case SPRIG__FRAME_REQUEST: return decode_request(r, n, f);
    case SPRIG__FRAME_ERROR: return decode_error(r, n, f);
    case SPRIG__FRAME_RESPONSE: {
        if (n != 3) {
            return sprig__err(SPRIG_EPROTO,
                              "a response frame has 3 "
                              "elements, not %u",
                              n);
        }
        int rc = read_id(r, &f->id);
        return rc ? rc : raw_value(r, &f->payload);
    }
    default: { /* push */
        if (n != 3) {
            return sprig__err(SPRIG_EPROTO,
                              "a push frame has 3 elements, "
                              "not %u",
                              n);
        }
        int rc = sprig__mp_read_str(r, &f->api);
        return rc ? rc : raw_value(r, &f->payload);
    }
    }
}

int
sprig__frame_decode(sprig_bytes in, sprig__frame *f)
{
    sprig__mp_rd r;
    uint32_t n;
    uint64_t kind = 0;
    memset(f, 0, sizeof *f);
    sprig__mp_rd_init(&r, in);
    int rc = sprig__mp_read_array(&r, &n);
    if (rc == 0 && n < 3) {
        rc = sprig__err(SPRIG_EPROTO, "a frame has at least 3 elements");
    }
    rc = rc ? rc : sprig__mp_read_u64(&r, &kind);
    if (rc == 0 && kind > SPRIG__FRAME_PUSH) {
        rc = sprig__err(SPRIG_EPROTO, "unknown frame kind %llu",
                        (unsigned long long)kind);
    }
    f->kind = (sprig__frame_kind)kind;
    rc = rc ? rc : decode_body(&r, n, f);
    if (rc == 0 && r.left != 0) {
        rc = sprig__err(SPRIG_EPROTO, "%zu bytes after the frame", r.left);
    }
    if (rc) {
        f->id = 0; /* not attributable to a request */
    }
    return rc;
}

void
sprig__frame_request(sprig__mp_wr *w, uint32_t id, const uint64_t *session,
                     const char *api)
{
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, SPRIG__FRAME_REQUEST);
    sprig__mp_u64(w, id);
    if (session) {
        sprig__mp_u64(w, *session);
    } else {
        sprig__mp_nil(w);
    }
    sprig__mp_str(w, api);
}

void
sprig__frame_response(sprig__mp_wr *w, uint32_t id)
{
    sprig__mp_array(w, 3);
    sprig__mp_u64(w, SPRIG__FRAME_RESPONSE);
    sprig__mp_u64(w, id);
}

void
sprig__frame_push(sprig__mp_wr *w, const char *api)
{
    sprig__mp_array(w, 3);
    sprig__mp_u64(w, SPRIG__FRAME_PUSH);
    sprig__mp_str(w, api);
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t b = p[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (b < 0x80) {
        return 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        lo = b == 0xe0 ? 0xa0 : 0x80;
        hi = b == 0xed ? 0x9f : 0xbf;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        lo = b == 0xf0 ? 0x90 : 0x80;
        hi = b == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

/* A message is a MessagePack str, so UTF-8: it may quote what a peer sent
 * (an unknown API name, a collection name), so each byte that does not
 * begin a well-formed sequence is written as U+FFFD. */
void
sprig__mp_str_utf8(sprig__mp_wr *w, const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s), out = 0, k;
    for (size_t i = 0; i < n; i += k ? k : 1) {
        k = utf8_seq(p + i, n - i);
        out += k ? k : 3;
    }
    if (out == n) {
        sprig__mp_strn(w, s, n);
        return;
    }
    msgpack_pack_str(&w->pk, out);
    for (size_t i = 0; i < n; i += k ? k : 1) {
        k = utf8_seq(p + i, n - i);
        msgpack_pack_str_body(&w->pk, k ? s + i : "\xef\xbf\xbd", k ? k : 3);
    }
}

void
sprig__frame_error(sprig__mp_wr *w, uint32_t id, int code, const char *message,
                   sprig_bytes detail)
{
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, SPRIG__FRAME_ERROR);
    sprig__mp_u64(w, id);
    sprig__mp_i64(w, code);
    sprig__mp_str_utf8(w, message);
    if (detail.len) {
        sprig__mp_raw(w, detail);
    } else {
        sprig__mp_nil(w);
    }
}
