/*
 * test_core.c -- src/core: error names, buffers, the order-preserving key
 * encoding (checked against a reference comparison on random values),
 * tuple decoding of malformed bytes, schema validation and its stored
 * form, transaction building limits, and the log record codec.
 */
#include "core/core.h"
#include "testutil.h"

#include <math.h>

static uint64_t seed;

static void
test_errors(void **state)
{
    (void)state;
    for (int rc = 0; rc >= SPRIG_ENOTLEADER; rc--) {
        assert_string_not_equal(sprig_strerror(rc), "unknown error");
    }
    assert_string_equal(sprig_strerror(-999), "unknown error");
    assert_int_equal(sprig__err(SPRIG_EINVAL, "bad %s", "thing"), SPRIG_EINVAL);
    assert_string_equal(sprig_errmsg(), "bad thing");
    assert_string_equal(sprig_version(), SPRIG_VERSION_STRING);
}

static void
test_buf(void **state)
{
    (void)state;
    sprig_buf b = {0};
    for (int i = 0; i < 1000; i++) {
        SPRIG_OK_(sprig_buf_append(&b, "abc", 3));
    }
    assert_int_equal(b.len, 3000);
    assert_memory_equal((char *)b.data + 2997, "abc", 3);
    sprig_buf_clear(&b);
    assert_null(b.data);
    sprig_buf_clear(NULL);
    assert_true(tu_bytes_eq(sprig_str("hello"), "hello"));
}

static int
sign(int c)
{
    return (c > 0) - (c < 0);
}

static int
enc_cmp(const uint8_t *a, const uint8_t *b)
{
    return sign(memcmp(a, b, 8));
}

static void
test_scalar_order(void **state)
{
    (void)state;
    uint64_t s = seed;
    for (int i = 0; i < 100000; i++) {
        uint8_t ea[8], eb[8];
        uint64_t a = tu_rand(&s) >> (tu_rand(&s) % 64);
        uint64_t b = tu_rand(&s) >> (tu_rand(&s) % 64);
        sprig_key_u64(a, ea);
        sprig_key_u64(b, eb);
        assert_int_equal(enc_cmp(ea, eb), (a > b) - (a < b));
        uint64_t ra;
        SPRIG_OK_(sprig_key_decode_u64((sprig_bytes){ea, 8}, &ra));
        assert_true(ra == a);

        int64_t ia = (int64_t)a * ((tu_rand(&s) & 1) ? -1 : 1);
        int64_t ib = (int64_t)b * ((tu_rand(&s) & 1) ? -1 : 1);
        sprig_key_i64(ia, ea);
        sprig_key_i64(ib, eb);
        assert_int_equal(enc_cmp(ea, eb), (ia > ib) - (ia < ib));
        int64_t ria;
        SPRIG_OK_(sprig_key_decode_i64((sprig_bytes){ea, 8}, &ria));
        assert_true(ria == ia);

        double fa = (double)ia / (double)(1 + (tu_rand(&s) % 1000));
        double fb = (double)ib / (double)(1 + (tu_rand(&s) % 1000));
        sprig_key_f64(fa, ea);
        sprig_key_f64(fb, eb);
        assert_int_equal(enc_cmp(ea, eb), (fa > fb) - (fa < fb));
        double rfa;
        SPRIG_OK_(sprig_key_decode_f64((sprig_bytes){ea, 8}, &rfa));
        assert_true(rfa == fa);
    }
    /* the edges */
    double edges[] = {-INFINITY, -1e308, -1.0, -1e-300, -0.0,
                      0.0,       1e-300, 1.0,  1e308,   INFINITY};
    for (size_t i = 1; i < sizeof edges / sizeof *edges; i++) {
        uint8_t ea[8], eb[8];
        sprig_key_f64(edges[i - 1], ea);
        sprig_key_f64(edges[i], eb);
        assert_true(memcmp(ea, eb, 8) < 0);
    }
    uint8_t e[8];
    sprig_key_i64(INT64_MIN, e);
    uint8_t z[8] = {0};
    assert_memory_equal(e, z, 8);
    int64_t v;
    assert_int_equal(sprig_key_decode_i64((sprig_bytes){e, 7}, &v),
                     SPRIG_ECORRUPT);
}

/* A random tuple element and its reference ordering rank. */
typedef struct elem {
    int kind; /* 0 null 1 false 2 true 3 int 4 float 5 string 6 bytes */
    int64_t i;
    double f;
    char s[8];
    size_t slen;
} elem;

static void
rand_elem(uint64_t *s, elem *e)
{
    memset(e, 0, sizeof *e);
    e->kind = (int)(tu_rand(s) % 7);
    e->i = (int64_t)(tu_rand(s) % 7) - 3;
    e->f = (double)e->i / 2.0;
    e->slen = tu_rand(s) % 4;
    for (size_t j = 0; j < e->slen; j++) {
        e->s[j] = "a\0b"[tu_rand(s) % 3]; /* NULs exercise the escape */
    }
}

static int
cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = memcmp(a, b, n);
    return c ? sign(c) : (an > bn) - (an < bn);
}

static int
elem_cmp(const elem *a, const elem *b)
{
    if (a->kind != b->kind) {
        return a->kind < b->kind ? -1 : 1;
    }
    switch (a->kind) {
    case 3: return (a->i > b->i) - (a->i < b->i);
    case 4: return (a->f > b->f) - (a->f < b->f);
    case 5:
    case 6: return cmp_bytes(a->s, a->slen, b->s, b->slen);
    default: return 0;
    }
}

static void
encode(sprig_key_builder *kb, const elem *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (e[i].kind) {
        case 0: SPRIG_OK_(sprig_key_add_null(kb)); break;
        case 1: SPRIG_OK_(sprig_key_add_bool(kb, false)); break;
        case 2: SPRIG_OK_(sprig_key_add_bool(kb, true)); break;
        case 3: SPRIG_OK_(sprig_key_add_i64(kb, e[i].i)); break;
        case 4: SPRIG_OK_(sprig_key_add_f64(kb, e[i].f)); break;
        case 5: {
            /* strings cannot hold NULs: use the bytes up to the first */
            SPRIG_OK_(
                sprig_key_add_bytes(kb, (sprig_bytes){e[i].s, e[i].slen}));
            break;
        }
        case 6:
            SPRIG_OK_(
                sprig_key_add_bytes(kb, (sprig_bytes){e[i].s, e[i].slen}));
            break;
        }
    }
}

static void
check_decode(sprig_bytes key, const elem *e, size_t n)
{
    sprig_key_reader r;
    sprig_key_elem out;
    sprig_key_reader_init(&r, key);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sprig_key_next(&r, &out), 1);
        if (e[i].kind == 3) {
            int64_t v = out.kind == SPRIG_KEY_NEGINT ? out.num.i64
                                                     : (int64_t)out.num.u64;
            assert_true(v == e[i].i);
        } else if (e[i].kind == 4) {
            assert_true(out.num.f64 == e[i].f);
        } else if (e[i].kind >= 5) {
            assert_int_equal(out.bytes.len, e[i].slen);
            assert_memory_equal(out.bytes.data, e[i].s, e[i].slen);
        }
    }
    assert_int_equal(sprig_key_next(&r, &out), 0);
    sprig_key_reader_clear(&r);
}

static void
test_tuple_order(void **state)
{
    (void)state;
    uint64_t s = seed + 1;
    for (int round = 0; round < 20000; round++) {
        elem a[3], b[3];
        size_t na = 1 + tu_rand(&s) % 3, nb = 1 + tu_rand(&s) % 3;
        for (size_t i = 0; i < 3; i++) {
            rand_elem(&s, &a[i]);
            rand_elem(&s, &b[i]);
            a[i].kind = a[i].kind == 5 ? 6 : a[i].kind;
            b[i].kind = b[i].kind == 5 ? 6 : b[i].kind;
        }
        int want = 0;
        for (size_t i = 0; i < na && i < nb && want == 0; i++) {
            want = elem_cmp(&a[i], &b[i]);
        }
        if (want == 0) {
            want = (na > nb) - (na < nb);
        }
        sprig_key_builder ka = {0}, kb = {0};
        encode(&ka, a, na);
        encode(&kb, b, nb);
        sprig_bytes ea = sprig_key_bytes(&ka), eb = sprig_key_bytes(&kb);
        int got = cmp_bytes(ea.data, ea.len, eb.data, eb.len);
        if (got != want) {
            print_message("round %d: order %d, wanted %d\n", round, got, want);
            fail();
        }
        check_decode(ea, a, na);
        sprig_key_builder_clear(&ka);
        sprig_key_builder_clear(&kb);
    }
    /* integers added as u64 and i64 compare by value */
    sprig_key_builder x = {0}, y = {0};
    SPRIG_OK_(sprig_key_add_i64(&x, -1));
    SPRIG_OK_(sprig_key_add_u64(&y, 0));
    assert_true(memcmp(sprig_key_bytes(&x).data, sprig_key_bytes(&y).data, 9) <
                0);
    sprig_key_builder_clear(&x);
    sprig_key_builder_clear(&y);
    sprig_key_builder st = {0};
    SPRIG_OK_(sprig_key_add_str(&st, "abc"));
    check_decode(sprig_key_bytes(&st),
                 &(elem){.kind = 5, .s = "abc", .slen = 3}, 1);
    sprig_key_builder_clear(&st);
}

static void
test_tuple_malformed(void **state)
{
    (void)state;
    uint64_t s = seed + 2;
    int corrupt = 0;
    for (int round = 0; round < 50000; round++) {
        uint8_t buf[24];
        size_t n = tu_rand(&s) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint8_t choices[] = {0x01, 0x02, 0x03, 0x10, 0x11, 0x20,
                                 0x30, 0x31, 0x00, 0xFF, 0x7F};
            buf[i] = (tu_rand(&s) & 1) ? choices[tu_rand(&s) % 11]
                                       : (uint8_t)tu_rand(&s);
        }
        sprig_key_reader r;
        sprig_key_elem e;
        sprig_key_reader_init(&r, (sprig_bytes){buf, n});
        int rc, steps = 0;
        while ((rc = sprig_key_next(&r, &e)) == 1) {
            steps++;
            assert_true(steps <= (int)n);
        }
        assert_true(rc == 0 || rc == SPRIG_ECORRUPT);
        corrupt += rc == SPRIG_ECORRUPT;
        sprig_key_reader_clear(&r);
    }
    assert_true(corrupt > 0);
}

static void
test_names(void **state)
{
    (void)state;
    const char *good[] = {"a", "A_b-c.d", "_admin", "0x", "app.users"};
    const char *bad[] = {"", ".a", "-a", "a b", "a/b", "é", "a\n"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        SPRIG_OK_(sprig__check_db_name(good[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        SPRIG_EXPECT(SPRIG_EINVAL, sprig__check_db_name(bad[i]));
        assert_non_null(strstr(sprig_errmsg(), "database name"));
    }
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[79] = 0;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__check_db_name(longname));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__check_db_name(NULL));
}

static void
test_schema_codec(void **state)
{
    (void)state;
    sprig_collection_def cols[] = {{"app.users", SPRIG_ID_NATURAL, 0},
                                   {"msgs", SPRIG_ID_U64, 0}};
    sprig_schema_def s = {"app", cols, 2};
    SPRIG_OK_(sprig__schema_check(&s));
    sprig_buf enc = {0};
    SPRIG_OK_(sprig__schema_encode(&s, &enc));
    sprig_schema_def *d;
    SPRIG_OK_(sprig__schema_decode(sprig_buf_bytes(&enc), &d));
    assert_string_equal(d->name, "app");
    assert_int_equal(d->n_collections, 2);
    assert_string_equal(d->collections[0].name, "app.users");
    assert_int_equal(d->collections[0].id_kind, SPRIG_ID_NATURAL);
    assert_ptr_equal(sprig__schema_find(d, "msgs"), &d->collections[1]);
    assert_null(sprig__schema_find(d, "nope"));
    sprig__free(d);
    /* every truncation is a clean ECORRUPT */
    for (size_t n = 0; n < enc.len; n++) {
        SPRIG_EXPECT(SPRIG_ECORRUPT,
                     sprig__schema_decode((sprig_bytes){enc.data, n}, &d));
        assert_null(d);
    }
    sprig_buf_clear(&enc);

    sprig_collection_def dup[] = {{"a", SPRIG_ID_U64, 0},
                                  {"a", SPRIG_ID_U64, 0}};
    sprig_schema_def sd = {"s", dup, 2};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__schema_check(&sd));
    assert_non_null(strstr(sprig_errmsg(), "twice"));
    sprig_collection_def badc[] = {{"bad name", SPRIG_ID_U64, 0}};
    sprig_schema_def sb = {"s", badc, 1};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__schema_check(&sb));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__schema_check(NULL));
}

static void
test_txn_build(void **state)
{
    (void)state;
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    uint8_t big[SPRIG_ID_MAX + 1] = {1};
    sprig_bytes bid = {big, sizeof big};
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_txn_insert(t, "c", &bid, sprig_str("x")));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_txn_insert(t, "", NULL, sprig_str("x")));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_txn_insert(t, NULL, NULL, sprig_str("x")));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_txn_update(t, "c", NULL, sprig_str("x")));
    sprig_bytes empty = {"", 0};
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_txn_overwrite(t, "c", empty, sprig_str("x")));
    assert_int_equal(sprig_txn_count(t), 0);
    char buf[8] = "abcdefg";
    sprig_bytes id = {buf, 3};
    SPRIG_OK_(sprig_txn_overwrite(t, "coll", id, sprig_str("v")));
    buf[0] = 'X'; /* the transaction kept its own copy */
    assert_int_equal(sprig_txn_count(t), 1);
    assert_memory_equal(t->ops[0].id.data, "abc", 3);
    sprig_txn_free(t);
    sprig_txn_free(NULL);
}

static void
test_log_codec(void **state)
{
    (void)state;
    uint8_t id1[] = {0, 1, 2};
    sprig_change c[2] = {{"coll.a", {id1, 3}, 7, false},
                         {"b", {"zz", 2}, 3, true}};
    sprig_buf rec = {0};
    SPRIG_OK_(sprig__log_record_encode(1234, c, 2, &rec));
    sprig_txn_log *l = sprig__calloc(1, sizeof *l);
    SPRIG_OK_(sprig__txn_log_append(l, 42, sprig_buf_bytes(&rec)));
    assert_int_equal(sprig_txn_log_count(l), 1);
    assert_int_equal(sprig_txn_log_id(l, 0), 42);
    assert_int_equal(sprig_txn_log_timestamp_ms(l, 0), 1234);
    assert_int_equal(sprig_txn_log_change_count(l, 0), 2);
    sprig_change out;
    SPRIG_OK_(sprig_txn_log_change(l, 0, 1, &out));
    assert_string_equal(out.collection, "b");
    assert_true(out.deleted);
    assert_int_equal(out.revision, 3);
    assert_true(tu_bytes_eq(out.id, "zz"));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_txn_log_change(l, 0, 2, &out));
    for (size_t n = 0; n < rec.len; n++) {
        SPRIG_EXPECT(SPRIG_ECORRUPT,
                     sprig__txn_log_append(l, 43, (sprig_bytes){rec.data, n}));
    }
    assert_int_equal(sprig_txn_log_count(l), 1);
    sprig_txn_log_free(l);
    sprig_buf_clear(&rec);
}

int
main(void)
{
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_scalar_order),
        cmocka_unit_test(test_tuple_order),
        cmocka_unit_test(test_tuple_malformed),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_schema_codec),
        cmocka_unit_test(test_txn_build),
        cmocka_unit_test(test_log_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
