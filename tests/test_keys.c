/*
 * test_keys.c -- keys no CRC covers (issue 17, item 3): a flipped byte of
 * an LMDB key that keeps its table's order is refused with
 * SPRIG_ECORRUPT naming the database, never read back changed.  Each test
 * flips the bytes of a real key in a real file (every copy of the node in
 * data.mdb: the live page and old copies LMDB left in free pages) with
 * the storage closed, then opens it through the public API:
 *   - a table's name in a database's table directory (a collection, a
 *     view table, `meta`): the table was recorded when created, so the
 *     open refuses instead of creating it anew, empty;
 *   - `_admin`'s registry table's name, and a database's name in the
 *     registry (the registry record's CRC covers its key);
 *   - the last and the first id of the transaction log (ids are 1..N);
 *   - a document id and a key-value key renamed in order: a lookup of the
 *     old key, which would answer "not found", is refused because a
 *     neighbour of where it would be fails against its own key (miss.c);
 * and the formats written before still open: a version-1 registry record,
 * a database whose tables have no records yet (they get them).
 */
#include "viewtest.h"

#include <lmdb.h>
#include <sys/stat.h>

static const sprig_view_def kv_views[] = {
    {.name = "v", .version = 1, .policy = SPRIG_VIEW_EAGER, .json_key = "k"}};
static const sprig_collection_def kcolls[] = {
    {"items", SPRIG_ID_NATURAL, 0, kv_views, 1}};
static const sprig_schema_def kschema = {"kt", kcolls, 1};

/* A storage in `dir` with databases "alpha" and "db" (documents a, b, c:
 * log ids 1..3), closed. */
static void
make_storage(const char *dir, sprig_storage_options *o)
{
    sprig_storage *st;
    sprig_db *db;
    sprig_storage_options_init(o);
    o->path = dir;
    SPRIG_OK_(sprig_storage_open(o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &kschema));
    SPRIG_OK_(sprig_storage_create_database(st, "alpha", "kt", false));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "kt", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        SPRIG_OK_(sprig_overwrite(db, "items", sprig_str(ids[i]),
                                  sprig_str("{\"k\":1}"), NULL));
    }
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* XOR `mask` into byte `at` of key `key` (n bytes) wherever a leaf node
 * with flags `flags` holds it in `file`; how many copies were changed. */
static int
flip_key(const char *file, uint16_t flags, const void *key, size_t n, size_t at,
         uint8_t mask)
{
    FILE *f = fopen(file, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    uint8_t *b = malloc((size_t)size);
    assert_non_null(b);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
    uint8_t hdr[4] = {(uint8_t)flags, (uint8_t)(flags >> 8), (uint8_t)n,
                      (uint8_t)(n >> 8)};
    int hits = 0;
    for (long i = 0; i + 4 + (long)n <= size; i++) {
        if (!memcmp(b + i, hdr, 4) && !memcmp(b + i + 4, key, n)) {
            b[i + 4 + at] ^= mask;
            hits++;
        }
    }
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fwrite(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    free(b);
    assert_true(hits > 0);
    return hits;
}

#define F_SUBDATA 0x02

static void
db_file(char *out, size_t n, const char *dir, const char *which)
{
    snprintf(out, n, "%s/%s/data.mdb", dir, which);
}

/* Open storage `o` and database "db": the failure code (0: opened; the
 * handle then in *out). */
static int
open_db(sprig_storage_options *o, sprig_storage **st, sprig_db **out)
{
    *out = NULL;
    int rc = sprig_storage_open(o, st);
    if (rc) {
        *st = NULL;
        return rc;
    }
    rc = sprig_storage_register_schema(*st, &kschema);
    return rc ? rc : sprig_storage_open_database(*st, "db", out);
}

static void
close_all(sprig_storage *st, sprig_db *db)
{
    if (db) {
        sprig_db_close(db);
    }
    if (st) {
        sprig_storage_close(st);
    }
}

/* ---- table names ----------------------------------------------------------
 */

static void
expect_table_refused(const char *table, size_t at, uint8_t mask)
{
    const char *dir = tu_tmpdir("keys-table");
    char f[1300];
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    make_storage(dir, &o);
    db_file(f, sizeof f, dir, "db/db.2");
    flip_key(f, F_SUBDATA, table, strlen(table), at, mask);
    int rc;
    if (strcmp(table, "meta") != 0) { /* read-only (first: a failed
                                         writable open is not clean) */
        o.read_only = true;
        rc = open_db(&o, &st, &db);
        if (rc != SPRIG_ECORRUPT) {
            fail_msg("table '%s' renamed, read-only: open gave %d (%s)", table,
                     rc, sprig_errmsg());
        }
        assert_non_null(strstr(sprig_errmsg(), table));
        assert_non_null(strstr(sprig_errmsg(), "db"));
        close_all(st, db);
        o.read_only = false;
    }
    rc = open_db(&o, &st, &db);
    if (rc != SPRIG_ECORRUPT) {
        fail_msg("table '%s' renamed: open gave %d (%s)", table, rc,
                 sprig_errmsg());
    }
    assert_non_null(strstr(sprig_errmsg(), table));
    assert_non_null(strstr(sprig_errmsg(), "db.2"));
    close_all(st, db);
    tu_rmtree(dir);
}

static void
test_table_name_flipped(void **state)
{
    (void)state;
    expect_table_refused("c.items", 6, 0x01);      /* "c.itemr" */
    expect_table_refused("v/items/v/e", 10, 0x03); /* "v/items/v/f" */
    expect_table_refused("meta", 2, 0x01);         /* "meua" */
}

/* The command log's position in `meta` ("wal.lsn": no CRC covers it)
 * renamed in order ("walqlsn", the last key of its page) or lowered: the
 * open would replay the log from there and apply its commands twice. */
static void
test_wal_lsn_flipped(void **state)
{
    (void)state;
    for (int lowered = 0; lowered < 2; lowered++) {
        const char *dir = tu_tmpdir("keys-lsn");
        char f[1300];
        sprig_storage_options o;
        sprig_storage *st;
        sprig_db *db;
        make_storage(dir, &o);
        db_file(f, sizeof f, dir, "db/db.2");
        if (lowered) { /* the value's low byte: LSN 3 -> 2 (key, then 8) */
            flip_key(f, 0, "wal.lsn", 7, 7 + 7, 0x01);
        } else {
            flip_key(f, 0, "wal.lsn", 7, 3, 0x5f);
        }
        int rc = open_db(&o, &st, &db);
        if (rc != SPRIG_ECORRUPT) {
            fail_msg("wal.lsn %s: open gave %d (%s)",
                     lowered ? "lowered" : "renamed", rc, sprig_errmsg());
        }
        assert_non_null(strstr(sprig_errmsg(), "wal.lsn"));
        assert_non_null(strstr(sprig_errmsg(), "db.2"));
        close_all(st, db);
        tu_rmtree(dir);
    }
}

/* ---- the registry ------------------------------------------------------- */

static void
test_registry_name_flipped(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("keys-reg");
    char f[1300];
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    sprig_database_list *l = NULL;
    make_storage(dir, &o);
    db_file(f, sizeof f, dir, "_admin");
    flip_key(f, 0, "db", 2, 1, 0x07); /* "de": still after "alpha" */
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &kschema));
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_list_databases(st, &l));
    assert_non_null(strstr(sprig_errmsg(), "registry"));
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_open_database(st, "db", &db));
    assert_non_null(strstr(sprig_errmsg(), "'db'"));
    assert_non_null(strstr(sprig_errmsg(), "registry"));
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_delete_database(st, "db"));
    assert_non_null(strstr(sprig_errmsg(), "'db'"));
    assert_non_null(strstr(sprig_errmsg(), "registry"));
    /* a new database of that name is not created beside it */
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig_storage_create_database(st, "db", "kt", false));
    /* the intact entry still serves */
    SPRIG_OK_(sprig_storage_open_database(st, "alpha", &db));
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

static void
test_registry_table_flipped(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("keys-regtable");
    char f[1300];
    sprig_storage_options o;
    sprig_storage *st = NULL;
    make_storage(dir, &o);
    db_file(f, sizeof f, dir, "_admin");
    flip_key(f, F_SUBDATA, "databases", 9, 8, 0x07); /* "databaset" */
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_open(&o, &st));
    assert_non_null(strstr(sprig_errmsg(), "databases"));
    assert_non_null(strstr(sprig_errmsg(), "_admin"));
    tu_rmtree(dir);
}

/* ---- the transaction log's ids ------------------------------------------ */

/* The log of "db" read from every `since`: refused where the damaged id
 * would be read (`from` on, and from 0 to `upto`), right elsewhere. */
static void
expect_log_refused(sprig_storage_options *o, uint64_t from, uint64_t upto)
{
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(open_db(o, &st, &db));
    for (uint64_t since = 0; since <= 5; since++) {
        sprig_txn_log *l = NULL;
        int rc = sprig_list_executed_txns(db, since, 0, &l);
        if (since >= from || since <= upto) {
            if (rc != SPRIG_ECORRUPT) {
                fail_msg("log since %llu: %d (%s)", (unsigned long long)since,
                         rc, rc ? sprig_errmsg() : "listed");
            }
            assert_non_null(strstr(sprig_errmsg(), "'db'"));
            continue;
        }
        SPRIG_OK_(rc); /* the ids read are all intact: right */
        uint64_t want = since ? since : 1;
        assert_int_equal(sprig_txn_log_count(l), want <= 3 ? 4 - want : 0);
        for (size_t i = 0; i < sprig_txn_log_count(l); i++) {
            assert_int_equal(sprig_txn_log_id(l, i), want + i);
        }
        sprig_txn_log_free(l);
    }
    uint64_t last = 0;
    int rc = sprig_last_txn_id(db, &last);
    assert_true(rc == SPRIG_ECORRUPT || (rc == 0 && last == 3));
    if (from <= 3) { /* the last id damaged: no write appends after it */
        SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_last_txn_id(db, &last));
        SPRIG_EXPECT(SPRIG_ECORRUPT,
                     sprig_overwrite(db, "items", sprig_str("d"),
                                     sprig_str("{\"k\":1}"), NULL));
    }
    close_all(st, db);
}

static void
test_log_key_flipped(void **state)
{
    (void)state;
    for (int which = 0; which < 2; which++) {
        const char *dir = tu_tmpdir("keys-log");
        char f[1300];
        sprig_storage_options o;
        uint8_t key[8] = {0};
        make_storage(dir, &o);
        db_file(f, sizeof f, dir, "db/db.2");
        key[7] = which ? 1 : 3;
        if (which) { /* the first, 1 -> 0: read from 0 or 1 */
            flip_key(f, 0, key, 8, 7, 0x01);
            expect_log_refused(&o, UINT64_MAX, 1);
        } else { /* the last, 3 -> 2^56 + 3: read from anywhere */
            flip_key(f, 0, key, 8, 0, 0x01);
            expect_log_refused(&o, 0, 0);
        }
        tu_rmtree(dir);
    }
}

/* ---- a key renamed in order: a lookup's miss ------------------------------
 */

/* A storage in `dir` with database "db": documents "user-4f1a",
 * "user-4f1c", "user-4f1e" in "items" and key-value keys "k-4f1a",
 * "k-4f1c", "k-4f1e" in namespace "ns", closed. */
static void
make_ids(const char *dir, sprig_storage_options *o)
{
    sprig_storage *st;
    sprig_db *db;
    sprig_storage_options_init(o);
    o->path = dir;
    SPRIG_OK_(sprig_storage_open(o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &kschema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "kt", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    const char *sfx[] = {"4f1a", "4f1c", "4f1e"};
    for (int i = 0; i < 3; i++) {
        char id[32], body[32];
        snprintf(id, sizeof id, "user-%s", sfx[i]);
        snprintf(body, sizeof body, "{\"k\":%d}", i);
        SPRIG_OK_(
            sprig_overwrite(db, "items", sprig_str(id), sprig_str(body), NULL));
        snprintf(id, sizeof id, "k-%s", sfx[i]);
        sprig_value v = sprig_value_of_i64(i);
        SPRIG_OK_(sprig_kv_set(db, "ns", id, &v, NULL, NULL, NULL));
    }
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* The refusal names the database, `place`, the asked key and `near`. */
static void
names_miss(const char *place, const char *asked, const char *near)
{
    const char *m = sprig_errmsg();
    if (!strstr(m, "'db'") || !strstr(m, place) || !strstr(m, asked) ||
        !strstr(m, near)) {
        fail_msg("the refusal does not name db, %s, %s and %s: %s", place,
                 asked, near, m);
    }
}

/* Document id "user-4f1c" renamed "user-4f1d" (between its neighbours,
 * every copy of the node: the collection's and the view record's): every
 * lookup of the old id that would answer "not found" (get, get_multiple,
 * update, delete) is SPRIG_ECORRUPT naming the place; the intact ids and
 * misses away from it stay right. */
static void
test_doc_id_renamed_in_order(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("keys-docid");
    char f[1300];
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    sprig_doc *d = NULL;
    sprig_doc_list *l = NULL;
    make_ids(dir, &o);
    db_file(f, sizeof f, dir, "db/db.1");
    flip_key(f, 0, "user-4f1c", 9, 8, 0x07); /* 'c' -> 'd' */
    SPRIG_OK_(open_db(&o, &st, &db));
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig_get(db, "items", sprig_str("user-4f1c"), &d));
    names_miss("'items'", "user-4f1c", "user-4f1d");
    sprig_bytes old = sprig_str("user-4f1c");
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_get_multiple(db, "items", &old, 1, &l));
    names_miss("'items'", "user-4f1c", "user-4f1d");
    sprig_header h = {old, 1, {0}};
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_delete(db, "items", &h));
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig_update(db, "items", &h, sprig_str("{}"), NULL));
    /* the renamed record's own read is refused by its CRC */
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig_get(db, "items", sprig_str("user-4f1d"), &d));
    /* the others stay right: hits, and misses with intact neighbours */
    SPRIG_OK_(sprig_get(db, "items", sprig_str("user-4f1a"), &d));
    sprig_doc_free(d);
    SPRIG_OK_(sprig_get(db, "items", sprig_str("user-4f1e"), &d));
    sprig_doc_free(d);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_get(db, "items", sprig_str("a"), &d));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_get(db, "items", sprig_str("zz"), &d));
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(db, "items", sprig_str("user-4f1f"), &d));
    /* an insert of a new id is not checked (its cost: miss.c): the old id
     * can be written again, beside the renamed record, which its own CRC
     * keeps refused */
    SPRIG_OK_(sprig_insert(db, "items", &old, sprig_str("{\"k\":7}"), NULL));
    SPRIG_OK_(sprig_get(db, "items", old, &d));
    sprig_doc_free(d);
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig_get(db, "items", sprig_str("user-4f1d"), &d));
    close_all(st, db);
    tu_rmtree(dir);
}

/* Key-value key "k-4f1c" renamed "k-4f1d" in order: get, get-and-delete
 * and delete of the old key are SPRIG_ECORRUPT naming the place (a set
 * creates a key: not checked, as a document insert). */
static void
test_kv_key_renamed_in_order(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("keys-kv");
    char f[1300];
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    sprig_value v = {0};
    sprig_kv_status ks;
    make_ids(dir, &o);
    db_file(f, sizeof f, dir, "db/db.1");
    flip_key(f, 0, "ns\0k-4f1c", 9, 8, 0x07); /* 'c' -> 'd' */
    SPRIG_OK_(open_db(&o, &st, &db));
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_kv_get(db, "ns", "k-4f1c", false, &v));
    names_miss("key-value", "k-4f1c", "k-4f1d");
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_kv_get(db, "ns", "k-4f1c", true, &v));
    names_miss("key-value", "k-4f1c", "k-4f1d");
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_kv_delete(db, "ns", "k-4f1c", &ks));
    sprig_value nv = sprig_value_of_i64(5);
    SPRIG_OK_(sprig_kv_get(db, "ns", "k-4f1a", false, &v));
    assert_int_equal(v.num.i64, 0);
    sprig_value_clear(&v);
    SPRIG_OK_(sprig_kv_get(db, "ns", "k-4f1e", false, &v));
    sprig_value_clear(&v);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, "ns", "zz", false, &v));
    SPRIG_OK_(sprig_kv_set(db, "ns", "zz", &nv, NULL, NULL, NULL));
    close_all(st, db);
    tu_rmtree(dir);
}

/* ---- formats written before ----------------------------------------------
 */

/* Edit `dir`'s environment `which` in one LMDB transaction. */
static void
lmdb_edit(const char *dir, const char *which,
          void (*fn)(MDB_txn *txn, void *arg), void *arg)
{
    char p[1300];
    MDB_env *env;
    MDB_txn *txn;
    snprintf(p, sizeof p, "%s/%s", dir, which);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, p, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    fn(txn, arg);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* "db"'s registry record rewritten as version 1 (no CRC). */
static void
to_v1(MDB_txn *txn, void *arg)
{
    (void)arg;
    MDB_dbi d;
    MDB_val k = {2, (void *)"db"}, v;
    uint8_t b[300];
    assert_int_equal(mdb_dbi_open(txn, "databases", 0, &d), 0);
    assert_int_equal(mdb_get(txn, d, &k, &v), 0);
    assert_int_equal(((const uint8_t *)v.mv_data)[0], 2);
    assert_true(v.mv_size > 4 && v.mv_size <= sizeof b);
    memcpy(b, v.mv_data, v.mv_size);
    b[0] = 1;
    MDB_val nv = {v.mv_size - 4, b};
    assert_int_equal(mdb_put(txn, d, &k, &nv, 0), 0);
}

/* Every "table:" record of `meta` removed; *(int *)arg counts them. */
static void
drop_records(MDB_txn *txn, void *arg)
{
    MDB_dbi d;
    MDB_cursor *c;
    MDB_val k, v;
    int *n = arg;
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &d), 0);
    assert_int_equal(mdb_cursor_open(txn, d, &c), 0);
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        if (k.mv_size > 6 && !memcmp(k.mv_data, "table:", 6)) {
            assert_int_equal(mdb_cursor_del(c, 0), 0);
            ++*n;
        }
    }
    mdb_cursor_close(c);
}

static void
test_older_formats_open(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("keys-old");
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    sprig_doc_list *l = NULL;
    int dropped = 0, again = 0;
    make_storage(dir, &o);
    lmdb_edit(dir, "_admin", to_v1, NULL);
    lmdb_edit(dir, "db/db.2", drop_records, &dropped);
    assert_true(dropped >= 6); /* log, c.items, kv, kv.exp, v/... */
    SPRIG_OK_(open_db(&o, &st, &db));
    SPRIG_OK_(sprig_list(db, "items", NULL, SPRIG_ASC, 0, &l));
    assert_int_equal(sprig_doc_list_count(l), 3);
    sprig_doc_list_free(l);
    close_all(st, db);
    lmdb_edit(dir, "db/db.2", drop_records, &again); /* written back */
    assert_int_equal(again, dropped);
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_name_flipped),
        cmocka_unit_test(test_wal_lsn_flipped),
        cmocka_unit_test(test_registry_name_flipped),
        cmocka_unit_test(test_registry_table_flipped),
        cmocka_unit_test(test_log_key_flipped),
        cmocka_unit_test(test_doc_id_renamed_in_order),
        cmocka_unit_test(test_kv_key_renamed_in_order),
        cmocka_unit_test(test_older_formats_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
