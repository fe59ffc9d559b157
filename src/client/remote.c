/*
 * remote.c -- `sprig_storage` and `sprig_db` over the network: the same
 * operations tables the local engine implements (src/core/core.h), each
 * operation one call of its API row (src/proto/api_table.c).  This is what
 * lets code written against sprig.h run unchanged on a remote database.
 */
#include "client/client_int.h"

#include <stdio.h>

#define RDB(db) ((remote_db *)(db))
#define CLIENT(st) (((remote_storage *)(st))->client)

/* One call of `api` with a zeroed response struct `resp`; the caller
 * takes what it needs from `resp`, then releases it. */
#define CALL(c, api, req, resp) sprig__client_call((c), &(api), (req), (resp))
#define RELEASE(api, r) sprig__api_free((api).resp, (api).n_resp, (r))

/* ---- databases ---------------------------------------------------------- */

static void
r_close(sprig_db *db)
{
    sprig__free(db);
}

static const char *
r_name(const sprig_db *db)
{
    return ((const remote_db *)db)->name;
}

/* Copy a decoded result into the caller's (which has room for t->n). */
static void
copy_result(sprig_txn_result *dst, const sprig_txn_result *src)
{
    size_t n = src->n < dst->n ? src->n : dst->n;
    memcpy(dst->headers, src->headers, n * sizeof *dst->headers);
    dst->id = src->id;
    dst->failed = src->failed;
    dst->error = src->error;
    dst->has_conflict = src->has_conflict;
    dst->conflict = src->conflict;
}

static int
r_apply(sprig_db *db, const sprig_txn *t, sprig_txn_result *res)
{
    sprig__apply_req req = {RDB(db)->name, (sprig_txn *)t};
    sprig__apply_resp resp = {0};
    int rc = CALL(RDB(db)->client, sprig__api_apply, &req, &resp);
    if (resp.result) {
        copy_result(res, resp.result);
    }
    RELEASE(sprig__api_apply, &resp);
    return rc;
}

static int
r_get(sprig_db *db, const char *coll, sprig_bytes id, sprig_doc **out)
{
    sprig__get_req req = {RDB(db)->name, (char *)coll, id};
    sprig__get_resp resp = {0};
    int rc = CALL(RDB(db)->client, sprig__api_get, &req, &resp);
    if (rc == 0 && !resp.doc) {
        rc = sprig__err(SPRIG_EPROTO, "the answer holds no document");
    }
    if (rc == 0) {
        *out = resp.doc;
        resp.doc = NULL;
    }
    RELEASE(sprig__api_get, &resp);
    return rc;
}

/* Take the document list out of a response. */
static int
take_docs(int rc, sprig__docs_resp *resp, sprig_doc_list **out)
{
    if (rc == 0 && !resp->docs) {
        rc = sprig__err(SPRIG_EPROTO, "the answer holds no documents");
    }
    if (rc == 0) {
        *out = resp->docs;
        resp->docs = NULL;
    }
    return rc;
}

static int
r_get_multiple(sprig_db *db, const char *coll, const sprig_bytes *ids, size_t n,
               sprig_doc_list **out)
{
    sprig__get_multiple_req req = {
        RDB(db)->name, (char *)coll, {(sprig_bytes *)ids, n}};
    sprig__docs_resp resp = {0};
    int rc = CALL(RDB(db)->client, sprig__api_get_multiple, &req, &resp);
    rc = take_docs(rc, &resp, out);
    RELEASE(sprig__api_get_multiple, &resp);
    return rc;
}

static int
r_list(sprig_db *db, const char *coll, const sprig_range *r, sprig_order order,
       uint32_t limit, bool headers_only, sprig_doc_list **out)
{
    sprig__list_req req = {RDB(db)->name, (char *)coll,    {{0}},
                           r != NULL,     (uint32_t)order, limit,
                           headers_only};
    if (r) {
        req.range = *r;
    }
    sprig__docs_resp resp = {0};
    int rc = CALL(RDB(db)->client, sprig__api_list, &req, &resp);
    rc = take_docs(rc, &resp, out);
    RELEASE(sprig__api_list, &resp);
    return rc;
}

static int
r_count(sprig_db *db, const char *coll, const sprig_range *r, uint64_t *out)
{
    sprig__count_req req = {RDB(db)->name, (char *)coll, {{0}}, r != NULL};
    if (r) {
        req.range = *r;
    }
    sprig__count_resp resp = {0};
    int rc = CALL(RDB(db)->client, sprig__api_doc_count, &req, &resp);
    *out = resp.count;
    return rc;
}

static int
r_list_executed(sprig_db *db, uint64_t since, uint32_t limit,
                sprig_txn_log **out)
{
    sprig__log_req req = {RDB(db)->name, since, limit};
    sprig__log_resp resp = {0};
    int rc = CALL(RDB(db)->client, sprig__api_log, &req, &resp);
    if (rc == 0 && !resp.log) {
        rc = sprig__err(SPRIG_EPROTO, "the answer holds no log");
    }
    if (rc == 0) {
        *out = resp.log;
        resp.log = NULL;
    }
    RELEASE(sprig__api_log, &resp);
    return rc;
}

static int
r_last_txn_id(sprig_db *db, uint64_t *out)
{
    sprig__db_req req = {RDB(db)->name};
    sprig__last_txn_resp resp = {0};
    int rc = CALL(RDB(db)->client, sprig__api_last_txn, &req, &resp);
    *out = resp.id;
    return rc;
}

static const sprig_db_ops remote_db_ops = {
    .close = r_close,
    .name = r_name,
    .apply = r_apply,
    .get = r_get,
    .get_multiple = r_get_multiple,
    .list = r_list,
    .count = r_count,
    .list_executed = r_list_executed,
    .last_txn_id = r_last_txn_id,
    .view_query = sprig__r_view_query,
    .view_reduce = sprig__r_view_reduce,
    .view_reduce_grouped = sprig__r_view_reduce_grouped,
    .view_delete_docs = sprig__r_view_delete_docs,
    .kv_set = sprig__r_kv_set,
    .kv_get = sprig__r_kv_get,
    .kv_incr = sprig__r_kv_incr,
    .kv_delete = sprig__r_kv_delete,
    .kv_list = sprig__r_kv_list,
    .subscriber_new = sprig__r_subscriber_new,
    .publish = sprig__r_publish,
    .watch = sprig__r_watch,
    .unwatch = sprig__r_unwatch,
};

/* ---- the storage --------------------------------------------------------- */

static void
rs_close(sprig_storage *st)
{
    (void)st; /* owned by the client: sprig_client_close() frees it */
}

/* Views travel with the schema: declarative ones whole, C ones by
 * description only (their code cannot travel), which the server accepts
 * only as its own C view of that name (sprig_storage_register_schema()). */
static int
rs_register_schema(sprig_storage *st, const sprig_schema_def *s)
{
    sprig__schema_register_req req = {(sprig_schema_def *)s};
    sprig__empty resp = {0};
    return CALL(CLIENT(st), sprig__api_schema_register, &req, &resp);
}

static int
rs_create_database(sprig_storage *st, const char *name, const char *schema,
                   bool only_if_needed)
{
    sprig__db_create_req req = {(char *)name, (char *)schema, only_if_needed};
    sprig__empty resp = {0};
    return CALL(CLIENT(st), sprig__api_db_create, &req, &resp);
}

static int
rs_delete_database(sprig_storage *st, const char *name)
{
    sprig__db_name_req req = {(char *)name};
    sprig__empty resp = {0};
    return CALL(CLIENT(st), sprig__api_db_delete, &req, &resp);
}

static int
rs_list_databases(sprig_storage *st, sprig_database_list **out)
{
    sprig__empty req = {0};
    sprig__db_list_resp resp = {0};
    int rc = CALL(CLIENT(st), sprig__api_db_list, &req, &resp);
    if (rc == 0 && !resp.list) {
        rc = sprig__err(SPRIG_EPROTO, "the answer holds no list");
    }
    if (rc == 0) {
        sprig__database_list_sort(resp.list);
        *out = resp.list;
        resp.list = NULL;
    }
    RELEASE(sprig__api_db_list, &resp);
    return rc;
}

static int
rs_list_schemas(sprig_storage *st, sprig_schema_list **out)
{
    sprig__empty req = {0};
    sprig__schema_list_resp resp = {0};
    int rc = CALL(CLIENT(st), sprig__api_schema_list, &req, &resp);
    if (rc == 0 && !resp.list) {
        rc = sprig__err(SPRIG_EPROTO, "the answer holds no list");
    }
    if (rc == 0) {
        *out = resp.list;
        resp.list = NULL;
    }
    RELEASE(sprig__api_schema_list, &resp);
    return rc;
}

static int
rs_database(sprig_storage *st, const char *name, sprig_db **out)
{
    sprig__db_name_req req = {(char *)name};
    sprig__empty resp = {0};
    int rc = CALL(CLIENT(st), sprig__api_db_open, &req, &resp);
    if (rc) {
        return rc;
    }
    remote_db *r = sprig__calloc(1, sizeof *r);
    if (!r) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    r->base.ops = &remote_db_ops;
    r->client = CLIENT(st);
    snprintf(r->name, sizeof r->name, "%s", name);
    *out = &r->base;
    return SPRIG_OK;
}

/* Backup and friends run in the server (its directories); the progress
 * comes once, with the totals, when the job is done. */
static int
rs_maintain(sprig_storage *st, sprig__maint_kind kind, const char *arg,
            sprig_progress_fn cb, void *udata)
{
    static const char *const what[] = {"",       "backup", "restore",
                                       "export", "import", "compact"};
    sprig__maint_req req = {(uint32_t)kind, (char *)arg};
    sprig__maint_resp resp = {0};
    int rc = CALL(CLIENT(st), sprig__api_maintain, &req, &resp);
    if (rc == 0 && cb) {
        sprig_progress p = {what[kind <= SPRIG__MAINT_COMPACT ? kind : 0],
                            NULL,
                            resp.items,
                            resp.items_total,
                            resp.bytes,
                            resp.bytes_total,
                            true};
        cb(udata, &p);
    }
    return rc;
}

const sprig_storage_ops sprig__remote_storage_ops = {
    .close = rs_close,
    .register_schema = rs_register_schema,
    .create_database = rs_create_database,
    .delete_database = rs_delete_database,
    .list_databases = rs_list_databases,
    .list_schemas = rs_list_schemas,
    .database = rs_database,
    .maintain = rs_maintain,
};
