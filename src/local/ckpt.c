/*
 * ckpt.c -- the durability scheme of a database environment: LMDB commits
 * without syncing, the command log (wal.c) is the durable point, and a
 * checkpointer makes LMDB durable now and then so the log can be dropped.
 *
 * Design notes (docs/architecture.md, "Durability", says why it is safe).
 *
 *   commit      (writer)  put the batch's last LSN in `meta` in the batch's
 *               own write transaction, append the batch to the log, sync it
 *               (durable batches, full mode), mdb_txn_commit (MDB_NOSYNC),
 *               answer.  All under `commit_lock`.
 *   modes       `full`: the commit syncs the log; `normal`: the
 *               checkpointer syncs it every NORMAL_SYNC_MS; `none`: nobody
 *               syncs it but a segment rotation, an explicit flush and
 *               close -- it is written (a process crash loses nothing) and
 *               the checkpoints (every interval, or CKPT_COMMITS commits)
 *               are its durable points: a power loss restores the last one
 *               and replays whatever valid prefix of the log reached the
 *               disk, so a suffix of the writes is lost, never half of one.
 *   checkpoint  (checkpointer thread, at open and at close) under
 *               `commit_lock`: begin a read transaction -- the new pin --
 *               on the newest snapshot T and copy T's LMDB meta page (slot
 *               T & 1 of data.mdb).  Then, unlocked: mdb_env_sync(force);
 *               write the page, T and its LSN into a slot of `wal/meta` and
 *               fdatasync it; release the previous pin; drop log segments
 *               at or below the LSN.  While a pin is held LMDB never reuses
 *               a page of its snapshot, so the last saved meta page always
 *               describes a tree that is wholly on disk.
 *   open        an unclean shutdown (no `wal/clean`) restores the saved
 *               meta page into both meta slots of data.mdb before LMDB
 *               opens it, then replays the log after the LSN that snapshot
 *               holds, one LMDB transaction per record.
 *   close       a last checkpoint, then `wal/clean`.  Opening removes the
 *               marker (durably) before anything else is written.
 *
 * The meta page format is LMDB's (0.9, on-disk version 1): a 16-byte page
 * header, then MDB_meta, whose magic sits at byte 16 and txnid at byte 144;
 * both are checked against the live snapshot at every checkpoint, so a
 * different layout is an error (SPRIG_ECORRUPT), never a silent loss.
 */
#include "core/cmd.h"
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LSN_KEY "wal.lsn"
#define META_MAGIC 0xBEEFC0DEu
#define META_TXNID_OFF 144
#define SLOT_HDR 32
#define NORMAL_SYNC_MS 10
#define CKPT_COMMITS 2048

struct sprig__ckpt {
    sprig__env *env;
    sprig__wal *wal;
    MDB_dbi meta;
    bool full;  /* sync each durable batch */
    bool timed; /* `normal`: a timer syncs the log (`none`: nobody) */
    pthread_mutex_t commit_lock;
    MDB_txn *pin;       /* the snapshot of the last checkpoint */
    uint64_t pin_txnid; /* its LMDB transaction id */
    uint64_t ckpt_lsn;  /* the LSN it covers */
    uint64_t open_lsn;  /* the LSN the newest saved checkpoint held at open
                           (0: none saved) */
    uint64_t seq;       /* checkpoints written (picks the slot) */
    int meta_fd;        /* wal/meta */
    unsigned psize;
    uint8_t *page;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t run_lock; /* one checkpoint at a time */
    unsigned interval_ms;
    atomic_ulong checkpoints;
    /* commits since the last checkpoint: past CKPT_COMMITS the checkpointer
     * is woken early, so the pinned snapshot never holds back the pages of
     * more than that many commits (LMDB's free list grows, and every
     * allocation scans it, while a reader pins an old snapshot) */
    atomic_ulong since;
    atomic_bool recovered; /* replay done: logged commits may run */
    bool retried;          /* the last commit was a retry after EFULL */
    sprig_buf enc;         /* the writer's encoded commands */
    sprig_buf seal;        /* one command sealed (an encrypted database) */
    sprig_bytes *recs;
    size_t cap_recs;
};

/* ---- files ---------------------------------------------------------------
 */

static int
io_err(const char *what, const char *path, int err)
{
    int rc = err == ENOSPC || err == EDQUOT ? SPRIG_EFULL : SPRIG_EIO;
    return sprig__err(rc, "%s '%s': %s", what, path, strerror(err));
}

static void
path_in(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void
put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static uint64_t
get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* A saved slot: [magic 8]["txnid" 8][lsn 8][psize 4][crc 4][page]. */
static const char slot_magic[8] = {'S', 'P', 'R', 'I', 'G', 'C', 'K', '1'};

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* Read the newest valid slot of `wal/meta` into *page (allocated).
 * *damaged (when given): a slot holds bytes but is not valid (a torn or
 * flipped copy: a newer checkpoint than *txnid may have been lost). */
static int
read_saved(int fd, uint8_t **page, unsigned *psize, uint64_t *txnid,
           int *slot_k, bool *damaged)
{
    *page = NULL;
    *txnid = 0;
    for (int k = 0; k < 2; k++) {
        uint8_t h[SLOT_HDR];
        struct stat sb;
        if (fstat(fd, &sb) || pread(fd, h, SLOT_HDR, 0) != SLOT_HDR) {
            break;
        }
        unsigned ps = (unsigned)get_le(h + 24, 4);
        uint64_t off = (uint64_t)k * (SLOT_HDR + ps);
        if (memcmp(h, slot_magic, 8) || ps < 512 || ps > 65536 ||
            off + SLOT_HDR + ps > (uint64_t)sb.st_size) {
            if (damaged && !all_zero(h, SLOT_HDR)) {
                *damaged = true;
            }
            continue;
        }
        uint8_t *buf = sprig__malloc(SLOT_HDR + ps);
        if (!buf) { /* the caller frees *page: not twice (test_oom) */
            sprig__free(*page);
            *page = NULL;
            return sprig__err(SPRIG_ENOMEM, "out of memory (restore)");
        }
        ssize_t got = pread(fd, buf, SLOT_HDR + ps, (off_t)off);
        uint32_t crc = (uint32_t)get_le(buf + 28, 4);
        put_le(buf + 28, 0, 4);
        bool ok = got == (ssize_t)(SLOT_HDR + ps) &&
                  memcmp(buf, slot_magic, 8) == 0 &&
                  get_le(buf + 24, 4) == ps &&
                  sprig__crc32c(buf, SLOT_HDR + ps) == crc;
        uint64_t t = ok ? get_le(buf + 8, 8) : 0;
        if (!ok && damaged && !all_zero(buf, SLOT_HDR + ps)) {
            *damaged = true;
        }
        if (ok && (!*page || t > *txnid)) {
            sprig__free(*page);
            *page = buf;
            *txnid = t;
            *psize = ps;
            *slot_k = k;
        } else {
            sprig__free(buf);
        }
    }
    return SPRIG_OK;
}

/* Write the saved meta page into both meta slots of data.mdb, synced. */
static int
restore_meta(const char *dir, const uint8_t *slot, unsigned psize)
{
    char p[4200];
    path_in(p, sizeof p, dir, "data.mdb");
    int fd = open(p, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return sprig__err(SPRIG_ECORRUPT,
                          "'%s' is missing but its checkpoint is not", p);
    }
    uint8_t *page = sprig__memdup(slot + SLOT_HDR, psize);
    int r = page ? 0 : ENOMEM;
    for (uint64_t k = 0; r == 0 && k < 2; k++) {
        memcpy(page, &k, sizeof k); /* the page header's page number */
        ssize_t w = pwrite(fd, page, psize, (off_t)(k * psize));
        r = w == (ssize_t)psize ? 0 : w < 0 ? errno : EIO;
    }
    r = r ? r : fdatasync(fd) ? errno : 0;
    close(fd);
    sprig__free(page);
    return r ? io_err("cannot restore the checkpoint of", p, r) : 0;
}

/* The last checkpoint against data.mdb's meta pages before LMDB opens
 * `dir` (env.c, sprig__env_meta_check): after a clean close it describes
 * the newest snapshot exactly, so a meta page that differs (a lowered
 * transaction id makes LMDB open the previous snapshot) is put back, or,
 * read-only, refused.  A damaged slot may have hidden a newer checkpoint:
 * then a newer file is believed. */
static int
check_clean(const char *dir, bool read_only)
{
    char p[4200];
    path_in(p, sizeof p, dir, "wal/meta");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return SPRIG_OK; /* made before the log existed, or compacted */
    }
    uint8_t *slot;
    unsigned psize = 0;
    uint64_t txnid;
    int k;
    bool damaged = false;
    int rc = read_saved(fd, &slot, &psize, &txnid, &k, &damaged);
    close(fd);
    if (rc == 0 && slot) {
        rc = sprig__env_meta_check(
            dir, slot + SLOT_HDR, psize,
            damaged ? SPRIG__META_NEWER : SPRIG__META_NEXT, read_only);
    }
    sprig__free(slot);
    return rc;
}

/* Before LMDB opens `dir`: was the last shutdown clean?  If so, check the
 * meta page LMDB will open against the last checkpoint; if not, put back
 * the last checkpoint's meta page.  Removes the clean marker durably. */
static int
prepare(const char *dir)
{
    char p[4200];
    path_in(p, sizeof p, dir, "wal");
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        return io_err("cannot create", p, errno);
    }
    path_in(p, sizeof p, dir, "wal/clean");
    if (access(p, F_OK) == 0) {
        int rc = check_clean(dir, false);
        if (rc) {
            return rc; /* the marker stays: the next open checks again */
        }
        if (unlink(p) != 0 && errno != ENOENT) {
            return io_err("cannot remove", p, errno);
        }
        path_in(p, sizeof p, dir, "wal");
        int r = sprig__sync_dir(p);
        return r ? io_err("cannot sync", p, r) : 0;
    }
    path_in(p, sizeof p, dir, "wal/meta");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return SPRIG_OK; /* new, or made before the log existed: clean */
    }
    uint8_t *slot;
    unsigned psize;
    uint64_t txnid;
    int k;
    int rc = read_saved(fd, &slot, &psize, &txnid, &k, NULL);
    close(fd);
    if (rc == 0 && slot) {
        rc = restore_meta(dir, slot, psize);
    }
    sprig__free(slot);
    return rc;
}

/* ---- checkpoints -------------------------------------------------------- */

static int
read_lsn(sprig__ckpt *c, MDB_txn *txn, uint64_t *lsn)
{
    MDB_val k = {sizeof LSN_KEY - 1, (void *)LSN_KEY}, v;
    int mrc = mdb_get(txn, c->meta, &k, &v);
    *lsn = mrc == 0 && v.mv_size == 8 ? sprig__get_u64be(v.mv_data) : 0;
    if (mrc == 0 && v.mv_size != 8) {
        return sprig__err(SPRIG_ECORRUPT, "bad log position in '%s'",
                          c->env->path);
    }
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : sprig__mdb_err(mrc, "lsn");
}

/* The position LMDB holds (`wal.lsn` in `meta`) is never behind the last
 * checkpoint's: the checkpoint copied it from the snapshot it saved, and
 * the file opens at that snapshot or later.  Behind it -- the record's key
 * or value damaged (no CRC covers `meta`) -- the replay would apply logged
 * commands a second time (test_flips seed 12, structure round 122: the
 * key renamed "walqlsn", the database's log doubled). */
static int
lsn_behind(const sprig__ckpt *c, uint64_t applied)
{
    if (applied >= c->open_lsn) {
        return SPRIG_OK;
    }
    return sprig__err(SPRIG_ECORRUPT,
                      "'%s': its applied log position (\"" LSN_KEY "\" in "
                      "table 'meta': LSN %llu) is behind its last "
                      "checkpoint's (LSN %llu): the record is damaged",
                      c->env->path, (unsigned long long)applied,
                      (unsigned long long)c->open_lsn);
}

/* Pin the newest snapshot and copy its meta page (a read hold of
 * map_lock and the commit lock held, taken in that order: the writer's). */
static int
capture(sprig__ckpt *c, MDB_txn **pin, uint64_t *txnid, uint64_t *lsn)
{
    sprig__env *e = c->env;
    int mrc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, pin);
    int rc = mrc ? sprig__mdb_err(mrc, "pinning a checkpoint") : 0;
    if (rc == 0) {
        *txnid = mdb_txn_id(*pin);
        rc = read_lsn(c, *pin, lsn);
    }
    int fd = -1;
    mdb_env_get_fd(e->env, &fd);
    off_t off = (off_t)((*txnid & 1) * c->psize);
    if (rc == 0 && pread(fd, c->page, c->psize, off) != (ssize_t)c->psize) {
        rc =
            sprig__err(SPRIG_EIO, "cannot read the meta page of '%s'", e->path);
    }
    if (rc == 0 && (get_le(c->page + 16, 4) != META_MAGIC ||
                    get_le(c->page + META_TXNID_OFF, 8) != *txnid)) {
        rc = sprig__err(SPRIG_ECORRUPT,
                        "LMDB's meta page of '%s' is not laid out as "
                        "expected (format changed?)",
                        e->path);
    }
    if (rc && *pin) {
        mdb_txn_abort(*pin);
        *pin = NULL;
    }
    return rc;
}

/* Save the captured meta page durably in the next slot of wal/meta. */
static int
save_meta(sprig__ckpt *c, uint64_t txnid, uint64_t lsn)
{
    size_t n = SLOT_HDR + c->psize;
    uint8_t *buf = c->page - SLOT_HDR; /* c->page lives inside a slot */
    memcpy(buf, slot_magic, 8);
    put_le(buf + 8, txnid, 8);
    put_le(buf + 16, lsn, 8);
    put_le(buf + 24, c->psize, 4);
    put_le(buf + 28, 0, 4);
    put_le(buf + 28, sprig__crc32c(buf, n), 4);
    off_t off = (off_t)((c->seq & 1) * n);
    ssize_t w = pwrite(c->meta_fd, buf, n, off);
    int r = w == (ssize_t)n ? 0 : w < 0 ? errno : EIO;
    r = r ? r : fdatasync(c->meta_fd) ? errno : 0;
    if (r) {
        return io_err("cannot save the checkpoint of", c->env->path, r);
    }
    c->seq++;
    return SPRIG_OK;
}

/* One checkpoint (run_lock held; when `committing`, the writer's read
 * hold of map_lock and commit_lock too).  Lock order: map_lock before
 * commit_lock everywhere -- the writer's commit_batch holds map_lock when
 * sprig__ckpt_commit takes commit_lock; taking them the other way round
 * here was a lock-order inversion (ThreadSanitizer, make tsan) that only
 * glibc's reader-preferring rwlock kept from deadlocking against a
 * waiting sprig__env_grow. */
static int
checkpoint_locked(sprig__ckpt *c, bool committing)
{
    MDB_txn *pin = NULL;
    uint64_t txnid = 0, lsn = 0;
    if (!committing) {
        pthread_rwlock_rdlock(&c->env->map_lock);
        pthread_mutex_lock(&c->commit_lock);
    }
    int rc = capture(c, &pin, &txnid, &lsn);
    if (!committing) {
        pthread_mutex_unlock(&c->commit_lock);
        pthread_rwlock_unlock(&c->env->map_lock);
    }
    if (rc || (c->pin && txnid == c->pin_txnid)) {
        if (pin) {
            mdb_txn_abort(pin); /* nothing new since the last one */
        }
        return rc;
    }
    int mrc = mdb_env_sync(c->env->env, 1);
    rc = mrc ? sprig__mdb_err(mrc, "checkpoint sync") : 0;
    rc = rc ? rc : save_meta(c, txnid, lsn);
    if (rc) {
        mdb_txn_abort(pin);
        return rc;
    }
    if (c->pin) {
        mdb_txn_abort(c->pin);
    }
    c->pin = pin;
    c->pin_txnid = txnid;
    c->ckpt_lsn = lsn;
    sprig__wal_drop(c->wal, lsn);
    atomic_fetch_add(&c->checkpoints, 1);
    return SPRIG_OK;
}

static int
checkpoint(sprig__ckpt *c)
{
    pthread_mutex_lock(&c->run_lock);
    int rc = checkpoint_locked(c, false);
    pthread_mutex_unlock(&c->run_lock);
    return rc;
}

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The checkpointer: every interval a checkpoint; in normal mode a log sync
 * every NORMAL_SYNC_MS (full and none: none). */
static void *
ckpt_main(void *arg)
{
    sprig__ckpt *c = arg;
    uint64_t next = mono_ms() + c->interval_ms;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        uint64_t now = mono_ms();
        uint64_t wait =
            !c->timed ? (next > now ? next - now : 0) : NORMAL_SYNC_MS;
        if (atomic_load(&c->since) >= CKPT_COMMITS) {
            wait = 0;
        }
        uint64_t end = now + wait;
        struct timespec ts = {(time_t)(end / 1000),
                              (long)(end % 1000) * 1000000};
        if (wait) {
            pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        }
        if (c->stop) {
            break;
        }
        pthread_mutex_unlock(&c->lock);
        if (c->timed) {
            sprig__wal_sync(c->wal); /* an error is seen by the next one */
        }
        if (mono_ms() >= next || atomic_load(&c->since) >= CKPT_COMMITS) {
            atomic_store(&c->since, 0);
            checkpoint(c); /* an error: retried at the next interval */
            next = mono_ms() + c->interval_ms;
        }
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- open, replay, close ------------------------------------------------ */

static void
ckpt_free(sprig__ckpt *c)
{
    if (!c) {
        return;
    }
    if (c->pin) {
        mdb_txn_abort(c->pin);
    }
    sprig__wal_close(c->wal);
    if (c->meta_fd >= 0) {
        close(c->meta_fd);
    }
    sprig__free(c->page ? c->page - SLOT_HDR : NULL);
    sprig_buf_clear(&c->enc);
    sprig_buf_clear(&c->seal);
    sprig__free(c->recs);
    pthread_mutex_destroy(&c->commit_lock);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->run_lock);
    pthread_cond_destroy(&c->cond);
    sprig__free(c);
}

/* Pin the snapshot LMDB opened at until the first checkpoint: it is the
 * one saved (or restored), and nothing until then -- table creation,
 * replay -- may reuse its pages. */
static int
pin_now(sprig__ckpt *c)
{
    sprig__env *e = c->env;
    pthread_rwlock_rdlock(&e->map_lock);
    int mrc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &c->pin);
    pthread_rwlock_unlock(&e->map_lock);
    if (mrc) {
        c->pin = NULL;
        return sprig__mdb_err(mrc, "pinning the opened snapshot");
    }
    c->pin_txnid = UINT64_MAX; /* not a checkpoint: the first must run */
    return SPRIG_OK;
}

static int
ckpt_new(sprig__env *e, const sprig_storage_options *o, sprig__ckpt **out)
{
    sprig__ckpt *c = sprig__calloc(1, sizeof *c);
    if (!c) {
        return sprig__err(SPRIG_ENOMEM, "out of memory (checkpoints)");
    }
    c->env = e;
    c->meta_fd = -1;
    c->full = o->durability == SPRIG_DURABILITY_FULL;
    c->timed = o->durability == SPRIG_DURABILITY_NORMAL;
    c->interval_ms = 1000;
    pthread_mutex_init(&c->commit_lock, NULL);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->run_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    MDB_stat st;
    mdb_env_stat(e->env, &st);
    c->psize = st.ms_psize;
    uint8_t *slot = sprig__malloc(SLOT_HDR + c->psize);
    c->page = slot ? slot + SLOT_HDR : NULL;
    char p[4200];
    path_in(p, sizeof p, e->path, "wal/meta");
    c->meta_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = !slot ? sprig__err(SPRIG_ENOMEM, "out of memory (checkpoints)")
             : c->meta_fd < 0 ? io_err("cannot open", p, errno)
                              : 0;
    /* both slots take their blocks now: a checkpoint on a full disk
     * must not need new ones */
    struct stat sb;
    off_t want = (off_t)(2 * (SLOT_HDR + c->psize));
    if (rc == 0 && fstat(c->meta_fd, &sb) == 0 && sb.st_size < want) {
        static const uint8_t zeros[4096];
        int r = 0;
        for (off_t at = sb.st_size; r == 0 && at < want;) {
            size_t k = want - at < (off_t)sizeof zeros ? (size_t)(want - at)
                                                       : sizeof zeros;
            ssize_t w = pwrite(c->meta_fd, zeros, k, at);
            r = w > 0 ? 0 : w < 0 ? errno : EIO;
            at += w > 0 ? w : 0;
        }
        r = r ? r : fdatasync(c->meta_fd) ? errno : 0;
        rc = r ? io_err("cannot prepare", p, r) : 0;
    }
    /* write first to the slot not holding the newest checkpoint */
    uint8_t *old = NULL;
    unsigned ops;
    uint64_t otx;
    int k = 1;
    rc = rc ? rc : read_saved(c->meta_fd, &old, &ops, &otx, &k, NULL);
    c->seq = old ? (uint64_t)k + 1 : 0;
    c->open_lsn = old ? get_le(old + 16, 8) : 0;
    sprig__free(old);
    const char *names[] = {"meta"};
    rc = rc ? rc : pin_now(c);
    rc = rc ? rc : sprig__env_open_dbis(e, names, 1, &c->meta);
    if (rc) {
        ckpt_free(c);
        return rc;
    }
    *out = c;
    return SPRIG_OK;
}

/* Every storage on disk is logged, `none` too (its log is only never
 * synced on the commit path); a memory-only one has no files. */
static bool
logged(const sprig_storage_options *o)
{
    return !o->memory_only;
}

/* Read-only: LMDB as it is, no log.  Only a database closed cleanly (its
 * log's `clean` marker there) holds everything in LMDB: one that was not
 * needs its log replayed, which writes. */
static int
open_read_only(const char *dir, const sprig_storage_options *o, unsigned maxdbs,
               sprig__env **out)
{
    char p[4200];
    struct stat sb;
    path_in(p, sizeof p, dir, "wal");
    bool logged_before = stat(p, &sb) == 0;
    path_in(p, sizeof p, dir, "wal/clean");
    if (logged_before && stat(p, &sb) != 0) {
        return sprig__err(SPRIG_EPERM,
                          "'%s' was not closed cleanly: its log must be "
                          "replayed, which a read-only open cannot do; open "
                          "it writable once",
                          dir);
    }
    int rc = logged_before ? check_clean(dir, true) : 0;
    return rc ? rc : sprig__env_open(dir, o, maxdbs, out);
}

int
sprig__ckpt_env_open(const char *dir, const sprig_storage_options *o,
                     unsigned maxdbs, sprig__env **out)
{
    if (!logged(o)) {
        return sprig__env_open(dir, o, maxdbs, out);
    }
    if (o->read_only) {
        return open_read_only(dir, o, maxdbs, out);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return io_err("cannot create directory", dir, errno);
    }
    int rc = prepare(dir);
    if (rc) {
        return rc;
    }
    sprig_storage_options lo = *o;
    lo.durability = SPRIG_DURABILITY_NONE; /* LMDB: MDB_NOSYNC */
    rc = sprig__env_open(dir, &lo, maxdbs, out);
    if (rc == 0) {
        (*out)->seal = false; /* the checkpoint is its copy (prepare) */
    }
    rc = rc ? rc : ckpt_new(*out, o, &(*out)->ckpt);
    uint64_t applied = 0;
    if (rc == 0) {
        MDB_txn *txn;
        rc = sprig__env_read_begin(*out, &txn);
        if (rc == 0) {
            rc = read_lsn((*out)->ckpt, txn, &applied);
            sprig__env_read_end(*out, txn);
            rc = rc ? rc : lsn_behind((*out)->ckpt, applied);
        }
    }
    rc = rc ? rc : sprig__wal_open(dir, applied, 0, &(*out)->ckpt->wal);
    if (rc) {
        sprig__env_close(*out);
        *out = NULL;
    }
    return rc;
}

typedef struct replay_ctx {
    sprig__ckpt *c;
    sprig__ckpt_apply_fn fn;
    void *arg;
    uint64_t n;
} replay_ctx;

/* Apply one record in a child of `txn`, then record its LSN. */
static int
apply_record(replay_ctx *x, MDB_txn *txn, uint64_t lsn, const uint8_t *p,
             size_t n)
{
    MDB_txn *child;
    int mrc = mdb_txn_begin(x->c->env->env, txn, 0, &child);
    if (mrc) {
        return sprig__mdb_err(mrc, "replay");
    }
    int rc = x->fn(x->arg, child, p, n);
    if (rc) {
        mdb_txn_abort(child);
        return rc == SPRIG__EMAPFULL
                   ? rc
                   : sprig__err(
                         SPRIG_ECORRUPT,
                         "replaying the command log of '%s': record %llu "
                         "failed (%s)",
                         x->c->env->path, (unsigned long long)lsn,
                         sprig_errmsg());
    }
    if ((mrc = mdb_txn_commit(child)) != 0) {
        return sprig__mdb_err(mrc, "replay");
    }
    uint8_t v[8];
    sprig__put_u64be(v, lsn);
    MDB_val k = {sizeof LSN_KEY - 1, (void *)LSN_KEY}, d = {8, v};
    mrc = mdb_put(txn, x->c->meta, &k, &d, 0);
    x->n++;
    return mrc ? sprig__mdb_err(mrc, "replay") : 0;
}

/* Replay one logged record in its own transaction, growing the map when
 * it fills. */
static int
replay_one(void *arg, uint64_t lsn, const uint8_t *p, size_t n)
{
    replay_ctx *x = arg;
    sprig__env *e = x->c->env;
    for (;;) {
        size_t seen = e->map_size;
        MDB_txn *txn;
        uint64_t before = x->n;
        pthread_rwlock_rdlock(&e->map_lock);
        int mrc = mdb_txn_begin(e->env, NULL, 0, &txn);
        int rc = mrc ? sprig__mdb_err(mrc, "replay") : 0;
        if (rc == 0) {
            rc = apply_record(x, txn, lsn, p, n);
            if (rc) {
                mdb_txn_abort(txn);
            } else if ((mrc = mdb_txn_commit(txn)) != 0) {
                rc = sprig__mdb_err(sprig__env_io_err(e->path, mrc), "replay");
            }
        }
        pthread_rwlock_unlock(&e->map_lock);
        if (rc != SPRIG__EMAPFULL) {
            return rc;
        }
        x->n = before;
        rc = sprig__env_grow(e, seen, false);
        if (rc) {
            return rc;
        }
    }
}

int
sprig__ckpt_recover(sprig__env *e, sprig__ckpt_apply_fn fn, void *arg,
                    uint64_t *replayed)
{
    sprig__ckpt *c = e->ckpt;
    if (replayed) {
        *replayed = 0;
    }
    if (!c) {
        return SPRIG_OK;
    }
    uint64_t applied = 0;
    MDB_txn *txn;
    int rc = sprig__env_read_begin(e, &txn);
    if (rc == 0) {
        rc = read_lsn(c, txn, &applied);
        sprig__env_read_end(e, txn);
    }
    replay_ctx x = {c, fn, arg, 0};
    rc = rc ? rc : sprig__wal_replay(c->wal, applied, replay_one, &x);
    rc = rc ? rc : checkpoint(c);
    if (rc == 0) {
        sprig__wal_prepare(c->wal); /* else the first append tries again */
    }
    atomic_store(&c->recovered, rc == 0);
    if (rc == 0 && pthread_create(&c->thread, NULL, ckpt_main, c) == 0) {
        c->started = true;
    } else if (rc == 0) {
        rc = sprig__err(SPRIG_ENOMEM, "cannot start the checkpointer");
    }
    if (replayed) {
        *replayed = x.n;
    }
    return rc;
}

void
sprig__ckpt_close(sprig__env *e)
{
    sprig__ckpt *c = e->ckpt;
    if (!c) {
        return;
    }
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->stop = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
        /* a last checkpoint and the marker: the next open replays nothing */
        int rc = sprig__wal_sync(c->wal);
        rc = rc ? rc : checkpoint(c);
        char p[4200];
        path_in(p, sizeof p, e->path, "wal/clean");
        int fd = rc ? -1 : open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            close(fd);
            path_in(p, sizeof p, e->path, "wal");
            sprig__sync_dir(p);
        }
    }
    ckpt_free(c);
    e->ckpt = NULL;
}

/* ---- the commit step ---------------------------------------------------- */

/* The log hit a full disk (commit_lock held, the batch not appended): a
 * checkpoint of everything committed makes every logged record obsolete,
 * so the log starts over in the space it already has.  Skipped (EBUSY)
 * when the checkpointer is running one right now. */
static int
room_by_checkpoint(sprig__ckpt *c)
{
    if (pthread_mutex_trylock(&c->run_lock) != 0) {
        return SPRIG_EBUSY;
    }
    int rc = checkpoint_locked(c, true);
    pthread_mutex_unlock(&c->run_lock);
    return rc ? rc : sprig__wal_reset(c->wal);
}

/* After a commit attempt: on a full disk a batch that only removes data
 * may use the disk reserve (try again); once the disk has room again the
 * reserve is made anew. */
static int
reserve_step(sprig__env *e, int rc, bool frees)
{
    if (rc == SPRIG_EFULL && frees && sprig__env_reserve_release(e)) {
        return SPRIG__ERETRY;
    }
    if (rc == 0 && e->reserve == 2) {
        sprig__env_reserve_make(e);
    }
    return rc;
}

int
sprig__ckpt_commit(sprig__env *e, MDB_txn *txn, const sprig_bytes *recs,
                   size_t n, bool durable, bool frees)
{
    sprig__ckpt *c = e->ckpt;
    if (!c) {
        int mrc = mdb_txn_commit(txn);
        int rc =
            mrc ? sprig__mdb_err(sprig__env_io_err(e->path, mrc), "committing")
                : 0;
        if (rc == 0) {
            sprig__env_durable_commit(e); /* `_admin`: its meta page copy */
        }
        return reserve_step(e, rc, frees);
    }
    if (n && !atomic_load(&c->recovered)) {
        mdb_txn_abort(txn); /* a background sweep during the open */
        return sprig__err(SPRIG_EBUSY, "'%s' is still replaying its log",
                          e->path);
    }
    pthread_mutex_lock(&c->commit_lock);
    uint64_t first = sprig__wal_next_lsn(c->wal), last = first + n - 1;
    uint8_t v[8];
    sprig__put_u64be(v, last);
    MDB_val k = {sizeof LSN_KEY - 1, (void *)LSN_KEY}, d = {8, v};
    int mrc = n ? mdb_put(txn, c->meta, &k, &d, 0) : 0;
    int rc = mrc ? sprig__mdb_err(mrc, "recording the log position") : 0;
    rc = rc || !n ? rc : sprig__wal_append(c->wal, recs, n, &last);
    if (rc == SPRIG_EFULL && room_by_checkpoint(c) == 0) {
        rc = sprig__wal_append(c->wal, recs, n, &last);
    }
    bool appended = rc == 0 && n;
    rc = rc || !durable || !c->full ? rc : sprig__wal_sync(c->wal);
    if (rc) {
        mdb_txn_abort(txn);
    } else if ((mrc = mdb_txn_commit(txn)) != 0) {
        rc = sprig__mdb_err(sprig__env_io_err(e->path, mrc), "committing");
    }
    if (rc && appended) {
        sprig__wal_revert(c->wal, first);
    }
    /* LMDB found the disk full: pages freed since the last checkpoint are
     * held by its pin, so move it (and start the log over), then retry */
    int room = rc == SPRIG_EFULL && !c->retried ? room_by_checkpoint(c) : -1;
    if (room == SPRIG_EBUSY && frees) {
        /* the checkpointer is moving the pin right now: that makes the
         * room; a removal waits for it rather than fail */
        pthread_mutex_unlock(&c->commit_lock);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        return SPRIG__ERETRY;
    }
    rc = room == 0 ? SPRIG__ERETRY : rc;
    rc = rc == SPRIG__ERETRY ? rc : reserve_step(e, rc, frees);
    c->retried = rc == SPRIG__ERETRY;
    pthread_mutex_unlock(&c->commit_lock);
    if (rc == 0 && atomic_fetch_add(&c->since, 1) + 1 == CKPT_COMMITS) {
        pthread_mutex_lock(&c->lock);
        pthread_cond_signal(&c->cond); /* an early checkpoint */
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

int
sprig__ckpt_flush(sprig__env *e)
{
    if (!e->ckpt) {
        int mrc = mdb_env_sync(e->env, 1);
        return mrc ? sprig__mdb_err(mrc, "syncing") : 0;
    }
    return sprig__wal_sync(e->ckpt->wal);
}

int
sprig__ckpt_now(sprig__env *e)
{
    if (!e->ckpt) {
        return SPRIG_OK;
    }
    return checkpoint(e->ckpt);
}

bool
sprig__ckpt_never_syncs(const sprig__env *e)
{
    return e->ckpt && !e->ckpt->full && !e->ckpt->timed;
}

void
sprig__ckpt_stats(sprig__env *e, sprig__ckpt_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (e->ckpt) {
        sprig__wal_stats(e->ckpt->wal, &out->log_syncs, &out->log_appends,
                         &out->segments);
        out->checkpoints = atomic_load(&e->ckpt->checkpoints);
        out->ckpt_lsn = e->ckpt->ckpt_lsn;
    }
}

/* In a database with an encrypted scope, replace the record at c->enc[at..]
 * by SPRIG__LOG_SEALED and its sealed bytes (codec.h). */
static int
seal_record(sprig__ckpt *c, size_t at)
{
    sprig__env *e = c->env;
    if (!e->log_codec.vault) {
        return SPRIG_OK;
    }
    sprig_bytes plain = {(uint8_t *)c->enc.data + at, c->enc.len - at}, out;
    sprig__vloc l = {'l', e->log_db ? e->log_db : "", "", {NULL, 0}};
    uint8_t flags;
    int rc =
        sprig__codec_encode(&e->log_codec, &l, plain, &c->seal, &flags, &out);
    if (rc) {
        return rc;
    }
    c->enc.len = at;
    rc = sprig__buf_put_u8(&c->enc, SPRIG__LOG_SEALED);
    rc = rc ? rc : sprig__buf_put_u8(&c->enc, flags);
    return rc ? rc : sprig_buf_append(&c->enc, out.data, out.len);
}

/* A command applied from a Raft entry: SPRIG__LOG_RAFT and the index
 * first (local.h), so replay records it as the first apply did. */
static int
log_raft_index(sprig_buf *b, const sprig__cmd *cmd)
{
    if (!cmd->raft_index) {
        return SPRIG_OK;
    }
    uint8_t h[25] = {cmd->has_rid ? SPRIG__LOG_RAFT_RID : SPRIG__LOG_RAFT};
    sprig__put_u64be(h + 1, cmd->raft_index);
    if (cmd->has_rid) {
        memcpy(h + 9, cmd->rid, 16);
    }
    return sprig_buf_append(b, h, cmd->has_rid ? 25 : 9);
}

/* Encode the commands of the batch's successful requests into c->enc and
 * c->recs; *n of them, *durable unless all are lazy. */
static int
encode_batch(sprig__ckpt *c, sprig__wreq *batch, size_t *n, bool *durable)
{
    size_t k = 0;
    *durable = false;
    c->enc.len = 0;
    for (sprig__wreq *r = batch; r; r = r->next) {
        if (r->rc || !r->cmd) {
            continue;
        }
        if (k == c->cap_recs) {
            size_t cap = c->cap_recs ? c->cap_recs * 2 : 16;
            sprig_bytes *a = sprig__realloc(c->recs, cap * sizeof *a);
            if (!a) {
                return sprig__err(SPRIG_ENOMEM, "out of memory (command log)");
            }
            c->recs = a;
            c->cap_recs = cap;
        }
        size_t at = c->enc.len;
        int rc = log_raft_index(&c->enc, r->cmd);
        rc = rc ? rc : sprig__cmd_encode(r->cmd, &c->enc);
        rc = rc ? rc : seal_record(c, at);
        if (rc) {
            return rc;
        }
        c->recs[k++] =
            (sprig_bytes){(const void *)(uintptr_t)at, c->enc.len - at};
        *durable = *durable || !r->lazy;
    }
    for (size_t i = 0; i < k; i++) { /* offsets become pointers */
        c->recs[i].data =
            (const uint8_t *)c->enc.data + (uintptr_t)c->recs[i].data;
    }
    *n = k;
    return SPRIG_OK;
}

/* Does every request of the batch only remove data? */
static bool
batch_frees(const sprig__wreq *batch)
{
    bool frees = batch != NULL;
    for (const sprig__wreq *r = batch; r; r = r->next) {
        frees = frees && r->frees;
    }
    return frees;
}

int
sprig__ckpt_commit_batch(sprig__env *e, MDB_txn *txn, sprig__wreq *batch)
{
    if (!e->ckpt) {
        return sprig__ckpt_commit(e, txn, NULL, 0, false, batch_frees(batch));
    }
    size_t n = 0;
    bool durable = false;
    int rc = encode_batch(e->ckpt, batch, &n, &durable);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return sprig__ckpt_commit(e, txn, e->ckpt->recs, n, durable,
                              batch_frees(batch));
}
