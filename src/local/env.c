/*
 * env.c -- one LMDB environment: opening it with the storage's durability,
 * pooled read transactions, growing the map when it fills, and turning
 * LMDB's errors into Sprig's.
 *
 * Every transaction holds `map_lock` shared; sprig__env_grow() takes it
 * exclusively, which is the only moment LMDB allows mdb_env_set_mapsize().
 * Read transactions are MDB_NOTLS; each thread keeps one per environment,
 * reused while no commit happened and renewed otherwise (the notes above
 * sprig__env_read_begin), with a pool of reset ones for nested reads.
 */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Room for LMDB's lock file with 1024 readers (a header and 64 bytes a
 * reader slot, about 68 KiB), with a margin. */
#define LOCK_BYTES (128 * 1024)

#define DEFAULT_MAP (64ull << 20)

/* Ids of environments, never reused (read slots match on them). */
static atomic_uint_fast64_t next_env_id = 1;

static void slots_env_close(sprig__env *e);

/* Set when an LMDB call on this thread failed in a way that can leave its
 * transaction unusable (LMDB marks it MDB_TXN_ERROR: every later call on it
 * answers MDB_BAD_TXN).  sprig__env_read_end() then resets the read
 * instead of keeping it open for this thread's next read, so one damaged
 * page fails that read, not every later read of the database. */
static _Thread_local bool txn_failed;

int
sprig__mdb_err(int mrc, const char *what)
{
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        txn_failed = true;
    }
    switch (mrc) {
    case 0: return SPRIG_OK;
    case MDB_NOTFOUND:
        return sprig__err(SPRIG_ENOTFOUND, "%s: not found", what);
    case MDB_MAP_FULL:
        sprig__err(SPRIG_EFULL, "%s: the map is full", what);
        return SPRIG__EMAPFULL;
    case ENOSPC:
        return sprig__err(SPRIG_EFULL, "%s: storage is full (%s)", what,
                          mdb_strerror(mrc));
    case EDQUOT:
        return sprig__err(SPRIG_EFULL, "%s: disk quota exceeded", what);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return sprig__err(SPRIG_ECORRUPT, "%s: %s", what, mdb_strerror(mrc));
    case MDB_BAD_VALSIZE:
        return sprig__err(SPRIG_ETOOBIG, "%s: key too long for the engine",
                          what);
    case MDB_TXN_FULL:
        return sprig__err(SPRIG_ETOOBIG, "%s: transaction too large", what);
    case ENOMEM: return sprig__err(SPRIG_ENOMEM, "%s: out of memory", what);
    case MDB_READERS_FULL:
        return sprig__err(SPRIG_EBUSY, "%s: too many concurrent readers", what);
    case EAGAIN:
        return sprig__err(SPRIG_EBUSY, "%s: locked by another process", what);
    default: return sprig__err(SPRIG_EIO, "%s: %s", what, mdb_strerror(mrc));
    }
}

static unsigned
env_flags(const sprig_storage_options *o)
{
    unsigned f = MDB_NOTLS;
    if (o->read_only) {
        f |= MDB_RDONLY | MDB_NOLOCK; /* the storage's shared flock guards */
    } else if (o->memory_only || o->durability == SPRIG_DURABILITY_NONE) {
        f |= MDB_NOSYNC;
    } else if (o->durability == SPRIG_DURABILITY_NORMAL) {
        f |= MDB_NOMETASYNC;
    }
    return f;
}

/* LMDB reports a short write (the disk filled mid-write) as EIO: call it
 * ENOSPC when the file system has (nearly) no room left. */
int
sprig__env_io_err(const char *dir, int mrc)
{
    struct statvfs sv;
    if (mrc == EIO && statvfs(dir, &sv) == 0 &&
        (uint64_t)sv.f_bavail * sv.f_frsize < (1u << 20)) {
        return ENOSPC;
    }
    return mrc;
}

/* Give the lock file its blocks now: LMDB writes it through a shared map,
 * and a page the disk cannot back kills the process with SIGBUS. */
static int
prepare_files(const char *dir, bool *fresh)
{
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    /* fewer than two pages: LMDB never finished writing the meta pages,
     * so the file never held data; start again */
    *fresh = stat(p, &sb) != 0 || sb.st_size < 2 * 4096;
    if (*fresh) {
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return errno;
    }
    int r = posix_fallocate(fd, 0, LOCK_BYTES);
    close(fd);
    return r == EINVAL || r == EOPNOTSUPP ? 0 : r;
}

/* ---- the disk reserve --------------------------------------------------- */

#define RESERVE_BYTES (256u << 10)

void
sprig__env_reserve_make(sprig__env *e)
{
    char p[4200];
    if (e->reserve != 2) {
        return;
    }
    snprintf(p, sizeof p, "%s/reserve", e->path);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return;
    }
    int r = posix_fallocate(fd, 0, RESERVE_BYTES);
    if (r == 0 || r == EINVAL || r == EOPNOTSUPP) {
        e->reserve = r == 0 ? 1 : 0;    /* no fallocate here: no reserve */
    } else if (ftruncate(fd, 0) != 0) { /* a partial one: give it back */
        r = errno;
    }
    close(fd);
}

bool
sprig__env_reserve_release(sprig__env *e)
{
    char p[4200];
    if (e->reserve != 1) {
        return false;
    }
    snprintf(p, sizeof p, "%s/reserve", e->path);
    e->reserve = 2;
    return unlink(p) == 0;
}

static void
remove_files(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
}

/* ---- the meta page LMDB opens -------------------------------------------
 *
 * LMDB keeps two meta pages and opens the one with the higher transaction
 * id.  A flip that lowers the newest one's id, raises the older one's, or
 * changes the roots it names makes LMDB open another snapshot, sound in
 * structure: acknowledged commits would vanish, presented as right.  So a
 * copy of the last meta page is kept outside data.mdb -- a logged
 * database: the checkpoint in wal/meta (ckpt.c), checked after a clean
 * close (after a crash it is put back anyway); `_admin`: `meta.copy`,
 * written after every (synced) commit (a `none` storage's `_admin` runs as
 * in `normal`: storage.c, open_admin); an env whose LMDB never syncs
 * (memory-only): no copy -- and the next open compares it with the page LMDB
 * would pick, puts it back when LMDB would open an older or different one,
 * and refuses a newer one it cannot vouch for (one commit past the copy
 * is a crash's or an outside writer's: accepted).  LMDB 0.9's layout
 * (on-disk version 1): a 16-byte page header (flags at byte 10), MDB_meta
 * from byte 16 (magic) to 152 (the transaction id at 144). */

#define META_FLAG 0x08 /* P_META */
#define META_MAGIC 0xBEEFC0DEu
#define META_TXNID 144
#define META_END 152

static atomic_ulong meta_restores;

static uint64_t
le_get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static void
le_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static bool
meta_valid(const uint8_t *pg)
{
    return (le_get(pg + 10, 2) & META_FLAG) && le_get(pg + 16, 4) == META_MAGIC;
}

/* A power loss while LMDB created data.mdb (its two meta pages are
 * written unsynced: the first commit syncs them) can leave the file at its
 * first size with zeros where they go.  No commit ever completed in such a
 * file -- one grows it past two pages, and a copy or a checkpoint claims a
 * state only after a sync --, so when nothing claims one (`claimed`: a
 * copy of the meta page exists) it is removed and made anew, instead of
 * refused as not an LMDB file (found by tests/powerloss, cut points
 * before a storage's first acknowledgement). */
static void
drop_unborn(const char *dir, bool claimed)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    struct stat sb;
    uint8_t pg[2 * 4096];
    int fd = claimed ? -1 : open(p, O_RDONLY | O_CLOEXEC);
    bool unborn = fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size == sizeof pg &&
                  pread(fd, pg, sizeof pg, 0) == (ssize_t)sizeof pg;
    for (size_t k = 0; unborn && k < 2; k++) {
        const uint8_t *m = pg + k * 4096;
        bool zero = true;
        for (size_t i = 0; zero && i < 4096; i++) {
            zero = m[i] == 0;
        }
        unborn = zero || (meta_valid(m) && le_get(m + META_TXNID, 8) == 0);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (unborn) {
        unlink(p);
    }
}

/* The meta page LMDB would open from `m` (both slots, psize each), or NULL
 * when one of them is not a meta page (LMDB refuses to open then). */
static const uint8_t *
meta_pick(const uint8_t *m, unsigned psize)
{
    const uint8_t *a = m, *b = m + psize;
    if (!meta_valid(a) || !meta_valid(b)) {
        return NULL;
    }
    return le_get(a + META_TXNID, 8) < le_get(b + META_TXNID, 8) ? b : a;
}

/* Write `page` into both meta slots of `fd` (each with its own page
 * number) and sync. */
static int
meta_put_back(int fd, const char *path, const uint8_t *page, unsigned psize)
{
    uint8_t *pg = sprig__memdup(page, psize);
    int r = pg ? 0 : ENOMEM;
    for (uint64_t k = 0; r == 0 && k < 2; k++) {
        le_put(pg, k, 8); /* the page header's page number */
        ssize_t w = pwrite(fd, pg, psize, (off_t)(k * psize));
        r = w == (ssize_t)psize ? 0 : w < 0 ? errno : EIO;
    }
    r = r ? r : fdatasync(fd) ? errno : 0;
    sprig__free(pg);
    if (r) {
        return sprig__err(r == ENOSPC ? SPRIG_EFULL : SPRIG_EIO,
                          "cannot put back the saved meta page of '%s': %s",
                          path, strerror(r));
    }
    atomic_fetch_add(&meta_restores, 1);
    return SPRIG_OK;
}

unsigned long
sprig__env_meta_restores(void)
{
    return atomic_load(&meta_restores);
}

/* Whether data.mdb's meta pages `m` may open as they are against the copy
 * `page` (`pick`: the page LMDB opens).  The copy's bytes in the slot LMDB
 * wrote them to (txnid & 1) always may; under SPRIG__META_NEWER any newer
 * file too; under SPRIG__META_NEXT one commit after the copy (it is
 * written after each commit): an id exactly one more, in the other slot,
 * the copy's slot untouched. */
static bool
meta_agrees(const uint8_t *m, const uint8_t *pick, const uint8_t *page,
            unsigned psize, int policy)
{
    uint64_t want = le_get(page + META_TXNID, 8);
    const uint8_t *mine = m + (want & 1) * psize;
    bool kept =
        meta_valid(mine) && memcmp(mine + 8, page + 8, META_END - 8) == 0;
    if (!pick) {
        return false;
    }
    if (pick == mine) {
        return kept;
    }
    uint64_t have = le_get(pick + META_TXNID, 8);
    return (policy == SPRIG__META_NEWER && have > want) ||
           (kept && have == want + 1);
}

int
sprig__env_meta_check(const char *dir, const uint8_t *page, unsigned psize,
                      int policy, bool read_only)
{
    char p[4200];
    uint64_t want = le_get(page + META_TXNID, 8);
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    int fd = open(p, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        return sprig__err(errno == ENOENT ? SPRIG_ECORRUPT : SPRIG_EIO,
                          "database file '%s' cannot be opened (%s), but the "
                          "copy of its meta page says it holds snapshot %llu",
                          p, strerror(errno), (unsigned long long)want);
    }
    uint8_t *m = sprig__malloc(2 * (size_t)psize);
    if (!m) {
        close(fd);
        return sprig__err(SPRIG_ENOMEM, "out of memory opening '%s'", p);
    }
    ssize_t got = pread(fd, m, 2 * (size_t)psize, 0);
    const uint8_t *pick = got == (ssize_t)(2 * psize) ? meta_pick(m, psize) : 0;
    uint64_t have = pick ? le_get(pick + META_TXNID, 8) : 0;
    /* a newer snapshot than the copy cannot be put right from it */
    bool newer = pick && have > want;
    int rc = SPRIG_OK;
    if (got != (ssize_t)(2 * psize)) {
        rc = sprig__err(SPRIG_ECORRUPT,
                        "database file '%s' is truncated (%zd bytes), but "
                        "the copy of its meta page says it holds snapshot "
                        "%llu",
                        p, got, (unsigned long long)want);
    } else if (!pick || meta_agrees(m, pick, page, psize, policy)) {
        /* !pick: not two meta pages; LMDB refuses it itself (MDB_INVALID) */
        rc = SPRIG_OK;
    } else if (read_only || newer) {
        rc = sprig__err(SPRIG_ECORRUPT,
                        "database file '%s' is damaged: the meta page LMDB "
                        "would open (%s %llu, slot %d) differs from the copy "
                        "saved outside it (snapshot %llu, slot %d)%s",
                        p, pick ? "snapshot" : "unreadable, id",
                        (unsigned long long)have,
                        pick ? (int)((pick - m) / psize) : -1,
                        (unsigned long long)want, (int)(want & 1),
                        newer ? ""
                              : "; open it writable once to put the copy "
                                "back");
    } else {
        rc = meta_put_back(fd, p, page, psize);
    }
    close(fd);
    sprig__free(m);
    return rc;
}

/* The copy: `<dir>/meta.copy`, two slots (one per transaction id parity, so
 * a torn write leaves the other), each [magic 8][txnid 8][psize 4][crc32c
 * of the page 4][LMDB's meta page]; "SPRIGMT1" written after a commit,
 * "SPRIGMC1" at a clean close (judged alike).  Only envs whose commits LMDB
 * syncs keep one (`_admin`): a copy must never claim more than the disk
 * holds, and an env opened `none` never syncs (not even at close). */
#define COPY_FILE "meta.copy"
#define COPY_HDR 24
static const char copy_closed[8] = {'S', 'P', 'R', 'I', 'G', 'M', 'C', '1'};
static const char copy_kept[8] = {'S', 'P', 'R', 'I', 'G', 'M', 'T', '1'};

/* Write the newest meta page (on disk in data.mdb: the caller synced it)
 * into its slot of the copy, synced.  Best effort: without a copy there is
 * no check; a torn one is ignored. */
static void
copy_write(sprig__env *e, bool kept)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd = -1;
    if (mdb_env_info(e->env, &info) || mdb_env_stat(e->env, &st) ||
        mdb_env_get_fd(e->env, &fd)) {
        return;
    }
    unsigned psize = st.ms_psize;
    uint64_t txnid = info.me_last_txnid;
    uint8_t *buf = sprig__malloc(COPY_HDR + (size_t)psize);
    uint8_t *pg = buf ? buf + COPY_HDR : NULL;
    off_t off = (off_t)((txnid & 1) * psize);
    if (!buf || pread(fd, pg, psize, off) != (ssize_t)psize ||
        !meta_valid(pg) || le_get(pg + META_TXNID, 8) != txnid) {
        sprig__free(buf);
        return;
    }
    memcpy(buf, kept ? copy_kept : copy_closed, 8);
    le_put(buf + 8, txnid, 8);
    le_put(buf + 16, psize, 4);
    le_put(buf + 20, sprig__crc32c(pg, psize), 4);
    if (e->copy_fd < 0) {
        char p[4200];
        snprintf(p, sizeof p, "%s/" COPY_FILE, e->path);
        e->copy_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    size_t n = COPY_HDR + (size_t)psize;
    if (e->copy_fd >= 0 &&
        pwrite(e->copy_fd, buf, n, (off_t)((txnid & 1) * n)) == (ssize_t)n) {
        (void)fdatasync(e->copy_fd);
    }
    sprig__free(buf);
}

void
sprig__env_durable_commit(sprig__env *e)
{
    if (e->keep_copy) {
        copy_write(e, true);
    }
}

/* Slot `k` of the copy in `fd`: its page (allocated) and header, or NULL
 * when it is not a valid slot.  Slot 1 sits where its own size says. */
static uint8_t *
copy_slot(int fd, int k, uint8_t h[COPY_HDR], unsigned *psize)
{
    unsigned ps = 4096;
    for (int pass = 0; pass < 2; pass++) {
        off_t at = (off_t)k * (COPY_HDR + ps);
        if (pread(fd, h, COPY_HDR, at) != COPY_HDR ||
            (memcmp(h, copy_kept, 8) && memcmp(h, copy_closed, 8))) {
            return NULL;
        }
        unsigned hp = (unsigned)le_get(h + 16, 4);
        if (hp < 512 || hp > 65536) {
            return NULL;
        }
        if (hp != ps) {
            ps = hp;
            continue;
        }
        uint8_t *pg = sprig__malloc(ps);
        if (pg && (pread(fd, pg, ps, at + COPY_HDR) != (ssize_t)ps ||
                   sprig__crc32c(pg, ps) != (uint32_t)le_get(h + 20, 4) ||
                   le_get(pg + META_TXNID, 8) != le_get(h + 8, 8))) {
            sprig__free(pg);
            pg = NULL;
        }
        *psize = ps;
        return pg;
    }
    return NULL;
}

/* Read the newest valid slot of `dir`'s copy: *page (allocated) and
 * whether it is kept after every commit; NULL when none. */
static void
copy_read(const char *dir, uint8_t **page, unsigned *psize, bool *kept)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/" COPY_FILE, dir);
    *page = NULL;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    uint64_t best = 0;
    for (int k = 0; fd >= 0 && k < 2; k++) {
        uint8_t h[COPY_HDR];
        unsigned ps = 0;
        uint8_t *pg = copy_slot(fd, k, h, &ps);
        uint64_t t = pg ? le_get(h + 8, 8) : 0;
        if (pg && (!*page || t > best)) {
            sprig__free(*page);
            *page = pg;
            *psize = ps;
            *kept = memcmp(h, copy_kept, 8) == 0;
            best = t;
        } else {
            sprig__free(pg);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* At open, before LMDB: the copy (if any) against data.mdb's meta pages
 * (put back when they differ).  *found when the file exists.  A damaged
 * copy (CRC) is no evidence either way: ignored. */
static int
check_copy(const char *dir, bool read_only, bool *found)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/" COPY_FILE, dir);
    *found = access(p, F_OK) == 0;
    uint8_t *pg = NULL;
    unsigned psize = 0;
    bool kept = false;
    if (*found) {
        copy_read(dir, &pg, &psize, &kept);
    }
    (void)kept; /* either kind: one commit may follow it (an outside
                   writer's, or a crash's before the copy was written) */
    int rc =
        pg ? sprig__env_meta_check(dir, pg, psize, SPRIG__META_NEXT, read_only)
           : 0;
    sprig__free(pg);
    return rc;
}

/* The open succeeded.  An env that keeps a copy writes it now (of the
 * snapshot it opened); any other spends it (its commits follow, never
 * copied), removed durably so it is never compared with a later state. */
static int
copy_after_open(sprig__env *e, bool found)
{
    if (e->keep_copy) {
        copy_write(e, true);
        return SPRIG_OK;
    }
    if (!found) {
        return SPRIG_OK;
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/" COPY_FILE, e->path);
    int r = unlink(p) == 0 || errno == ENOENT ? 0 : errno;
    r = r ? r : sprig__sync_dir(e->path);
    return r ? sprig__err(SPRIG_EIO, "cannot remove '%s': %s", p, strerror(r))
             : SPRIG_OK;
}

/* LMDB's page structure, verified before anything is read: the table
 * directory, the free list and the named tables up to
 * SPRIG__VERIFY_OPEN_BYTES (pagecheck.c). */
static int
verify_at_open(sprig__env *e)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        return sprig__mdb_err(mrc, e->path);
    }
    int rc = sprig__env_verify_open(e, txn); /* bgverify.c: the rest later */
    mdb_txn_abort(txn);
    return rc;
}

int
sprig__env_open(const char *dir, const sprig_storage_options *o,
                unsigned maxdbs, sprig__env **out)
{
    *out = NULL;
    if (!o->read_only && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return sprig__err(errno == ENOSPC ? SPRIG_EFULL : SPRIG_EIO,
                          "cannot create directory '%s': %s", dir,
                          strerror(errno));
    }
    sprig__env *e = sprig__calloc(1, sizeof *e);
    if (!e || !(e->path = sprig__strdup(dir))) {
        sprig__free(e);
        return sprig__err(SPRIG_ENOMEM, "out of memory opening '%s'", dir);
    }
    e->map_size = o->initial_map_size ? o->initial_map_size : DEFAULT_MAP;
    e->max_map_size = o->max_map_size;
    if (e->max_map_size && e->map_size > e->max_map_size) {
        e->map_size = e->max_map_size;
    }
    e->id = atomic_fetch_add(&next_env_id, 1);
    pthread_rwlock_init(&e->map_lock, NULL);
    pthread_mutex_init(&e->pool_lock, NULL);
    bool fresh = false;
    e->read_only = o->read_only;
    /* first: a copy of its meta page says data.mdb must not be new */
    bool found = false;
    e->copy_fd = -1;
    int rc = o->memory_only ? 0 : check_copy(dir, o->read_only, &found);
    if (rc) {
        sprig__env_close(e);
        return rc;
    }
    if (!o->read_only && !o->memory_only) {
        drop_unborn(dir, found);
    }
    int mrc = o->read_only ? 0 : prepare_files(dir, &fresh);
    mrc = mrc ? mrc : mdb_env_create(&e->env);
    mrc = mrc ? mrc : mdb_env_set_maxdbs(e->env, maxdbs);
    mrc = mrc ? mrc : mdb_env_set_maxreaders(e->env, 1024);
    mrc = mrc ? mrc : mdb_env_set_mapsize(e->env, e->map_size);
    mrc = mrc ? mrc : mdb_env_open(e->env, dir, env_flags(o), 0644);
    if (mrc) {
        rc = sprig__mdb_err(sprig__env_io_err(dir, mrc), dir);
        sprig__env_close(e);
        if (fresh) {
            remove_files(dir);
        }
        return rc;
    }
    MDB_envinfo info;
    mdb_env_info(e->env, &info);
    e->map_size = info.me_mapsize; /* an existing file may be larger */
    rc = fresh ? SPRIG_OK : verify_at_open(e);
    if (rc == 0 && fresh && !o->memory_only) { /* before a copy claims it */
        mdb_env_sync(e->env, 1);
        sprig__sync_dir(dir);
    }
    /* the copy: kept after every commit where LMDB syncs them (`_admin`:
     * ckpt.c's envs pass `none` here, their checkpoint is their copy) */
    e->keep_copy = !o->memory_only && !o->read_only &&
                   o->durability != SPRIG_DURABILITY_NONE;
    rc = rc || o->read_only || o->memory_only ? rc : copy_after_open(e, found);
    if (rc) {
        sprig__env_close(e);
        return rc;
    }
    e->reserve = o->memory_only || o->read_only ? 0 : 2;
    sprig__env_reserve_make(e);
    e->seal = e->keep_copy; /* `none` never syncs, so never claims */
    *out = e;
    return SPRIG_OK;
}

void
sprig__env_close(sprig__env *e)
{
    if (!e) {
        return;
    }
    sprig__env_bgverify_stop(e); /* first: its walk reads the env */
    slots_env_close(e);
    sprig__ckpt_close(e);
    for (size_t i = 0; i < e->pool_n; i++) {
        mdb_txn_abort(e->pool[i]);
    }
    sprig__free(e->pool);
    if (e->env && e->seal && mdb_env_sync(e->env, 1) == 0) {
        copy_write(e, false); /* the clean close's: nothing may follow */
    }
    if (e->copy_fd >= 0) {
        close(e->copy_fd);
    }
    if (e->env) {
        mdb_env_close(e->env);
    }
    pthread_rwlock_destroy(&e->map_lock);
    pthread_mutex_destroy(&e->pool_lock);
    sprig__free(e->path);
    sprig__free(e);
}

/* ---- read transactions ------------------------------------------------
 *
 * Each thread keeps, per environment it reads, one slot holding a read
 * transaction.  A read ends by leaving the transaction open (IDLE); the
 * next read on that thread reuses it as is when no commit happened since
 * (its snapshot id is still the newest: one look at the meta page), and
 * renews it otherwise.  So back-to-back reads cost no renew/reset and no
 * re-lookup of named tables, and a read after a commit -- on any thread --
 * sees that commit.  An idle transaction must not pin its snapshot for
 * long (LMDB could not reuse the pages freed after it), nor be open while
 * the map is resized: sprig__env_committed() (after every writer commit)
 * and sprig__env_grow() (under the exclusive map lock) reset the idle
 * ones.  Slot states, moved by compare-and-swap:
 *
 *   RESET --(owner: read_begin, renew)--> BUSY --(owner: read_end)--> IDLE
 *   IDLE --(owner: read_begin, reuse or renew)--> BUSY
 *   IDLE --(committer / grow: claim)--> CLAIMED --(reset)--> RESET
 *   IDLE, RESET --(owner: read_begin without the map lock: reuse or
 *                  renew)--> FAST --(owner: read_end)--> IDLE
 *   FAST --(owner: a growth seen, nothing done)--> IDLE, RESET as it was
 *
 * A read that takes its own idle or reset slot (the common case) takes no
 * map lock: the slot goes FAST, and the reader then checks `growing`;
 * sprig__env_grow() first bumps `growing`, then waits until no slot is FAST
 * (sequentially consistent on both sides, so either the reader sees the growth
 * and backs off to the locked path, or the grower sees the FAST slot and waits
 * for it), and only then takes the map lock exclusively.  Every other read
 * holds the map lock shared from begin to end, so growth waits for all readers
 * as before.  Slots live on two lists: the thread's (thread-local, walked
 * without a lock) and the env's (under slot_lock), so whichever ends first --
 * the env (close) or the thread (exit) -- frees the transaction.  A slot
 * matches its env by id, never by address.  A read while the thread's slot is
 * busy (nested reads) or claimed, or ended on another thread, goes through the
 * pool of reset transactions. */

enum { S_RESET, S_IDLE, S_BUSY, S_CLAIMED, S_FAST };

typedef struct sprig__rslot {
    sprig__env *env;
    MDB_txn *txn;
    atomic_int state;
    unsigned long tables; /* env->tables_gen when txn was (re)newed */
    struct sprig__rslot *next_env;
} sprig__rslot;

#define SLOTS_PER_THREAD 16

/* A thread's slots: (env id, slot) pairs.  The slots themselves belong to
 * their env (freed at its close); an entry whose env is gone is never
 * dereferenced again (ids are not reused) and is recycled. */
typedef struct tls_entry {
    uint64_t env_id;
    sprig__rslot *slot;
} tls_entry;

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;
static _Thread_local tls_entry tls_slots[SLOTS_PER_THREAD];
static _Thread_local tls_entry tls_last; /* the last one found */
static sprig__env *open_envs;            /* envs with slots, under slot_lock */

/* The open env with id `id` that has slots, or NULL (slot_lock held). */
static sprig__env *
open_env(uint64_t id)
{
    for (sprig__env *e = open_envs; e; e = e->next_open) {
        if (e->id == id) {
            return e;
        }
    }
    return NULL;
}

/* Unlink and free `s`, aborting its transaction (slot_lock held). */
static void
slot_free(sprig__rslot *s)
{
    for (sprig__rslot **p = &s->env->slots; *p; p = &(*p)->next_env) {
        if (*p == s) {
            *p = s->next_env;
            break;
        }
    }
    if (s->txn) {
        mdb_txn_abort(s->txn);
    }
    sprig__free(s);
}

/* Thread exit: give back this thread's slots of envs still open. */
static void
slots_thread_exit(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&slot_lock);
    for (size_t i = 0; i < SLOTS_PER_THREAD; i++) {
        tls_entry *t = &tls_slots[i];
        if (t->env_id && open_env(t->env_id)) {
            slot_free(t->slot);
        }
        *t = (tls_entry){0, NULL};
    }
    tls_last = (tls_entry){0, NULL};
    pthread_mutex_unlock(&slot_lock);
}

static void
slot_key_make(void)
{
    pthread_key_create(&slot_key, slots_thread_exit);
}

/* Env close: free the slots threads keep for `e`. */
static void
slots_env_close(sprig__env *e)
{
    pthread_mutex_lock(&slot_lock);
    for (sprig__env **p = &open_envs; *p; p = &(*p)->next_open) {
        if (*p == e) {
            *p = e->next_open;
            break;
        }
    }
    while (e->slots) {
        slot_free(e->slots);
    }
    pthread_mutex_unlock(&slot_lock);
}

void
sprig__env_tables_opened(sprig__env *e)
{
    atomic_fetch_add(&e->tables_gen, 1);
    sprig__env_committed(e);
}

void
sprig__env_committed(sprig__env *e)
{
    pthread_mutex_lock(&slot_lock);
    for (sprig__rslot *s = e->slots; s; s = s->next_env) {
        int want = S_IDLE;
        if (atomic_compare_exchange_strong(&s->state, &want, S_CLAIMED)) {
            mdb_txn_reset(s->txn);
            atomic_store(&s->state, S_RESET);
        }
    }
    pthread_mutex_unlock(&slot_lock);
}

/* This thread's slot for `e` (in any state), NULL when there is none. */
static sprig__rslot *
slot_find(const sprig__env *e)
{
    if (tls_last.env_id == e->id) {
        return tls_last.slot;
    }
    for (size_t i = 0; i < SLOTS_PER_THREAD; i++) {
        if (tls_slots[i].env_id == e->id) {
            tls_last = tls_slots[i];
            return tls_slots[i].slot;
        }
    }
    return NULL;
}

/* A free entry of this thread's table: unused, or of a closed env
 * (slot_lock held); NULL when all are in use. */
static tls_entry *
free_entry(void)
{
    for (size_t i = 0; i < SLOTS_PER_THREAD; i++) {
        tls_entry *t = &tls_slots[i];
        if (t->env_id == 0 || !open_env(t->env_id)) {
            return t;
        }
    }
    return NULL;
}

/* A new BUSY slot of this thread for `e` holding `t` (an active read);
 * nothing when this thread has enough or memory is short (the caller
 * then keeps `t` and gives it to the pool at the end). */
static void
slot_new(sprig__env *e, MDB_txn *t, unsigned long tables)
{
    pthread_once(&slot_once, slot_key_make);
    sprig__rslot *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        return;
    }
    s->env = e;
    s->txn = t;
    s->tables = tables;
    atomic_init(&s->state, S_BUSY);
    pthread_mutex_lock(&slot_lock);
    tls_entry *te = free_entry();
    if (te) {
        if (!e->slots && !open_env(e->id)) {
            e->next_open = open_envs;
            open_envs = e;
        }
        s->next_env = e->slots;
        e->slots = s;
        *te = (tls_entry){e->id, s};
    }
    pthread_mutex_unlock(&slot_lock);
    if (!te) {
        sprig__free(s);
        return;
    }
    pthread_setspecific(slot_key, tls_slots); /* run the exit hook */
}

/* Forget this thread's slot `s`, whose transaction failed to renew and
 * was aborted. */
static void
slot_drop(sprig__rslot *s)
{
    pthread_mutex_lock(&slot_lock);
    for (size_t i = 0; i < SLOTS_PER_THREAD; i++) {
        if (tls_slots[i].slot == s) {
            tls_slots[i] = (tls_entry){0, NULL};
        }
    }
    if (tls_last.slot == s) {
        tls_last = (tls_entry){0, NULL};
    }
    s->txn = NULL;
    slot_free(s);
    pthread_mutex_unlock(&slot_lock);
}

/* Whether the slot's open transaction sees the newest commit and every
 * table (a table opened by a write that changed nothing makes no new
 * snapshot, but an older transaction cannot use its handle). */
static bool
is_current(sprig__env *e, const sprig__rslot *s)
{
    MDB_envinfo info;
    return s->tables == atomic_load(&e->tables_gen) &&
           mdb_env_info(e->env, &info) == 0 &&
           info.me_last_txnid == mdb_txn_id(s->txn);
}

/* Take this thread's slot for a read: 1 with *t ready, 0 when the slot
 * cannot serve (busy, claimed, none), or an LMDB error. */
static int
slot_take(sprig__env *e, sprig__rslot *s, MDB_txn **t)
{
    int st = S_IDLE;
    if (atomic_compare_exchange_strong(&s->state, &st, S_BUSY)) {
        if (is_current(e, s)) {
            *t = s->txn;
            return 1;
        }
        mdb_txn_reset(s->txn);
    } else if (st != S_RESET ||
               !atomic_compare_exchange_strong(&s->state, &st, S_BUSY)) {
        return 0;
    }
    s->tables = atomic_load(&e->tables_gen);
    int mrc = mdb_txn_renew(s->txn);
    if (mrc) {
        mdb_txn_abort(s->txn);
        slot_drop(s);
        return mrc;
    }
    *t = s->txn;
    return 1;
}

/* A reset transaction from the pool, or NULL. */
static MDB_txn *
pool_take(sprig__env *e)
{
    MDB_txn *t = NULL;
    pthread_mutex_lock(&e->pool_lock);
    if (e->pool_n) {
        t = e->pool[--e->pool_n];
    }
    pthread_mutex_unlock(&e->pool_lock);
    return t;
}

/* This thread's idle or reset slot taken without the map lock (FAST):
 * reused as is when it sees the newest commit, else renewed.  False when
 * it cannot serve (busy, claimed, a growth under way: the locked path
 * then runs) or its renewal failed (*mrc; the slot is dropped). */
static bool
slot_take_fast(sprig__env *e, sprig__rslot *s, int *mrc)
{
    int st = S_IDLE;
    *mrc = 0;
    if (!atomic_compare_exchange_strong(&s->state, &st, S_FAST) &&
        (st != S_RESET ||
         !atomic_compare_exchange_strong(&s->state, &st, S_FAST))) {
        return false;
    }
    if (atomic_load(&e->growing) != 0) {
        atomic_store(&s->state, st); /* untouched: as it was */
        return false;
    }
    if (st == S_IDLE && is_current(e, s)) {
        return true;
    }
    if (st == S_IDLE) {
        mdb_txn_reset(s->txn);
    }
    s->tables = atomic_load(&e->tables_gen);
    *mrc = mdb_txn_renew(s->txn);
    if (*mrc) {
        mdb_txn_abort(s->txn);
        slot_drop(s);
        return false;
    }
    return true;
}

int
sprig__env_read_begin(sprig__env *e, MDB_txn **txn)
{
    int frc = sprig__env_check(e);
    if (frc) {
        return frc;
    }
    sprig__rslot *s = slot_find(e);
    int fast_mrc = 0;
    if (s && slot_take_fast(e, s, &fast_mrc)) {
        *txn = s->txn;
        return SPRIG_OK;
    }
    if (fast_mrc) {
        return sprig__mdb_err(fast_mrc, "beginning a read");
    }
    pthread_rwlock_rdlock(&e->map_lock);
    MDB_txn *t = NULL;
    int got = s ? slot_take(e, s, &t) : 0;
    if (got == 1) {
        *txn = t;
        return SPRIG_OK;
    }
    int mrc = got;
    unsigned long tables = atomic_load(&e->tables_gen);
    if (mrc == 0) {
        t = pool_take(e);
        mrc =
            t ? mdb_txn_renew(t) : mdb_txn_begin(e->env, NULL, MDB_RDONLY, &t);
        if (mrc && t) {
            mdb_txn_abort(t);
        }
    }
    if (mrc) {
        pthread_rwlock_unlock(&e->map_lock);
        return sprig__mdb_err(mrc, "beginning a read");
    }
    if (!s) {
        slot_new(e, t, tables); /* keeps t for this thread's next reads */
    }
    *txn = t;
    return SPRIG_OK;
}

size_t
sprig__env_read_slots(sprig__env *e)
{
    size_t n = 0;
    pthread_mutex_lock(&slot_lock);
    for (sprig__rslot *s = e->slots; s; s = s->next_env) {
        n++;
    }
    pthread_mutex_unlock(&slot_lock);
    return n;
}

/* Give a reset transaction back to the pool (or abort it). */
static void
pool_put(sprig__env *e, MDB_txn *txn)
{
    pthread_mutex_lock(&e->pool_lock);
    if (e->pool_n == e->pool_cap) {
        size_t cap = e->pool_cap ? e->pool_cap * 2 : 8;
        MDB_txn **p = sprig__realloc(e->pool, cap * sizeof *p);
        if (p) {
            e->pool = p;
            e->pool_cap = cap;
        }
    }
    if (e->pool_n < e->pool_cap) {
        e->pool[e->pool_n++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&e->pool_lock);
    if (txn) {
        mdb_txn_abort(txn);
    }
}

/* End a read that is not this thread's slot's: a slot of another thread
 * (the read began there) is reset and marked so; else the pool takes it.
 * False when the read was a slot's FAST one (it holds no map lock). */
static bool
read_end_other(sprig__env *e, MDB_txn *txn)
{
    bool slot = false, locked = true;
    mdb_txn_reset(txn);
    pthread_mutex_lock(&slot_lock);
    for (sprig__rslot *s = e->slots; s && !slot; s = s->next_env) {
        if (s->txn == txn) {
            locked = atomic_load(&s->state) != S_FAST;
            atomic_store(&s->state, S_RESET);
            slot = true;
        }
    }
    pthread_mutex_unlock(&slot_lock);
    if (!slot) {
        pool_put(e, txn);
    }
    return locked;
}

void
sprig__env_read_end(sprig__env *e, MDB_txn *txn)
{
    sprig__rslot *s = slot_find(e);
    bool locked;
    if (s && s->txn == txn && !txn_failed) {
        locked = atomic_load(&s->state) != S_FAST;
        atomic_store(&s->state, S_IDLE); /* stays open for the next read */
    } else {
        locked = read_end_other(e, txn); /* reset: the next read renews */
    }
    txn_failed = false;
    if (locked) {
        pthread_rwlock_unlock(&e->map_lock);
    }
}

/* Whether a slot of `e` is FAST (a read without the map lock). */
static bool
any_fast(sprig__env *e)
{
    bool fast = false;
    pthread_mutex_lock(&slot_lock);
    for (sprig__rslot *s = e->slots; s && !fast; s = s->next_env) {
        fast = atomic_load(&s->state) == S_FAST;
    }
    pthread_mutex_unlock(&slot_lock);
    return fast;
}

/* Growth, before the exclusive map lock: no new FAST read starts, and
 * the running ones end (they may hold nested locked reads, so this waits
 * without the map lock; a FAST slot seen later is one backing off). */
static void
fast_reads_stop(sprig__env *e)
{
    atomic_fetch_add(&e->growing, 1);
    while (any_fast(e)) {
        sched_yield();
    }
}

/* Under the exclusive map lock: reset every idle slot (as
 * sprig__env_committed), waiting out those backing off from FAST. */
static void
slots_reset_all(sprig__env *e)
{
    pthread_mutex_lock(&slot_lock);
    for (sprig__rslot *s = e->slots; s; s = s->next_env) {
        int st = S_IDLE;
        while (!atomic_compare_exchange_strong(&s->state, &st, S_CLAIMED)) {
            if (st != S_FAST) {
                break; /* RESET, or BUSY/CLAIMED: not while we hold it */
            }
            sched_yield();
            st = S_IDLE;
        }
        if (st == S_IDLE) {
            mdb_txn_reset(s->txn);
            atomic_store(&s->state, S_RESET);
        }
    }
    pthread_mutex_unlock(&slot_lock);
}

int
sprig__env_grow(sprig__env *e, size_t seen_size, bool reserve)
{
    int rc = SPRIG_OK;
    fast_reads_stop(e);
    pthread_rwlock_wrlock(&e->map_lock);
    slots_reset_all(e);             /* no transaction open while resizing */
    if (e->map_size == seen_size) { /* nobody grew it meanwhile */
        size_t want = e->map_size * 2;
        size_t limit = e->max_map_size;
        if (limit && reserve) { /* deletes may use a reserve */
            limit += limit / 8 > (256u << 10) ? limit / 8 : (256u << 10);
        }
        if (limit && want > limit) {
            want = limit;
        }
        if (want <= e->map_size) {
            rc = sprig__err(SPRIG_EFULL,
                            "database '%s' reached its size "
                            "limit of %zu bytes",
                            e->path, e->map_size);
        } else {
            int mrc = mdb_env_set_mapsize(e->env, want);
            if (mrc) {
                rc = sprig__mdb_err(mrc, "growing the map");
            } else {
                e->map_size = want;
            }
        }
    }
    pthread_rwlock_unlock(&e->map_lock);
    atomic_fetch_sub(&e->growing, 1);
    return rc;
}

static int
table_missing(const sprig__env *e, const char *name)
{
    return sprig__err(SPRIG_ECORRUPT,
                      "'%s': table '%s' is missing from the table "
                      "directory although it was created (a damaged table "
                      "name?)",
                      e->path, name);
}

bool
sprig__env_table_recorded(MDB_txn *txn, const char *name)
{
    char key[2 * SPRIG_NAME_MAX + 32];
    MDB_dbi meta;
    MDB_val v;
    int n = snprintf(key, sizeof key, "table:%s", name);
    MDB_val k = {(size_t)n, key};
    if (strcmp(name, "meta") == 0 || n < 0 || (size_t)n >= sizeof key ||
        mdb_dbi_open(txn, "meta", 0, &meta) != 0) {
        return false;
    }
    return mdb_get(txn, meta, &k, &v) == 0;
}

/* Read-only: the tables must exist (a read transaction cannot create
 * them); their handles stay valid after it. */
static int
open_dbis_ro(sprig__env *e, const char *const *names, size_t n, MDB_dbi *out)
{
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    size_t i = 0;
    for (; mrc == 0 && i < n; i++) {
        mrc = mdb_dbi_open(txn, names[i], 0, &out[i]);
    }
    if (mrc == MDB_NOTFOUND && sprig__env_table_recorded(txn, names[i - 1])) {
        mdb_txn_abort(txn);
        return table_missing(e, names[i - 1]);
    }
    if (txn) {
        mrc = mrc ? (mdb_txn_abort(txn), mrc) : mdb_txn_commit(txn);
    }
    if (mrc == MDB_NOTFOUND) {
        return sprig__err(SPRIG_EPERM,
                          "'%s' has no table '%s' yet and is open read-only: "
                          "open it writable once",
                          e->path, names[i - 1]);
    }
    if (mrc == 0) {
        sprig__env_tables_opened(e);
    }
    return sprig__mdb_err(mrc, "opening tables");
}

/* ---- table records: a table is created once, never again -------------
 *
 * LMDB's table directory keys a table by its name, and no checksum covers
 * the name: a flipped byte that keeps the directory's order renames a
 * table, and an open that created what it did not find would answer from
 * a new, empty table.  So each table created is recorded in the
 * environment's `meta` table ("table:<name>" -> CRC-32C of the name), in
 * the transaction that creates it; a named table that is missing while
 * its record exists is SPRIG_ECORRUPT.  `meta` itself (it holds the
 * records) must exist once the directory holds any other table.  A table
 * found without a record (an environment made before the records) gets
 * its record then. */

#define TABLE_REC "table:"

/* Whether the table directory of `txn` holds any table. */
static int
directory_empty(MDB_txn *txn, bool *empty)
{
    MDB_dbi main_dbi;
    MDB_stat s;
    int mrc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    mrc = mrc ? mrc : mdb_stat(txn, main_dbi, &s);
    *empty = mrc == 0 && s.ms_entries == 0;
    return mrc;
}

/* The record of table `name` in `meta`: put it when it is not there. */
static int
record_table(MDB_txn *txn, MDB_dbi meta, MDB_val *k, const char *name)
{
    MDB_val v;
    int mrc = mdb_get(txn, meta, k, &v);
    if (mrc != MDB_NOTFOUND) {
        return mrc;
    }
    uint8_t c[4];
    uint32_t crc = sprig__crc32c(name, strlen(name));
    memcpy(c, &crc, 4);
    v = (MDB_val){4, c};
    return mdb_put(txn, meta, k, &v, 0);
}

int
sprig__env_dbi_open(sprig__env *e, MDB_txn *txn, const char *name,
                    unsigned flags, MDB_dbi *out)
{
    char key[2 * SPRIG_NAME_MAX + 32];
    MDB_dbi meta;
    MDB_val v;
    int n = snprintf(key, sizeof key, TABLE_REC "%s", name);
    int mrc = mdb_dbi_open(txn, name, flags & ~MDB_CREATE, out);
    if (strcmp(name, "meta") == 0 || (mrc && mrc != MDB_NOTFOUND) || n < 0 ||
        (size_t)n >= sizeof key) {
        return mrc == MDB_NOTFOUND && (flags & MDB_CREATE)
                   ? mdb_dbi_open(txn, name, flags, out)
                   : mrc;
    }
    int mm = mdb_dbi_open(txn, "meta", 0, &meta);
    MDB_val k = {(size_t)n, key};
    if (mm && mm != MDB_NOTFOUND) {
        return mm;
    }
    int got = mm ? MDB_NOTFOUND : mdb_get(txn, meta, &k, &v);
    if (mrc == MDB_NOTFOUND && got == 0) {
        table_missing(e, name);
        return SPRIG__MRC_REPORTED;
    }
    if (got && got != MDB_NOTFOUND) {
        return got;
    }
    if (mrc == MDB_NOTFOUND && (flags & MDB_CREATE)) {
        mrc = mdb_dbi_open(txn, name, flags, out);
    }
    return mrc || mm ? mrc : record_table(txn, meta, &k, name);
}

/* `meta` missing from a directory that holds other tables: renamed. */
static int
check_meta(sprig__env *e, MDB_txn *txn, const char *const *names, size_t n)
{
    bool wants = false, empty = false;
    MDB_dbi d;
    for (size_t i = 0; i < n; i++) {
        wants = wants || strcmp(names[i], "meta") == 0;
    }
    if (!wants || mdb_dbi_open(txn, "meta", 0, &d) != MDB_NOTFOUND) {
        return 0;
    }
    int mrc = directory_empty(txn, &empty);
    if (mrc == 0 && !empty) {
        table_missing(e, "meta");
        return SPRIG__MRC_REPORTED;
    }
    return mrc;
}

int
sprig__env_open_dbis(sprig__env *e, const char *const *names, size_t n,
                     MDB_dbi *out)
{
    if (e->read_only) {
        return open_dbis_ro(e, names, n, out);
    }
    for (;;) {
        MDB_txn *txn = NULL;
        size_t seen = e->map_size;
        pthread_rwlock_rdlock(&e->map_lock);
        int mrc = mdb_txn_begin(e->env, NULL, 0, &txn);
        bool began = mrc == 0;
        mrc = mrc ? mrc : check_meta(e, txn, names, n);
        for (size_t i = 0; mrc == 0 && i < n; i++) { /* meta first */
            if (strcmp(names[i], "meta") == 0) {
                mrc =
                    sprig__env_dbi_open(e, txn, names[i], MDB_CREATE, &out[i]);
            }
        }
        for (size_t i = 0; mrc == 0 && i < n; i++) {
            if (strcmp(names[i], "meta") != 0) {
                mrc =
                    sprig__env_dbi_open(e, txn, names[i], MDB_CREATE, &out[i]);
            }
        }
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn);
        } else if (began) {
            mdb_txn_abort(txn);
        }
        if (mrc == 0) {
            sprig__env_tables_opened(e); /* reads must see new handles */
            sprig__env_durable_commit(e);
        }
        pthread_rwlock_unlock(&e->map_lock);
        if (mrc == MDB_MAP_FULL) {
            int rc = sprig__env_grow(e, seen, false);
            if (rc) {
                return rc;
            }
            continue;
        }
        if (mrc == SPRIG__MRC_REPORTED) {
            return SPRIG_ECORRUPT;
        }
        return sprig__mdb_err(sprig__env_io_err(e->path, mrc),
                              "opening tables");
    }
}
