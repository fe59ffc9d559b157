/*
 * fuzz_request.c -- libFuzzer harness aimed straight at the payload
 * decoders of the API table (src/proto/api_codec.c), without the frame
 * around them, so mutations spend themselves on field values: documents,
 * transactions, ranges, logs, schemas.
 *
 * The input is a flags byte, an API name, a NUL, and a payload: bit 0 of
 * the flags says whether the payload is that row's request (as a server's
 * worker decodes it) or its response (as a client decodes it).  Naming
 * the row keeps the corpus meaningful when rows are added; an unknown
 * name picks a row by its length.
 * Checks: nothing crashes; what decoded encodes, decodes again and
 * encodes to the same bytes; a decoded request that a server would run
 * holds only values the engine accepts (names NUL-free, ids and hashes
 * within their limits); no allocation is left live.
 */
#include "proto/api.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_header(const sprig_header_buf *h)
{
    if (h->id_len > SPRIG_ID_MAX) {
        abort();
    }
}

/* Values a decoded struct may hold: the codec's promises to its users. */
static void
check_fields(const sprig__field *fields, size_t n, const void *s)
{
    for (size_t i = 0; i < n; i++) {
        const void *at = (const char *)s + fields[i].offset;
        if ((fields[i].flags & SPRIG__FIELD_OPTIONAL) &&
            !*(const bool *)((const char *)s + fields[i].present)) {
            continue; /* absent: nothing decoded */
        }
        switch (fields[i].type) {
        case SPRIG__F_STR: {
            const char *v = *(char *const *)at;
            if (!v) {
                abort(); /* decoded strings are always set */
            }
            break;
        }
        case SPRIG__F_HEADER: check_header(at); break;
        case SPRIG__F_TXN_RESULT: {
            const sprig_txn_result *r = *(sprig_txn_result *const *)at;
            for (size_t k = 0; r && k < sprig_txn_result_count(r); k++) {
                sprig_header h = sprig_txn_result_header(r, k);
                if (h.id.len > SPRIG_ID_MAX) {
                    abort();
                }
            }
            break;
        }
        case SPRIG__F_DOC_LIST: {
            const sprig_doc_list *l = *(sprig_doc_list *const *)at;
            for (size_t k = 0; l && k < sprig_doc_list_count(l); k++) {
                if (sprig_doc_header(sprig_doc_list_get(l, k)).id.len >
                    SPRIG_ID_MAX) {
                    abort();
                }
            }
            break;
        }
        default: break;
        }
    }
}

static void
encode_or_die(const sprig__field *fields, size_t n, const void *s,
              sprig_buf *out)
{
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, out);
    if (sprig__api_encode(&w, fields, n, s) != SPRIG_OK) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = size ? memchr(data + 1, 0, size - 1) : NULL;
    if (!nul) {
        return 0;
    }
    long live = sprig__alloc_live();
    sprig_bytes name = {data + 1, (size_t)(nul - data - 1)};
    const sprig__api *api = sprig__api_find(name);
    if (!api) {
        api = sprig__api_table[name.len % sprig__api_count];
    }
    bool resp = data[0] & 1;
    size_t off = (size_t)(nul - data) + 1;
    const sprig__field *fields = resp ? api->resp : api->req;
    size_t n = resp ? api->n_resp : api->n_req;
    size_t ssize = resp ? api->resp_size : api->req_size;
    void *s = calloc(1, ssize), *t = calloc(1, ssize);
    if (!s || !t) {
        abort();
    }
    if (sprig__api_decode((sprig_bytes){data + off, size - off}, fields, n,
                          s) == SPRIG_OK) {
        check_fields(fields, n, s);
        sprig_buf a = {0}, b = {0};
        encode_or_die(fields, n, s, &a);
        if (sprig__api_decode(sprig_buf_bytes(&a), fields, n, t) != SPRIG_OK) {
            abort();
        }
        encode_or_die(fields, n, t, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            abort();
        }
        sprig_buf_clear(&a);
        sprig_buf_clear(&b);
    }
    sprig__api_free(fields, n, s);
    sprig__api_free(fields, n, t);
    free(s);
    free(t);
    if (sprig__alloc_live() != live) {
        abort();
    }
    return 0;
}
