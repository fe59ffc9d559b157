/*
 * views.c -- the views of one open database: setting them up at open,
 * rebuilding an index whose definition changed, catching up on pending
 * documents, and the background indexer behind SPRIG_UPDATE_AFTER.
 *
 * Design notes.
 *  - Definition records.  meta "view:<coll>/<view>" holds the definition an
 *    index was built with (version, policy, kind, reduce, paths).  At open,
 *    a view whose record differs is rebuilt before the open returns, in
 *    steps through the writer: (1) empty its tables and delete the record,
 *    (2) map the collection a chunk of documents per transaction, (3) write
 *    the record.  A crash anywhere before (3) leaves no record, so the next
 *    open starts over: an index is never half-built with a matching
 *    record.  Queries wait trivially: no handle exists yet.
 *  - Views without code (a schema read back from the storage by a tool)
 *    are never rebuilt and their records never written; writes queue their
 *    documents as pending (views_changed), and an open with the code
 *    indexes what eager views have pending.
 *  - The background indexer is one thread per database, started on the
 *    first SPRIG_UPDATE_AFTER query that leaves work behind.  States:
 *    not started -> waiting <-> draining -> stopped (views_close sets
 *    `stop`, wakes it and joins it before the engine goes away; a drain
 *    checks `stop` between chunks).
 */
#include "views.h"

#include <stdio.h>

static bool
is_codeless(const sprig_view_def *d)
{
    return d->map == sprig__codeless_map;
}

unsigned
sprig__views_tables(const sprig_schema_def *s)
{
    unsigned n = 0;
    for (size_t i = 0; i < s->n_collections; i++) {
        n += (unsigned)s->collections[i].n_views * 4;
    }
    return n;
}

/* ---- tables -------------------------------------------------------------- */

/* Table name of part `p` of view `v`: '/' cannot occur in names. */
static void
table_name(char *out, size_t n, const sprig__view *v, char p)
{
    snprintf(out, n, "v/%s/%s/%c", v->coll->name, v->def->name, p);
}

/* Read-only: as LMDB has it; writable: through the table records (a
 * view table renamed by damage is SPRIG__MRC_REPORTED, env.c). */
static int
open_one(sprig__env *e, MDB_txn *txn, const char *name, unsigned flags,
         MDB_dbi *out)
{
    return e->read_only ? mdb_dbi_open(txn, name, flags, out)
                        : sprig__env_dbi_open(e, txn, name, flags, out);
}

static int
open_view_dbis(sprig__env *e, MDB_txn *txn, sprig__view *v, unsigned create)
{
    char name[2 * SPRIG_NAME_MAX + 8];
    table_name(name, sizeof name, v, 'e');
    int mrc = open_one(e, txn, name, create | MDB_DUPSORT, &v->e);
    table_name(name, sizeof name, v, 'd');
    mrc = mrc ? mrc : open_one(e, txn, name, create, &v->d);
    table_name(name, sizeof name, v, 'i');
    mrc = mrc ? mrc : open_one(e, txn, name, create, &v->i);
    table_name(name, sizeof name, v, 'r');
    if (mrc == 0 && v->reduces) {
        mrc = open_one(e, txn, name, create, &v->r);
    }
    return mrc;
}

/* Read-only: a table of `v` is missing but recorded as created (env.c):
 * damage; SPRIG_ECORRUPT set naming it. */
static bool
view_recorded(MDB_txn *txn, const sprig__view *v)
{
    static const char parts[] = "edir";
    char name[2 * SPRIG_NAME_MAX + 8];
    MDB_dbi d;
    for (const char *p = parts; *p; p++) {
        table_name(name, sizeof name, v, *p);
        if (mdb_dbi_open(txn, name, 0, &d) == MDB_NOTFOUND &&
            sprig__env_table_recorded(txn, name)) {
            sprig__err(SPRIG_ECORRUPT,
                       "table '%s' is missing from the table directory "
                       "although it was created (a damaged table name?)",
                       name);
            return true;
        }
    }
    return false;
}

/* Open (creating) every view table in one write transaction. */
static int
open_tables(sprig__env *e, struct sprig__views *vw)
{
    for (;;) {
        MDB_txn *txn = NULL;
        pthread_rwlock_rdlock(&e->map_lock);
        size_t seen = e->map_size;
        /* read-only: the tables must be there (no view is new) */
        int mrc =
            mdb_txn_begin(e->env, NULL, e->read_only ? MDB_RDONLY : 0, &txn);
        bool began = mrc == 0;
        size_t i = 0;
        for (; mrc == 0 && i < vw->n; i++) {
            mrc = open_view_dbis(e, txn, &vw->v[i],
                                 e->read_only ? 0 : MDB_CREATE);
        }
        if (mrc == MDB_NOTFOUND && e->read_only &&
            view_recorded(txn, &vw->v[i - 1])) {
            mrc = SPRIG__MRC_REPORTED; /* its message set */
        }
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn);
        } else if (began) {
            mdb_txn_abort(txn);
        }
        if (mrc == 0) {
            sprig__env_tables_opened(e); /* reads must see new handles */
        }
        pthread_rwlock_unlock(&e->map_lock);
        if (mrc == MDB_NOTFOUND && e->read_only) {
            return sprig__err(SPRIG_EPERM,
                              "'%s' has a view with no tables "
                              "yet and is open read-only: open it writable "
                              "once",
                              e->path);
        }
        if (mrc == SPRIG__MRC_REPORTED) {
            return SPRIG_ECORRUPT;
        }
        if (mrc != MDB_MAP_FULL) {
            return sprig__mdb_err(mrc, "opening view tables");
        }
        int rc = sprig__env_grow(e, seen, false);
        if (rc) {
            return rc;
        }
    }
}

/* ---- definition records ---------------------------------------------------
 */

static void
record_key(char *out, size_t n, const sprig__view *v)
{
    snprintf(out, n, "view:%s/%s", v->coll->name, v->def->name);
}

static int
put_str(sprig_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    int rc = sprig__buf_put_u32(b, (uint32_t)n);
    return rc ? rc : sprig_buf_append(b, s, n);
}

static int
definition(const sprig__view *v, sprig_buf *out)
{
    const sprig_view_def *d = v->def;
    /* record version 3: pending rows carry a CRC (issue 17); version 2:
     * values through the codec.  Indexes of older versions are rebuilt. */
    int rc = sprig__buf_put_u8(out, SPRIG__VIEW_RECORD_VERSION);
    rc = rc ? rc : sprig__buf_put_u32(out, d->version);
    rc = rc ? rc : sprig__buf_put_u8(out, (uint8_t)d->policy);
    rc = rc ? rc : sprig__buf_put_u8(out, d->json_key ? 1 : 0);
    rc = rc ? rc : sprig__buf_put_u8(out, d->reduce ? 1 : 0);
    rc = rc ? rc : sprig__buf_put_u8(out, (uint8_t)d->builtin_reduce);
    rc = rc ? rc : put_str(out, d->json_key);
    return rc ? rc : put_str(out, d->json_value);
}

/* Whether the stored record of `v` equals its definition. */
static int
record_matches(sprig__ldb *ldb, sprig__view *v, bool *out)
{
    char key[2 * SPRIG_NAME_MAX + 8];
    sprig_buf want = {0};
    MDB_txn *txn;
    *out = false;
    record_key(key, sizeof key, v);
    int rc = definition(v, &want);
    rc = rc ? rc : sprig__env_read_begin(ldb->env, &txn);
    if (rc == 0) {
        MDB_val k = {strlen(key), key}, d;
        int mrc = mdb_get(txn, ldb->meta, &k, &d);
        *out = mrc == 0 && d.mv_size == want.len &&
               memcmp(d.mv_data, want.data, want.len) == 0;
        if (mrc && mrc != MDB_NOTFOUND) {
            rc = sprig__mdb_err(mrc, "reading a view record");
        }
        sprig__env_read_end(ldb->env, txn);
    }
    sprig_buf_clear(&want);
    return rc;
}

/* ---- rebuilding ------------------------------------------------------------
 */

typedef struct rebuild {
    sprig__ldb *ldb;
    sprig__view *v;
    int step; /* 0 clear, 1 a chunk of documents, 2 the record */
    uint8_t in_after[SPRIG_ID_MAX], out_after[SPRIG_ID_MAX];
    size_t in_len, out_len;
    bool done;
    sprig__vscratch vs;
} rebuild;

static int
rebuild_apply(MDB_txn *txn, void *arg)
{
    rebuild *b = arg;
    char key[2 * SPRIG_NAME_MAX + 8];
    record_key(key, sizeof key, b->v);
    MDB_val k = {strlen(key), key};
    if (b->step == 0) {
        int rc = sprig__view_clear(txn, b->v);
        int mrc = rc ? 0 : mdb_del(txn, b->ldb->meta, &k, NULL);
        return rc                    ? rc
               : mrc == MDB_NOTFOUND ? 0
                                     : sprig__mdb_err(mrc, "writing meta");
    }
    if (b->step == 1) { /* inputs stay untouched: this may run again */
        memcpy(b->out_after, b->in_after, b->in_len);
        b->out_len = b->in_len;
        return sprig__view_index_docs(txn, b->v, b->out_after, &b->out_len,
                                      SPRIG__VIEW_CHUNK, &b->done, &b->vs);
    }
    sprig_buf rec = {0};
    int rc = definition(b->v, &rec);
    MDB_val d = {rec.len, rec.data};
    rc = rc ? rc
            : sprig__mdb_err(mdb_put(txn, b->ldb->meta, &k, &d, 0),
                             "writing meta");
    sprig_buf_clear(&rec);
    return rc;
}

static int
rebuild_view(sprig__ldb *ldb, sprig__view *v)
{
    rebuild *b = sprig__calloc(1, sizeof *b);
    if (!b) {
        return sprig__err(SPRIG_ENOMEM, "out of memory rebuilding a view");
    }
    b->ldb = ldb;
    b->v = v;
    sprig__wreq req = {.apply = rebuild_apply, .arg = b};
    int rc = sprig__writer_submit(&ldb->writer, &req);
    b->step = 1;
    while (rc == 0 && !b->done) {
        rc = sprig__writer_submit(&ldb->writer, &req);
        memcpy(b->in_after, b->out_after, b->out_len);
        b->in_len = b->out_len;
    }
    b->step = 2;
    rc = rc ? rc : sprig__writer_submit(&ldb->writer, &req);
    sprig__vscratch_free(&b->vs);
    sprig__free(b);
    return rc;
}

/* ---- pending documents ------------------------------------------------------
 */

typedef struct drain {
    sprig__view *v;
    bool left;
    sprig__vscratch vs;
} drain;

static int
drain_apply(MDB_txn *txn, void *arg)
{
    drain *d = arg;
    return sprig__view_index_pending(txn, d->v, SPRIG__VIEW_CHUNK, &d->left,
                                     &d->vs);
}

/* Read-only: nothing to drain is fine; documents pending are not. */
static int
nothing_pending(sprig__ldb *ldb, sprig__view *v, bool *none)
{
    MDB_txn *txn;
    size_t n = 0;
    int rc = sprig__env_read_begin(ldb->env, &txn);
    if (rc == 0) {
        rc = sprig__view_pending(txn, v, &n);
        sprig__env_read_end(ldb->env, txn);
    }
    *none = rc == 0 && n == 0;
    return rc;
}

int
sprig__views_drain(sprig__ldb *ldb, sprig__view *v, const atomic_bool *stop)
{
    bool none = false;
    if (ldb->env->read_only) {
        int rc = nothing_pending(ldb, v, &none);
        if (rc || none) {
            return rc;
        }
    }
    drain d = {.v = v, .left = true};
    sprig__wreq req = {.apply = drain_apply, .arg = &d};
    int rc = SPRIG_OK;
    while (rc == 0 && d.left && !(stop && atomic_load(stop))) {
        rc = sprig__writer_submit(&ldb->writer, &req);
    }
    sprig__vscratch_free(&d.vs);
    return rc;
}

/* ---- open and close
 * ----------------------------------------------------------- */

/* The one-pass scanner of collection i's declarative views. */
static int
build_scan(struct sprig__views *vw, size_t ci)
{
    const sprig__jview *jvs[SPRIG__VIEWS_MAX];
    size_t n = 0;
    for (size_t j = 0; j < vw->count[ci]; j++) {
        sprig__view *v = &vw->v[vw->first[ci] + j];
        if (v->jv && n < SPRIG__VIEWS_MAX) {
            v->scan_k = n;
            jvs[n++] = v->jv;
        }
    }
    int rc = n ? sprig__jscan_new(jvs, n, &vw->scans[ci]) : SPRIG_OK;
    for (size_t j = 0; j < vw->count[ci]; j++) {
        vw->v[vw->first[ci] + j].scan = vw->scans[ci];
    }
    return rc;
}

static int
build(sprig__ldb *ldb, struct sprig__views *vw)
{
    size_t k = 0;
    for (size_t i = 0; i < ldb->n_colls; i++) {
        const sprig_collection_def *cd = &ldb->schema->collections[i];
        vw->first[i] = k;
        vw->count[i] = cd->n_views;
        for (size_t j = 0; j < cd->n_views; j++, k++) {
            sprig__view *v = &vw->v[k];
            v->def = &cd->views[j];
            v->coll = &ldb->colls[i];
            v->ldb = ldb;
            snprintf(v->scope, sizeof v->scope, "%s/%s", cd->name,
                     v->def->name);
            v->codeless = is_codeless(v->def);
            v->reduces =
                v->def->reduce || v->def->builtin_reduce != SPRIG_REDUCE_NONE;
            atomic_init(&v->bg_pending, false);
            if (v->def->json_key) {
                int rc = sprig__jview_new(v->def, &v->jv);
                if (rc) {
                    return rc;
                }
            }
        }
        vw->n = k;
        int rc = build_scan(vw, i);
        if (rc) {
            return rc;
        }
    }
    return SPRIG_OK;
}

/* Rebuild changed indexes; index what eager views have pending. */
static int
check_views(sprig__ldb *ldb, struct sprig__views *vw)
{
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < vw->n; i++) {
        sprig__view *v = &vw->v[i];
        bool same = false;
        if (v->codeless) {
            continue;
        }
        rc = record_matches(ldb, v, &same);
        if (rc == 0 && !same) {
            rc = rebuild_view(ldb, v);
        }
        if (rc == 0 && v->def->policy != SPRIG_VIEW_LAZY) {
            rc = sprig__views_drain(ldb, v, NULL);
        }
    }
    return rc;
}

int
sprig__views_open(sprig__ldb *ldb)
{
    ldb->views = NULL;
    size_t n = 0;
    for (size_t i = 0; i < ldb->n_colls; i++) {
        n += ldb->schema->collections[i].n_views;
    }
    if (n == 0) {
        return SPRIG_OK;
    }
    struct sprig__views *vw = sprig__calloc(1, sizeof *vw);
    if (!vw) {
        return sprig__err(SPRIG_ENOMEM, "out of memory opening views");
    }
    pthread_mutex_init(&vw->lock, NULL);
    pthread_cond_init(&vw->cond, NULL);
    atomic_init(&vw->stop, false);
    ldb->views = vw;
    vw->v = sprig__calloc(n, sizeof *vw->v);
    vw->first = sprig__calloc(ldb->n_colls, sizeof *vw->first);
    vw->count = sprig__calloc(ldb->n_colls, sizeof *vw->count);
    vw->scans = sprig__calloc(ldb->n_colls, sizeof *vw->scans);
    int rc = vw->v && vw->first && vw->count && vw->scans
                 ? 0
                 : sprig__err(SPRIG_ENOMEM, "out of memory opening views");
    rc = rc ? rc : build(ldb, vw);
    rc = rc ? rc : open_tables(ldb->env, vw);
    rc = rc ? rc : check_views(ldb, vw);
    if (rc) {
        sprig__views_close(ldb);
    }
    return rc;
}

void
sprig__views_close(sprig__ldb *ldb)
{
    struct sprig__views *vw = ldb->views;
    if (!vw) {
        return;
    }
    pthread_mutex_lock(&vw->lock);
    atomic_store(&vw->stop, true);
    bool started = vw->started;
    pthread_cond_broadcast(&vw->cond);
    pthread_mutex_unlock(&vw->lock);
    if (started) {
        pthread_join(vw->thread, NULL);
    }
    for (size_t i = 0; vw->v && i < vw->n; i++) {
        sprig__jview_free(vw->v[i].jv);
    }
    for (size_t i = 0; vw->scans && i < ldb->n_colls; i++) {
        sprig__jscan_free(vw->scans[i]);
    }
    sprig__free(vw->scans);
    pthread_cond_destroy(&vw->cond);
    pthread_mutex_destroy(&vw->lock);
    sprig__free(vw->v);
    sprig__free(vw->first);
    sprig__free(vw->count);
    sprig__free(vw);
    ldb->views = NULL;
}

int
sprig__views_find(sprig__ldb *ldb, const char *coll, const char *name,
                  sprig__view **out)
{
    sprig__coll *c;
    int rc = sprig__ldb_coll(ldb, coll, &c);
    if (rc) {
        return rc;
    }
    size_t ci = (size_t)(c - ldb->colls);
    struct sprig__views *vw = ldb->views;
    for (size_t i = 0; vw && i < vw->count[ci]; i++) {
        sprig__view *v = &vw->v[vw->first[ci] + i];
        if (strcmp(v->def->name, name) == 0) {
            *out = v;
            return SPRIG_OK;
        }
    }
    *out = NULL;
    rc = sprig__err_about(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_VIEW,
                          "collection '%s' has no view '%s'", coll, name);
    sprig__errinfo_collection(coll);
    sprig__errinfo_view(name);
    sprig__errinfo_database(ldb->name);
    return rc;
}

/* ---- the background indexer ------------------------------------------------
 */

static void *
indexer(void *arg)
{
    sprig__ldb *ldb = arg;
    struct sprig__views *vw = ldb->views;
    pthread_mutex_lock(&vw->lock);
    while (!atomic_load(&vw->stop)) {
        if (!vw->wake) {
            pthread_cond_wait(&vw->cond, &vw->lock);
            continue;
        }
        vw->wake = false;
        pthread_mutex_unlock(&vw->lock);
        for (size_t i = 0; i < vw->n && !atomic_load(&vw->stop); i++) {
            sprig__view *v = &vw->v[i];
            if (atomic_exchange(&v->bg_pending, false) &&
                !atomic_load(&ldb->dropped)) {
                /* failures surface at the next update-before query */
                sprig__views_drain(ldb, v, &vw->stop);
            }
        }
        pthread_mutex_lock(&vw->lock);
    }
    pthread_mutex_unlock(&vw->lock);
    return NULL;
}

void
sprig__views_kick(sprig__ldb *ldb, sprig__view *v)
{
    struct sprig__views *vw = ldb->views;
    atomic_store(&v->bg_pending, true);
    pthread_mutex_lock(&vw->lock);
    if (!vw->started && !atomic_load(&vw->stop)) {
        vw->started = pthread_create(&vw->thread, NULL, indexer, ldb) == 0;
    }
    vw->wake = true;
    pthread_cond_signal(&vw->cond);
    pthread_mutex_unlock(&vw->lock);
}
