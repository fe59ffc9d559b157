/*
 * test_oom.c -- the out-of-memory sweep: every core operation, with its
 * N-th allocation failing for N = 1, 2, 3, ... until it runs without
 * reaching the failure, returns SPRIG_OK with the right answer or
 * SPRIG_ENOMEM with a message -- never another code, never a crash -- leaks
 * nothing (the gateway's live count returns to its baseline; ASan checks the
 * rest), and leaves the storage consistent: after failures are switched off
 * the data, the registry and the log are exactly what the successful
 * operations wrote, in the same session and after reopening.  Each attempt
 * runs on a fresh copy of a prepared storage.  The failure comes from the
 * internal seam sprig__alloc_fail_after(); a counting allocator installed
 * with sprig_replace_allocator() tells whether the failure was reached.
 * LMDB's own allocations do not go through the gateway and are not swept.
 */
#include "oomtest.h"
#include "reltest.h"

#include <dirent.h>
#include <stdatomic.h>

#define MAX_POINTS 5000 /* more allocation points than any operation has */

static const sprig_collection_def oom_colls[] = {
    {"docs", SPRIG_ID_NATURAL, 0},
    {"seq", SPRIG_ID_U64, 0},
};
static const sprig_schema_def oom_schema = {"oom", oom_colls, 2};
static const sprig_collection_def extra_colls[] = {{"x", SPRIG_ID_U64, 0}};
static const sprig_schema_def extra_schema = {"extra", extra_colls, 1};

#define BASE_DOCS 5
#define BASE_PUSHED 2
#define BASE_TXNS (BASE_DOCS + BASE_PUSHED)

/* ======================================================================
 * The prepared storage and a fresh working copy per attempt.
 * ====================================================================== */

typedef struct oom_env {
    char work[700], aux[800];
    sprig_storage *st;
    sprig_db *db;
    /* what the operation returned */
    sprig_storage *st2;
    sprig_db *db2;
    sprig_doc *doc;
    sprig_doc_list *docs;
    sprig_header_list *headers;
    sprig_txn_result *res;
    sprig_txn_log *log;
    sprig_database_list *dbs;
    sprig_schema_list *schemas;
    sprig_header_buf hb;
    uint64_t num;
    unsigned long n; /* the allocation that failed */
} oom_env;

static char base_dir[600];

/* What is open before the failure is armed. */
typedef enum oom_open { OPEN_NOTHING, OPEN_STORAGE, OPEN_DB } oom_open;

static sprig_bytes
doc_id(char *buf, size_t n, unsigned i)
{
    snprintf(buf, n, "d%u", i);
    return sprig_str(buf);
}

static sprig_bytes
doc_body(char *buf, size_t n, unsigned i)
{
    snprintf(buf, n, "document number %u", i);
    return sprig_str(buf);
}

/* The base: database "db" with d1..d5 and two pushed documents, made by
 * seven single-document transactions. */
static void
make_base(void)
{
    sprig_storage *st = NULL;
    sprig_db *db = NULL;
    rt_scratch(base_dir, sizeof base_dir, "oom-base");
    SPRIG_OK_(rt_storage_open(base_dir, SPRIG_DURABILITY_NONE, 0, 0, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &oom_schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "oom", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    for (unsigned i = 1; i <= BASE_DOCS; i++) {
        char id[16], body[64];
        sprig_bytes b = doc_id(id, sizeof id, i);
        SPRIG_OK_(
            sprig_insert(db, "docs", &b, doc_body(body, sizeof body, i), NULL));
    }
    for (unsigned i = 1; i <= BASE_PUSHED; i++) {
        SPRIG_OK_(sprig_insert(db, "seq", NULL, sprig_str("pushed"), NULL));
    }
    sprig_db_close(db);
    sprig_storage_close(st);
}

static void
env_open_storage(oom_env *e)
{
    SPRIG_OK_(rt_storage_open(e->work, SPRIG_DURABILITY_NONE, 0, 0, &e->st));
}

static void
env_open(oom_env *e)
{
    env_open_storage(e);
    SPRIG_OK_(sprig_storage_open_database(e->st, "db", &e->db));
}

static void
env_close(oom_env *e)
{
    sprig_db_close(e->db);
    sprig_storage_close(e->st);
    e->db = NULL;
    e->st = NULL;
}

/* Close and reopen the working copy with failures off. */
static void
env_reopen(oom_env *e)
{
    env_close(e);
    env_open(e);
}

/* A fresh copy of the base, opened as far as the operation needs. */
static void
env_prepare(oom_env *e, oom_open open)
{
    char cmd[4096];
    memset(e, 0, sizeof *e);
    snprintf(e->work, sizeof e->work, "%s-work", base_dir);
    snprintf(e->aux, sizeof e->aux, "%s-aux", base_dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' && cp -a '%s' '%s'", e->work,
             e->aux, base_dir, e->work);
    assert_int_equal(system(cmd), 0);
    if (open == OPEN_STORAGE) {
        env_open_storage(e);
    } else if (open == OPEN_DB) {
        env_open(e);
    }
}

static void
env_finish(oom_env *e)
{
    sprig_db_close(e->db2);
    sprig_storage_close(e->st2);
    sprig_doc_free(e->doc);
    sprig_doc_list_free(e->docs);
    sprig_header_list_free(e->headers);
    sprig_txn_result_free(e->res);
    sprig_txn_log_free(e->log);
    sprig_database_list_free(e->dbs);
    sprig_schema_list_free(e->schemas);
    env_close(e);
    tu_rmtree(e->work);
    tu_rmtree(e->aux);
}

/* ======================================================================
 * What the base holds, and checks of it.
 * ====================================================================== */

static uint64_t
last_txid(sprig_db *db)
{
    uint64_t id;
    SPRIG_OK_(sprig_last_txn_id(db, &id));
    return id;
}

static void
assert_base_doc(sprig_db *db, unsigned i)
{
    char id[16], body[64];
    sprig_bytes want = doc_body(body, sizeof body, i);
    rt_assert_doc(db, "docs", doc_id(id, sizeof id, i), want.data, want.len);
}

/* The base, untouched: documents, counts and log length. */
static void
assert_base(sprig_db *db)
{
    uint64_t n;
    for (unsigned i = 1; i <= BASE_DOCS; i++) {
        assert_base_doc(db, i);
    }
    SPRIG_OK_(sprig_count(db, "docs", NULL, &n));
    assert_int_equal(n, BASE_DOCS);
    SPRIG_OK_(sprig_count(db, "seq", NULL, &n));
    assert_int_equal(n, BASE_PUSHED);
    assert_int_equal(last_txid(db), BASE_TXNS);
}

static bool
has_database(sprig_storage *st, const char *name)
{
    sprig_database_list *l = NULL;
    bool found = false;
    SPRIG_OK_(sprig_storage_list_databases(st, &l));
    for (size_t i = 0; i < sprig_database_list_count(l); i++) {
        found |= strcmp(sprig_database_list_name(l, i), name) == 0;
    }
    sprig_database_list_free(l);
    return found;
}

static bool
has_schema(sprig_storage *st, const char *name)
{
    sprig_schema_list *l = NULL;
    bool found = false;
    SPRIG_OK_(sprig_storage_list_schemas(st, &l));
    for (size_t i = 0; i < sprig_schema_list_count(l); i++) {
        found |= strcmp(sprig_schema_list_get(l, i)->name, name) == 0;
    }
    sprig_schema_list_free(l);
    return found;
}

/* Directories under db/: the registry must name every one after open. */
static unsigned
count_db_dirs(const char *storage)
{
    char p[900];
    unsigned n = 0;
    snprintf(p, sizeof p, "%s/db", storage);
    DIR *d = opendir(p);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d));) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* ======================================================================
 * The operations: run (armed) and check (disarmed).
 * ====================================================================== */

typedef struct oom_case {
    const char *name;
    oom_open open;
    int (*run)(oom_env *e);
    void (*check)(oom_env *e, int rc);
} oom_case;

/* ---- storages ---------------------------------------------------------- */

static int
run_storage_open(oom_env *e)
{
    return rt_storage_open(e->work, SPRIG_DURABILITY_NONE, 0, 0, &e->st2);
}

static void
check_storage_open(oom_env *e, int rc)
{
    if (rc == SPRIG_OK) {
        assert_true(has_database(e->st2, "db"));
        assert_true(has_schema(e->st2, "oom"));
        sprig_storage_close(e->st2);
        e->st2 = NULL;
    } else {
        assert_null(e->st2);
    }
    env_open(e); /* the lock was released, the data is whole */
    assert_base(e->db);
}

static int
run_storage_create(oom_env *e)
{
    return rt_storage_open(e->aux, SPRIG_DURABILITY_NONE, 0, 0, &e->st2);
}

static void
check_storage_create(oom_env *e, int rc)
{
    if (rc == SPRIG_OK) {
        sprig_storage_close(e->st2);
        e->st2 = NULL;
    } else {
        assert_null(e->st2);
    }
    SPRIG_OK_(rt_storage_open(e->aux, SPRIG_DURABILITY_NONE, 0, 0, &e->st2));
    SPRIG_OK_(sprig_storage_register_schema(e->st2, &extra_schema));
    SPRIG_OK_(sprig_storage_create_database(e->st2, "new", "extra", false));
}

static int
run_open_local(oom_env *e)
{
    return sprig_db_open_local(e->aux, &extra_schema, &e->db2);
}

static void
check_open_local(oom_env *e, int rc)
{
    if (rc == SPRIG_OK) {
        SPRIG_OK_(sprig_insert(e->db2, "x", NULL, sprig_str("m1"), NULL));
        sprig_db_close(e->db2);
    } else {
        assert_null(e->db2);
    }
    e->db2 = NULL;
    SPRIG_OK_(sprig_db_open_local(e->aux, &extra_schema, &e->db2));
    uint64_t n;
    SPRIG_OK_(sprig_count(e->db2, "x", NULL, &n));
    assert_int_equal(n, rc == SPRIG_OK ? 1 : 0);
}

/* ---- registry ---------------------------------------------------------- */

static int
run_register(oom_env *e)
{
    return sprig_storage_register_schema(e->st, &extra_schema);
}

static void
check_register(oom_env *e, int rc)
{
    bool want = rc == SPRIG_OK;
    assert_int_equal(has_schema(e->st, "extra"), want);
    env_reopen(e);
    if (has_schema(e->st, "extra") != want) {
        fail_msg("register_schema with allocation %lu failing returned %d, "
                 "but after reopening the schema is %s",
                 e->n, rc, want ? "missing" : "registered");
    }
    assert_base(e->db);
}

static int
run_create(oom_env *e)
{
    return sprig_storage_create_database(e->st, "db2", "oom", false);
}

static void
check_create(oom_env *e, int rc)
{
    bool want = rc == SPRIG_OK;
    assert_int_equal(has_database(e->st, "db2"), want);
    env_reopen(e);
    if (has_database(e->st, "db2") != want) {
        fail_msg("create_database with allocation %lu failing returned %d, "
                 "but after reopening the database %s",
                 e->n, rc, want ? "is missing" : "exists");
    }
    assert_int_equal(count_db_dirs(e->work), want ? 2 : 1);
    if (!want) {
        SPRIG_OK_(sprig_storage_create_database(e->st, "db2", "oom", false));
    }
    SPRIG_OK_(sprig_storage_open_database(e->st, "db2", &e->db2));
    SPRIG_OK_(sprig_insert(e->db2, "seq", NULL, sprig_str("in db2"), NULL));
}

static int
run_delete_db(oom_env *e)
{
    sprig_db_close(e->db);
    e->db = NULL;
    return sprig_storage_delete_database(e->st, "db");
}

static void
check_delete_db(oom_env *e, int rc)
{
    bool gone = rc == SPRIG_OK;
    assert_int_equal(has_database(e->st, "db"), !gone);
    sprig_storage_close(e->st);
    SPRIG_OK_(rt_storage_open(e->work, SPRIG_DURABILITY_NONE, 0, 0, &e->st));
    assert_int_equal(has_database(e->st, "db"), !gone);
    assert_int_equal(count_db_dirs(e->work), gone ? 0 : 1);
    if (!gone) {
        SPRIG_OK_(sprig_storage_open_database(e->st, "db", &e->db));
        assert_base(e->db);
    }
}

static int
run_database(oom_env *e)
{
    return sprig_storage_open_database(e->st, "db", &e->db2);
}

static void
check_database(oom_env *e, int rc)
{
    if (rc == SPRIG_OK) {
        assert_base(e->db2);
    } else {
        assert_null(e->db2);
    }
}

static int
run_list_databases(oom_env *e)
{
    return sprig_storage_list_databases(e->st, &e->dbs);
}

static void
check_list_databases(oom_env *e, int rc)
{
    if (rc) {
        assert_null(e->dbs);
        return;
    }
    assert_int_equal(sprig_database_list_count(e->dbs), 1);
    assert_string_equal(sprig_database_list_name(e->dbs, 0), "db");
    assert_string_equal(sprig_database_list_schema(e->dbs, 0), "oom");
}

static int
run_list_schemas(oom_env *e)
{
    return sprig_storage_list_schemas(e->st, &e->schemas);
}

static void
check_list_schemas(oom_env *e, int rc)
{
    if (rc) {
        assert_null(e->schemas);
        return;
    }
    assert_int_equal(sprig_schema_list_count(e->schemas), 1);
    const sprig_schema_def *s = sprig_schema_list_get(e->schemas, 0);
    assert_string_equal(s->name, "oom");
    assert_int_equal(s->n_collections, 2);
    assert_string_equal(s->collections[0].name, "docs");
    assert_int_equal(s->collections[1].id_kind, SPRIG_ID_U64);
}

/* ---- writes ------------------------------------------------------------ */

static int
run_insert(oom_env *e)
{
    sprig_bytes id = sprig_str("new");
    return sprig_insert(e->db, "docs", &id, sprig_str("inserted"), &e->hb);
}

/* A write happened exactly when it said so: check now and after reopen. */
static void
check_write(oom_env *e, int rc, void (*applied)(sprig_db *db))
{
    for (int pass = 0; pass < 2; pass++) {
        if (rc == SPRIG_OK) {
            applied(e->db);
            assert_int_equal(last_txid(e->db), BASE_TXNS + 1);
        } else {
            assert_base(e->db);
        }
        env_reopen(e);
    }
}

static void
inserted(sprig_db *db)
{
    rt_assert_doc(db, "docs", sprig_str("new"), "inserted", 8);
}

static void
check_insert(oom_env *e, int rc)
{
    if (rc == SPRIG_OK) {
        assert_int_equal(e->hb.revision, 1);
    }
    check_write(e, rc, inserted);
}

static int
run_push(oom_env *e)
{
    return sprig_insert(e->db, "seq", NULL, sprig_str("third"), &e->hb);
}

static void
pushed(sprig_db *db)
{
    uint8_t kb[8];
    rt_assert_doc(db, "seq", sprig_id_u64(BASE_PUSHED + 1, kb), "third", 5);
}

static void
check_push(oom_env *e, int rc)
{
    check_write(e, rc, pushed);
}

static int
run_update(oom_env *e)
{
    sprig_header h = {sprig_str("d1"), 1, {0}};
    return sprig_update(e->db, "docs", &h, sprig_str("changed"), &e->hb);
}

static void
updated(sprig_db *db)
{
    sprig_doc *d = NULL;
    rt_assert_doc(db, "docs", sprig_str("d1"), "changed", 7);
    SPRIG_OK_(sprig_get(db, "docs", sprig_str("d1"), &d));
    assert_int_equal(sprig_doc_header(d).revision, 2);
    sprig_doc_free(d);
}

static void
check_update(oom_env *e, int rc)
{
    check_write(e, rc, updated);
}

static int
run_delete(oom_env *e)
{
    sprig_header h = {sprig_str("d2"), 1, {0}};
    return sprig_delete(e->db, "docs", &h);
}

static void
deleted(sprig_db *db)
{
    rt_assert_no_doc(db, "docs", sprig_str("d2"));
}

static void
check_delete(oom_env *e, int rc)
{
    check_write(e, rc, deleted);
}

/* Build and apply: insert t1, update d1, delete d2, push into seq. */
static int
run_txn(oom_env *e)
{
    sprig_txn *t = NULL;
    sprig_bytes id = sprig_str("t1");
    sprig_header d1 = {sprig_str("d1"), 1, {0}}, d2 = {sprig_str("d2"), 1, {0}};
    int rc = sprig_txn_new(&t);
    rc = rc ? rc : sprig_txn_insert(t, "docs", &id, sprig_str("from txn"));
    rc = rc ? rc : sprig_txn_update(t, "docs", &d1, sprig_str("changed"));
    rc = rc ? rc : sprig_txn_delete(t, "docs", &d2);
    rc = rc ? rc : sprig_txn_insert(t, "seq", NULL, sprig_str("third"));
    rc = rc ? rc : sprig_txn_apply(e->db, t, &e->res);
    sprig_txn_free(t);
    return rc;
}

static void
txn_applied(sprig_db *db)
{
    rt_assert_doc(db, "docs", sprig_str("t1"), "from txn", 8);
    updated(db);
    deleted(db);
    pushed(db);
    sprig_txn_log *l = NULL;
    SPRIG_OK_(sprig_list_executed_txns(db, BASE_TXNS + 1, 0, &l));
    assert_int_equal(sprig_txn_log_count(l), 1);
    assert_int_equal(sprig_txn_log_change_count(l, 0), 4);
    sprig_txn_log_free(l);
}

static void
check_txn(oom_env *e, int rc)
{
    if (rc == SPRIG_OK) {
        assert_int_equal(sprig_txn_result_id(e->res), BASE_TXNS + 1);
        assert_int_equal(sprig_txn_result_failed(e->res), -1);
    } else if (e->res) { /* an operation failed: it names which (an
                            encoding that ran out of memory) */
        assert_true(sprig_txn_result_failed(e->res) >= 0);
    }
    check_write(e, rc, txn_applied);
}

/* ---- reads ------------------------------------------------------------- */

static int
run_get(oom_env *e)
{
    return sprig_get(e->db, "docs", sprig_str("d3"), &e->doc);
}

static void
check_get(oom_env *e, int rc)
{
    if (rc) {
        assert_null(e->doc);
        return;
    }
    char body[64];
    sprig_bytes want = doc_body(body, sizeof body, 3);
    sprig_bytes got = sprig_doc_contents(e->doc);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    assert_int_equal(sprig_doc_header(e->doc).revision, 1);
}

static int
run_get_multiple(oom_env *e)
{
    sprig_bytes ids[3] = {sprig_str("d4"), sprig_str("nope"), sprig_str("d1")};
    return sprig_get_multiple(e->db, "docs", ids, 3, &e->docs);
}

/* e->docs holds documents `which` (in order), with their contents. */
static void
assert_doc_list(const sprig_doc_list *l, const unsigned *which, size_t n,
                bool contents)
{
    assert_int_equal(sprig_doc_list_count(l), n);
    for (size_t i = 0; i < n; i++) {
        char id[16], body[64];
        const sprig_doc *d = sprig_doc_list_get(l, i);
        sprig_bytes want = doc_id(id, sizeof id, which[i]);
        sprig_header h = sprig_doc_header(d);
        assert_int_equal(h.id.len, want.len);
        assert_memory_equal(h.id.data, want.data, want.len);
        if (contents) {
            want = doc_body(body, sizeof body, which[i]);
            assert_int_equal(sprig_doc_contents(d).len, want.len);
            assert_memory_equal(sprig_doc_contents(d).data, want.data,
                                want.len);
        }
    }
}

static void
check_get_multiple(oom_env *e, int rc)
{
    static const unsigned want[] = {4, 1};
    if (rc) {
        assert_null(e->docs);
        return;
    }
    assert_doc_list(e->docs, want, 2, true);
}

static int
run_list(oom_env *e)
{
    return sprig_list(e->db, "docs", NULL, SPRIG_DESC, 0, &e->docs);
}

static void
check_list(oom_env *e, int rc)
{
    static const unsigned want[] = {5, 4, 3, 2, 1};
    if (rc) {
        assert_null(e->docs);
        return;
    }
    assert_doc_list(e->docs, want, BASE_DOCS, true);
}

static int
run_list_headers(oom_env *e)
{
    sprig_range r = {{SPRIG_INCLUDED, sprig_str("d2")},
                     {SPRIG_EXCLUDED, sprig_str("d4")}};
    return sprig_list_headers(e->db, "docs", &r, SPRIG_ASC, 0, &e->headers);
}

static void
check_list_headers(oom_env *e, int rc)
{
    if (rc) {
        assert_null(e->headers);
        return;
    }
    assert_int_equal(sprig_header_list_count(e->headers), 2);
    for (size_t i = 0; i < 2; i++) {
        char id[16];
        sprig_bytes want = doc_id(id, sizeof id, (unsigned)i + 2);
        sprig_header h = sprig_header_list_get(e->headers, i);
        assert_int_equal(h.id.len, want.len);
        assert_memory_equal(h.id.data, want.data, want.len);
        assert_int_equal(h.revision, 1);
    }
}

static int
run_count(oom_env *e)
{
    sprig_range r = {{SPRIG_EXCLUDED, sprig_str("d1")}, {0}};
    return sprig_count(e->db, "docs", &r, &e->num);
}

static void
check_count(oom_env *e, int rc)
{
    if (rc == SPRIG_OK) {
        assert_int_equal(e->num, BASE_DOCS - 1);
    }
}

static int
run_log(oom_env *e)
{
    return sprig_list_executed_txns(e->db, 1, 0, &e->log);
}

static void
check_log(oom_env *e, int rc)
{
    if (rc) {
        assert_null(e->log);
        return;
    }
    assert_int_equal(sprig_txn_log_count(e->log), BASE_TXNS);
    for (size_t i = 0; i < BASE_TXNS; i++) {
        sprig_change c;
        assert_int_equal(sprig_txn_log_id(e->log, i), i + 1);
        assert_int_equal(sprig_txn_log_change_count(e->log, i), 1);
        SPRIG_OK_(sprig_txn_log_change(e->log, i, 0, &c));
        assert_string_equal(c.collection, i < BASE_DOCS ? "docs" : "seq");
        assert_int_equal(c.revision, 1);
        assert_false(c.deleted);
    }
}

/* ======================================================================
 * The sweep.
 * ====================================================================== */

static const oom_case cases[] = {
    {"storage_open", OPEN_NOTHING, run_storage_open, check_storage_open},
    {"storage_open (new)", OPEN_NOTHING, run_storage_create,
     check_storage_create},
    {"db_open_local", OPEN_NOTHING, run_open_local, check_open_local},
    {"register_schema", OPEN_STORAGE, run_register, check_register},
    {"create_database", OPEN_STORAGE, run_create, check_create},
    {"delete_database", OPEN_DB, run_delete_db, check_delete_db},
    {"delete_database (closed)", OPEN_STORAGE, run_delete_db, check_delete_db},
    {"storage_database", OPEN_STORAGE, run_database, check_database},
    {"list_databases", OPEN_STORAGE, run_list_databases, check_list_databases},
    {"list_schemas", OPEN_STORAGE, run_list_schemas, check_list_schemas},
    {"insert", OPEN_DB, run_insert, check_insert},
    {"insert (push)", OPEN_DB, run_push, check_push},
    {"update", OPEN_DB, run_update, check_update},
    {"delete", OPEN_DB, run_delete, check_delete},
    {"txn build + apply", OPEN_DB, run_txn, check_txn},
    {"get", OPEN_DB, run_get, check_get},
    {"get_multiple", OPEN_DB, run_get_multiple, check_get_multiple},
    {"list", OPEN_DB, run_list, check_list},
    {"list_headers", OPEN_DB, run_list_headers, check_list_headers},
    {"count", OPEN_DB, run_count, check_count},
    {"list_executed_transactions", OPEN_DB, run_log, check_log},
};

/* The attempt under way, closed by the teardown if a check fails. */
static oom_env *current;

/* One attempt with the n-th allocation failing; true if it was reached. */
static bool
attempt(const oom_case *c, unsigned long n)
{
    static oom_env e;
    env_prepare(&e, c->open);
    current = &e;
    e.n = n;
    sprig__err(SPRIG_OK, "%s", "");
    oom_arm(n);
    int rc = c->run(&e);
    bool hit = oom_disarm(n);
    if (rc != SPRIG_OK && (rc != SPRIG_ENOMEM || !hit)) {
        fail_msg("%s, allocation %lu failing: returned %d (%s: %s)", c->name, n,
                 rc, sprig_strerror(rc), sprig_errmsg());
    }
    if (rc == SPRIG_ENOMEM && !sprig_errmsg()[0]) {
        fail_msg("%s, allocation %lu failing: SPRIG_ENOMEM without a message",
                 c->name, n);
    }
    c->check(&e, rc);
    current = NULL;
    env_finish(&e);
    return hit;
}

/* Sweep one operation: N = 1, 2, ... until the failure is not reached. */
static void
test_oom_sweep(void **state)
{
    const oom_case *c = *state;
    long live = sprig__alloc_live();
    unsigned long n = 1;
    while (attempt(c, n)) {
        assert_int_equal(sprig__alloc_live(), live); /* nothing leaked */
        assert_true(++n < MAX_POINTS);
    }
    assert_int_equal(sprig__alloc_live(), live);
    printf("oom: %-28s %4lu allocation points\n", c->name, n - 1);
}

/* After a failed check: close what the attempt left open. */
static int
case_teardown(void **state)
{
    (void)state;
    sprig__alloc_fail_after(0);
    if (current) {
        env_finish(current);
        current = NULL;
    }
    return 0;
}

static int
group_setup(void **state)
{
    (void)state;
    make_base();
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    tu_rmtree(base_dir);
    return 0;
}

#define N_CASES (sizeof cases / sizeof cases[0])

int
main(void)
{
    /* Before any other Sprig call, as the allocator contract asks. */
    if (oom_install()) {
        return 1;
    }
    struct CMUnitTest tests[N_CASES];
    for (size_t i = 0; i < N_CASES; i++) {
        tests[i] = (struct CMUnitTest){cases[i].name, test_oom_sweep, NULL,
                                       case_teardown, (void *)&cases[i]};
    }
    return cmocka_run_group_tests_name("test_oom", tests, group_setup,
                                       group_teardown);
}
