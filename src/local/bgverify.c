/*
 * bgverify.c -- the tables the open's page verification left out, walked
 * in the background (issue 17, item 3).  An open verifies LMDB's page
 * structure (pagecheck.c) of the table directory, the free list and the
 * named tables while their pages total at most the open's budget
 * (SPRIG__VERIFY_OPEN_BYTES, or SPRIG_VERIFY_OPEN_BYTES from the
 * environment); this file records the tables past it and, once the
 * environment's owner finished opening it, walks them in a thread of the
 * environment's own.  The first damage marks the environment failed:
 * every later read (sprig__env_read_begin) and write batch (writer.c)
 * returns SPRIG_ECORRUPT with the verifier's sentence, naming the file,
 * the table and the page; the integrity check and stderr say so too.
 *
 * Design notes.  One thread per environment with tables left (most have
 * none: no thread), at nice 19.  Each table is walked in a read
 * transaction of its own, begun under the map lock (shared) as any read:
 * the snapshot is pinned for one table's walk only, so LMDB's page reuse
 * waits at most that long (measured in docs/reliability.md), and a table
 * changed since the open is verified as it is now.  Every 256 pages the
 * walk asks whether to stop: the close (`stop`) ends it, and a map growth
 * under way (`growing`) abandons the table, releasing the lock and the
 * snapshot, to walk it again after -- a writer waits at most a slice.
 * Beside writers, two commits may rewrite both meta slots between the
 * snapshot's start and the verifier's read of its meta page: that is
 * SPRIG__EMOVED, a fresh snapshot, not damage.
 * States: RUNNING -> CLEAN | FAILED (damage) | ERROR (could not walk:
 * ENOMEM, EIO) | STOPPED (closed first); set once by the thread, with
 * release order after the message, read with acquire (sprig_storage_
 * verify_wait).  The close sets `stop` and joins the thread before
 * anything of the environment goes.
 */
#include "local.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { BGV_RUNNING, BGV_CLEAN, BGV_FAILED, BGV_ERROR, BGV_STOPPED };

struct sprig__bgv {
    sprig__env *e;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int state;
    int rc;             /* the result's code, once not RUNNING */
    char msg[600];      /* its sentence */
    sprig_bytes *names; /* the tables left out at open (owned copies) */
    size_t n;
    atomic_ullong pages; /* progress: pages walked, tables done */
    atomic_ullong tables;
};

/* ---- the open's budget ------------------------------------------------ */

static uint64_t open_bytes = SPRIG__VERIFY_OPEN_BYTES;
static pthread_once_t open_bytes_once = PTHREAD_ONCE_INIT;

static void
open_bytes_read(void)
{
    const char *v = getenv("SPRIG_VERIFY_OPEN_BYTES");
    char *end;
    if (v && *v) {
        unsigned long long b = strtoull(v, &end, 10);
        if (*end == 0) {
            open_bytes = b ? b : 1; /* 0: no named table at open */
        }
    }
}

/* test seams (set before the opens they shape) */
static _Atomic uint64_t bytes_set = UINT64_MAX;
static atomic_uint slice_delay_ms;
static atomic_ulong restarts; /* table walks a map growth interrupted */

uint64_t
sprig__verify_open_bytes(void)
{
    pthread_once(&open_bytes_once, open_bytes_read);
    uint64_t set = atomic_load(&bytes_set);
    return set != UINT64_MAX ? set : open_bytes;
}

void
sprig__verify_open_bytes_set(uint64_t bytes)
{
    atomic_store(&bytes_set, bytes == 0 ? 1 : bytes);
}

void
sprig__bgverify_slice_delay(unsigned ms)
{
    atomic_store(&slice_delay_ms, ms);
}

unsigned long
sprig__bgverify_restarts(void)
{
    return atomic_load(&restarts);
}

/* ---- the open's walk: the tables it leaves out -------------------------- */

static void
note_skipped(void *arg, sprig_bytes name)
{
    sprig__bgv *b = arg;
    sprig_bytes *p = sprig__realloc(b->names, (b->n + 1) * sizeof *p);
    void *copy = sprig__malloc(name.len ? name.len : 1);
    if (!p || !copy) { /* cannot keep it: the integrity check's alone */
        b->names = p ? p : b->names;
        sprig__free(copy);
        return;
    }
    memcpy(copy, name.data, name.len);
    b->names = p;
    b->names[b->n++] = (sprig_bytes){copy, name.len};
}

static void
bgv_free(sprig__bgv *b)
{
    for (size_t i = 0; b && i < b->n; i++) {
        sprig__free((void *)b->names[i].data);
    }
    if (b) {
        sprig__free(b->names);
    }
    sprig__free(b);
}

int
sprig__env_verify_open(sprig__env *e, MDB_txn *txn)
{
    sprig__bgv *b = sprig__calloc(1, sizeof *b);
    if (!b) {
        return sprig__err(SPRIG_ENOMEM, "out of memory verifying '%s'",
                          e->path);
    }
    b->e = e;
    sprig__verify_opts o = {.max_bytes = sprig__verify_open_bytes(),
                            .skipped = note_skipped,
                            .arg = b};
    int rc = sprig__env_verify_opts(e, txn, &o, NULL);
    if (rc || b->n == 0) {
        bgv_free(b);
        return rc;
    }
    atomic_init(&b->state, BGV_RUNNING);
    e->bgv = b;
    return SPRIG_OK;
}

/* ---- the thread --------------------------------------------------------- */

static bool
should_stop(void *arg)
{
    sprig__bgv *b = arg;
    unsigned delay = atomic_load(&slice_delay_ms);
    if (delay && !atomic_load(&b->stop)) {
        usleep(delay * 1000u); /* test seam: a slow walk */
    }
    return atomic_load(&b->stop) || atomic_load(&b->e->growing) > 0;
}

/* One walk of table o->only in a fresh read snapshot, under the map
 * lock (shared), as any read. */
static int
walk_once(sprig__env *e, const sprig__verify_opts *o, sprig__verify_stats *st)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&e->map_lock);
    int mrc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    int rc = mrc ? sprig__mdb_err(mrc, "verifying in the background")
                 : sprig__env_verify_opts(e, txn, o, st);
    if (mrc == 0) {
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&e->map_lock);
    return rc;
}

static int
moved_err(const sprig__env *e)
{
    return sprig__err(SPRIG_EIO,
                      "'%s': commits kept rewriting the meta pages before "
                      "the background verification could read its "
                      "snapshot's (1,000 tries): not verified",
                      e->path);
}

/* Table `i` in a snapshot of its own, again after each map growth that
 * interrupted it and each start commits raced (SPRIG__EMOVED: the
 * snapshot's meta page rewritten before it was read, not damage).
 * SPRIG__ESTOP: closing. */
static int
walk_table(sprig__bgv *b, size_t i)
{
    sprig__env *e = b->e;
    sprig__verify_opts o = {.only = b->names[i], .stop = should_stop, .arg = b};
    for (unsigned moved = 0;;) {
        while (atomic_load(&e->growing) > 0 && !atomic_load(&b->stop)) {
            usleep(1000);
        }
        if (atomic_load(&b->stop)) {
            return SPRIG__ESTOP;
        }
        sprig__verify_stats st;
        int rc = walk_once(e, &o, &st);
        if (rc == SPRIG__EMOVED && ++moved < 1000) {
            continue;
        }
        if (rc != SPRIG__ESTOP || atomic_load(&b->stop)) {
            atomic_fetch_add(&b->pages, rc ? 0 : st.pages);
            return rc == SPRIG__EMOVED ? moved_err(e) : rc;
        }
        atomic_fetch_add(&restarts, 1);
    }
}

/* The result, published once (the message before the state). */
static void
finish(sprig__bgv *b, int rc)
{
    int state = rc == 0                ? BGV_CLEAN
                : rc == SPRIG__ESTOP   ? BGV_STOPPED
                : rc == SPRIG_ECORRUPT ? BGV_FAILED
                                       : BGV_ERROR;
    b->rc = rc;
    if (state == BGV_FAILED || state == BGV_ERROR) {
        snprintf(b->msg, sizeof b->msg, "%s", sprig_errmsg());
    }
    if (state == BGV_FAILED) {
        atomic_store(&b->e->failed, true); /* after the message */
        fprintf(stderr,
                "sprig: background verification: %s; every read and write "
                "of '%s' now fails\n",
                b->msg, b->e->path);
    } else if (state == BGV_ERROR) {
        fprintf(stderr, "sprig: background verification of '%s' stopped: %s\n",
                b->e->path, b->msg);
    }
    atomic_store(&b->state, state);
}

static void *
bgv_main(void *arg)
{
    sprig__bgv *b = arg;
    /* low priority: the foreground's reads and writes come first */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        rc = walk_table(b, i);
        atomic_fetch_add(&b->tables, rc == 0);
    }
    finish(b, rc);
    return NULL;
}

void
sprig__env_bgverify_start(sprig__env *e)
{
    sprig__bgv *b = e ? e->bgv : NULL;
    if (!b || b->started) {
        return;
    }
    int r = pthread_create(&b->thread, NULL, bgv_main, b);
    b->started = r == 0;
    if (r) { /* not verified: said, not failed */
        b->rc = sprig__err(SPRIG_ENOMEM,
                           "'%s': cannot start the background verification: "
                           "%s",
                           e->path, strerror(r));
        snprintf(b->msg, sizeof b->msg, "%s", sprig_errmsg());
        atomic_store(&b->state, BGV_ERROR);
    }
}

void
sprig__env_bgverify_stop(sprig__env *e)
{
    sprig__bgv *b = e->bgv;
    if (!b) {
        return;
    }
    atomic_store(&b->stop, true);
    if (b->started) {
        pthread_join(b->thread, NULL);
    }
    e->bgv = NULL;
    bgv_free(b);
}

int
sprig__env_failed_err(sprig__env *e)
{
    const sprig__bgv *b = e->bgv;
    return sprig__err(SPRIG_ECORRUPT, "%s", b ? b->msg : "damaged");
}

int
sprig__env_bgverify_result(sprig__env *e, bool *running, bool say)
{
    sprig__bgv *b = e->bgv;
    int state = b ? atomic_load(&b->state) : BGV_CLEAN;
    *running = state == BGV_RUNNING;
    if (state != BGV_FAILED && state != BGV_ERROR) {
        return SPRIG_OK;
    }
    return say ? sprig__err(b->rc, "%s", b->msg) : b->rc;
}

void
sprig__env_bgverify_progress(sprig__env *e, uint64_t *tables, uint64_t *left,
                             uint64_t *pages)
{
    sprig__bgv *b = e->bgv;
    uint64_t done = b ? atomic_load(&b->tables) : 0;
    *tables += done;
    *left += b && atomic_load(&b->state) == BGV_RUNNING ? b->n - done : 0;
    *pages += b ? atomic_load(&b->pages) : 0;
}

/* ---- the storage's wait ---------------------------------------------------
 */

/* One environment's state into the storage's: its first failure (its
 * message set), whether a walk goes on, the progress summed. */
static int
env_fold(sprig__env *e, int rc, bool *running, sprig_verify_progress *p)
{
    bool r;
    int erc = sprig__env_bgverify_result(e, &r, rc == 0);
    *running = *running || r;
    sprig__env_bgverify_progress(e, &p->tables_done, &p->tables_left,
                                 &p->pages);
    return rc ? rc : erc;
}

/* Every open environment of `st` (its registry's and its databases'),
 * under the storage lock: no environment closes meanwhile. */
static int
storage_result(sprig__lstorage *st, bool *running, sprig_verify_progress *p)
{
    int rc = SPRIG_OK;
    *running = false;
    *p = (sprig_verify_progress){0};
    pthread_mutex_lock(&st->lock);
    if (st->admin) {
        rc = env_fold(st->admin, rc, running, p);
    }
    for (size_t i = 0; i < st->n_open; i++) {
        rc = env_fold(st->open[i]->env, rc, running, p);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int64_t
ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 +
           (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int
sprig_storage_verify_wait(sprig_storage *s, int timeout_ms,
                          sprig_verify_progress *progress)
{
    if (!sprig__storage_is_local(s)) {
        return sprig__err(SPRIG_EINVAL, "only a local storage verifies its "
                                        "files (open its directory)");
    }
    sprig__lstorage *st = (sprig__lstorage *)s;
    sprig_verify_progress p;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        bool running;
        int rc = storage_result(st, &running, &p);
        if (progress) {
            *progress = p;
        }
        if (rc || !running) {
            return rc;
        }
        if (timeout_ms >= 0 && ms_since(&t0) >= timeout_ms) {
            return sprig__err(SPRIG_ETIMEDOUT,
                              "the background verification of '%s' goes on "
                              "(%llu tables left)",
                              st->path, (unsigned long long)p.tables_left);
        }
        usleep(2000);
    }
}
