/*
 * dispatch.c -- the server side of each API row (worker threads).
 *
 * sprig__dispatch() decodes the request with the row's fields, checks the
 * row's permission action, runs the handler against the server's own local
 * storage through the public API, and encodes the answer frame: a response,
 * or an error (code, the worker's sprig_errmsg(), and -- for rows marked
 * resp_on_error -- the response as detail, e.g. a failed transaction's
 * result).  Then it hands the job back to the loop thread.
 *
 * sprig__dispatch_inline() is the same for the reads that never wait on
 * anything but memory (db.get, kv.get without and_delete: one LMDB read
 * transaction from the engine's pool), run by the loop thread itself as
 * the frame arrives: no payload copy, no job, no hand-off to a worker and
 * back, and the answer leaves with the others of the same read.
 */
#include "server/server_int.h"

#include <stdio.h>

typedef int (*serve_fn)(sprig_server *srv, void *req, void *resp);

/* On the loop thread (sprig__dispatch_inline): handlers may only use
 * cached database handles, never open one. */
static _Thread_local bool on_loop;

/* Run `call` with `db`, a handle of database `name` (db_cache.c). */
#define WITH_DB(srv, name, call)                                               \
    do {                                                                       \
        sprig_db *db;                                                          \
        int rc_ = sprig__db_acquire((srv), (name), !on_loop, &db);             \
        if (rc_ == 0) {                                                        \
            rc_ = (call);                                                      \
            sprig__db_release((srv), db);                                      \
        }                                                                      \
        return rc_;                                                            \
    } while (0)

static int
s_db_create(sprig_server *srv, void *rq, void *rs)
{
    sprig__db_create_req *r = rq;
    (void)rs;
    return sprig_storage_create_database(srv->st, r->name, r->schema,
                                         r->only_if_needed);
}

static int
s_db_delete(sprig_server *srv, void *rq, void *rs)
{
    (void)rs;
    return sprig_storage_delete_database(srv->st,
                                         ((sprig__db_name_req *)rq)->name);
}

static int
s_db_list(sprig_server *srv, void *rq, void *rs)
{
    (void)rq;
    return sprig_storage_list_databases(srv->st,
                                        &((sprig__db_list_resp *)rs)->list);
}

static int
s_db_open(sprig_server *srv, void *rq, void *rs)
{
    (void)rs;
    WITH_DB(srv, ((sprig__db_name_req *)rq)->name, SPRIG_OK);
}

static int
s_schema_register(sprig_server *srv, void *rq, void *rs)
{
    (void)rs;
    return sprig_storage_register_schema(
        srv->st, ((sprig__schema_register_req *)rq)->schema);
}

static int
s_schema_list(sprig_server *srv, void *rq, void *rs)
{
    (void)rq;
    return sprig_storage_list_schemas(srv->st,
                                      &((sprig__schema_list_resp *)rs)->list);
}

static int
s_apply(sprig_server *srv, void *rq, void *rs)
{
    sprig__apply_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_txn_apply(db, r->txn, &((sprig__apply_resp *)rs)->result));
}

static int
s_get(sprig_server *srv, void *rq, void *rs)
{
    sprig__get_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_get(db, r->collection, r->id, &((sprig__get_resp *)rs)->doc));
}

static int
s_get_multiple(sprig_server *srv, void *rq, void *rs)
{
    sprig__get_multiple_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_get_multiple(db, r->collection, r->ids.items, r->ids.n,
                               &((sprig__docs_resp *)rs)->docs));
}

/* Headers as documents with empty contents (the wire's list shape). */
static int
list_headers(sprig_db *db, const sprig__list_req *r, const sprig_range *rg,
             sprig_doc_list **out)
{
    sprig_header_list *hl;
    int rc = sprig_list_headers(db, r->collection, rg, (sprig_order)r->order,
                                r->limit, &hl);
    if (rc) {
        return rc;
    }
    *out = sprig__calloc(1, sizeof **out);
    rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < sprig_header_list_count(hl); i++) {
        sprig_header h = sprig_header_list_get(hl, i);
        sprig_doc *d =
            sprig__doc_new(h.id, h.revision, h.hash, (sprig_bytes){NULL, 0});
        rc = d ? sprig__doc_list_push(*out, d) : SPRIG_ENOMEM;
    }
    sprig_header_list_free(hl);
    return rc;
}

static int
list_in(sprig_db *db, const sprig__list_req *r, sprig_doc_list **out)
{
    const sprig_range *rg = r->has_range ? &r->range : NULL;
    if (r->headers_only) {
        return list_headers(db, r, rg, out);
    }
    return sprig_list(db, r->collection, rg, (sprig_order)r->order, r->limit,
                      out);
}

static int
s_list(sprig_server *srv, void *rq, void *rs)
{
    sprig__list_req *r = rq;
    WITH_DB(srv, r->db, list_in(db, r, &((sprig__docs_resp *)rs)->docs));
}

static int
s_count(sprig_server *srv, void *rq, void *rs)
{
    sprig__count_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_count(db, r->collection, r->has_range ? &r->range : NULL,
                        &((sprig__count_resp *)rs)->count));
}

static int
s_log(sprig_server *srv, void *rq, void *rs)
{
    sprig__log_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_list_executed_transactions(db, r->since, r->limit,
                                             &((sprig__log_resp *)rs)->log));
}

static int
s_last_txn(sprig_server *srv, void *rq, void *rs)
{
    WITH_DB(srv, ((sprig__db_req *)rq)->db,
            sprig_last_transaction_id(db, &((sprig__last_txn_resp *)rs)->id));
}

/* ---- key-value ------------------------------------------------------------
 */

static int
s_kv_set(sprig_server *srv, void *rq, void *rs)
{
    sprig__kv_set_req *r = rq;
    sprig__kv_set_resp *out = rs;
    sprig_kv_set_opts o = {.expire_at_ms = r->expire_at_ms,
                           .keep_expiration = r->keep_expiration,
                           .check = (sprig_kv_check)r->check,
                           .return_previous = r->return_previous,
                           .expire_in_ms = r->expire_in_ms};
    sprig_kv_status st = 0;
    out->previous.kind = SPRIG_VALUE_NONE;
    sprig_db *db;
    int rc = sprig__db_acquire(srv, r->db, !on_loop, &db);
    if (rc == 0) {
        rc = sprig_kv_set(db, r->ns, r->key, &r->value, &o, &st,
                          r->return_previous ? &out->previous : NULL);
        sprig__db_release(srv, db);
    }
    out->status = (uint32_t)st;
    return rc;
}

static int
s_kv_get(sprig_server *srv, void *rq, void *rs)
{
    sprig__kv_get_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_kv_get(db, r->ns, r->key, r->and_delete,
                         &((sprig__kv_value_resp *)rs)->value));
}

static int
kv_incr(sprig_db *db, const sprig__kv_incr_req *r, sprig_value *out)
{
    return r->decrement ? sprig_kv_decrement(db, r->ns, r->key, &r->amount,
                                             r->saturating, out)
                        : sprig_kv_increment(db, r->ns, r->key, &r->amount,
                                             r->saturating, out);
}

static int
s_kv_incr(sprig_server *srv, void *rq, void *rs)
{
    sprig__kv_incr_req *r = rq;
    WITH_DB(srv, r->db, kv_incr(db, r, &((sprig__kv_value_resp *)rs)->value));
}

static int
kv_delete(sprig_db *db, const sprig__kv_key_req *r, uint32_t *status)
{
    sprig_kv_status st = 0;
    int rc = sprig_kv_delete(db, r->ns, r->key, &st);
    *status = (uint32_t)st;
    return rc;
}

static int
s_kv_delete(sprig_server *srv, void *rq, void *rs)
{
    sprig__kv_key_req *r = rq;
    WITH_DB(srv, r->db,
            kv_delete(db, r, &((sprig__kv_status_resp *)rs)->status));
}

static int
s_kv_list(sprig_server *srv, void *rq, void *rs)
{
    sprig__kv_list_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_kv_list_keys(db, r->ns, r->prefix,
                               r->has_after ? r->after : NULL, r->limit,
                               &((sprig__kv_list_resp *)rs)->list));
}

/* ---- views ----------------------------------------------------------------
 */

static int
view_query(sprig_db *db, const sprig__view_req *r, sprig_mapping_list **out)
{
    return r->with_docs ? sprig_view_query_with_docs(db, &r->query.q, out)
                        : sprig_view_query_mappings(db, &r->query.q, out);
}

static int
s_view_query(sprig_server *srv, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(srv, r->db,
            view_query(db, r, &((sprig__mappings_resp *)rs)->mappings));
}

static int
s_view_reduce(sprig_server *srv, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(
        srv, r->db,
        sprig_view_reduce(db, &r->query.q, &((sprig__reduce_resp *)rs)->value));
}

static int
s_view_reduce_grouped(sprig_server *srv, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_view_reduce_grouped(db, &r->query.q,
                                      &((sprig__mappings_resp *)rs)->mappings));
}

static int
s_view_delete_docs(sprig_server *srv, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(srv, r->db,
            sprig_view_delete_docs(db, &r->query.q,
                                   &((sprig__deleted_resp *)rs)->deleted));
}

static int
s_publish(sprig_server *srv, void *rq, void *rs)
{
    sprig__publish_req *r = rq;
    (void)rs;
    WITH_DB(srv, r->db,
            sprig_publish_to_all(db, r->topics.items, r->topics.n, r->payload));
}

static const struct {
    const sprig__api *api;
    serve_fn fn;
} handlers[] = {
    {&sprig__api_db_create, s_db_create},
    {&sprig__api_db_delete, s_db_delete},
    {&sprig__api_db_list, s_db_list},
    {&sprig__api_db_open, s_db_open},
    {&sprig__api_schema_register, s_schema_register},
    {&sprig__api_schema_list, s_schema_list},
    {&sprig__api_apply, s_apply},
    {&sprig__api_get, s_get},
    {&sprig__api_get_multiple, s_get_multiple},
    {&sprig__api_list, s_list},
    {&sprig__api_doc_count, s_count},
    {&sprig__api_log, s_log},
    {&sprig__api_last_txn, s_last_txn},
    {&sprig__api_kv_set, s_kv_set},
    {&sprig__api_kv_get, s_kv_get},
    {&sprig__api_kv_incr, s_kv_incr},
    {&sprig__api_kv_delete, s_kv_delete},
    {&sprig__api_kv_list, s_kv_list},
    {&sprig__api_view_query, s_view_query},
    {&sprig__api_view_reduce, s_view_reduce},
    {&sprig__api_view_reduce_grouped, s_view_reduce_grouped},
    {&sprig__api_view_delete_docs, s_view_delete_docs},
    {&sprig__api_publish, s_publish},
};

static serve_fn
find_handler(const sprig__api *api)
{
    for (size_t i = 0; i < sizeof handlers / sizeof *handlers; i++) {
        if (handlers[i].api == api) {
            return handlers[i].fn;
        }
    }
    return NULL;
}

/* The permission check every request passes through.  The security issue
 * (F9) fills it in; until then every session may do everything. */
static int
allowed(sprig_server *srv, const sprig__api *api)
{
    (void)srv;
    (void)api;
    return SPRIG_OK;
}

/* Encode the answer frame to request `id` into `out`. */
static void
answer(const sprig__api *api, uint32_t id, int rc, void *resp, sprig_buf *out)
{
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, out);
    if (rc == 0) {
        sprig__frame_response(&w, id);
        sprig__api_encode(&w, api->resp, api->n_resp, resp);
        return;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", sprig_errmsg());
    sprig_buf detail = {0};
    if (api->resp_on_error && resp) {
        sprig__mp_wr dw;
        sprig__mp_wr_init(&dw, &detail);
        sprig__api_encode(&dw, api->resp, api->n_resp, resp);
        if (detail.len == 1) {
            detail.len = 0; /* an empty map: no response to carry (nil) */
        }
    }
    sprig__frame_error(&w, id, rc, msg, sprig_buf_bytes(&detail));
    sprig_buf_free(&detail);
}

bool
sprig__dispatch_inline(sprig_server *srv, const sprig__api *api, uint32_t id,
                       sprig_bytes payload, sprig_buf *out)
{
    if (api != &sprig__api_get && api != &sprig__api_kv_get) {
        return false;
    }
    union {
        sprig__get_req get;
        sprig__kv_get_req kv;
    } req;
    union {
        sprig__get_resp get;
        sprig__kv_value_resp kv;
    } resp;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    int rc = sprig__api_decode(payload, api->req, api->n_req, &req);
    if (rc == 0 && api == &sprig__api_kv_get && req.kv.and_delete) {
        sprig__api_free(api->req, api->n_req, &req);
        return false; /* a write: a worker's job */
    }
    rc = rc ? rc : allowed(srv, api);
    on_loop = true;
    rc = rc ? rc : find_handler(api)(srv, &req, &resp);
    on_loop = false;
    if (rc == SPRIG__EMISS) { /* not open yet: a worker opens it */
        sprig__api_free(api->req, api->n_req, &req);
        sprig__api_free(api->resp, api->n_resp, &resp);
        return false;
    }
    answer(api, id, rc, &resp, out);
    sprig__api_free(api->req, api->n_req, &req);
    sprig__api_free(api->resp, api->n_resp, &resp);
    return true;
}

void
sprig__dispatch(sprig__job *j, void *udata)
{
    sprig_server *srv = udata;
    const sprig__api *api = j->api;
    void *req = sprig__calloc(1, api->req_size);
    void *resp = sprig__calloc(1, api->resp_size);
    serve_fn fn = find_handler(api);
    int rc = req && resp ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    if (rc == 0 && !fn) {
        rc = sprig__err(SPRIG_EPROTO, "API '%s' is not served", api->name);
    }
    rc = rc ? rc
            : sprig__api_decode(sprig_buf_bytes(&j->in), api->req, api->n_req,
                                req);
    rc = rc ? rc : allowed(srv, api);
    rc = rc ? rc : fn(srv, req, resp);
    answer(api, j->id, rc, resp, &j->out);
    if (req) {
        sprig__api_free(api->req, api->n_req, req);
    }
    if (resp) {
        sprig__api_free(api->resp, api->n_resp, resp);
    }
    sprig__free(req);
    sprig__free(resp);
    pthread_mutex_lock(&srv->lock);
    if (srv->done_tail) {
        srv->done_tail->next = j;
    } else {
        srv->done_head = j;
    }
    srv->done_tail = j;
    /* under the lock: the loop closes done_async only while holding it,
     * and only once no job is in flight, so this handle is still open */
    uv_async_send(&srv->done_async);
    pthread_mutex_unlock(&srv->lock);
}
