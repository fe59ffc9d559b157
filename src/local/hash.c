/*
 * hash.c -- the content hash of stored documents, and the per-database key
 * it is computed with.
 *
 * Design notes.  The 16-byte hash in a stored document ([rev][hash]
 * [contents]) and in headers serves one purpose: telling whether contents
 * changed (an expected header names a revision and, optionally, the hash
 * the caller saw).  It is not what decides that a write is a no-op: docs.c
 * compares the bytes for that, so a collision can never drop an update.
 * So it needs no collision resistance against an adversary who knows the
 * key, and it is SipHash-2-4 with a 128-bit output (libsodium's
 * crypto_shorthash_siphashx24): about 810 instructions for 150 bytes
 * against BLAKE2b-128's 3,800 (callgrind, same machine).
 *
 * The key is per database, 16 bytes kept in the database's `meta` table
 * under "hash_key", created by the first open of the database (the one
 * that creates its tables).  It must be the same wherever the database's
 * commands are applied (replay, and the cluster's replicas compare bytes),
 * so it is derived from the database's directory name ("<name>.<id>",
 * itself derived from the registry's state): sprig__hash_key_derive().
 * Derived from public facts, it separates databases but is no secret; the
 * encryption work (issue 13) derives it from the storage's secret key
 * instead, so that a hash does not confirm a guessed document.
 *
 * Databases written before this hash hold BLAKE2b hashes: they stay valid
 * (an expected header is compared with the stored hash, whatever made it)
 * and are replaced by the next change of each document.
 */
#include "local.h"

#include <sodium.h>

#define HASH_KEY "hash_key"
#define CRC_KEY "crc" /* present: created under format 3 (codec.h) */

/* Whether the database in `txn` holds nothing yet: no log record, no
 * document, no key-value table or an empty one. */
static bool
fresh_db(MDB_txn *txn, const sprig__ldb *ldb)
{
    MDB_stat s;
    MDB_dbi kv;
    if (mdb_stat(txn, ldb->log, &s) || s.ms_entries) {
        return false;
    }
    for (size_t i = 0; i < ldb->n_colls; i++) {
        if (mdb_stat(txn, ldb->colls[i].dbi, &s) || s.ms_entries) {
            return false;
        }
    }
    int mrc = mdb_dbi_open(txn, "kv", 0, &kv);
    return mrc == MDB_NOTFOUND ||
           (mrc == 0 && mdb_stat(txn, kv, &s) == 0 && s.ms_entries == 0);
}

/* A database created now gets the "crc" record: every plaintext value it
 * will hold carries a CRC, so a value without one is damage. */
static int
mark_crc(MDB_txn *txn, sprig__ldb *ldb)
{
    if (!fresh_db(txn, ldb)) {
        return MDB_SUCCESS;
    }
    MDB_val k = {sizeof CRC_KEY - 1, (void *)CRC_KEY}, v = {1, (void *)"\1"};
    int mrc = mdb_put(txn, ldb->meta, &k, &v, 0);
    ldb->crc_all = mrc == 0;
    return mrc;
}

void
sprig__hash_key_derive(const char *dir, uint8_t out[SPRIG__HASH_KEY_LEN])
{
    static const uint8_t ctx[] = "sprig content hash key v1";
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    crypto_generichash(out, SPRIG__HASH_KEY_LEN, (const uint8_t *)base,
                       strlen(base), ctx, sizeof ctx - 1);
}

void
sprig__doc_hash(const uint8_t key[SPRIG__HASH_KEY_LEN], sprig_bytes contents,
                uint8_t out[16])
{
    crypto_shorthash_siphashx24(out, contents.data, contents.len, key);
}

/* Read the key from `meta` in `txn`: 1 found, 0 absent, or an error. */
static int
key_get(MDB_txn *txn, MDB_dbi meta, uint8_t out[SPRIG__HASH_KEY_LEN])
{
    MDB_val k = {sizeof HASH_KEY - 1, (void *)HASH_KEY}, v;
    int mrc = mdb_get(txn, meta, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        return 0;
    }
    if (mrc) {
        return sprig__mdb_err(mrc, "reading the hash key");
    }
    if (v.mv_size != SPRIG__HASH_KEY_LEN) {
        return sprig__err(SPRIG_ECORRUPT, "the hash key has %zu bytes",
                          v.mv_size);
    }
    memcpy(out, v.mv_data, SPRIG__HASH_KEY_LEN);
    return 1;
}

/* The key is absent: write `want` (NULL: random) in one write txn. */
static int
key_create(sprig__ldb *ldb, const uint8_t *want)
{
    for (;;) {
        size_t seen = ldb->env->map_size;
        MDB_txn *txn = NULL;
        pthread_rwlock_rdlock(&ldb->env->map_lock);
        int mrc = mdb_txn_begin(ldb->env->env, NULL, 0, &txn);
        int rc = mrc ? sprig__mdb_err(mrc, "writing the hash key")
                     : key_get(txn, ldb->meta, ldb->hash_key);
        if (rc == 0) { /* still absent */
            if (want) {
                memcpy(ldb->hash_key, want, SPRIG__HASH_KEY_LEN);
            } else {
                randombytes_buf(ldb->hash_key, SPRIG__HASH_KEY_LEN);
            }
            MDB_val k = {sizeof HASH_KEY - 1, (void *)HASH_KEY};
            MDB_val v = {SPRIG__HASH_KEY_LEN, ldb->hash_key};
            mrc = mdb_put(txn, ldb->meta, &k, &v, 0);
            mrc = mrc ? mrc : mark_crc(txn, ldb);
            if (mrc == 0) {
                mrc = mdb_txn_commit(txn);
                txn = NULL;
            }
            rc = mrc == MDB_MAP_FULL ? SPRIG__EMAPFULL
                                     : sprig__mdb_err(mrc, "writing the "
                                                           "hash key");
        }
        if (txn) {
            mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&ldb->env->map_lock);
        if (rc != SPRIG__EMAPFULL) {
            return rc > 0 ? SPRIG_OK : rc;
        }
        rc = sprig__env_grow(ldb->env, seen, false);
        if (rc) {
            return rc;
        }
    }
}

int
sprig__hash_key_load(sprig__ldb *ldb, const uint8_t *want)
{
    MDB_txn *txn;
    int rc = sprig__env_read_begin(ldb->env, &txn);
    if (rc) {
        return rc;
    }
    rc = key_get(txn, ldb->meta, ldb->hash_key);
    MDB_val k = {sizeof CRC_KEY - 1, (void *)CRC_KEY}, v;
    ldb->crc_all = mdb_get(txn, ldb->meta, &k, &v) == 0;
    sprig__env_read_end(ldb->env, txn);
    return rc == 0 ? key_create(ldb, want) : rc < 0 ? rc : SPRIG_OK;
}
