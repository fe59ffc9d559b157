/*
 * remote_more.c -- the key-value, view and publish operations of a remote
 * `sprig_db`: each one call of its API row (src/proto/api_table.c), with
 * the answer moved into the caller's outputs.
 */
#include "client/client_int.h"

#define RDB(db) ((remote_db *)(db))
#define CALL(db, api, req, resp)                                               \
    sprig__client_call(RDB(db)->client, &(api), (req), (resp))
#define RELEASE(api, r) sprig__api_free((api).resp, (api).n_resp, (r))

/* Move a decoded value to the caller (or drop it when not wanted). */
static void
give_value(sprig_value *from, sprig_value *to)
{
    if (to) {
        *to = *from;
    } else {
        sprig_value_clear(from);
    }
    memset(from, 0, sizeof *from);
}

int
sprig__r_kv_set(sprig_db *db, const char *ns, const char *key,
                const sprig_value *v, const sprig_kv_set_opts *so,
                sprig_kv_status *status, sprig_value *previous)
{
    sprig__kv_set_req req = {RDB(db)->name,
                             (char *)ns,
                             (char *)key,
                             *v,
                             so->expire_at_ms,
                             so->expire_in_ms,
                             so->keep_expiration,
                             (uint32_t)so->check,
                             so->return_previous || previous};
    sprig__kv_set_resp resp = {0};
    int rc = CALL(db, sprig__api_kv_set, &req, &resp);
    *status = (sprig_kv_status)resp.status;
    give_value(&resp.previous, previous);
    RELEASE(sprig__api_kv_set, &resp);
    return rc;
}

int
sprig__r_kv_get(sprig_db *db, const char *ns, const char *key, bool and_delete,
                sprig_value *out)
{
    sprig__kv_get_req req = {RDB(db)->name, (char *)ns, (char *)key,
                             and_delete};
    sprig__kv_value_resp resp = {0};
    int rc = CALL(db, sprig__api_kv_get, &req, &resp);
    give_value(&resp.value, out);
    RELEASE(sprig__api_kv_get, &resp);
    return rc;
}

int
sprig__r_kv_incr(sprig_db *db, const char *ns, const char *key,
                 const sprig_value *amount, bool decrement, bool saturating,
                 sprig_value *out)
{
    sprig__kv_incr_req req = {RDB(db)->name, (char *)ns, (char *)key,
                              *amount,       decrement,  saturating};
    sprig__kv_value_resp resp = {0};
    int rc = CALL(db, sprig__api_kv_incr, &req, &resp);
    give_value(&resp.value, out);
    RELEASE(sprig__api_kv_incr, &resp);
    return rc;
}

int
sprig__r_kv_delete(sprig_db *db, const char *ns, const char *key,
                   sprig_kv_status *status)
{
    sprig__kv_key_req req = {RDB(db)->name, (char *)ns, (char *)key};
    sprig__kv_status_resp resp = {0};
    int rc = CALL(db, sprig__api_kv_delete, &req, &resp);
    *status = (sprig_kv_status)resp.status;
    return rc;
}

int
sprig__r_kv_list(sprig_db *db, const char *ns, const char *prefix,
                 const char *after, uint32_t limit, sprig_kv_key_list **out)
{
    sprig__kv_list_req req = {RDB(db)->name, (char *)ns,    (char *)prefix,
                              (char *)after, after != NULL, limit};
    sprig__kv_list_resp resp = {0};
    int rc = CALL(db, sprig__api_kv_list, &req, &resp);
    if (rc == 0 && !resp.list) {
        rc = sprig__err(SPRIG_EPROTO, "the answer holds no list");
    }
    if (rc == 0) {
        *out = resp.list;
        resp.list = NULL;
    }
    RELEASE(sprig__api_kv_list, &resp);
    return rc;
}

/* A request struct viewing the caller's query (nothing copied). */
static sprig__view_req
view_req(sprig_db *db, const sprig_view_query *q, bool with_docs)
{
    sprig__view_req r = {RDB(db)->name, {*q, NULL, NULL, NULL}, with_docs};
    return r;
}

static int
take_mappings(int rc, sprig__mappings_resp *resp, sprig_mapping_list **out)
{
    if (rc == 0 && !resp->mappings) {
        rc = sprig__err(SPRIG_EPROTO, "the answer holds no mappings");
    }
    if (rc == 0) {
        *out = resp->mappings;
        resp->mappings = NULL;
    }
    return rc;
}

int
sprig__r_view_query(sprig_db *db, const sprig_view_query *q, bool with_docs,
                    sprig_mapping_list **out)
{
    sprig__view_req req = view_req(db, q, with_docs);
    sprig__mappings_resp resp = {0};
    int rc = CALL(db, sprig__api_view_query, &req, &resp);
    rc = take_mappings(rc, &resp, out);
    RELEASE(sprig__api_view_query, &resp);
    return rc;
}

int
sprig__r_view_reduce(sprig_db *db, const sprig_view_query *q, sprig_buf *out)
{
    sprig__view_req req = view_req(db, q, false);
    sprig__reduce_resp resp = {{0}};
    int rc = CALL(db, sprig__api_view_reduce, &req, &resp);
    if (rc == 0) {
        sprig_buf_clear(out);
        *out = resp.value;
        memset(&resp.value, 0, sizeof resp.value);
    }
    RELEASE(sprig__api_view_reduce, &resp);
    return rc;
}

int
sprig__r_view_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                             sprig_mapping_list **out)
{
    sprig__view_req req = view_req(db, q, false);
    sprig__mappings_resp resp = {0};
    int rc = CALL(db, sprig__api_view_reduce_grouped, &req, &resp);
    rc = take_mappings(rc, &resp, out);
    RELEASE(sprig__api_view_reduce_grouped, &resp);
    return rc;
}

int
sprig__r_view_delete_docs(sprig_db *db, const sprig_view_query *q,
                          uint64_t *deleted)
{
    sprig__view_req req = view_req(db, q, false);
    sprig__deleted_resp resp = {0};
    int rc = CALL(db, sprig__api_view_delete_docs, &req, &resp);
    *deleted = resp.deleted;
    return rc;
}

int
sprig__r_publish(sprig_db *db, const sprig_bytes *topics, size_t n,
                 sprig_bytes payload)
{
    sprig__publish_req req = {
        RDB(db)->name, {(sprig_bytes *)topics, n}, payload};
    sprig__empty resp = {0};
    return CALL(db, sprig__api_publish, &req, &resp);
}
