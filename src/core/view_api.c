/*
 * view_api.c -- the public view functions (F4).
 *
 * Like api.c: each checks its arguments, then calls through the handle's
 * operations table, so a remote client implements the same four entries
 * (view_query, view_reduce, view_reduce_grouped, view_delete_docs).
 * Deleting the matched documents is also provided here generically, on top
 * of view_query and apply, for placements with nothing better to offer.
 */
#include "view.h"

#include <stdlib.h>

#define CHECK_ARG(cond, what)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            return sprig__err(SPRIG_EINVAL, "%s", what);                       \
        }                                                                      \
    } while (0)

void
sprig_view_query_init(sprig_view_query *q, const char *collection,
                      const char *view)
{
    if (q) {
        memset(q, 0, sizeof *q);
        q->collection = collection;
        q->view = view;
        q->match.kind = SPRIG_MATCH_ALL;
        q->order = SPRIG_ASC;
        q->access = SPRIG_UPDATE_BEFORE;
    }
}

/* A key argument: present, and at most SPRIG_KEY_MAX bytes. */
static int
check_key(const char *what, sprig_bytes k, bool may_be_empty)
{
    if ((!k.data && k.len) || (!may_be_empty && !k.len)) {
        return sprig__err(SPRIG_EINVAL, "%s is empty or NULL", what);
    }
    if (k.len > SPRIG_KEY_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "%s has %zu bytes; the limit is SPRIG_KEY_MAX (%d)",
                          what, k.len, SPRIG_KEY_MAX);
    }
    return SPRIG_OK;
}

static int
check_bound(const sprig_bound *b)
{
    if (b->kind != SPRIG_UNBOUNDED && b->kind != SPRIG_INCLUDED &&
        b->kind != SPRIG_EXCLUDED) {
        return sprig__err(SPRIG_EINVAL, "range bound kind %d is unknown",
                          (int)b->kind);
    }
    return b->kind == SPRIG_UNBOUNDED ? 0
                                      : check_key("range bound", b->key, false);
}

static int
check_match(const sprig_view_query *q)
{
    int rc = SPRIG_OK;
    switch (q->match.kind) {
    case SPRIG_MATCH_ALL: break;
    case SPRIG_MATCH_KEY:
        rc = check_key("match.key", q->match.key, false);
        break;
    case SPRIG_MATCH_PREFIX:
        rc = check_key("match.key (the prefix)", q->match.key, true);
        break;
    case SPRIG_MATCH_KEYS:
        CHECK_ARG(q->match.keys || !q->match.n_keys, "match.keys is NULL");
        for (size_t i = 0; rc == 0 && i < q->match.n_keys; i++) {
            rc = check_key("match.keys[i]", q->match.keys[i], false);
        }
        break;
    case SPRIG_MATCH_RANGE:
        rc = check_bound(&q->match.range.start);
        rc = rc ? rc : check_bound(&q->match.range.end);
        break;
    default:
        return sprig__err(SPRIG_EINVAL, "match kind %d is unknown",
                          (int)q->match.kind);
    }
    return rc;
}

static int
check_query(sprig_db *db, const sprig_view_query *q)
{
    CHECK_ARG(db, "database handle is NULL");
    CHECK_ARG(q, "query is NULL");
    CHECK_ARG(q->collection && *q->collection, "collection name is empty");
    CHECK_ARG(q->view && *q->view, "view name is empty");
    CHECK_ARG(q->order == SPRIG_ASC || q->order == SPRIG_DESC,
              "order is neither SPRIG_ASC nor SPRIG_DESC");
    CHECK_ARG(q->access == SPRIG_UPDATE_BEFORE ||
                  q->access == SPRIG_UPDATE_AFTER ||
                  q->access == SPRIG_NO_UPDATE,
              "access is not a sprig_view_access");
    int rc = check_match(q);
    if (rc == 0 && q->has_after) {
        rc = check_key("after_key", q->after_key, false);
        CHECK_ARG(q->after_id.data || !q->after_id.len, "after_id is NULL");
        if (rc == 0 && q->after_id.len > SPRIG_ID_MAX) {
            rc = sprig__err(SPRIG_ETOOBIG,
                            "after_id has %zu bytes; the "
                            "limit is %d",
                            q->after_id.len, SPRIG_ID_MAX);
        }
    }
    return rc;
}

static int
unsupported(void)
{
    return sprig__err(SPRIG_EINVAL, "this handle does not support views");
}

/* Name the database (and the query's collection) in a failure's detail. */
static int
ctx(int rc, sprig_db *db, const sprig_view_query *q)
{
    if (rc < 0 && db && q) {
        sprig__err_in_db(rc, db->ops->name(db));
        sprig__errinfo_context(db->ops->name(db), q->collection, NULL);
    }
    return rc;
}

static int
query(sprig_db *db, const sprig_view_query *q, bool docs,
      sprig_mapping_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    int rc = check_query(db, q);
    if (rc == 0 && !db->ops->view_query) {
        rc = unsupported();
    }
    return rc ? rc : ctx(db->ops->view_query(db, q, docs, out), db, q);
}

int
sprig_view_query_mappings(sprig_db *db, const sprig_view_query *q,
                          sprig_mapping_list **out)
{
    return query(db, q, false, out);
}

int
sprig_view_query_with_docs(sprig_db *db, const sprig_view_query *q,
                           sprig_mapping_list **out)
{
    return query(db, q, true, out);
}

int
sprig_view_reduce(sprig_db *db, const sprig_view_query *q, sprig_buf *out)
{
    CHECK_ARG(out, "out is NULL");
    out->len = 0;
    int rc = check_query(db, q);
    if (rc == 0 && !db->ops->view_reduce) {
        rc = unsupported();
    }
    return rc ? rc : ctx(db->ops->view_reduce(db, q, out), db, q);
}

int
sprig_view_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                          sprig_mapping_list **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    int rc = check_query(db, q);
    if (rc == 0 && !db->ops->view_reduce_grouped) {
        rc = unsupported();
    }
    return rc ? rc : ctx(db->ops->view_reduce_grouped(db, q, out), db, q);
}

int
sprig_view_delete_docs(sprig_db *db, const sprig_view_query *q,
                       uint64_t *deleted)
{
    if (deleted) {
        *deleted = 0;
    }
    int rc = check_query(db, q);
    if (rc == 0 && !db->ops->view_delete_docs) {
        rc = unsupported();
    }
    uint64_t n = 0;
    rc = rc ? rc : ctx(db->ops->view_delete_docs(db, q, &n), db, q);
    if (rc == 0 && deleted) {
        *deleted = n;
    }
    return rc;
}

/* ---- generic delete ------------------------------------------------------ */

static int
src_cmp(const void *a, const void *b)
{
    const sprig_header *x = *(const sprig_header *const *)a;
    const sprig_header *y = *(const sprig_header *const *)b;
    return sprig__bytes_cmp(x->id, y->id);
}

/* A transaction deleting each distinct source of `l` at the revision seen. */
static int
delete_txn(const sprig_mapping_list *l, const char *coll, sprig_txn *t)
{
    const sprig_header **v = sprig__malloc((l->n ? l->n : 1) * sizeof *v);
    if (!v) {
        return sprig__err(SPRIG_ENOMEM, "out of memory deleting documents");
    }
    for (size_t i = 0; i < l->n; i++) {
        v[i] = &l->items[i].source;
    }
    qsort(v, l->n, sizeof *v, src_cmp);
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        if (i == 0 || sprig__bytes_cmp(v[i]->id, v[i - 1]->id) != 0) {
            rc = sprig_txn_delete(t, coll, v[i]);
        }
    }
    sprig__free(v);
    return rc;
}

#define DELETE_ATTEMPTS 32

int
sprig__view_delete_docs_generic(sprig_db *db, const sprig_view_query *q,
                                uint64_t *deleted)
{
    sprig_view_query uq = *q;
    uq.access = SPRIG_UPDATE_BEFORE;
    for (int attempt = 0; attempt < DELETE_ATTEMPTS; attempt++) {
        sprig_mapping_list *l = NULL;
        sprig_txn *t = NULL;
        int rc = db->ops->view_query(db, &uq, false, &l);
        rc = rc ? rc : sprig_txn_new(&t);
        rc = rc ? rc : delete_txn(l, q->collection, t);
        sprig_mapping_list_free(l);
        sprig_txn_result *res = NULL;
        bool applied = false;
        if (rc == 0 && t->n) {
            res = sprig__txn_result_new(t->n);
            rc = res ? db->ops->apply(db, t, res) : SPRIG_ENOMEM;
            applied = res != NULL;
        }
        *deleted = rc == 0 ? t->n : 0;
        sprig_txn_result_free(res);
        sprig_txn_free(t);
        /* a document changed or went since the query: look again */
        if (!applied || (rc != SPRIG_ECONFLICT && rc != SPRIG_ENOTFOUND)) {
            return rc;
        }
    }
    return sprig__err(SPRIG_ECONFLICT,
                      "the matched documents kept changing; "
                      "gave up after %d attempts",
                      DELETE_ATTEMPTS);
}
