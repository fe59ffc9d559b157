/*
 * test_fuzz_findings.c -- regression tests for the five faults found by
 * fuzzing from outside the tree (issue 17, item 5), one test each:
 *   - a built-in reduce state is stored with no uninitialised bytes;
 *   - a stored schema claiming 0xFFFFFFFF views is SPRIG_ECORRUPT before
 *     anything the size of that count is allocated;
 *   - sprig_key_to_json() writes only well-formed UTF-8 (U+FFFD for the
 *     rest: bad lead bytes, overlongs, surrogates, > U+10FFFF);
 *   - every NaN, whatever its sign, sorts after +inf;
 *   - a document whose declarative-view key is over SPRIG_KEY_MAX is
 *     refused at write time by lazy views as by eager ones, and one stored
 *     before a view existed is skipped, so no writer can break a view.
 * The fuzz harnesses that found them live in fuzz/ (key, schema_record,
 * bstate, jview), their corpora replayed by make test.  Then issue 17
 * item 3 (corrupt files): a damaged registry entry no longer makes the
 * open delete its database's directory.
 */
#include "viewtest.h"

#include "core/core.h"
#include "local/codec.h"

#include <lmdb.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- built-in reduce state ---------------------------------------------- */

static void
test_bstate_no_uninitialised_bytes(void **state)
{
    sprig__bstate s;
    uint8_t enc[SPRIG__BSTATE_LEN];
    sprig__bstate_init(&s);
    sprig__bstate_add(&s, sprig_str("12"));
    sprig__bstate_add(&s, sprig_str("2.5"));
    memset(enc, 0xAA, sizeof enc);
    sprig__bstate_encode(&s, enc);
    for (size_t i = 0; i < sizeof enc; i++) {
        if (enc[i] == 0xAA) {
            fail_msg("byte %zu of the stored state was not written", i);
        }
    }
    sprig__bstate back;
    SPRIG_OK_(sprig__bstate_decode((sprig_bytes){enc, sizeof enc}, &back));
    assert_int_equal(back.count, 2);
    assert_true(back.min.d == 2.5 && back.max.i == 12);
}

/* ---- stored schema with a corrupt view count ---------------------------- */

static size_t biggest;

static void *
big_malloc(size_t n)
{
    biggest = n > biggest ? n : biggest;
    return malloc(n);
}

static void *
big_calloc(size_t n, size_t size)
{
    biggest = n * size > biggest ? n * size : biggest;
    return calloc(n, size);
}

static void
test_schema_view_count_corrupt(void **state)
{
    /* version 2, schema "s", one collection "c" (natural ids, flags 0)
     * claiming 0xFFFFFFFF views, then a few bytes */
    static const uint8_t rec[] = {
        2,   0,   0, 0, 1, 's', 0,    0,    0,    1,    0, 0, 0, 1,
        'c', 1,   0, 0, 0, 0,   0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
        1,   'v', 0, 0, 0, 1,   0,    0,    0,    0,    0, 0, 0, 0};
    sprig_schema_def *out = NULL;
    SPRIG_OK_(sprig_replace_allocator(big_malloc, realloc, big_calloc, free));
    biggest = 0;
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig__schema_decode((sprig_bytes){rec, sizeof rec}, &out));
    SPRIG_OK_(sprig_replace_allocator(malloc, realloc, calloc, free));
    assert_null(out);
    if (biggest > 4096) {
        fail_msg("decoding a %zu-byte record allocated %zu bytes", sizeof rec,
                 biggest);
    }
    assert_non_null(strstr(sprig_errmsg(), "truncated"));
}

/* ---- keys back to JSON: well-formed UTF-8 only -------------------------- */

/* True when s[0..n) is well-formed UTF-8 (an independent reading). */
static bool
utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], need;
        if (c < 0x80) {
            need = 0;
        } else if (c >= 0xC0 && c < 0xF8) {
            need = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        } else {
            return false;
        }
        if (i + need >= n) {
            return false;
        }
        c &= need == 0 ? 0x7F : need == 1 ? 0x1F : need == 2 ? 0x0F : 0x07;
        for (uint32_t j = 1; j <= need; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                return false;
            }
            c = c << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (c < min[need] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            return false;
        }
        i += need + 1;
    }
    return true;
}

static void
expect_json_of_string(const char *raw, const char *want)
{
    sprig_key_builder kb = {0};
    sprig_buf out = {0};
    SPRIG_OK_(sprig_key_add_str(&kb, raw));
    SPRIG_OK_(sprig_key_to_json(sprig_key_bytes(&kb), &out));
    assert_true(utf8_ok(out.data, out.len));
    if (out.len != strlen(want) || memcmp(out.data, want, out.len)) {
        fail_msg("%.*s, wanted %s", (int)out.len, (char *)out.data, want);
    }
    sprig_buf_clear(&out);
    sprig_key_builder_clear(&kb);
}

#define FFFD "\xEF\xBF\xBD"

static void
test_key_to_json_utf8(void **state)
{
    /* the fuzzer's input: tag 0x30 (string), ff bd bd, terminator */
    static const uint8_t found[] = {0x30, 0xff, 0xbd, 0xbd, 0x00};
    sprig_buf out = {0};
    SPRIG_OK_(sprig_key_to_json((sprig_bytes){found, sizeof found}, &out));
    assert_true(utf8_ok(out.data, out.len));
    sprig_buf_clear(&out);
    expect_json_of_string("\xff\xbd\xbd", "\"" FFFD FFFD FFFD "\"");
    expect_json_of_string("\xf5\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
    expect_json_of_string("\xc0\xaf", "\"" FFFD FFFD "\""); /* overlong */
    expect_json_of_string("\xe0\x80\xaf",
                          "\"" FFFD FFFD FFFD "\""); /* overlong */
    expect_json_of_string("\xf0\x8f\xbf\xbf",
                          "\"" FFFD FFFD FFFD FFFD "\""); /* overlong */
    expect_json_of_string("\xed\xa0\x80",
                          "\"" FFFD FFFD FFFD "\""); /* surrogate */
    expect_json_of_string("\xf4\x90\x80\x80",
                          "\"" FFFD FFFD FFFD FFFD "\"");   /* > U+10FFFF */
    expect_json_of_string("\xe2\x82", "\"" FFFD FFFD "\""); /* truncated */
    /* well-formed text passes through */
    expect_json_of_string(
        "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
        "\"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
        "\xf4\x8f\xbf\xbf\"");
    expect_json_of_string("\xed\x9f\xbf", "\"\xed\x9f\xbf\""); /* U+D7FF */
}

/* ---- NaN sorts last ------------------------------------------------------ */

static void
test_negative_nan_sorts_last(void **state)
{
    volatile double zero = 0.0;
    double nans[] = {zero / zero, -NAN, NAN, -(zero / zero)};
    uint8_t inf[8], n[8], first[8];
    sprig_key_f64(INFINITY, inf);
    for (size_t i = 0; i < sizeof nans / sizeof *nans; i++) {
        assert_true(isnan(nans[i]));
        sprig_key_f64(nans[i], n);
        assert_true(memcmp(n, inf, 8) > 0);
        if (i == 0) {
            memcpy(first, n, 8);
        }
        assert_memory_equal(n, first, 8); /* one NaN */
        double back;
        SPRIG_OK_(sprig_key_decode_f64((sprig_bytes){n, 8}, &back));
        assert_true(isnan(back));
        /* in a tuple too */
        sprig_key_builder a = {0}, b = {0};
        SPRIG_OK_(sprig_key_add_f64(&a, INFINITY));
        SPRIG_OK_(sprig_key_add_f64(&b, nans[i]));
        assert_true(sprig__bytes_cmp(sprig_key_bytes(&a), sprig_key_bytes(&b)) <
                    0);
        sprig_key_builder_clear(&a);
        sprig_key_builder_clear(&b);
    }
}

/* ---- a declarative-view key over the limit ------------------------------ */

static const sprig_view_def big_views[] = {
    {.name = "lazy",
     .version = 1,
     .json_key = "k",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
    {.name = "eager",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k"},
};
static const sprig_collection_def big_colls[] = {
    {"c", SPRIG_ID_NATURAL, 0, big_views, 2},
    {"c_lazy_only", SPRIG_ID_NATURAL, 0, big_views, 1},
};
static const sprig_schema_def big_schema = {"big", big_colls, 2};
static const sprig_collection_def plain_colls[] = {
    {"c", SPRIG_ID_NATURAL, 0, NULL, 0},
    {"c_lazy_only", SPRIG_ID_NATURAL, 0, NULL, 0},
};
static const sprig_schema_def plain_schema = {"big", plain_colls, 2};

static char *
doc_with_key(size_t n)
{
    char *s = malloc(n + 16);
    assert_non_null(s);
    memcpy(s, "{\"k\":\"", 6);
    memset(s + 6, 'x', n);
    memcpy(s + 6 + n, "\"}", 3);
    return s;
}

static void
expect_count(sprig_db *db, const char *coll, const char *view, const char *n)
{
    sprig_view_query q;
    sprig_buf r = {0};
    sprig_view_query_init(&q, coll, view);
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_int_equal(r.len, strlen(n));
    assert_memory_equal(r.data, n, r.len);
    sprig_buf_clear(&r);
}

static void
test_view_key_over_limit(void **state)
{
    const char *dir = tu_tmpdir("fuzz-bigkey");
    char *big = doc_with_key(SPRIG_KEY_MAX + 10), *ok = doc_with_key(50);
    sprig_db *db;
    /* stored before the views existed */
    SPRIG_OK_(sprig_db_open_local(dir, &plain_schema, &db));
    SPRIG_OK_(sprig_overwrite(db, "c_lazy_only", sprig_str("old"),
                              sprig_str(big), NULL));
    sprig_db_close(db);
    SPRIG_OK_(sprig_db_open_local(dir, &big_schema, &db));
    /* a lazy-only collection refuses it now, as an eager view does */
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_overwrite(db, "c_lazy_only", sprig_str("a"),
                                 sprig_str(big), NULL));
    assert_non_null(strstr(sprig_errmsg(), "view 'lazy'"));
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_overwrite(db, "c", sprig_str("a"),
                                                sprig_str(big), NULL));
    SPRIG_OK_(sprig_overwrite(db, "c_lazy_only", sprig_str("b"), sprig_str(ok),
                              NULL));
    SPRIG_OK_(sprig_overwrite(db, "c", sprig_str("b"), sprig_str(ok), NULL));
    /* the view serves every reader: the old document is skipped */
    expect_count(db, "c_lazy_only", "lazy", "1");
    expect_count(db, "c", "lazy", "1");
    sprig_doc *d = NULL;
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(db, "c_lazy_only", sprig_str("a"), &d));
    sprig_db_close(db);
    free(big);
    free(ok);
    tu_rmtree(dir);
}

/* ---- a damaged registry entry must not delete its database --------------
 * (found by the byte-flip test and fuzz_admin_record: the open's sweep of
 * directories "the registry does not name" removed a database whose
 * registry entry was malformed or had a flipped name byte) */

static void
reg_edit(const char *dir, int how)
{
    char p[1300];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    snprintf(p, sizeof p, "%s/_admin", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, p, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "databases", 0, &dbi), 0);
    MDB_val k = {2, (void *)"db"}, v, nk = {2, (void *)"dc"};
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    uint8_t buf[256];
    memcpy(buf, v.mv_data, v.mv_size);
    MDB_val nv = {v.mv_size, buf};
    if (how == 0) { /* malformed: a version byte no build wrote */
        buf[0] ^= 0x40;
        assert_int_equal(mdb_put(txn, dbi, &k, &nv, 0), 0);
    } else { /* the name's last byte flipped: "db" becomes "dc" */
        assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
        assert_int_equal(mdb_put(txn, dbi, &nk, &nv, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_damaged_registry_keeps_data(void **state)
{
    static const sprig_collection_def c[] = {
        {"docs", SPRIG_ID_NATURAL, 0, NULL, 0}};
    static const sprig_schema_def sch = {"rg", c, 1};
    for (int how = 0; how < 2; how++) {
        const char *dir = tu_tmpdir("reg-damage");
        char dbdir[1300], orphan[1300];
        sprig_storage_options o;
        sprig_storage *st;
        sprig_db *db;
        sprig_storage_options_init(&o);
        o.path = dir;
        SPRIG_OK_(sprig_storage_open(&o, &st));
        SPRIG_OK_(sprig_storage_register_schema(st, &sch));
        SPRIG_OK_(sprig_storage_create_database(st, "db", "rg", false));
        SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
        SPRIG_OK_(
            sprig_overwrite(db, "docs", sprig_str("a"), sprig_str("{}"), NULL));
        sprig_db_close(db);
        sprig_storage_close(st);
        reg_edit(dir, how);
        snprintf(dbdir, sizeof dbdir, "%s/db/db.1/data.mdb", dir);
        snprintf(orphan, sizeof orphan, "%s/db/zz.99", dir);
        assert_int_equal(mkdir(orphan, 0700), 0); /* a real orphan */
        SPRIG_OK_(sprig_storage_open(&o, &st));
        assert_int_equal(access(dbdir, F_OK), 0); /* kept */
        /* an entry that does not decode (malformed, or its flipped name
         * failing the record's CRC): nothing is removed, not even the
         * real orphan (test_storage.c test_orphans_swept: a sound registry) */
        assert_int_equal(access(orphan, F_OK), 0);
        int rc = sprig_storage_open_database(st, how ? "dc" : "db", &db);
        /* refused, named: never an empty database made anew */
        assert_int_equal(rc, SPRIG_ECORRUPT);
        assert_non_null(strstr(sprig_errmsg(), how ? "'dc'" : "'db'"));
        if (how) { /* the real name: refused too, not "no database" */
            rc = sprig_storage_open_database(st, "db", &db);
            assert_int_equal(rc, SPRIG_ECORRUPT);
            assert_non_null(strstr(sprig_errmsg(), "registry"));
        }
        sprig_storage_close(st);
        tu_rmtree(dir);
    }
}

/* ---- a compressed value claiming 2 GiB (fuzz_kv_record) ---------------- */

static void *
big_realloc(void *p, size_t n)
{
    biggest = n > biggest ? n : biggest;
    return realloc(p, n);
}

static void
test_compressed_length_corrupt(void **state)
{
    /* [plain length u32 BE][LZ4 block]: 12 bytes claiming 2 GiB - 1 */
    static const uint8_t stored[] = {0x7f, 0xff, 0xff, 0xff, 0x40, 'a',
                                     'b',  'c',  'd',  0,    0,    0};
    sprig__vloc loc = {'k', "db.1", "", {NULL, 0}};
    sprig_buf scratch = {0};
    sprig_bytes plain;
    SPRIG_OK_(
        sprig_replace_allocator(big_malloc, big_realloc, big_calloc, free));
    biggest = 0;
    int rc = sprig__codec_decode(NULL, &loc, SPRIG__CF_LZ4,
                                 (sprig_bytes){stored, sizeof stored}, &scratch,
                                 &plain);
    SPRIG_OK_(sprig_replace_allocator(malloc, realloc, calloc, free));
    sprig_buf_clear(&scratch);
    assert_int_equal(rc, SPRIG_ECORRUPT);
    if (biggest > 4096) {
        fail_msg("decoding 12 bytes allocated %zu bytes", biggest);
    }
}

/* ---- a view index entry whose document id is too long (fuzz_view_record):
 * SPRIG_ECORRUPT naming the database, not SPRIG_ETOOBIG ------------------ */

static void
test_view_entry_id_malformed(void **state)
{
    static const sprig_view_def v[] = {{.name = "v",
                                        .version = 1,
                                        .policy = SPRIG_VIEW_EAGER,
                                        .json_key = "k"}};
    static const sprig_collection_def c[] = {
        {"docs", SPRIG_ID_NATURAL, 0, v, 1}};
    static const sprig_schema_def sch = {"ve", c, 1};
    const char *dir = tu_tmpdir("view-entry");
    char p[1300];
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    sprig_storage_options_init(&o);
    o.path = dir;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &sch));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "ve", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    SPRIG_OK_(sprig_overwrite(db, "docs", sprig_str("a"),
                              sprig_str("{\"k\":1}"), NULL));
    sprig_db_close(db);
    sprig_storage_close(st);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, val;
    uint8_t id[300];
    memset(id, 'x', sizeof id);
    snprintf(p, sizeof p, "%s/db/db.1", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, p, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "v/docs/v/e", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &val, MDB_FIRST), 0);
    MDB_val nv = {sizeof id, id};
    assert_int_equal(mdb_cursor_put(cur, &k, &nv, 0), 0); /* a second id */
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &sch));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    sprig_view_query q;
    sprig_mapping_list *l = NULL;
    sprig_view_query_init(&q, "docs", "v");
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_view_query_mappings(db, &q, &l));
    assert_non_null(strstr(sprig_errmsg(), "database 'db'"));
    assert_non_null(strstr(sprig_errmsg(), "malformed"));
    sprig_mapping_list_free(l);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bstate_no_uninitialised_bytes),
        cmocka_unit_test(test_schema_view_count_corrupt),
        cmocka_unit_test(test_key_to_json_utf8),
        cmocka_unit_test(test_negative_nan_sorts_last),
        cmocka_unit_test(test_view_key_over_limit),
        cmocka_unit_test(test_damaged_registry_keeps_data),
        cmocka_unit_test(test_compressed_length_corrupt),
        cmocka_unit_test(test_view_entry_id_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
