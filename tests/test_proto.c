/*
 * test_proto.c -- src/proto without sockets: MessagePack values round-trip
 * through msgpack-c's packer and Sprig's reader; every truncation, every
 * wrong type, counts larger than the input and nesting past the limit are
 * clean SPRIG_EPROTO; frames of each kind round-trip; a request's id is 1
 * to 2^32-1 and its session nil (else refused, the session refusal keeping
 * the id it answers); randomly mutated frames never crash the decoder
 * (seed printed); a view query may send nil for the key, keys and range its
 * match kind ignores; schemas carry their views (declarative ones whole, C
 * ones by description) and the view-less collections of older clients.
 */
#include "core/view.h"
#include "proto/api.h"
#include "proto/envelope.h"
#include "testutil.h"

static uint64_t seed;

static void
write_sample(sprig__mp_wr *w)
{
    sprig__mp_array(w, 9);
    sprig__mp_nil(w);
    sprig__mp_bool(w, true);
    sprig__mp_u64(w, UINT64_MAX);
    sprig__mp_i64(w, INT64_MIN);
    sprig__mp_f64(w, -2.5);
    sprig__mp_str(w, "héllo");
    sprig__mp_bin(w, (sprig_bytes){"\0\1\2", 3});
    sprig__mp_map(w, 1);
    sprig__mp_str(w, "k");
    sprig__mp_i64(w, -1);
    sprig__mp_u64(w, 300);
}

static void
test_roundtrip(void **state)
{
    (void)state;
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    write_sample(&w);
    SPRIG_OK_(sprig__mp_wr_status(&w));
    sprig__mp_rd r;
    sprig__mp_rd_init(&r, sprig_buf_bytes(&b));
    uint32_t n;
    bool bv;
    uint64_t u;
    int64_t i;
    double d;
    sprig_bytes s;
    SPRIG_OK_(sprig__mp_read_array(&r, &n));
    assert_int_equal(n, 9);
    SPRIG_OK_(sprig__mp_read_nil(&r));
    SPRIG_OK_(sprig__mp_read_bool(&r, &bv));
    assert_true(bv);
    SPRIG_OK_(sprig__mp_read_u64(&r, &u));
    assert_true(u == UINT64_MAX);
    SPRIG_OK_(sprig__mp_read_i64(&r, &i));
    assert_true(i == INT64_MIN);
    SPRIG_OK_(sprig__mp_read_f64(&r, &d));
    assert_true(d == -2.5);
    SPRIG_OK_(sprig__mp_read_str(&r, &s));
    assert_true(tu_bytes_eq(s, "héllo"));
    SPRIG_OK_(sprig__mp_read_bin(&r, &s));
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.data, "\0\1\2", 3);
    SPRIG_OK_(sprig__mp_read_map(&r, &n));
    assert_int_equal(n, 1);
    SPRIG_OK_(sprig__mp_skip(&r)); /* "k" */
    SPRIG_OK_(sprig__mp_read_i64(&r, &i));
    assert_true(i == -1);
    /* an unsigned read of a negative number is refused */
    sprig__mp_rd r2 = r;
    SPRIG_OK_(sprig__mp_read_f64(&r2, &d));
    assert_true(d == 300);
    SPRIG_OK_(sprig__mp_read_u64(&r, &u));
    assert_int_equal(u, 300);
    assert_int_equal(r.left, 0);
    assert_int_equal(sprig__mp_peek(&r), SPRIG__MP_BAD);
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_read_nil(&r));
    /* every truncation of the sample is a clean error */
    for (size_t len = 0; len < b.len; len++) {
        sprig__mp_rd_init(&r, (sprig_bytes){b.data, len});
        SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_skip(&r));
    }
    sprig_buf_clear(&b);
}

static void
test_hostile_counts(void **state)
{
    (void)state;
    /* array32 claiming 4 billion elements in 5 bytes */
    uint8_t big_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    sprig__mp_rd r;
    uint32_t n;
    sprig__mp_rd_init(&r, (sprig_bytes){big_array, sizeof big_array});
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_read_array(&r, &n));
    assert_non_null(strstr(sprig_errmsg(), "claims"));
    uint8_t big_map[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0};
    sprig__mp_rd_init(&r, (sprig_bytes){big_map, sizeof big_map});
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_read_map(&r, &n));
    uint8_t big_str[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
    sprig_bytes s;
    sprig__mp_rd_init(&r, (sprig_bytes){big_str, sizeof big_str});
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_read_str(&r, &s));
    /* nesting deeper than the limit */
    uint8_t deep[100];
    memset(deep, 0x91, sizeof deep); /* [[[[...]]]] */
    deep[99] = 0xc0;
    sprig__mp_rd_init(&r, (sprig_bytes){deep, sizeof deep});
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_skip(&r));
    assert_non_null(strstr(sprig_errmsg(), "nesting"));
    uint8_t reserved[] = {0xc1};
    sprig__mp_rd_init(&r, (sprig_bytes){reserved, 1});
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_skip(&r));
    /* integers out of range for the type asked */
    uint8_t neg[] = {0xff}; /* -1 */
    uint64_t u;
    sprig__mp_rd_init(&r, (sprig_bytes){neg, 1});
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_read_u64(&r, &u));
    uint8_t huge[] = {0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0};
    int64_t i;
    sprig__mp_rd_init(&r, (sprig_bytes){huge, sizeof huge});
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__mp_read_i64(&r, &i));
    uint8_t pos16[] = {0xd1, 0x00, 0x05}; /* int16 holding 5 */
    sprig__mp_rd_init(&r, (sprig_bytes){pos16, sizeof pos16});
    SPRIG_OK_(sprig__mp_read_u64(&r, &u));
    assert_int_equal(u, 5);
    uint8_t neg16[] = {0xd1, 0xff, 0xfe}; /* -2 */
    sprig__mp_rd_init(&r, (sprig_bytes){neg16, sizeof neg16});
    SPRIG_OK_(sprig__mp_read_i64(&r, &i));
    assert_int_equal(i, -2);
}

static sprig_buf
frame_bytes(int kind)
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    switch (kind) {
    case 0:
        sprig__frame_request(&w, 42, NULL, "doc.get");
        sprig__mp_map(&w, 1);
        sprig__mp_str(&w, "db");
        sprig__mp_str(&w, "default");
        break;
    case 1:
        sprig__frame_response(&w, 42);
        sprig__mp_bin(&w, (sprig_bytes){"xyz", 3});
        break;
    case 2:
        sprig__frame_error(&w, 42, SPRIG_ECONFLICT, "stale",
                           (sprig_bytes){"\x07", 1});
        break;
    default: sprig__frame_push(&w, "pubsub.message"); sprig__mp_nil(&w);
    }
    SPRIG_OK_(sprig__mp_wr_status(&w));
    return b;
}

static void
test_frames(void **state)
{
    (void)state;
    sprig__frame f;
    for (int kind = 0; kind < 4; kind++) {
        sprig_buf b = frame_bytes(kind);
        SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&b), &f));
        assert_int_equal(f.kind, kind);
        if (kind < 3) {
            assert_int_equal(f.id, 42);
        }
        if (kind == 0) {
            assert_false(f.has_session);
            assert_true(tu_bytes_eq(f.api, "doc.get"));
            sprig__mp_rd r;
            uint32_t n;
            sprig__mp_rd_init(&r, f.payload);
            SPRIG_OK_(sprig__mp_read_map(&r, &n));
            assert_int_equal(n, 1);
        } else if (kind == 2) {
            assert_int_equal(f.code, SPRIG_ECONFLICT);
            assert_true(tu_bytes_eq(f.message, "stale"));
            assert_int_equal(f.detail.len, 1);
        } else if (kind == 3) {
            assert_true(tu_bytes_eq(f.api, "pubsub.message"));
        }
        for (size_t len = 0; len < b.len; len++) {
            SPRIG_EXPECT(SPRIG_EPROTO,
                         sprig__frame_decode((sprig_bytes){b.data, len}, &f));
        }
        SPRIG_OK_(sprig_buf_append(&b, "\xc0", 1)); /* trailing bytes */
        SPRIG_EXPECT(SPRIG_EPROTO,
                     sprig__frame_decode(sprig_buf_bytes(&b), &f));
        sprig_buf_clear(&b);
    }
    uint8_t bad_kind[] = {0x93, 0x09, 0x01, 0xc0};
    SPRIG_EXPECT(SPRIG_EPROTO,
                 sprig__frame_decode((sprig_bytes){bad_kind, 4}, &f));
    assert_non_null(strstr(sprig_errmsg(), "unknown frame kind"));
    uint8_t not_array[] = {0xa1, 'x'};
    SPRIG_EXPECT(SPRIG_EPROTO,
                 sprig__frame_decode((sprig_bytes){not_array, 2}, &f));
    uint8_t big_id[] = {0x93, 0x01, 0xcf, 1, 0, 0, 0, 0, 0, 0, 0, 0xc0};
    SPRIG_EXPECT(SPRIG_EPROTO,
                 sprig__frame_decode((sprig_bytes){big_id, sizeof big_id}, &f));
}

/* A request of `id` (and `session` unless NULL) for db.get, encoded by
 * hand so any id fits. */
static sprig_buf
request_bytes(uint64_t id, const uint64_t *session)
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__mp_array(&w, 5);
    sprig__mp_u64(&w, SPRIG__FRAME_REQUEST);
    sprig__mp_u64(&w, id);
    if (session) {
        sprig__mp_u64(&w, *session);
    } else {
        sprig__mp_nil(&w);
    }
    sprig__mp_str(&w, "db.get");
    sprig__mp_map(&w, 0);
    SPRIG_OK_(sprig__mp_wr_status(&w));
    return b;
}

/* Request ids are 1 to 2^32-1 and sessions nil: id 0 and ids over 2^32-1
 * are refused with f.id 0; a session is refused keeping the request's id
 * (the server answers that request); error frames may carry id 0. */
static void
test_request_envelope(void **state)
{
    (void)state;
    sprig__frame f;
    struct {
        uint64_t id;
        bool session;
        const char *want; /* NULL: accepted */
        uint32_t answer_id;
    } cases[] = {
        {1, false, NULL, 1},
        {UINT32_MAX, false, NULL, UINT32_MAX},
        {0, false, "request id 0 is reserved", 0},
        {1ull << 32, false, "request id 4294967296 is over 2^32-1", 0},
        {UINT64_MAX, false, "is over 2^32-1", 0},
        {9, true, "request 9 has session 5, but sessions do not exist yet", 9},
        {0, true, "request id 0 is reserved", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t session = 5;
        sprig_buf b =
            request_bytes(cases[i].id, cases[i].session ? &session : NULL);
        int rc = sprig__frame_decode(sprig_buf_bytes(&b), &f);
        if (cases[i].want) {
            assert_int_equal(rc, SPRIG_EPROTO);
            if (!strstr(sprig_errmsg(), cases[i].want)) {
                fail_msg("case %zu: \"%s\"", i, sprig_errmsg());
            }
        } else {
            SPRIG_OK_(rc);
        }
        assert_int_equal(f.id, cases[i].answer_id);
        sprig_buf_clear(&b);
    }
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_error(&w, 0, SPRIG_EPROTO, "garbage", (sprig_bytes){0});
    SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&b), &f));
    assert_int_equal(f.kind, SPRIG__FRAME_ERROR);
    assert_int_equal(f.id, 0);
    sprig_buf_clear(&b);
}

static void
test_mutations(void **state)
{
    (void)state;
    uint64_t s = seed;
    int ok = 0, bad = 0;
    for (int round = 0; round < 20000; round++) {
        sprig_buf b = frame_bytes((int)(tu_rand(&s) % 4));
        uint8_t *p = b.data;
        int flips = 1 + (int)(tu_rand(&s) % 4);
        for (int i = 0; i < flips; i++) {
            p[tu_rand(&s) % b.len] = (uint8_t)tu_rand(&s);
        }
        size_t len = b.len - (tu_rand(&s) % 3 == 0 ? tu_rand(&s) % b.len : 0);
        sprig__frame f;
        int rc = sprig__frame_decode((sprig_bytes){p, len}, &f);
        assert_true(rc == 0 || rc == SPRIG_EPROTO);
        if (rc == 0) {
            ok++;
            sprig__mp_rd r;
            sprig__mp_rd_init(&r, f.kind == SPRIG__FRAME_ERROR ? f.detail
                                                               : f.payload);
            rc = sprig__mp_skip(&r); /* a decoded payload is one value */
            assert_int_equal(rc, 0);
        } else {
            bad++;
        }
        sprig_buf_clear(&b);
    }
    assert_true(ok > 0 && bad > 0);
}

/* Encode `s` with the row's request fields and decode it into `out`. */
static int
api_roundtrip(const sprig__field *f, size_t n, const void *s, void *out,
              sprig_buf *b)
{
    sprig__mp_wr w;
    b->len = 0;
    sprig__mp_wr_init(&w, b);
    SPRIG_OK_(sprig__api_encode(&w, f, n, s));
    return sprig__api_decode(sprig_buf_bytes(b), f, n, out);
}

static sprig_txn *
sample_txn(void)
{
    sprig_txn *t;
    uint8_t idb[8];
    sprig_header h = {sprig_str("k1"), 3, {1, 2, 3}};
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "a", NULL, sprig_str("pushed")));
    SPRIG_OK_(
        sprig_txn_insert(t, "b", &(sprig_bytes){"k1", 2}, sprig_str("v")));
    SPRIG_OK_(sprig_txn_update(t, "b", &h, sprig_str("v2")));
    SPRIG_OK_(sprig_txn_overwrite(t, "a", sprig_id_u64(9, idb),
                                  (sprig_bytes){"", 0}));
    SPRIG_OK_(sprig_txn_delete(t, "b", &h));
    SPRIG_OK_(sprig_txn_check(t, "b", sprig_str("k1"), NULL));
    return t;
}

static void
test_api_roundtrip(void **state)
{
    (void)state;
    sprig_buf b = {0};
    sprig__apply_req in = {"default", sample_txn()}, out;
    memset(&out, 0, sizeof out);
    SPRIG_OK_(api_roundtrip(sprig__api_apply.req, sprig__api_apply.n_req, &in,
                            &out, &b));
    assert_string_equal(out.db, "default");
    assert_int_equal(out.txn->n, in.txn->n);
    for (size_t i = 0; i < in.txn->n; i++) {
        const sprig__op *x = &in.txn->ops[i], *y = &out.txn->ops[i];
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->collection, y->collection);
        assert_int_equal(x->has_id, y->has_id);
        assert_int_equal(x->id.len, y->id.len);
        assert_int_equal(x->contents.len, y->contents.len);
        assert_int_equal(x->has_expected, y->has_expected);
        assert_int_equal(x->expected_rev, y->expected_rev);
        assert_memory_equal(x->expected_hash, y->expected_hash, 16);
    }
    sprig__api_free(sprig__api_apply.req, sprig__api_apply.n_req, &out);
    sprig_txn_free(in.txn);

    sprig__list_req lin = {
        "d",  "c",        {{SPRIG_INCLUDED, {"a", 1}}, {SPRIG_UNBOUNDED, {0}}},
        true, SPRIG_DESC, 7,
        true};
    sprig__list_req lout;
    memset(&lout, 0, sizeof lout);
    SPRIG_OK_(api_roundtrip(sprig__api_list.req, sprig__api_list.n_req, &lin,
                            &lout, &b));
    assert_true(lout.has_range);
    assert_int_equal(lout.range.start.kind, SPRIG_INCLUDED);
    assert_true(tu_bytes_eq(lout.range.start.key, "a"));
    assert_int_equal(lout.range.end.kind, SPRIG_UNBOUNDED);
    assert_int_equal(lout.order, SPRIG_DESC);
    assert_int_equal(lout.limit, 7);
    assert_true(lout.headers_only);
    sprig__api_free(sprig__api_list.req, sprig__api_list.n_req, &lout);
    lin.has_range = false; /* optional fields may be absent */
    memset(&lout, 0, sizeof lout);
    SPRIG_OK_(api_roundtrip(sprig__api_list.req, sprig__api_list.n_req, &lin,
                            &lout, &b));
    assert_false(lout.has_range);
    sprig__api_free(sprig__api_list.req, sprig__api_list.n_req, &lout);

    /* a required field missing is named */
    sprig__get_req g;
    memset(&g, 0, sizeof g);
    uint8_t only_db[] = {0x81, 0xa2, 'd', 'b', 0xa1, 'x'};
    SPRIG_EXPECT(SPRIG_EPROTO,
                 sprig__api_decode((sprig_bytes){only_db, sizeof only_db},
                                   sprig__api_get.req, sprig__api_get.n_req,
                                   &g));
    assert_non_null(strstr(sprig_errmsg(), "'collection' is missing"));
    sprig__api_free(sprig__api_get.req, sprig__api_get.n_req, &g);
    assert_non_null(sprig__api_find(sprig_str("db.get")));
    assert_null(sprig__api_find(sprig_str("db.nope")));
    sprig_buf_clear(&b);
}

static void
test_api_mutations(void **state)
{
    (void)state;
    uint64_t s = seed + 7;
    sprig_buf b = {0};
    sprig__apply_req in = {"default", sample_txn()};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    SPRIG_OK_(sprig__api_encode(&w, sprig__api_apply.req,
                                sprig__api_apply.n_req, &in));
    sprig_txn_free(in.txn);
    uint8_t *copy = malloc(b.len);
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, b.data, b.len);
        int flips = 1 + (int)(tu_rand(&s) % 3);
        for (int i = 0; i < flips; i++) {
            copy[tu_rand(&s) % b.len] = (uint8_t)tu_rand(&s);
        }
        sprig__apply_req out;
        memset(&out, 0, sizeof out);
        int rc =
            sprig__api_decode((sprig_bytes){copy, b.len}, sprig__api_apply.req,
                              sprig__api_apply.n_req, &out);
        assert_true(rc == 0 || rc == SPRIG_EPROTO || rc == SPRIG_EINVAL ||
                    rc == SPRIG_ETOOBIG);
        accepted += rc == 0;
        sprig__api_free(sprig__api_apply.req, sprig__api_apply.n_req, &out);
    }
    free(copy);
    sprig_buf_clear(&b);
    print_message("accepted %d of 20000 mutated requests\n", accepted);
}

/* A view.query payload: match kind `kind`, and key, keys and range each
 * nil or their empty form. */
static sprig_buf
query_payload(uint64_t kind, bool nils)
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__mp_map(&w, 3);
    sprig__mp_str(&w, "db");
    sprig__mp_str(&w, "d");
    sprig__mp_str(&w, "with_docs");
    sprig__mp_bool(&w, false);
    sprig__mp_str(&w, "query");
    sprig__mp_array(&w, 10);
    sprig__mp_str(&w, "c");
    sprig__mp_str(&w, "v");
    sprig__mp_u64(&w, kind);
    if (nils) {
        sprig__mp_nil(&w);
        sprig__mp_nil(&w);
        sprig__mp_nil(&w);
    } else {
        sprig__mp_bin(&w, (sprig_bytes){"k", 1});
        sprig__mp_array(&w, 1);
        sprig__mp_bin(&w, (sprig_bytes){"k", 1});
        sprig__mp_array(&w, 2);
        for (int i = 0; i < 2; i++) {
            sprig__mp_array(&w, 2);
            sprig__mp_u64(&w, SPRIG_INCLUDED);
            sprig__mp_bin(&w, (sprig_bytes){"k", 1});
        }
    }
    sprig__mp_u64(&w, 0);
    sprig__mp_u64(&w, 0);
    sprig__mp_u64(&w, 0);
    sprig__mp_nil(&w);
    SPRIG_OK_(sprig__mp_wr_status(&w));
    return b;
}

/* key, keys and range may be nil: empty key, no keys, the whole range. */
static void
test_query_nils(void **state)
{
    (void)state;
    for (uint64_t kind = SPRIG_MATCH_ALL; kind <= SPRIG_MATCH_PREFIX; kind++) {
        for (int nils = 0; nils < 2; nils++) {
            sprig_buf b = query_payload(kind, nils);
            sprig__view_req r;
            memset(&r, 0, sizeof r);
            SPRIG_OK_(sprig__api_decode(sprig_buf_bytes(&b),
                                        sprig__api_view_query.req,
                                        sprig__api_view_query.n_req, &r));
            const __typeof__(r.query.q.match) *m = &r.query.q.match;
            assert_int_equal(m->kind, kind);
            assert_int_equal(m->key.len, nils ? 0 : 1);
            assert_int_equal(m->n_keys, nils ? 0 : 1);
            assert_int_equal(m->range.start.kind,
                             nils ? SPRIG_UNBOUNDED : SPRIG_INCLUDED);
            assert_int_equal(m->range.end.kind,
                             nils ? SPRIG_UNBOUNDED : SPRIG_INCLUDED);
            sprig__api_free(sprig__api_view_query.req,
                            sprig__api_view_query.n_req, &r);
            sprig_buf_clear(&b);
        }
    }
}

static int
c_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    return SPRIG_OK;
}

static int
c_reduce(const sprig_bytes *values, size_t n, bool rereduce, sprig_buf *out,
         void *udata)
{
    return SPRIG_OK;
}

/* Encode `in` as a register_schema request and decode it. */
static int
schema_roundtrip(const sprig_schema_def *in, sprig__schema_register_req *out,
                 sprig_buf *b)
{
    sprig__schema_register_req req = {(sprig_schema_def *)in};
    memset(out, 0, sizeof *out);
    return api_roundtrip(sprig__api_schema_register.req,
                         sprig__api_schema_register.n_req, &req, out, b);
}

/* Decode a register_schema payload written by `fn`. */
static int
schema_payload(void (*fn)(sprig__mp_wr *), sprig_buf *b)
{
    sprig__mp_wr w;
    b->len = 0;
    sprig__mp_wr_init(&w, b);
    sprig__mp_map(&w, 1);
    sprig__mp_str(&w, "schema");
    sprig__mp_array(&w, 2);
    sprig__mp_str(&w, "s");
    sprig__mp_array(&w, 1);
    fn(&w);
    SPRIG_OK_(sprig__mp_wr_status(&w));
    sprig__schema_register_req out = {0};
    int rc =
        sprig__api_decode(sprig_buf_bytes(b), sprig__api_schema_register.req,
                          sprig__api_schema_register.n_req, &out);
    if (rc == 0) {
        assert_int_equal(out.schema->collections[0].n_views, 0);
    }
    sprig__api_free(sprig__api_schema_register.req,
                    sprig__api_schema_register.n_req, &out);
    return rc;
}

static void
old_collection(sprig__mp_wr *w)
{
    sprig__mp_array(w, 3);
    sprig__mp_str(w, "c");
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 0);
}

static void
short_view(sprig__mp_wr *w)
{
    sprig__mp_array(w, 4);
    sprig__mp_str(w, "c");
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 0);
    sprig__mp_array(w, 1);
    sprig__mp_array(w, 6);
    sprig__mp_str(w, "v");
    sprig__mp_u64(w, 1);
    sprig__mp_u64(w, 0);
    sprig__mp_str(w, "a");
    sprig__mp_nil(w);
    sprig__mp_u64(w, 0); /* no has_reduce_fn */
}

static void
declarative_with_fn(sprig__mp_wr *w)
{
    sprig__mp_array(w, 4);
    sprig__mp_str(w, "c");
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 0);
    sprig__mp_array(w, 1);
    sprig__mp_array(w, 7);
    sprig__mp_str(w, "v");
    sprig__mp_u64(w, 1);
    sprig__mp_u64(w, 0);
    sprig__mp_str(w, "a.b");
    sprig__mp_nil(w);
    sprig__mp_u64(w, 0);
    sprig__mp_bool(w,
                   true); /* a reduce function: declarative views have none */
}

/* Schemas carry their views: declarative ones whole, C ones by description
 * (decoded with the stand-ins of a view whose code is not loaded); the
 * 3-element collection of older clients means no views; bad views are
 * refused. */
static void
test_schema_codec(void **state)
{
    (void)state;
    const sprig_view_def views[] = {
        {.name = "decl",
         .version = 7,
         .policy = SPRIG_VIEW_UNIQUE,
         .json_key = "a,b.c",
         .json_value = "d",
         .builtin_reduce = SPRIG_REDUCE_MAX},
        {.name = "code",
         .version = 3,
         .policy = SPRIG_VIEW_EAGER,
         .map = c_map,
         .reduce = c_reduce},
        {.name = "code2", .map = c_map, .builtin_reduce = SPRIG_REDUCE_COUNT},
    };
    const sprig_collection_def cols[] = {{"x", SPRIG_ID_NATURAL, 0, views, 3},
                                         {"y", SPRIG_ID_U64, 0}};
    const sprig_schema_def in = {"s", cols, 2};
    sprig_buf b = {0};
    sprig__schema_register_req out;
    SPRIG_OK_(schema_roundtrip(&in, &out, &b));
    const sprig_schema_def *s = out.schema;
    assert_string_equal(s->name, "s");
    assert_int_equal(s->n_collections, 2);
    assert_int_equal(s->collections[0].n_views, 3);
    assert_int_equal(s->collections[1].n_views, 0);
    const sprig_view_def *v = s->collections[0].views;
    for (int i = 0; i < 3; i++) {
        assert_string_equal(v[i].name, views[i].name);
        assert_int_equal(v[i].version, views[i].version);
        assert_int_equal(v[i].policy, views[i].policy);
        assert_int_equal(v[i].builtin_reduce, views[i].builtin_reduce);
    }
    assert_string_equal(v[0].json_key, "a,b.c");
    assert_string_equal(v[0].json_value, "d");
    assert_null(v[0].map);
    assert_null(v[1].json_key);
    assert_true(v[1].map == sprig__codeless_map);
    assert_true(v[1].reduce == sprig__codeless_reduce);
    assert_null(v[2].reduce);
    /* what decodes encodes the same again (the list a client gets back) */
    sprig_buf b2 = {0};
    sprig__schema_register_req again;
    SPRIG_OK_(schema_roundtrip(s, &again, &b2));
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    sprig__api_free(sprig__api_schema_register.req,
                    sprig__api_schema_register.n_req, &again);
    sprig__api_free(sprig__api_schema_register.req,
                    sprig__api_schema_register.n_req, &out);
    SPRIG_OK_(schema_payload(old_collection, &b));
    SPRIG_EXPECT(SPRIG_EPROTO, schema_payload(short_view, &b));
    assert_non_null(strstr(sprig_errmsg(), "a view has 7 elements, not 6"));
    SPRIG_EXPECT(SPRIG_EINVAL, schema_payload(declarative_with_fn, &b));
    assert_non_null(strstr(sprig_errmsg(), "is declarative"));
    sprig_buf_clear(&b);
    sprig_buf_clear(&b2);
}

/* Lists that cost far more memory than wire bytes are capped: 65,536 ids
 * decode, one more is SPRIG_ETOOBIG naming the limit. */
static void
test_list_caps(void **state)
{
    (void)state;
    for (uint32_t n = 65536; n <= 65537; n++) {
        sprig_buf b = {0};
        sprig__mp_wr w;
        sprig__mp_wr_init(&w, &b);
        sprig__mp_map(&w, 3);
        sprig__mp_str(&w, "db");
        sprig__mp_str(&w, "d");
        sprig__mp_str(&w, "collection");
        sprig__mp_str(&w, "c");
        sprig__mp_str(&w, "ids");
        sprig__mp_array(&w, n);
        for (uint32_t i = 0; i < n; i++) {
            sprig__mp_bin(&w, (sprig_bytes){"", 0});
        }
        SPRIG_OK_(sprig__mp_wr_status(&w));
        sprig__get_multiple_req req;
        memset(&req, 0, sizeof req);
        int rc =
            sprig__api_decode(sprig_buf_bytes(&b), sprig__api_get_multiple.req,
                              sprig__api_get_multiple.n_req, &req);
        if (n == 65536) {
            SPRIG_OK_(rc);
            assert_int_equal(req.ids.n, n);
        } else {
            assert_int_equal(rc, SPRIG_ETOOBIG);
            assert_non_null(strstr(sprig_errmsg(), "limit of 65536"));
        }
        sprig__api_free(sprig__api_get_multiple.req,
                        sprig__api_get_multiple.n_req, &req);
        sprig_buf_clear(&b);
    }
}

int
main(void)
{
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_hostile_counts),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_request_envelope),
        cmocka_unit_test(test_query_nils),
        cmocka_unit_test(test_schema_codec),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_api_roundtrip),
        cmocka_unit_test(test_api_mutations),
        cmocka_unit_test(test_list_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
