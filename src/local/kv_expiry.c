/*
 * kv_expiry.c -- the key-value store's expiry index and its housekeeper:
 * one background thread per database that sweeps expired keys and, in lazy
 * persistence mode, flushes the database file to disk.
 *
 * Design notes.
 *
 * Index.  kv.exp holds (expire_at BE, encoded key) for every record with an
 * expiry (kv.h), so the earliest expiry is the table's first entry: a sweep
 * reads from the front and stops at the first entry not yet due, touching
 * only due keys however many keys the store holds.  A sweep step is a
 * SWEEP command through the database's writer naming at most SWEEP_BATCH
 * index entries picked in a snapshot; applying it removes each entry still
 * there and its record if the record still has that expiry, so it never
 * races a change to the same key; the sweeper repeats until nothing is due.
 * Sweeps are lazy: losing one in a crash only means an expired, invisible
 * key is swept again.
 *
 * Housekeeper states (all under kv->lock):
 *   not started   no thread: nothing may expire and nothing waits for a
 *                 flush.  sprig__kv_expiry_scan() (at open),
 *                 sprig__kv_expiry_note() and sprig__kv_lazy_note() start
 *                 it on first need (ensure_thread).
 *   waiting       in pthread_cond_timedwait until the earliest of: the
 *                 next due expiry (re-checked at least every MAX_NAP_MS,
 *                 because the storage's clock may be a test clock or jump),
 *                 the lazy flush deadline; or untimed when neither exists.
 *                 Any note signals the condition.
 *   sweeping      removing due keys (lock released); notes made meanwhile
 *                 are folded in through `noted_min`, so none is lost.
 *   flushing      one mdb_env_sync (lock released).
 *   stopped       `stop` set by sprig__kv_housekeeper_fini(), which joins
 *                 the thread before the environment closes, so the thread
 *                 never touches a closed environment.
 *
 * Lazy flushing.  The writer counts lazy requests committed without fsync
 * (writer.unsynced; a durable commit syncs them and resets it).  After a
 * lazy change, sprig__kv_lazy_note() arms a deadline `lazy_ms` ahead (if
 * none is armed) and asks for an immediate flush once `lazy_changes` are
 * waiting.  A flush exchanges the counter for 0 and then syncs: every
 * change counted before the exchange was committed before it, so the sync
 * covers it.  The pending flag is cleared before the exchange, so a change
 * committed after it arms a new deadline.
 */
#include "kv.h"
#include "core/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#define SWEEP_BATCH 1000
#define MAX_NAP_MS 1000
#define RETRY_NAP_MS 10 /* a sweep that met the open's replay */
#define NEVER UINT64_MAX

/* ---- the index -------------------------------------------------------- */

static void
exp_key(uint8_t *buf, const MDB_val *key, uint64_t at, MDB_val *out)
{
    sprig__put_u64be(buf, at);
    memcpy(buf + 8, key->mv_data, key->mv_size);
    out->mv_size = 8 + key->mv_size;
    out->mv_data = buf;
}

int
sprig__kv_exp_put(MDB_txn *txn, sprig__kv *kv, const MDB_val *key, uint64_t at)
{
    uint8_t buf[SPRIG__KV_EXP_MAX];
    MDB_val k, v = {0, NULL};
    exp_key(buf, key, at, &k);
    return sprig__mdb_err(mdb_put(txn, kv->exp, &k, &v, 0),
                          "writing the expiry index");
}

int
sprig__kv_exp_del(MDB_txn *txn, sprig__kv *kv, const MDB_val *key, uint64_t at)
{
    uint8_t buf[SPRIG__KV_EXP_MAX];
    MDB_val k;
    exp_key(buf, key, at, &k);
    int mrc = mdb_del(txn, kv->exp, &k, NULL);
    if (mrc == MDB_NOTFOUND) {
        return sprig__err(SPRIG_ECORRUPT,
                          "the expiry index lacks an entry its record names");
    }
    return sprig__mdb_err(mrc, "updating the expiry index");
}

/* ---- sweeping --------------------------------------------------------- */

/* A sweep step is a SWEEP command: which keys it removes is decided when it
 * is accepted (read from the index in a snapshot, against the storage's
 * clock once) and carried in the command, so applying it never reads a
 * clock and gives the same result everywhere. */

typedef struct sweep_pick {
    sprig__sweep_item items[SWEEP_BATCH];
    uint8_t keys[SWEEP_BATCH][SPRIG__KV_ENC_MAX];
    size_t n;
    uint64_t next_due; /* first entry not picked, or NEVER */
} sweep_pick;

/* Take up to SWEEP_BATCH due index entries from the front of kv.exp. */
static int
pick_due(MDB_txn *txn, sprig__kv *kv, uint64_t now, sweep_pick *p)
{
    MDB_cursor *cur;
    MDB_val k, v;
    p->n = 0;
    p->next_due = NEVER;
    int mrc = mdb_cursor_open(txn, kv->exp, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    int rc = SPRIG_OK;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        if (k.mv_size <= 8 || k.mv_size > SPRIG__KV_EXP_MAX) {
            rc = sprig__err(SPRIG_ECORRUPT,
                            "an expiry index entry has %zu bytes", k.mv_size);
            break;
        }
        uint64_t at = sprig__get_u64be(k.mv_data);
        if (at > now || p->n == SWEEP_BATCH) {
            p->next_due = at;
            break;
        }
        memcpy(p->keys[p->n], (uint8_t *)k.mv_data + 8, k.mv_size - 8);
        p->items[p->n] =
            (sprig__sweep_item){at, {p->keys[p->n], k.mv_size - 8}};
        p->n++;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "sweeping");
    }
    return rc;
}

/* Remove index entry (at, key) if present, and its record if it still
 * carries that expiry.  *gone: the entry was there. */
static int
drop_item(MDB_txn *txn, sprig__kv *kv, const sprig__sweep_item *it, bool *gone)
{
    uint8_t buf[SPRIG__KV_EXP_MAX];
    MDB_val key = {it->key.len, (void *)it->key.data}, e, v;
    sprig__put_u64be(buf, it->at);
    memcpy(buf + 8, it->key.data, it->key.len);
    e = (MDB_val){8 + it->key.len, buf};
    int mrc = mdb_del(txn, kv->exp, &e, NULL);
    *gone = mrc == 0;
    if (mrc) { /* changed since the step was decided: nothing to do */
        return mrc == MDB_NOTFOUND ? 0 : sprig__mdb_err(mrc, "sweeping");
    }
    mrc = mdb_get(txn, kv->data, &key, &v);
    if (mrc && mrc != MDB_NOTFOUND) {
        return sprig__mdb_err(mrc, "reading a key-value record");
    }
    if (mrc == 0) {
        sprig__kv_rec r;
        int rc = sprig__kv_rec_parse(&v, &r);
        if (rc) {
            return rc;
        }
        mrc = r.expire_at == it->at ? mdb_del(txn, kv->data, &key, NULL) : 0;
    }
    return sprig__mdb_err(mrc, "sweeping an expired key");
}

int
sprig__kv_sweep_apply(MDB_txn *txn, sprig__kv *kv, const sprig__cmd *c,
                      sprig__cmd_out *o)
{
    o->removed = 0;
    o->log_id = 0;
    sprig_change *ch = sprig__malloc((c->n_items + 1) * sizeof *ch);
    if (!ch) {
        return sprig__err(SPRIG_ENOMEM, "out of memory sweeping");
    }
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < c->n_items; i++) {
        bool gone = false;
        rc = c->items[i].key.len > SPRIG__KV_ENC_MAX
                 ? sprig__err(SPRIG_EINVAL, "a sweep key is too long")
                 : drop_item(txn, kv, &c->items[i], &gone);
        if (gone) {
            ch[o->removed++] =
                (sprig_change){SPRIG__LOG_KV, c->items[i].key, 0, true};
        }
    }
    if (rc == 0 && o->removed) {
        sprig_buf scratch = {0};
        rc = sprig__log_write(txn, kv->ldb->log, c->now_ms, ch, o->removed,
                              &scratch, &o->log_id);
        sprig_buf_clear(&scratch);
    }
    sprig__free(ch);
    return rc;
}

/* Decide one sweep step at `now` (NULL cmd items when nothing is due). */
static int
sweep_decide(sprig__kv *kv, uint64_t now, sweep_pick *p)
{
    MDB_txn *txn;
    int rc = sprig__env_read_begin(kv->ldb->env, &txn);
    if (rc) {
        return rc;
    }
    rc = pick_due(txn, kv, now, p);
    sprig__env_read_end(kv->ldb->env, txn);
    return rc;
}

/* Sweep until nothing is due.  Returns the keys removed in *removed and the
 * next due expiry in *next_due. */
static int
sweep_all(sprig__kv *kv, uint64_t *removed, uint64_t *next_due)
{
    sweep_pick *p = sprig__malloc(sizeof *p);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory sweeping");
    }
    *removed = 0;
    uint64_t now = sprig__kv_now(kv);
    int rc;
    while ((rc = sweep_decide(kv, now, p)) == 0 && p->n) {
        sprig__cmd c = {.kind = SPRIG__CMD_SWEEP, .now_ms = now};
        c.items = p->items;
        c.n_items = p->n;
        c.lazy = true; /* a lost sweep only sweeps again */
        rc = sprig__ldb_run(kv->ldb, &c);
        if (rc) {
            break;
        }
        *removed += c.out.removed;
        atomic_fetch_add(&kv->sweeps, 1);
        atomic_fetch_add(&kv->swept, c.out.removed);
        if (p->n < SWEEP_BATCH) {
            break;
        }
    }
    *next_due = rc ? NEVER : p->next_due;
    sprig__free(p);
    return rc;
}

/* ---- the housekeeper thread ------------------------------------------- */

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
flush(sprig__kv *kv)
{
    sprig__writer *w = &kv->ldb->writer;
    unsigned long n = atomic_exchange(&w->unsynced, 0);
    if (n == 0) {
        return; /* a durable commit synced them already */
    }
    int mrc = sprig__ckpt_flush(kv->ldb->env); /* the log, or LMDB */
    if (mrc) { /* try again at the next deadline or at close */
        atomic_fetch_add(&w->unsynced, n);
        atomic_fetch_add(&kv->flush_errors, 1);
        return;
    }
    atomic_fetch_add(&kv->flushes, 1);
}

/* Called with the lock held: should the thread flush now? */
static bool
flush_due(sprig__kv *kv)
{
    return atomic_load(&kv->flush_now) ||
           (kv->flush_deadline && mono_ms() >= kv->flush_deadline);
}

static void
do_flush(sprig__kv *kv)
{
    atomic_store(&kv->flush_now, false);
    atomic_store(&kv->flush_pending, false);
    kv->flush_deadline = 0;
    pthread_mutex_unlock(&kv->lock);
    flush(kv);
    pthread_mutex_lock(&kv->lock);
}

static void
do_sweep(sprig__kv *kv)
{
    uint64_t removed, next;
    kv->noted_min = NEVER;
    pthread_mutex_unlock(&kv->lock);
    int rc = sweep_all(kv, &removed, &next);
    pthread_mutex_lock(&kv->lock);
    /* the thread starts before the open replays the database's log
     * (db.c), whose commits run first: due now, in a short real nap (the
     * storage's clock may be a test's, standing still) */
    kv->retry_soon = rc == SPRIG_EBUSY;
    if (rc == SPRIG_EBUSY) {
        next = sprig__kv_now(kv);
    } else if (rc) { /* e.g. the disk is full: retry after a nap */
        next = sprig__kv_now(kv) + MAX_NAP_MS;
    }
    kv->next_due = next < kv->noted_min ? next : kv->noted_min;
}

/* Called with the lock held: sleep until something may need doing. */
static void
nap(sprig__kv *kv, uint64_t now)
{
    uint64_t wait = NEVER;
    if (kv->retry_soon) {
        wait = RETRY_NAP_MS;
    } else if (kv->next_due != NEVER) {
        wait = kv->next_due - now;
        wait = wait < MAX_NAP_MS ? wait : MAX_NAP_MS;
    }
    if (kv->flush_deadline) {
        uint64_t m = mono_ms();
        uint64_t w = kv->flush_deadline > m ? kv->flush_deadline - m : 0;
        wait = w < wait ? w : wait;
    }
    if (wait == NEVER) {
        pthread_cond_wait(&kv->cond, &kv->lock);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(wait / 1000);
    ts.tv_nsec += (long)(wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&kv->cond, &kv->lock, &ts);
}

static void *
housekeeper(void *arg)
{
    sprig__kv *kv = arg;
    pthread_mutex_lock(&kv->lock);
    while (!kv->stop) {
        if (flush_due(kv)) {
            do_flush(kv);
            continue;
        }
        uint64_t now = sprig__kv_now(kv);
        if (kv->next_due <= now && !kv->retry_soon) {
            do_sweep(kv);
            continue;
        }
        if (kv->retry_soon) { /* after one nap */
            nap(kv, now);
            kv->retry_soon = false;
            continue;
        }
        nap(kv, now);
    }
    pthread_mutex_unlock(&kv->lock);
    return NULL;
}

/* Called with the lock held.  A failure to start leaves expiry correct
 * (checked on read) but unswept, and is retried at the next note. */
static void
ensure_thread(sprig__kv *kv)
{
    if (kv->running || kv->stop) {
        return;
    }
    kv->running = pthread_create(&kv->thread, NULL, housekeeper, kv) == 0;
}

int
sprig__kv_housekeeper_init(sprig__kv *kv)
{
    pthread_condattr_t ca;
    kv->next_due = NEVER;
    kv->noted_min = NEVER;
    if (pthread_mutex_init(&kv->lock, NULL)) {
        return sprig__err(SPRIG_ENOMEM, "cannot create a mutex");
    }
    int err = pthread_condattr_init(&ca);
    err = err ? err : pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    err = err ? err : pthread_cond_init(&kv->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (err) {
        pthread_mutex_destroy(&kv->lock);
        return sprig__err(SPRIG_ENOMEM, "cannot create a condition");
    }
    return SPRIG_OK;
}

void
sprig__kv_housekeeper_fini(sprig__kv *kv)
{
    pthread_mutex_lock(&kv->lock);
    kv->stop = true;
    bool running = kv->running;
    pthread_cond_signal(&kv->cond);
    pthread_mutex_unlock(&kv->lock);
    if (running) {
        pthread_join(kv->thread, NULL);
    }
    pthread_cond_destroy(&kv->cond);
    pthread_mutex_destroy(&kv->lock);
}

void
sprig__kv_expiry_note(sprig__kv *kv, uint64_t at)
{
    pthread_mutex_lock(&kv->lock);
    if (at < kv->noted_min) {
        kv->noted_min = at;
    }
    if (at < kv->next_due) {
        kv->next_due = at;
        pthread_cond_signal(&kv->cond);
    }
    ensure_thread(kv);
    pthread_mutex_unlock(&kv->lock);
}

void
sprig__kv_expiry_scan(sprig__kv *kv)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    if (sprig__env_read_begin(kv->ldb->env, &txn)) {
        return;
    }
    uint64_t first = NEVER;
    if (mdb_cursor_open(txn, kv->exp, &cur) == 0) {
        if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size > 8) {
            first = sprig__get_u64be(k.mv_data);
        }
        mdb_cursor_close(cur);
    }
    sprig__env_read_end(kv->ldb->env, txn);
    if (first != NEVER) {
        sprig__kv_expiry_note(kv, first);
    }
}

void
sprig__kv_lazy_note(sprig__kv *kv)
{
    if (!kv->lazy_changes && !kv->lazy_ms) {
        return; /* flushed only at close and by durable writes */
    }
    unsigned long waiting = atomic_load(&kv->ldb->writer.unsynced);
    bool over = kv->lazy_changes && waiting >= kv->lazy_changes;
    if (over ? atomic_load(&kv->flush_now) : atomic_load(&kv->flush_pending)) {
        return; /* already asked for */
    }
    pthread_mutex_lock(&kv->lock);
    if (!atomic_load(&kv->flush_pending)) {
        atomic_store(&kv->flush_pending, true);
        kv->flush_deadline = kv->lazy_ms ? mono_ms() + kv->lazy_ms : 0;
    }
    if (over) {
        atomic_store(&kv->flush_now, true);
    }
    ensure_thread(kv);
    pthread_cond_signal(&kv->cond);
    pthread_mutex_unlock(&kv->lock);
}

/* ---- test seams ------------------------------------------------------- */

int
sprig__kv_sweep_now(sprig_db *db, uint64_t *removed)
{
    sprig__kv *kv;
    uint64_t next, n = 0;
    int rc = sprig__kv_of(db, &kv);
    rc = rc ? rc : sweep_all(kv, &n, &next);
    if (rc == 0) {
        pthread_mutex_lock(&kv->lock);
        kv->next_due = next < kv->next_due ? next : kv->next_due;
        pthread_mutex_unlock(&kv->lock);
    }
    if (removed) {
        *removed = n;
    }
    return rc;
}

void
sprig__kv_wake(sprig_db *db)
{
    sprig__kv *kv = sprig__db_ldb(db)->kv;
    pthread_mutex_lock(&kv->lock);
    pthread_cond_signal(&kv->cond);
    pthread_mutex_unlock(&kv->lock);
}

void
sprig__kv_stats_get(sprig_db *db, sprig__kv_stats *out)
{
    sprig__kv *kv = sprig__db_ldb(db)->kv;
    memset(out, 0, sizeof *out);
    out->sweeps = atomic_load(&kv->sweeps);
    out->swept = atomic_load(&kv->swept);
    out->flushes = atomic_load(&kv->flushes);
    out->flush_errors = atomic_load(&kv->flush_errors);
    out->unsynced = atomic_load(&kv->ldb->writer.unsynced);
    pthread_mutex_lock(&kv->lock);
    out->next_due = kv->next_due;
    out->housekeeper = kv->running;
    pthread_mutex_unlock(&kv->lock);
}

/* Does the index hold (at, key)? */
static int
index_has(MDB_txn *txn, sprig__kv *kv, const MDB_val *key, uint64_t at)
{
    uint8_t buf[SPRIG__KV_EXP_MAX];
    MDB_val k, v;
    exp_key(buf, key, at, &k);
    int mrc = mdb_get(txn, kv->exp, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        return sprig__err(SPRIG_ECORRUPT, "a record's expiry is not indexed");
    }
    return sprig__mdb_err(mrc, "reading the index");
}

/* Check the kv.h invariant: one index entry per record with an expiry. */
static int
verify_txn(MDB_txn *txn, sprig__kv *kv)
{
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat es;
    uint64_t with_exp = 0;
    int mrc = mdb_cursor_open(txn, kv->data, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    int rc = SPRIG_OK;
    sprig_buf scratch = {0};
    mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && mrc == 0) {
        sprig__kv_rec r;
        rc = sprig__kv_rec_parse(&v, &r);
        /* the value too: a CRC or an authentication tag that fails */
        rc = rc ? rc : sprig__kv_rec_decode(kv, &k, &r, &scratch);
        if (rc == 0 && r.expire_at) {
            with_exp++;
            rc = index_has(txn, kv, &k, r.expire_at);
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    sprig_buf_clear(&scratch);
    rc = rc ? rc : sprig__mdb_err(mdb_stat(txn, kv->exp, &es), "verify");
    if (rc == 0 && es.ms_entries != with_exp) {
        rc = sprig__err(SPRIG_ECORRUPT,
                        "the expiry index has %zu entries for %llu records "
                        "with an expiry",
                        (size_t)es.ms_entries, (unsigned long long)with_exp);
    }
    return rc;
}

int
sprig__kv_verify(sprig_db *db, uint64_t *records, uint64_t *indexed)
{
    sprig__kv *kv = NULL;
    MDB_txn *txn;
    MDB_stat ds, es;
    int rc = sprig__kv_of(db, &kv);
    if (rc || (rc = sprig__env_read_begin(kv->ldb->env, &txn))) {
        return rc;
    }
    rc = verify_txn(txn, kv);
    if (rc == 0) {
        mdb_stat(txn, kv->data, &ds);
        mdb_stat(txn, kv->exp, &es);
        *records = ds.ms_entries;
        *indexed = es.ms_entries;
    }
    sprig__env_read_end(kv->ldb->env, txn);
    return rc;
}
