/*
 * test_backup_export.c -- logical export and import (issue 13 item 4):
 * export -> import into an empty storage round-trips every collection
 * (ids of both kinds, JSON contents byte for byte, binary contents) and
 * every key-value entry (each value kind, expiries; an expired entry is
 * not carried); a malformed line is refused with its file and line.
 */
#include "testutil.h"

#include <stdatomic.h>

static const sprig_collection_def cols[] = {{"n", SPRIG_ID_U64, 0},
                                            {"names", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"ex", cols, 2};
static const sprig_collection_def cols2[] = {{"c", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema2 = {"other", cols2, 1};

static const char *root;
static _Atomic uint64_t now_ms = 1700000000000ull;

static uint64_t
test_clock(void *udata)
{
    (void)udata;
    return atomic_load(&now_ms);
}

static bool sealed; /* open storages encrypted and compressed */

static sprig_storage *
open_at(const char *p)
{
    sprig_storage_options o;
    sprig_storage *st;
    sprig_storage_options_init(&o);
    o.path = p;
    o.encrypt = o.compress = sealed;
    o.compress_min = 1;
    o.durability = SPRIG_DURABILITY_NONE;
    o.clock_ms = test_clock;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    return st;
}

static void
kv_put(sprig_db *db, const char *ns, const char *key, sprig_value v,
       uint64_t expire_at)
{
    sprig_kv_set_opts so = {.expire_at_ms = expire_at};
    SPRIG_OK_(sprig_kv_set(db, ns, key, &v, &so, NULL, NULL));
}

static void
fill(sprig_storage *st)
{
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema2));
    SPRIG_OK_(sprig_storage_create_database(st, "one", "ex", false));
    SPRIG_OK_(sprig_storage_create_database(st, "two", "other", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "one", &db));
    static const uint8_t bin[] = {0, 1, '\n', 0xff, '"', '\\', 0};
    const char *docs[] = {"{ \"a\" : 1,  \"b\":[1.50, \"x\"] }", "42",
                          "\"text\"", "not json {", ""};
    for (size_t i = 0; i < 5; i++) {
        SPRIG_OK_(sprig_insert(db, "n", NULL, sprig_str(docs[i]), NULL));
    }
    SPRIG_OK_(
        sprig_insert(db, "n", NULL, (sprig_bytes){bin, sizeof bin}, NULL));
    sprig_bytes id1 = sprig_str("alice"), id2 = {bin, sizeof bin};
    SPRIG_OK_(
        sprig_insert(db, "names", &id1, sprig_str("{\"k\":\"é\"}"), NULL));
    SPRIG_OK_(sprig_insert(db, "names", &id2, sprig_str("[]"), NULL));
    uint64_t t = atomic_load(&now_ms);
    kv_put(db, "a", "text", sprig_value_of_bytes(sprig_str("hello")), 0);
    kv_put(db, "a", "bin", sprig_value_of_bytes((sprig_bytes){bin, 7}), 0);
    kv_put(db, "a", "neg", sprig_value_of_i64(-77), t + 3600000);
    kv_put(db, "a", "big", sprig_value_of_u64(UINT64_MAX - 3), 0);
    kv_put(db, "a", "pi", sprig_value_of_f64(3.25), 0);
    kv_put(db, "b", "soon", sprig_value_of_i64(1), t + 1000);
    sprig_db_close(db);
    SPRIG_OK_(sprig_storage_open_database(st, "two", &db));
    for (int i = 0; i < 1500; i++) { /* more than one import batch */
        char body[64];
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        SPRIG_OK_(sprig_insert(db, "c", NULL, sprig_str(body), NULL));
    }
    sprig_db_close(db);
    atomic_fetch_add(&now_ms, 2000); /* "b"/"soon" has expired */
}

static void
same_docs(sprig_db *a, sprig_db *b, const char *coll, size_t want)
{
    sprig_doc_list *la, *lb;
    SPRIG_OK_(sprig_list(a, coll, NULL, SPRIG_ASC, 0, &la));
    SPRIG_OK_(sprig_list(b, coll, NULL, SPRIG_ASC, 0, &lb));
    assert_int_equal(sprig_doc_list_count(la), want);
    assert_int_equal(sprig_doc_list_count(lb), want);
    for (size_t i = 0; i < want; i++) {
        const sprig_doc *da = sprig_doc_list_get(la, i);
        const sprig_doc *db = sprig_doc_list_get(lb, i);
        sprig_header ha = sprig_doc_header(da), hb = sprig_doc_header(db);
        sprig_bytes ca = sprig_doc_contents(da), cb = sprig_doc_contents(db);
        assert_int_equal(ha.id.len, hb.id.len);
        assert_memory_equal(ha.id.data, hb.id.data, ha.id.len);
        assert_int_equal(ca.len, cb.len);
        if (ca.len) {
            assert_memory_equal(ca.data, cb.data, ca.len);
        }
    }
    sprig_doc_list_free(la);
    sprig_doc_list_free(lb);
}

static void
same_kv(sprig_db *a, sprig_db *b, const char *ns, size_t want)
{
    sprig_kv_key_list *la, *lb;
    SPRIG_OK_(sprig_kv_list_keys(a, ns, NULL, NULL, 0, &la));
    SPRIG_OK_(sprig_kv_list_keys(b, ns, NULL, NULL, 0, &lb));
    assert_int_equal(sprig_kv_key_list_count(lb), want);
    assert_int_equal(sprig_kv_key_list_count(la), want);
    for (size_t i = 0; i < want; i++) {
        assert_string_equal(sprig_kv_key_list_key(la, i),
                            sprig_kv_key_list_key(lb, i));
        assert_int_equal(sprig_kv_key_list_expire_at(la, i),
                         sprig_kv_key_list_expire_at(lb, i));
        const sprig_value *va = sprig_kv_key_list_value(la, i);
        const sprig_value *vb = sprig_kv_key_list_value(lb, i);
        assert_int_equal(va->kind, vb->kind);
        if (va->kind == SPRIG_VALUE_BYTES) {
            assert_int_equal(va->bytes.len, vb->bytes.len);
            assert_memory_equal(va->bytes.data, vb->bytes.data, va->bytes.len);
        } else {
            assert_memory_equal(&va->num, &vb->num, sizeof va->num);
        }
    }
    sprig_kv_key_list_free(la);
    sprig_kv_key_list_free(lb);
}

/* Export -> import; `tag` names the directories, `seal` encrypts and
 * compresses both storages (the export must hold the plain values). */
static void
round_trip(const char *tag, bool seal)
{
    char src[1100], dst[1100], dir[1100];
    snprintf(src, sizeof src, "%s/%s-src", root, tag);
    snprintf(dst, sizeof dst, "%s/%s-dst", root, tag);
    snprintf(dir, sizeof dir, "%s/%s-export", root, tag);
    sealed = seal;
    sprig_storage *a = open_at(src);
    fill(a);
    SPRIG_OK_(sprig_storage_export(a, dir, NULL, NULL));
    SPRIG_EXPECT(SPRIG_EEXIST, sprig_storage_export(a, dir, NULL, NULL));
    sprig_storage *b = open_at(dst);
    SPRIG_OK_(sprig_storage_import(b, dir, NULL, NULL));
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(b, &l));
    assert_int_equal(sprig_database_list_count(l), 2);
    assert_string_equal(sprig_database_list_schema(l, 0), "ex");
    assert_string_equal(sprig_database_list_schema(l, 1), "other");
    sprig_database_list_free(l);
    sprig_db *da, *db;
    SPRIG_OK_(sprig_storage_open_database(a, "one", &da));
    SPRIG_OK_(sprig_storage_open_database(b, "one", &db));
    same_docs(da, db, "n", 6);
    same_docs(da, db, "names", 2);
    same_kv(da, db, "a", 5);
    same_kv(da, db, "b", 0);
    sprig_db_close(da);
    sprig_db_close(db);
    SPRIG_OK_(sprig_storage_open_database(a, "two", &da));
    SPRIG_OK_(sprig_storage_open_database(b, "two", &db));
    same_docs(da, db, "c", 1500);
    sprig_db_close(da);
    sprig_db_close(db);
    /* the JSON document is in the file verbatim */
    char f[1200], line[512];
    snprintf(f, sizeof f, "%s/one/c/n.jsonl", dir);
    FILE *in = fopen(f, "r");
    assert_non_null(fgets(line, sizeof line, in));
    assert_string_equal(line,
                        "{\"id\":1,\"json\":{ \"a\" : 1,  \"b\":[1.50, \"x\"] "
                        "}}\n");
    fclose(in);
    sprig_storage_close(a);
    sprig_storage_close(b);
    sealed = false;
}

static void
test_export_import_round_trips(void **state)
{
    (void)state;
    round_trip("plain", false);
}

/* An encrypted, compressed storage exports its values decrypted and
 * decompressed (the file above holds the plain JSON), and imports into an
 * encrypted one. */
static void
test_export_import_round_trips_encrypted(void **state)
{
    (void)state;
    round_trip("sealed", true);
}

static void
test_import_refuses_a_bad_line(void **state)
{
    (void)state;
    char src[1100], dst[1100], dir[1100], f[1200];
    snprintf(src, sizeof src, "%s/src2", root);
    snprintf(dst, sizeof dst, "%s/dst2", root);
    snprintf(dir, sizeof dir, "%s/export2", root);
    sprig_storage *a = open_at(src);
    fill(a);
    SPRIG_OK_(sprig_storage_export(a, dir, NULL, NULL));
    sprig_storage_close(a);
    snprintf(f, sizeof f, "%s/one/kv.jsonl", dir);
    FILE *out = fopen(f, "a");
    fputs("{\"ns\":\"a\",\"key\":\"x\",\"type\":\"i64\",\"value\":\"no\"}\n",
          out);
    fclose(out);
    sprig_storage *b = open_at(dst);
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_import(b, dir, NULL, NULL));
    assert_non_null(strstr(sprig_errmsg(), "kv.jsonl:6"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_import(b, root, NULL, NULL));
    sprig_storage_close(b);
}

int
main(void)
{
    root = tu_tmpdir("backup_export");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_import_round_trips),
        cmocka_unit_test(test_export_import_round_trips_encrypted),
        cmocka_unit_test(test_import_refuses_a_bad_line),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        tu_rmtree(root);
    }
    return rc;
}
