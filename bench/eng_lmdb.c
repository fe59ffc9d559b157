/*
 * eng_lmdb.c -- the raw LMDB peer: what a careful program gets from LMDB
 * alone.  One environment with default flags (a commit fsyncs the data and
 * then the meta page: the durability of Sprig's FULL), one unnamed table,
 * document k under its 8-byte big-endian id, the contents as the value,
 * inserts with MDB_NOOVERWRITE.  Reads come in two modes: one read
 * transaction per get (renew / get / copy / reset: the equivalent of an API
 * call that sees the latest commit) and all gets in one long read
 * transaction (the physical upper bound).
 */
#include "bench.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

typedef struct ldb {
    MDB_env *env;
    MDB_dbi dbi;
} ldb;

static int
mdb_fail(const char *what, int mrc)
{
    return bench_fail("lmdb", "%s: %s", what, mdb_strerror(mrc));
}

static int
l_open(const char *dir, void **out)
{
    ldb *l = calloc(1, sizeof *l);
    MDB_txn *txn = NULL;
    if (!l) {
        return bench_fail("lmdb", "out of memory");
    }
    int mrc = mdb_env_create(&l->env);
    mrc = mrc ? mrc : mdb_env_set_mapsize(l->env, (size_t)16 << 30);
    mrc = mrc ? mrc : mdb_env_set_maxreaders(l->env, 126);
    mrc = mrc ? mrc : mdb_env_open(l->env, dir, 0, 0644);
    mrc = mrc ? mrc : mdb_txn_begin(l->env, NULL, 0, &txn);
    mrc = mrc ? mrc : mdb_dbi_open(txn, NULL, 0, &l->dbi);
    mrc = mrc ? mrc : mdb_txn_commit(txn);
    if (mrc) {
        if (l->env) {
            mdb_env_close(l->env);
        }
        free(l);
        return mdb_fail("open", mrc);
    }
    *out = l;
    return 0;
}

static void
l_close(void *db)
{
    ldb *l = db;
    mdb_env_close(l->env);
    free(l);
}

static int
put_doc(MDB_txn *txn, ldb *l, const bench_docs *d, uint64_t k)
{
    uint8_t kb[8];
    size_t len;
    const char *doc = bench_doc(d, k, &len);
    bench_put_be64(kb, k);
    MDB_val key = {8, kb}, val = {len, (void *)doc};
    return mdb_put(txn, l->dbi, &key, &val, MDB_NOOVERWRITE);
}

static int
l_insert_batch(void *db, const bench_docs *d, uint64_t first, uint64_t n,
               unsigned per_txn, uint64_t *ids)
{
    ldb *l = db;
    for (uint64_t done = 0; done < n;) {
        MDB_txn *txn;
        int mrc = mdb_txn_begin(l->env, NULL, 0, &txn);
        if (mrc) {
            return mdb_fail("begin", mrc);
        }
        uint64_t end = done + per_txn < n ? done + per_txn : n;
        for (; done < end && mrc == 0; done++) {
            mrc = put_doc(txn, l, d, first + done);
            if (ids) {
                ids[done] = first + done;
            }
        }
        if (mrc) {
            mdb_txn_abort(txn);
            return mdb_fail("put", mrc);
        }
        if ((mrc = mdb_txn_commit(txn))) {
            return mdb_fail("commit", mrc);
        }
    }
    return 0;
}

typedef struct worker {
    ldb *l;
    const bench_docs *d;
    uint64_t first, n;
    uint64_t *ids;
} worker;

static int
insert_worker(void *arg, bench_start *s)
{
    worker *w = arg;
    bench_ready(s);
    for (uint64_t i = 0; i < w->n; i++) {
        MDB_txn *txn;
        int mrc = mdb_txn_begin(w->l->env, NULL, 0, &txn);
        if (mrc) {
            return mdb_fail("begin", mrc);
        }
        if ((mrc = put_doc(txn, w->l, w->d, w->first + i))) {
            mdb_txn_abort(txn);
            return mdb_fail("put", mrc);
        }
        if ((mrc = mdb_txn_commit(txn))) {
            return mdb_fail("commit", mrc);
        }
        w->ids[i] = w->first + i;
    }
    return 0;
}

static int
l_insert_threads(void *db, const bench_docs *d, uint64_t first,
                 unsigned threads, uint64_t per_thread, uint64_t *ids,
                 bench_conc *out)
{
    worker *w = calloc(threads, sizeof *w);
    if (!w) {
        return bench_fail("lmdb", "out of memory");
    }
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (worker){db, d, first + t * per_thread, per_thread,
                        ids + t * per_thread};
    }
    memset(out, 0, sizeof *out);
    int rc = bench_threads(threads, insert_worker, w, sizeof *w, &out->seconds);
    free(w);
    return rc;
}

/* One get in `txn`, copying the value into buf; checks the length. */
static int
get_one(ldb *l, MDB_txn *txn, uint64_t id, const uint16_t *lens, char *buf,
        uint64_t *bad)
{
    uint8_t kb[8];
    bench_put_be64(kb, id);
    MDB_val key = {8, kb}, val;
    int mrc = mdb_get(txn, l->dbi, &key, &val);
    if (mrc) {
        return mdb_fail("get", mrc);
    }
    size_t n = val.mv_size < BENCH_DOC_MAX ? val.mv_size : BENCH_DOC_MAX;
    memcpy(buf, val.mv_data, n);
    *bad += val.mv_size != lens[id];
    return 0;
}

static int
l_get_random(void *db, const uint64_t *ids, size_t n, const uint16_t *lens,
             uint64_t *bad)
{
    ldb *l = db;
    MDB_txn *txn;
    char buf[BENCH_DOC_MAX];
    int mrc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        return mdb_fail("begin read", mrc);
    }
    mdb_txn_reset(txn);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((mrc = mdb_txn_renew(txn))) {
            rc = mdb_fail("renew", mrc);
            break;
        }
        rc = get_one(l, txn, ids[i], lens, buf, bad);
        mdb_txn_reset(txn);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* A plain mdb_get miss per id, each in its own renewed read
 * transaction (as l_get_random). */
static int
l_get_miss(void *db, const uint64_t *ids, size_t n, uint64_t *bad)
{
    ldb *l = db;
    MDB_txn *txn;
    int mrc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        return mdb_fail("begin read", mrc);
    }
    mdb_txn_reset(txn);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t kb[9];
        if ((mrc = mdb_txn_renew(txn))) {
            rc = mdb_fail("renew", mrc);
            break;
        }
        bench_put_be64(kb, ids[i]);
        kb[8] = 0x80;
        MDB_val key = {9, kb}, val;
        mrc = mdb_get(txn, l->dbi, &key, &val);
        *bad += mrc == 0;
        rc = mrc && mrc != MDB_NOTFOUND ? mdb_fail("get", mrc) : 0;
        mdb_txn_reset(txn);
    }
    mdb_txn_abort(txn);
    return rc;
}

int
bench_lmdb_get_longtxn(void *db, const uint64_t *ids, size_t n,
                       const uint16_t *lens, uint64_t *bad)
{
    ldb *l = db;
    MDB_txn *txn;
    char buf[BENCH_DOC_MAX];
    int mrc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        return mdb_fail("begin read", mrc);
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = get_one(l, txn, ids[i], lens, buf, bad);
    }
    mdb_txn_abort(txn);
    return rc;
}

static int
l_read(void *db, uint64_t id, char *buf, size_t cap, size_t *len)
{
    ldb *l = db;
    MDB_txn *txn = NULL;
    uint8_t kb[8];
    bench_put_be64(kb, id);
    MDB_val key = {8, kb}, val;
    int mrc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    mrc = mrc ? mrc : mdb_get(txn, l->dbi, &key, &val);
    if (mrc == 0) {
        *len = val.mv_size;
        memcpy(buf, val.mv_data, val.mv_size < cap ? val.mv_size : cap);
    }
    if (txn) {
        mdb_txn_abort(txn);
    }
    return mrc ? mdb_fail("read", mrc) : 0;
}

static int
l_count(void *db, uint64_t *n)
{
    ldb *l = db;
    MDB_txn *txn = NULL;
    MDB_stat st;
    int mrc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    mrc = mrc ? mrc : mdb_stat(txn, l->dbi, &st);
    if (txn) {
        mdb_txn_abort(txn);
    }
    *n = mrc ? 0 : st.ms_entries;
    return mrc ? mdb_fail("count", mrc) : 0;
}

const bench_engine bench_lmdb = {
    .name = "lmdb",
    .open = l_open,
    .close = l_close,
    .insert_batch = l_insert_batch,
    .insert_threads = l_insert_threads,
    .get_random = l_get_random,
    .get_miss = l_get_miss,
    .read = l_read,
    .count = l_count,
};
