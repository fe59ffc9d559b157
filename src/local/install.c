/*
 * install.c -- installing a copy of a whole storage (a Raft snapshot, made
 * by sprig__storage_snapshot) into an open storage, in place (repl.h).
 *
 * Nothing is closed.  Every environment the storage has open keeps its
 * sprig__env, its writer, its tables and its handles; the copy's contents
 * replace theirs in one write transaction through the environment's own
 * writer, so readers see either the old state or the new one (LMDB's MVCC
 * is the fence: a read in flight keeps its snapshot, the next read sees the
 * copy) and no write interleaves.  Databases the storage has not open get
 * the copy's directory moved in; `_admin` goes last (its registry decides
 * which databases exist), then sprig__storage_reload() reconciles the
 * engines: databases that vanished are dropped (their handles answer
 * SPRIG_ENOTFOUND "database 'x' was deleted"), new ones open on demand.
 *
 * Node-local meta keys are not copied: "wal.lsn" (the position of this
 * environment's command log, ckpt.c) and "raft.floor" (repl.h).
 */
#include "kv.h"
#include "local.h"
#include "repl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#define INSTALL_MAXDBS 1024

/* ---- copying the tables of one environment ------------------------------ */

typedef struct inst_copy {
    MDB_txn *src; /* a read transaction on the copy's environment */
    char **names; /* the copy's tables */
    size_t n;
} inst_copy;

/* Is `k` of table `table` node-local state (kept, never copied)? */
static bool
local_key(const char *table, const MDB_val *k)
{
    static const char *const keys[] = {"wal.lsn", "raft.floor"};
    if (strcmp(table, "meta") != 0) {
        return false;
    }
    if (k->mv_size > 6 && memcmp(k->mv_data, "table:", 6) == 0) {
        return true; /* the tables this node created (env.c): its own */
    }
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        if (k->mv_size == strlen(keys[i]) &&
            memcmp(k->mv_data, keys[i], k->mv_size) == 0) {
            return true;
        }
    }
    return false;
}

/* The names of the tables of `txn`'s environment (its main table's keys). */
static int
table_names(MDB_txn *txn, char ***out, size_t *n)
{
    MDB_dbi main_dbi;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    *out = NULL;
    *n = 0;
    int mrc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    mrc = mrc ? mrc : mdb_cursor_open(txn, main_dbi, &cur);
    int rc = 0;
    while (mrc == 0 && rc == 0 &&
           (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        char **p = sprig__realloc(*out, (*n + 1) * sizeof *p);
        char *s = p ? sprig__malloc(k.mv_size + 1) : NULL;
        *out = p ? p : *out;
        if (!s) {
            rc = sprig__err(SPRIG_ENOMEM, "out of memory listing tables");
            break;
        }
        memcpy(s, k.mv_data, k.mv_size);
        s[k.mv_size] = 0;
        (*out)[(*n)++] = s;
    }
    if (cur) {
        mdb_cursor_close(cur);
    }
    return rc ? rc
           : mrc && mrc != MDB_NOTFOUND
               ? sprig__mdb_err(mrc, "listing the tables of a copy")
               : SPRIG_OK;
}

static void
names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sprig__free(names[i]);
    }
    sprig__free(names);
}

static bool
has_name(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Open table `name` of `txn` as it is (view entries are DUPSORT). */
static int
open_existing(MDB_txn *txn, const char *name, MDB_dbi *dbi)
{
    int mrc = mdb_dbi_open(txn, name, 0, dbi);
    return mrc == MDB_INCOMPATIBLE ? mdb_dbi_open(txn, name, MDB_DUPSORT, dbi)
                                   : mrc;
}

/* Empty table `name` of `txn` but for its node-local keys. */
static int
empty_table(MDB_txn *txn, MDB_dbi d, const char *name)
{
    if (strcmp(name, "meta") != 0) {
        return mdb_drop(txn, d, 0);
    }
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, d, &cur);
    while (mrc == 0 && (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        mrc = local_key(name, &k) ? 0 : mdb_cursor_del(cur, 0);
    }
    if (mrc == 0 || mrc == MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return 0;
    }
    return mrc;
}

/* Replace table `name` of `txn` by the copy's. */
static int
copy_table(inst_copy *c, MDB_txn *txn, const char *name)
{
    MDB_dbi s, d;
    unsigned flags = 0;
    MDB_cursor *sc = NULL, *dc = NULL;
    MDB_val k, v;
    int mrc = open_existing(c->src, name, &s);
    mrc = mrc ? mrc : mdb_dbi_flags(c->src, s, &flags);
    mrc = mrc ? mrc : mdb_dbi_open(txn, name, flags | MDB_CREATE, &d);
    mrc = mrc ? mrc : empty_table(txn, d, name);
    mrc = mrc ? mrc : mdb_cursor_open(c->src, s, &sc);
    mrc = mrc ? mrc : mdb_cursor_open(txn, d, &dc);
    /* appending in key order, except where node-local keys stay */
    unsigned put =
        (flags & MDB_DUPSORT) || strcmp(name, "meta") == 0 ? 0 : MDB_APPEND;
    while (mrc == 0 && (mrc = mdb_cursor_get(sc, &k, &v, MDB_NEXT)) == 0) {
        mrc = local_key(name, &k) ? 0 : mdb_cursor_put(dc, &k, &v, put);
    }
    if (dc) {
        mdb_cursor_close(dc);
    }
    if (sc) {
        mdb_cursor_close(sc);
    }
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* The writer request: every table of the environment becomes the copy's
 * (tables the copy lacks are emptied).  May run again (map growth). */
static int
copy_apply(MDB_txn *txn, void *arg)
{
    inst_copy *c = arg;
    char **mine = NULL;
    size_t n = 0;
    int rc = table_names(txn, &mine, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        MDB_dbi d;
        if (has_name(c->names, c->n, mine[i])) {
            continue;
        }
        int mrc = open_existing(txn, mine[i], &d);
        mrc = mrc ? mrc : empty_table(txn, d, mine[i]);
        rc = mrc ? sprig__mdb_err(mrc, "emptying a table") : 0;
    }
    names_free(mine, n);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        int mrc = copy_table(c, txn, c->names[i]);
        rc = mrc == MDB_MAP_FULL ? SPRIG__EMAPFULL
             : mrc               ? sprig__mdb_err(mrc, "installing a table")
                                 : 0;
    }
    return rc;
}

/* Replace the contents of `env` (written by `w`) by those of the
 * environment in directory `src_dir`. */
static int
install_env(sprig__env *env, sprig__writer *w, const char *src_dir)
{
    MDB_env *se = NULL;
    inst_copy c = {0};
    int mrc = mdb_env_create(&se);
    mrc = mrc ? mrc : mdb_env_set_maxdbs(se, INSTALL_MAXDBS);
    mrc = mrc ? mrc
              : mdb_env_open(se, src_dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS,
                             0644);
    mrc = mrc ? mrc : mdb_txn_begin(se, NULL, MDB_RDONLY, &c.src);
    int rc = mrc ? sprig__mdb_err(mrc, "opening a storage copy") : 0;
    rc = rc ? rc : table_names(c.src, &c.names, &c.n);
    sprig__wreq req = {.apply = copy_apply, .arg = &c};
    rc = rc ? rc : sprig__writer_submit(w, &req);
    if (rc == 0) {
        /* tables may have been created: reads renew to see them */
        pthread_rwlock_rdlock(&env->map_lock);
        sprig__env_tables_opened(env);
        pthread_rwlock_unlock(&env->map_lock);
        rc = sprig__ckpt_now(env); /* the copy was not logged: make it
                                      durable now */
    }
    names_free(c.names, c.n);
    if (c.src) {
        mdb_txn_abort(c.src);
    }
    if (se) {
        mdb_env_close(se);
    }
    return rc;
}

/* ---- the databases --------------------------------------------------------
 */

/* The open engine living in directory `dir_name`, or NULL (lock held). */
static sprig__ldb *
open_at(sprig__lstorage *st, const char *dir_name)
{
    for (size_t i = 0; i < st->n_open; i++) {
        if (strcmp(st->open[i]->dir_name, dir_name) == 0) {
            return st->open[i];
        }
    }
    return NULL;
}

static int
io_err(const char *what, const char *path)
{
    return sprig__err(SPRIG_EIO, "%s '%s': %s", what, path, strerror(errno));
}

/* Install database directory `name` of the copy `src` (`<src>/db/name`):
 * into its open engine, or by moving the directory in. */
static int
install_db(sprig__lstorage *st, const char *src, const char *name)
{
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/db/%s", src, name);
    snprintf(to, sizeof to, "%s/db/%s", st->path, name);
    pthread_mutex_lock(&st->lock);
    sprig__ldb *ldb = open_at(st, name);
    int rc = 0;
    if (ldb) { /* kept open while its contents are replaced */
        ldb->refs++;
        st->handles++;
    } else { /* nobody can open it while the lock is held */
        rc = sprig__repl_rmtree(to);
        rc = rc || rename(from, to) == 0 ? rc : io_err("cannot move in", from);
    }
    pthread_mutex_unlock(&st->lock);
    if (ldb) {
        rc = install_env(ldb->env, &ldb->writer, from);
        if (rc == 0) {
            sprig__kv_expiry_scan(ldb->kv); /* expiries the copy holds */
        }
        sprig__storage_release(st, ldb, false);
    }
    return rc;
}

/* Directory names under `dir` (not starting with '.'). */
static int
list_dir(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return errno == ENOENT ? SPRIG_OK : io_err("cannot list", dir);
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char **p = sprig__realloc(*out, (*n + 1) * sizeof *p);
        *out = p ? p : *out;
        char *s = p ? sprig__strdup(de->d_name) : NULL;
        if (!s) {
            rc = sprig__err(SPRIG_ENOMEM, "out of memory listing '%s'", dir);
        } else {
            (*out)[(*n)++] = s;
        }
    }
    closedir(d);
    return rc;
}

/* Remove the database directories of the storage that the copy does not
 * have and no open engine uses (deleted since).  Before the reload, so the
 * engines it is about to drop still count as open: they remove their own
 * files at their last close.  Lock held. */
static void
remove_stale(sprig__lstorage *st, char *const *keep, size_t n_keep)
{
    char dir[4096], **mine = NULL;
    size_t n = 0;
    snprintf(dir, sizeof dir, "%s/db", st->path);
    if (list_dir(dir, &mine, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (!has_name(keep, n_keep, mine[i]) && !open_at(st, mine[i])) {
                char p[8192];
                snprintf(p, sizeof p, "%s/%s", dir, mine[i]);
                sprig__rmdir_tree(p);
            }
        }
    }
    names_free(mine, n);
}

int
sprig__storage_install(sprig_storage *s, const char *src)
{
    sprig__lstorage *st = (sprig__lstorage *)s;
    char dir[4096], **dbs = NULL;
    size_t n = 0;
    snprintf(dir, sizeof dir, "%s/db", src);
    int rc = sprig__storage_vault_check(s, src);
    rc = rc ? rc : list_dir(dir, &dbs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = install_db(st, src, dbs[i]);
    }
    snprintf(dir, sizeof dir, "%s/_admin", src);
    if (rc == 0) {
        /* admin writes are serialised by the storage lock */
        pthread_mutex_lock(&st->lock);
        rc = install_env(st->admin, &st->admin_w, dir);
        if (rc == 0) {
            remove_stale(st, dbs, n);
        }
        rc = rc ? rc : sprig__storage_reload(st);
        pthread_mutex_unlock(&st->lock);
    }
    names_free(dbs, n);
    return rc;
}
