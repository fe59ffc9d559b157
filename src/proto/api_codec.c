/*
 * api_codec.c -- encoding and decoding the payloads of the API table's
 * rows.  A payload is a map of named fields; each field's type picks one
 * codec below.  Scalars and borrowed bytes are handled inline; composite
 * values (documents, transactions, logs, lists) have an encode and a decode
 * function each, and own what they decode until sprig__api_free().
 *
 * Decoding trusts nothing: types are checked, ids and contents respect the
 * engine's limits, and every error is SPRIG_EPROTO naming the field.
 */
#include "core/view.h"
#include "proto/api.h"

#include <stdio.h>

#define AT(s, off, T) ((T *)((char *)(s) + (off)))
#define CAT(s, off, T) ((const T *)((const char *)(s) + (off)))

/* Lists whose elements cost much more memory than wire bytes (a 1-byte
 * empty bin becomes a 16-byte sprig_bytes, a tiny operation a heap block)
 * are capped, so one 16 MiB frame cannot make a peer allocate gigabytes. */
#define MAX_IDS (1u << 16)       /* ids in a get_multiple */
#define MAX_OPS (1u << 17)       /* operations in a transaction */
#define MAX_LOG_ITEMS (1u << 17) /* log entries, changes of one entry */

static int
read_capped(sprig__mp_rd *r, uint32_t max, const char *what, uint32_t *n)
{
    int rc = sprig__mp_read_array(r, n);
    if (rc == 0 && *n > max) {
        rc = sprig__err(SPRIG_ETOOBIG, "%u %s is over the limit of %u", *n,
                        what, max);
    }
    return rc;
}

/* ---- small composites --------------------------------------------------- */

void
sprig__enc_header(sprig__mp_wr *w, sprig_header h)
{
    sprig__mp_array(w, 3);
    sprig__mp_bin(w, h.id);
    sprig__mp_u64(w, h.revision);
    sprig__mp_bin(w, (sprig_bytes){h.hash, 16});
}

static void
enc_header(sprig__mp_wr *w, const sprig_header_buf *h)
{
    sprig__enc_header(w, sprig_header_of(h));
}

int
sprig__dec_header(sprig__mp_rd *r, sprig_header_buf *h)
{
    uint32_t n;
    sprig_bytes id, hash;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 3) {
        rc = sprig__err(SPRIG_EPROTO, "a header has 3 elements");
    }
    rc = rc ? rc : sprig__mp_read_bin(r, &id);
    rc = rc ? rc : sprig__mp_read_u64(r, &h->revision);
    rc = rc ? rc : sprig__mp_read_bin(r, &hash);
    if (rc == 0 && (id.len > SPRIG_ID_MAX || hash.len != 16)) {
        rc = sprig__err(SPRIG_EPROTO,
                        "a header's id is at most %d bytes "
                        "and its hash 16",
                        SPRIG_ID_MAX);
    }
    if (rc == 0) {
        memcpy(h->id, id.data, id.len);
        h->id_len = (uint32_t)id.len;
        memcpy(h->hash, hash.data, 16);
    }
    return rc;
}

static void
enc_bound(sprig__mp_wr *w, const sprig_bound *b)
{
    sprig__mp_array(w, 2);
    sprig__mp_u64(w, b->kind);
    if (b->kind == SPRIG_UNBOUNDED) {
        sprig__mp_nil(w);
    } else {
        sprig__mp_bin(w, b->key);
    }
}

static int
dec_bound(sprig__mp_rd *r, sprig_bound *b)
{
    uint32_t n;
    uint64_t kind = 0;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 2) {
        rc = sprig__err(SPRIG_EPROTO, "a range bound has 2 elements");
    }
    rc = rc ? rc : sprig__mp_read_u64(r, &kind);
    if (rc == 0 && kind > SPRIG_EXCLUDED) {
        rc = sprig__err(SPRIG_EPROTO, "range bound kind %llu is unknown",
                        (unsigned long long)kind);
    }
    b->kind = (sprig_bound_kind)kind;
    if (rc == 0 && sprig__mp_peek(r) == SPRIG__MP_NIL) {
        b->key = (sprig_bytes){NULL, 0};
        return sprig__mp_read_nil(r);
    }
    return rc ? rc : sprig__mp_read_bin(r, &b->key);
}

void
sprig__enc_range(sprig__mp_wr *w, const sprig_range *r)
{
    sprig__mp_array(w, 2);
    enc_bound(w, &r->start);
    enc_bound(w, &r->end);
}

/* A range; nil is the whole key space (both bounds unbounded). */
int
sprig__dec_range(sprig__mp_rd *r, sprig_range *out)
{
    uint32_t n;
    if (sprig__mp_peek(r) == SPRIG__MP_NIL) {
        out->start = out->end = (sprig_bound){SPRIG_UNBOUNDED, {NULL, 0}};
        return sprig__mp_read_nil(r);
    }
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 2) {
        rc = sprig__err(SPRIG_EPROTO, "a range has 2 bounds");
    }
    rc = rc ? rc : dec_bound(r, &out->start);
    return rc ? rc : dec_bound(r, &out->end);
}

static int
dec_bytes_list(sprig__mp_rd *r, sprig__bytes_list *l)
{
    uint32_t n;
    int rc = read_capped(r, MAX_IDS, "ids", &n);
    if (rc == 0 && n) {
        l->items = sprig__calloc(n, sizeof *l->items);
        rc = l->items ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = sprig__mp_read_bin(r, &l->items[i]);
        l->n = i + 1;
    }
    return rc;
}

/* ---- documents ---------------------------------------------------------- */

void
sprig__enc_doc(sprig__mp_wr *w, const sprig_doc *d)
{
    sprig_header h = sprig_doc_header(d);
    sprig__mp_array(w, 4);
    sprig__mp_bin(w, h.id);
    sprig__mp_u64(w, h.revision);
    sprig__mp_bin(w, (sprig_bytes){h.hash, 16});
    sprig__mp_bin(w, sprig_doc_contents(d));
}

int
sprig__dec_doc(sprig__mp_rd *r, sprig_doc **out)
{
    uint32_t n;
    uint64_t rev;
    sprig_bytes id, hash, contents;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 4) {
        rc = sprig__err(SPRIG_EPROTO, "a document has 4 elements");
    }
    rc = rc ? rc : sprig__mp_read_bin(r, &id);
    rc = rc ? rc : sprig__mp_read_u64(r, &rev);
    rc = rc ? rc : sprig__mp_read_bin(r, &hash);
    rc = rc ? rc : sprig__mp_read_bin(r, &contents);
    if (rc == 0 && (id.len > SPRIG_ID_MAX || hash.len != 16)) {
        rc = sprig__err(SPRIG_EPROTO, "a document's id or hash is malformed");
    }
    if (rc == 0) {
        *out = sprig__doc_new(id, rev, hash.data, contents);
        rc = *out ? 0 : SPRIG_ENOMEM;
    }
    return rc;
}

static void
enc_doc_list(sprig__mp_wr *w, const sprig_doc_list *l)
{
    size_t n = sprig_doc_list_count(l);
    sprig__mp_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        sprig__enc_doc(w, sprig_doc_list_get(l, i));
    }
}

static int
dec_doc_list(sprig__mp_rd *r, sprig_doc_list **out)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0) {
        *out = sprig__calloc(1, sizeof **out);
        rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        sprig_doc *d;
        rc = sprig__dec_doc(r, &d);
        rc = rc ? rc : sprig__doc_list_push(*out, d);
    }
    return rc;
}

/* ---- transactions -------------------------------------------------------- */

static void
enc_txn(sprig__mp_wr *w, const sprig_txn *t)
{
    sprig__mp_array(w, (uint32_t)t->n);
    for (size_t i = 0; i < t->n; i++) {
        const sprig__op *op = &t->ops[i];
        sprig__mp_array(w, 6);
        sprig__mp_u64(w, op->kind);
        sprig__mp_str(w, op->collection);
        if (op->has_id) {
            sprig__mp_bin(w, op->id);
        } else {
            sprig__mp_nil(w);
        }
        if (op->kind <= SPRIG__OP_OVERWRITE) {
            sprig__mp_bin(w, op->contents);
        } else {
            sprig__mp_nil(w);
        }
        if (op->has_expected) {
            sprig__mp_u64(w, op->expected_rev);
            sprig__mp_bin(w, (sprig_bytes){op->expected_hash, 16});
        } else {
            sprig__mp_nil(w);
            sprig__mp_nil(w);
        }
    }
}

/* Read bin-or-nil; *present says which. */
static int
opt_bin(sprig__mp_rd *r, sprig_bytes *v, bool *present)
{
    *present = sprig__mp_peek(r) != SPRIG__MP_NIL;
    return *present ? sprig__mp_read_bin(r, v) : sprig__mp_read_nil(r);
}

static int
opt_u64(sprig__mp_rd *r, uint64_t *v, bool *present)
{
    *present = sprig__mp_peek(r) != SPRIG__MP_NIL;
    return *present ? sprig__mp_read_u64(r, v) : sprig__mp_read_nil(r);
}

/* Add one decoded operation through the public builders. */
static int
add_op(sprig_txn *t, uint64_t kind, const char *coll, const sprig_bytes *id,
       sprig_bytes contents, const sprig_header *expected)
{
    if ((kind == SPRIG__OP_UPDATE || kind == SPRIG__OP_DELETE) && !expected) {
        return sprig__err(SPRIG_EPROTO, "update and delete need a revision");
    }
    if (kind != SPRIG__OP_INSERT && !id) {
        return sprig__err(SPRIG_EPROTO, "only inserts may omit the id");
    }
    switch (kind) {
    case SPRIG__OP_INSERT: return sprig_txn_insert(t, coll, id, contents);
    case SPRIG__OP_UPDATE: return sprig_txn_update(t, coll, expected, contents);
    case SPRIG__OP_OVERWRITE:
        return sprig_txn_overwrite(t, coll, *id, contents);
    case SPRIG__OP_DELETE: return sprig_txn_delete(t, coll, expected);
    case SPRIG__OP_CHECK: return sprig_txn_check(t, coll, *id, expected);
    default:
        return sprig__err(SPRIG_EPROTO, "operation kind %llu is unknown",
                          (unsigned long long)kind);
    }
}

static int
dec_op(sprig__mp_rd *r, sprig_txn *t)
{
    uint32_t n;
    uint64_t kind, rev = 0;
    sprig_bytes coll, id = {0}, contents = {0}, hash = {0};
    bool has_id, has_contents, has_rev, has_hash;
    char cname[SPRIG_NAME_MAX + 1];
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 6) {
        rc = sprig__err(SPRIG_EPROTO, "an operation has 6 elements");
    }
    rc = rc ? rc : sprig__mp_read_u64(r, &kind);
    rc = rc ? rc : sprig__mp_read_str(r, &coll);
    if (rc == 0 && (coll.len == 0 || coll.len > SPRIG_NAME_MAX)) {
        rc = sprig__err(SPRIG_EPROTO, "an operation's collection name is "
                                      "empty or too long");
    }
    rc = rc ? rc : opt_bin(r, &id, &has_id);
    rc = rc ? rc : opt_bin(r, &contents, &has_contents);
    rc = rc ? rc : opt_u64(r, &rev, &has_rev);
    rc = rc ? rc : opt_bin(r, &hash, &has_hash);
    if (rc == 0 && has_hash && hash.len != 16) {
        rc = sprig__err(SPRIG_EPROTO, "an expected hash has 16 bytes");
    }
    if (rc) {
        return rc;
    }
    memcpy(cname, coll.data, coll.len);
    cname[coll.len] = 0;
    sprig_header exp = {id, rev, {0}};
    if (has_hash) {
        memcpy(exp.hash, hash.data, 16);
    }
    return add_op(t, kind, cname, has_id ? &id : NULL, contents,
                  has_rev ? &exp : NULL);
}

static int
dec_txn(sprig__mp_rd *r, sprig_txn **out)
{
    uint32_t n;
    int rc = read_capped(r, MAX_OPS, "operations", &n);
    rc = rc ? rc : sprig_txn_new(out);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_op(r, *out);
    }
    return rc;
}

static void
enc_txn_result(sprig__mp_wr *w, const sprig_txn_result *res)
{
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, res->id);
    sprig__mp_i64(w, res->failed);
    sprig__mp_i64(w, res->error);
    if (res->has_conflict) {
        enc_header(w, &res->conflict);
    } else {
        sprig__mp_nil(w);
    }
    sprig__mp_array(w, (uint32_t)res->n);
    for (size_t i = 0; i < res->n; i++) {
        enc_header(w, &res->headers[i]);
    }
}

static int
dec_txn_result(sprig__mp_rd *r, sprig_txn_result **out)
{
    uint32_t n, nh;
    uint64_t id;
    int64_t failed, error;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 5) {
        rc = sprig__err(SPRIG_EPROTO, "a transaction result has 5 elements");
    }
    rc = rc ? rc : sprig__mp_read_u64(r, &id);
    rc = rc ? rc : sprig__mp_read_i64(r, &failed);
    rc = rc ? rc : sprig__mp_read_i64(r, &error);
    sprig_header_buf conflict;
    bool has_conflict = false;
    if (rc == 0 && sprig__mp_peek(r) == SPRIG__MP_NIL) {
        rc = sprig__mp_read_nil(r);
    } else if (rc == 0) {
        has_conflict = true;
        rc = sprig__dec_header(r, &conflict);
    }
    rc = rc ? rc : sprig__mp_read_array(r, &nh);
    if (rc == 0 && !(*out = sprig__txn_result_new(nh))) {
        rc = SPRIG_ENOMEM;
    }
    for (uint32_t i = 0; rc == 0 && i < nh; i++) {
        rc = sprig__dec_header(r, &(*out)->headers[i]);
    }
    if (rc == 0 &&
        (failed < -1 || failed >= (int64_t)nh || error > 0 || error < -1000)) {
        rc = sprig__err(SPRIG_EPROTO,
                        "a transaction result names "
                        "operation %lld of %u, error %lld",
                        (long long)failed, nh, (long long)error);
    }
    if (rc == 0) {
        (*out)->id = id;
        (*out)->failed = (long)failed;
        (*out)->error = (int)error;
        (*out)->has_conflict = has_conflict;
        if (has_conflict) {
            (*out)->conflict = conflict;
        }
    }
    return rc;
}

/* ---- the transaction log --------------------------------------------------
 */

static void
enc_txn_log(sprig__mp_wr *w, const sprig_txn_log *l)
{
    sprig__mp_array(w, (uint32_t)l->n);
    for (size_t i = 0; i < l->n; i++) {
        const sprig__log_entry *e = &l->entries[i];
        sprig__mp_array(w, 3);
        sprig__mp_u64(w, e->id);
        sprig__mp_u64(w, e->timestamp_ms);
        sprig__mp_array(w, (uint32_t)e->n);
        for (size_t j = 0; j < e->n; j++) {
            sprig__mp_array(w, 4);
            sprig__mp_str(w, e->changes[j].collection);
            sprig__mp_bin(w, e->changes[j].id);
            sprig__mp_u64(w, e->changes[j].revision);
            sprig__mp_bool(w, e->changes[j].deleted);
        }
    }
}

static int
dec_change(sprig__mp_rd *r, sprig_change *c, char *cname)
{
    uint32_t n;
    sprig_bytes coll;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 4) {
        rc = sprig__err(SPRIG_EPROTO, "a change has 4 elements");
    }
    rc = rc ? rc : sprig__mp_read_str(r, &coll);
    if (rc == 0 && coll.len > SPRIG_NAME_MAX) {
        rc = sprig__err(SPRIG_EPROTO, "a change's collection is too long");
    }
    rc = rc ? rc : sprig__mp_read_bin(r, &c->id);
    rc = rc ? rc : sprig__mp_read_u64(r, &c->revision);
    rc = rc ? rc : sprig__mp_read_bool(r, &c->deleted);
    if (rc == 0) {
        memcpy(cname, coll.data, coll.len);
        cname[coll.len] = 0;
        c->collection = cname;
    }
    return rc;
}

/* One entry: decode its changes, then store them through the log codec. */
static int
dec_log_entry(sprig__mp_rd *r, sprig_txn_log *l)
{
    uint32_t n, nc;
    uint64_t id, ts;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 3) {
        rc = sprig__err(SPRIG_EPROTO, "a log entry has 3 elements");
    }
    rc = rc ? rc : sprig__mp_read_u64(r, &id);
    rc = rc ? rc : sprig__mp_read_u64(r, &ts);
    rc = rc ? rc : read_capped(r, MAX_LOG_ITEMS, "changes", &nc);
    if (rc) {
        return rc;
    }
    sprig_change *c = sprig__calloc(nc ? nc : 1, sizeof *c);
    char(*names)[SPRIG_NAME_MAX + 1] =
        sprig__calloc(nc ? nc : 1, sizeof *names);
    sprig_buf rec = {0};
    rc = c && names ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    for (uint32_t i = 0; rc == 0 && i < nc; i++) {
        rc = dec_change(r, &c[i], names[i]);
    }
    rc = rc ? rc : sprig__log_record_encode(ts, c, nc, &rec);
    rc = rc ? rc : sprig__txn_log_append(l, id, sprig_buf_bytes(&rec));
    sprig_buf_clear(&rec);
    sprig__free(c);
    sprig__free(names);
    return rc;
}

static int
dec_txn_log(sprig__mp_rd *r, sprig_txn_log **out)
{
    uint32_t n;
    int rc = read_capped(r, MAX_LOG_ITEMS, "log entries", &n);
    if (rc == 0) {
        *out = sprig__calloc(1, sizeof **out);
        rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_log_entry(r, *out);
    }
    return rc;
}

/* ---- databases and schemas ---------------------------------------------- */

static void
enc_db_list(sprig__mp_wr *w, const sprig_database_list *l)
{
    sprig__mp_array(w, (uint32_t)l->n);
    for (size_t i = 0; i < l->n; i++) {
        sprig__mp_array(w, 2);
        sprig__mp_str(w, l->names[i]);
        sprig__mp_str(w, l->schemas[i]);
    }
}

/* A str field copied into a NUL-terminated buffer of SPRIG_NAME_MAX + 1. */
static int
dec_name(sprig__mp_rd *r, char *out)
{
    sprig_bytes s;
    int rc = sprig__mp_read_str(r, &s);
    if (rc == 0 && s.len > SPRIG_NAME_MAX) {
        rc = sprig__err(SPRIG_EPROTO, "a name is longer than %d bytes",
                        SPRIG_NAME_MAX);
    }
    if (rc == 0) {
        memcpy(out, s.data, s.len);
        out[s.len] = 0;
    }
    return rc;
}

static int
dec_db_list(sprig__mp_rd *r, sprig_database_list **out)
{
    uint32_t n, m;
    char name[SPRIG_NAME_MAX + 1], schema[SPRIG_NAME_MAX + 1];
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0) {
        *out = sprig__calloc(1, sizeof **out);
        rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = sprig__mp_read_array(r, &m);
        if (rc == 0 && m != 2) {
            rc = sprig__err(SPRIG_EPROTO, "a database entry has 2 elements");
        }
        rc = rc ? rc : dec_name(r, name);
        rc = rc ? rc : dec_name(r, schema);
        rc = rc ? rc : sprig__database_list_push(*out, name, schema);
    }
    return rc;
}

/* ---- schemas ----------------------------------------------------------
 * [name, [collection, ...]], each collection [name, id_kind, flags, views]
 * (a 3-element collection, from clients before views travelled, has no
 * views), each view [name, version, policy, json_key|nil, json_value|nil,
 * builtin_reduce, has_reduce_fn].  Declarative views travel whole; a C view
 * (json_key nil) travels by description only, and decodes with the
 * stand-in functions of a view whose code is not loaded: a storage that
 * registers it keeps its own C view of that name (docs/protocol.md). */

static void
enc_opt_str(sprig__mp_wr *w, const char *s)
{
    if (s) {
        sprig__mp_str(w, s);
    } else {
        sprig__mp_nil(w);
    }
}

static void
enc_view(sprig__mp_wr *w, const sprig_view_def *v)
{
    sprig__mp_array(w, 7);
    sprig__mp_str(w, v->name);
    sprig__mp_u64(w, v->version);
    sprig__mp_u64(w, (uint64_t)v->policy);
    enc_opt_str(w, v->json_key);
    enc_opt_str(w, v->json_key ? v->json_value : NULL);
    sprig__mp_u64(w, (uint64_t)v->builtin_reduce);
    sprig__mp_bool(w, v->reduce != NULL);
}

static void
enc_schema(sprig__mp_wr *w, const sprig_schema_def *s)
{
    sprig__mp_array(w, 2);
    sprig__mp_str(w, s->name);
    sprig__mp_array(w, (uint32_t)s->n_collections);
    for (size_t i = 0; i < s->n_collections; i++) {
        const sprig_collection_def *c = &s->collections[i];
        sprig__mp_array(w, 4);
        sprig__mp_str(w, c->name);
        sprig__mp_u64(w, c->id_kind);
        sprig__mp_u64(w, c->flags);
        sprig__mp_array(w, (uint32_t)c->n_views);
        for (size_t j = 0; j < c->n_views; j++) {
            enc_view(w, &c->views[j]);
        }
    }
}

/* A schema being decoded: its strings are copied, NUL-terminated, into one
 * arena as large as the schema's bytes on the wire (a string takes at least
 * one byte more there than its copy: its header). */
typedef struct schema_dec {
    char *strs;
    size_t used, cap;
} schema_dec;

/* A str of at most `max` bytes and no NUL, copied; nil gives NULL when
 * `nil_ok`. */
static int
dec_cstr(sprig__mp_rd *r, schema_dec *d, size_t max, bool nil_ok,
         const char **out)
{
    sprig_bytes s;
    *out = NULL;
    if (nil_ok && sprig__mp_peek(r) == SPRIG__MP_NIL) {
        return sprig__mp_read_nil(r);
    }
    int rc = sprig__mp_read_str(r, &s);
    if (rc == 0 && (s.len > max || memchr(s.data, 0, s.len))) {
        rc = sprig__err(SPRIG_EPROTO,
                        "a schema string is longer than %zu bytes "
                        "or holds a NUL byte",
                        max);
    }
    if (rc == 0 && d->used + s.len + 1 > d->cap) {
        rc = sprig__err(SPRIG_EPROTO, "a schema's strings overrun it");
    }
    if (rc == 0) {
        memcpy(d->strs + d->used, s.data, s.len);
        d->strs[d->used + s.len] = 0;
        *out = d->strs + d->used;
        d->used += s.len + 1;
    }
    return rc;
}

static int
dec_uint_max(sprig__mp_rd *r, uint64_t max, const char *what, uint64_t *v)
{
    int rc = sprig__mp_read_u64(r, v);
    if (rc == 0 && *v > max) {
        rc = sprig__err(SPRIG_EPROTO, "a view's %s %llu is out of range", what,
                        (unsigned long long)*v);
    }
    return rc;
}

static int
dec_view(sprig__mp_rd *r, schema_dec *d, sprig_view_def *v)
{
    uint32_t m;
    uint64_t version = 0, policy = 0, reduce = 0;
    bool has_reduce_fn = false;
    int rc = sprig__mp_read_array(r, &m);
    if (rc == 0 && m != 7) {
        rc = sprig__err(SPRIG_EPROTO, "a view has 7 elements, not %u", m);
    }
    rc = rc ? rc : dec_cstr(r, d, SPRIG_NAME_MAX, false, &v->name);
    rc = rc ? rc : dec_uint_max(r, UINT32_MAX, "version", &version);
    rc = rc ? rc : dec_uint_max(r, 255, "policy", &policy);
    rc = rc ? rc : dec_cstr(r, d, SPRIG__JSON_PATH_MAX, true, &v->json_key);
    rc = rc ? rc : dec_cstr(r, d, SPRIG__JSON_PATH_MAX, true, &v->json_value);
    rc = rc ? rc : dec_uint_max(r, 255, "reduce", &reduce);
    rc = rc ? rc : sprig__mp_read_bool(r, &has_reduce_fn);
    v->version = (unsigned)version;
    v->policy = (sprig_view_policy)policy;
    v->builtin_reduce = (sprig_builtin_reduce)reduce;
    v->map = v->json_key ? NULL : sprig__codeless_map;
    v->reduce = has_reduce_fn ? sprig__codeless_reduce : NULL;
    return rc;
}

static int
dec_views(sprig__mp_rd *r, schema_dec *d, sprig_collection_def *c)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n > SPRIG__VIEWS_MAX) {
        rc = sprig__err(SPRIG_EPROTO,
                        "collection '%s' has %u views; the "
                        "limit is %d",
                        c->name, n, SPRIG__VIEWS_MAX);
    }
    sprig_view_def *views = NULL;
    if (rc == 0 && n && !(views = sprig__calloc(n, sizeof *views))) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    c->views = views;
    c->n_views = views ? n : 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_view(r, d, &views[i]);
    }
    return rc;
}

static int
dec_collection(sprig__mp_rd *r, schema_dec *d, sprig_collection_def *c)
{
    uint32_t m;
    uint64_t kind = 0, flags = 0;
    int rc = sprig__mp_read_array(r, &m);
    if (rc == 0 && m != 3 && m != 4) {
        rc = sprig__err(SPRIG_EPROTO,
                        "a collection has 4 elements (or 3 "
                        "without views), not %u",
                        m);
    }
    rc = rc ? rc : dec_cstr(r, d, SPRIG_NAME_MAX, false, &c->name);
    rc = rc ? rc : sprig__mp_read_u64(r, &kind);
    rc = rc ? rc : sprig__mp_read_u64(r, &flags);
    if (rc == 0 && (kind > 255 || flags > UINT32_MAX)) {
        rc = sprig__err(SPRIG_EPROTO,
                        "collection '%s' has an id kind or "
                        "flags out of range",
                        c->name);
    }
    c->id_kind = (sprig_id_kind)kind;
    c->flags = (unsigned)flags;
    return rc == 0 && m == 4 ? dec_views(r, d, c) : rc;
}

/* The byte size of the next value, without moving `r`. */
static size_t
next_size(const sprig__mp_rd *r)
{
    sprig__mp_rd t = *r;
    return sprig__mp_skip(&t) == 0 ? r->left - t.left : 0;
}

static void
free_cols(sprig_collection_def *cols, uint32_t n)
{
    for (uint32_t i = 0; cols && i < n; i++) {
        sprig__free((void *)cols[i].views);
    }
    sprig__free(cols);
}

static int
dec_schema(sprig__mp_rd *r, sprig_schema_def **out)
{
    uint32_t m, n = 0;
    const char *name = NULL;
    sprig_collection_def *cols = NULL;
    schema_dec d = {NULL, 0, next_size(r)};
    d.strs = sprig__malloc(d.cap ? d.cap : 1);
    int rc = d.strs ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    rc = rc ? rc : sprig__mp_read_array(r, &m);
    if (rc == 0 && m != 2) {
        rc = sprig__err(SPRIG_EPROTO, "a schema has 2 elements");
    }
    rc = rc ? rc : dec_cstr(r, &d, SPRIG_NAME_MAX, false, &name);
    rc = rc ? rc : sprig__mp_read_array(r, &n);
    if (rc == 0 && n && !(cols = sprig__calloc(n, sizeof *cols))) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_collection(r, &d, &cols[i]);
    }
    sprig_schema_def s = {name, cols, n};
    rc = rc ? rc : sprig__schema_check(&s);
    rc = rc ? rc : sprig__schema_copy(&s, out);
    free_cols(cols, n);
    sprig__free(d.strs);
    return rc;
}

static void
enc_schema_list(sprig__mp_wr *w, const sprig_schema_list *l)
{
    sprig__mp_array(w, (uint32_t)l->n);
    for (size_t i = 0; i < l->n; i++) {
        enc_schema(w, l->items[i]);
    }
}

static int
dec_schema_list(sprig__mp_rd *r, sprig_schema_list **out)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0) {
        *out = sprig__calloc(1, sizeof **out);
        rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        sprig_schema_def *s;
        rc = dec_schema(r, &s);
        rc = rc ? rc : sprig__schema_list_push(*out, s);
    }
    return rc;
}

/* ---- fields ---------------------------------------------------------------
 */

static void
enc_field(sprig__mp_wr *w, const sprig__field *f, const void *s)
{
    switch (f->type) {
    case SPRIG__F_STR: {
        const char *v = *CAT(s, f->offset, char *);
        sprig__mp_str(w, v ? v : "");
        break;
    }
    case SPRIG__F_BYTES:
        sprig__mp_bin(w, *CAT(s, f->offset, sprig_bytes));
        break;
    case SPRIG__F_U64: sprig__mp_u64(w, *CAT(s, f->offset, uint64_t)); break;
    case SPRIG__F_U32: sprig__mp_u64(w, *CAT(s, f->offset, uint32_t)); break;
    case SPRIG__F_I64: sprig__mp_i64(w, *CAT(s, f->offset, int64_t)); break;
    case SPRIG__F_BOOL: sprig__mp_bool(w, *CAT(s, f->offset, bool)); break;
    case SPRIG__F_HEADER:
        enc_header(w, CAT(s, f->offset, sprig_header_buf));
        break;
    case SPRIG__F_RANGE:
        sprig__enc_range(w, CAT(s, f->offset, sprig_range));
        break;
    case SPRIG__F_BYTES_LIST: {
        const sprig__bytes_list *l = CAT(s, f->offset, sprig__bytes_list);
        sprig__mp_array(w, (uint32_t)l->n);
        for (size_t i = 0; i < l->n; i++) {
            sprig__mp_bin(w, l->items[i]);
        }
        break;
    }
    case SPRIG__F_DOC:
        sprig__enc_doc(w, *CAT(s, f->offset, sprig_doc *));
        break;
    case SPRIG__F_DOC_LIST:
        enc_doc_list(w, *CAT(s, f->offset, sprig_doc_list *));
        break;
    case SPRIG__F_TXN: enc_txn(w, *CAT(s, f->offset, sprig_txn *)); break;
    case SPRIG__F_TXN_RESULT:
        enc_txn_result(w, *CAT(s, f->offset, sprig_txn_result *));
        break;
    case SPRIG__F_TXN_LOG:
        enc_txn_log(w, *CAT(s, f->offset, sprig_txn_log *));
        break;
    case SPRIG__F_DB_LIST:
        enc_db_list(w, *CAT(s, f->offset, sprig_database_list *));
        break;
    case SPRIG__F_SCHEMA:
        enc_schema(w, *CAT(s, f->offset, sprig_schema_def *));
        break;
    case SPRIG__F_SCHEMA_LIST:
        enc_schema_list(w, *CAT(s, f->offset, sprig_schema_list *));
        break;
    default: sprig__enc_more(w, f->type, CAT(s, f->offset, char)); break;
    }
}

/* Is the field's value present (pointers non-NULL, optional flags set)? */
static bool
field_present(const sprig__field *f, const void *s)
{
    if (f->flags & SPRIG__FIELD_OPTIONAL) {
        return *CAT(s, f->present, bool);
    }
    switch (f->type) {
    case SPRIG__F_DOC:
    case SPRIG__F_DOC_LIST:
    case SPRIG__F_TXN:
    case SPRIG__F_TXN_RESULT:
    case SPRIG__F_TXN_LOG:
    case SPRIG__F_DB_LIST:
    case SPRIG__F_SCHEMA:
    case SPRIG__F_SCHEMA_LIST: return *CAT(s, f->offset, void *) != NULL;
    default: return sprig__present_more(f->type, CAT(s, f->offset, char));
    }
}

int
sprig__api_encode(sprig__mp_wr *w, const sprig__field *fields, size_t n,
                  const void *s)
{
    uint32_t present = 0;
    for (size_t i = 0; i < n; i++) {
        present += field_present(&fields[i], s);
    }
    sprig__mp_map(w, present);
    for (size_t i = 0; i < n; i++) {
        if (field_present(&fields[i], s)) {
            sprig__mp_str(w, fields[i].name);
            enc_field(w, &fields[i], s);
        }
    }
    return sprig__mp_wr_status(w);
}

int
sprig__api_encode_rid(sprig__mp_wr *w, const sprig__field *fields, size_t n,
                      const void *s, const uint8_t rid[16])
{
    uint32_t present = 1;
    for (size_t i = 0; i < n; i++) {
        present += field_present(&fields[i], s);
    }
    sprig__mp_map(w, present);
    sprig__mp_str(w, SPRIG__RID_FIELD);
    sprig__mp_bin(w, (sprig_bytes){rid, SPRIG__RID_LEN});
    for (size_t i = 0; i < n; i++) {
        if (field_present(&fields[i], s)) {
            sprig__mp_str(w, fields[i].name);
            enc_field(w, &fields[i], s);
        }
    }
    return sprig__mp_wr_status(w);
}

int
sprig__api_request_rid(sprig_bytes payload, uint8_t rid[16])
{
    sprig__mp_rd r;
    uint32_t pairs;
    sprig__mp_rd_init(&r, payload);
    int rc = sprig__mp_read_map(&r, &pairs);
    for (uint32_t i = 0; rc == 0 && i < pairs; i++) {
        sprig_bytes key, v;
        rc = sprig__mp_read_str(&r, &key);
        bool is_rid = rc == 0 && key.len == strlen(SPRIG__RID_FIELD) &&
                      memcmp(key.data, SPRIG__RID_FIELD, key.len) == 0;
        if (is_rid && sprig__mp_read_bin(&r, &v) == 0) {
            if (v.len != SPRIG__RID_LEN) {
                return 0;
            }
            memcpy(rid, v.data, SPRIG__RID_LEN);
            return 1;
        }
        rc = rc ? rc : sprig__mp_skip(&r);
    }
    return rc ? sprig__err(SPRIG_EPROTO, "a request payload is a map") : 0;
}

int
sprig__api_encode_lin(sprig__mp_wr *w, const sprig__field *fields, size_t n,
                      const void *s)
{
    uint32_t present = 1;
    for (size_t i = 0; i < n; i++) {
        present += field_present(&fields[i], s);
    }
    sprig__mp_map(w, present);
    sprig__mp_str(w, SPRIG__LIN_FIELD);
    sprig__mp_bool(w, true);
    for (size_t i = 0; i < n; i++) {
        if (field_present(&fields[i], s)) {
            sprig__mp_str(w, fields[i].name);
            enc_field(w, &fields[i], s);
        }
    }
    return sprig__mp_wr_status(w);
}

bool
sprig__api_request_lin(sprig_bytes payload)
{
    sprig__mp_rd r;
    uint32_t pairs;
    sprig__mp_rd_init(&r, payload);
    int rc = sprig__mp_read_map(&r, &pairs);
    for (uint32_t i = 0; rc == 0 && i < pairs; i++) {
        sprig_bytes key;
        bool v = false;
        rc = sprig__mp_read_str(&r, &key);
        if (rc == 0 && key.len == strlen(SPRIG__LIN_FIELD) &&
            memcmp(key.data, SPRIG__LIN_FIELD, key.len) == 0) {
            return sprig__mp_read_bool(&r, &v) == 0 && v;
        }
        rc = rc ? rc : sprig__mp_skip(&r);
    }
    return false;
}

static int
dec_str_field(sprig__mp_rd *r, char **out)
{
    sprig_bytes v;
    int rc = sprig__mp_read_str(r, &v);
    if (rc == 0 && memchr(v.data, 0, v.len)) {
        rc = sprig__err(SPRIG_EPROTO, "a string holds a NUL byte");
    }
    if (rc == 0) {
        *out = sprig__malloc(v.len + 1);
        if (!*out) {
            return sprig__err(SPRIG_ENOMEM, "out of memory");
        }
        memcpy(*out, v.data, v.len);
        (*out)[v.len] = 0;
    }
    return rc;
}

static int
dec_field(sprig__mp_rd *r, const sprig__field *f, void *s)
{
    switch (f->type) {
    case SPRIG__F_STR: return dec_str_field(r, AT(s, f->offset, char *));
    case SPRIG__F_BYTES:
        return sprig__mp_read_bin(r, AT(s, f->offset, sprig_bytes));
    case SPRIG__F_U64: return sprig__mp_read_u64(r, AT(s, f->offset, uint64_t));
    case SPRIG__F_U32: {
        uint64_t v;
        int rc = sprig__mp_read_u64(r, &v);
        if (rc == 0 && v > UINT32_MAX) {
            rc = sprig__err(SPRIG_EPROTO, "value over 2^32-1");
        }
        *AT(s, f->offset, uint32_t) = (uint32_t)v;
        return rc;
    }
    case SPRIG__F_I64: return sprig__mp_read_i64(r, AT(s, f->offset, int64_t));
    case SPRIG__F_BOOL: return sprig__mp_read_bool(r, AT(s, f->offset, bool));
    case SPRIG__F_HEADER:
        return sprig__dec_header(r, AT(s, f->offset, sprig_header_buf));
    case SPRIG__F_RANGE:
        return sprig__dec_range(r, AT(s, f->offset, sprig_range));
    case SPRIG__F_BYTES_LIST:
        return dec_bytes_list(r, AT(s, f->offset, sprig__bytes_list));
    case SPRIG__F_DOC: return sprig__dec_doc(r, AT(s, f->offset, sprig_doc *));
    case SPRIG__F_DOC_LIST:
        return dec_doc_list(r, AT(s, f->offset, sprig_doc_list *));
    case SPRIG__F_TXN: return dec_txn(r, AT(s, f->offset, sprig_txn *));
    case SPRIG__F_TXN_RESULT:
        return dec_txn_result(r, AT(s, f->offset, sprig_txn_result *));
    case SPRIG__F_TXN_LOG:
        return dec_txn_log(r, AT(s, f->offset, sprig_txn_log *));
    case SPRIG__F_DB_LIST:
        return dec_db_list(r, AT(s, f->offset, sprig_database_list *));
    case SPRIG__F_SCHEMA:
        return dec_schema(r, AT(s, f->offset, sprig_schema_def *));
    case SPRIG__F_SCHEMA_LIST:
        return dec_schema_list(r, AT(s, f->offset, sprig_schema_list *));
    default: return sprig__dec_more(r, f->type, AT(s, f->offset, char));
    }
}

static const sprig__field *
find_field(const sprig__field *fields, size_t n, sprig_bytes key, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(fields[i].name) == key.len &&
            memcmp(fields[i].name, key.data, key.len) == 0) {
            *idx = i;
            return &fields[i];
        }
    }
    return NULL;
}

int
sprig__api_decode(sprig_bytes payload, const sprig__field *fields, size_t n,
                  void *s)
{
    sprig__mp_rd r;
    uint32_t pairs;
    uint64_t seen = 0; /* bit per field; tables have < 64 fields */
    sprig__mp_rd_init(&r, payload);
    int rc = sprig__mp_read_map(&r, &pairs);
    for (uint32_t i = 0; rc == 0 && i < pairs; i++) {
        sprig_bytes key;
        size_t idx;
        rc = sprig__mp_read_str(&r, &key);
        const sprig__field *f = rc ? NULL : find_field(fields, n, key, &idx);
        if (rc == 0 && !f) {
            rc = sprig__mp_skip(&r); /* unknown keys are ignored */
            continue;
        }
        if (rc == 0 && (seen & (1ull << idx))) {
            rc = sprig__err(SPRIG_EPROTO, "field '%s' appears twice", f->name);
        }
        if (rc == 0 && (rc = dec_field(&r, f, s)) != 0) {
            char why[200];
            snprintf(why, sizeof why, "%s", sprig_errmsg());
            rc = sprig__err(rc, "field '%s': %s", f->name, why);
        }
        if (f) { /* NULL when the key was no string: idx is unset */
            seen |= 1ull << idx;
        }
        if (rc == 0 && (f->flags & SPRIG__FIELD_OPTIONAL)) {
            *AT(s, f->present, bool) = true;
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!(seen & (1ull << i)) &&
            !(fields[i].flags & SPRIG__FIELD_OPTIONAL)) {
            rc = sprig__err(SPRIG_EPROTO, "field '%s' is missing",
                            fields[i].name);
        }
    }
    if (rc == 0 && r.left) {
        rc = sprig__err(SPRIG_EPROTO, "%zu bytes after the payload", r.left);
    }
    return rc;
}

void
sprig__api_free(const sprig__field *fields, size_t n, void *s)
{
    for (size_t i = 0; i < n; i++) {
        const sprig__field *f = &fields[i];
        void **p = AT(s, f->offset, void *);
        switch (f->type) {
        case SPRIG__F_STR: sprig__free(*p); break;
        case SPRIG__F_BYTES_LIST:
            sprig__free(AT(s, f->offset, sprig__bytes_list)->items);
            break;
        case SPRIG__F_DOC: sprig_doc_free(*p); break;
        case SPRIG__F_DOC_LIST: sprig_doc_list_free(*p); break;
        case SPRIG__F_TXN: sprig_txn_free(*p); break;
        case SPRIG__F_TXN_RESULT: sprig_txn_result_free(*p); break;
        case SPRIG__F_TXN_LOG: sprig_txn_log_free(*p); break;
        case SPRIG__F_DB_LIST: sprig_database_list_free(*p); break;
        case SPRIG__F_SCHEMA: sprig__free(*p); break;
        case SPRIG__F_SCHEMA_LIST: sprig_schema_list_free(*p); break;
        case SPRIG__F_VALUE:
        case SPRIG__F_KV_LIST:
        case SPRIG__F_QUERY:
        case SPRIG__F_MAPPING_LIST:
        case SPRIG__F_API_LIST:
        case SPRIG__F_BUF:
        case SPRIG__F_CLIENT_LIST:
            sprig__free_more(f->type, AT(s, f->offset, char));
            continue;
        default: continue;
        }
        if (f->type != SPRIG__F_BYTES_LIST) {
            *p = NULL;
        }
    }
}
