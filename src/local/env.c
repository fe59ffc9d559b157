/*
 * env.c -- one LMDB environment: opening it with the storage's durability,
 * pooled read transactions, growing the map when it fills, and turning
 * LMDB's errors into Sprig's.
 *
 * Every transaction holds `map_lock` shared; sprig__env_grow() takes it
 * exclusively, which is the only moment LMDB allows mdb_env_set_mapsize().
 * Read transactions are MDB_NOTLS, reset and kept in a pool for reuse, so
 * a read costs a renew instead of a reader-slot search.
 */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Room for LMDB's lock file with 1024 readers (a header and 64 bytes a
 * reader slot, about 68 KiB), with a margin. */
#define LOCK_BYTES (128 * 1024)

#define DEFAULT_MAP (64ull << 20)

int
sprig__mdb_err(int mrc, const char *what)
{
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
    if (o->memory_only || o->durability == SPRIG_DURABILITY_NONE) {
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

static void
remove_files(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
}

int
sprig__env_open(const char *dir, const sprig_storage_options *o,
                unsigned maxdbs, sprig__env **out)
{
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
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
    pthread_rwlock_init(&e->map_lock, NULL);
    pthread_mutex_init(&e->pool_lock, NULL);
    bool fresh;
    int mrc = prepare_files(dir, &fresh);
    mrc = mrc ? mrc : mdb_env_create(&e->env);
    mrc = mrc ? mrc : mdb_env_set_maxdbs(e->env, maxdbs);
    mrc = mrc ? mrc : mdb_env_set_maxreaders(e->env, 1024);
    mrc = mrc ? mrc : mdb_env_set_mapsize(e->env, e->map_size);
    mrc = mrc ? mrc : mdb_env_open(e->env, dir, env_flags(o), 0644);
    if (mrc) {
        int rc = sprig__mdb_err(sprig__env_io_err(dir, mrc), dir);
        sprig__env_close(e);
        if (fresh) {
            remove_files(dir);
        }
        return rc;
    }
    MDB_envinfo info;
    mdb_env_info(e->env, &info);
    e->map_size = info.me_mapsize; /* an existing file may be larger */
    *out = e;
    return SPRIG_OK;
}

void
sprig__env_close(sprig__env *e)
{
    if (!e) {
        return;
    }
    sprig__ckpt_close(e);
    for (size_t i = 0; i < e->pool_n; i++) {
        mdb_txn_abort(e->pool[i]);
    }
    sprig__free(e->pool);
    if (e->env) {
        mdb_env_close(e->env);
    }
    pthread_rwlock_destroy(&e->map_lock);
    pthread_mutex_destroy(&e->pool_lock);
    sprig__free(e->path);
    sprig__free(e);
}

int
sprig__env_read_begin(sprig__env *e, MDB_txn **txn)
{
    MDB_txn *t = NULL;
    pthread_rwlock_rdlock(&e->map_lock);
    pthread_mutex_lock(&e->pool_lock);
    if (e->pool_n) {
        t = e->pool[--e->pool_n];
    }
    pthread_mutex_unlock(&e->pool_lock);
    int mrc =
        t ? mdb_txn_renew(t) : mdb_txn_begin(e->env, NULL, MDB_RDONLY, &t);
    if (mrc) {
        if (t) {
            mdb_txn_abort(t);
        }
        pthread_rwlock_unlock(&e->map_lock);
        return sprig__mdb_err(mrc, "beginning a read");
    }
    *txn = t;
    return SPRIG_OK;
}

void
sprig__env_read_end(sprig__env *e, MDB_txn *txn)
{
    mdb_txn_reset(txn);
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
    pthread_rwlock_unlock(&e->map_lock);
}

int
sprig__env_grow(sprig__env *e, size_t seen_size, bool reserve)
{
    int rc = SPRIG_OK;
    pthread_rwlock_wrlock(&e->map_lock);
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
    return rc;
}

int
sprig__env_open_dbis(sprig__env *e, const char *const *names, size_t n,
                     MDB_dbi *out)
{
    for (;;) {
        MDB_txn *txn = NULL;
        size_t seen = e->map_size;
        pthread_rwlock_rdlock(&e->map_lock);
        int mrc = mdb_txn_begin(e->env, NULL, 0, &txn);
        bool began = mrc == 0;
        for (size_t i = 0; mrc == 0 && i < n; i++) {
            mrc = mdb_dbi_open(txn, names[i], MDB_CREATE, &out[i]);
        }
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn);
        } else if (began) {
            mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&e->map_lock);
        if (mrc == MDB_MAP_FULL) {
            int rc = sprig__env_grow(e, seen, false);
            if (rc) {
                return rc;
            }
            continue;
        }
        return sprig__mdb_err(sprig__env_io_err(e->path, mrc),
                              "opening tables");
    }
}
