/*
 * narrow.c -- storage and database handles narrowed to an identity
 * (src/auth): wrapping operations tables that check every call as the
 * server checks a request -- the same action and the same canonical
 * resource names as the API table's rows (docs/protocol.md) -- and pass
 * it on to the wrapped handle only when it is granted.  A refused call
 * changes nothing and fails with SPRIG_EPERM.  Subscribers made through a
 * narrowed database are narrowed too (subscribe/unsubscribe checked per
 * topic).  A write to the "_admin" database through a narrowed handle
 * marks the admin records changed.
 */
#include "auth/auth_int.h"

#include <stdio.h>

typedef struct n_storage {
    sprig_storage base;
    sprig_storage *inner;
    sprig_auth *a;
    sprig_identity *id;
} n_storage;

typedef struct n_db {
    sprig_db base;
    sprig_db *inner;
    sprig_auth *a;
    sprig_identity *id;
    char name[SPRIG_NAME_MAX + 1];
} n_db;

typedef struct n_sub {
    sprig_subscriber base;
    sprig_subscriber *inner;
    sprig_identity *id;
    char db[SPRIG_NAME_MAX + 1];
} n_sub;

/* Check `action` on the name made of `n` segments (the first `consts`
 * constant, the rest variable parts written in canonical form). */
static int
check(sprig_identity *id, const char *action, const sprig_bytes *segs, size_t n)
{
    sprig_buf b = {0};
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = sprig__auth_segment(&b, segs[i], i == 0);
    }
    rc = rc ? rc : sprig_identity_check(id, action, (const char *)b.data);
    sprig_buf_clear(&b);
    return rc;
}

#define S(x) sprig_str(x)

static int
check_db(n_db *d, const char *action)
{
    sprig_bytes s[] = {S("sprig"), S("db"), S(d->name)};
    return check(d->id, action, s, 3);
}

static int
check_coll(n_db *d, const char *action, const char *coll)
{
    sprig_bytes s[] = {S("sprig"), S("db"), S(d->name), S("collection"),
                       S(coll)};
    return check(d->id, action, s, 5);
}

static int
check_doc(n_db *d, const char *action, const char *coll, sprig_bytes id)
{
    sprig_bytes s[] = {S("sprig"), S("db"),       S(d->name), S("collection"),
                       S(coll),    S("document"), id};
    return check(d->id, action, s, 7);
}

static int
check_view(n_db *d, const char *action, const sprig_view_query *q)
{
    sprig_bytes s[] = {S("sprig"),
                       S("db"),
                       S(d->name),
                       S("collection"),
                       S(q->collection ? q->collection : ""),
                       S("view"),
                       S(q->view ? q->view : "")};
    return check(d->id, action, s, 7);
}

static int
check_kv(n_db *d, const char *action, const char *ns, const char *key)
{
    sprig_bytes s[] = {S("sprig"),    S("db"), S(d->name),
                       S("keyvalue"), S(ns),   S(key ? key : "")};
    return check(d->id, action, s, key ? 6 : 5);
}

static int
check_topic(sprig_identity *id, const char *db, const sprig_bytes *topic)
{
    sprig_bytes s[] = {S("sprig"), S("db"), S(db), S("pubsub"),
                       topic ? *topic : S("")};
    return check(id, "pubsub.subscribe", s, topic ? 5 : 4);
}

/* ---- subscribers -----------------------------------------------------------
 */

static int
ns_subscribe(sprig_subscriber *s, sprig_bytes topic)
{
    n_sub *n = (n_sub *)s;
    int rc = check_topic(n->id, n->db, &topic);
    return rc ? rc : n->inner->ops->subscribe(n->inner, topic);
}

static int
ns_unsubscribe(sprig_subscriber *s, sprig_bytes topic)
{
    n_sub *n = (n_sub *)s;
    int rc = check_topic(n->id, n->db, &topic);
    return rc ? rc : n->inner->ops->unsubscribe(n->inner, topic);
}

static int
ns_recv(sprig_subscriber *s, int timeout_ms, sprig_message **out)
{
    n_sub *n = (n_sub *)s;
    return n->inner->ops->recv(n->inner, timeout_ms, out);
}

static int
ns_fd(sprig_subscriber *s)
{
    n_sub *n = (n_sub *)s;
    return n->inner->ops->fd(n->inner);
}

static uint64_t
ns_dropped(const sprig_subscriber *s)
{
    const n_sub *n = (const n_sub *)s;
    return n->inner->ops->dropped(n->inner);
}

static int
ns_set_limits(sprig_subscriber *s, size_t max_messages, size_t max_bytes)
{
    n_sub *n = (n_sub *)s;
    return n->inner->ops->set_limits(n->inner, max_messages, max_bytes);
}

static void
ns_free(sprig_subscriber *s)
{
    n_sub *n = (n_sub *)s;
    n->inner->ops->free(n->inner);
    sprig_identity_release(n->id);
    sprig__free(n);
}

static const sprig_subscriber_ops n_sub_ops = {
    ns_subscribe, ns_unsubscribe, ns_recv, ns_fd,
    ns_dropped,   ns_set_limits,  ns_free,
};

/* ---- databases
 * --------------------------------------------------------------- */

#define INNER(db) (((n_db *)(db))->inner)
#define ND(db) ((n_db *)(db))

static void
nd_close(sprig_db *db)
{
    sprig_db_close(INNER(db));
    sprig_identity_release(ND(db)->id);
    sprig__free(db);
}

static const char *
nd_name(const sprig_db *db)
{
    return ((const n_db *)db)->name;
}

/* After a write: a change of "_admin" changes permissions. */
static int
wrote(n_db *d, int rc)
{
    if (strcmp(d->name, SPRIG_AUTH_DB) == 0) {
        sprig_auth_changed(d->a);
    }
    return rc;
}

/* Operation `i` of `t`, for its own action on its document (an insert
 * without an id: on sprig.db.<db>.collection.<c>.document), as the
 * server's db.apply checks it; a refusal names the operation. */
static int
check_op(n_db *d, const sprig_txn *t, size_t i)
{
    const sprig__op *op = &t->ops[i];
    sprig_bytes s[] = {S("sprig"),      S("db"),           S(d->name),
                       S("collection"), S(op->collection), S("document"),
                       op->id};
    int rc = check(d->id, sprig__op_action(op->kind), s, op->has_id ? 7 : 6);
    if (rc == SPRIG_EPERM && t->n > 1) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", sprig_errmsg());
        rc = sprig__err(rc, "%s (operation %zu of the transaction's %zu)", msg,
                        i + 1, t->n);
    }
    return rc;
}

static int
nd_apply(sprig_db *db, const sprig_txn *t, sprig_txn_result *res)
{
    int rc = t->n ? 0 : check_db(ND(db), "transaction.apply");
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        rc = check_op(ND(db), t, i);
    }
    return rc ? rc : wrote(ND(db), INNER(db)->ops->apply(INNER(db), t, res));
}

static int
nd_get(sprig_db *db, const char *coll, sprig_bytes id, sprig_doc **out)
{
    int rc = check_doc(ND(db), "document.get", coll, id);
    return rc ? rc : INNER(db)->ops->get(INNER(db), coll, id, out);
}

static int
nd_get_multiple(sprig_db *db, const char *coll, const sprig_bytes *ids,
                size_t n, sprig_doc_list **out)
{
    sprig_bytes none[] = {S("sprig"),      S("db"), S(ND(db)->name),
                          S("collection"), S(coll), S("document")};
    int rc = n ? 0 : check(ND(db)->id, "document.get", none, 6);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = check_doc(ND(db), "document.get", coll, ids[i]);
    }
    return rc ? rc : INNER(db)->ops->get_multiple(INNER(db), coll, ids, n, out);
}

static int
nd_list(sprig_db *db, const char *coll, const sprig_range *r, sprig_order order,
        uint32_t limit, bool headers_only, sprig_doc_list **out)
{
    int rc = check_coll(ND(db), "document.list", coll);
    return rc ? rc
              : INNER(db)->ops->list(INNER(db), coll, r, order, limit,
                                     headers_only, out);
}

static int
nd_count(sprig_db *db, const char *coll, const sprig_range *r, uint64_t *out)
{
    int rc = check_coll(ND(db), "document.count", coll);
    return rc ? rc : INNER(db)->ops->count(INNER(db), coll, r, out);
}

static int
nd_list_executed(sprig_db *db, uint64_t since, uint32_t limit,
                 sprig_txn_log **out)
{
    int rc = check_db(ND(db), "transaction.log");
    return rc ? rc
              : INNER(db)->ops->list_executed(INNER(db), since, limit, out);
}

static int
nd_last_txn_id(sprig_db *db, uint64_t *out)
{
    int rc = check_db(ND(db), "transaction.log");
    return rc ? rc : INNER(db)->ops->last_txn_id(INNER(db), out);
}

/* Changes feeds (issue 15): opening one is `transaction.changes` on the
 * database; reading it reads the log (`transaction.log`) and, with
 * contents, the documents (`document.get`) through this handle. */
static int
nd_watch(sprig_db *db, int *fd, void **token)
{
    int rc = check_db(ND(db), "transaction.changes");
    return rc ? rc : INNER(db)->ops->watch(INNER(db), fd, token);
}

static void
nd_unwatch(sprig_db *db, void *token)
{
    INNER(db)->ops->unwatch(INNER(db), token);
}

static int
nd_view_query(sprig_db *db, const sprig_view_query *q, bool with_docs,
              sprig_mapping_list **out)
{
    int rc = check_view(ND(db), "view.query", q);
    return rc ? rc : INNER(db)->ops->view_query(INNER(db), q, with_docs, out);
}

static int
nd_view_reduce(sprig_db *db, const sprig_view_query *q, sprig_buf *out)
{
    int rc = check_view(ND(db), "view.query", q);
    return rc ? rc : INNER(db)->ops->view_reduce(INNER(db), q, out);
}

static int
nd_view_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                       sprig_mapping_list **out)
{
    int rc = check_view(ND(db), "view.query", q);
    return rc ? rc : INNER(db)->ops->view_reduce_grouped(INNER(db), q, out);
}

static int
nd_view_delete_docs(sprig_db *db, const sprig_view_query *q, uint64_t *deleted)
{
    int rc = check_view(ND(db), "view.delete_docs", q);
    return rc ? rc
              : wrote(ND(db),
                      INNER(db)->ops->view_delete_docs(INNER(db), q, deleted));
}

static int
nd_kv_set(sprig_db *db, const char *ns, const char *key, const sprig_value *v,
          const sprig_kv_set_opts *so, sprig_kv_status *status,
          sprig_value *previous)
{
    int rc = check_kv(ND(db), "kv.set", ns, key);
    return rc ? rc
              : INNER(db)->ops->kv_set(INNER(db), ns, key, v, so, status,
                                       previous);
}

static int
nd_kv_get(sprig_db *db, const char *ns, const char *key, bool and_delete,
          sprig_value *out)
{
    int rc = check_kv(ND(db), "kv.get", ns, key);
    return rc ? rc
              : INNER(db)->ops->kv_get(INNER(db), ns, key, and_delete, out);
}

static int
nd_kv_incr(sprig_db *db, const char *ns, const char *key,
           const sprig_value *amount, bool decrement, bool saturating,
           sprig_value *out)
{
    int rc = check_kv(ND(db), "kv.set", ns, key);
    return rc ? rc
              : INNER(db)->ops->kv_incr(INNER(db), ns, key, amount, decrement,
                                        saturating, out);
}

static int
nd_kv_delete(sprig_db *db, const char *ns, const char *key,
             sprig_kv_status *status)
{
    int rc = check_kv(ND(db), "kv.delete", ns, key);
    return rc ? rc : INNER(db)->ops->kv_delete(INNER(db), ns, key, status);
}

static int
nd_kv_list(sprig_db *db, const char *ns, const char *prefix, const char *after,
           uint32_t limit, sprig_kv_key_list **out)
{
    int rc = check_kv(ND(db), "kv.list", ns, NULL);
    return rc ? rc
              : INNER(db)->ops->kv_list(INNER(db), ns, prefix, after, limit,
                                        out);
}

static int
nd_subscriber_new(sprig_db *db, sprig_subscriber **out)
{
    int rc = check_topic(ND(db)->id, ND(db)->name, NULL);
    n_sub *s = rc ? NULL : sprig__calloc(1, sizeof *s);
    if (rc == 0 && !s) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    rc = rc ? rc : INNER(db)->ops->subscriber_new(INNER(db), &s->inner);
    if (rc) {
        sprig__free(s);
        return rc;
    }
    s->base.ops = &n_sub_ops;
    s->id = sprig_identity_ref(ND(db)->id);
    snprintf(s->db, sizeof s->db, "%s", ND(db)->name);
    *out = &s->base;
    return SPRIG_OK;
}

static int
nd_publish(sprig_db *db, const sprig_bytes *topics, size_t n,
           sprig_bytes payload)
{
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < (n ? n : 1); i++) {
        sprig_bytes s[] = {S("sprig"), S("db"), S(ND(db)->name), S("pubsub"),
                           n ? topics[i] : S("")};
        rc = check(ND(db)->id, "pubsub.publish", s, n ? 5 : 4);
    }
    return rc ? rc : INNER(db)->ops->publish(INNER(db), topics, n, payload);
}

static bool
nd_dropped(const sprig_db *db)
{
    const sprig_db *in = ((const n_db *)db)->inner;
    return in->ops->dropped && in->ops->dropped(in);
}

static const sprig_db_ops n_db_ops = {
    .close = nd_close,
    .name = nd_name,
    .apply = nd_apply,
    .get = nd_get,
    .get_multiple = nd_get_multiple,
    .list = nd_list,
    .count = nd_count,
    .list_executed = nd_list_executed,
    .last_txn_id = nd_last_txn_id,
    .view_query = nd_view_query,
    .view_reduce = nd_view_reduce,
    .view_reduce_grouped = nd_view_reduce_grouped,
    .view_delete_docs = nd_view_delete_docs,
    .kv_set = nd_kv_set,
    .kv_get = nd_kv_get,
    .kv_incr = nd_kv_incr,
    .kv_delete = nd_kv_delete,
    .kv_list = nd_kv_list,
    .subscriber_new = nd_subscriber_new,
    .publish = nd_publish,
    .watch = nd_watch,
    .unwatch = nd_unwatch,
    .dropped = nd_dropped,
    .submit = NULL, /* writes go through the checked synchronous ops */
};

/* ---- storages
 * ---------------------------------------------------------------- */

#define NS(st) ((n_storage *)(st))

static int
check_st(n_storage *s, const char *action, const char *kind, const char *name)
{
    sprig_bytes seg[] = {S("sprig"), S(kind ? kind : ""), S(name ? name : "")};
    return check(s->id, action, seg, kind ? 3 : 1);
}

static void
nst_close(sprig_storage *st)
{
    sprig_identity_release(NS(st)->id);
    sprig__free(st);
}

static int
nst_register_schema(sprig_storage *st, const sprig_schema_def *s)
{
    int rc = check_st(NS(st), "schema.register", "schema", s->name);
    return rc ? rc : sprig_storage_register_schema(NS(st)->inner, s);
}

static int
nst_create_database(sprig_storage *st, const char *name, const char *schema,
                    bool only_if_needed)
{
    int rc = check_st(NS(st), "database.create", "db", name);
    return rc ? rc
              : sprig_storage_create_database(NS(st)->inner, name, schema,
                                              only_if_needed);
}

static int
nst_delete_database(sprig_storage *st, const char *name)
{
    int rc = check_st(NS(st), "database.delete", "db", name);
    return rc ? rc : sprig_storage_delete_database(NS(st)->inner, name);
}

static int
nst_list_databases(sprig_storage *st, sprig_database_list **out)
{
    int rc = check_st(NS(st), "database.list", NULL, NULL);
    return rc ? rc : sprig_storage_list_databases(NS(st)->inner, out);
}

static int
nst_list_schemas(sprig_storage *st, sprig_schema_list **out)
{
    int rc = check_st(NS(st), "schema.list", NULL, NULL);
    return rc ? rc : sprig_storage_list_schemas(NS(st)->inner, out);
}

static int
nst_database(sprig_storage *st, const char *name, sprig_db **out)
{
    n_storage *s = NS(st);
    int rc = check_st(s, "database.open", "db", name);
    n_db *d = rc ? NULL : sprig__calloc(1, sizeof *d);
    if (rc == 0 && !d) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    rc = rc ? rc : sprig_storage_open_database(s->inner, name, &d->inner);
    if (rc) {
        sprig__free(d);
        return rc;
    }
    d->base.ops = &n_db_ops;
    d->a = s->a;
    d->id = sprig_identity_ref(s->id);
    snprintf(d->name, sizeof d->name, "%s", name);
    *out = &d->base;
    return SPRIG_OK;
}

static void
nst_status(sprig_storage *st, sprig__storage_status *out)
{
    sprig__storage_status_of(NS(st)->inner, out);
}

/* Backup, restore, export, import, compaction: the server's action
 * "storage.maintain" on the whole storage, as the request row says. */
static int
nst_maintain(sprig_storage *st, sprig__maint_kind kind, const char *arg,
             sprig_progress_fn cb, void *udata)
{
    int rc = check_st(NS(st), "storage.maintain", NULL, NULL);
    sprig_storage *in = NS(st)->inner;
    if (rc == 0 && !in->ops->maintain) {
        rc = sprig__err(SPRIG_EINVAL, "not supported by this storage");
    }
    return rc ? rc : in->ops->maintain(in, kind, arg, cb, udata);
}

static const sprig_storage_ops n_storage_ops = {
    .close = nst_close,
    .register_schema = nst_register_schema,
    .create_database = nst_create_database,
    .delete_database = nst_delete_database,
    .list_databases = nst_list_databases,
    .list_schemas = nst_list_schemas,
    .database = nst_database,
    .status = nst_status,
    .maintain = nst_maintain,
};

int
sprig_storage_narrow(sprig_storage *st, sprig_auth *a, sprig_identity *id,
                     sprig_storage **out)
{
    if (!st || !a || !id || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_storage_narrow: NULL argument");
    }
    n_storage *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    s->base.ops = &n_storage_ops;
    s->inner = st;
    s->a = a;
    s->id = sprig_identity_ref(id);
    *out = &s->base;
    return SPRIG_OK;
}
