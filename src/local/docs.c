/*
 * docs.c -- applying a transaction's operations to a database.
 *
 * A transaction reaches the writer as a TXN command (src/core/cmd.h).
 * sprig__docs_apply() (the synchronous API) checks the collections in the
 * caller's thread, hashes the contents there, and runs the command through
 * the database's writer; the writer calls sprig__docs_apply_cmd() inside an
 * LMDB write transaction -- possibly nested in a group commit, possibly
 * more than once if the map had to grow, so it resets its outputs on entry.
 * Each successful transaction takes the next id from the log and appends
 * one log record naming the documents it changed, stamped with the
 * command's time (never the applying machine's clock).
 *
 * Revisions: a new document has revision 1; each change adds one; writing
 * contents whose bytes equal the stored ones changes nothing (the hash,
 * hash.c, only names contents in headers; the bytes decide, so a hash
 * collision can never drop an update).  An expected
 * header matches when its revision equals the stored one and its hash is
 * either all zero (revision-only) or equal to the stored hash, so a header
 * taken before a delete does not match a re-created document.
 */
#include "core/cmd.h"
#include "local.h"
#include "views.h"

#include <stdio.h>

int
sprig__doc_parse(MDB_val *v, uint64_t *rev, const uint8_t **hash,
                 sprig_bytes *contents)
{
    if (v->mv_size < SPRIG__DOC_HDR) {
        return sprig__err(SPRIG_ECORRUPT,
                          "stored document is %zu bytes, "
                          "shorter than its header",
                          v->mv_size);
    }
    const uint8_t *p = v->mv_data;
    *rev = sprig__get_u64be(p) & SPRIG__REV_MASK;
    *hash = p + 8;
    contents->data = p + SPRIG__DOC_HDR;
    contents->len = v->mv_size - SPRIG__DOC_HDR;
    return SPRIG_OK;
}

int
sprig__doc_read(const sprig__ldb *ldb, const sprig__coll *c, sprig_bytes id,
                MDB_val *v, uint64_t *rev, const uint8_t **hash,
                sprig_bytes *contents, sprig_buf *scratch)
{
    int rc = sprig__doc_parse(v, rev, hash, contents);
    uint8_t f = sprig__doc_flags(v);
    if (rc || (f == 0 && !ldb->crc_all)) {
        return rc;
    }
    sprig__vloc l = sprig__ldb_loc(ldb, 'd', c->name, id);
    l.hdr = (sprig_bytes){(const uint8_t *)v->mv_data + 1, SPRIG__DOC_HDR - 1};
    l.crc_start = id.len == 8 ? &c->crc_start8 : NULL;
    return sprig__codec_decode(ldb->vault, &l, f, *contents, scratch, contents);
}

typedef struct apply_ctx {
    sprig__ldb *ldb;
    const sprig__cmd *cmd; /* its ops */
    sprig_txn_result *res;
    sprig__coll **colls;   /* per operation */
    sprig_change *changes; /* up to t->n */
    size_t n_changes;
    sprig_buf record;            /* log record scratch */
    sprig__vscratch vs;          /* view maintenance scratch (view_index.c) */
    const uint8_t (*hashes)[16]; /* per operation, or NULL: hash here */
    uint8_t hash[16];            /* the current op's, when hashed here */
    sprig_buf enc, dec;     /* codec scratch: encoded new, decoded stored */
    sprig__coll *push_coll; /* the collection whose next push id is known */
    uint64_t push_next;
    bool pushed; /* the current operation's id was pushed */
} apply_ctx;

/* What the operation found stored. */
typedef struct stored {
    bool found;
    uint64_t rev;
    uint8_t hash[16];
    sprig_bytes contents; /* in the map: valid until the next write */
} stored;

static int
meta_get_u64(MDB_txn *txn, MDB_dbi meta, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int mrc = mdb_get(txn, meta, &k, &v);
    *out = 0;
    if (mrc == MDB_NOTFOUND) {
        return SPRIG_OK;
    }
    if (mrc) {
        return sprig__mdb_err(mrc, "reading meta");
    }
    if (v.mv_size != 8) {
        return sprig__err(SPRIG_ECORRUPT, "meta '%s' has %zu bytes", key,
                          v.mv_size);
    }
    *out = sprig__get_u64be(v.mv_data);
    return SPRIG_OK;
}

static int
meta_put_u64(MDB_txn *txn, MDB_dbi meta, const char *key, uint64_t val)
{
    uint8_t b[8];
    sprig__put_u64be(b, val);
    MDB_val k = {strlen(key), (void *)key}, v = {8, b};
    return sprig__mdb_err(mdb_put(txn, meta, &k, &v, 0), "writing meta");
}

/* The largest u64 id stored in `c` (0 when empty). */
static int
last_u64_id(MDB_txn *txn, MDB_dbi dbi, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *out = mrc == 0 && k.mv_size == 8 ? sprig__get_u64be(k.mv_data) : 0;
    mdb_cursor_close(cur);
    return mrc && mrc != MDB_NOTFOUND ? sprig__mdb_err(mrc, "finding the "
                                                            "last id")
                                      : SPRIG_OK;
}

static void
seq_key(const sprig__coll *c, char *key, size_t n)
{
    snprintf(key, n, SPRIG__META_SEQ "%s", c->name);
}

/* The next pushed id: one past both the largest id stored and the
 * sequence recorded when the largest was deleted, so ids are never handed
 * out twice.  Found once per transaction and collection, then counted up:
 * pushes write nothing but their documents. */
static int
next_push_id(MDB_txn *txn, apply_ctx *a, sprig__coll *c, uint64_t *out)
{
    if (a->push_coll != c) {
        char key[8 + SPRIG_NAME_MAX];
        uint64_t seq, last;
        seq_key(c, key, sizeof key);
        int rc = meta_get_u64(txn, a->ldb->meta, key, &seq);
        rc = rc ? rc : last_u64_id(txn, c->dbi, &last);
        if (rc) {
            return rc;
        }
        a->push_coll = c;
        a->push_next = (last > seq ? last : seq) + 1;
    }
    if (a->push_next == 0) { /* wrapped past UINT64_MAX */
        return sprig__err(SPRIG_EFULL, "collection '%s' has no u64 ids left",
                          c->name);
    }
    *out = a->push_next++;
    return SPRIG_OK;
}

/* Deleting the largest id: remember it, so a push never reuses it. */
static int
note_deleted(MDB_txn *txn, apply_ctx *a, sprig__coll *c, sprig_bytes id)
{
    if (c->id_kind != SPRIG_ID_U64 || id.len != 8) {
        return SPRIG_OK;
    }
    char key[8 + SPRIG_NAME_MAX];
    uint64_t seq, n = sprig__get_u64be(id.data);
    seq_key(c, key, sizeof key);
    int rc = meta_get_u64(txn, a->ldb->meta, key, &seq);
    if (rc == 0 && n > seq) {
        uint64_t last;
        rc = last_u64_id(txn, c->dbi, &last); /* after the delete */
        if (rc == 0 && last < n) {            /* n was the largest */
            rc = meta_put_u64(txn, a->ldb->meta, key, n);
        }
    }
    return rc;
}

/* Fill hb->id for the operation: its own id, or a pushed one. */
static int
op_id(MDB_txn *txn, apply_ctx *a, size_t i, sprig_header_buf *hb)
{
    const sprig__op *op = &a->cmd->ops[i];
    sprig__coll *c = a->colls[i];
    if (!op->has_id) {
        if (c->id_kind != SPRIG_ID_U64) {
            return sprig__err(SPRIG_EINVAL,
                              "collection '%s' has natural "
                              "ids: an insert must name its id",
                              c->name);
        }
        uint64_t n = 0;
        int rc = next_push_id(txn, a, c, &n);
        if (rc) {
            return rc;
        }
        sprig_key_u64(n, hb->id);
        hb->id_len = 8;
        a->pushed = true;
        return SPRIG_OK;
    }
    if (c->id_kind == SPRIG_ID_U64 && op->id.len != 8) {
        return sprig__err(SPRIG_EINVAL,
                          "collection '%s' has u64 ids: an id "
                          "is 8 bytes (sprig_id_u64), not %zu",
                          c->name, op->id.len);
    }
    memcpy(hb->id, op->id.data, op->id.len);
    hb->id_len = (uint32_t)op->id.len;
    if (a->push_coll == c) { /* a named id may pass the known next one */
        uint64_t n = sprig__get_u64be(op->id.data);
        if (n >= a->push_next) {
            a->push_next = n + 1;
        }
    }
    return SPRIG_OK;
}

/* What is stored under k.  A miss that would answer "not found"
 * (`confirm`: update, delete, check) is confirmed by the neighbours
 * (miss.c); an insert's or overwrite's is not: the check would cost ~44%
 * of an insert of a named id (docs/reliability.md), and the renamed record
 * stays refused by its own CRC. */
static int
load_stored(MDB_txn *txn, apply_ctx *a, sprig__coll *c, MDB_val *k,
            bool confirm, stored *s)
{
    MDB_val v;
    int mrc = mdb_get(txn, c->dbi, k, &v);
    memset(s, 0, sizeof *s);
    if (mrc == MDB_NOTFOUND) {
        return confirm ? sprig__miss_doc_confirm(txn, a->ldb, c, k) : SPRIG_OK;
    }
    if (mrc) {
        return sprig__mdb_err(mrc, "reading a document");
    }
    const uint8_t *hash = NULL;
    sprig_bytes id = {k->mv_data, k->mv_size};
    int rc = sprig__doc_read(a->ldb, c, id, &v, &s->rev, &hash, &s->contents,
                             &a->dec);
    if (rc == 0) {
        s->found = true;
        memcpy(s->hash, hash, 16);
    }
    return rc;
}

static bool
expected_matches(const sprig__op *op, const stored *s)
{
    static const uint8_t zero[16];
    if (op->expected_rev != s->rev) {
        return false;
    }
    return memcmp(op->expected_hash, zero, 16) == 0 ||
           memcmp(op->expected_hash, s->hash, 16) == 0;
}

static int
conflict(apply_ctx *a, const char *cname, const sprig_header_buf *hb,
         const stored *s, const char *why)
{
    a->res->has_conflict = true;
    a->res->conflict = *hb;
    a->res->conflict.revision = s->rev;
    memcpy(a->res->conflict.hash, s->hash, 16);
    int rc = sprig__err_about(SPRIG_ECONFLICT, SPRIG_ERROR_KIND_DOCUMENT,
                              "%s (stored revision %llu)", why,
                              (unsigned long long)s->rev);
    sprig__errinfo_id((sprig_bytes){hb->id, hb->id_len});
    sprig__errinfo_header(&a->res->conflict);
    sprig__errinfo_collection(cname);
    sprig__errinfo_database(a->ldb->name);
    return rc;
}

static void
record_change(apply_ctx *a, size_t i, const sprig_header_buf *hb, bool del)
{
    sprig_change *ch = &a->changes[a->n_changes++];
    ch->collection = a->colls[i]->name;
    ch->id.data = hb->id;
    ch->id.len = hb->id_len;
    ch->revision = hb->revision;
    ch->deleted = del;
}

/* Store contents as revision `rev`; the header gets rev and the hash. */
static int
put_doc(MDB_txn *txn, apply_ctx *a, size_t i, MDB_val *k, uint64_t rev,
        const uint8_t hash[16], sprig_header_buf *hb)
{
    const sprig__op *op = &a->cmd->ops[i];
    sprig_bytes id = {k->mv_data, k->mv_size}, body;
    uint8_t cf, h[SPRIG__DOC_HDR];
    sprig__put_u64be(h, rev);
    memcpy(h + 8, hash, 16);
    sprig__vloc l = sprig__ldb_loc(a->ldb, 'd', a->colls[i]->name, id);
    l.hdr = (sprig_bytes){h + 1, SPRIG__DOC_HDR - 1}; /* its CRC covers it */
    l.crc_start = id.len == 8 ? &a->colls[i]->crc_start8 : NULL;
    int rc = sprig__codec_encode(&a->colls[i]->codec, &l, op->contents, &a->enc,
                                 &cf, &body);
    if (rc) {
        return rc;
    }
    MDB_val v = {SPRIG__DOC_HDR + body.len, NULL};
    /* a pushed id is past every stored one: LMDB's append path */
    unsigned flags = MDB_RESERVE | (a->pushed ? MDB_APPEND : 0);
    int mrc = mdb_put(txn, a->colls[i]->dbi, k, &v, flags);
    if (mrc) {
        return sprig__mdb_err(mrc, "writing a document");
    }
    uint8_t *p = v.mv_data;
    h[0] = cf; /* revisions stay below 2^56 */
    memcpy(p, h, SPRIG__DOC_HDR);
    if (body.len) {
        memcpy(p + SPRIG__DOC_HDR, body.data, body.len);
    }
    hb->revision = rev;
    memcpy(hb->hash, hash, 16);
    record_change(a, i, hb, false);
    return sprig__views_changed(txn, a->ldb, a->colls[i], id, rev, hash,
                                &op->contents, &a->vs);
}

/* Whether `c` equals the stored contents, byte for byte (a hash match
 * alone could be a collision; and a document stored under the old hash
 * function has a different hash for the same bytes). */
static bool
same_contents(const stored *s, sprig_bytes c)
{
    return s->found && s->contents.len == c.len &&
           (c.len == 0 || memcmp(s->contents.data, c.data, c.len) == 0);
}

/* Insert, overwrite or update: write unless the contents are unchanged. */
static int
write_doc(MDB_txn *txn, apply_ctx *a, size_t i, MDB_val *k, const stored *s,
          sprig_header_buf *hb)
{
    const uint8_t *hash = a->hash;
    if (a->hashes) {
        hash = a->hashes[i];
    } else {
        sprig__doc_hash(a->colls[i]->hash_key, a->cmd->ops[i].contents,
                        a->hash);
    }
    if (same_contents(s, a->cmd->ops[i].contents)) {
        hb->revision = s->rev;
        memcpy(hb->hash, s->hash, 16);
        return SPRIG_OK;
    }
    return put_doc(txn, a, i, k, s->found ? s->rev + 1 : 1, hash, hb);
}

static int
apply_op(MDB_txn *txn, apply_ctx *a, size_t i)
{
    const sprig__op *op = &a->cmd->ops[i];
    sprig_header_buf *hb = &a->res->headers[i];
    const char *cname = a->colls[i]->name;
    stored s = {0};
    a->pushed = false;
    int rc = op_id(txn, a, i, hb);
    MDB_val k = {hb->id_len, hb->id};
    if (rc == 0 && !a->pushed) { /* a pushed id cannot exist yet */
        bool confirm =
            op->kind != SPRIG__OP_INSERT && op->kind != SPRIG__OP_OVERWRITE;
        rc = load_stored(txn, a, a->colls[i], &k, confirm, &s);
    }
    if (rc) {
        return rc;
    }
    if (op->kind == SPRIG__OP_INSERT && s.found) {
        return conflict(a, cname, hb, &s, "document already exists");
    }
    if (op->kind != SPRIG__OP_INSERT && op->kind != SPRIG__OP_OVERWRITE) {
        if (!s.found) {
            rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DOCUMENT,
                                  "no such document in collection '%s'", cname);
            sprig__errinfo_collection(cname);
            sprig__errinfo_id((sprig_bytes){hb->id, hb->id_len});
            sprig__errinfo_database(a->ldb->name);
            return rc;
        }
        if (op->has_expected && !expected_matches(op, &s)) {
            return conflict(a, cname, hb, &s,
                            "document revision does not match");
        }
    }
    switch (op->kind) {
    case SPRIG__OP_INSERT:
    case SPRIG__OP_OVERWRITE:
    case SPRIG__OP_UPDATE: return write_doc(txn, a, i, &k, &s, hb);
    case SPRIG__OP_DELETE:
        hb->revision = s.rev;
        memcpy(hb->hash, s.hash, 16);
        rc = sprig__mdb_err(mdb_del(txn, a->colls[i]->dbi, &k, NULL),
                            "deleting a document");
        if (rc == 0) {
            record_change(a, i, hb, true);
            sprig_bytes id = {hb->id, hb->id_len};
            rc = note_deleted(txn, a, a->colls[i], id);
            rc = rc ? rc
                    : sprig__views_changed(txn, a->ldb, a->colls[i], id, s.rev,
                                           s.hash, NULL, &a->vs);
        }
        return rc;
    case SPRIG__OP_CHECK:
        hb->revision = s.rev;
        memcpy(hb->hash, s.hash, 16);
        return SPRIG_OK;
    }
    return sprig__err(SPRIG_EINVAL, "unknown operation kind %d", op->kind);
}

/* Give the transaction its id and write its log record. */
static int
log_txn(MDB_txn *txn, apply_ctx *a)
{
    return sprig__log_write(txn, a->ldb->log, a->cmd->now_ms, a->changes,
                            a->n_changes, &a->record, &a->res->id);
}

/* Run the ops in order; the first failure stops (its index in res). */
static int
apply_txn(MDB_txn *txn, apply_ctx *a)
{
    a->n_changes = 0;
    a->push_coll = NULL; /* this run may follow an aborted one */
    a->res->id = 0;
    a->res->failed = -1;
    a->res->error = 0;
    a->res->has_conflict = false;
    int rc = 0;
    for (size_t i = 0; i < a->cmd->n_ops && rc == 0; i++) {
        rc = sprig__ldb_coll(a->ldb, a->cmd->ops[i].collection, &a->colls[i]);
        rc = rc ? rc : apply_op(txn, a, i);
        if (rc) {
            a->res->failed = (long)i;
            a->res->error = rc;
        }
    }
    return rc ? rc : log_txn(txn, a);
}

int
sprig__docs_apply_cmd(MDB_txn *txn, sprig__ldb *ldb, const sprig__cmd *cmd,
                      sprig__cmd_out *out)
{
    size_t n = cmd->n_ops;
    sprig__coll *colls1[1];
    sprig_change changes1[1];
    sprig_txn_result *own = NULL; /* when the submitter wants no result */
    if (!out->txn && !(own = sprig__txn_result_new(n))) {
        return SPRIG_ENOMEM;
    }
    apply_ctx a = {ldb, cmd, own ? own : out->txn, colls1, changes1, 0, {0}};
    a.hashes = (const uint8_t(*)[16])cmd->hashes;
    if (n > 1) {
        a.colls = sprig__malloc(n * sizeof *a.colls);
        a.changes = sprig__malloc(n * sizeof *a.changes);
    }
    int rc = a.colls && a.changes
                 ? apply_txn(txn, &a)
                 : sprig__err(SPRIG_ENOMEM, "out of memory applying");
    if (n > 1) {
        sprig__free(a.colls);
        sprig__free(a.changes);
    }
    sprig_buf_clear(&a.record);
    sprig_buf_clear(&a.enc);
    sprig_buf_clear(&a.dec);
    sprig__vscratch_free(&a.vs);
    out->log_id = rc ? 0 : a.res->id;
    sprig_txn_result_free(own);
    return rc;
}

/* The hash key of the collection `op` writes (the database's when the
 * collection is unknown: apply fails the op anyway). */
static const uint8_t *
op_hash_key(const sprig__ldb *ldb, const sprig__op *op)
{
    for (size_t i = 0; op->collection && i < ldb->n_colls; i++) {
        if (strcmp(ldb->colls[i].name, op->collection) == 0) {
            return ldb->colls[i].hash_key;
        }
    }
    return ldb->hash_key;
}

int
sprig__cmd_hash(const sprig__ldb *ldb, sprig__cmd *c)
{
    if (c->kind != SPRIG__CMD_TXN) {
        return SPRIG_OK;
    }
    if (!c->hashes) {
        c->hash_mem_ = sprig__malloc((c->n_ops ? c->n_ops : 1) * 16);
        if (!c->hash_mem_) {
            return sprig__err(SPRIG_ENOMEM, "out of memory hashing");
        }
        c->hashes = c->hash_mem_;
    }
    for (size_t i = 0; i < c->n_ops; i++) {
        if (c->ops[i].kind <= SPRIG__OP_OVERWRITE) {
            sprig__doc_hash(op_hash_key(ldb, &c->ops[i]), c->ops[i].contents,
                            c->hashes[i]);
        }
    }
    return SPRIG_OK;
}

int
sprig__docs_apply(sprig__ldb *ldb, const sprig_txn *t, sprig_txn_result *res)
{
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++) { /* fail early, here */
        sprig__coll *c;
        rc = sprig__ldb_coll(ldb, t->ops[i].collection, &c);
        if (rc) {
            res->failed = (long)i;
            res->error = rc;
            return rc;
        }
    }
    uint8_t hashes1[1][16];
    sprig__cmd cmd = {.kind = SPRIG__CMD_TXN, .ops = t->ops, .n_ops = t->n};
    cmd.now_ms = sprig__ldb_now(ldb);
    cmd.out.txn = res;
    cmd.hashes = t->n == 1 ? hashes1 : NULL;
    /* hashing is the caller's work, outside the writer's serial part */
    rc = sprig__cmd_hash(ldb, &cmd);
    rc = rc ? rc : sprig__ldb_run(ldb, &cmd);
    sprig__cmd_clear(&cmd);
    return rc;
}
