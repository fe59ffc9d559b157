/*
 * check.c -- sprig_storage_check(): verify a local storage and report what
 * is wrong (issue 17, item 2).  Per database, in one read snapshot:
 *   - LMDB's own consistency: its page structure verified page by page
 *     (pagecheck.c, whatever the file's size; `_admin` too), and every
 *     table of the environment read entry by entry (a damaged page makes
 *     LMDB fail the walk) holding as many entries as its statistics say;
 *   - documents: every stored value parses, its id is 1..SPRIG_ID_MAX
 *     bytes, its revision is at least 1 and its content hash matches;
 *   - the transaction log against the data: the last change the log
 *     records for each document is its current state (the revision it
 *     has, or absent after a delete), and no document is unlogged;
 *   - every view against its collection, and its stored reduce values
 *     against a recomputation from the index (sprig__view_check);
 *   - the key-value store: records parse and the expiry index holds
 *     exactly one entry per record with an expiry (sprig__kv_verify).
 * Plus the registry: every database it names opens.
 *
 * Design notes.  Findings are lines appended to the caller's buffer, each
 * naming the database and what is wrong; the return value says only
 * whether the check could run.  The log is read with the public listing
 * (its own snapshot), so check a storage no one is writing: the CLI opens
 * it exclusively.  Memory grows with the number of documents (one entry
 * per logged document), which is fine for a maintenance tool.
 */
#include "kv.h"
#include "local.h"
#include "views.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct chk {
    sprig_buf *report;
    uint64_t n;
    const char *db;
    sprig_buf dec; /* a document's decoded contents */
} chk;

static void finding(chk *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
finding(chk *c, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(line, sizeof line, "database '%s': ", c->db);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    c->n++;
    if (c->report) {
        sprig_buf_append(c->report, line, strlen(line));
        sprig_buf_append(c->report, "\n", 1);
    }
}

/* An id for a message: printable bytes as they are, others as \xHH. */
static const char *
show(sprig_bytes id, char *out, size_t cap)
{
    size_t o = 0;
    const uint8_t *p = id.data;
    for (size_t i = 0; i < id.len && o + 5 < cap; i++) {
        o += (size_t)snprintf(out + o, cap - o,
                              p[i] >= 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x",
                              p[i]);
    }
    out[o] = 0;
    return out;
}

/* ---- LMDB: every table, entry by entry ---------------------------------- */

static void
walk_table(chk *c, MDB_txn *txn, const char *name)
{
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_stat st;
    MDB_val k, v;
    size_t n = 0;
    int mrc = mdb_dbi_open(txn, name, 0, &dbi);
    mrc = mrc ? mrc : mdb_stat(txn, dbi, &st);
    mrc = mrc ? mrc : mdb_cursor_open(txn, dbi, &cur);
    if (mrc) {
        finding(c, "LMDB: table '%s': %s", name, mdb_strerror(mrc));
        return;
    }
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        n++;
    }
    mdb_cursor_close(cur);
    if (mrc != MDB_NOTFOUND) {
        finding(c, "LMDB: table '%s' after %zu entries: %s", name, n,
                mdb_strerror(mrc));
    } else if (n != st.ms_entries) {
        finding(c, "LMDB: table '%s' has %zu entries, its statistics say %zu",
                name, n, (size_t)st.ms_entries);
    }
}

static void
check_lmdb(chk *c, MDB_txn *txn)
{
    MDB_dbi main;
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_dbi_open(txn, NULL, 0, &main);
    mrc = mrc ? mrc : mdb_cursor_open(txn, main, &cur);
    if (mrc) {
        finding(c, "LMDB: the table directory: %s", mdb_strerror(mrc));
        return;
    }
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        char name[512];
        if (k.mv_size == 0 || k.mv_size >= sizeof name ||
            memchr(k.mv_data, 0, k.mv_size)) {
            finding(c, "LMDB: a malformed table name");
            continue;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        walk_table(c, txn, name);
    }
    mdb_cursor_close(cur);
    if (mrc != MDB_NOTFOUND) {
        finding(c, "LMDB: the table directory: %s", mdb_strerror(mrc));
    }
}

/* LMDB's page structure of environment `e` in snapshot `txn`, walked
 * whole, whatever its size (pagecheck.c; an open verifies only up to
 * SPRIG__VERIFY_OPEN_BYTES). */
static void
check_pages(chk *c, sprig__env *e, MDB_txn *txn)
{
    if (sprig__env_verify(e, txn, 0, NULL) != 0) {
        finding(c, "LMDB: %s", sprig_errmsg());
    }
}

/* What the background verification of `e` found (bgverify.c): the
 * damage that failed it, which its reads and writes now say. */
static void
check_background(chk *c, sprig__env *e)
{
    bool running;
    if (sprig__env_bgverify_result(e, &running, true) == SPRIG_ECORRUPT) {
        finding(c, "the background verification failed it: %s", sprig_errmsg());
    }
}

/* The registry's environment (`_admin`), in a snapshot of its own. */
static void
check_admin(chk *c, sprig_storage *st)
{
    sprig__env *e = ((sprig__lstorage *)st)->admin;
    MDB_txn *txn;
    pthread_rwlock_rdlock(&e->map_lock);
    int mrc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        finding(c, "LMDB: %s", mdb_strerror(mrc));
    } else {
        check_pages(c, e, txn);
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&e->map_lock);
    check_background(c, e);
}

/* ---- the log's last word per document ------------------------------------ */

typedef struct last {
    char *key; /* collection, 0x00, id */
    size_t len;
    uint64_t rev;
    bool deleted, seen;
} last;

typedef struct lastmap {
    last *t;
    size_t cap, n;
} lastmap;

static uint64_t
fnv(const void *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
    }
    return h;
}

/* The slot of key (coll, id): found, or empty where it goes. */
static last *
slot(lastmap *m, const char *coll, sprig_bytes id, char *key, size_t *len)
{
    size_t cl = strlen(coll);
    memcpy(key, coll, cl + 1);
    memcpy(key + cl + 1, id.data, id.len);
    *len = cl + 1 + id.len;
    for (size_t i = fnv(key, *len) & (m->cap - 1);;
         i = (i + 1) & (m->cap - 1)) {
        last *e = &m->t[i];
        if (!e->key || (e->len == *len && memcmp(e->key, key, *len) == 0)) {
            return e;
        }
    }
}

static int
grow_map(lastmap *m)
{
    lastmap g = {sprig__calloc(m->cap ? m->cap * 2 : 1024, sizeof(last)),
                 m->cap ? m->cap * 2 : 1024, m->n};
    if (!g.t) {
        return sprig__err(SPRIG_ENOMEM, "out of memory checking");
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->t[i].key) {
            size_t h = fnv(m->t[i].key, m->t[i].len) & (g.cap - 1);
            while (g.t[h].key) {
                h = (h + 1) & (g.cap - 1);
            }
            g.t[h] = m->t[i];
        }
    }
    sprig__free(m->t);
    *m = g;
    return SPRIG_OK;
}

static int
note_change(lastmap *m, const sprig_change *ch)
{
    char key[SPRIG_NAME_MAX + 2 + SPRIG_ID_MAX];
    size_t len;
    if (!*ch->collection || ch->id.len > SPRIG_ID_MAX) {
        return SPRIG_OK; /* key-value changes: no documents */
    }
    if ((m->n + 1) * 2 > m->cap && grow_map(m)) {
        return SPRIG_ENOMEM;
    }
    last *e = slot(m, ch->collection, ch->id, key, &len);
    if (!e->key) {
        if (!(e->key = sprig__malloc(len))) {
            return sprig__err(SPRIG_ENOMEM, "out of memory checking");
        }
        memcpy(e->key, key, len);
        e->len = len;
        m->n++;
    }
    e->rev = ch->revision;
    e->deleted = ch->deleted;
    return SPRIG_OK;
}

/* Read the whole log into `m`, oldest first. */
static int
read_log(sprig_db *db, lastmap *m)
{
    uint64_t since = 0;
    for (;;) {
        sprig_txn_log *l = NULL;
        int rc = sprig_list_executed_txns(db, since, 1000, &l);
        size_t n = rc ? 0 : sprig_txn_log_count(l);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            for (size_t j = 0; rc == 0 && j < sprig_txn_log_change_count(l, i);
                 j++) {
                sprig_change ch;
                rc = sprig_txn_log_change(l, i, j, &ch);
                rc = rc ? rc : note_change(m, &ch);
            }
            since = sprig_txn_log_id(l, i) + 1;
        }
        sprig_txn_log_free(l);
        if (rc || n == 0) {
            return rc;
        }
    }
}

static void
free_map(lastmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        sprig__free(m->t[i].key);
    }
    sprig__free(m->t);
}

/* ---- documents ------------------------------------------------------------
 */

static void
check_one_doc(chk *c, sprig__ldb *ldb, lastmap *m, sprig__coll *co, MDB_val *k,
              MDB_val *v)
{
    char key[SPRIG_NAME_MAX + 2 + SPRIG_ID_MAX], shown[80];
    size_t len;
    uint64_t rev;
    const uint8_t *hash;
    uint8_t h[16];
    sprig_bytes id = {k->mv_data, k->mv_size}, contents;
    show(id, shown, sizeof shown);
    if (id.len == 0 || id.len > SPRIG_ID_MAX ||
        sprig__doc_parse(v, &rev, &hash, &contents) || rev == 0) {
        finding(c, "collection '%s': document '%s' is malformed", co->name,
                shown);
        return;
    }
    /* the hash is of the plain contents, under the collection's key; a
     * value that does not decode (its CRC) is still there for the log */
    bool decoded =
        sprig__doc_read(ldb, co, id, v, &rev, &hash, &contents, &c->dec) == 0;
    if (!decoded) {
        finding(c, "collection '%s': document '%s' does not decode: %s",
                co->name, shown, sprig_errmsg());
    } else {
        sprig__doc_hash(co->hash_key, contents, h);
    }
    if (decoded && memcmp(h, hash, 16) != 0) {
        finding(c,
                "collection '%s': document '%s': its contents do not match "
                "its hash",
                co->name, shown);
    }
    last *e = m->cap ? slot(m, co->name, id, key, &len) : NULL;
    if (!e || !e->key) {
        finding(c, "collection '%s': document '%s' is not in the log", co->name,
                shown);
    } else if (e->deleted || e->rev != rev) {
        finding(c,
                "collection '%s': document '%s' has revision %llu, the log "
                "says %s revision %llu",
                co->name, shown, (unsigned long long)rev,
                e->deleted ? "deleted at " : "", (unsigned long long)e->rev);
    }
    if (e && e->key) {
        e->seen = true;
    }
}

static int
check_docs(chk *c, sprig__ldb *ldb, MDB_txn *txn, lastmap *m)
{
    for (size_t i = 0; i < ldb->n_colls; i++) {
        MDB_cursor *cur;
        MDB_val k, v;
        int mrc = mdb_cursor_open(txn, ldb->colls[i].dbi, &cur);
        if (mrc) {
            return sprig__mdb_err(mrc, "checking a collection");
        }
        while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            check_one_doc(c, ldb, m, &ldb->colls[i], &k, &v);
        }
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; i < m->cap; i++) { /* logged as present, not there */
        last *e = &m->t[i];
        if (e->key && !e->seen && !e->deleted) {
            char shown[80];
            size_t cl = strlen(e->key);
            show((sprig_bytes){e->key + cl + 1, e->len - cl - 1}, shown,
                 sizeof shown);
            finding(c,
                    "collection '%s': the log says document '%s' has revision "
                    "%llu, but it is not there",
                    e->key, shown, (unsigned long long)e->rev);
        }
    }
    return SPRIG_OK;
}

/* ---- views ------------------------------------------------------------- */

static void
view_bad(void *arg, const sprig__view *v, const char *what, sprig_bytes id)
{
    char shown[80];
    if (id.len) {
        finding(arg, "view '%s' of collection '%s': document '%s': %s",
                v->def->name, v->coll->name, show(id, shown, sizeof shown),
                what);
    } else {
        finding(arg, "view '%s' of collection '%s': %s", v->def->name,
                v->coll->name, what);
    }
}

static int
check_views(chk *c, sprig__ldb *ldb, MDB_txn *txn)
{
    sprig__vscratch vs;
    memset(&vs, 0, sizeof vs);
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && ldb->views && i < ldb->views->n; i++) {
        rc = sprig__view_check(txn, &ldb->views->v[i], &vs, view_bad, c);
    }
    sprig__vscratch_free(&vs);
    return rc;
}

/* ---- one database ------------------------------------------------------- */

/* Everything of `db` read in one snapshot of its own read transaction
 * (LMDB's table walk opens handles, which a pooled read must not keep). */
static int
check_snapshot(chk *c, sprig__ldb *ldb, lastmap *m)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&ldb->env->map_lock);
    int mrc = mdb_txn_begin(ldb->env->env, NULL, MDB_RDONLY, &txn);
    int rc = mrc ? sprig__mdb_err(mrc, "checking") : 0;
    if (rc == 0) {
        check_pages(c, ldb->env, txn);
        check_lmdb(c, txn);
        rc = check_docs(c, ldb, txn, m);
        rc = rc ? rc : check_views(c, ldb, txn);
        mdb_txn_commit(txn); /* read-only: keeps the handles it opened */
    }
    pthread_rwlock_unlock(&ldb->env->map_lock);
    check_background(c, ldb->env);
    return rc;
}

static int
check_db(chk *c, sprig_storage *st)
{
    sprig_db *db = NULL;
    lastmap m = {NULL, 0, 0};
    uint64_t recs, indexed;
    int rc = sprig_storage_open_database(st, c->db, &db);
    if (rc) {
        finding(c, "does not open: %s", sprig_errmsg());
        return rc == SPRIG_ENOMEM ? rc : SPRIG_OK;
    }
    rc = read_log(db, &m);
    if (rc && rc != SPRIG_ENOMEM) {
        finding(c, "its log does not read: %s", sprig_errmsg());
        rc = SPRIG_OK;
    }
    rc = rc ? rc : check_snapshot(c, sprig__db_ldb(db), &m);
    if (rc == 0 && sprig__kv_verify(db, &recs, &indexed) != 0) {
        finding(c, "key-value store: %s", sprig_errmsg());
    }
    free_map(&m);
    sprig_buf_clear(&c->dec);
    sprig_db_close(db);
    return rc;
}

int
sprig_storage_check(sprig_storage *st, sprig_buf *report, uint64_t *findings)
{
    if (!st || !findings) {
        return sprig__err(SPRIG_EINVAL, "storage or findings is NULL");
    }
    if (!sprig__storage_is_local(st)) {
        return sprig__err(SPRIG_EINVAL, "only a local storage can be checked "
                                        "(open its directory)");
    }
    sprig_database_list *l;
    chk c = {report, 0, "_admin", {0}};
    check_admin(&c, st);
    int rc = sprig_storage_list_databases(st, &l);
    if (rc) {
        finding(&c, "the registry does not read: %s", sprig_errmsg());
        *findings = c.n;
        return rc == SPRIG_ENOMEM ? rc : SPRIG_OK;
    }
    for (size_t i = 0; rc == 0 && i < sprig_database_list_count(l); i++) {
        c.db = sprig_database_list_name(l, i);
        rc = check_db(&c, st);
    }
    sprig_database_list_free(l);
    *findings = c.n;
    return rc;
}
