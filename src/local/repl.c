/*
 * repl.c -- the replication seam of a local storage (repl.h): installing
 * a replicator, the synchronous path through it, the applied Raft indexes
 * and the node's floor kept in LMDB meta tables, and the compacted copy of
 * the whole storage that a Raft snapshot carries.
 */
#include "local.h"
#include "repl.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>

#define RAFT_APPLIED_KEY "raft.applied"
#define RAFT_FLOOR_KEY "raft.floor"
/* the file of a snapshot copy naming the vault that sealed it */
#define SNAP_VAULT_ID "vault.id"

static sprig__lstorage *
lst(sprig_storage *s)
{
    return (sprig__lstorage *)s;
}

void
sprig__storage_replicate(sprig_storage *s, const sprig__repl *r)
{
    atomic_store(&lst(s)->repl, r);
}

const sprig__repl *
sprig__storage_repl(sprig__lstorage *st, const sprig__cmd *cmd)
{
    return cmd->replicated ? NULL : atomic_load(&st->repl);
}

/* ---- the synchronous path ----------------------------------------------- */

typedef struct repl_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rc;
    sprig__errsave err;
} repl_wait;

static void
repl_wait_done(void *udata, int rc, sprig__cmd *cmd)
{
    (void)cmd;
    repl_wait *w = udata;
    if (rc) {
        sprig__err_save(&w->err);
    }
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int
sprig__repl_run(const sprig__repl *r, const char *db, sprig__cmd *cmd)
{
    repl_wait w = {.rc = 0};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    int rc = r->submit(r->udata, db, cmd, repl_wait_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done) {
            pthread_cond_wait(&w.cond, &w.lock);
        }
        pthread_mutex_unlock(&w.lock);
        rc = w.rc ? sprig__err_load(w.rc, &w.err) : 0;
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return rc;
}

static void
barrier_done(void *udata, int rc)
{
    repl_wait_done(udata, rc, NULL);
}

int
sprig__storage_read_barrier(sprig_storage *s)
{
    const sprig__repl *r = atomic_load(&lst(s)->repl);
    if (!r || !r->barrier) {
        return SPRIG_OK; /* not replicated: every read is current */
    }
    repl_wait w = {.rc = 0};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    int rc = r->barrier(r->udata, barrier_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done) {
            pthread_cond_wait(&w.cond, &w.lock);
        }
        pthread_mutex_unlock(&w.lock);
        rc = w.rc ? sprig__err_load(w.rc, &w.err) : 0;
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return rc;
}

/* ---- applied indexes and the floor ----------------------------------------
 */

/* The u64 under `key` in table `meta` of `env` (0 when absent). */
static int
meta_u64(sprig__env *env, MDB_dbi meta, const char *key, uint64_t *out)
{
    MDB_txn *txn;
    *out = 0;
    int rc = sprig__env_read_begin(env, &txn);
    if (rc) {
        return rc;
    }
    MDB_val k = {strlen(key), (void *)key}, v;
    int mrc = mdb_get(txn, meta, &k, &v);
    if (mrc == 0 && v.mv_size == 8) {
        *out = sprig__get_u64be(v.mv_data);
    } else if (mrc == 0) {
        rc = sprig__err(SPRIG_ECORRUPT, "meta '%s' has %zu bytes", key,
                        v.mv_size);
    } else if (mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading a Raft index");
    }
    sprig__env_read_end(env, txn);
    return rc;
}

int
sprig__storage_raft_applied(sprig_storage *s, const char *db, uint64_t *out)
{
    sprig__lstorage *st = lst(s);
    if (!db || !db[0]) {
        return meta_u64(st->admin, st->reg_meta, RAFT_APPLIED_KEY, out);
    }
    sprig__ldb *ldb;
    *out = 0;
    pthread_mutex_lock(&st->lock);
    int rc = sprig__storage_engine(st, db, &ldb);
    rc = rc ? rc : meta_u64(ldb->env, ldb->meta, RAFT_APPLIED_KEY, out);
    pthread_mutex_unlock(&st->lock);
    return rc == SPRIG_ENOTFOUND ? SPRIG_OK : rc;
}

int
sprig__storage_raft_applied_max(sprig_storage *s, uint64_t *out)
{
    sprig_database_list *l;
    int rc = sprig__storage_raft_applied(s, "", out);
    rc = rc ? rc : sprig_storage_list_databases(s, &l);
    if (rc) {
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < sprig_database_list_count(l); i++) {
        uint64_t a = 0;
        rc = sprig__storage_raft_applied(s, sprig_database_list_name(l, i), &a);
        *out = a > *out ? a : *out;
    }
    sprig_database_list_free(l);
    return rc;
}

int
sprig__storage_raft_floor(sprig_storage *s, uint64_t *out)
{
    sprig__lstorage *st = lst(s);
    return meta_u64(st->admin, st->reg_meta, RAFT_FLOOR_KEY, out);
}

typedef struct floor_arg {
    sprig__lstorage *st;
    uint64_t floor;
} floor_arg;

static int
floor_apply(MDB_txn *txn, void *arg)
{
    floor_arg *f = arg;
    uint8_t vb[8];
    sprig__put_u64be(vb, f->floor);
    MDB_val k = {sizeof RAFT_FLOOR_KEY - 1, RAFT_FLOOR_KEY}, v = {8, vb};
    return sprig__mdb_err(mdb_put(txn, f->st->reg_meta, &k, &v, 0),
                          "recording the Raft floor");
}

int
sprig__storage_raft_set_floor(sprig_storage *s, uint64_t floor)
{
    sprig__lstorage *st = lst(s);
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; rc == 0 && i < st->n_open; i++) {
        rc = sprig__ckpt_flush(st->open[i]->env);
    }
    pthread_mutex_unlock(&st->lock);
    floor_arg f = {st, floor};
    sprig__wreq req = {.apply = floor_apply, .arg = &f};
    /* `_admin` keeps LMDB's own syncs: durable once answered */
    return rc ? rc : sprig__writer_submit(&st->admin_w, &req);
}

/* ---- the snapshot copy ----------------------------------------------------
 */

static int
mk(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return sprig__err(SPRIG_EIO, "cannot create '%s': %s", dir,
                          strerror(errno));
    }
    return SPRIG_OK;
}

/* A compacted copy of `env` into `<dir>/data.mdb` (dir created). */
static int
copy_env(sprig__env *env, const char *dir)
{
    int rc = mk(dir);
    if (rc) {
        return rc;
    }
    pthread_rwlock_rdlock(&env->map_lock);
    int mrc = mdb_env_copy2(env->env, dir, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&env->map_lock);
    return mrc ? sprig__mdb_err(mrc, "copying an environment") : SPRIG_OK;
}

static int
copy_db(sprig__lstorage *st, const char *name, const char *dest)
{
    sprig__ldb *ldb;
    char dir[4096];
    pthread_mutex_lock(&st->lock);
    int rc = sprig__storage_engine(st, name, &ldb);
    if (rc == 0) {
        const char *base = strrchr(ldb->dir, '/');
        snprintf(dir, sizeof dir, "%s/db/%s", dest, base ? base + 1 : ldb->dir);
        rc = copy_env(ldb->env, dir);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* The vault's fingerprint as 32 hex digits in *hex (""): no vault. */
static void
vault_id(sprig__lstorage *st, char hex[33])
{
    pthread_mutex_lock(&st->lock);
    sprig__vault *v = st->vault;
    pthread_mutex_unlock(&st->lock);
    hex[0] = 0;
    if (v) {
        uint8_t fp[16];
        sprig__vault_fingerprint(v, fp);
        sodium_bin2hex(hex, 33, fp, 16);
    }
}

/* An encrypted storage's copy says which vault sealed it: SNAP_VAULT_ID. */
static int
put_vault_id(sprig__lstorage *st, const char *dest)
{
    char hex[33], path[4096];
    vault_id(st, hex);
    if (!hex[0]) {
        return SPRIG_OK;
    }
    snprintf(path, sizeof path, "%s/%s", dest, SNAP_VAULT_ID);
    FILE *f = fopen(path, "wx");
    bool ok = f && fputs(hex, f) >= 0;
    ok = f && fclose(f) == 0 && ok;
    return ok ? SPRIG_OK
              : sprig__err(SPRIG_EIO, "cannot write '%s': %s", path,
                           strerror(errno));
}

int
sprig__storage_vault_check(sprig_storage *s, const char *src)
{
    sprig__lstorage *st = lst(s);
    char path[4096], theirs[64] = "", mine[33];
    snprintf(path, sizeof path, "%s/%s", src, SNAP_VAULT_ID);
    FILE *f = fopen(path, "r");
    if (!f) {
        return SPRIG_OK; /* a copy of an unencrypted storage */
    }
    bool read = fgets(theirs, sizeof theirs, f) != NULL;
    fclose(f);
    vault_id(st, mine);
    if (read && strcmp(theirs, mine) == 0) {
        return SPRIG_OK;
    }
    return sprig__err(SPRIG_EAUTH,
                      "the snapshot was sealed under vault %.32s and this "
                      "node %s%s: every node of an encrypted cluster needs "
                      "the same vault (copy <storage>/vault and its key to "
                      "each node before its first start; docs/cluster.md)",
                      read ? theirs : "(unreadable)",
                      mine[0] ? "has vault " : "has no vault", mine);
}

int
sprig__storage_snapshot(sprig_storage *s, const char *dest)
{
    sprig__lstorage *st = lst(s);
    char dir[4096];
    sprig_database_list *l = NULL;
    snprintf(dir, sizeof dir, "%s/db", dest);
    int rc = mk(dest);
    rc = rc ? rc : mk(dir);
    rc = rc ? rc : put_vault_id(st, dest);
    snprintf(dir, sizeof dir, "%s/_admin", dest);
    rc = rc ? rc : copy_env(st->admin, dir);
    rc = rc ? rc : sprig_storage_list_databases(s, &l);
    for (size_t i = 0; rc == 0 && i < sprig_database_list_count(l); i++) {
        rc = copy_db(st, sprig_database_list_name(l, i), dest);
    }
    sprig_database_list_free(l);
    return rc;
}

int
sprig__repl_rmtree(const char *dir)
{
    struct stat sb;
    return lstat(dir, &sb) != 0 ? SPRIG_OK : sprig__rmdir_tree(dir);
}
