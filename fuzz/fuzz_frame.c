/*
 * fuzz_frame.c -- libFuzzer harness for the frame decoder
 * (src/proto/envelope.c) and the payload decoders of the API table
 * (src/proto/api_codec.c), fed whole WebSocket messages as a server and a
 * client receive them.
 *
 * The input is one message.  If it decodes as a frame:
 *  - every borrowed field lies inside the input;
 *  - a request whose api is a known row has its payload decoded into that
 *    row's request struct, as the server's workers do;
 *  - a response has its payload decoded as every row's response, and an
 *    error its detail as every answer-on-error row's response, as a
 *    client does (it knows the row from its call, the frame does not);
 *  - whatever decoded is encoded again, and that encoding must decode and
 *    encode to the same bytes (a canonical form: nothing decoded is lost
 *    or invented on the way back);
 *  - the frame itself re-encodes to a frame with the same fields.
 * Then no allocation made through Sprig's gateway is left live.
 */
#include "proto/api.h"
#include "proto/envelope.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
within(sprig_bytes b, const uint8_t *data, size_t size)
{
    const uint8_t *p = b.data;
    return b.len == 0 || (p >= data && b.len <= size && p - data >= 0 &&
                          (size_t)(p - data) <= size - b.len);
}

static bool
same(sprig_bytes a, sprig_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* Encode `s` (decoded with `fields`), decode that, encode again: both
 * encodings must succeed and be identical. */
static void
round_trip(const sprig__field *fields, size_t n, size_t struct_size,
           const void *s)
{
    sprig_buf a = {0}, b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &a);
    if (sprig__api_encode(&w, fields, n, s) != SPRIG_OK) {
        abort();
    }
    void *t = calloc(1, struct_size);
    if (!t) {
        abort();
    }
    if (sprig__api_decode(sprig_buf_bytes(&a), fields, n, t) != SPRIG_OK) {
        abort(); /* what we encode, we must read back */
    }
    sprig__mp_wr_init(&w, &b);
    if (sprig__api_encode(&w, fields, n, t) != SPRIG_OK) {
        abort();
    }
    if (!same(sprig_buf_bytes(&a), sprig_buf_bytes(&b))) {
        abort();
    }
    sprig__api_free(fields, n, t);
    free(t);
    sprig_buf_clear(&a);
    sprig_buf_clear(&b);
}

/* Decode `payload` as `fields`; on success, check the round trip. */
static void
try_decode(sprig_bytes payload, const sprig__field *fields, size_t n,
           size_t struct_size)
{
    void *s = calloc(1, struct_size);
    if (!s) {
        abort();
    }
    if (sprig__api_decode(payload, fields, n, s) == SPRIG_OK) {
        round_trip(fields, n, struct_size, s);
    }
    sprig__api_free(fields, n, s);
    free(s);
}

/* Encode the frame's envelope again and decode it: same fields. */
static void
reencode(const sprig__frame *f)
{
    sprig_buf buf = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &buf);
    char api[256];
    size_t alen = f->api.len < sizeof api - 1 ? f->api.len : sizeof api - 1;
    memcpy(api, f->api.data ? f->api.data : "", alen);
    api[alen] = 0;
    if (f->kind == SPRIG__FRAME_REQUEST || f->kind == SPRIG__FRAME_PUSH) {
        if (alen != f->api.len || memchr(api, 0, alen)) {
            return; /* the encoders take C strings */
        }
    }
    switch (f->kind) {
    case SPRIG__FRAME_REQUEST:
        sprig__frame_request(&w, f->id, f->has_session ? &f->session : NULL,
                             api);
        sprig__mp_raw(&w, f->payload);
        break;
    case SPRIG__FRAME_RESPONSE:
        sprig__frame_response(&w, f->id);
        sprig__mp_raw(&w, f->payload);
        break;
    case SPRIG__FRAME_PUSH:
        sprig__frame_push(&w, api);
        sprig__mp_raw(&w, f->payload);
        break;
    case SPRIG__FRAME_ERROR: {
        char *msg = malloc(f->message.len + 1);
        if (!msg) {
            abort();
        }
        memcpy(msg, f->message.data ? f->message.data : "", f->message.len);
        msg[f->message.len] = 0;
        bool nil_detail =
            f->detail.len == 1 && ((const uint8_t *)f->detail.data)[0] == 0xc0;
        sprig__frame_error(&w, f->id, f->code, msg,
                           nil_detail ? (sprig_bytes){NULL, 0} : f->detail);
        free(msg);
        break;
    }
    }
    sprig__frame g;
    if (sprig__mp_wr_status(&w) != SPRIG_OK ||
        sprig__frame_decode(sprig_buf_bytes(&buf), &g) != SPRIG_OK) {
        abort();
    }
    if (g.kind != f->kind || g.id != f->id || g.code != f->code ||
        g.has_session != f->has_session || g.session != f->session ||
        !same(g.api, f->api) || !same(g.payload, f->payload) ||
        !same(g.detail, f->detail)) {
        abort();
    }
    /* an error message may come back with invalid UTF-8 replaced, and cut
     * at a NUL: never longer than three bytes per byte */
    if (f->kind == SPRIG__FRAME_ERROR && g.message.len > 3 * f->message.len) {
        abort();
    }
    sprig_buf_clear(&buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long live = sprig__alloc_live();
    sprig__frame f;
    if (sprig__frame_decode((sprig_bytes){data, size}, &f) != SPRIG_OK) {
        if (sprig__alloc_live() != live) {
            abort();
        }
        return 0;
    }
    if (!within(f.api, data, size) || !within(f.payload, data, size) ||
        !within(f.message, data, size) || !within(f.detail, data, size)) {
        abort();
    }
    if (f.kind == SPRIG__FRAME_REQUEST) {
        const sprig__api *api = sprig__api_find(f.api);
        if (api) {
            try_decode(f.payload, api->req, api->n_req, api->req_size);
        }
    } else if (f.kind == SPRIG__FRAME_RESPONSE) {
        for (size_t i = 0; i < sprig__api_count; i++) {
            const sprig__api *api = sprig__api_table[i];
            try_decode(f.payload, api->resp, api->n_resp, api->resp_size);
        }
    } else if (f.kind == SPRIG__FRAME_ERROR) {
        for (size_t i = 0; i < sprig__api_count; i++) {
            const sprig__api *api = sprig__api_table[i];
            if (api->resp_on_error) {
                try_decode(f.detail, api->resp, api->n_resp, api->resp_size);
            }
        }
    }
    reencode(&f);
    if (sprig__alloc_live() != live) {
        abort();
    }
    return 0;
}
