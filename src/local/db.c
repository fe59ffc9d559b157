/*
 * db.c -- a database engine (sprig__ldb) and the local `sprig_db` handle.
 *
 * One engine per open database: its LMDB environment, a table handle (dbi)
 * per collection plus `meta` and `log`, and its writer.  Handles are small
 * objects pointing at the engine; the storage counts them (storage.c).
 * Writes go through docs.c; the reads live here: each runs in one pooled
 * read transaction, so a multi-document read is one consistent snapshot.
 */
#include "core/cmd.h"
#include "kv.h"
#include "local.h"
#include "views.h"

#include <stdio.h>

typedef struct ldb_handle {
    sprig_db base;
    sprig__ldb *ldb;
    bool owns_storage;
} ldb_handle;

#define LDB(db) (((ldb_handle *)(db))->ldb)

/* Table name of a collection's documents. */
static void
coll_table(char *out, size_t n, const char *coll)
{
    snprintf(out, n, "c.%s", coll);
}

static int
open_tables(sprig__ldb *ldb)
{
    size_t n = ldb->n_colls + 2;
    char(*names)[SPRIG_NAME_MAX + 3] = sprig__calloc(n, sizeof *names);
    const char **ptrs = sprig__calloc(n, sizeof *ptrs);
    MDB_dbi *dbis = sprig__calloc(n, sizeof *dbis);
    int rc = SPRIG_OK;
    if (!names || !ptrs || !dbis) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory opening a database");
        goto done;
    }
    snprintf(names[0], sizeof names[0], "meta");
    snprintf(names[1], sizeof names[1], "log");
    for (size_t i = 0; i < ldb->n_colls; i++) {
        coll_table(names[i + 2], sizeof names[0], ldb->colls[i].name);
    }
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = names[i];
    }
    rc = sprig__env_open_dbis(ldb->env, ptrs, n, dbis);
    if (rc == 0) {
        ldb->meta = dbis[0];
        ldb->log = dbis[1];
        for (size_t i = 0; i < ldb->n_colls; i++) {
            ldb->colls[i].dbi = dbis[i + 2];
        }
    }
done:
    sprig__free(names);
    sprig__free(ptrs);
    sprig__free(dbis);
    return rc;
}

/* Replay one logged command (ckpt.c). */
static int
replay_cmd(void *arg, MDB_txn *txn, const uint8_t *p, size_t n)
{
    sprig__ldb *ldb = arg;
    sprig__cmd c;
    sprig_bytes rec = {p, n};
    sprig_buf scratch = {0};
    int rc = SPRIG_OK;
    if (n >= 2 && p[0] == SPRIG__LOG_SEALED) { /* ckpt.c's seal_record */
        sprig__vloc l = sprig__ldb_loc(ldb, 'l', "", (sprig_bytes){NULL, 0});
        rc = sprig__codec_decode(ldb->vault, &l, p[1],
                                 (sprig_bytes){p + 2, n - 2}, &scratch, &rec);
    }
    uint64_t raft_index = 0;
    const uint8_t *rp = rec.data, *rid = NULL;
    if (rc == 0 && rec.len >= 9 && rp[0] == SPRIG__LOG_RAFT) {
        raft_index = sprig__get_u64be(rp + 1); /* ckpt.c */
        rec = (sprig_bytes){rp + 9, rec.len - 9};
    } else if (rc == 0 && rec.len >= 25 && rp[0] == SPRIG__LOG_RAFT_RID) {
        raft_index = sprig__get_u64be(rp + 1);
        rid = rp + 9;
        rec = (sprig_bytes){rp + 25, rec.len - 25};
    }
    memset(&c, 0, sizeof c);
    rc = rc ? rc : sprig__cmd_decode(rec, &c);
    if (rc == 0) {
        c.raft_index = raft_index; /* recorded with the effects again */
        c.has_rid = rid != NULL;   /* and the request id with them */
        if (rid) {
            memcpy(c.rid, rid, sizeof c.rid);
        }
        c.out.txn = NULL; /* no result wanted */
        rc = sprig__cmd_apply(ldb, txn, &c, &c.out);
    }
    sprig__cmd_clear(&c);
    sprig_buf_clear(&scratch);
    return rc;
}

/* The codecs of `ldb`'s scopes (codec.h), from the storage's defaults and
 * the collections' flags; the vault is made if an encrypted scope needs
 * one.  Before the first read or write. */
static int
setup_codecs(sprig__ldb *ldb, sprig__lstorage *st)
{
    const char *base = strrchr(ldb->dir, '/');
    ldb->dir_name = base ? base + 1 : ldb->dir;
    bool any = st->encrypt_all;
    for (size_t i = 0; i < ldb->n_colls; i++) {
        any = any || (ldb->schema->collections[i].flags & SPRIG_COLL_ENCRYPTED);
    }
    ldb->vault = st->vault; /* may hold what was encrypted before */
    int rc = any ? sprig__storage_vault(st, &ldb->vault) : 0;
    if (rc) {
        return rc;
    }
    if (ldb->vault) {
        sprig__vault_hash_key(ldb->vault, ldb->dir_name, ldb->secret_hash_key);
    }
    for (size_t i = 0; i < ldb->n_colls; i++) {
        bool enc = st->encrypt_all ||
                   (ldb->schema->collections[i].flags & SPRIG_COLL_ENCRYPTED);
        ldb->colls[i].codec.vault = enc ? ldb->vault : NULL;
        ldb->colls[i].codec.compress_min = st->compress_min;
        ldb->colls[i].codec.crc = true;
        ldb->colls[i].hash_key = enc ? ldb->secret_hash_key : ldb->hash_key;
    }
    ldb->kv_codec.vault = st->encrypt_all ? ldb->vault : NULL;
    ldb->kv_codec.compress_min = st->compress_min;
    ldb->kv_codec.crc = true;
    ldb->env->log_codec.vault = any ? ldb->vault : NULL;
    ldb->env->log_codec.compress_min = UINT32_MAX;
    ldb->env->log_db = ldb->dir_name;
    return SPRIG_OK;
}

/* Bring the database up to its command log, then let logged commits run. */
static int
recover(sprig__ldb *ldb)
{
    uint64_t replayed = 0;
    int rc = sprig__ckpt_recover(ldb->env, replay_cmd, ldb, &replayed);
    if (rc == 0 && replayed) {
        sprig__kv_expiry_scan(ldb->kv); /* expiries the replay stored */
    }
    return rc;
}

int
sprig__ldb_open(sprig__lstorage *st, const char *name, const char *dir,
                const sprig_schema_def *schema, sprig__ldb **out)
{
    *out = NULL;
    sprig__ldb *ldb = sprig__calloc(1, sizeof *ldb);
    if (!ldb) {
        return sprig__err(SPRIG_ENOMEM, "out of memory opening '%s'", name);
    }
    ldb->st = st;
    int rc = SPRIG_OK;
    ldb->name = sprig__strdup(name);
    ldb->dir = sprig__strdup(dir);
    ldb->colls = sprig__calloc(schema->n_collections, sizeof *ldb->colls);
    if (!ldb->name || !ldb->dir || !ldb->colls) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory opening '%s'", name);
    }
    rc = rc ? rc : sprig__schema_copy(schema, &ldb->schema);
    for (size_t i = 0; rc == 0 && i < schema->n_collections; i++) {
        ldb->colls[i].name = (char *)ldb->schema->collections[i].name;
        ldb->colls[i].id_kind = schema->collections[i].id_kind;
        sprig__vloc l = {'d', NULL, ldb->colls[i].name, {NULL, 8}};
        ldb->colls[i].crc_start8 = sprig__codec_crc_start(&l, SPRIG__CF_CRC);
        ldb->n_colls++;
    }
    /* tables: collections + meta + log, with room for views later */
    unsigned maxdbs =
        (unsigned)(16 + ldb->n_colls * 8) + sprig__views_tables(schema);
    rc = rc ? rc : sprig__ckpt_env_open(dir, &st->opts, maxdbs, &ldb->env);
    rc = rc ? rc : open_tables(ldb);
    uint8_t key[SPRIG__HASH_KEY_LEN];
    sprig__hash_key_derive(dir, key);
    rc = rc ? rc : sprig__hash_key_load(ldb, key);
    rc = rc ? rc : setup_codecs(ldb, st);
    rc = rc ? rc : sprig__writer_init(&ldb->writer, ldb->env);
    bool have_writer = rc == 0;
    ldb->writer.tap = st->tap;
    ldb->writer.tap_udata = st->tap_udata;
    ldb->writer.tap_name = ldb->name;
    rc = rc ? rc : sprig__hub_new(&ldb->hub);
    rc = rc ? rc : sprig__views_open(ldb); /* rebuilds changed indexes */
    rc = rc ? rc : sprig__kv_open(ldb);    /* may start its thread */
    rc = rc ? rc : recover(ldb);           /* last: needs all of the above */
    if (rc) {
        sprig__kv_close(ldb);
        sprig__views_close(ldb);
        sprig__hub_free(ldb->hub);
        if (have_writer) {
            sprig__writer_destroy(&ldb->writer);
        }
        sprig__env_close(ldb->env);
        sprig__free(ldb->schema);
        sprig__free(ldb->colls);
        sprig__free(ldb->name);
        sprig__free(ldb->dir);
        sprig__free(ldb);
        return rc;
    }
    sprig__env_bgverify_start(ldb->env); /* the tables its open left */
    *out = ldb;
    return SPRIG_OK;
}

void
sprig__ldb_free(sprig__ldb *ldb)
{
    if (!ldb) {
        return;
    }
    sprig__writer_stop(&ldb->writer); /* answers what is queued */
    sprig__kv_close(ldb);    /* joins its thread, flushes lazy commits */
    sprig__views_close(ldb); /* joins the background indexer */
    sprig__hub_free(ldb->hub);
    sprig__writer_destroy(&ldb->writer);
    sprig__env_close(ldb->env);
    if (atomic_load(&ldb->dropped)) {
        sprig__rmdir_tree(ldb->dir);
    }
    sprig__free(ldb->schema);
    sprig__free(ldb->colls);
    sprig__free(ldb->name);
    sprig__free(ldb->dir);
    sprig__free(ldb);
}

int
sprig__ldb_coll(sprig__ldb *ldb, const char *name, sprig__coll **out)
{
    for (size_t i = 0; i < ldb->n_colls; i++) {
        if (strcmp(ldb->colls[i].name, name) == 0) {
            *out = &ldb->colls[i];
            return SPRIG_OK;
        }
    }
    *out = NULL;
    int rc = sprig__err_about(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_COLLECTION,
                              "collection '%s' is not in schema '%s'", name,
                              ldb->schema->name);
    sprig__errinfo_collection(name);
    sprig__errinfo_schema(ldb->schema->name);
    sprig__errinfo_database(ldb->name);
    return rc;
}

int
sprig__ldb_gone(const sprig__ldb *ldb)
{
    int rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DATABASE,
                              "database '%s' was deleted", ldb->name);
    sprig__errinfo_database(ldb->name);
    return rc;
}

/* ---- handle operations ------------------------------------------------ */

static void
h_close(sprig_db *db)
{
    ldb_handle *h = (ldb_handle *)db;
    sprig__storage_release(h->ldb->st, h->ldb, h->owns_storage);
    sprig__free(h);
}

static const char *
h_name(const sprig_db *db)
{
    return ((const ldb_handle *)db)->ldb->name;
}

static int
h_apply(sprig_db *db, const sprig_txn *t, sprig_txn_result *res)
{
    return sprig__docs_apply(LDB(db), t, res);
}

/* Start a read on a live database, resolving `coll` if given. */
static int
read_begin(sprig__ldb *ldb, const char *coll, sprig__coll **c, MDB_txn **txn)
{
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    int rc = coll ? sprig__ldb_coll(ldb, coll, c) : 0;
    return rc ? rc : sprig__env_read_begin(ldb->env, txn);
}

/* An encrypted (not compressed) document: opened straight into the new
 * sprig_doc, the common case of an encrypted collection's reads. */
static int
doc_sealed(const sprig__ldb *ldb, const sprig__coll *c, MDB_val *k, MDB_val *v,
           sprig_doc **out)
{
    uint64_t rev;
    const uint8_t *hash = NULL;
    sprig_bytes sealed, id = {k->mv_data, k->mv_size};
    int rc = sprig__doc_parse(v, &rev, &hash, &sealed);
    if (rc == 0 && sealed.len < SPRIG__SEAL_OVERHEAD) {
        rc = sprig__err(SPRIG_ECORRUPT, "an encrypted document is truncated");
    }
    size_t n = rc ? 0 : sealed.len - SPRIG__SEAL_OVERHEAD;
    sprig_doc *d = rc ? NULL : sprig__malloc(sizeof *d + id.len + n + 1);
    if (rc || !d) {
        return rc ? rc : sprig__err(SPRIG_ENOMEM, "out of memory reading");
    }
    d->revision = rev;
    memcpy(d->hash, hash, 16);
    d->id_len = (uint32_t)id.len;
    d->len = n;
    memcpy(d->data, id.data, id.len);
    d->contents = d->data + id.len;
    sprig__vloc l = sprig__ldb_loc(ldb, 'd', c->name, id);
    l.hdr = (sprig_bytes){(const uint8_t *)v->mv_data + 1, SPRIG__DOC_HDR - 1};
    rc = sprig__codec_open_into(ldb->vault, &l, sprig__doc_flags(v), sealed,
                                d->contents);
    if (rc) {
        sprig__free(d);
        return rc;
    }
    *out = d;
    return SPRIG_OK;
}

/* A plain document (flags exactly SPRIG__CF_CRC: the common case of a
 * read): its CRC checked in one pass over header and payload, then copied
 * straight into the new sprig_doc, without the codec's dispatch or a
 * scratch buffer.  v holds at least the header (its flags said so). */
static int
doc_plain(const sprig__ldb *ldb, const sprig__coll *c, MDB_val *k, MDB_val *v,
          sprig_doc **out)
{
    const uint8_t *p = v->mv_data;
    sprig_bytes id = {k->mv_data, k->mv_size}, contents;
    sprig__vloc l = sprig__ldb_loc(ldb, 'd', c->name, id);
    l.hdr = (sprig_bytes){p + 1, SPRIG__DOC_HDR - 1};
    l.crc_start = id.len == 8 ? &c->crc_start8 : NULL;
    sprig_bytes stored = {p + SPRIG__DOC_HDR, v->mv_size - SPRIG__DOC_HDR};
    int rc = sprig__codec_check(&l, stored, &contents);
    if (rc) {
        return rc;
    }
    uint64_t rev = sprig__get_u64be(p) & SPRIG__REV_MASK;
    *out = sprig__doc_new(id, rev, p + 8, contents);
    return *out ? SPRIG_OK : SPRIG_ENOMEM;
}

/* Copy the stored document at (k, v) into a new sprig_doc. */
static int
doc_from(const sprig__ldb *ldb, const sprig__coll *c, MDB_val *k, MDB_val *v,
         bool headers_only, sprig_buf *scratch, sprig_doc **out)
{
    uint64_t rev;
    const uint8_t *hash = NULL;
    sprig_bytes contents;
    sprig_bytes id = {k->mv_data, k->mv_size};
    uint8_t f = sprig__doc_flags(v);
    if (!headers_only && f == SPRIG__CF_CRC) {
        return doc_plain(ldb, c, k, v, out);
    }
    if (!headers_only &&
        (f == SPRIG__CF_ENC || f == (SPRIG__CF_ENC | SPRIG__CF_CRC))) {
        return doc_sealed(ldb, c, k, v, out);
    }
    int rc = headers_only ? sprig__doc_parse(v, &rev, &hash, &contents)
                          : sprig__doc_read(ldb, c, id, v, &rev, &hash,
                                            &contents, scratch);
    if (rc) {
        return rc;
    }
    if (headers_only) {
        contents.len = 0;
    }
    *out = sprig__doc_new(id, rev, hash, contents);
    return *out ? SPRIG_OK : SPRIG_ENOMEM;
}

static int
no_such_doc(const sprig__ldb *ldb, const char *coll, sprig_bytes id)
{
    int rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DOCUMENT,
                              "no such document in collection '%s'", coll);
    sprig__errinfo_collection(coll);
    sprig__errinfo_id(id);
    sprig__errinfo_database(ldb->name);
    return rc;
}

static int
h_get(sprig_db *db, const char *coll, sprig_bytes id, sprig_doc **out)
{
    sprig__ldb *ldb = LDB(db);
    sprig__coll *c;
    MDB_txn *txn;
    int rc = read_begin(ldb, coll, &c, &txn);
    if (rc) {
        return rc;
    }
    MDB_val k = {id.len, (void *)id.data}, v;
    int mrc = mdb_get(txn, c->dbi, &k, &v);
    if (mrc == MDB_NOTFOUND) { /* confirmed by the neighbours (miss.c) */
        rc = sprig__miss_doc_confirm(txn, ldb, c, &k);
        rc = rc ? rc : no_such_doc(ldb, coll, id);
    } else if (mrc) {
        rc = sprig__mdb_err(mrc, "reading a document");
    } else if (sprig__doc_flags(&v) == SPRIG__CF_CRC) {
        rc = doc_plain(ldb, c, &k, &v, out); /* the common case */
    } else {
        sprig_buf scratch = {0};
        rc = doc_from(ldb, c, &k, &v, false, &scratch, out);
        if (scratch.data) { /* used only by compressed documents */
            sprig_buf_clear(&scratch);
        }
    }
    sprig__env_read_end(ldb->env, txn);
    return rc;
}

static int
h_get_multiple(sprig_db *db, const char *coll, const sprig_bytes *ids, size_t n,
               sprig_doc_list **out)
{
    sprig__ldb *ldb = LDB(db);
    sprig__coll *c;
    MDB_txn *txn;
    sprig_doc_list *l = sprig__calloc(1, sizeof *l);
    if (!l) {
        return sprig__err(SPRIG_ENOMEM, "out of memory reading documents");
    }
    int rc = read_begin(ldb, coll, &c, &txn);
    if (rc) {
        sprig__free(l);
        return rc;
    }
    sprig_buf scratch = {0};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        MDB_val k = {ids[i].len, (void *)ids[i].data}, v;
        int mrc = mdb_get(txn, c->dbi, &k, &v);
        sprig_doc *d = NULL;
        if (mrc == MDB_NOTFOUND) { /* confirmed by the neighbours */
            rc = sprig__miss_doc_confirm(txn, ldb, c, &k);
            continue;
        }
        rc = mrc ? sprig__mdb_err(mrc, "reading a document")
                 : doc_from(ldb, c, &k, &v, false, &scratch, &d);
        rc = rc ? rc : sprig__doc_list_push(l, d);
    }
    sprig_buf_clear(&scratch);
    sprig__env_read_end(ldb->env, txn);
    if (rc) {
        sprig_doc_list_free(l);
        return rc;
    }
    *out = l;
    return SPRIG_OK;
}

/* ---- range iteration --------------------------------------------------- */

/* Does key k lie beyond the far end of the walk? */
static bool
past_end(const MDB_val *k, const sprig_bound *b, bool asc)
{
    if (b->kind == SPRIG_UNBOUNDED) {
        return false;
    }
    sprig_bytes kb = {k->mv_data, k->mv_size};
    int c = sprig__bytes_cmp(kb, b->key);
    if (!asc) {
        c = -c;
    }
    return c > 0 || (c == 0 && b->kind == SPRIG_EXCLUDED);
}

/* Position the cursor on the first key of the walk.  Returns an MDB code. */
static int
range_first(MDB_cursor *cur, const sprig_range *r, bool asc, MDB_val *k,
            MDB_val *v)
{
    const sprig_bound *b = asc ? &r->start : &r->end;
    if (b->kind == SPRIG_UNBOUNDED) {
        return mdb_cursor_get(cur, k, v, asc ? MDB_FIRST : MDB_LAST);
    }
    k->mv_size = b->key.len;
    k->mv_data = (void *)b->key.data;
    int mrc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (asc) {
        if (mrc == 0 && b->kind == SPRIG_EXCLUDED &&
            sprig__bytes_cmp((sprig_bytes){k->mv_data, k->mv_size}, b->key) ==
                0) {
            mrc = mdb_cursor_get(cur, k, v, MDB_NEXT);
        }
        return mrc;
    }
    if (mrc == MDB_NOTFOUND) {
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    }
    if (mrc == 0) {
        int c = sprig__bytes_cmp((sprig_bytes){k->mv_data, k->mv_size}, b->key);
        if (c > 0 || (c == 0 && b->kind == SPRIG_EXCLUDED)) {
            mrc = mdb_cursor_get(cur, k, v, MDB_PREV);
        }
    }
    return mrc;
}

typedef int (*visit_fn)(MDB_val *k, MDB_val *v, void *arg);

/* Walk the keys of `dbi` in range r (NULL: all), calling fn on each. */
static int
walk(MDB_txn *txn, MDB_dbi dbi, const sprig_range *r, sprig_order order,
     uint32_t limit, visit_fn fn, void *arg)
{
    static const sprig_range all;
    if (!r) {
        r = &all;
    }
    bool asc = order != SPRIG_DESC;
    const sprig_bound *far = asc ? &r->end : &r->start;
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    int rc = SPRIG_OK;
    uint32_t n = 0;
    mrc = range_first(cur, r, asc, &k, &v);
    while (mrc == 0 && (limit == 0 || n < limit) && !past_end(&k, far, asc)) {
        if ((rc = fn(&k, &v, arg))) {
            break;
        }
        n++;
        mrc = mdb_cursor_get(cur, &k, &v, asc ? MDB_NEXT : MDB_PREV);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "walking a range");
    }
    return rc;
}

typedef struct list_arg {
    sprig_doc_list *l;
    bool headers_only;
    const sprig__ldb *ldb;
    const sprig__coll *c;
    sprig_buf scratch;
} list_arg;

static int
list_visit(MDB_val *k, MDB_val *v, void *arg)
{
    list_arg *a = arg;
    sprig_doc *d = NULL;
    int rc = doc_from(a->ldb, a->c, k, v, a->headers_only, &a->scratch, &d);
    return rc ? rc : sprig__doc_list_push(a->l, d);
}

static int
h_list(sprig_db *db, const char *coll, const sprig_range *r, sprig_order order,
       uint32_t limit, bool headers_only, sprig_doc_list **out)
{
    sprig__ldb *ldb = LDB(db);
    sprig__coll *c;
    MDB_txn *txn;
    list_arg a = {sprig__calloc(1, sizeof(sprig_doc_list)), headers_only};
    if (!a.l) {
        return sprig__err(SPRIG_ENOMEM, "out of memory listing");
    }
    int rc = read_begin(ldb, coll, &c, &txn);
    if (rc == 0) {
        a.ldb = ldb;
        a.c = c;
        rc = walk(txn, c->dbi, r, order, limit, list_visit, &a);
        sprig__env_read_end(ldb->env, txn);
    }
    sprig_buf_clear(&a.scratch);
    if (rc) {
        sprig_doc_list_free(a.l);
        return rc;
    }
    *out = a.l;
    return SPRIG_OK;
}

static int
count_visit(MDB_val *k, MDB_val *v, void *arg)
{
    (void)k;
    (void)v;
    ++*(uint64_t *)arg;
    return SPRIG_OK;
}

static int
h_count(sprig_db *db, const char *coll, const sprig_range *r, uint64_t *out)
{
    sprig__ldb *ldb = LDB(db);
    sprig__coll *c;
    MDB_txn *txn;
    int rc = read_begin(ldb, coll, &c, &txn);
    if (rc) {
        return rc;
    }
    bool all = !r || (r->start.kind == SPRIG_UNBOUNDED &&
                      r->end.kind == SPRIG_UNBOUNDED);
    if (all) {
        MDB_stat s;
        int mrc = mdb_stat(txn, c->dbi, &s);
        rc = mrc ? sprig__mdb_err(mrc, "counting") : 0;
        *out = mrc ? 0 : s.ms_entries;
    } else {
        rc = walk(txn, c->dbi, r, SPRIG_ASC, 0, count_visit, out);
    }
    sprig__env_read_end(ldb->env, txn);
    return rc;
}

/* The log's keys are its ids 1..N, consecutive (entries are appended,
 * never removed), N its entry count: no CRC covers a key, so a flipped
 * byte of an id that keeps the table's order (only the first or the last
 * can) is caught by this. */
static int
log_key_bad(const sprig__ldb *ldb, uint64_t got, uint64_t want)
{
    return sprig__err(SPRIG_ECORRUPT,
                      "database '%s': its transaction log has id %llu where "
                      "%llu belongs (a damaged key)",
                      ldb->name, (unsigned long long)got,
                      (unsigned long long)want);
}

typedef struct log_arg {
    sprig_txn_log *l;
    const sprig__ldb *ldb;
    uint64_t next; /* the id the next entry must have */
    uint32_t seen;
} log_arg;

static int
log_visit(MDB_val *k, MDB_val *v, void *arg)
{
    log_arg *a = arg;
    if (k->mv_size != 8) {
        return sprig__err(SPRIG_ECORRUPT, "log key has %zu bytes", k->mv_size);
    }
    uint64_t id = sprig__get_u64be(k->mv_data);
    if (id != a->next) {
        return log_key_bad(a->ldb, id, a->next);
    }
    a->next++;
    a->seen++;
    return sprig__txn_log_append(a->l, id,
                                 (sprig_bytes){v->mv_data, v->mv_size});
}

/* After a walk from `since` that saw a->seen entries: when it reached the
 * end, the last id must be the entry count. */
static int
log_end_check(MDB_txn *txn, const sprig__ldb *ldb, const log_arg *a,
              uint32_t limit)
{
    MDB_stat s;
    if (limit && a->seen == limit) {
        return SPRIG_OK; /* stopped before the end */
    }
    int mrc = mdb_stat(txn, ldb->log, &s);
    if (mrc) {
        return sprig__mdb_err(mrc, "reading the log's size");
    }
    if (a->seen ? a->next - 1 != s.ms_entries : a->next <= s.ms_entries) {
        return log_key_bad(ldb, a->next - 1, s.ms_entries);
    }
    return SPRIG_OK;
}

static int
h_list_executed(sprig_db *db, uint64_t since, uint32_t limit,
                sprig_txn_log **out)
{
    sprig__ldb *ldb = LDB(db);
    MDB_txn *txn;
    sprig_txn_log *l = sprig__calloc(1, sizeof *l);
    if (!l) {
        return sprig__err(SPRIG_ENOMEM, "out of memory reading the log");
    }
    uint8_t kb[8];
    sprig__put_u64be(kb, since);
    sprig_range r = {{SPRIG_INCLUDED, {kb, 8}}, {SPRIG_UNBOUNDED, {0}}};
    log_arg a = {l, ldb, since ? since : 1, 0};
    int rc = read_begin(ldb, NULL, NULL, &txn);
    if (rc == 0) {
        rc = walk(txn, ldb->log, &r, SPRIG_ASC, limit, log_visit, &a);
        rc = rc ? rc : log_end_check(txn, ldb, &a, limit);
        sprig__env_read_end(ldb->env, txn);
    }
    if (rc) {
        sprig_txn_log_free(l);
        return rc;
    }
    *out = l;
    return SPRIG_OK;
}

int
sprig__last_txn_id(MDB_txn *txn, sprig__ldb *ldb, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat s;
    int mrc = mdb_cursor_open(txn, ldb->log, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    *out = 0;
    if (mrc == MDB_NOTFOUND) {
        return SPRIG_OK;
    }
    if (mrc == 0 && k.mv_size != 8) {
        return sprig__err(SPRIG_ECORRUPT, "log key has %zu bytes", k.mv_size);
    }
    mrc = mrc ? mrc : mdb_stat(txn, ldb->log, &s);
    if (mrc == 0 && sprig__get_u64be(k.mv_data) != s.ms_entries) {
        return log_key_bad(ldb, sprig__get_u64be(k.mv_data), s.ms_entries);
    }
    if (mrc == 0) {
        *out = sprig__get_u64be(k.mv_data);
    }
    return sprig__mdb_err(mrc, "reading the last transaction id");
}

static int
h_last_txn_id(sprig_db *db, uint64_t *out)
{
    sprig__ldb *ldb = LDB(db);
    MDB_txn *txn;
    int rc = read_begin(ldb, NULL, NULL, &txn);
    if (rc) {
        return rc;
    }
    rc = sprig__last_txn_id(txn, ldb, out);
    sprig__env_read_end(ldb->env, txn);
    return rc;
}

static int
h_submit(sprig_db *db, struct sprig__cmd *cmd,
         void (*done)(void *udata, int rc, struct sprig__cmd *cmd), void *udata)
{
    return sprig__ldb_submit(LDB(db), cmd, done, udata);
}

static const sprig_db_ops local_db_ops = {
    .close = h_close,
    .name = h_name,
    .apply = h_apply,
    .get = h_get,
    .get_multiple = h_get_multiple,
    .list = h_list,
    .count = h_count,
    .list_executed = h_list_executed,
    .last_txn_id = h_last_txn_id,
    .view_query = sprig__lview_op_query,
    .view_reduce = sprig__lview_op_reduce,
    .view_reduce_grouped = sprig__lview_op_reduce_grouped,
    .view_delete_docs = sprig__view_delete_docs_generic,
    .kv_set = sprig__kv_op_set,
    .kv_get = sprig__kv_op_get,
    .kv_incr = sprig__kv_op_incr,
    .kv_delete = sprig__kv_op_delete,
    .kv_list = sprig__kv_op_list,
    .subscriber_new = sprig__pubsub_subscriber_new,
    .publish = sprig__pubsub_publish,
    .replicated = sprig__pubsub_replicated,
    .watch = sprig__changes_watch,
    .unwatch = sprig__changes_unwatch,
    .dropped = sprig__db_dropped,
    .submit = h_submit,
};

sprig__ldb *
sprig__db_ldb(sprig_db *db)
{
    return LDB(db);
}

bool
sprig__db_dropped(const sprig_db *db)
{
    return atomic_load(&((const ldb_handle *)db)->ldb->dropped);
}

void
sprig__db_writer_stats(sprig_db *db, uint64_t *batches, uint64_t *requests)
{
    *batches = atomic_load(&LDB(db)->writer.batches);
    *requests = atomic_load(&LDB(db)->writer.requests);
}

int
sprig__ldb_handle(sprig__ldb *ldb, bool owns_storage, sprig_db **out)
{
    ldb_handle *h = sprig__calloc(1, sizeof *h);
    if (!h) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a handle");
    }
    h->base.ops = &local_db_ops;
    h->ldb = ldb;
    h->owns_storage = owns_storage;
    *out = &h->base;
    return SPRIG_OK;
}
