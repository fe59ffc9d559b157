/*
 * wrap_storage.h -- a storage that is not the local type: a thin wrapper
 * that forwards every operation of the public ops tables (core/core.h) to
 * a local storage and its database handles, and counts the databases
 * opened through it (and those opened or closed on a watched thread).  A
 * server made with sprig_server_new_for() over it
 * can only work through the public ops, never by casting to the local
 * engine's types: the "wrapped" placement of the conformance suite
 * (placement.h) runs the whole suite that way.
 */
#ifndef SPRIG_TEST_WRAP_STORAGE_H
#define SPRIG_TEST_WRAP_STORAGE_H

#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct wrap_storage {
    sprig_storage base;
    sprig_storage *in;
    atomic_long opened, closed; /* database handles through the wrapper */
    /* handles opened or closed on thread `watch`, once `watching` */
    pthread_t watch;
    atomic_bool watching;
    atomic_long on_watch;
    /* opening a database handle takes this long (a slow storage) */
    atomic_uint open_delay_us;
} wrap_storage;

typedef struct wrap_db {
    sprig_db base;
    sprig_db *in;
    wrap_storage *st;
} wrap_db;

static inline void
wrap_note_thread(wrap_storage *w)
{
    if (atomic_load(&w->watching) && pthread_equal(pthread_self(), w->watch)) {
        atomic_fetch_add(&w->on_watch, 1);
    }
}

#define WST(s) (((wrap_storage *)(s))->in)
#define WDB(d) (((const wrap_db *)(d))->in)

static inline void
wrap_db_close(sprig_db *db)
{
    sprig_db *in = WDB(db);
    wrap_note_thread(((wrap_db *)db)->st);
    atomic_fetch_add(&((wrap_db *)db)->st->closed, 1);
    in->ops->close(in);
    free(db);
}

static inline const char *
wrap_db_name(const sprig_db *db)
{
    return WDB(db)->ops->name(WDB(db));
}

static inline int
wrap_apply(sprig_db *db, const sprig_txn *t, sprig_txn_result *res)
{
    return WDB(db)->ops->apply(WDB(db), t, res);
}

static inline int
wrap_get(sprig_db *db, const char *coll, sprig_bytes id, sprig_doc **out)
{
    return WDB(db)->ops->get(WDB(db), coll, id, out);
}

static inline int
wrap_get_multiple(sprig_db *db, const char *coll, const sprig_bytes *ids,
                  size_t n, sprig_doc_list **out)
{
    return WDB(db)->ops->get_multiple(WDB(db), coll, ids, n, out);
}

static inline int
wrap_list(sprig_db *db, const char *coll, const sprig_range *r,
          sprig_order order, uint32_t limit, bool headers_only,
          sprig_doc_list **out)
{
    return WDB(db)->ops->list(WDB(db), coll, r, order, limit, headers_only,
                              out);
}

static inline int
wrap_count(sprig_db *db, const char *coll, const sprig_range *r, uint64_t *out)
{
    return WDB(db)->ops->count(WDB(db), coll, r, out);
}

static inline int
wrap_list_executed(sprig_db *db, uint64_t since, uint32_t limit,
                   sprig_txn_log **out)
{
    return WDB(db)->ops->list_executed(WDB(db), since, limit, out);
}

static inline int
wrap_last_txn_id(sprig_db *db, uint64_t *out)
{
    return WDB(db)->ops->last_txn_id(WDB(db), out);
}

static inline int
wrap_view_query(sprig_db *db, const sprig_view_query *q, bool with_docs,
                sprig_mapping_list **out)
{
    return WDB(db)->ops->view_query(WDB(db), q, with_docs, out);
}

static inline int
wrap_view_reduce(sprig_db *db, const sprig_view_query *q, sprig_buf *out)
{
    return WDB(db)->ops->view_reduce(WDB(db), q, out);
}

static inline int
wrap_view_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                         sprig_mapping_list **out)
{
    return WDB(db)->ops->view_reduce_grouped(WDB(db), q, out);
}

static inline int
wrap_view_delete_docs(sprig_db *db, const sprig_view_query *q, uint64_t *n)
{
    return WDB(db)->ops->view_delete_docs(WDB(db), q, n);
}

static inline int
wrap_kv_set(sprig_db *db, const char *ns, const char *key, const sprig_value *v,
            const sprig_kv_set_opts *so, sprig_kv_status *status,
            sprig_value *previous)
{
    return WDB(db)->ops->kv_set(WDB(db), ns, key, v, so, status, previous);
}

static inline int
wrap_kv_get(sprig_db *db, const char *ns, const char *key, bool and_delete,
            sprig_value *out)
{
    return WDB(db)->ops->kv_get(WDB(db), ns, key, and_delete, out);
}

static inline int
wrap_kv_incr(sprig_db *db, const char *ns, const char *key,
             const sprig_value *amount, bool decrement, bool saturating,
             sprig_value *out)
{
    return WDB(db)->ops->kv_incr(WDB(db), ns, key, amount, decrement,
                                 saturating, out);
}

static inline int
wrap_kv_delete(sprig_db *db, const char *ns, const char *key,
               sprig_kv_status *status)
{
    return WDB(db)->ops->kv_delete(WDB(db), ns, key, status);
}

static inline int
wrap_kv_list(sprig_db *db, const char *ns, const char *prefix,
             const char *after, uint32_t limit, sprig_kv_key_list **out)
{
    return WDB(db)->ops->kv_list(WDB(db), ns, prefix, after, limit, out);
}

static inline int
wrap_subscriber_new(sprig_db *db, sprig_subscriber **out)
{
    return WDB(db)->ops->subscriber_new(WDB(db), out);
}

static inline int
wrap_publish(sprig_db *db, const sprig_bytes *topics, size_t n,
             sprig_bytes payload)
{
    return WDB(db)->ops->publish(WDB(db), topics, n, payload);
}

static inline bool
wrap_dropped(const sprig_db *db)
{
    return sprig__db_was_dropped(WDB(db));
}

static const sprig_db_ops wrap_db_ops = {
    .close = wrap_db_close,
    .name = wrap_db_name,
    .apply = wrap_apply,
    .get = wrap_get,
    .get_multiple = wrap_get_multiple,
    .list = wrap_list,
    .count = wrap_count,
    .list_executed = wrap_list_executed,
    .last_txn_id = wrap_last_txn_id,
    .view_query = wrap_view_query,
    .view_reduce = wrap_view_reduce,
    .view_reduce_grouped = wrap_view_reduce_grouped,
    .view_delete_docs = wrap_view_delete_docs,
    .kv_set = wrap_kv_set,
    .kv_get = wrap_kv_get,
    .kv_incr = wrap_kv_incr,
    .kv_delete = wrap_kv_delete,
    .kv_list = wrap_kv_list,
    .subscriber_new = wrap_subscriber_new,
    .publish = wrap_publish,
    .dropped = wrap_dropped,
};

static inline void
wrap_close(sprig_storage *st)
{
    sprig_storage *in = WST(st);
    in->ops->close(in);
    free(st);
}

static inline int
wrap_register_schema(sprig_storage *st, const sprig_schema_def *s)
{
    return WST(st)->ops->register_schema(WST(st), s);
}

static inline int
wrap_create_database(sprig_storage *st, const char *name, const char *schema,
                     bool only_if_needed)
{
    return WST(st)->ops->create_database(WST(st), name, schema, only_if_needed);
}

static inline int
wrap_delete_database(sprig_storage *st, const char *name)
{
    return WST(st)->ops->delete_database(WST(st), name);
}

static inline int
wrap_list_databases(sprig_storage *st, sprig_database_list **out)
{
    return WST(st)->ops->list_databases(WST(st), out);
}

static inline int
wrap_list_schemas(sprig_storage *st, sprig_schema_list **out)
{
    return WST(st)->ops->list_schemas(WST(st), out);
}

static inline int
wrap_database(sprig_storage *st, const char *name, sprig_db **out)
{
    wrap_db *w = calloc(1, sizeof *w);
    if (!w) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    unsigned delay = atomic_load(&((wrap_storage *)st)->open_delay_us);
    if (delay) {
        usleep(delay);
    }
    int rc = WST(st)->ops->database(WST(st), name, &w->in);
    if (rc) {
        free(w);
        return rc;
    }
    w->base.ops = &wrap_db_ops;
    w->st = (wrap_storage *)st;
    wrap_note_thread(w->st);
    atomic_fetch_add(&w->st->opened, 1);
    *out = &w->base;
    return SPRIG_OK;
}

static inline void
wrap_status(sprig_storage *st, sprig__storage_status *out)
{
    sprig__storage_status_of(WST(st), out);
}

static inline int
wrap_maintain(sprig_storage *st, sprig__maint_kind kind, const char *arg,
              sprig_progress_fn cb, void *udata)
{
    return WST(st)->ops->maintain(WST(st), kind, arg, cb, udata);
}

static const sprig_storage_ops wrap_storage_ops = {
    .close = wrap_close,
    .register_schema = wrap_register_schema,
    .create_database = wrap_create_database,
    .delete_database = wrap_delete_database,
    .list_databases = wrap_list_databases,
    .list_schemas = wrap_list_schemas,
    .database = wrap_database,
    .status = wrap_status,
    .maintain = wrap_maintain,
};

/** Wrap `in` (the wrapper owns it: closing the wrapper closes it). */
static inline sprig_storage *
wrap_storage_new(sprig_storage *in)
{
    wrap_storage *w = calloc(1, sizeof *w);
    if (w) {
        w->base.ops = &wrap_storage_ops;
        w->in = in;
    }
    return &w->base;
}

/** Databases opened through the wrapper so far. */
static inline long
wrap_storage_opened(sprig_storage *st)
{
    return atomic_load(&((wrap_storage *)st)->opened);
}

#endif
