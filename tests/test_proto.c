/*
 * test_proto.c -- src/proto without sockets: MessagePack values round-trip
 * through msgpack-c's packer and Sprig's reader; every truncation, every
 * wrong type, counts larger than the input and nesting past the limit are
 * clean SPRIG_EPROTO; frames of each kind round-trip; and randomly mutated
 * frames never crash the decoder (seed printed).
 */
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
    sprig_buf_free(&b);
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
    uint64_t session = 77;
    sprig__mp_wr_init(&w, &b);
    switch (kind) {
    case 0:
        sprig__frame_request(&w, 42, &session, "doc.get");
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
            assert_true(f.has_session);
            assert_int_equal(f.session, 77);
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
        sprig_buf_free(&b);
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
        sprig_buf_free(&b);
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
    sprig_buf_free(&b);
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
    sprig_buf_free(&b);
    print_message("accepted %d of 20000 mutated requests\n", accepted);
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
        sprig_buf_free(&b);
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
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_api_roundtrip),
        cmocka_unit_test(test_api_mutations),
        cmocka_unit_test(test_list_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
