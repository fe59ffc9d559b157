/*
 * iproto.c -- Tarantool's binary protocol (IPROTO) for `sprig-bench
 * --tarantool HOST:PORT`: the requests of the net-doc tests and the checks
 * of their answers, so the same driver (driver.c: threads, connections,
 * requests in flight, latencies) loads Tarantool as it loads Sprig and
 * only the server and its protocol differ.  No client library: Debian
 * ships none for C, and net.box (Lua, run by tarantool) costs the client
 * about three times the CPU per request that this does.
 *
 * A message is a MessagePack uint32 (0xce) of the length, a header map
 * ({0x00 type, 0x01 sync}) and a body map.  Requests (the space is
 * --tt-space, created by bench/tarantool_server.lua):
 *   db.get     SELECT (1): space, index 0, limit 1, iterator EQ, key [k]
 *   db.insert  INSERT (2): space, tuple [nil, value(k)] (the primary
 *              index's sequence assigns the id)
 * An answer's header holds the code (0 ok, 0x8000 | error) and the sync
 * of its request, which plays the request id's part; its body holds the
 * tuples (0x30) or an error message (0x31).  The server sends a 128-byte
 * greeting first, which the driver skips; the guest user needs no
 * authentication.
 */
#include "bench.h"

#include "proto/mp.h"

#include <stdio.h>
#include <string.h>

#define TT_SELECT 1
#define TT_INSERT 2
#define TT_DATA 0x30
#define TT_ERROR 0x31

static void
put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static size_t
put(uint8_t *p, size_t at, const void *bytes, size_t n)
{
    memcpy(p + at, bytes, n);
    return at + n;
}

/* The request of `op` (placeholders: sync 0, item 0) into buf; the
 * offsets of sync, document id and value into `t`.  Returns its length. */
static size_t
build(uint8_t *b, frame_tpl *t, bench_op op, const bench_cfg *cfg)
{
    static const uint8_t sel_body[] = {
        0x86, 0x10, 0xcd, 0, 0, 0x11, 0, 0x12, 1, 0x13, 0, 0x14, 0, 0x20, 0x91};
    static const uint8_t ins_body[] = {0x82, 0x10, 0xcd, 0,   0,
                                       0x21, 0x92, 0xc0, 0xdb};
    size_t n = 5; /* the length, patched at the end */
    uint8_t hdr[] = {0x82, 0x00, op == OP_DB_GET ? TT_SELECT : TT_INSERT, 0x01,
                     0xce};
    n = put(b, n, hdr, sizeof hdr);
    t->id_off = n;
    n += 4;
    size_t body = n;
    if (op == OP_DB_GET) {
        n = put(b, n, sel_body, sizeof sel_body);
        t->key_off = n; /* the key's encoding: iproto_tpl_patch */
        b[n++] = 0;
    } else {
        n = put(b, n, ins_body, sizeof ins_body);
        put_be(b + n, cfg->datasize, 4); /* str32: any size */
        t->val_off = n + 4;
        bench_value(0, cfg->datasize, b + t->val_off);
        n = t->val_off + cfg->datasize;
    }
    put_be(b + body + 3, cfg->tt_space, 2);
    b[0] = 0xce;
    put_be(b + 1, n - 5, 4);
    return n;
}

int
iproto_tpl_init(frame_tpl *t, bench_op op, const bench_cfg *cfg)
{
    memset(t, 0, sizeof *t);
    t->op = op;
    t->key_off = t->docid_off = t->val_off = SIZE_MAX;
    if (op != OP_DB_GET && op != OP_DB_INSERT) {
        fprintf(stderr, "sprig-bench: --tarantool runs db.get and db.insert "
                        "only\n");
        return -1;
    }
    uint8_t *b = calloc(1, 64 + cfg->datasize);
    if (!b) {
        return -1;
    }
    size_t n = build(b, t, op, cfg);
    int rc = sprig_buf_append(&t->buf, b, n + 9); /* room for any key */
    t->buf.len = n;
    free(b);
    return rc ? -1 : 0;
}

/* k in MessagePack's shortest form: Tarantool 2.6 finds no tuple for a
 * key encoded wider than it must be (5 as 0xcf + 8 bytes). */
static size_t
put_uint(uint8_t *p, uint64_t k)
{
    int n = k < 128            ? 0
            : k <= 0xff        ? 1
            : k <= 0xffff      ? 2
            : k <= 0xffffffffu ? 4
                               : 8;
    static const uint8_t tag[9] = {0, 0xcc, 0xcd, 0, 0xce, 0, 0, 0, 0xcf};
    if (n == 0) {
        p[0] = (uint8_t)k;
        return 1;
    }
    p[0] = tag[n];
    put_be(p + 1, k, n);
    return (size_t)n + 1;
}

void
iproto_tpl_patch(frame_tpl *t, uint32_t id, uint64_t k, const bench_cfg *cfg)
{
    if (t->op != OP_DB_GET) {
        frame_tpl_patch(t, id, k, cfg);
        return;
    }
    uint8_t *p = t->buf.data;
    put_be(p + t->id_off, id, 4);
    t->buf.len = t->key_off + put_uint(p + t->key_off, k);
    put_be(p + 1, t->buf.len - 5, 4);
}

long
iproto_split(const uint8_t *p, size_t n, iproto_answer *a)
{
    if (n < 5) {
        return 0;
    }
    if (p[0] != 0xce) {
        return -1;
    }
    uint64_t len = (uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 |
                   (uint64_t)p[3] << 8 | p[4];
    if (len > (64u << 20)) {
        return -1;
    }
    if (n - 5 < len) {
        return 0;
    }
    sprig__mp_rd r;
    uint32_t pairs;
    uint64_t key, val;
    sprig__mp_rd_init(&r, (sprig_bytes){p + 5, (size_t)len});
    memset(a, 0, sizeof *a);
    if (sprig__mp_read_map(&r, &pairs) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < pairs; i++) {
        if (sprig__mp_read_u64(&r, &key) != 0) {
            return -1;
        }
        if ((key == 0x00 || key == 0x01) && sprig__mp_read_u64(&r, &val) == 0) {
            *(key == 0 ? &a->code : &a->sync) = val;
        } else if (key <= 0x01 || sprig__mp_skip(&r) != 0) {
            return -1;
        }
    }
    a->body = (sprig_bytes){r.p, r.left};
    return (long)(5 + len);
}

/* Position `r` at the body's value under integer key `want`. */
static int
body_field(sprig_bytes body, uint64_t want, sprig__mp_rd *r)
{
    uint32_t pairs;
    uint64_t key;
    sprig__mp_rd_init(r, body);
    if (sprig__mp_read_map(r, &pairs) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < pairs; i++) {
        if (sprig__mp_read_u64(r, &key) != 0) {
            return -1;
        }
        if (key == want) {
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

int
iproto_check(bench_op op, uint64_t k, const iproto_answer *a,
             const bench_cfg *cfg, uint8_t *scratch, char *why, size_t why_len)
{
    sprig__mp_rd r;
    uint32_t n, fields;
    uint64_t id;
    sprig_bytes doc;
    if (a->code != 0) {
        sprig_bytes m = {(const uint8_t *)"", 0};
        if (body_field(a->body, TT_ERROR, &r) == 0) {
            (void)sprig__mp_read_str(&r, &m);
        }
        FAIL("%s: Tarantool error 0x%llx: %.*s", bench_op_name(op),
             (unsigned long long)a->code, (int)(m.len > 150 ? 150 : m.len),
             (const char *)m.data);
    }
    if (body_field(a->body, TT_DATA, &r) != 0 ||
        sprig__mp_read_array(&r, &n) != 0 || n != 1 ||
        sprig__mp_read_array(&r, &fields) != 0 || fields != 2 ||
        sprig__mp_read_u64(&r, &id) != 0 || sprig__mp_read_str(&r, &doc) != 0) {
        FAIL("%s: no [id, document] tuple in the answer (item %llu)",
             bench_op_name(op), (unsigned long long)k);
    }
    if (op == OP_DB_GET && id != k) {
        FAIL("db.get: asked for %llu, got %llu", (unsigned long long)k,
             (unsigned long long)id);
    }
    bench_value(k, cfg->datasize, scratch);
    if (doc.len != cfg->datasize || memcmp(doc.data, scratch, doc.len) != 0) {
        FAIL("%s: document %llu is not the one written", bench_op_name(op),
             (unsigned long long)id);
    }
    return 0;
}
