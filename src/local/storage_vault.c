/*
 * storage_vault.c -- what a local storage records about its own format,
 * checked when it opens: the storage format version, the codec defaults
 * (storage-wide encryption, compression) and the vault (codec.h).
 *
 * Design notes.
 *  - `_admin` meta "format" (u32 BE) is the storage format version.  A
 *    storage without it is format 1 (before the codec) when it holds
 *    anything, or new: either way it is written as SPRIG__FORMAT_VERSION
 *    at open.  Format 1 upgrades in place: its values are exactly the
 *    codec's plain values (flags 0), and view indexes rebuild themselves
 *    (their definition records changed version).  Format 2 upgrades in
 *    place too: format 3 only adds the CRC bit (SPRIG__CF_CRC) to values
 *    written from then on, and values without it read as before.  A
 *    read-only open leaves the record as it is.  A newer format is
 *    refused with SPRIG_ESCHEMA and a message naming both versions.
 *  - `_admin` meta "codec": [encrypt u8][compress u8][compress_min u32
 *    BE], written when the options turn one on; once on, each stays on (a
 *    tool opening the storage without the options keeps encrypting).
 *  - The vault is opened at open when its file exists (the key must
 *    work), made at open when storage-wide encryption is on, and made
 *    later (sprig__storage_vault, default key sources) when a database
 *    with an encrypted collection opens first.
 * These writes happen at open, before any writer runs, in their own LMDB
 * transaction on the `_admin` environment.
 */
#include "local.h"

#include <sodium.h>
#include <stdio.h>

#define FORMAT_KEY "format"
#define CODEC_KEY "codec"
#define COMPRESS_MIN_DEFAULT 128

static int
meta_get(sprig__lstorage *st, const char *key, uint8_t *out, size_t n,
         bool *found)
{
    MDB_txn *txn;
    *found = false;
    int rc = sprig__env_read_begin(st->admin, &txn);
    if (rc) {
        return rc;
    }
    MDB_val k = {strlen(key), (void *)key}, v;
    int mrc = mdb_get(txn, st->reg_meta, &k, &v);
    if (mrc == 0 && v.mv_size != n) {
        rc = sprig__err(SPRIG_ECORRUPT,
                        "the storage's '%s' record has %zu "
                        "bytes",
                        key, v.mv_size);
    } else if (mrc == 0) {
        memcpy(out, v.mv_data, n);
        *found = true;
    } else if (mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading the storage's format");
    }
    sprig__env_read_end(st->admin, txn);
    return rc;
}

/* Write meta `key` in its own transaction; `sync` false: without waiting
 * for the disk (a record whose loss is harmless: the next open writes it
 * again).  At open only: no other writer runs. */
static int
meta_put(sprig__lstorage *st, const char *key, const uint8_t *val, size_t n,
         bool sync)
{
    MDB_txn *txn = NULL;
    unsigned flags = 0;
    mdb_env_get_flags(st->admin->env, &flags);
    bool toggle = !sync && !(flags & MDB_NOSYNC); /* else it never syncs */
    pthread_rwlock_rdlock(&st->admin->map_lock);
    int mrc = mdb_txn_begin(st->admin->env, NULL, 0, &txn);
    if (mrc == 0) {
        MDB_val k = {strlen(key), (void *)key}, v = {n, (void *)val};
        mrc = mdb_put(txn, st->reg_meta, &k, &v, 0);
        if (toggle) {
            mdb_env_set_flags(st->admin->env, MDB_NOSYNC, 1);
        }
        mrc = mrc ? (mdb_txn_abort(txn), mrc) : mdb_txn_commit(txn);
        if (toggle) {
            mdb_env_set_flags(st->admin->env, MDB_NOSYNC, 0);
        }
    }
    pthread_rwlock_unlock(&st->admin->map_lock);
    sprig__env_committed(st->admin);
    return sprig__mdb_err(mrc, "writing the storage's format");
}

static int
format_check(sprig__lstorage *st)
{
    uint8_t b[4];
    bool found;
    int rc = meta_get(st, FORMAT_KEY, b, 4, &found);
    uint32_t ver = found ? sprig__get_u32be(b) : 1;
    if (rc || ver == SPRIG__FORMAT_VERSION) {
        return rc;
    }
    if (ver > SPRIG__FORMAT_VERSION || ver == 0) {
        return sprig__err(SPRIG_ESCHEMA,
                          "storage '%s' has format version %u; this build "
                          "of Sprig reads format versions 1 to %u (it "
                          "writes %u): open it with the Sprig that wrote it",
                          st->path, ver, SPRIG__FORMAT_VERSION,
                          SPRIG__FORMAT_VERSION);
    }
    if (st->opts.read_only) { /* read as it is; a writable open records */
        return SPRIG_OK;
    }
    /* format 1 or 2, or a new storage: the values need no rewrite
     * (codec.h: values without SPRIG__CF_CRC read as before).  Not synced:
     * lost, the storage reads as format 1, which it is compatible with, and the
     * next open writes it again. */
    sprig__put_u32be(b, SPRIG__FORMAT_VERSION);
    return meta_put(st, FORMAT_KEY, b, 4, false);
}

/* Merge the options' codec defaults into the recorded ones. */
static int
codec_defaults(sprig__lstorage *st, const sprig_storage_options *o)
{
    uint8_t b[6] = {0};
    bool found;
    int rc = meta_get(st, CODEC_KEY, b, 6, &found);
    if (rc) {
        return rc;
    }
    uint8_t want[6];
    memcpy(want, b, 6);
    want[0] |= o->encrypt ? 1 : 0;
    if (o->compress) {
        want[1] = 1;
        sprig__put_u32be(want + 2, o->compress_min ? o->compress_min
                                                   : COMPRESS_MIN_DEFAULT);
    }
    if (memcmp(want, b, 6) != 0 || (!found && (want[0] || want[1]))) {
        rc = meta_put(st, CODEC_KEY, want, 6, true);
    }
    st->encrypt_all = want[0] != 0;
    st->compress_min = want[1] ? sprig__get_u32be(want + 2) : UINT32_MAX;
    return rc;
}

int
sprig__storage_format_open(sprig__lstorage *st, const sprig_storage_options *o)
{
    if (o->vault_passphrase) {
        st->passphrase = sprig__strdup(o->vault_passphrase);
        if (!st->passphrase) {
            return sprig__err(SPRIG_ENOMEM, "out of memory opening a storage");
        }
        st->opts.vault_passphrase = st->passphrase;
    }
    if (o->vault_key_file) {
        st->key_file = sprig__strdup(o->vault_key_file);
        if (!st->key_file) {
            return sprig__err(SPRIG_ENOMEM, "out of memory opening a storage");
        }
        st->opts.vault_key_file = st->key_file;
    }
    int rc = format_check(st);
    rc = rc ? rc : codec_defaults(st, o);
    if (rc == 0 && (st->encrypt_all || sprig__vault_exists(st->path))) {
        rc =
            sprig__vault_open(st->path, &st->opts, st->encrypt_all, &st->vault);
    }
    return rc;
}

void
sprig__storage_format_close(sprig__lstorage *st)
{
    sprig__vault_free(st->vault);
    st->vault = NULL;
    if (st->passphrase) {
        sodium_memzero(st->passphrase, strlen(st->passphrase));
    }
    sprig__free(st->passphrase);
    sprig__free(st->key_file);
}

int
sprig__storage_vault(sprig__lstorage *st, sprig__vault **out)
{
    int rc = st->vault
                 ? 0
                 : sprig__vault_open(st->path, &st->opts, true, &st->vault);
    *out = st->vault;
    return rc;
}
