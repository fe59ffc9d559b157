/*
 * backup.c -- online backup, restore and in-place compaction of a local
 * storage (sprig_storage_backup, _restore, _compact in sprig.h).
 *
 * A backup directory holds one compacting LMDB copy per database
 * (`<name>.mdb`) and `manifest.json`, written last: the format and its
 * version, the schemas (each the record `_admin` keeps, base64), and per
 * database its schema, file, size, CRC-32C and last transaction id.
 *
 * One moment for every database.  Under the storage lock (the registry
 * cannot change) every database's writer is held (sprig__writer_pause:
 * the batch being led finishes, new requests queue); then each database's
 * copy -- mdb_env_copyfd2(MDB_CP_COMPACT) in a thread of its own, writing
 * into a pipe -- is started.  A copy's first byte comes only after it
 * began its read transaction, so once every pipe has given a byte (or
 * ended) every snapshot is taken, all at one state of the storage, and the
 * writers go on while this thread drains the pipes into the files,
 * checksumming as it goes.  Each copy runs with its env's map lock held
 * shared (LMDB may not resize a map under a transaction), so a write that
 * must grow that map waits for the copy's end.
 *
 * Restore goes into a storage with no database: the schemas are
 * registered by SCHEMA commands, and each database is created by a
 * CREATE_DB command whose new directory is filled with the copy (checked
 * against the manifest while copied) before the engine opens it -- the
 * same order as any create, so a crash before its registration leaves an
 * orphan the next open removes, and nothing registered is ever lost.
 *
 * Compaction closes the engine of an idle database (clean shutdown: the
 * log is covered by the last checkpoint), copies it compacted next to its
 * file, drops the saved checkpoint (wal/meta, which describes pages of the
 * old file) and renames the copy over the file, syncing the directory at
 * each step; it reopens on next use.
 */
#include "core/cmd.h"
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST "manifest.json"
#define MANIFEST_FORMAT "sprig-backup"
#define MANIFEST_VERSION 1
#define CHUNK (1u << 20)
#define PROGRESS_BYTES (8u << 20)

/* ---- small file helpers --------------------------------------------------
 */

static int
io_err(const char *what, const char *path, int err)
{
    return sprig__err(err == ENOSPC ? SPRIG_EFULL : SPRIG_EIO, "%s '%s': %s",
                      what, path, strerror(err));
}

/* Make `dir` (it must not exist, or be empty).  *made: we created it. */
int
sprig__bk_new_dir(const char *dir, bool *made)
{
    *made = mkdir(dir, 0755) == 0;
    if (*made) {
        return SPRIG_OK;
    }
    if (errno != EEXIST) {
        return io_err("cannot create", dir, errno);
    }
    DIR *d = opendir(dir);
    if (!d) {
        return io_err("cannot open", dir, errno);
    }
    struct dirent *de;
    bool empty = true;
    while (empty && (de = readdir(d))) {
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    }
    closedir(d);
    return empty ? SPRIG_OK
                 : sprig__err(SPRIG_EEXIST, "'%s' is not empty", dir);
}

static int
write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return w < 0 ? errno : EIO;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void
report(sprig_progress_fn cb, void *udata, sprig_progress *p, bool done)
{
    p->done = done;
    if (cb) {
        cb(udata, p);
    }
}

/* ---- the state of a backup ------------------------------------------------
 */

typedef struct bk_db {
    char name[SPRIG_NAME_MAX + 1];
    char schema[SPRIG_NAME_MAX + 1];
    sprig__ldb *ldb; /* a reference taken */
    uint64_t last_txn;
    int pfd[2];
    int wfd; /* the pipe's write end, the copy thread's own once started */
    int out;
    char path[4200];
    pthread_t thr;
    bool thr_on, started, eof, map_locked;
    int copy_rc;
    uint64_t bytes;
    uint32_t crc;
} bk_db;

typedef struct bk_schema {
    char name[SPRIG_NAME_MAX + 1];
    sprig_bytes rec; /* owned copy */
} bk_schema;

typedef struct bk {
    sprig__lstorage *st;
    const char *dir;
    bk_db *dbs;
    size_t n, cap;
    bk_schema *schemas;
    size_t n_schemas;
    bool locked, paused;
    sprig_progress prog;
    sprig_progress_fn cb;
    void *udata;
} bk;

static int
bk_add_db(bk *b, const MDB_val *k, const MDB_val *v)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        bk_db *p = sprig__realloc(b->dbs, cap * sizeof *p);
        if (!p) {
            return sprig__err(SPRIG_ENOMEM, "out of memory in a backup");
        }
        b->dbs = p;
        b->cap = cap;
    }
    bk_db *d = &b->dbs[b->n];
    memset(d, 0, sizeof *d);
    d->pfd[0] = d->pfd[1] = d->out = -1;
    size_t n = k->mv_size > SPRIG_NAME_MAX ? SPRIG_NAME_MAX : k->mv_size;
    memcpy(d->name, k->mv_data, n);
    sprig__reg_entry e;
    int rc = sprig__reg_decode(d->name, v, &e);
    if (rc == 0) {
        snprintf(d->schema, sizeof d->schema, "%s", e.schema);
        b->n++;
    }
    return rc;
}

static int
bk_add_schema(bk *b, const MDB_val *k, const MDB_val *v)
{
    bk_schema *p = sprig__realloc(b->schemas, (b->n_schemas + 1) * sizeof *p);
    uint8_t *rec = p ? sprig__malloc(v->mv_size ? v->mv_size : 1) : NULL;
    if (p) {
        b->schemas = p;
    }
    if (!rec) {
        return sprig__err(SPRIG_ENOMEM, "out of memory in a backup");
    }
    bk_schema *s = &b->schemas[b->n_schemas++];
    size_t n = k->mv_size > SPRIG_NAME_MAX ? SPRIG_NAME_MAX : k->mv_size;
    memset(s->name, 0, sizeof s->name);
    memcpy(s->name, k->mv_data, n);
    memcpy(rec, v->mv_data, v->mv_size);
    s->rec = (sprig_bytes){rec, v->mv_size};
    return SPRIG_OK;
}

/* Every entry of table `dbi` through `add`. */
static int
scan_table(bk *b, MDB_txn *txn, MDB_dbi dbi,
           int (*add)(bk *, const MDB_val *, const MDB_val *))
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "reading the registry");
    }
    int rc = 0;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        rc = add(b, &k, &v);
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading the registry");
    }
    return rc;
}

/* The registry and the schemas, from one snapshot of `_admin` (the
 * storage lock held: it cannot change until released). */
static int
read_registry(bk *b)
{
    MDB_txn *txn;
    int rc = sprig__env_read_begin(b->st->admin, &txn);
    if (rc) {
        return rc;
    }
    rc = scan_table(b, txn, b->st->reg_dbs, bk_add_db);
    rc = rc ? rc : scan_table(b, txn, b->st->reg_schemas, bk_add_schema);
    sprig__env_read_end(b->st->admin, txn);
    return rc;
}

/* Open every database's engine and take a reference on it (lock held). */
static int
take_engines(bk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        bk_db *d = &b->dbs[i];
        int rc = sprig__storage_engine(b->st, d->name, &d->ldb);
        if (rc) {
            d->ldb = NULL;
            return rc;
        }
        d->ldb->refs++;
        b->st->handles++;
        MDB_envinfo info;
        MDB_stat stat;
        if (mdb_env_info(d->ldb->env->env, &info) == 0 &&
            mdb_env_stat(d->ldb->env->env, &stat) == 0) {
            b->prog.bytes_total +=
                (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
        }
    }
    return SPRIG_OK;
}

static int
open_outputs(bk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        bk_db *d = &b->dbs[i];
        snprintf(d->path, sizeof d->path, "%s/%s.mdb", b->dir, d->name);
        d->out = open(d->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (d->out < 0) {
            return io_err("cannot create", d->path, errno);
        }
        if (pipe2(d->pfd, O_CLOEXEC) != 0) {
            d->pfd[0] = d->pfd[1] = -1;
            return io_err("cannot make a pipe for", d->path, errno);
        }
        /* room for a whole write of LMDB's copy (1 MiB), so the copy and
         * this thread take turns less often (fails harmlessly past the
         * system's limit) */
        (void)fcntl(d->pfd[1], F_SETPIPE_SZ, (int)CHUNK);
    }
    return SPRIG_OK;
}

/* ---- the copies -----------------------------------------------------------
 */

static void *
copy_main(void *arg)
{
    bk_db *d = arg;
    /* LMDB's copy thread blocks SIGPIPE itself; the pipe is always read
     * to its end anyway */
    d->copy_rc = mdb_env_copyfd2(d->ldb->env->env, d->wfd, MDB_CP_COMPACT);
    close(d->wfd);
    return NULL;
}

static void
pause_all(bk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        sprig__writer_pause(&b->dbs[i].ldb->writer);
    }
    b->paused = true;
}

static void
resume_all(bk *b)
{
    if (b->paused) {
        for (size_t i = 0; i < b->n; i++) {
            sprig__writer_resume(&b->dbs[i].ldb->writer);
        }
        b->paused = false;
    }
    if (b->locked) {
        pthread_mutex_unlock(&b->st->lock);
        b->locked = false;
    }
}

/* With the writers held: note each database's last transaction id (the
 * snapshot its copy will see) and start its copy. */
static int
start_copies(bk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        bk_db *d = &b->dbs[i];
        sprig__env *e = d->ldb->env;
        MDB_txn *txn;
        int rc = sprig__env_read_begin(e, &txn);
        if (rc) {
            return rc;
        }
        rc = sprig__last_txn_id(txn, d->ldb, &d->last_txn);
        sprig__env_read_end(e, txn);
        if (rc) {
            return rc;
        }
        pthread_rwlock_rdlock(&e->map_lock);
        d->map_locked = true;
        d->wfd = d->pfd[1];
        d->pfd[1] = -1; /* the thread closes it */
        if (pthread_create(&d->thr, NULL, copy_main, d) != 0) {
            d->pfd[1] = d->wfd;
            return sprig__err(SPRIG_ENOMEM, "cannot start a copy thread");
        }
        d->thr_on = true;
    }
    return SPRIG_OK;
}

/* A copy's pipe ended: join its thread, let its map grow again. */
static int
finish_copy(bk_db *d)
{
    close(d->pfd[0]);
    d->pfd[0] = -1;
    d->eof = d->started = true;
    pthread_join(d->thr, NULL);
    d->thr_on = false;
    pthread_rwlock_unlock(&d->ldb->env->map_lock);
    d->map_locked = false;
    if (d->copy_rc) {
        return sprig__mdb_err(d->copy_rc, "copying a database");
    }
    return SPRIG_OK;
}

/* Read what pipe `d` has into its file.  A write error is kept (the pipe
 * is still read to its end, so the copy thread never blocks). */
static int
pump(bk *b, bk_db *d, uint8_t *buf, int *werr)
{
    ssize_t r = read(d->pfd[0], buf, CHUNK);
    if (r < 0) {
        return errno == EINTR || errno == EAGAIN
                   ? 0
                   : io_err("cannot read the copy of", d->name, errno);
    }
    if (r == 0) {
        b->prog.items++;
        b->prog.item = d->name;
        return finish_copy(d);
    }
    d->started = true;
    d->crc = sprig__crc32c_update(d->crc, buf, (size_t)r);
    d->bytes += (uint64_t)r;
    b->prog.bytes += (uint64_t)r;
    if (!*werr) {
        *werr = write_all(d->out, buf, (size_t)r);
    }
    return 0;
}

static bool
all_started(const bk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (!b->dbs[i].started) {
            return false;
        }
    }
    return true;
}

/* Poll the pipes until every copy ended; once every copy has begun its
 * snapshot, the writers go on. */
static int
drain(bk *b)
{
    struct pollfd *pf = sprig__calloc(b->n + 1, sizeof *pf);
    size_t *idx = sprig__calloc(b->n + 1, sizeof *idx);
    uint8_t *buf = sprig__malloc(CHUNK);
    int rc = pf && idx && buf ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    int werr = 0;
    uint64_t told = 0;
    for (;;) {
        if (b->paused && all_started(b)) {
            resume_all(b);
        }
        size_t k = 0;
        for (size_t i = 0; i < b->n; i++) {
            if (!b->dbs[i].eof) {
                pf[k] = (struct pollfd){b->dbs[i].pfd[0], POLLIN, 0};
                idx[k++] = i;
            }
        }
        if (k == 0 || (rc && !b->n)) {
            break;
        }
        if (poll(pf, k, -1) < 0 && errno != EINTR) {
            rc = rc ? rc : io_err("cannot poll the copies of", b->dir, errno);
            break;
        }
        for (size_t j = 0; j < k; j++) {
            if (pf[j].revents) {
                int r = pump(b, &b->dbs[idx[j]], buf, &werr);
                rc = rc ? rc : r;
            }
        }
        if (b->prog.bytes - told >= PROGRESS_BYTES) {
            told = b->prog.bytes;
            report(b->cb, b->udata, &b->prog, false);
        }
    }
    sprig__free(pf);
    sprig__free(idx);
    sprig__free(buf);
    return rc ? rc : werr ? io_err("cannot write in", b->dir, werr) : 0;
}

/* ---- the manifest ---------------------------------------------------------
 */

json_t *
sprig__bk_b64(sprig_bytes v)
{
    size_t n = sodium_base64_encoded_len(v.len, sodium_base64_VARIANT_ORIGINAL);
    char *s = sprig__malloc(n);
    if (!s) {
        return NULL;
    }
    sodium_bin2base64(s, n, v.data, v.len, sodium_base64_VARIANT_ORIGINAL);
    json_t *j = json_string(s);
    sprig__free(s);
    return j;
}

static json_t *
manifest_json(const bk *b)
{
    json_t *m = json_object(), *ss = json_array(), *ds = json_array();
    json_object_set_new(m, "format", json_string(MANIFEST_FORMAT));
    json_object_set_new(m, "version", json_integer(MANIFEST_VERSION));
    json_object_set_new(
        m, "created_ms",
        json_integer((json_int_t)sprig__clock_now(&b->st->opts)));
    for (size_t i = 0; i < b->n_schemas; i++) {
        json_array_append_new(ss, json_pack("{s:s,s:o}", "name",
                                            b->schemas[i].name, "record",
                                            sprig__bk_b64(b->schemas[i].rec)));
    }
    for (size_t i = 0; i < b->n; i++) {
        const bk_db *d = &b->dbs[i];
        char file[SPRIG_NAME_MAX + 8];
        snprintf(file, sizeof file, "%s.mdb", d->name);
        json_array_append_new(
            ds, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "name", d->name,
                          "schema", d->schema, "file", file, "bytes",
                          (json_int_t)d->bytes, "crc32c", (json_int_t)d->crc,
                          "last_txn_id", (json_int_t)d->last_txn));
    }
    json_object_set_new(m, "schemas", ss);
    json_object_set_new(m, "databases", ds);
    return m;
}

int
sprig__bk_unb64(const char *s, const char *what, uint8_t **out, size_t *n)
{
    size_t len = s ? strlen(s) : 0;
    *out = sprig__malloc(len + 1);
    if (!*out) {
        return sprig__err(SPRIG_ENOMEM, "out of memory decoding %s", what);
    }
    if (!s || sodium_base642bin(*out, len + 1, s, len, NULL, n, NULL,
                                sodium_base64_VARIANT_ORIGINAL) != 0) {
        sprig__free(*out);
        *out = NULL;
        return sprig__err(SPRIG_ECORRUPT, "%s is not base64", what);
    }
    return SPRIG_OK;
}

/* Write `j` to `dir`/`name` durably (a temporary name, fsync, rename,
 * directory sync). */
int
sprig__bk_write_json(const char *dir, const char *name, json_t *j)
{
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    if (!text) {
        return sprig__err(SPRIG_ENOMEM, "out of memory writing '%s'", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = fd < 0 ? errno : write_all(fd, text, strlen(text));
    err = err ? err : fsync(fd) ? errno : 0;
    if (fd >= 0) {
        close(fd);
    }
    free(text);
    err = err ? err : rename(tmp, path) ? errno : 0;
    err = err ? err : sprig__sync_dir(dir);
    return err ? io_err("cannot write", path, err) : SPRIG_OK;
}

/* ---- backup ---------------------------------------------------------------
 */

static int
sync_outputs(bk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        bk_db *d = &b->dbs[i];
        int err = fsync(d->out) ? errno : 0;
        close(d->out);
        d->out = -1;
        if (err) {
            return io_err("cannot sync", d->path, err);
        }
    }
    return SPRIG_OK;
}

/* Undo what is left: threads, locks, references, files of a failure. */
static void
bk_cleanup(bk *b, int rc, bool made)
{
    resume_all(b);
    for (size_t i = 0; i < b->n; i++) {
        bk_db *d = &b->dbs[i];
        if (d->thr_on) { /* read the pipe to its end: the copy ends */
            uint8_t buf[4096];
            while (read(d->pfd[0], buf, sizeof buf) > 0) {
            }
            finish_copy(d);
        }
        if (d->map_locked) {
            pthread_rwlock_unlock(&d->ldb->env->map_lock);
        }
        for (int k = 0; k < 2; k++) {
            if (d->pfd[k] >= 0) {
                close(d->pfd[k]);
            }
        }
        if (d->out >= 0) {
            close(d->out);
        }
        if (rc && d->path[0]) {
            unlink(d->path);
        }
        if (d->ldb) {
            sprig__storage_release(b->st, d->ldb, false);
        }
    }
    if (rc && made) {
        rmdir(b->dir);
    }
    for (size_t i = 0; i < b->n_schemas; i++) {
        sprig__free((void *)b->schemas[i].rec.data);
    }
    sprig__free(b->schemas);
    sprig__free(b->dbs);
}

static int
backup(sprig__lstorage *st, const char *dir, sprig_progress_fn cb, void *udata)
{
    bk b = {.st = st, .dir = dir, .cb = cb, .udata = udata};
    b.prog.what = "backup";
    bool made = false;
    int rc = sprig__bk_new_dir(dir, &made);
    if (rc) {
        return rc;
    }
    pthread_mutex_lock(&st->lock);
    b.locked = true;
    rc = st->closing ? sprig__err(SPRIG_ECLOSED, "storage is closed") : 0;
    rc = rc ? rc : read_registry(&b);
    rc = rc ? rc : take_engines(&b);
    b.prog.items_total = b.n;
    rc = rc ? rc : open_outputs(&b);
    if (rc == 0) {
        pause_all(&b);
        rc = start_copies(&b);
    }
    rc = rc ? rc : drain(&b);
    rc = rc ? rc : sync_outputs(&b);
    if (rc == 0) {
        json_t *m = manifest_json(&b);
        rc = sprig__bk_write_json(dir, MANIFEST, m);
        json_decref(m);
    }
    bk_cleanup(&b, rc, made);
    if (rc == 0) {
        report(cb, udata, &b.prog, true);
    }
    return rc;
}

/* ---- the manifest, read back ----------------------------------------------
 */

typedef struct mf_db {
    const char *name, *schema, *file;
    uint64_t bytes, crc, last_txn;
} mf_db;

/* A file name of the backup's own directory: not empty, not "." or "..",
 * no '/' (found by fuzz_manifest: "", "." and ".." named a directory). */
static bool
plain_file(const char *f)
{
    return *f && strcmp(f, ".") != 0 && strcmp(f, "..") != 0 && !strchr(f, '/');
}

/* Check the manifest's shape and fill `dbs` (pointing into `m`). */
static int
manifest_check(json_t *m, const char *path, mf_db **dbs, size_t *n)
{
    const char *fmt = NULL;
    json_int_t ver = 0;
    json_t *ss = NULL, *ds = NULL;
    if (json_unpack(m, "{s:s,s:I,s:o,s:o}", "format", &fmt, "version", &ver,
                    "schemas", &ss, "databases", &ds) != 0 ||
        strcmp(fmt, MANIFEST_FORMAT) != 0 || !json_is_array(ss) ||
        !json_is_array(ds)) {
        return sprig__err(SPRIG_ECORRUPT, "'%s' is not a Sprig backup manifest",
                          path);
    }
    if (ver != MANIFEST_VERSION) {
        return sprig__err(SPRIG_ECORRUPT,
                          "'%s' is a backup of format version %lld; this "
                          "version of Sprig reads version %d",
                          path, (long long)ver, MANIFEST_VERSION);
    }
    *n = json_array_size(ds);
    *dbs = sprig__calloc(*n + 1, sizeof **dbs);
    if (!*dbs) {
        return sprig__err(SPRIG_ENOMEM, "out of memory reading '%s'", path);
    }
    for (size_t i = 0; i < *n; i++) {
        mf_db *d = &(*dbs)[i];
        json_int_t by, crc, last;
        if (json_unpack(json_array_get(ds, i), "{s:s,s:s,s:s,s:I,s:I,s:I}",
                        "name", &d->name, "schema", &d->schema, "file",
                        &d->file, "bytes", &by, "crc32c", &crc, "last_txn_id",
                        &last) != 0 ||
            sprig__check_db_name(d->name) != 0 || !plain_file(d->file) ||
            by < 0 || crc < 0 || crc > UINT32_MAX || last < 0) {
            return sprig__err(SPRIG_ECORRUPT,
                              "'%s': database entry %zu is malformed", path, i);
        }
        for (size_t j = 0; j < i; j++) { /* found by fuzz_manifest */
            if (strcmp((*dbs)[j].name, d->name) == 0) {
                return sprig__err(SPRIG_ECORRUPT,
                                  "'%s': database '%s' is listed twice", path,
                                  d->name);
            }
        }
        d->bytes = (uint64_t)by;
        d->crc = (uint64_t)crc;
        d->last_txn = (uint64_t)last;
    }
    return SPRIG_OK;
}

static int
manifest_load(const char *dir, json_t **m, mf_db **dbs, size_t *n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, MANIFEST);
    json_error_t je;
    *m = json_load_file(path, 0, &je);
    if (!*m) {
        return access(path, F_OK) != 0
                   ? sprig__err(SPRIG_ENOTFOUND, "'%s' holds no backup (no %s)",
                                dir, MANIFEST)
                   : sprig__err(SPRIG_ECORRUPT, "'%s': %s (line %d)", path,
                                je.text, je.line);
    }
    return manifest_check(*m, path, dbs, n);
}

/* Register every schema of `ss` (an array of {"record": base64}): the
 * storage lock is taken here, so C views without their code are taken as
 * an open takes them.  For a restore and an import. */
int
sprig__bk_put_schemas(sprig__lstorage *st, json_t *ss)
{
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; rc == 0 && i < json_array_size(ss); i++) {
        const char *rec =
            json_string_value(json_object_get(json_array_get(ss, i), "record"));
        uint8_t *bin;
        size_t n = 0;
        rc = sprig__bk_unb64(rec, "a schema record", &bin, &n);
        rc = rc ? rc : sprig__storage_put_schema(st, (sprig_bytes){bin, n});
        sprig__free(bin);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

typedef struct rs_ctx {
    const char *dir;
    const mf_db *d;
    sprig_progress *prog;
    sprig_progress_fn cb;
    void *udata;
} rs_ctx;

/* Copy `src` to `dst` (new), its CRC and size into *crc / *bytes. */
static int
copy_file(rs_ctx *x, const char *src, const char *dst, uint32_t *crc,
          uint64_t *bytes)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return io_err("cannot open", src, errno);
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    uint8_t *buf = sprig__malloc(CHUNK);
    int err = out < 0 ? errno : buf ? 0 : ENOMEM;
    ssize_t r = 0;
    uint64_t told = x->prog->bytes;
    while (!err && (r = read(in, buf, CHUNK)) > 0) {
        *crc = sprig__crc32c_update(*crc, buf, (size_t)r);
        *bytes += (uint64_t)r;
        x->prog->bytes += (uint64_t)r;
        err = write_all(out, buf, (size_t)r);
        if (x->prog->bytes - told >= PROGRESS_BYTES) {
            told = x->prog->bytes;
            report(x->cb, x->udata, x->prog, false);
        }
    }
    err = err ? err : r < 0 ? errno : fsync(out) ? errno : 0;
    sprig__free(buf);
    close(in);
    if (out >= 0) {
        close(out);
    }
    return err ? io_err("cannot copy to", dst, err) : SPRIG_OK;
}

/* A file the manifest names must be a file of the backup: missing or not
 * a regular file is a damaged backup (found by fuzz_manifest: it was an
 * I/O error naming the destination). */
static int
backup_file(const char *src)
{
    struct stat sb;
    if (stat(src, &sb) != 0) {
        return errno == ENOENT
                   ? sprig__err(SPRIG_ECORRUPT,
                                "'%s', named by the backup's manifest, is "
                                "missing",
                                src)
                   : SPRIG_OK; /* copy_file reports it */
    }
    return S_ISREG(sb.st_mode)
               ? SPRIG_OK
               : sprig__err(SPRIG_ECORRUPT,
                            "'%s', named by the backup's manifest, is not a "
                            "file",
                            src);
}

/* CREATE_DB's fill step: the new directory gets the checked copy. */
static int
fill_restored(const char *dir, void *arg)
{
    rs_ctx *x = arg;
    char src[4200], dst[4200];
    snprintf(src, sizeof src, "%s/%s", x->dir, x->d->file);
    snprintf(dst, sizeof dst, "%s/data.mdb", dir);
    int rc = backup_file(src);
    if (rc) {
        return rc;
    }
    if (mkdir(dir, 0755) != 0) {
        return io_err("cannot create", dir, errno);
    }
    uint32_t crc = 0;
    uint64_t bytes = 0;
    rc = copy_file(x, src, dst, &crc, &bytes);
    if (rc == 0 && (bytes != x->d->bytes || crc != x->d->crc)) {
        rc = sprig__err(SPRIG_ECORRUPT,
                        "'%s' does not match the manifest (%llu bytes, CRC "
                        "%08x; the manifest says %llu bytes, CRC %08x)",
                        src, (unsigned long long)bytes, crc,
                        (unsigned long long)x->d->bytes, (unsigned)x->d->crc);
    }
    int err = rc ? 0 : sprig__sync_dir(dir);
    rc = rc ? rc : err ? io_err("cannot sync", dir, err) : 0;
    if (rc) {
        sprig__rmdir_tree(dir);
    }
    return rc;
}

/* Is the restored database at the manifest's last transaction? */
static int
check_restored(sprig__lstorage *st, const mf_db *d)
{
    sprig__ldb *ldb;
    MDB_txn *txn;
    uint64_t last = 0;
    int rc = sprig__storage_engine(st, d->name, &ldb);
    rc = rc ? rc : sprig__env_read_begin(ldb->env, &txn);
    if (rc == 0) {
        rc = sprig__last_txn_id(txn, ldb, &last);
        sprig__env_read_end(ldb->env, txn);
    }
    if (rc == 0 && last != d->last_txn) {
        rc = sprig__err(SPRIG_ECORRUPT,
                        "restored database '%s' is at transaction %llu; the "
                        "manifest says %llu",
                        d->name, (unsigned long long)last,
                        (unsigned long long)d->last_txn);
    }
    return rc;
}

static int
require_empty(sprig__lstorage *st)
{
    sprig_database_list *l = NULL;
    int rc = st->base.ops->list_databases(&st->base, &l);
    if (rc == 0 && sprig_database_list_count(l) > 0) {
        rc = sprig__err(SPRIG_EEXIST,
                        "a restore needs a storage with no database; this "
                        "one has %zu (first: '%s')",
                        sprig_database_list_count(l),
                        sprig_database_list_name(l, 0));
    }
    sprig_database_list_free(l);
    return rc;
}

static int
restore_dbs(sprig__lstorage *st, const char *dir, const mf_db *dbs, size_t n,
            sprig_progress *prog, sprig_progress_fn cb, void *udata)
{
    for (size_t i = 0; i < n; i++) {
        rs_ctx x = {dir, &dbs[i], prog, cb, udata};
        sprig__cmd c = {.kind = SPRIG__CMD_CREATE_DB};
        c.now_ms = sprig__clock_now(&st->opts);
        c.name = dbs[i].name;
        c.schema_name = dbs[i].schema;
        prog->item = dbs[i].name;
        int rc = sprig__storage_create_at(st, &c, fill_restored, &x);
        rc = rc ? rc : check_restored(st, &dbs[i]);
        if (rc) {
            return rc;
        }
        prog->items++;
        report(cb, udata, prog, false);
    }
    return SPRIG_OK;
}

static int
restore(sprig__lstorage *st, const char *dir, sprig_progress_fn cb, void *udata)
{
    json_t *m = NULL;
    mf_db *dbs = NULL;
    size_t n = 0;
    sprig_progress prog = {.what = "restore"};
    int rc = manifest_load(dir, &m, &dbs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        prog.bytes_total += dbs[i].bytes;
    }
    prog.items_total = n;
    rc = rc ? rc : require_empty(st);
    rc = rc ? rc : sprig__bk_put_schemas(st, json_object_get(m, "schemas"));
    pthread_mutex_lock(&st->lock);
    rc = rc            ? rc
         : st->closing ? sprig__err(SPRIG_ECLOSED, "storage is closed")
                       : require_empty(st);
    rc = rc ? rc : restore_dbs(st, dir, dbs, n, &prog, cb, udata);
    pthread_mutex_unlock(&st->lock);
    sprig__free(dbs);
    json_decref(m);
    if (rc == 0) {
        report(cb, udata, &prog, true);
    }
    return rc;
}

/* ---- compaction -----------------------------------------------------------
 */

/* Close the engine of `name` if it is open and idle (lock held). */
static int
close_idle(sprig__lstorage *st, const char *name)
{
    for (size_t i = 0; i < st->n_open; i++) {
        sprig__ldb *l = st->open[i];
        if (strcmp(l->name, name) != 0) {
            continue;
        }
        if (l->refs > 0) {
            return sprig__err(SPRIG_EBUSY,
                              "database '%s' has %d open handle(s); close "
                              "them to compact it",
                              name, l->refs);
        }
        st->open[i] = st->open[--st->n_open];
        sprig__ldb_free(l); /* a last checkpoint, the clean marker */
        return SPRIG_OK;
    }
    return SPRIG_OK;
}

/* A compacting copy of the (closed) environment in `dir` to `dst`. */
static int
copy_compacted(const char *dir, const char *dst)
{
    MDB_env *env;
    int mrc = mdb_env_create(&env);
    if (mrc) {
        return sprig__mdb_err(mrc, "compacting");
    }
    mdb_env_set_maxdbs(env, 4096);
    mrc = mdb_env_open(env, dir, MDB_RDONLY, 0644);
    int fd =
        mrc ? -1 : open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = mrc      ? sprig__mdb_err(mrc, "opening a database to compact")
             : fd < 0 ? io_err("cannot create", dst, errno)
                      : 0;
    if (rc == 0 && (mrc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT)) != 0) {
        rc = sprig__mdb_err(mrc, "compacting");
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = io_err("cannot sync", dst, errno);
    }
    if (fd >= 0) {
        close(fd);
    }
    mdb_env_close(env);
    return rc;
}

static uint64_t
file_size(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 ? (uint64_t)s.st_size : 0;
}

/* Replace dir/data.mdb by the copy: the saved checkpoint and the copy of
 * the meta page saved at close (pages of the old file) go first, so a crash at
 * any step finds a complete file and a clean marker, never an old meta page to
 * put back into the new file. */
static int
swap_in(const char *dir, const char *copy)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/wal/meta", dir);
    int err = unlink(p) == 0 || errno == ENOENT ? 0 : errno;
    snprintf(p, sizeof p, "%s/wal", dir);
    if (!err && access(p, F_OK) == 0) {
        err = sprig__sync_dir(p);
    }
    /* so does the copy of the meta page a clean close left (env.c) */
    snprintf(p, sizeof p, "%s/closed", dir);
    err = err || unlink(p) == 0 || errno == ENOENT ? err : errno;
    err = err ? err : sprig__sync_dir(dir);
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    err = err ? err : rename(copy, p) ? errno : 0;
    err = err ? err : sprig__sync_dir(dir);
    return err ? io_err("cannot replace", p, err) : SPRIG_OK;
}

static int
compact(sprig__lstorage *st, const char *name, sprig_progress_fn cb,
        void *udata)
{
    sprig_progress prog = {.what = "compact", .item = name, .items_total = 1};
    pthread_mutex_lock(&st->lock);
    sprig__ldb *ldb = NULL;
    int rc = st->closing ? sprig__err(SPRIG_ECLOSED, "storage is closed")
                         : sprig__storage_engine(st, name, &ldb);
    char dir[4200], copy[4300], file[4300];
    if (rc == 0) { /* opened (to resolve and check it), then closed */
        snprintf(dir, sizeof dir, "%s", ldb->dir);
        rc = close_idle(st, name);
    }
    if (rc == 0) {
        snprintf(copy, sizeof copy, "%s/data.mdb.compact", dir);
        snprintf(file, sizeof file, "%s/data.mdb", dir);
        prog.bytes_total = file_size(file);
        report(cb, udata, &prog, false);
        rc = copy_compacted(dir, copy);
        prog.bytes = file_size(copy);
        rc = rc ? rc : swap_in(dir, copy);
        if (rc) {
            unlink(copy);
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (rc == 0) {
        prog.items = 1;
        report(cb, udata, &prog, true);
    }
    return rc;
}

/* ---- the storage operation ------------------------------------------------
 */

int
sprig__storage_maintain(sprig_storage *s, sprig__maint_kind kind,
                        const char *arg, sprig_progress_fn cb, void *udata)
{
    sprig__lstorage *st = (sprig__lstorage *)s;
    switch (kind) {
    case SPRIG__MAINT_BACKUP: return backup(st, arg, cb, udata);
    case SPRIG__MAINT_RESTORE: return restore(st, arg, cb, udata);
    case SPRIG__MAINT_EXPORT: return sprig__export(st, arg, cb, udata);
    case SPRIG__MAINT_IMPORT: return sprig__import(st, arg, cb, udata);
    case SPRIG__MAINT_COMPACT: return compact(st, arg, cb, udata);
    }
    return sprig__err(SPRIG_EINVAL, "unknown maintenance job %d", (int)kind);
}
