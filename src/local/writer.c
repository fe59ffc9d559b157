/*
 * writer.c -- group commit for one database.
 *
 * Design notes.  Write requests (each carrying one command, cmd_apply.c)
 * queue on the database's writer.  Whoever leads takes every queued
 * request, opens one LMDB write transaction, applies them, commits once --
 * one durable write for the whole batch -- and then answers them all
 * (commit_batch() is that step: the one place a command log hooks in).
 * Requests arriving meanwhile queue for the next batch.
 *
 * Who leads.  A synchronous submitter (sprig__writer_submit) that finds no
 * leader leads the batch itself, so a lone synchronous writer pays no
 * hand-off to another thread.  Asynchronous requests
 * (sprig__writer_submit_async) return at once; the writer thread, started
 * by the first of them, leads whenever requests wait and no one leads, and
 * a leader that leaves requests queued wakes it.  So a server that pipelines
 * thousands of writes gets them into one transaction and one sync.
 *
 * Applying.  A batch of one request runs directly in the parent
 * transaction.  In a larger batch, `direct` requests (key-value commands,
 * sweeps, document transactions) are applied straight into the parent too
 * -- no nested child, no page-list copy, so queued writes share one
 * transaction -- and the others each in a nested child (a failing request
 * discards only its own changes).  If a direct request fails, the batch is
 * aborted and re-run with a child for every request (SPRIG__ESAFE).  Each
 * LMDB child allocates ~3 MiB of page lists (mdb_txn_begin) and frees them
 * at its end: cheap from glibc's heap, but under ASan every one is a fresh
 * mmap and munmap (its large-allocation path), which made test_concurrency
 * 80 times slower there than in a normal build (issue 17 item 7).  When
 * the map fills (SPRIG__EMAPFULL from a request or MDB_MAP_FULL from a
 * commit), the whole batch is aborted, the map doubled with no transaction
 * active, and the batch re-applied: callers never see it.
 *
 * Answers.  Errors are recorded in the leader's thread; each request
 * carries its detail (text and structured detail) back in `err`.  Synchronous
 * requests are marked `finished` under the lock; asynchronous ones get their
 * `done` callback after the lock is released (a callback may submit again).
 *
 * Lazy requests (`lazy`: the key-value store in lazy persistence mode, and
 * its expiry sweeper) need not be on disk when answered.  A batch made only
 * of lazy requests commits with MDB_NOSYNC set around it (lead_batch) and
 * is counted in `unsynced`, which the key-value housekeeper flushes
 * (kv_expiry.c); a batch with any durable request commits as usual, and its
 * sync covers the lazy commits before it.
 */
#include "local.h"

#include <stdio.h>
#include <time.h>

int
sprig__writer_init(sprig__writer *w, sprig__env *env)
{
    memset(w, 0, sizeof *w);
    w->env = env;
    unsigned flags = 0;
    mdb_env_get_flags(env->env, &flags);
    /* with a command log (env->ckpt) LMDB runs MDB_NOSYNC, but the log
     * syncs: lazy commits are counted and flushed as before -- unless it
     * is `none`'s, which no write syncs */
    w->env_nosync = ((flags & MDB_NOSYNC) != 0 && !env->ckpt) ||
                    sprig__ckpt_never_syncs(env);
    if (pthread_mutex_init(&w->lock, NULL)) {
        return sprig__err(SPRIG_ENOMEM, "cannot create a mutex");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&w->cond, NULL) ||
        pthread_cond_init(&w->wake, NULL) ||
        pthread_cond_init(&w->gather, &ca)) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&w->lock);
        return sprig__err(SPRIG_ENOMEM, "cannot create a condition");
    }
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->watch_lock, NULL);
    return SPRIG_OK;
}

void
sprig__writer_destroy(sprig__writer *w)
{
    sprig__writer_stop(w);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->gather);
    pthread_mutex_destroy(&w->watch_lock);
    pthread_mutex_destroy(&w->lock);
}

static void
fail_req(sprig__wreq *r, int rc)
{
    r->rc = rc;
    sprig__err_save(&r->err);
}

/* Set `rc` on every request of the batch that has not failed already. */
static void
fail_rest(sprig__wreq *batch, int rc)
{
    for (sprig__wreq *r = batch; r; r = r->next) {
        if (r->rc == 0) {
            fail_req(r, rc);
        }
    }
}

/* Run one request in a child of `parent`.  Returns SPRIG__EMAPFULL to ask
 * for the batch to be retried, else 0 (the request's own outcome is in
 * r->rc). */
static int
apply_child(sprig__env *e, MDB_txn *parent, sprig__wreq *r)
{
    MDB_txn *child;
    int mrc = mdb_txn_begin(e->env, parent, 0, &child);
    if (mrc) {
        int rc = sprig__mdb_err(mrc, "beginning a nested write");
        return rc == SPRIG__EMAPFULL ? rc : (fail_req(r, rc), 0);
    }
    int rc = r->apply(child, r->arg);
    if (rc) {
        mdb_txn_abort(child);
        return rc == SPRIG__EMAPFULL ? rc : (fail_req(r, rc), 0);
    }
    mrc = mdb_txn_commit(child);
    if (mrc) {
        rc = sprig__mdb_err(mrc, "committing a nested write");
        return rc == SPRIG__EMAPFULL ? rc : (fail_req(r, rc), 0);
    }
    return 0;
}

/* Apply the batch into `parent`.  0, SPRIG__EMAPFULL (retry after growing
 * the map) or SPRIG__ESAFE (re-run with children); a request failing on
 * its own only sets its rc -- except a lone request, whose failure is the
 * batch's (its changes must not be committed). */
static int
apply_all(sprig__env *e, MDB_txn *parent, sprig__wreq *batch, bool safe)
{
    int rc = 0;
    if (!batch->next) {
        rc = batch->apply(parent, batch->arg);
        if (rc && rc != SPRIG__EMAPFULL) {
            fail_req(batch, rc);
        }
        return rc;
    }
    for (sprig__wreq *r = batch; r && rc == 0; r = r->next) {
        rc = !safe && r->direct ? r->apply(parent, r->arg)
                                : apply_child(e, parent, r);
        if (rc && rc != SPRIG__EMAPFULL && !safe && r->direct) {
            rc = SPRIG__ESAFE; /* discard all, re-run with children */
        }
    }
    return rc;
}

/* One attempt at the batch (`safe`: every request in a child when there
 * are several).  Returns SPRIG__EMAPFULL or SPRIG__ESAFE when it must be
 * retried; otherwise each request's rc is set. */
static int
try_batch(sprig__env *e, sprig__wreq *batch, bool safe)
{
    MDB_txn *parent;
    for (sprig__wreq *r = batch; r; r = r->next) {
        r->rc = 0;
    }
    int frc = sprig__env_check(e); /* failed by bgverify.c: nothing more */
    if (frc) {
        fail_rest(batch, frc);
        return 0;
    }
    int mrc = mdb_txn_begin(e->env, NULL, 0, &parent);
    if (mrc) {
        int rc = sprig__mdb_err(mrc, "beginning a write");
        if (rc != SPRIG__EMAPFULL) {
            fail_rest(batch, rc);
        }
        return rc == SPRIG__EMAPFULL ? rc : 0;
    }
    int rc = apply_all(e, parent, batch, safe);
    if (rc) {
        mdb_txn_abort(parent);
        return rc == SPRIG__EMAPFULL || rc == SPRIG__ESAFE ? rc : 0;
    }
    /* the commit step (ckpt.c): log the batch's commands, sync, commit */
    rc = sprig__ckpt_commit_batch(e, parent, batch);
    if (rc) {
        bool again = rc == SPRIG__EMAPFULL || rc == SPRIG__ERETRY;
        if (!again) {
            fail_rest(batch, rc);
        }
        return again ? rc : 0;
    }
    sprig__env_committed(e); /* idle readers pin no old snapshot */
    return 0;
}

/* Commit a batch: apply every request in one write transaction and commit
 * it once (growing the map and retrying as needed); each request's rc is
 * set.  The durability hook point: a command log appends and syncs the
 * batch's commands (req->cmd) in try_batch, before mdb_txn_commit. */
static void
commit_batch(sprig__writer *w, sprig__wreq *batch)
{
    sprig__env *e = w->env;
    bool safe = false, pinned = false;
    for (;;) {
        pthread_rwlock_rdlock(&e->map_lock);
        size_t seen = e->map_size;
        int rc = try_batch(e, batch, safe);
        pthread_rwlock_unlock(&e->map_lock);
        if (rc == SPRIG__ESAFE) { /* a direct request failed: children */
            safe = true;
            continue;
        }
        if (rc == SPRIG__ERETRY) { /* the commit step made room: again */
            continue;
        }
        if (rc != SPRIG__EMAPFULL) {
            return;
        }
        bool frees = true;
        for (sprig__wreq *r = batch; r; r = r->next) {
            frees = frees && r->frees;
        }
        rc = sprig__env_grow(e, seen, frees);
        if (rc == SPRIG_EFULL && !pinned && e->ckpt) {
            /* at the size limit: the checkpoint's pin holds the pages
             * freed since it; a checkpoint now moves it, then once more */
            pinned = true;
            rc = sprig__ckpt_now(e);
            if (rc == 0) {
                continue;
            }
        }
        if (rc) {
            for (sprig__wreq *r = batch; r; r = r->next) {
                fail_req(r, rc);
            }
            return;
        }
    }
}

/* Is every request of the batch lazy? */
static bool
batch_lazy(const sprig__wreq *batch)
{
    for (const sprig__wreq *r = batch; r; r = r->next) {
        if (!r->lazy) {
            return false;
        }
    }
    return true;
}

/* Run a batch as the leader.  A batch made only of lazy requests commits
 * with MDB_NOSYNC set for its duration: only the leader commits, no write
 * transaction is open when the flag changes, and LMDB reads it at commit.
 * Counts `unsynced` for the lazy flusher (kv_expiry.c). */
static void
lead_batch(sprig__writer *w, sprig__wreq *batch, unsigned long n)
{
    bool lazy = batch_lazy(batch);
    bool toggle = lazy && !w->env_nosync && !w->env->ckpt;
    if (toggle) {
        mdb_env_set_flags(w->env->env, MDB_NOSYNC, 1);
    }
    commit_batch(w, batch);
    if (toggle) {
        mdb_env_set_flags(w->env->env, MDB_NOSYNC, 0);
    }
    if (lazy && !w->env_nosync) { /* an env that never syncs: no flush */
        atomic_fetch_add(&w->unsynced, n);
    }
    /* A durable commit syncs the lazy ones before it too, but LMDB skips
     * the sync of a commit that changed nothing, so the count is left for
     * the flusher: at worst one redundant sync. */
}

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Threads of the last batch with no request in the queue (lock held). */
static size_t
missing_threads(const sprig__writer *w)
{
    size_t missing = 0;
    for (size_t i = 0; i < w->n_last_threads; i++) {
        bool back = false;
        for (const sprig__wreq *r = w->head; r && !back; r = r->next) {
            back = pthread_equal(r->thread, w->last_threads[i]);
        }
        missing += !back;
    }
    return missing;
}

/* Wait (lock held) for the last batch's threads to queue again. */
static void
gather(sprig__writer *w)
{
    if (w->env_nosync || w->n_last_threads < 2 || batch_lazy(w->head) ||
        !missing_threads(w)) {
        return; /* nothing to share: no sync, or no one to wait for */
    }
    uint64_t wait = w->last_commit_ns / 2;
    wait = wait < 1000000 ? wait : 1000000;
    uint64_t end = mono_ns() + wait;
    struct timespec ts = {(time_t)(end / 1000000000u),
                          (long)(end % 1000000000u)};
    w->gathering = true;
    while (missing_threads(w) && mono_ns() < end) {
        pthread_cond_timedwait(&w->gather, &w->lock, &ts);
    }
    w->gathering = false;
}

/* Remember who was in the batch (lock held). */
static void
note_threads(sprig__writer *w, const sprig__wreq *batch)
{
    w->n_last_threads = 0;
    for (const sprig__wreq *r = batch; r; r = r->next) {
        bool seen = false;
        for (size_t i = 0; i < w->n_last_threads && !seen; i++) {
            seen = pthread_equal(w->last_threads[i], r->thread);
        }
        if (!seen && w->n_last_threads < SPRIG__GATHER_MAX) {
            w->last_threads[w->n_last_threads++] = r->thread;
        }
    }
}

/* Queue `req` (lock held). */
static void
enqueue(sprig__writer *w, sprig__wreq *req)
{
    req->finished = false;
    req->next = NULL;
    req->rc = 0;
    req->err.msg[0] = 0;
    req->thread = pthread_self();
    if (w->tail) {
        w->tail->next = req;
    } else {
        w->head = req;
    }
    w->tail = req;
    if (w->gathering) {
        pthread_cond_signal(&w->gather);
    }
}

/* Answer the asynchronous requests of a finished batch (no lock held). */
static void
complete_async(sprig__wreq *list)
{
    for (sprig__wreq *r = list, *next; r; r = next) {
        next = r->next;
        if (r->rc) {
            sprig__err_load(r->rc, &r->err);
        }
        r->done(r); /* may free r */
    }
}

/* Lead one batch: every request queued now.  Called and returns with the
 * lock held; releases it while committing and while answering. */
static void
lead(sprig__writer *w)
{
    w->leader_active = true;
    gather(w);
    sprig__wreq *batch = w->head;
    w->head = w->tail = NULL;
    note_threads(w, batch);
    pthread_mutex_unlock(&w->lock);
    unsigned long n = 0;
    for (sprig__wreq *r = batch; r; r = r->next) {
        n++;
    }
    uint64_t t0 = mono_ns();
    lead_batch(w, batch, n);
    uint64_t took = mono_ns() - t0;
    sprig__writer_notify(w); /* changes feeds (changes.c) */
    for (sprig__wreq *r = batch; w->tap && r; r = r->next) {
        if (r->cmd && r->rc == 0) { /* still leading: in commit order */
            w->tap(w->tap_udata, w->tap_name, r->cmd);
        }
    }
    sprig__wreq *async = NULL, **at = &async;
    pthread_mutex_lock(&w->lock);
    w->last_commit_ns = took;
    for (sprig__wreq *r = batch, *next; r; r = next) {
        next = r->next;
        if (r->done) {
            r->next = NULL;
            *at = r;
            at = &r->next;
        } else {
            r->finished = true; /* the owner may return once we unlock */
        }
    }
    w->leader_active = false;
    atomic_fetch_add(&w->batches, 1);
    atomic_fetch_add(&w->requests, n);
    pthread_cond_broadcast(&w->cond);
    if (w->head && w->thread_running) {
        pthread_cond_signal(&w->wake);
    }
    if (async) {
        pthread_mutex_unlock(&w->lock);
        complete_async(async);
        pthread_mutex_lock(&w->lock);
    }
}

/* A read-only environment takes no write. */
static int
refuse_read_only(const sprig__writer *w)
{
    return sprig__err(SPRIG_EPERM, "'%s' is open read-only: writes are refused",
                      w->env->path);
}

int
sprig__writer_submit(sprig__writer *w, sprig__wreq *req)
{
    if (w->env->read_only) {
        req->rc = refuse_read_only(w);
        req->finished = true;
        return req->rc;
    }
    req->done = NULL;
    pthread_mutex_lock(&w->lock);
    enqueue(w, req);
    while (!req->finished) {
        if (w->leader_active) {
            pthread_cond_wait(&w->cond, &w->lock);
        } else {
            lead(w);
        }
    }
    pthread_mutex_unlock(&w->lock);
    if (req->rc) {
        sprig__err_load(req->rc, &req->err);
    }
    return req->rc;
}

void
sprig__writer_submit_many(sprig__writer *w, sprig__wreq **reqs, size_t n)
{
    size_t i = 0;
    if (w->env->read_only) {
        for (; i < n; i++) {
            reqs[i]->rc = refuse_read_only(w);
            sprig__err_save(&reqs[i]->err);
            reqs[i]->finished = true;
        }
        return;
    }
    pthread_mutex_lock(&w->lock);
    for (i = 0; i < n; i++) {
        reqs[i]->done = NULL;
        enqueue(w, reqs[i]);
    }
    for (i = 0; i < n; i++) { /* answered in queue order */
        while (!reqs[i]->finished) {
            if (w->leader_active) {
                pthread_cond_wait(&w->cond, &w->lock);
            } else {
                lead(w);
            }
        }
    }
    pthread_mutex_unlock(&w->lock);
}

/* The writer thread: lead whenever requests wait and no one leads. */
static void *
writer_main(void *arg)
{
    sprig__writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        if (w->head && !w->leader_active) {
            lead(w);
        } else if (w->stop && !w->head) {
            break;
        } else {
            pthread_cond_wait(&w->wake, &w->lock);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int
sprig__writer_submit_async(sprig__writer *w, sprig__wreq *req)
{
    if (w->env->read_only) {
        return refuse_read_only(w);
    }
    pthread_mutex_lock(&w->lock);
    if (!w->thread_running) {
        if (pthread_create(&w->thread, NULL, writer_main, w)) {
            pthread_mutex_unlock(&w->lock);
            return sprig__err(SPRIG_ENOMEM, "cannot start a writer thread");
        }
        w->thread_running = true;
    }
    enqueue(w, req);
    if (!w->leader_active) {
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->lock);
    return SPRIG_OK;
}

void
sprig__writer_stop(sprig__writer *w)
{
    pthread_mutex_lock(&w->lock);
    bool running = w->thread_running;
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (running) {
        pthread_join(w->thread, NULL);
    }
    pthread_mutex_lock(&w->lock);
    w->thread_running = false;
    w->stop = false;
    pthread_mutex_unlock(&w->lock);
}

void
sprig__writer_pause(sprig__writer *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->leader_active) {
        pthread_cond_wait(&w->cond, &w->lock);
    }
    w->leader_active = true; /* no one else leads until resumed */
    pthread_mutex_unlock(&w->lock);
}

void
sprig__writer_resume(sprig__writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->leader_active = false;
    pthread_cond_broadcast(&w->cond); /* a synchronous submitter leads */
    if (w->head && w->thread_running) {
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->lock);
}
