/*
 * rotate.c -- key rotation (sprig_storage_vault_rotate): re-encrypting,
 * online, every stored value sealed under a master key other than the
 * vault's current one.
 *
 * Design notes.  Steps: (1) the vault gets a new current key (vault.c;
 * durable before anything uses it), so every write from then on seals
 * under it; (2) each database's tables holding values -- collections, view
 * `d` and `r` tables, the key-value store -- are walked in chunks of
 * CHUNK entries, each chunk one write request through the database's
 * writer (maintenance: not logged), so ordinary writers interleave and a
 * value is always read and rewritten inside the same write transaction:
 * nothing written meanwhile can be lost or overwritten by a stale copy;
 * (3) each database is checkpointed, so neither LMDB's restored snapshot
 * nor the command log to replay after a crash holds anything sealed under
 * an old key (the chunks of (2) are in the checkpoint; commands logged
 * before (1) are below it); (4) the old keys leave the vault.  A crash
 * before (4) keeps every key: all values still open, and a new rotation
 * completes the work.
 */
#include "kv.h"
#include "local.h"
#include "views.h"

#include <stdio.h>

#define CHUNK 512

/* One table to walk: where its values sit in a record, and their scope. */
typedef struct rtable {
    MDB_dbi dbi;
    char kind;         /* 'd' document, 'v' view d, 'r' reduce, 'k' kv */
    const char *scope; /* location scope (codec.h) */
    const sprig__codec *codec;
} rtable;

typedef struct rwalk {
    sprig__ldb *ldb;
    const rtable *t;
    uint32_t cur; /* the current key id */
    uint8_t in_after[512], out_after[512];
    size_t in_len, out_len;
    bool started, done;
    uint64_t n; /* rewritten in the last chunk */
    sprig_buf keys, dec, enc, val;
    size_t *ofs;
    size_t nofs, capofs;
} rwalk;

/* Where a record's flags and payload sit. */
static void
split(char kind, MDB_val *v, uint8_t *flags, size_t *hdr)
{
    const uint8_t *p = v->mv_data;
    *hdr = kind == 'k' ? SPRIG__KV_REC_HDR : kind == 'r' ? 1 : 24;
    *flags = v->mv_size < *hdr ? 0 : kind == 'k' ? p[0] >> 4 : p[0];
}

/* Whether record (k, v) was sealed under an old key. */
static bool
stale(const rwalk *w, MDB_val *v)
{
    uint8_t f;
    size_t hdr;
    split(w->t->kind, v, &f, &hdr);
    if (!(f & SPRIG__CF_ENC) || v->mv_size < hdr) {
        return false;
    }
    sprig_bytes body = {(uint8_t *)v->mv_data + hdr, v->mv_size - hdr};
    return sprig__codec_key_id(f, body) != w->cur;
}

/* Re-encode record (k, v) under the current key into w->val. */
static int
reseal(rwalk *w, sprig_bytes key, MDB_val *v)
{
    uint8_t f, nf;
    size_t hdr;
    split(w->t->kind, v, &f, &hdr);
    const uint8_t *p = v->mv_data;
    sprig_bytes body = {p + hdr, v->mv_size - hdr}, plain, out;
    sprig__vloc l = sprig__ldb_loc(w->ldb, w->t->kind, w->t->scope, key);
    uint8_t kh[SPRIG__KV_REC_HDR]; /* what a CRC covers beside the value */
    if (w->t->kind == 'k' && hdr == sizeof kh) {
        memcpy(kh, p, sizeof kh);
        kh[0] &= 0x0f;
        l.hdr = (sprig_bytes){kh, sizeof kh};
    } else if (w->t->kind != 'r' && hdr > 1) {
        l.hdr = (sprig_bytes){p + 1, hdr - 1};
    }
    int rc = sprig__codec_decode(w->ldb->vault, &l, f, body, &w->dec, &plain);
    rc = rc ? rc
            : sprig__codec_encode(w->t->codec, &l, plain, &w->enc, &nf, &out);
    w->val.len = 0;
    rc = rc ? rc : sprig_buf_append(&w->val, p, hdr);
    rc = rc ? rc : sprig_buf_append(&w->val, out.data, out.len);
    if (rc == 0) {
        uint8_t *q = w->val.data;
        q[0] = w->t->kind == 'k' ? (uint8_t)((q[0] & 0x0f) | nf << 4) : nf;
    }
    return rc;
}

/* Remember key k (stale) in w->keys. */
static int
note_key(rwalk *w, const MDB_val *k)
{
    if (w->nofs + 2 > w->capofs) {
        size_t c = w->capofs ? w->capofs * 2 : 64;
        size_t *o = sprig__realloc(w->ofs, c * sizeof *o);
        if (!o) {
            return sprig__err(SPRIG_ENOMEM, "out of memory rotating keys");
        }
        w->ofs = o;
        w->capofs = c;
    }
    w->ofs[w->nofs++] = w->keys.len;
    w->ofs[w->nofs++] = k->mv_size;
    return sprig_buf_append(&w->keys, k->mv_data, k->mv_size);
}

/* Walk up to CHUNK records after out_after, noting the stale ones. */
static int
scan_chunk(MDB_txn *txn, rwalk *w)
{
    MDB_cursor *cur;
    MDB_val k = {w->out_len, w->out_after}, v;
    int mrc = mdb_cursor_open(txn, w->t->dbi, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    mrc = w->started ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                     : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (mrc == 0 && w->started && k.mv_size == w->out_len &&
        memcmp(k.mv_data, w->out_after, w->out_len) == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    int rc = SPRIG_OK;
    for (size_t i = 0; mrc == 0 && rc == 0 && i < CHUNK; i++) {
        rc = stale(w, &v) ? note_key(w, &k) : 0;
        memcpy(w->out_after, k.mv_data, k.mv_size);
        w->out_len = k.mv_size;
        w->started = true;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    w->done = mrc == MDB_NOTFOUND;
    return rc                           ? rc
           : mrc && mrc != MDB_NOTFOUND ? sprig__mdb_err(mrc, "rotating keys")
                                        : SPRIG_OK;
}

static int
chunk_apply(MDB_txn *txn, void *arg)
{
    rwalk *w = arg; /* inputs untouched: this may run again */
    memcpy(w->out_after, w->in_after, w->in_len);
    w->out_len = w->in_len;
    w->started = w->in_len > 0;
    w->keys.len = 0;
    w->nofs = 0;
    w->n = 0;
    int rc = scan_chunk(txn, w);
    for (size_t i = 0; rc == 0 && i < w->nofs; i += 2) {
        MDB_val k = {w->ofs[i + 1], (uint8_t *)w->keys.data + w->ofs[i]}, v;
        int mrc = mdb_get(txn, w->t->dbi, &k, &v);
        rc = sprig__mdb_err(mrc, "rotating keys");
        rc = rc ? rc : reseal(w, (sprig_bytes){k.mv_data, k.mv_size}, &v);
        MDB_val nv = {w->val.len, w->val.data};
        rc = rc ? rc
                : sprig__mdb_err(mdb_put(txn, w->t->dbi, &k, &nv, 0),
                                 "rotating keys");
        w->n += rc == 0;
    }
    return rc;
}

static int
rotate_table(sprig__ldb *ldb, const rtable *t, uint64_t *n)
{
    rwalk *w = sprig__calloc(1, sizeof *w);
    if (!w) {
        return sprig__err(SPRIG_ENOMEM, "out of memory rotating keys");
    }
    w->ldb = ldb;
    w->t = t;
    w->cur = sprig__vault_current(ldb->vault);
    sprig__wreq req = {.apply = chunk_apply, .arg = w};
    int rc = SPRIG_OK;
    while (rc == 0 && !w->done) {
        req.finished = false;
        req.rc = 0;
        rc = sprig__writer_submit(&ldb->writer, &req);
        memcpy(w->in_after, w->out_after, w->out_len);
        w->in_len = w->out_len;
        *n += w->n;
        if (w->in_len == 0) {
            break; /* an empty table */
        }
    }
    sprig_buf_clear(&w->keys);
    sprig_buf_clear(&w->dec);
    sprig_buf_clear(&w->enc);
    sprig_buf_clear(&w->val);
    sprig__free(w->ofs);
    sprig__free(w);
    return rc;
}

static int
rotate_views(sprig__ldb *ldb, uint64_t *n)
{
    struct sprig__views *vw = ldb->views;
    int rc = SPRIG_OK;
    for (size_t i = 0; vw && rc == 0 && i < vw->n; i++) {
        sprig__view *v = &vw->v[i];
        rtable d = {v->d, 'v', v->scope, &v->coll->codec};
        rtable r = {v->r, 'r', v->scope, &v->coll->codec};
        rc = rotate_table(ldb, &d, n);
        rc = rc || !v->reduces ? rc : rotate_table(ldb, &r, n);
    }
    return rc;
}

int
sprig__rotate_ldb(sprig__ldb *ldb, uint64_t *n)
{
    *n = 0;
    if (!ldb->vault) {
        return SPRIG_OK; /* opened before the vault existed: nothing sealed */
    }
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < ldb->n_colls; i++) {
        sprig__coll *c = &ldb->colls[i];
        rtable t = {c->dbi, 'd', c->name, &c->codec};
        rc = rotate_table(ldb, &t, n);
    }
    rc = rc ? rc : rotate_views(ldb, n);
    if (rc == 0) {
        rtable t = {ldb->kv->data, 'k', "", &ldb->kv_codec};
        rc = rotate_table(ldb, &t, n);
    }
    if (rc == 0 && ldb->env->ckpt) {
        rc = sprig__ckpt_now(ldb->env); /* no old key below replay (step 3) */
    } else if (rc == 0) {
        rc = sprig__mdb_err(mdb_env_sync(ldb->env->env, 1), "syncing");
    }
    return rc;
}
