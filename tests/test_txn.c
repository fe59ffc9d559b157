/*
 * test_txn.c -- transactions (F5): several operations over several
 * collections applied all or nothing; every kind of failure at every
 * position leaves nothing behind and no log entry; results name the failed
 * operation and the stored header; operations see the earlier ones of
 * their transaction; ids increase by one; the log records exactly what
 * changed and pages with since/limit; everything survives a reopen.
 */
#include "testutil.h"

static const sprig_collection_def cols[] = {{"a", SPRIG_ID_U64, 0},
                                            {"b", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"txn", cols, 2};

static const char *root;
static char path[1200];

static int
open_db(void **state)
{
    static int n;
    snprintf(path, sizeof path, "%s/t%d", root, n++);
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(path, &schema, &db));
    *state = db;
    return 0;
}

static int
close_db(void **state)
{
    sprig_db_close(*state);
    return 0;
}

static uint64_t
count(sprig_db *db, const char *coll)
{
    uint64_t n;
    SPRIG_OK_(sprig_count(db, coll, NULL, &n));
    return n;
}

static uint64_t
last_id(sprig_db *db)
{
    uint64_t n;
    SPRIG_OK_(sprig_last_txn_id(db, &n));
    return n;
}

static void
test_multi_collection(void **state)
{
    sprig_db *db = *state;
    assert_int_equal(last_id(db), 0);
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "a", NULL, sprig_str("a1")));
    SPRIG_OK_(sprig_txn_insert(t, "a", NULL, sprig_str("a2")));
    SPRIG_OK_(
        sprig_txn_insert(t, "b", &(sprig_bytes){"k", 1}, sprig_str("b1")));
    /* a later operation sees an earlier one of its own transaction */
    sprig_header k1 = {{"k", 1}, 1, {0}};
    SPRIG_OK_(sprig_txn_update(t, "b", &k1, sprig_str("b2")));
    SPRIG_OK_(sprig_txn_check(t, "b", sprig_str("k"), NULL));
    sprig_txn_result *r;
    SPRIG_OK_(sprig_txn_apply(db, t, &r));
    assert_int_equal(sprig_txn_result_id(r), 1);
    assert_int_equal(sprig_txn_result_count(r), 5);
    assert_int_equal(sprig_txn_result_failed(r), -1);
    assert_int_equal(sprig_txn_result_error(r), 0);
    sprig_header h;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_txn_result_conflict(r, &h));
    uint8_t b2[8];
    h = sprig_txn_result_header(r, 1);
    assert_memory_equal(h.id.data, sprig_id_u64(2, b2).data, 8);
    assert_int_equal(sprig_txn_result_header(r, 3).revision, 2);
    assert_int_equal(sprig_txn_result_header(r, 4).revision, 2);
    assert_int_equal(sprig_txn_result_header(r, 9).revision, 0);
    sprig_txn_result_free(r);
    assert_int_equal(count(db, "a"), 2);
    assert_int_equal(last_id(db), 1);

    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_txns(db, 0, 0, &log));
    assert_int_equal(sprig_txn_log_count(log), 1);
    assert_int_equal(sprig_txn_log_change_count(log, 0), 4);
    sprig_change c;
    SPRIG_OK_(sprig_txn_log_change(log, 0, 3, &c));
    assert_string_equal(c.collection, "b");
    assert_true(tu_bytes_eq(c.id, "k"));
    assert_int_equal(c.revision, 2);
    assert_false(c.deleted);
    assert_true(sprig_txn_log_timestamp_ms(log, 0) > 1700000000000ull);
    sprig_txn_log_free(log);
    /* the transaction is not consumed: applying again conflicts on "k" */
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_txn_apply(db, t, &r));
    assert_int_equal(sprig_txn_result_failed(r), 2);
    SPRIG_OK_(sprig_txn_result_conflict(r, &h));
    assert_int_equal(h.revision, 2);
    sprig_txn_result_free(r);
    assert_int_equal(count(db, "a"), 2); /* the pushes were undone */
    sprig_txn_free(t);
}

/* Build a transaction of 4 good operations with a bad one at `pos`. */
static sprig_txn *
txn_with_failure(int kind, int pos, const sprig_header *stored)
{
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "n%d", i);
        if (i != pos) {
            SPRIG_OK_(sprig_txn_overwrite(
                t, i % 2 ? "a" : "b",
                i % 2 ? sprig_id_u64(100 + (uint64_t)i, (uint8_t[8]){0})
                      : sprig_str(id),
                sprig_str("good")));
            continue;
        }
        sprig_header missing = {sprig_str("missing"), 1, {0}};
        sprig_header stale = *stored;
        stale.revision += 5;
        switch (kind) {
        case 0:
            SPRIG_OK_(sprig_txn_update(t, "b", &stale, sprig_str("x")));
            break;
        case 1: SPRIG_OK_(sprig_txn_delete(t, "b", &missing)); break;
        case 2:
            SPRIG_OK_(sprig_txn_insert(t, "zz", NULL, sprig_str("x")));
            break;
        case 3:
            SPRIG_OK_(sprig_txn_insert(t, "b", &stored->id, sprig_str("x")));
            break;
        case 4:
            SPRIG_OK_(sprig_txn_check(t, "b", sprig_str("missing"), NULL));
            break;
        case 5:
            SPRIG_OK_(sprig_txn_insert(t, "a", &(sprig_bytes){"abc", 3},
                                       sprig_str("x")));
            break;
        default: SPRIG_OK_(sprig_txn_check(t, "b", stored->id, &stale));
        }
    }
    return t;
}

static void
test_atomicity(void **state)
{
    sprig_db *db = *state;
    sprig_header_buf hb;
    SPRIG_OK_(
        sprig_insert(db, "b", &(sprig_bytes){"s", 1}, sprig_str("s"), &hb));
    sprig_header stored = sprig_header_of(&hb);
    const int want[] = {SPRIG_ECONFLICT, SPRIG_ENOTFOUND, SPRIG_ESCHEMA,
                        SPRIG_ECONFLICT, SPRIG_ENOTFOUND, SPRIG_EINVAL,
                        SPRIG_ECONFLICT};
    for (int kind = 0; kind < 7; kind++) {
        for (int pos = 0; pos < 5; pos++) {
            uint64_t before = last_id(db);
            sprig_txn *t = txn_with_failure(kind, pos, &stored);
            sprig_txn_result *r;
            SPRIG_EXPECT(want[kind], sprig_txn_apply(db, t, &r));
            assert_non_null(r);
            assert_int_equal(sprig_txn_result_failed(r), pos);
            assert_int_equal(sprig_txn_result_error(r), want[kind]);
            assert_int_equal(sprig_txn_result_id(r), 0);
            sprig_txn_result_free(r);
            sprig_txn_free(t);
            assert_int_equal(count(db, "a"), 0);
            assert_int_equal(count(db, "b"), 1);
            assert_int_equal(last_id(db), before);
        }
    }
    /* the same transaction without the failure commits */
    sprig_txn *t = txn_with_failure(0, 99, &stored);
    SPRIG_OK_(sprig_txn_apply(db, t, NULL));
    sprig_txn_free(t);
    assert_int_equal(count(db, "a"), 2);
    assert_int_equal(count(db, "b"), 4);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_txn_apply(db, NULL, NULL));
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_txn_apply(db, t, NULL));
    sprig_txn_free(t);
}

static void
test_log_paging_and_reopen(void **state)
{
    sprig_db *db = *state;
    for (int i = 0; i < 25; i++) {
        SPRIG_OK_(sprig_insert(db, "a", NULL, sprig_str("x"), NULL));
    }
    sprig_header_buf hb;
    SPRIG_OK_(
        sprig_insert(db, "b", &(sprig_bytes){"d", 1}, sprig_str("d"), &hb));
    sprig_header h = sprig_header_of(&hb);
    SPRIG_OK_(sprig_delete(db, "b", &h));
    assert_int_equal(last_id(db), 27);
    sprig_db_close(db);
    SPRIG_OK_(sprig_db_open_local(path, &schema, &db));
    *state = db;
    assert_int_equal(last_id(db), 27);
    uint64_t since = 1, seen = 0;
    for (;;) {
        sprig_txn_log *log;
        SPRIG_OK_(sprig_list_executed_txns(db, since, 10, &log));
        size_t n = sprig_txn_log_count(log);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(sprig_txn_log_id(log, i), ++seen);
        }
        if (n) {
            since = sprig_txn_log_id(log, n - 1) + 1;
        }
        sprig_txn_log_free(log);
        if (n < 10) {
            break;
        }
    }
    assert_int_equal(seen, 27);
    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_txns(db, 27, 0, &log));
    sprig_change c;
    SPRIG_OK_(sprig_txn_log_change(log, 0, 0, &c));
    assert_true(c.deleted);
    assert_int_equal(c.revision, 1);
    sprig_txn_log_free(log);
}

/* Push ids are derived from the largest stored id, and the sequence is
 * recorded only when that largest one is deleted: across a reopen, and
 * within one transaction, no id is ever handed out twice. */
static void
test_push_ids_never_reused(void **state)
{
    sprig_db *db = *state;
    sprig_header_buf h[3];
    for (int i = 0; i < 3; i++) {
        SPRIG_OK_(sprig_insert(db, "a", NULL, sprig_str("x"), &h[i]));
    }
    sprig_header tail = sprig_header_of(&h[2]);
    SPRIG_OK_(sprig_delete(db, "a", &tail)); /* id 3, the largest */
    sprig_header mid = sprig_header_of(&h[0]);
    SPRIG_OK_(sprig_delete(db, "a", &mid)); /* id 1: not the largest */
    sprig_db_close(db);
    SPRIG_OK_(sprig_db_open_local(path, &schema, &db));
    *state = db;
    sprig_header_buf n;
    uint8_t b[8];
    SPRIG_OK_(sprig_insert(db, "a", NULL, sprig_str("y"), &n));
    assert_memory_equal(n.id, sprig_id_u64(4, b).data, 8);
    /* in one transaction: push, a named id past it, push, delete, push */
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "a", NULL, sprig_str("p5")));
    SPRIG_OK_(sprig_txn_insert(
        t, "a", &(sprig_bytes){sprig_id_u64(9, b).data, 8}, sprig_str("n9")));
    SPRIG_OK_(sprig_txn_insert(t, "a", NULL, sprig_str("p10")));
    sprig_header h10 = {sprig_id_u64(10, b), 1, {0}};
    SPRIG_OK_(sprig_txn_delete(t, "a", &h10));
    SPRIG_OK_(sprig_txn_insert(t, "a", NULL, sprig_str("p11")));
    sprig_txn_result *r;
    SPRIG_OK_(sprig_txn_apply(db, t, &r));
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) {
        SPRIG_OK_(sprig_key_decode_u64(sprig_txn_result_header(r, (size_t)i).id,
                                       &ids[i]));
    }
    assert_int_equal(ids[0], 5);
    assert_int_equal(ids[1], 9);
    assert_int_equal(ids[2], 10);
    assert_int_equal(ids[4], 11);
    sprig_txn_result_free(r);
    sprig_txn_free(t);
    sprig_db_close(db);
    SPRIG_OK_(sprig_db_open_local(path, &schema, &db));
    *state = db;
    SPRIG_OK_(sprig_insert(db, "a", NULL, sprig_str("z"), &n));
    assert_memory_equal(n.id, sprig_id_u64(12, b).data, 8);
}

static void
test_big_transaction(void **state)
{
    sprig_db *db = *state;
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    char body[200];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 20000; i++) {
        SPRIG_OK_(
            sprig_txn_insert(t, "a", NULL, (sprig_bytes){body, sizeof body}));
    }
    sprig_txn_result *r;
    SPRIG_OK_(sprig_txn_apply(db, t, &r));
    assert_int_equal(sprig_txn_result_count(r), 20000);
    sprig_txn_result_free(r);
    sprig_txn_free(t);
    assert_int_equal(count(db, "a"), 20000);
    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_txns(db, 0, 0, &log));
    assert_int_equal(sprig_txn_log_change_count(log, 0), 20000);
    sprig_txn_log_free(log);
}

int
main(void)
{
    root = tu_tmpdir("txn");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_multi_collection, open_db,
                                        close_db),
        cmocka_unit_test_setup_teardown(test_atomicity, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_log_paging_and_reopen, open_db,
                                        close_db),
        cmocka_unit_test_setup_teardown(test_big_transaction, open_db,
                                        close_db),
        cmocka_unit_test_setup_teardown(test_push_ids_never_reused, open_db,
                                        close_db),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        tu_rmtree(root);
    }
    return rc;
}
