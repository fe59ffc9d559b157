/*
 * dispatch.c -- the built-in rows' handlers (src/server), and the worker
 * side of a request job.
 *
 * Each handler calls the public API on the server's storage (any
 * sprig_storage: the server never reaches into an implementation).  The
 * handlers of rows that run on the loop thread when their database handle
 * is cached (db.get, kv.get) use only cached handles there and return
 * SPRIG__EMISS to move to a worker otherwise (a handle to open, or kv.get
 * with and_delete, a write).  sprig__builtins binds each built-in row to
 * its handler; the server's registry copies them in at creation.
 *
 * sprig__dispatch() runs a job's request path (request.c) on a worker and
 * hands the job back to the loop thread.
 */
#include "server/server_int.h"

#include <stdio.h>

/* Run `call` with `db`, a handle of database `name` (db_cache.c): on
 * the loop thread only a cached one (else SPRIG__EMISS). */
#define WITH_DB(c, name, call)                                                 \
    do {                                                                       \
        sprig_db *db;                                                          \
        int rc_ = sprig__db_acquire((c)->srv, (name), !(c)->on_loop, &db);     \
        if (rc_ == 0) {                                                        \
            rc_ = (call);                                                      \
            sprig__db_release((c)->srv, db, (c)->on_loop);                     \
        }                                                                      \
        return rc_;                                                            \
    } while (0)

static int
s_db_create(sprig__call *c, void *rq, void *rs)
{
    sprig__db_create_req *r = rq;
    (void)rs;
    return sprig_storage_create_database(c->srv->st, r->name, r->schema,
                                         r->only_if_needed);
}

static int
s_db_delete(sprig__call *c, void *rq, void *rs)
{
    (void)rs;
    return sprig_storage_delete_database(c->srv->st,
                                         ((sprig__db_name_req *)rq)->name);
}

static int
s_db_list(sprig__call *c, void *rq, void *rs)
{
    (void)rq;
    return sprig_storage_list_databases(c->srv->st,
                                        &((sprig__db_list_resp *)rs)->list);
}

static int
s_db_open(sprig__call *c, void *rq, void *rs)
{
    (void)rs;
    WITH_DB(c, ((sprig__db_name_req *)rq)->name, SPRIG_OK);
}

static int
s_schema_register(sprig__call *c, void *rq, void *rs)
{
    (void)rs;
    return sprig_storage_register_schema(
        c->srv->st, ((sprig__schema_register_req *)rq)->schema);
}

static int
s_schema_list(sprig__call *c, void *rq, void *rs)
{
    (void)rq;
    return sprig_storage_list_schemas(c->srv->st,
                                      &((sprig__schema_list_resp *)rs)->list);
}

static int
s_get(sprig__call *c, void *rq, void *rs)
{
    sprig__get_req *r = rq;
    WITH_DB(c, r->db,
            sprig_get(db, r->collection, r->id, &((sprig__get_resp *)rs)->doc));
}

static int
s_get_multiple(sprig__call *c, void *rq, void *rs)
{
    sprig__get_multiple_req *r = rq;
    WITH_DB(c, r->db,
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
s_list(sprig__call *c, void *rq, void *rs)
{
    sprig__list_req *r = rq;
    WITH_DB(c, r->db, list_in(db, r, &((sprig__docs_resp *)rs)->docs));
}

static int
s_count(sprig__call *c, void *rq, void *rs)
{
    sprig__count_req *r = rq;
    WITH_DB(c, r->db,
            sprig_count(db, r->collection, r->has_range ? &r->range : NULL,
                        &((sprig__count_resp *)rs)->count));
}

static int
s_log(sprig__call *c, void *rq, void *rs)
{
    sprig__log_req *r = rq;
    WITH_DB(c, r->db,
            sprig_list_executed_txns(db, r->since, r->limit,
                                     &((sprig__log_resp *)rs)->log));
}

static int
s_last_txn(sprig__call *c, void *rq, void *rs)
{
    WITH_DB(c, ((sprig__db_req *)rq)->db,
            sprig_last_txn_id(db, &((sprig__last_txn_resp *)rs)->id));
}

/* ---- key-value ------------------------------------------------------------
 */

static int
s_kv_get(sprig__call *c, void *rq, void *rs)
{
    sprig__kv_get_req *r = rq;
    if (r->and_delete && c->on_loop) {
        return SPRIG__EMISS; /* a write: a worker's job */
    }
    WITH_DB(c, r->db,
            sprig_kv_get(db, r->ns, r->key, r->and_delete,
                         &((sprig__kv_value_resp *)rs)->value));
}

static int
s_kv_list(sprig__call *c, void *rq, void *rs)
{
    sprig__kv_list_req *r = rq;
    WITH_DB(c, r->db,
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
s_view_query(sprig__call *c, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(c, r->db,
            view_query(db, r, &((sprig__mappings_resp *)rs)->mappings));
}

static int
s_view_reduce(sprig__call *c, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(
        c, r->db,
        sprig_view_reduce(db, &r->query.q, &((sprig__reduce_resp *)rs)->value));
}

static int
s_view_reduce_grouped(sprig__call *c, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(c, r->db,
            sprig_view_reduce_grouped(db, &r->query.q,
                                      &((sprig__mappings_resp *)rs)->mappings));
}

static int
s_view_delete_docs(sprig__call *c, void *rq, void *rs)
{
    sprig__view_req *r = rq;
    WITH_DB(c, r->db,
            sprig_view_delete_docs(db, &r->query.q,
                                   &((sprig__deleted_resp *)rs)->deleted));
}

/* A publish on a replicated storage waits for a Raft commit: never on
 * the loop thread (a worker runs it). */
static int
publish_on(sprig__call *c, sprig_db *db, const sprig__publish_req *r)
{
    if (c->on_loop && db->ops->replicated && db->ops->replicated(db)) {
        return SPRIG__EMISS;
    }
    return sprig_publish_to_all(db, r->topics.items, r->topics.n, r->payload);
}

static int
s_publish(sprig__call *c, void *rq, void *rs)
{
    sprig__publish_req *r = rq;
    (void)rs;
    WITH_DB(c, r->db, publish_on(c, db, r));
}

/* A backup, restore, export, import or compaction: the job runs here, on
 * the server's storage, and answers its totals. */
static void
maint_progress(void *udata, const sprig_progress *p)
{
    sprig__maint_resp *r = udata;
    *r =
        (sprig__maint_resp){p->items, p->items_total, p->bytes, p->bytes_total};
}

static int
s_maintain(sprig__call *c, void *rq, void *rs)
{
    sprig__maint_req *r = rq;
    switch (r->kind) {
    case SPRIG__MAINT_BACKUP:
        return sprig_storage_backup(c->srv->st, r->arg, maint_progress, rs);
    case SPRIG__MAINT_RESTORE:
        return sprig_storage_restore(c->srv->st, r->arg, maint_progress, rs);
    case SPRIG__MAINT_EXPORT:
        return sprig_storage_export(c->srv->st, r->arg, maint_progress, rs);
    case SPRIG__MAINT_IMPORT:
        return sprig_storage_import(c->srv->st, r->arg, maint_progress, rs);
    case SPRIG__MAINT_COMPACT:
        return sprig_storage_compact(c->srv->st, r->arg, maint_progress, rs);
    }
    return sprig__err(SPRIG_EINVAL, "unknown maintenance job %u", r->kind);
}

const sprig__builtin sprig__builtins[] = {
    {&sprig__api_db_create, s_db_create},
    {&sprig__api_db_delete, s_db_delete},
    {&sprig__api_db_list, s_db_list},
    {&sprig__api_db_open, s_db_open},
    {&sprig__api_schema_register, s_schema_register},
    {&sprig__api_schema_list, s_schema_list},
    {&sprig__api_maintain, s_maintain},
    {&sprig__api_apply, sprig__submit_apply},
    {&sprig__api_get, s_get},
    {&sprig__api_get_multiple, s_get_multiple},
    {&sprig__api_list, s_list},
    {&sprig__api_doc_count, s_count},
    {&sprig__api_log, s_log},
    {&sprig__api_last_txn, s_last_txn},
    {&sprig__api_kv_set, sprig__submit_kv_set},
    {&sprig__api_kv_get, s_kv_get},
    {&sprig__api_kv_incr, sprig__submit_kv_incr},
    {&sprig__api_kv_delete, sprig__submit_kv_delete},
    {&sprig__api_kv_list, s_kv_list},
    {&sprig__api_view_query, s_view_query},
    {&sprig__api_view_reduce, s_view_reduce},
    {&sprig__api_view_reduce_grouped, s_view_reduce_grouped},
    {&sprig__api_view_delete_docs, s_view_delete_docs},
    {&sprig__api_publish, s_publish},
    {&sprig__api_subscriber_new, sprig__pubsub_new},
    {&sprig__api_subscribe, sprig__pubsub_subscribe},
    {&sprig__api_unsubscribe, sprig__pubsub_unsubscribe},
    {&sprig__api_subscriber_free, sprig__pubsub_free},
    {&sprig__api_changes_subscribe, sprig__changes_subscribe},
    {&sprig__api_changes_unsubscribe, sprig__changes_unsubscribe},
    {&sprig__api_server_clients, sprig__server_clients},
    {&sprig__api_auth_password, sprig__auth_password},
    {&sprig__api_auth_challenge, sprig__auth_challenge},
    {&sprig__api_auth_token, sprig__auth_token},
    {&sprig__api_auth_assume, sprig__auth_assume},
    {&sprig__api_auth_logout, sprig__auth_logout},
    {&sprig__api_admin_user_create, sprig__admin_change},
    {&sprig__api_admin_user_password, sprig__admin_change},
    {&sprig__api_admin_user_delete, sprig__admin_change},
    {&sprig__api_admin_user_group, sprig__admin_change},
    {&sprig__api_admin_user_role, sprig__admin_change},
    {&sprig__api_admin_role_create, sprig__admin_change},
    {&sprig__api_admin_role_group, sprig__admin_change},
    {&sprig__api_admin_group_create, sprig__admin_change},
    {&sprig__api_admin_group_grant, sprig__admin_change},
    {&sprig__api_admin_group_revoke, sprig__admin_change},
    {&sprig__api_admin_token_create, sprig__admin_change},
    {&sprig__api_admin_token_delete, sprig__admin_change},
    {&sprig__api_server_apis, sprig__server_apis},
};
const size_t sprig__builtins_n =
    sizeof sprig__builtins / sizeof *sprig__builtins;

void
sprig__job_finish(sprig_server *srv, sprig__job *j)
{
    pthread_mutex_lock(&srv->lock);
    if (srv->done_tail) {
        srv->done_tail->next = j;
    } else {
        srv->done_head = j;
    }
    srv->done_tail = j;
    /* under the lock: the loop closes done_async only while holding it
     * (setting done_closed), normally once no job is in flight */
    if (!srv->done_closed) {
        uv_async_send(&srv->done_async);
    }
    pthread_mutex_unlock(&srv->lock);
}

void
sprig__dispatch(sprig__job *j, void *udata)
{
    sprig_server *srv = udata;
    sprig__call c = {srv, j->sess, j->route, j->id, false, j};
    c.who = j->who;
    bool authorised = j->authorised;
    if (sprig__request_run(&c, sprig_buf_bytes(&j->in), &authorised, &j->out) ==
        SPRIG__EASYNC) {
        return; /* submitted: the engine's thread finishes the job */
    }
    sprig__job_finish(srv, j);
}

void
sprig__run_task(sprig_server *srv, sprig__job *job)
{
    if (srv->pool.threads) {
        sprig__pool_push(&srv->pool, job);
    } else {
        job->task(job); /* shutting down: the workers have stopped */
    }
}

void *
sprig__owned_new(size_t size, sprig_server *srv, void (*close)(void *obj))
{
    sprig__owned *o = sprig__calloc(1, size);
    if (!o || !(o->release = sprig__calloc(1, sizeof *o->release))) {
        sprig__free(o);
        sprig__err(SPRIG_ENOMEM, "out of memory");
        return NULL;
    }
    o->srv = srv;
    o->close = close;
    return o;
}

/* Worker task: close the object, then free its job. */
static void
owned_task(sprig__job *j)
{
    sprig__owned *o = j->attach;
    o->close(o);
    sprig__free(j);
}

void
sprig__owned_release(sprig__owned *o)
{
    o->release->attach = o;
    o->release->task = owned_task;
    sprig__run_task(o->srv, o->release);
}

void
sprig__owned_discard(sprig__owned *o)
{
    sprig__job *j = o->release;
    o->close(o);
    sprig__free(j);
}
