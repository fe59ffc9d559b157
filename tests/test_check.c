/*
 * test_check.c -- sprig_storage_check() (issue 17, item 2).  A healthy
 * storage -- documents, an eager view, a lazy view with documents still
 * pending, a C view with a reduce, key-value pairs with and without
 * expiry, a deleted document -- has no findings, before and after a
 * reopen and on a read-only open.  Then each kind of damage is made
 * directly in the LMDB file (the storage closed, the file opened with
 * LMDB alone) and must be found, named: a document's bytes changed
 * behind the engine's back (its hash, and the eager view's mappings), a
 * view entry removed, a document removed (the log still says it is there,
 * and its view records are left over), an expiry index entry removed.
 */
#include "reltest.h"

#include "local/codec.h"

#include <lmdb.h>

static int
count_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    (void)udata;
    uint8_t k[8];
    sprig_key_u64(doc->len % 3, k);
    return sprig_emit(e, (sprig_bytes){k, 8}, sprig_str("1"));
}

static int
count_reduce(const sprig_bytes *values, size_t n, bool rereduce, sprig_buf *out,
             void *udata)
{
    (void)udata;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) { /* a re-reduce adds the counts */
        char t[24] = "";
        memcpy(t, values[i].data, values[i].len < 23 ? values[i].len : 23);
        total += rereduce ? strtoull(t, NULL, 10) : 1;
    }
    char t[32];
    snprintf(t, sizeof t, "%zu", total);
    return sprig_buf_append(out, t, strlen(t));
}

static const sprig_view_def ck_views[] = {
    {.name = "eager",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = "lazy",
     .version = 1,
     .json_key = "k",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
    {.name = "c",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .map = count_map,
     .reduce = count_reduce},
};
static const sprig_collection_def ck_colls[] = {
    {"docs", SPRIG_ID_NATURAL, 0, ck_views, 3},
};
static const sprig_schema_def ck_schema = {"ck", ck_colls, 1};

/* Whether storages are opened encrypted and compressed (every value
 * through the codec: the check must decode before it compares). */
static bool encoded;

static sprig_storage *
open_st(const char *dir, bool ro)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.read_only = ro;
    o.encrypt = encoded;
    o.compress = encoded;
    o.compress_min = 8;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    if (!ro) {
        SPRIG_OK_(sprig_storage_register_schema(st, &ck_schema));
    }
    return st;
}

static void
populate(const char *dir)
{
    sprig_storage *st = open_st(dir, false);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_create_database(st, "db", "ck", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    for (int i = 0; i < 30; i++) {
        char id[16], body[64];
        snprintf(id, sizeof id, "d%02d", i);
        snprintf(body, sizeof body, "{\"k\":\"g%d\",\"n\":%d}", i % 5, i);
        SPRIG_OK_(
            sprig_overwrite(db, "docs", sprig_str(id), sprig_str(body), NULL));
    }
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "docs", sprig_str("d07"), &d));
    sprig_header h = sprig_doc_header(d);
    SPRIG_OK_(sprig_delete(db, "docs", &h));
    sprig_doc_free(d);
    for (int i = 0; i < 6; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        sprig_value v = sprig_value_of_bytes(sprig_str("v"));
        sprig_kv_set_opts so = {0};
        so.expire_in_ms = i % 2 ? 3600 * 1000 : 0;
        SPRIG_OK_(sprig_kv_set(db, "ns", key, &v, &so, NULL, NULL));
    }
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* Run the check; the report must hold each of `want` (NULL-ended), and
 * the count must be as many findings as lines. */
static uint64_t
check(const char *dir, bool ro, const char *const *want)
{
    sprig_storage *st = open_st(dir, ro);
    sprig_buf rep = {0};
    uint64_t n = 99;
    SPRIG_OK_(sprig_storage_check(st, &rep, &n));
    SPRIG_OK_(sprig_buf_append(&rep, "", 1));
    const char *text = rep.data;
    size_t lines = 0;
    for (const char *p = text; *p; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, n);
    for (size_t i = 0; want && want[i]; i++) {
        if (!strstr(text, want[i])) {
            fail_msg("the check did not find \"%s\"; it said:\n%s", want[i],
                     text);
        }
    }
    if (!want && n) {
        fail_msg("a healthy storage has findings:\n%s", text);
    }
    sprig_buf_clear(&rep);
    sprig_storage_close(st);
    return n;
}

/* ---- damage, made with LMDB alone --------------------------------------- */

typedef struct raw {
    MDB_env *env;
    MDB_txn *txn;
} raw;

static MDB_dbi
raw_open(raw *r, const char *dir, const char *table)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/db/db.1", dir);
    assert_int_equal(mdb_env_create(&r->env), 0);
    assert_int_equal(mdb_env_set_maxdbs(r->env, 64), 0);
    assert_int_equal(mdb_env_set_mapsize(r->env, 64u << 20), 0);
    assert_int_equal(mdb_env_open(r->env, p, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(r->txn, table, 0, &dbi), 0);
    return dbi;
}

static void
raw_close(raw *r)
{
    assert_int_equal(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

/* Delete the first entry of `table` (or the entry `key`). */
static void
raw_del(const char *dir, const char *table, const char *key)
{
    raw r;
    MDB_dbi dbi = raw_open(&r, dir, table);
    MDB_val k = {key ? strlen(key) : 0, (void *)key}, v;
    if (!key) {
        MDB_cursor *c;
        assert_int_equal(mdb_cursor_open(r.txn, dbi, &c), 0);
        assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
        assert_int_equal(mdb_cursor_del(c, 0), 0);
        mdb_cursor_close(c);
    } else {
        assert_int_equal(mdb_del(r.txn, dbi, &k, NULL), 0);
    }
    raw_close(&r);
}

/* Give a value stored as [hdr][payload][CRC] (codec flags `flags`) a CRC
 * that matches its bytes again: damage as a faulty writer would leave it,
 * which only the check's recomputations can find. */
static void
fix_crc(char kind, const char *scope, MDB_val k, uint8_t *buf, size_t n,
        size_t hdr, uint8_t flags)
{
    assert_int_equal(flags, SPRIG__CF_CRC);
    sprig__vloc l = {kind, "db.1", scope, {k.mv_data, k.mv_size}};
    l.hdr = (sprig_bytes){buf + 1, hdr > 1 ? hdr - 1 : 0};
    size_t body = n - hdr - SPRIG__CRC_BYTES;
    uint32_t c = sprig__codec_crc(&l, flags, (sprig_bytes){buf + hdr, body});
    for (int i = 0; i < 4; i++, c >>= 8) {
        buf[hdr + body + (size_t)i] = (uint8_t)c;
    }
}

/* Flip the last byte of document `id`'s contents; `keep_crc`: and make
 * its CRC match again. */
static void
raw_flip_doc_crc(const char *dir, const char *id, bool keep_crc)
{
    raw r;
    MDB_dbi dbi = raw_open(&r, dir, "c.docs");
    MDB_val k = {strlen(id), (void *)id}, v;
    assert_int_equal(mdb_get(r.txn, dbi, &k, &v), 0);
    uint8_t buf[512];
    assert_true(v.mv_size <= sizeof buf);
    memcpy(buf, v.mv_data, v.mv_size);
    buf[24 + 7] ^= 0x01; /* {"k":"g3",...: g3 becomes g2 */
    if (keep_crc) {
        fix_crc('d', "docs", k, buf, v.mv_size, 24, buf[0]);
    }
    MDB_val nv = {v.mv_size, buf};
    assert_int_equal(mdb_put(r.txn, dbi, &k, &nv, 0), 0);
    raw_close(&r);
}

static void
test_healthy(void **state)
{
    char dir[1200];
    rt_scratch(dir, sizeof dir, "check-healthy");
    populate(dir);
    check(dir, false, NULL);
    check(dir, false, NULL); /* after a reopen */
    check(dir, true, NULL);  /* read-only */
    tu_rmtree(dir);
}

/* Every value encrypted and compressed: still no findings (the check once
 * hashed and compared the stored, encoded bytes). */
static void
test_healthy_encoded(void **state)
{
    char dir[1200];
    rt_scratch(dir, sizeof dir, "check-encoded");
    encoded = true;
    populate(dir);
    check(dir, false, NULL);
    check(dir, true, NULL);
    encoded = false;
    tu_rmtree(dir);
}

/* Damage a fresh storage, then check it: read-only (C views codeless,
 * skipped) and writable with the schema registered (C views too). */
static void
expect_damage_in(const char *name, void (*damage)(const char *dir),
                 const char *const *want, bool ro)
{
    char dir[1200];
    rt_scratch(dir, sizeof dir, name);
    populate(dir);
    damage(dir);
    assert_true(check(dir, ro, want) >= 1);
    tu_rmtree(dir);
}

static void
expect_damage(const char *name, void (*damage)(const char *dir),
              const char *const *want)
{
    expect_damage_in(name, damage, want, true);
}

static void
flip(const char *dir)
{
    raw_flip_doc_crc(dir, "d03", true);
}

static void
flip_bytes_only(const char *dir)
{
    raw_flip_doc_crc(dir, "d03", false);
}

static void
del_entry(const char *dir)
{
    raw_del(dir, "v/docs/eager/e", NULL);
}

static void
del_doc(const char *dir)
{
    raw_del(dir, "c.docs", "d04");
}

static void
del_exp(const char *dir)
{
    raw_del(dir, "kv.exp", NULL);
}

/* Change the first stored reduce value of view table `table` with LMDB:
 * `how` 0 adds one to a built-in state's count, 1 makes a C reduce's
 * text "999", 2 removes the value. */
static void
raw_reduce(const char *dir, const char *table, int how)
{
    raw r;
    MDB_dbi dbi = raw_open(&r, dir, table);
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t buf[128];
    assert_int_equal(mdb_cursor_open(r.txn, dbi, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    assert_true(v.mv_size <= sizeof buf && v.mv_size > 1);
    /* codec flags: plain, with a CRC */
    assert_int_equal(((uint8_t *)v.mv_data)[0], SPRIG__CF_CRC);
    memcpy(buf, v.mv_data, v.mv_size);
    MDB_val nv = {v.mv_size, buf};
    if (how == 0) {
        assert_int_equal(v.mv_size, 1 + 75 + SPRIG__CRC_BYTES);
        buf[1 + 8] += 1; /* the count's low byte */
    } else if (how == 1) {
        memcpy(buf + 1, "999", 3);
        nv.mv_size = 1 + 3 + SPRIG__CRC_BYTES;
    }
    char scope[64];
    snprintf(scope, sizeof scope, "docs/%.*s", (int)(strlen(table) - 9),
             table + 7); /* "v/docs/eager/r" */
    fix_crc('r', scope, k, buf, nv.mv_size, 1, buf[0]);
    if (how == 2) {
        assert_int_equal(mdb_cursor_del(c, 0), 0);
    } else {
        assert_int_equal(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
    }
    mdb_cursor_close(c);
    raw_close(&r);
}

static void
bump_builtin(const char *dir)
{
    raw_reduce(dir, "v/docs/eager/r", 0);
}

static void
bump_c(const char *dir)
{
    raw_reduce(dir, "v/docs/c/r", 1);
}

static void
drop_reduce(const char *dir)
{
    raw_reduce(dir, "v/docs/eager/r", 2);
}

/* Stored reduce values are recomputed from the index and compared: a
 * built-in state and a C reduce's bytes changed, a value removed. */
static void
test_reduce_damage_found(void **state)
{
    const char *builtin[] = {"view 'eager' of collection 'docs': the reduced "
                             "value of key \"g0\" differs from its "
                             "mappings' (recomputed)",
                             NULL};
    expect_damage("check-rb", bump_builtin, builtin);
    const char *c[] = {"view 'c' of collection 'docs': the reduced value of "
                       "key 0000000000000001 differs",
                       NULL};
    expect_damage_in("check-rc", bump_c, c, false); /* C code loaded */
    const char *gone[] = {"view 'eager' of collection 'docs': key \"g0\" "
                          "has mappings but no reduced value",
                          NULL};
    expect_damage("check-rd", drop_reduce, gone);
}

static void
test_damage_found(void **state)
{
    const char *flipped[] = {
        "document 'd03': its contents do not match its hash",
        "view 'eager' of collection 'docs': document 'd03': the stored "
        "mappings differ",
        NULL};
    expect_damage("check-flip", flip, flipped);
    const char *crc[] = {
        "document 'd03' does not decode: document 'd03' of collection "
        "'docs' is damaged: its CRC-32C is",
        "view 'eager' of collection 'docs': document 'd03': document 'd03' "
        "of collection 'docs' is damaged",
        NULL};
    expect_damage("check-crc", flip_bytes_only, crc);
    const char *entry[] = {"view 'eager' of collection 'docs': the entries "
                           "table does not hold the records' pairs",
                           NULL};
    expect_damage("check-entry", del_entry, entry);
    const char *doc[] = {"the log says document 'd04' has revision 1, but it "
                         "is not there",
                         "view 'eager' of collection 'docs': document 'd04': "
                         "a record is left for a document that is gone",
                         NULL};
    expect_damage("check-doc", del_doc, doc);
    const char *exp[] = {"database 'db': key-value store:", NULL};
    expect_damage("check-exp", del_exp, exp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy),
        cmocka_unit_test(test_healthy_encoded),
        cmocka_unit_test(test_damage_found),
        cmocka_unit_test(test_reduce_damage_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
