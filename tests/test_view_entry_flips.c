/*
 * test_view_entry_flips.c -- a view's index rows are never a right-looking
 * answer after a flipped byte (issue 17, item 3).  The entries table `e`
 * (view key -> document ids) and the pending table `i` carry no value CRC
 * of their own; a flip in an entry's key that keeps the table's order
 * leaves LMDB's structure valid (the page verifier passes it).  Each test
 * builds a database, closes it, flips one byte of one row in place --
 * found through LMDB, like test_flips.c's structure flips -- reopens it
 * and reads: the query, the reduce recompute behind a delete, the unique
 * check and sprig_storage_check() must refuse with SPRIG_ECORRUPT naming
 * the database and the view, never answer with the changed key.  The
 * last test turns a view back into the previous storage version (record
 * version 2, a pending row without a CRC) and checks that the open
 * rebuilds it instead of misreading it.
 */
#include "reltest.h"

#include <fcntl.h>
#include <glob.h>
#include <lmdb.h>
#include <unistd.h>

static const sprig_view_def views[] = {
    {.name = "byk",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_MAX},
    {.name = "uniq",
     .version = 1,
     .policy = SPRIG_VIEW_UNIQUE,
     .json_key = "u"},
    {.name = "lazy",
     .version = 1,
     .json_key = "k",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def colls[] = {
    {"c", SPRIG_ID_NATURAL, 0, views, 3}};
static const sprig_schema_def schema = {"vf", colls, 1};

static void
open_db(const char *dir, sprig_storage **st, sprig_db **db, bool create)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    SPRIG_OK_(sprig_storage_open(&o, st));
    SPRIG_OK_(sprig_storage_register_schema(*st, &schema));
    if (create) {
        SPRIG_OK_(sprig_storage_create_database(*st, "vdb", "vf", false));
    }
    SPRIG_OK_(sprig_storage_open_database(*st, "vdb", db));
}

static void
put(sprig_db *db, const char *id, const char *body)
{
    SPRIG_OK_(sprig_overwrite(db, "c", sprig_str(id), sprig_str(body), NULL));
}

/* Keys "b", "d" (twice: x2 holds the max), "f"; x5 left pending in the
 * lazy view. */
static void
build(const char *dir)
{
    sprig_storage *st;
    sprig_db *db;
    sprig_buf out = {0};
    sprig_view_query q;
    open_db(dir, &st, &db, true);
    put(db, "x1", "{\"k\":\"b\",\"n\":1,\"u\":\"b\"}");
    put(db, "x2", "{\"k\":\"d\",\"n\":9,\"u\":\"d\"}");
    put(db, "x3", "{\"k\":\"d\",\"n\":5,\"u\":\"h\"}");
    put(db, "x4", "{\"k\":\"f\",\"n\":2,\"u\":\"f\"}");
    sprig_view_query_init(&q, "c", "lazy");
    SPRIG_OK_(sprig_view_reduce(db, &q, &out)); /* indexes the lazy view */
    put(db, "x5", "{\"k\":\"f\",\"n\":3,\"u\":\"j\"}"); /* pending there */
    sprig_buf_clear(&out);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* The database's environment directory. */
static void
env_dir(const char *dir, char *out, size_t n)
{
    char pat[1200];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/db/vdb.*", dir);
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, 1);
    snprintf(out, n, "%s", g.gl_pathv[0]);
    globfree(&g);
}

/* The encoded view key of the JSON string `s` (one character). */
static void
str_key(const char *s, uint8_t *out, size_t *n)
{
    sprig_key_builder kb = {0};
    SPRIG_OK_(sprig_key_add_str(&kb, s));
    sprig_bytes k = sprig_key_bytes(&kb);
    memcpy(out, k.data, k.len);
    *n = k.len;
    sprig_key_builder_clear(&kb);
}

/* In table `table`, the row whose key is `key`: change its key byte
 * `from` to `to` in place in data.mdb (no transaction: what a flipped bit
 * on disk does). */
static void
flip_row_key(const char *dir, const char *table, sprig_bytes key, uint8_t from,
             uint8_t to)
{
    char ed[1300], file[1400];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {key.len, (void *)key.data}, d;
    env_dir(dir, ed, sizeof ed);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, ed, MDB_RDONLY | MDB_NOLOCK, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, table, 0, &dbi), 0);
    MDB_cursor *c;
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &d, MDB_SET_KEY), 0);
    const uint8_t *p = k.mv_data;
    size_t at = k.mv_size;
    while (at > 0 && p[at - 1] != from) {
        at--;
    }
    assert_true(at > 0);
    const uint8_t *pg = (const uint8_t *)((uintptr_t)(p + at - 1) & ~4095ul);
    uint64_t pgno;
    memcpy(&pgno, pg, 8);
    off_t off = (off_t)(pgno * 4096 + (uint64_t)(p + at - 1 - pg));
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    snprintf(file, sizeof file, "%s/data.mdb", ed);
    int fd = open(file, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    assert_int_equal(b, from);
    assert_int_equal(pwrite(fd, &to, 1, off), 1);
    close(fd);
}

/* The detail names the database and the view. */
static void
names(const char *view)
{
    const char *m = sprig_errmsg();
    char v[80];
    snprintf(v, sizeof v, "'%s'", view);
    if (!strstr(m, "'vdb'") || !strstr(m, v)) {
        fail_msg("the refusal does not name database vdb and view %s: %s", view,
                 m);
    }
}

/* sprig_storage_check() reports a finding naming `view` and `what`. */
static void
check_reports(sprig_storage *st, const char *view, const char *what)
{
    sprig_buf rep = {0};
    uint64_t n = 0;
    char v[80];
    snprintf(v, sizeof v, "'%s'", view);
    SPRIG_OK_(sprig_storage_check(st, &rep, &n));
    SPRIG_OK_(sprig_buf_append(&rep, "", 1));
    const char *r = (const char *)rep.data;
    if (n == 0 || !strstr(r, v) || !strstr(r, what) || !strstr(r, "'vdb'")) {
        fail_msg("the check did not report %s in %s: %llu findings: %s", what,
                 view, (unsigned long long)n, r);
    }
    sprig_buf_clear(&rep);
}

/* A query of every key, or of key `k`: ECORRUPT naming the view, and no
 * answer carrying the changed key. */
static void
query_refused(sprig_db *db, const char *view, const sprig_bytes *k)
{
    sprig_view_query q;
    sprig_mapping_list *l = NULL;
    sprig_view_query_init(&q, "c", view);
    if (k) {
        q.match.kind = SPRIG_MATCH_KEY;
        q.match.key = *k;
    }
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_view_query_mappings(db, &q, &l));
    assert_null(l);
    names(view);
}

/* A flipped entry key ("d" -> "e", between "b" and "f": in order) of an
 * eager view: every query that meets it and the check refuse; rows that
 * are intact still answer. */
static void
test_entry_key_flip_query(void **state)
{
    (void)state;
    char dir[1100];
    uint8_t kd[16], ke[16], kb[16];
    size_t nd, ne, nb;
    sprig_storage *st;
    sprig_db *db;
    rt_scratch(dir, sizeof dir, "vflip_query");
    build(dir);
    str_key("d", kd, &nd);
    str_key("e", ke, &ne);
    str_key("b", kb, &nb);
    flip_row_key(dir, "v/c/byk/e", (sprig_bytes){kd, nd}, 'd', 'e');
    open_db(dir, &st, &db, false);
    sprig_bytes e = {ke, ne}, b = {kb, nb}, d = {kd, nd};
    query_refused(db, "byk", NULL);
    query_refused(db, "byk", &e);
    query_refused(db, "byk", &d); /* the old key: not an empty answer */
    sprig_view_query q;
    sprig_mapping_list *l = NULL;
    sprig_view_query_init(&q, "c", "byk");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = b;
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 1);
    sprig_mapping_list_free(l);
    check_reports(st, "byk", "is not among what the document emitted");
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* A reduce value's key flipped in order ("d" -> "e" in `r`): a reduce
 * or grouped reduce of the old key, which would answer as if no document
 * emitted it, is refused (the value's CRC covers its key, and a miss is
 * confirmed by the neighbours); an intact key still answers. */
static void
test_reduce_key_flip(void **state)
{
    (void)state;
    char dir[1100];
    uint8_t kd[16], kb[16];
    size_t nd, nb;
    sprig_storage *st;
    sprig_db *db;
    sprig_buf out = {0};
    sprig_mapping_list *l = NULL;
    sprig_view_query q;
    rt_scratch(dir, sizeof dir, "vflip_reduce");
    build(dir);
    str_key("d", kd, &nd);
    str_key("b", kb, &nb);
    flip_row_key(dir, "v/c/byk/r", (sprig_bytes){kd, nd}, 'd', 'e');
    open_db(dir, &st, &db, false);
    sprig_view_query_init(&q, "c", "byk");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = (sprig_bytes){kd, nd};
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_view_reduce(db, &q, &out));
    names("byk");
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_view_reduce_grouped(db, &q, &l));
    names("byk");
    q.match.kind = SPRIG_MATCH_RANGE; /* ["b", "c"]: "e" is past its end */
    q.match.range.start = (sprig_bound){SPRIG_INCLUDED, {kb, nb}};
    q.match.range.end = (sprig_bound){SPRIG_INCLUDED, {kd, nd}};
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_view_reduce_grouped(db, &q, &l));
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = (sprig_bytes){kb, nb};
    SPRIG_OK_(sprig_view_reduce(db, &q, &out));
    assert_true(out.len > 0);
    sprig_buf_clear(&out);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* Deleting x2, which holds key "d"'s max, makes the built-in reduce
 * recompute "d" from the index, where the flip moved both its entries:
 * the recomputed count disagrees with the stored state's (CRC-checked):
 * the delete is refused, not applied with a wrong reduce. */
static void
test_entry_key_flip_recompute(void **state)
{
    (void)state;
    char dir[1100];
    uint8_t kd[16];
    size_t nd;
    sprig_storage *st;
    sprig_db *db;
    sprig_doc *d;
    rt_scratch(dir, sizeof dir, "vflip_recompute");
    build(dir);
    str_key("d", kd, &nd);
    flip_row_key(dir, "v/c/byk/e", (sprig_bytes){kd, nd}, 'd', 'e');
    open_db(dir, &st, &db, false);
    SPRIG_OK_(sprig_get(db, "c", sprig_str("x2"), &d));
    sprig_header h = sprig_doc_header(d);
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_delete(db, "c", &h));
    names("byk");
    sprig_doc_free(d);
    SPRIG_OK_(sprig_get(db, "c", sprig_str("x2"), &d)); /* not applied */
    sprig_doc_free(d);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* A unique view's entry "d" flipped to "e": a new document emitting "e"
 * meets the flipped entry; it is refused as damage, never as a unique
 * violation blaming x2 (which emits "d"). */
static void
test_entry_key_flip_unique(void **state)
{
    (void)state;
    char dir[1100];
    uint8_t kd[16];
    size_t nd;
    sprig_storage *st;
    sprig_db *db;
    rt_scratch(dir, sizeof dir, "vflip_unique");
    build(dir);
    str_key("d", kd, &nd);
    flip_row_key(dir, "v/c/uniq/e", (sprig_bytes){kd, nd}, 'd', 'e');
    open_db(dir, &st, &db, false);
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig_overwrite(db, "c", sprig_str("x9"),
                                 sprig_str("{\"k\":\"z\",\"n\":0,\"u\":\"e\"}"),
                                 NULL));
    names("uniq");
    check_reports(st, "uniq", "is not among what the document emitted");
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* The lazy view's pending row of x5 flipped to x6 (in order: the last):
 * indexing it would map a document that does not exist and leave x5
 * unindexed (the query would miss x5's mapping); its CRC refuses it. */
static void
test_pending_id_flip(void **state)
{
    (void)state;
    char dir[1100];
    sprig_storage *st;
    sprig_db *db;
    rt_scratch(dir, sizeof dir, "vflip_pending");
    build(dir);
    flip_row_key(dir, "v/c/lazy/i", sprig_str("x5"), '5', '6');
    open_db(dir, &st, &db, false);
    query_refused(db, "lazy", NULL);
    check_reports(st, "lazy", "fails its CRC");
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* Set the view record of `view` to version 2 and add a pending row
 * without a CRC (what the previous storage version wrote), in a write
 * transaction of the closed database's environment. */
static void
make_old_format(const char *dir, const char *view, const char *id)
{
    char ed[1300], rk[64], table[64];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, pend;
    env_dir(dir, ed, sizeof ed);
    snprintf(rk, sizeof rk, "view:c/%s", view);
    snprintf(table, sizeof table, "v/c/%s/i", view);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, ed, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_dbi_open(txn, table, 0, &pend), 0);
    MDB_val k = {strlen(rk), rk}, d;
    assert_int_equal(mdb_get(txn, meta, &k, &d), 0);
    assert_true(d.mv_size > 1);
    assert_int_equal(((const uint8_t *)d.mv_data)[0], 3);
    uint8_t rec[512];
    memcpy(rec, d.mv_data, d.mv_size);
    rec[0] = 2;
    d.mv_data = rec;
    assert_int_equal(mdb_put(txn, meta, &k, &d, 0), 0);
    MDB_val ik = {strlen(id), (void *)id}, iv = {0, (void *)""};
    assert_int_equal(mdb_put(txn, pend, &ik, &iv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A view of the previous storage version is rebuilt once at open: its
 * pending row without a CRC is not read as damage, and every answer is
 * the documents' (x1..x5: "b" 1, "d" 2, "f" 2). */
static void
test_old_format_rebuilt(void **state)
{
    (void)state;
    char dir[1100];
    sprig_storage *st;
    sprig_db *db;
    sprig_buf out = {0};
    sprig_view_query q;
    rt_scratch(dir, sizeof dir, "vflip_old");
    build(dir);
    make_old_format(dir, "lazy", "x1");
    open_db(dir, &st, &db, false);
    sprig_view_query_init(&q, "c", "lazy");
    SPRIG_OK_(sprig_view_reduce(db, &q, &out));
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_string_equal((const char *)out.data, "5");
    sprig_buf_clear(&out);
    uint64_t n = 1;
    SPRIG_OK_(sprig_storage_check(st, NULL, &n));
    assert_int_equal(n, 0);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_key_flip_query),
        cmocka_unit_test(test_reduce_key_flip),
        cmocka_unit_test(test_entry_key_flip_recompute),
        cmocka_unit_test(test_entry_key_flip_unique),
        cmocka_unit_test(test_pending_id_flip),
        cmocka_unit_test(test_old_format_rebuilt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
