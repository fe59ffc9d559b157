/*
 * test_doc_hash.c -- the content hash of documents (src/local/hash.c) and
 * the identical-contents rule of docs.c: the hash is keyed SipHash-128
 * under a per-database key kept in the database (the same after a reopen,
 * different between databases, and the same for the same database
 * wherever its commands are applied: derived from its directory name), and a
 * write is a no-op only when the bytes are equal -- a stored hash forged to
 * equal the new contents' hash (a collision) does not drop the update, and a
 * document whose stored hash came from another function (BLAKE2b, older
 * databases) is still found identical.
 */
#include "testutil.h"

#include "local/local.h"

#include <sodium.h>

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"hash", cols, 1};

static const char *root;

static sprig_db *
open_at(const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", root, name);
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(p, &schema, &db));
    return db;
}

static sprig_bytes
str(const char *s)
{
    return sprig_str(s);
}

/* Replace the 16 hash bytes stored with document `id` by `hash`. */
static void
forge_stored_hash(sprig_db *db, const char *id, const uint8_t hash[16])
{
    sprig__ldb *ldb = sprig__db_ldb(db);
    sprig__coll *c;
    SPRIG_OK_(sprig__ldb_coll(ldb, "docs", &c));
    MDB_txn *txn;
    MDB_val k = {strlen(id), (void *)id}, v;
    pthread_rwlock_rdlock(&ldb->env->map_lock);
    assert_int_equal(mdb_txn_begin(ldb->env->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_get(txn, c->dbi, &k, &v), 0);
    uint8_t buf[256];
    assert_true(v.mv_size <= sizeof buf);
    memcpy(buf, v.mv_data, v.mv_size);
    memcpy(buf + 8, hash, 16);
    if (buf[0] == SPRIG__CF_CRC) { /* the value's CRC covers the hash */
        sprig__vloc l = sprig__ldb_loc(ldb, 'd', "docs", str(id));
        l.hdr = (sprig_bytes){buf + 1, SPRIG__DOC_HDR - 1};
        size_t n = v.mv_size - SPRIG__DOC_HDR - SPRIG__CRC_BYTES;
        uint32_t crc = sprig__codec_crc(&l, buf[0],
                                        (sprig_bytes){buf + SPRIG__DOC_HDR, n});
        for (int i = 0; i < 4; i++, crc >>= 8) {
            buf[SPRIG__DOC_HDR + n + (size_t)i] = (uint8_t)crc;
        }
    }
    MDB_val nv = {v.mv_size, buf};
    assert_int_equal(mdb_put(txn, c->dbi, &k, &nv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    pthread_rwlock_unlock(&ldb->env->map_lock);
}

static void
test_keyed_siphash(void **state)
{
    (void)state;
    sprig_db *db = open_at("a");
    sprig_header_buf h;
    SPRIG_OK_(sprig_overwrite(db, "docs", str("x"), str("hello"), &h));
    uint8_t want[16], key[16];
    memcpy(key, sprig__db_ldb(db)->hash_key, 16);
    crypto_shorthash_siphashx24(want, (const uint8_t *)"hello", 5, key);
    assert_memory_equal(h.hash, want, 16);
    static const uint8_t zero[16];
    assert_memory_not_equal(key, zero, 16);
    sprig_db_close(db);

    /* the key is stored: a reopen hashes alike */
    db = open_at("a");
    assert_memory_equal(sprig__db_ldb(db)->hash_key, key, 16);
    SPRIG_OK_(sprig_overwrite(db, "docs", str("y"), str("hello"), &h));
    assert_memory_equal(h.hash, want, 16);
    sprig_db_close(db);

    /* the same database elsewhere (a replay, a replica) has the same key:
     * it is derived from the directory name, never drawn at random */
    db = open_at("b");
    assert_memory_equal(sprig__db_ldb(db)->hash_key, key, 16);
    uint8_t derived[16];
    sprig__hash_key_derive(sprig__db_ldb(db)->dir, derived);
    assert_memory_equal(derived, key, 16);
    sprig_db_close(db);

    /* another database has another key */
    char p[1200];
    snprintf(p, sizeof p, "%s/multi", root);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = p;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "other", "hash", false));
    SPRIG_OK_(sprig_storage_open_database(st, "other", &db));
    assert_memory_not_equal(sprig__db_ldb(db)->hash_key, key, 16);
    SPRIG_OK_(sprig_overwrite(db, "docs", str("x"), str("hello"), &h));
    assert_memory_not_equal(h.hash, want, 16);
    sprig_db_close(db);
    sprig_storage_close(st);
}

static void
test_collision_keeps_update(void **state)
{
    (void)state;
    sprig_db *db = open_at("c");
    sprig_header_buf h;
    SPRIG_OK_(sprig_overwrite(db, "docs", str("x"), str("old"), &h));
    assert_int_equal(h.revision, 1);
    /* make the stored hash equal the hash of the new contents */
    uint8_t hnew[16];
    sprig__doc_hash(sprig__db_ldb(db)->hash_key, str("new!"), hnew);
    forge_stored_hash(db, "x", hnew);
    SPRIG_OK_(sprig_overwrite(db, "docs", str("x"), str("new!"), &h));
    assert_int_equal(h.revision, 2);
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "docs", str("x"), &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), "new!"));
    assert_int_equal(sprig_doc_header(d).revision, 2);
    sprig_doc_free(d);
    /* and the same length, different bytes */
    sprig__doc_hash(sprig__db_ldb(db)->hash_key, str("NEW!"), hnew);
    forge_stored_hash(db, "x", hnew);
    SPRIG_OK_(sprig_overwrite(db, "docs", str("x"), str("NEW!"), &h));
    assert_int_equal(h.revision, 3);
    sprig_db_close(db);
}

static void
test_identical_bytes_other_hash(void **state)
{
    (void)state;
    sprig_db *db = open_at("d");
    sprig_header_buf h;
    SPRIG_OK_(sprig_overwrite(db, "docs", str("x"), str("same"), &h));
    uint8_t blake[16];
    crypto_generichash(blake, 16, (const uint8_t *)"same", 4, NULL, 0);
    forge_stored_hash(db, "x", blake); /* as an older database stored it */
    SPRIG_OK_(sprig_overwrite(db, "docs", str("x"), str("same"), &h));
    assert_int_equal(h.revision, 1);
    assert_memory_equal(h.hash, blake, 16); /* the stored header */
    uint64_t last = 0;
    SPRIG_OK_(sprig_last_txn_id(db, &last));
    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_txns(db, last, 0, &log));
    assert_int_equal(sprig_txn_log_count(log), 1);
    assert_int_equal(sprig_txn_log_change_count(log, 0), 0); /* no change */
    sprig_txn_log_free(log);
    /* an expected header with the old hash still matches */
    sprig_header exp = {str("x"), 1, {0}};
    memcpy(exp.hash, blake, 16);
    SPRIG_OK_(sprig_update(db, "docs", &exp, str("changed"), &h));
    assert_int_equal(h.revision, 2);
    /* empty contents are identical to empty contents */
    SPRIG_OK_(sprig_overwrite(db, "docs", str("e"), str(""), &h));
    SPRIG_OK_(sprig_overwrite(db, "docs", str("e"), str(""), &h));
    assert_int_equal(h.revision, 1);
    sprig_db_close(db);
}

int
main(void)
{
    root = tu_tmpdir("doc_hash");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyed_siphash),
        cmocka_unit_test(test_collision_keeps_update),
        cmocka_unit_test(test_identical_bytes_other_hash),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(root);
    return rc;
}
