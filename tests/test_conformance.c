/*
 * test_conformance.c -- one suite of behaviour tests, written once against
 * the public API (sprig.h), run against every placement (placement.h): a
 * local storage, and a server over ws:// on loopback.  The same assertions
 * hold in both, which is architecture.md's promise: code written against
 * sprig_storage and sprig_db does not change when the database moves.
 */
#include "placement.h"

static const sprig_collection_def cols[] = {{"msgs", SPRIG_ID_U64, 0},
                                            {"kv", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"conf", cols, 2};

static const char *root;
static const char *kind; /* the placement of the group running */

static int
setup(void **state)
{
    placement *p = calloc(1, sizeof *p);
    placement_open(p, kind, root, &schema);
    *state = p;
    return 0;
}

static int
teardown(void **state)
{
    placement_close(*state);
    free(*state);
    return 0;
}

static sprig_db *
fresh_db(placement *p, const char *name)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_create_database(p->st, name, "conf", false));
    SPRIG_OK_(sprig_storage_database(p->st, name, &db));
    return db;
}

static void
test_storage_admin(void **state)
{
    placement *p = *state;
    SPRIG_OK_(sprig_storage_create_database(p->st, "b", "conf", false));
    SPRIG_OK_(sprig_storage_create_database(p->st, "a", "conf", false));
    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig_storage_create_database(p->st, "a", "conf", false));
    SPRIG_OK_(sprig_storage_create_database(p->st, "a", "conf", true));
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_storage_create_database(p->st, "c", "nope", false));
    assert_non_null(strstr(sprig_errmsg(), "'nope' is not registered"));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_storage_create_database(p->st, "b/d", "conf", false));
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(p->st, &l));
    assert_int_equal(sprig_database_list_count(l), 2);
    assert_string_equal(sprig_database_list_name(l, 0), "a");
    assert_string_equal(sprig_database_list_schema(l, 1), "conf");
    sprig_database_list_free(l);
    sprig_schema_list *sl;
    SPRIG_OK_(sprig_storage_list_schemas(p->st, &sl));
    assert_int_equal(sprig_schema_list_count(sl), 1);
    const sprig_schema_def *s = sprig_schema_list_get(sl, 0);
    assert_string_equal(s->name, "conf");
    assert_int_equal(s->n_collections, 2);
    assert_int_equal(s->collections[1].id_kind, SPRIG_ID_NATURAL);
    sprig_schema_list_free(sl);
    SPRIG_OK_(sprig_storage_delete_database(p->st, "a"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_delete_database(p->st, "a"));
    sprig_db *db;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_database(p->st, "a", &db));
    /* a new collection registered over the placement's storage */
    static const sprig_collection_def more[] = {{"msgs", SPRIG_ID_U64, 0},
                                                {"kv", SPRIG_ID_NATURAL, 0},
                                                {"extra", SPRIG_ID_U64, 0}};
    static const sprig_schema_def grown = {"conf", more, 3};
    SPRIG_OK_(sprig_storage_register_schema(p->st, &grown));
    SPRIG_OK_(sprig_storage_create_database(p->st, "g", "conf", false));
    SPRIG_OK_(sprig_storage_database(p->st, "g", &db));
    SPRIG_OK_(sprig_insert(db, "extra", NULL, sprig_str("x"), NULL));
    sprig_db_close(db);
}

static void
test_crud(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "crud");
    assert_string_equal(sprig_db_name(db), "crud");
    sprig_header_buf h, out;
    SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("one"), &h));
    uint8_t b[8];
    assert_memory_equal(h.id, sprig_id_u64(1, b).data, 8);
    assert_int_equal(h.revision, 1);
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "msgs", (sprig_bytes){h.id, 8}, &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), "one"));
    assert_memory_equal(sprig_doc_header(d).hash, h.hash, 16);
    sprig_doc_free(d);
    sprig_header e = sprig_header_of(&h);
    SPRIG_OK_(sprig_update(db, "msgs", &e, sprig_str("two"), &out));
    assert_int_equal(out.revision, 2);
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_update(db, "msgs", &e, sprig_str("three"), &out));
    assert_int_equal(out.revision, 2); /* the stored header came back */
    assert_non_null(strstr(sprig_errmsg(), "revision"));
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_delete(db, "msgs", &e));
    SPRIG_OK_(sprig_overwrite(db, "kv", sprig_str("k"), sprig_str("v"), &out));
    SPRIG_OK_(sprig_overwrite(db, "kv", sprig_str("k"), sprig_str("v"), &out));
    assert_int_equal(out.revision, 1); /* identical: no new revision */
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_insert(db, "kv", &(sprig_bytes){"k", 1},
                                               sprig_str("w"), &out));
    assert_int_equal(out.revision, 1);
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(db, "kv", sprig_str("missing"), &d));
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_get(db, "nope", sprig_str("k"), &d));
    assert_non_null(strstr(sprig_errmsg(), "'nope' is not in schema"));
    uint8_t big[SPRIG_ID_MAX + 1] = {0};
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_insert(db, "kv", &(sprig_bytes){big, sizeof big},
                              sprig_str("v"), NULL));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert(db, "kv", NULL, sprig_str("v"), NULL));
    e = sprig_header_of(&out);
    SPRIG_OK_(sprig_delete(db, "kv", &e));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_delete(db, "kv", &e));
    sprig_db_close(db);
}

static void
fill(sprig_db *db)
{
    for (char c = 'a'; c <= 'f'; c++) {
        char id[2] = {c, 0};
        SPRIG_OK_(
            sprig_insert(db, "kv", &(sprig_bytes){id, 1}, sprig_str(id), NULL));
    }
}

static void
test_reads(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "reads");
    fill(db);
    sprig_range r = {{SPRIG_EXCLUDED, {"b", 1}}, {SPRIG_INCLUDED, {"e", 1}}};
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "kv", &r, SPRIG_DESC, 0, &l));
    assert_int_equal(sprig_doc_list_count(l), 3);
    assert_true(tu_bytes_eq(sprig_doc_contents(sprig_doc_list_get(l, 0)), "e"));
    sprig_doc_list_free(l);
    SPRIG_OK_(sprig_list(db, "kv", NULL, SPRIG_ASC, 2, &l));
    assert_int_equal(sprig_doc_list_count(l), 2);
    sprig_doc_list_free(l);
    sprig_header_list *hl;
    SPRIG_OK_(sprig_list_headers(db, "kv", &r, SPRIG_ASC, 0, &hl));
    assert_int_equal(sprig_header_list_count(hl), 3);
    assert_true(tu_bytes_eq(sprig_header_list_get(hl, 0).id, "c"));
    sprig_header_list_free(hl);
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "kv", NULL, &n));
    assert_int_equal(n, 6);
    SPRIG_OK_(sprig_count(db, "kv", &r, &n));
    assert_int_equal(n, 3);
    sprig_bytes ids[] = {sprig_str("f"), sprig_str("zz"), sprig_str("a")};
    SPRIG_OK_(sprig_get_multiple(db, "kv", ids, 3, &l));
    assert_int_equal(sprig_doc_list_count(l), 2);
    assert_true(tu_bytes_eq(sprig_doc_contents(sprig_doc_list_get(l, 1)), "a"));
    sprig_doc_list_free(l);
    sprig_db_close(db);
}

static void
test_transactions(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "txn");
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "msgs", NULL, sprig_str("m")));
    SPRIG_OK_(
        sprig_txn_insert(t, "kv", &(sprig_bytes){"x", 1}, sprig_str("1")));
    sprig_header x1 = {{"x", 1}, 1, {0}};
    SPRIG_OK_(sprig_txn_update(t, "kv", &x1, sprig_str("2")));
    sprig_txn_result *res;
    SPRIG_OK_(sprig_txn_apply(db, t, &res));
    assert_int_equal(sprig_txn_result_id(res), 1);
    assert_int_equal(sprig_txn_result_header(res, 2).revision, 2);
    sprig_txn_result_free(res);
    /* applying again fails at op 1 (x exists) and leaves nothing */
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_txn_apply(db, t, &res));
    assert_int_equal(sprig_txn_result_failed(res), 1);
    sprig_header conflict;
    SPRIG_OK_(sprig_txn_result_conflict(res, &conflict));
    assert_int_equal(conflict.revision, 2);
    assert_true(tu_bytes_eq(conflict.id, "x"));
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    uint64_t n, last;
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &n));
    assert_int_equal(n, 1);
    SPRIG_OK_(sprig_last_transaction_id(db, &last));
    assert_int_equal(last, 1);
    for (int i = 0; i < 5; i++) {
        SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("more"), NULL));
    }
    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_transactions(db, 2, 3, &log));
    assert_int_equal(sprig_txn_log_count(log), 3);
    assert_int_equal(sprig_txn_log_id(log, 0), 2);
    assert_int_equal(sprig_txn_log_id(log, 2), 4);
    sprig_change c;
    SPRIG_OK_(sprig_txn_log_change(log, 0, 0, &c));
    assert_string_equal(c.collection, "msgs");
    assert_int_equal(c.revision, 1);
    assert_false(c.deleted);
    sprig_txn_log_free(log);
    SPRIG_OK_(sprig_list_executed_transactions(db, 1, 0, &log));
    assert_int_equal(sprig_txn_log_count(log), 6);
    assert_int_equal(sprig_txn_log_changes(log, 0), 3);
    sprig_txn_log_free(log);
    sprig_db_close(db);
}

static void
test_large_values(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "large");
    size_t n = 4u << 20;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)(i * 7);
    }
    SPRIG_OK_(sprig_overwrite(db, "kv", sprig_str("big"), (sprig_bytes){buf, n},
                              NULL));
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "kv", sprig_str("big"), &d));
    assert_int_equal(sprig_doc_contents(d).len, n);
    assert_memory_equal(sprig_doc_contents(d).data, buf, n);
    sprig_doc_free(d);
    free(buf);
    sprig_db_close(db);
}

#define SUITE(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(void)
{
    root = tu_tmpdir("conformance");
    const struct CMUnitTest tests[] = {
        SUITE(test_storage_admin), SUITE(test_crud),         SUITE(test_reads),
        SUITE(test_transactions),  SUITE(test_large_values),
    };
    const char *kinds[] = {"local", "ws"};
    int failed = 0;
    for (int i = 0; i < 2; i++) {
        kind = kinds[i];
        printf("== placement: %s\n", kind);
        failed += cmocka_run_group_tests_name(kind, tests, NULL, NULL);
    }
    if (!failed) {
        tu_rmtree(root);
    }
    return failed ? 1 : 0;
}
