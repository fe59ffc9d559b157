/*
 * api.c -- the public functions on `sprig_storage` and `sprig_db` handles.
 *
 * Each checks its arguments, then calls through the handle's operations
 * table, so the same function serves a local engine, a remote client or a
 * cluster node.  Single-document writes are one-operation transactions: an
 * implementation only has to provide `apply`.
 */
#include "core.h"

#define CHECK_ARG(cond, what)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            return sprig__err(SPRIG_EINVAL, "%s", what);                       \
        }                                                                      \
    } while (0)

/* ---- storage ----------------------------------------------------------- */

void
sprig_storage_close(sprig_storage *st)
{
    if (st) {
        st->ops->close(st);
    }
}

int
sprig_storage_register_schema(sprig_storage *st, const sprig_schema_def *s)
{
    CHECK_ARG(st, "storage is NULL");
    int rc = sprig__schema_check(s);
    return rc ? rc : st->ops->register_schema(st, s);
}

int
sprig_storage_create_database(sprig_storage *st, const char *name,
                              const char *schema, bool only_if_needed)
{
    CHECK_ARG(st, "storage is NULL");
    int rc = sprig__check_db_name(name);
    if (rc == 0 && (!schema || !*schema)) {
        rc = sprig__err(SPRIG_EINVAL, "schema name is empty");
    }
    return rc ? rc : st->ops->create_database(st, name, schema, only_if_needed);
}

int
sprig_storage_delete_database(sprig_storage *st, const char *name)
{
    CHECK_ARG(st, "storage is NULL");
    int rc = sprig__check_db_name(name);
    return rc ? rc : st->ops->delete_database(st, name);
}

int
sprig_storage_list_databases(sprig_storage *st, sprig_database_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(st, "storage is NULL");
    return st->ops->list_databases(st, out);
}

int
sprig_storage_list_schemas(sprig_storage *st, sprig_schema_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(st, "storage is NULL");
    return st->ops->list_schemas(st, out);
}

int
sprig_storage_open_database(sprig_storage *st, const char *name, sprig_db **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(st, "storage is NULL");
    int rc = sprig__check_db_name(name);
    return rc ? rc : sprig__err_in_db(st->ops->database(st, name, out), name);
}

/* ---- database handles -------------------------------------------------- */

void
sprig_db_close(sprig_db *db)
{
    if (db) {
        db->ops->close(db);
    }
}

const char *
sprig_db_name(const sprig_db *db)
{
    return db ? db->ops->name(db) : "";
}

static int
check_coll(sprig_db *db, const char *coll)
{
    CHECK_ARG(db, "database handle is NULL");
    CHECK_ARG(coll && *coll, "collection name is empty");
    return SPRIG_OK;
}

static int
check_id(sprig_bytes id)
{
    CHECK_ARG(id.len && id.data, "document id is empty");
    if (id.len > SPRIG_ID_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "document id has %zu bytes; the "
                          "limit is %d",
                          id.len, SPRIG_ID_MAX);
    }
    return SPRIG_OK;
}

static int
check_contents(sprig_bytes c)
{
    CHECK_ARG(c.data || !c.len, "contents pointer is NULL");
    if (c.len > SPRIG_CONTENTS_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "document contents have %zu bytes; "
                          "the limit is %u",
                          c.len, SPRIG_CONTENTS_MAX);
    }
    return SPRIG_OK;
}

/* A failure about something named gets the names of the call (database,
 * collection, id) that the layer below did not give it. */
static int
with_context(int rc, sprig_db *db, const char *coll, const sprig_bytes *id)
{
    if (rc < 0 && db) {
        sprig__err_in_db(rc, db->ops->name(db));
        sprig__errinfo_context(db->ops->name(db), coll, id);
    }
    return rc;
}

/* Apply a single operation; fill `out` with its header, or on a conflict
 * with the stored header. */
static int
apply_one(sprig_db *db, const sprig__op *op, sprig_header_buf *out)
{
    sprig_txn t = {1, 1, (sprig__op *)op};
    sprig_header_buf hb;
    sprig_txn_result res;
    sprig__txn_result_init(&res, &hb, 1);
    int rc = db->ops->apply(db, &t, &res);
    with_context(rc, db, op->collection, op->has_id ? &op->id : NULL);
    if (out) {
        if (rc == 0) {
            *out = hb;
        } else if (res.has_conflict) {
            *out = res.conflict;
        } else {
            memset(out, 0, sizeof *out);
        }
    }
    return rc;
}

int
sprig_insert(sprig_db *db, const char *coll, const sprig_bytes *id,
             sprig_bytes contents, sprig_header_buf *out)
{
    int rc = check_coll(db, coll);
    rc = rc ? rc : (id ? check_id(*id) : 0);
    rc = rc ? rc : check_contents(contents);
    if (rc) {
        return rc;
    }
    sprig__op op = {.kind = SPRIG__OP_INSERT,
                    .collection = coll,
                    .has_id = id != NULL,
                    .contents = contents};
    if (id) {
        op.id = *id;
    }
    return apply_one(db, &op, out);
}

int
sprig_overwrite(sprig_db *db, const char *coll, sprig_bytes id,
                sprig_bytes contents, sprig_header_buf *out)
{
    int rc = check_coll(db, coll);
    rc = rc ? rc : check_id(id);
    rc = rc ? rc : check_contents(contents);
    if (rc) {
        return rc;
    }
    sprig__op op = {.kind = SPRIG__OP_OVERWRITE,
                    .collection = coll,
                    .has_id = true,
                    .id = id,
                    .contents = contents};
    return apply_one(db, &op, out);
}

int
sprig_update(sprig_db *db, const char *coll, const sprig_header *expected,
             sprig_bytes contents, sprig_header_buf *out)
{
    sprig__op op = {
        .kind = SPRIG__OP_UPDATE, .collection = coll, .contents = contents};
    int rc = check_coll(db, coll);
    rc = rc ? rc : sprig__op_expect(&op, expected);
    rc = rc ? rc : check_id(expected->id);
    rc = rc ? rc : check_contents(contents);
    return rc ? rc : apply_one(db, &op, out);
}

int
sprig_delete(sprig_db *db, const char *coll, const sprig_header *expected)
{
    sprig__op op = {.kind = SPRIG__OP_DELETE, .collection = coll};
    int rc = check_coll(db, coll);
    rc = rc ? rc : sprig__op_expect(&op, expected);
    rc = rc ? rc : check_id(expected->id);
    return rc ? rc : apply_one(db, &op, NULL);
}

int
sprig_get(sprig_db *db, const char *coll, sprig_bytes id, sprig_doc **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    int rc = check_coll(db, coll);
    rc = rc ? rc : check_id(id);
    return rc ? rc
              : with_context(db->ops->get(db, coll, id, out), db, coll, &id);
}

int
sprig_get_multiple(sprig_db *db, const char *coll, const sprig_bytes *ids,
                   size_t n, sprig_doc_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    int rc = check_coll(db, coll);
    CHECK_ARG(ids || n == 0, "ids is NULL");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = check_id(ids[i]);
    }
    return rc ? rc
              : with_context(db->ops->get_multiple(db, coll, ids, n, out), db,
                             coll, NULL);
}

static int
check_range(const sprig_range *r)
{
    if (!r) {
        return SPRIG_OK;
    }
    const sprig_bound *b[2] = {&r->start, &r->end};
    for (int i = 0; i < 2; i++) {
        if (b[i]->kind != SPRIG_UNBOUNDED && b[i]->kind != SPRIG_INCLUDED &&
            b[i]->kind != SPRIG_EXCLUDED) {
            return sprig__err(SPRIG_EINVAL, "range bound kind %d is unknown",
                              (int)b[i]->kind);
        }
        CHECK_ARG(b[i]->kind == SPRIG_UNBOUNDED || b[i]->key.data ||
                      !b[i]->key.len,
                  "range bound key is NULL");
    }
    return SPRIG_OK;
}

int
sprig_list(sprig_db *db, const char *coll, const sprig_range *r,
           sprig_order order, uint32_t limit, sprig_doc_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    int rc = check_coll(db, coll);
    rc = rc ? rc : check_range(r);
    return rc ? rc
              : with_context(
                    db->ops->list(db, coll, r, order, limit, false, out), db,
                    coll, NULL);
}

int
sprig_list_headers(sprig_db *db, const char *coll, const sprig_range *r,
                   sprig_order order, uint32_t limit, sprig_header_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    int rc = check_coll(db, coll);
    rc = rc ? rc : check_range(r);
    sprig_doc_list *docs = NULL;
    rc =
        rc ? rc
           : with_context(db->ops->list(db, coll, r, order, limit, true, &docs),
                          db, coll, NULL);
    if (rc) {
        return rc;
    }
    sprig_header_list *hl = sprig__calloc(1, sizeof *hl);
    rc = hl ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory listing headers");
    for (size_t i = 0; rc == 0 && i < docs->n; i++) {
        sprig_header h = sprig_doc_header(docs->docs[i]);
        sprig_header_buf hb;
        sprig__header_set(&hb, &h);
        rc = sprig__header_list_push(hl, &hb);
    }
    sprig_doc_list_free(docs);
    if (rc) {
        sprig_header_list_free(hl);
        return rc;
    }
    *out = hl;
    return SPRIG_OK;
}

int
sprig_count(sprig_db *db, const char *coll, const sprig_range *r, uint64_t *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    int rc = check_coll(db, coll);
    rc = rc ? rc : check_range(r);
    return rc ? rc
              : with_context(db->ops->count(db, coll, r, out), db, coll, NULL);
}

int
sprig_txn_apply(sprig_db *db, const sprig_txn *t, sprig_txn_result **out)
{
    if (out) {
        *out = NULL;
    }
    CHECK_ARG(db, "database handle is NULL");
    CHECK_ARG(t, "transaction is NULL");
    CHECK_ARG(t->n > 0, "transaction has no operations");
    sprig_txn_result *res = sprig__txn_result_new(t->n);
    if (!res) {
        return SPRIG_ENOMEM;
    }
    int rc = db->ops->apply(db, t, res);
    with_context(rc, db, NULL, NULL);
    if (out && (rc == 0 || res->failed >= 0)) {
        *out = res;
    } else {
        sprig_txn_result_free(res);
    }
    return rc;
}

int
sprig_list_executed_txns(sprig_db *db, uint64_t since, uint32_t limit,
                         sprig_txn_log **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(db, "database handle is NULL");
    if (limit > SPRIG_TXN_LOG_PAGE_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "a page of the transaction log of %u entries is "
                          "over SPRIG_TXN_LOG_PAGE_MAX (%d)",
                          limit, SPRIG_TXN_LOG_PAGE_MAX);
    }
    limit = limit ? limit : SPRIG_TXN_LOG_PAGE_DEFAULT;
    return with_context(db->ops->list_executed(db, since, limit, out), db, NULL,
                        NULL);
}

int
sprig_last_txn_id(sprig_db *db, uint64_t *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_ARG(db, "database handle is NULL");
    return db->ops->last_txn_id(db, out);
}
