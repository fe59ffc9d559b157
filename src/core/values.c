/*
 * values.c -- the value objects that cross the public API: documents,
 * document and header lists, transactions under construction, transaction
 * results, the transaction log, database and schema lists.
 *
 * They are plain memory, shared by every placement: the local engine fills
 * them from LMDB, a remote client will fill them from the wire.
 */
#include "core.h"

/* Grow a (n, cap, array) triple so one more element fits. */
static int
grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return SPRIG_OK;
    }
    size_t c = *cap ? *cap * 2 : 8;
    void *p = sprig__realloc(*arr, c * elem);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory growing a list");
    }
    *arr = p;
    *cap = c;
    return SPRIG_OK;
}

/* ---- documents -------------------------------------------------------- */

sprig_doc *
sprig__doc_new(sprig_bytes id, uint64_t revision, const uint8_t hash[16],
               sprig_bytes contents)
{
    sprig_doc *d = sprig__malloc(sizeof *d + id.len + contents.len);
    if (!d) {
        sprig__err(SPRIG_ENOMEM, "out of memory reading a document");
        return NULL;
    }
    d->revision = revision;
    memcpy(d->hash, hash, 16);
    d->id_len = (uint32_t)id.len;
    d->len = contents.len;
    if (id.len == 8) { /* a u64 id: one move, not a call */
        memcpy(d->data, id.data, 8);
    } else if (id.len) {
        memcpy(d->data, id.data, id.len);
    }
    d->contents = d->data + id.len;
    if (contents.len) {
        memcpy(d->contents, contents.data, contents.len);
    }
    return d;
}

sprig_header
sprig_doc_header(const sprig_doc *doc)
{
    sprig_header h;
    h.id.data = doc->data;
    h.id.len = doc->id_len;
    h.revision = doc->revision;
    memcpy(h.hash, doc->hash, 16);
    return h;
}

sprig_bytes
sprig_doc_contents(const sprig_doc *doc)
{
    sprig_bytes b = {doc->contents, doc->len};
    return b;
}

void
sprig_doc_free(sprig_doc *doc)
{
    sprig__free(doc);
}

int
sprig__doc_list_push(sprig_doc_list *l, sprig_doc *d)
{
    int rc = grow((void **)&l->docs, &l->cap, l->n, sizeof *l->docs);
    if (rc) {
        sprig_doc_free(d);
        return rc;
    }
    l->docs[l->n++] = d;
    return SPRIG_OK;
}

size_t
sprig_doc_list_count(const sprig_doc_list *l)
{
    return l ? l->n : 0;
}

const sprig_doc *
sprig_doc_list_get(const sprig_doc_list *l, size_t i)
{
    return l && i < l->n ? l->docs[i] : NULL;
}

void
sprig_doc_list_free(sprig_doc_list *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        sprig_doc_free(l->docs[i]);
    }
    sprig__free(l->docs);
    sprig__free(l);
}

/* ---- headers ---------------------------------------------------------- */

sprig_header
sprig_header_of(const sprig_header_buf *hb)
{
    sprig_header h;
    h.id.data = hb->id;
    h.id.len = hb->id_len;
    h.revision = hb->revision;
    memcpy(h.hash, hb->hash, 16);
    return h;
}

void
sprig__header_set(sprig_header_buf *hb, const sprig_header *h)
{
    size_t n = h->id.len < SPRIG_ID_MAX ? h->id.len : SPRIG_ID_MAX;
    if (n) {
        memcpy(hb->id, h->id.data, n);
    }
    hb->id_len = (uint32_t)n;
    hb->revision = h->revision;
    memcpy(hb->hash, h->hash, 16);
}

int
sprig__header_list_push(sprig_header_list *l, const sprig_header_buf *h)
{
    int rc = grow((void **)&l->items, &l->cap, l->n, sizeof *l->items);
    if (rc == 0) {
        l->items[l->n++] = *h;
    }
    return rc;
}

size_t
sprig_header_list_count(const sprig_header_list *l)
{
    return l ? l->n : 0;
}

sprig_header
sprig_header_list_get(const sprig_header_list *l, size_t i)
{
    if (!l || i >= l->n) {
        sprig_header z;
        memset(&z, 0, sizeof z);
        return z;
    }
    return sprig_header_of(&l->items[i]);
}

void
sprig_header_list_free(sprig_header_list *l)
{
    if (l) {
        sprig__free(l->items);
        sprig__free(l);
    }
}

/* ---- transactions under construction ---------------------------------- */

int
sprig_txn_new(sprig_txn **out)
{
    *out = sprig__calloc(1, sizeof **out);
    return *out ? SPRIG_OK
                : sprig__err(SPRIG_ENOMEM, "out of memory for a transaction");
}

void
sprig_txn_free(sprig_txn *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        sprig__free(t->ops[i].mem);
    }
    sprig__free(t->ops);
    sprig__free(t);
}

size_t
sprig_txn_count(const sprig_txn *t)
{
    return t ? t->n : 0;
}

const char *
sprig__op_action(sprig__op_kind k)
{
    switch (k) {
    case SPRIG__OP_INSERT: return "document.insert";
    case SPRIG__OP_UPDATE: return "document.update";
    case SPRIG__OP_OVERWRITE: return "document.overwrite";
    case SPRIG__OP_DELETE: return "document.delete";
    case SPRIG__OP_CHECK: return "document.get";
    }
    return "document.unknown"; /* granted only by a wildcard */
}

int
sprig__op_expect(sprig__op *op, const sprig_header *expected)
{
    if (!expected) {
        return sprig__err(SPRIG_EINVAL, "expected header is NULL");
    }
    op->has_id = true;
    op->id = expected->id;
    op->has_expected = true;
    op->expected_rev = expected->revision;
    memcpy(op->expected_hash, expected->hash, 16);
    return SPRIG_OK;
}

/* Copy collection, id and contents of `op` into one block owned by t. */
static int
txn_add(sprig_txn *t, sprig__op op)
{
    if (!t) {
        return sprig__err(SPRIG_EINVAL, "transaction is NULL");
    }
    if (!op.collection || !*op.collection) {
        return sprig__err(SPRIG_EINVAL, "collection name is empty");
    }
    if (op.has_id && (op.id.len == 0 || !op.id.data)) {
        return sprig__err(SPRIG_EINVAL, "document id is empty");
    }
    if (op.id.len > SPRIG_ID_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "document id has %zu bytes; the "
                          "limit is %d",
                          op.id.len, SPRIG_ID_MAX);
    }
    if (op.contents.len > SPRIG_CONTENTS_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "document contents have %zu bytes; "
                          "the limit is %u",
                          op.contents.len, SPRIG_CONTENTS_MAX);
    }
    size_t cn = strlen(op.collection) + 1;
    int rc = grow((void **)&t->ops, &t->cap, t->n, sizeof *t->ops);
    if (rc) {
        return rc;
    }
    char *blk = sprig__malloc(cn + op.id.len + op.contents.len);
    if (!blk) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a transaction");
    }
    memcpy(blk, op.collection, cn);
    if (op.id.len) {
        memcpy(blk + cn, op.id.data, op.id.len);
    }
    if (op.contents.len) {
        memcpy(blk + cn + op.id.len, op.contents.data, op.contents.len);
    }
    op.collection = blk;
    op.id.data = blk + cn;
    op.contents.data = blk + cn + op.id.len;
    op.mem = blk;
    t->ops[t->n++] = op;
    return SPRIG_OK;
}

int
sprig_txn_insert(sprig_txn *t, const char *collection, const sprig_bytes *id,
                 sprig_bytes contents)
{
    sprig__op op = {.kind = SPRIG__OP_INSERT,
                    .collection = collection,
                    .has_id = id != NULL,
                    .contents = contents};
    if (id) {
        op.id = *id;
    }
    return txn_add(t, op);
}

int
sprig_txn_update(sprig_txn *t, const char *collection,
                 const sprig_header *expected, sprig_bytes contents)
{
    sprig__op op = {.kind = SPRIG__OP_UPDATE,
                    .collection = collection,
                    .contents = contents};
    int rc = sprig__op_expect(&op, expected);
    return rc ? rc : txn_add(t, op);
}

int
sprig_txn_overwrite(sprig_txn *t, const char *collection, sprig_bytes id,
                    sprig_bytes contents)
{
    sprig__op op = {.kind = SPRIG__OP_OVERWRITE,
                    .collection = collection,
                    .has_id = true,
                    .id = id,
                    .contents = contents};
    return txn_add(t, op);
}

int
sprig_txn_delete(sprig_txn *t, const char *collection,
                 const sprig_header *expected)
{
    sprig__op op = {.kind = SPRIG__OP_DELETE, .collection = collection};
    int rc = sprig__op_expect(&op, expected);
    return rc ? rc : txn_add(t, op);
}

int
sprig_txn_check(sprig_txn *t, const char *collection, sprig_bytes id,
                const sprig_header *expected)
{
    sprig__op op = {.kind = SPRIG__OP_CHECK,
                    .collection = collection,
                    .has_id = true,
                    .id = id};
    if (expected) {
        int rc = sprig__op_expect(&op, expected);
        if (rc) {
            return rc;
        }
        op.id = id;
    }
    return txn_add(t, op);
}

/* ---- results ---------------------------------------------------------- */

void
sprig__txn_result_init(sprig_txn_result *r, sprig_header_buf *headers, size_t n)
{
    /* no zero-fill of the id buffers (SPRIG_ID_MAX bytes each): a header
     * is read only up to its id_len */
    r->id = 0;
    r->n = n;
    r->headers = headers;
    r->failed = -1;
    r->error = 0;
    r->has_conflict = false;
    r->conflict.id_len = 0;
    r->heap = false;
    for (size_t i = 0; i < n; i++) {
        headers[i].id_len = 0;
        headers[i].revision = 0;
        memset(headers[i].hash, 0, sizeof headers[i].hash);
    }
}

sprig_txn_result *
sprig__txn_result_new(size_t n)
{
    sprig_txn_result *r =
        sprig__malloc(sizeof *r + n * sizeof(sprig_header_buf));
    if (!r) {
        sprig__err(SPRIG_ENOMEM, "out of memory for a transaction result");
        return NULL;
    }
    sprig__txn_result_init(r, (sprig_header_buf *)(r + 1), n);
    r->heap = true;
    return r;
}

uint64_t
sprig_txn_result_id(const sprig_txn_result *r)
{
    return r ? r->id : 0;
}

size_t
sprig_txn_result_count(const sprig_txn_result *r)
{
    return r ? r->n : 0;
}

sprig_header
sprig_txn_result_header(const sprig_txn_result *r, size_t i)
{
    if (!r || i >= r->n) {
        sprig_header z;
        memset(&z, 0, sizeof z);
        return z;
    }
    return sprig_header_of(&r->headers[i]);
}

long
sprig_txn_result_failed(const sprig_txn_result *r)
{
    return r ? r->failed : -1;
}

int
sprig_txn_result_error(const sprig_txn_result *r)
{
    return r ? r->error : 0;
}

int
sprig_txn_result_conflict(const sprig_txn_result *r, sprig_header *out)
{
    if (!r || !r->has_conflict) {
        return sprig__err(SPRIG_ENOTFOUND, "the result holds no conflict");
    }
    *out = sprig_header_of(&r->conflict);
    return SPRIG_OK;
}

void
sprig_txn_result_free(sprig_txn_result *r)
{
    if (r && r->heap) {
        sprig__free(r);
    }
}

/* ---- the transaction log ---------------------------------------------- */

int
sprig__log_record_encode(uint64_t timestamp_ms, const sprig_change *c, size_t n,
                         sprig_buf *out)
{
    int rc = sprig__buf_put_u8(out, 1);
    rc = rc ? rc : sprig__buf_put_u64(out, timestamp_ms);
    rc = rc ? rc : sprig__buf_put_u32(out, (uint32_t)n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t cl = strlen(c[i].collection);
        rc = sprig__buf_put_u8(out, c[i].deleted ? 1 : 0);
        rc = rc ? rc : sprig__buf_put_u64(out, c[i].revision);
        rc = rc ? rc : sprig__buf_put_u32(out, (uint32_t)cl);
        rc = rc ? rc : sprig_buf_append(out, c[i].collection, cl);
        rc = rc ? rc : sprig__buf_put_u32(out, (uint32_t)c[i].id.len);
        rc = rc ? rc : sprig_buf_append(out, c[i].id.data, c[i].id.len);
    }
    return rc;
}

/* Decode one change; strings are copied into *mem (advanced). */
static int
decode_change(sprig__rd *r, sprig_change *c, uint8_t **mem)
{
    uint8_t del;
    uint32_t cl, il;
    const uint8_t *cp, *ip;
    int rc = sprig__rd_u8(r, &del);
    rc = rc ? rc : sprig__rd_u64(r, &c->revision);
    rc = rc ? rc : sprig__rd_u32(r, &cl);
    rc = rc ? rc : sprig__rd_bytes(r, cl, &cp);
    rc = rc ? rc : sprig__rd_u32(r, &il);
    rc = rc ? rc : sprig__rd_bytes(r, il, &ip);
    if (rc) {
        return rc;
    }
    c->deleted = del != 0;
    memcpy(*mem, cp, cl);
    (*mem)[cl] = 0;
    c->collection = (const char *)*mem;
    *mem += cl + 1;
    memcpy(*mem, ip, il);
    c->id.data = *mem;
    c->id.len = il;
    *mem += il;
    return SPRIG_OK;
}

int
sprig__txn_log_append(sprig_txn_log *l, uint64_t id, sprig_bytes record)
{
    sprig__rd r = {record.data, record.len};
    uint8_t ver;
    uint32_t n;
    sprig__log_entry e = {.id = id};
    int rc = sprig__rd_u8(&r, &ver);
    if (rc == 0 && ver != 1) {
        return sprig__err(SPRIG_ECORRUPT, "log record %llu has format %u",
                          (unsigned long long)id, ver);
    }
    rc = rc ? rc : sprig__rd_u64(&r, &e.timestamp_ms);
    rc = rc ? rc : sprig__rd_u32(&r, &n);
    if (rc == 0 && n > r.left / 17) {
        rc = sprig__err(SPRIG_ECORRUPT, "log record %llu is truncated",
                        (unsigned long long)id);
    }
    rc = rc ? rc : grow((void **)&l->entries, &l->cap, l->n, sizeof e);
    if (rc) {
        return rc;
    }
    /* the record's length bounds the strings it holds, plus NULs */
    e.mem = sprig__malloc(n * sizeof(sprig_change) + record.len + n);
    if (!e.mem) {
        return sprig__err(SPRIG_ENOMEM, "out of memory reading the log");
    }
    e.changes = e.mem;
    e.n = n;
    uint8_t *strs = (uint8_t *)(e.changes + n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = decode_change(&r, &e.changes[i], &strs);
    }
    if (rc) {
        sprig__free(e.mem);
        return rc;
    }
    l->entries[l->n++] = e;
    return SPRIG_OK;
}

size_t
sprig_txn_log_count(const sprig_txn_log *l)
{
    return l ? l->n : 0;
}

uint64_t
sprig_txn_log_id(const sprig_txn_log *l, size_t i)
{
    return l && i < l->n ? l->entries[i].id : 0;
}

uint64_t
sprig_txn_log_timestamp_ms(const sprig_txn_log *l, size_t i)
{
    return l && i < l->n ? l->entries[i].timestamp_ms : 0;
}

size_t
sprig_txn_log_change_count(const sprig_txn_log *l, size_t i)
{
    return l && i < l->n ? l->entries[i].n : 0;
}

int
sprig_txn_log_change(const sprig_txn_log *l, size_t i, size_t j,
                     sprig_change *out)
{
    if (!l || i >= l->n || j >= l->entries[i].n) {
        return sprig__err(SPRIG_EINVAL, "no change %zu in log entry %zu", j, i);
    }
    *out = l->entries[i].changes[j];
    return SPRIG_OK;
}

void
sprig_txn_log_free(sprig_txn_log *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        sprig__free(l->entries[i].mem);
    }
    sprig__free(l->entries);
    sprig__free(l);
}

/* ---- database and schema lists ---------------------------------------- */

int
sprig__database_list_push(sprig_database_list *l, const char *name,
                          const char *schema)
{
    size_t cap = l->cap;
    int rc = grow((void **)&l->names, &cap, l->n, sizeof(char *));
    if (rc == 0 && cap != l->cap) {
        char **s = sprig__realloc(l->schemas, cap * sizeof(char *));
        if (!s) {
            return sprig__err(SPRIG_ENOMEM, "out of memory listing");
        }
        l->schemas = s;
        l->cap = cap;
    }
    if (rc) {
        return rc;
    }
    char *n = sprig__strdup(name), *s = sprig__strdup(schema);
    if (!n || !s) {
        sprig__free(n);
        sprig__free(s);
        return sprig__err(SPRIG_ENOMEM, "out of memory listing");
    }
    l->names[l->n] = n;
    l->schemas[l->n++] = s;
    return SPRIG_OK;
}

void
sprig__database_list_sort(sprig_database_list *l)
{
    /* insertion sort: lists are short and this keeps names/schemas paired */
    for (size_t i = 1; i < l->n; i++) {
        char *n = l->names[i], *s = l->schemas[i];
        size_t j = i;
        while (j > 0 && strcmp(l->names[j - 1], n) > 0) {
            l->names[j] = l->names[j - 1];
            l->schemas[j] = l->schemas[j - 1];
            j--;
        }
        l->names[j] = n;
        l->schemas[j] = s;
    }
}

size_t
sprig_database_list_count(const sprig_database_list *l)
{
    return l ? l->n : 0;
}

const char *
sprig_database_list_name(const sprig_database_list *l, size_t i)
{
    return l && i < l->n ? l->names[i] : NULL;
}

const char *
sprig_database_list_schema(const sprig_database_list *l, size_t i)
{
    return l && i < l->n ? l->schemas[i] : NULL;
}

void
sprig_database_list_free(sprig_database_list *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        sprig__free(l->names[i]);
        sprig__free(l->schemas[i]);
    }
    sprig__free(l->names);
    sprig__free(l->schemas);
    sprig__free(l);
}

int
sprig__schema_list_push(sprig_schema_list *l, sprig_schema_def *s)
{
    int rc = grow((void **)&l->items, &l->cap, l->n, sizeof *l->items);
    if (rc) {
        sprig__free(s);
        return rc;
    }
    size_t j = l->n++;
    while (j > 0 && strcmp(l->items[j - 1]->name, s->name) > 0) {
        l->items[j] = l->items[j - 1];
        j--;
    }
    l->items[j] = s;
    return SPRIG_OK;
}

size_t
sprig_schema_list_count(const sprig_schema_list *l)
{
    return l ? l->n : 0;
}

const sprig_schema_def *
sprig_schema_list_get(const sprig_schema_list *l, size_t i)
{
    return l && i < l->n ? l->items[i] : NULL;
}

void
sprig_schema_list_free(sprig_schema_list *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        sprig__free(l->items[i]);
    }
    sprig__free(l->items);
    sprig__free(l);
}
