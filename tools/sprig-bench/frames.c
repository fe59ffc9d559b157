/*
 * frames.c -- the requests sprig-bench sends and the checks its answers
 * pass.  Each operation's request is encoded once, through the API rows of
 * src/proto (sprig__api_encode: the same field lists the server decodes
 * with, so the tool cannot drift from the protocol), with placeholder id,
 * key and value; the offsets of those placeholders are found in the
 * encoded frame, and each request then only patches them in place: 4
 * bytes of id, 12 digits of key, 8 bytes of document id, 12 digits of the
 * value.  Loading (OP_DB_LOAD) encodes each batch afresh: it is untimed.
 *
 * Answers are read with the allocation-free MessagePack cursor of
 * src/proto/mp.h: the field the operation answers with is found in the
 * response map and compared with what the request must have produced.
 */
#include "bench.h"

#include "proto/api.h"
#include "proto/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PH_ITEM 999999999999ull        /* placeholder item: 12 nines */
#define PH_DOCID 0xa5a5a5a5a5a5a5a5ull /* placeholder document id */
#define PH_ID 0xffffffffu              /* placeholder request id (uint32) */

static const char *const op_names[OP_COUNT] = {"kv.set", "kv.get", "db.get",
                                               "db.insert", "db.load"};

const char *
bench_op_name(bench_op op)
{
    return op < OP_COUNT ? op_names[op] : "?";
}

int
bench_op_parse(const char *s)
{
    for (int i = 0; i < OP_DB_LOAD; i++) {
        if (strcmp(s, op_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* The 12 decimal digits of k (mod 10^12). */
static void
digits12(uint64_t k, uint8_t out[12])
{
    k %= 1000000000000ull;
    for (int i = 11; i >= 0; i--) {
        out[i] = (uint8_t)('0' + k % 10);
        k /= 10;
    }
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* value(k): a small JSON document {"k":"<12 digits>","p":"xxx..."} of
 * exactly `len` bytes when len >= 27 (so documents are valid JSON), else
 * the 12 digits repeated. */
#define VALUE_JSON_MIN 27

void
bench_value(uint64_t k, uint32_t len, uint8_t *out)
{
    uint8_t d[12];
    digits12(k, d);
    if (len < VALUE_JSON_MIN) {
        for (uint32_t i = 0; i < len; i++) {
            out[i] = d[i % 12];
        }
        return;
    }
    memcpy(out, "{\"k\":\"", 6);
    memcpy(out + 6, d, 12);
    memcpy(out + 18, "\",\"p\":\"", 7);
    memset(out + 25, 'x', len - VALUE_JSON_MIN);
    memcpy(out + len - 2, "\"}", 2);
}

/* Where `needle` starts in `hay`, or SIZE_MAX. */
static size_t
find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    const uint8_t *p = memmem(hay, n, needle, m);
    return p ? (size_t)(p - hay) : SIZE_MAX;
}

/* The offset of a bin value (its MessagePack header included) in the
 * frame, plus the header's length: where its bytes start. */
size_t
frame_find_bin(const sprig_buf *frame, sprig_bytes v)
{
    sprig_buf enc = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &enc);
    sprig__mp_bin(&w, v);
    size_t at = SIZE_MAX;
    if (sprig__mp_wr_status(&w) == 0) {
        at = find(frame->data, frame->len, enc.data, enc.len);
        if (at != SIZE_MAX) {
            at += enc.len - v.len;
        }
    }
    sprig_buf_clear(&enc);
    return at;
}

static void
key_of(uint64_t k, char out[17])
{
    uint8_t d[12];
    digits12(k, d);
    memcpy(out, "key:", 4);
    memcpy(out + 4, d, 12);
    out[16] = 0;
}

/* Encode one request frame of `api` with the request struct `req`. */
static int
encode(sprig_buf *b, const sprig__api *api, const void *req, uint32_t id)
{
    sprig__mp_wr w;
    b->len = 0;
    sprig__mp_wr_init(&w, b);
    sprig__frame_request(&w, id, NULL, api->name);
    return sprig__api_encode(&w, api->req, api->n_req, req);
}

int
frame_login(sprig_buf *b, const bench_cfg *cfg)
{
    sprig__auth_password_req r = {(char *)cfg->user, (char *)cfg->password};
    if (encode(b, &sprig__api_auth_password, &r, BENCH_LOGIN_ID) != 0) {
        fprintf(stderr, "sprig-bench: cannot encode the login: %s\n",
                sprig_errmsg());
        return -1;
    }
    return 0;
}

/* A db.apply of LOAD_BATCH overwrites: documents k*B+1 ... (k+1)*B, those
 * of them within the keyspace. */
static int
encode_load(sprig_buf *b, uint64_t batch, uint32_t id, const bench_cfg *cfg)
{
    sprig_txn *t;
    uint8_t idb[8], val[65536];
    uint32_t len = cfg->datasize < sizeof val ? cfg->datasize : sizeof val;
    int rc = sprig_txn_new(&t);
    for (uint64_t i = 0; rc == 0 && i < LOAD_BATCH; i++) {
        uint64_t k = batch * LOAD_BATCH + i + 1;
        if (k > cfg->keyspace) {
            break;
        }
        put_be(idb, k, 8);
        bench_value(k, len, val);
        rc = sprig_txn_overwrite(t, cfg->collection, (sprig_bytes){idb, 8},
                                 (sprig_bytes){val, len});
    }
    sprig__apply_req req = {(char *)cfg->db, t};
    rc = rc ? rc : encode(b, &sprig__api_apply, &req, id);
    sprig_txn_free(t);
    return rc;
}

int
frame_tpl_init(frame_tpl *t, bench_op op, const bench_cfg *cfg)
{
    memset(t, 0, sizeof *t);
    t->op = op;
    t->key_off = t->docid_off = t->val_off = SIZE_MAX;
    sprig_buf b = {0};
    char key[17];
    uint8_t idb[8];
    uint8_t *val = calloc(1, cfg->datasize ? cfg->datasize : 1);
    sprig_bytes v = {val, cfg->datasize};
    sprig_txn *txn = NULL;
    int rc = val ? 0 : -1;
    key_of(PH_ITEM, key);
    put_be(idb, PH_DOCID, 8);
    if (val) {
        bench_value(PH_ITEM, cfg->datasize, val);
    }
    if (rc == 0 && op == OP_KV_SET) {
        sprig__kv_set_req r = {0};
        r.db = (char *)cfg->db;
        r.ns = (char *)cfg->ns;
        r.key = key;
        r.value = sprig_value_of_bytes(v);
        rc = encode(&b, &sprig__api_kv_set, &r, PH_ID);
    } else if (rc == 0 && op == OP_KV_GET) {
        sprig__kv_get_req r = {(char *)cfg->db, (char *)cfg->ns, key, false};
        rc = encode(&b, &sprig__api_kv_get, &r, PH_ID);
    } else if (rc == 0 && op == OP_DB_GET) {
        sprig__get_req r = {(char *)cfg->db, (char *)cfg->collection,
                            (sprig_bytes){idb, 8}};
        rc = encode(&b, &sprig__api_get, &r, PH_ID);
    } else if (rc == 0 && op == OP_DB_INSERT) {
        rc = sprig_txn_new(&txn);
        rc = rc ? rc : sprig_txn_insert(txn, cfg->collection, NULL, v);
        sprig__apply_req r = {(char *)cfg->db, txn};
        rc = rc ? rc : encode(&b, &sprig__api_apply, &r, PH_ID);
    } else if (rc == 0) {
        rc = encode_load(&b, 0, PH_ID, cfg);
    }
    sprig_txn_free(txn);
    if (rc != 0) {
        fprintf(stderr, "sprig-bench: cannot encode %s: %s\n",
                bench_op_name(op), sprig_errmsg());
        free(val);
        sprig_buf_clear(&b);
        return -1;
    }
    const uint8_t *p = b.data;
    /* [0x95, 0x00, 0xce, id x4, ...]: the id as a full uint32 */
    if (b.len < 7 || p[0] != 0x95 || p[1] != 0x00 || p[2] != 0xce) {
        fprintf(stderr, "sprig-bench: unexpected frame layout\n");
        free(val);
        sprig_buf_clear(&b);
        return -1;
    }
    t->id_off = 3;
    if (op == OP_KV_SET || op == OP_KV_GET) {
        size_t at = find(p, b.len, key, 16);
        t->key_off = at == SIZE_MAX ? at : at + 4;
    }
    if (op == OP_DB_GET) {
        t->docid_off = frame_find_bin(&b, (sprig_bytes){idb, 8});
    }
    if (op == OP_KV_SET || op == OP_DB_INSERT) {
        t->val_off = frame_find_bin(&b, v);
    }
    free(val);
    bool lost = (op == OP_KV_SET || op == OP_KV_GET) && t->key_off == SIZE_MAX;
    lost = lost || (op == OP_DB_GET && t->docid_off == SIZE_MAX);
    lost = lost ||
           ((op == OP_KV_SET || op == OP_DB_INSERT) && t->val_off == SIZE_MAX);
    if (lost) {
        fprintf(stderr, "sprig-bench: placeholder not found in %s frame\n",
                bench_op_name(op));
        sprig_buf_clear(&b);
        return -1;
    }
    t->buf = b;
    return 0;
}

void
frame_tpl_free(frame_tpl *t)
{
    sprig_buf_clear(&t->buf);
}

void
frame_tpl_patch(frame_tpl *t, uint32_t id, uint64_t k, const bench_cfg *cfg)
{
    uint8_t *p;
    if (t->op == OP_DB_LOAD) {
        /* on failure the frame stays the previous batch's: the answer's
         * check still passes, the count of documents would not */
        (void)encode_load(&t->buf, k, PH_ID, cfg);
        p = t->buf.data;
        put_be(p + t->id_off, id, 4);
        return;
    }
    p = t->buf.data;
    put_be(p + t->id_off, id, 4);
    if (t->key_off != SIZE_MAX) {
        digits12(k, p + t->key_off);
    }
    if (t->docid_off != SIZE_MAX) {
        put_be(p + t->docid_off, k, 8);
    }
    if (t->val_off != SIZE_MAX) {
        if (cfg->datasize >= VALUE_JSON_MIN) {
            digits12(k, p + t->val_off + 6);
        } else {
            bench_value(k, cfg->datasize, p + t->val_off);
        }
    }
}

/* ---- checking answers ---------------------------------------------------- */

int
frame_field(const uint8_t *payload, size_t len, const char *name,
            sprig__mp_rd *r)
{
    uint32_t n;
    size_t nl = strlen(name);
    sprig__mp_rd_init(r, (sprig_bytes){payload, len});
    if (sprig__mp_read_map(r, &n) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        sprig_bytes k;
        if (sprig__mp_read_str(r, &k) != 0) {
            return -1;
        }
        if (k.len == nl && memcmp(k.data, name, nl) == 0) {
            return 0;
        }
        if (sprig__mp_skip(r) != 0) {
            return -1;
        }
    }
    return -1;
}

#define FAIL(...)                                                              \
    do {                                                                       \
        snprintf(why, why_len, __VA_ARGS__);                                   \
        return -1;                                                             \
    } while (0)

static int
same_value(uint64_t k, sprig_bytes got, const bench_cfg *cfg, uint8_t *scratch,
           char *why, size_t why_len, const char *what)
{
    bench_value(k, cfg->datasize, scratch);
    if (got.len != cfg->datasize || memcmp(got.data, scratch, got.len) != 0) {
        FAIL("%s of item %llu: %zu bytes, not the %u expected", what,
             (unsigned long long)k, got.len, cfg->datasize);
    }
    return 0;
}

static int
check_txn_result(sprig__mp_rd *r, char *why, size_t why_len)
{
    uint32_t n;
    uint64_t txid;
    int64_t failed, err;
    if (sprig__mp_read_array(r, &n) != 0 || n != 5 ||
        sprig__mp_read_u64(r, &txid) != 0 ||
        sprig__mp_read_i64(r, &failed) != 0 ||
        sprig__mp_read_i64(r, &err) != 0) {
        FAIL("malformed transaction result");
    }
    if (failed != -1 || err != 0) {
        FAIL("transaction failed at operation %lld (error %lld)",
             (long long)failed, (long long)err);
    }
    return 0;
}

int
frame_check(bench_op op, uint64_t k, const uint8_t *payload, size_t len,
            const bench_cfg *cfg, uint8_t *scratch, char *why, size_t why_len)
{
    sprig__mp_rd r;
    uint32_t n;
    uint64_t u;
    sprig_bytes b;
    switch (op) {
    case OP_KV_SET:
        if (frame_field(payload, len, "status", &r) != 0 ||
            sprig__mp_read_u64(&r, &u) != 0) {
            FAIL("kv.set: no status in the answer");
        }
        if (u != SPRIG_KV_INSERTED && u != SPRIG_KV_UPDATED) {
            FAIL("kv.set: status %llu, not inserted or updated",
                 (unsigned long long)u);
        }
        return 0;
    case OP_KV_GET:
        if (frame_field(payload, len, "value", &r) != 0 ||
            sprig__mp_read_array(&r, &n) != 0 || n != 2 ||
            sprig__mp_read_u64(&r, &u) != 0) {
            FAIL("kv.get: no value in the answer");
        }
        if (u == SPRIG_VALUE_NONE) {
            FAIL("kv.get: key %llu has no value (not loaded? --load)",
                 (unsigned long long)k);
        }
        if (u != SPRIG_VALUE_BYTES || sprig__mp_read_bin(&r, &b) != 0) {
            FAIL("kv.get: value of kind %llu, not bytes",
                 (unsigned long long)u);
        }
        return same_value(k, b, cfg, scratch, why, why_len, "kv.get value");
    case OP_DB_GET: {
        uint8_t idb[8];
        put_be(idb, k, 8);
        if (frame_field(payload, len, "doc", &r) != 0 ||
            sprig__mp_read_array(&r, &n) != 0 || n != 4 ||
            sprig__mp_read_bin(&r, &b) != 0) {
            FAIL("db.get: no document in the answer");
        }
        if (b.len != 8 || memcmp(b.data, idb, 8) != 0) {
            FAIL("db.get: asked for document %llu, got another id",
                 (unsigned long long)k);
        }
        if (sprig__mp_read_u64(&r, &u) != 0 ||
            sprig__mp_read_bin(&r, &b) != 0 || b.len != 16 ||
            sprig__mp_read_bin(&r, &b) != 0) {
            FAIL("db.get: malformed document");
        }
        return same_value(k, b, cfg, scratch, why, why_len, "document");
    }
    case OP_DB_INSERT:
    case OP_DB_LOAD:
        if (frame_field(payload, len, "result", &r) != 0) {
            FAIL("db.apply: no result in the answer");
        }
        return check_txn_result(&r, why, why_len);
    default: FAIL("unknown operation");
    }
}
