/*
 * api_helpers.c -- the everyday conveniences of the public API (src/core,
 * issue 14 part 2): the read-modify-write loop (sprig_modify), the lookup
 * of a document by the key of a (unique) view, typed key-value reads,
 * typed reduce results, u64 ids without scratch arrays, header copies and
 * bulk inserts.
 *
 * Each is written over the public functions of api.c, kv_api.c and
 * view_api.c, so it works unchanged on every placement: a local storage,
 * a remote one, a wrapped one.  Nothing here adds an operation to a
 * handle's table or a row to the protocol.
 */
#include "core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK_ARG(cond, what)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            return sprig__err(SPRIG_EINVAL, "%s", what);                       \
        }                                                                      \
    } while (0)

/* ---- headers and ids ----------------------------------------------------- */

int
sprig_header_copy(const sprig_header *h, sprig_header_buf *out)
{
    CHECK_ARG(h && out, "header or out is NULL");
    CHECK_ARG(h->id.data || !h->id.len, "header id is NULL");
    if (h->id.len > SPRIG_ID_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "header id has %zu bytes; the limit is %d", h->id.len,
                          SPRIG_ID_MAX);
    }
    sprig__header_set(out, h);
    return SPRIG_OK;
}

int
sprig_header_id_u64(const sprig_header *h, uint64_t *out)
{
    CHECK_ARG(h && out, "header or out is NULL");
    int rc = sprig_key_decode_u64(h->id, out);
    if (rc) {
        return sprig__err(SPRIG_EINVAL,
                          "the id has %zu bytes, not the 8 of a u64 id",
                          h->id.len);
    }
    return SPRIG_OK;
}

int
sprig_doc_id_u64(const sprig_doc *doc, uint64_t *out)
{
    CHECK_ARG(doc, "document is NULL");
    sprig_header h = sprig_doc_header(doc);
    return sprig_header_id_u64(&h, out);
}

/* ---- sprig_modify -------------------------------------------------------- */

#define MODIFY_DEFAULT_ATTEMPTS 16

/* One attempt: read, call `fn`, write if the revision still holds.  1 when
 * `fn` left the document as it is. */
static int
modify_once(sprig_db *db, const char *coll, sprig_bytes id, sprig_modify_fn fn,
            void *udata, sprig_buf *next, sprig_header_buf *out)
{
    sprig_doc *cur = NULL;
    int rc = sprig_get(db, coll, id, &cur);
    if (rc) {
        return rc;
    }
    next->len = 0;
    sprig_header h = sprig_doc_header(cur);
    int frc = fn(cur, next, udata);
    if (frc < 0) {
        rc = frc;
    } else if (frc > 0) {
        sprig__header_set(out, &h);
        rc = 1;
    } else {
        rc = sprig_update(db, coll, &h, sprig_buf_bytes(next), out);
    }
    sprig_doc_free(cur);
    return rc;
}

int
sprig_modify(sprig_db *db, const char *collection, sprig_bytes id,
             unsigned max_attempts, sprig_modify_fn fn, void *udata,
             sprig_header_buf *out)
{
    sprig_header_buf local;
    out = out ? out : &local;
    memset(out, 0, sizeof *out);
    CHECK_ARG(fn, "modify function is NULL");
    unsigned n = max_attempts ? max_attempts : MODIFY_DEFAULT_ATTEMPTS;
    sprig_buf next = {0};
    int rc = SPRIG_ECONFLICT;
    for (unsigned i = 0; i < n && rc == SPRIG_ECONFLICT; i++) {
        rc = modify_once(db, collection, id, fn, udata, &next, out);
    }
    sprig_buf_clear(&next);
    if (rc == SPRIG_ECONFLICT) {
        sprig__errsave s;
        sprig__err_save(&s); /* keep the last conflict's structured detail */
        snprintf(s.msg, sizeof s.msg,
                 "the document kept changing: %u attempts conflicted", n);
        return sprig__err_load(rc, &s);
    }
    return rc == 1 ? SPRIG_OK : rc;
}

/* ---- lookup by a view's key ---------------------------------------------- */

int
sprig_get_by_key(sprig_db *db, const char *collection, const char *view,
                 sprig_bytes key, sprig_doc **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    sprig_view_query q;
    sprig_view_query_init(&q, collection, view);
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = key;
    q.limit = 1;
    sprig_mapping_list *l = NULL;
    int rc = sprig_view_query_with_docs(db, &q, &l);
    const sprig_doc *d = rc ? NULL : sprig_mapping_list_doc(l, 0);
    if (rc == 0 && !d) {
        rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_VIEW,
                              "no document of collection '%s' emits that key "
                              "in view '%s'",
                              collection, view);
        sprig__errinfo_view(view);
        sprig__errinfo_collection(collection);
        sprig__errinfo_key(key);
        sprig__errinfo_database(sprig_db_name(db));
    }
    if (rc == 0) {
        sprig_header h = sprig_doc_header(d);
        *out = sprig__doc_new(h.id, h.revision, h.hash, sprig_doc_contents(d));
        rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    sprig_mapping_list_free(l);
    return rc;
}

int
sprig_get_by_json_key(sprig_db *db, const char *collection, const char *view,
                      const char *json_key, sprig_doc **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(json_key, "json key is NULL");
    sprig_buf k = {0};
    int rc = sprig_key_from_json(json_key, strlen(json_key), &k);
    rc = rc ? rc
            : sprig_get_by_key(db, collection, view, sprig_buf_bytes(&k), out);
    sprig_buf_clear(&k);
    return rc;
}

/* ---- bulk insert ----------------------------------------------------------
 */

int
sprig_insert_many(sprig_db *db, const char *collection, const sprig_bytes *ids,
                  const sprig_bytes *contents, size_t n,
                  sprig_header_list **out)
{
    if (out) {
        *out = NULL;
    }
    CHECK_ARG(contents || n == 0, "contents is NULL");
    CHECK_ARG(n > 0, "no documents to insert");
    sprig_txn *t = NULL;
    int rc = sprig_txn_new(&t);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool push = !ids || (!ids[i].data && !ids[i].len);
        rc =
            sprig_txn_insert(t, collection, push ? NULL : &ids[i], contents[i]);
    }
    sprig_txn_result *res = NULL;
    rc = rc ? rc : sprig_txn_apply(db, t, &res);
    sprig_header_list *hl = NULL;
    if (rc == 0 && out) {
        hl = sprig__calloc(1, sizeof *hl);
        rc = hl ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && hl && i < n; i++) {
        sprig_header h = sprig_txn_result_header(res, i);
        sprig_header_buf hb;
        sprig__header_set(&hb, &h);
        rc = sprig__header_list_push(hl, &hb);
    }
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    if (rc) {
        sprig_header_list_free(hl);
        return rc;
    }
    if (out) {
        *out = hl;
    }
    return SPRIG_OK;
}

/* ---- typed values ---------------------------------------------------------
 */

static const char *
kind_name(sprig_value_kind k)
{
    switch (k) {
    case SPRIG_VALUE_BYTES: return "bytes";
    case SPRIG_VALUE_I64: return "an i64";
    case SPRIG_VALUE_U64: return "a u64";
    case SPRIG_VALUE_F64: return "an f64";
    default: return "no value";
    }
}

/* A type mismatch reading (ns, key): SPRIG_EINVAL of kind KEY. */
static int
mismatch(sprig_db *db, const char *ns, const char *key, sprig_value_kind got,
         const char *want)
{
    int rc = sprig__err_about(SPRIG_EINVAL, SPRIG_ERROR_KIND_KEY,
                              "key '%s' holds %s, not %s", key, kind_name(got),
                              want);
    sprig__errinfo_ns(ns ? ns : "");
    sprig__errinfo_key(sprig_str(key));
    sprig__errinfo_database(sprig_db_name(db));
    return rc;
}

static int
out_of_range(const char *key, const char *want)
{
    return sprig__err(SPRIG_ERANGE, "the value of key '%s' does not fit %s",
                      key, want);
}

int
sprig_kv_get_i64(sprig_db *db, const char *ns, const char *key, int64_t *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    sprig_value v;
    int rc = sprig_kv_get(db, ns, key, false, &v);
    if (rc == 0 && v.kind == SPRIG_VALUE_I64) {
        *out = v.num.i64;
    } else if (rc == 0 && v.kind == SPRIG_VALUE_U64) {
        rc = v.num.u64 <= INT64_MAX ? 0 : out_of_range(key, "an i64");
        *out = rc ? 0 : (int64_t)v.num.u64;
    } else if (rc == 0) {
        rc = mismatch(db, ns, key, v.kind, "an integer");
    }
    sprig_value_clear(&v);
    return rc;
}

int
sprig_kv_get_u64(sprig_db *db, const char *ns, const char *key, uint64_t *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    sprig_value v;
    int rc = sprig_kv_get(db, ns, key, false, &v);
    if (rc == 0 && v.kind == SPRIG_VALUE_U64) {
        *out = v.num.u64;
    } else if (rc == 0 && v.kind == SPRIG_VALUE_I64) {
        rc = v.num.i64 >= 0 ? 0 : out_of_range(key, "a u64");
        *out = rc ? 0 : (uint64_t)v.num.i64;
    } else if (rc == 0) {
        rc = mismatch(db, ns, key, v.kind, "an integer");
    }
    sprig_value_clear(&v);
    return rc;
}

int
sprig_kv_get_f64(sprig_db *db, const char *ns, const char *key, double *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    sprig_value v;
    int rc = sprig_kv_get(db, ns, key, false, &v);
    if (rc == 0 && v.kind == SPRIG_VALUE_F64) {
        *out = v.num.f64;
    } else if (rc == 0) {
        rc = mismatch(db, ns, key, v.kind, "an f64");
    }
    sprig_value_clear(&v);
    return rc;
}

int
sprig_kv_get_bytes(sprig_db *db, const char *ns, const char *key,
                   sprig_buf *out)
{
    CHECK_ARG(out, "out is NULL");
    out->len = 0;
    sprig_value v;
    int rc = sprig_kv_get(db, ns, key, false, &v);
    if (rc == 0 && v.kind == SPRIG_VALUE_BYTES) {
        rc = sprig_buf_append(out, v.bytes.data, v.bytes.len);
        rc = rc ? sprig__err(rc, "out of memory") : 0;
    } else if (rc == 0) {
        rc = mismatch(db, ns, key, v.kind, "bytes");
    }
    sprig_value_clear(&v);
    return rc;
}

/* ---- typed reduce results -------------------------------------------------
 */

/* Does `s` (NUL-terminated) spell a JSON integer? */
static bool
json_integer(const char *s)
{
    return strpbrk(s, ".eE") == NULL;
}

int
sprig_value_from_json(sprig_bytes json, sprig_value *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = sprig_value_of_bytes((sprig_bytes){NULL, 0});
    out->kind = SPRIG_VALUE_NONE;
    CHECK_ARG(json.data || !json.len, "json is NULL");
    char text[64];
    if (json.len == 0 || json.len >= sizeof text) {
        return sprig__err(SPRIG_EINVAL, "not a JSON number or null (%zu bytes)",
                          json.len);
    }
    memcpy(text, json.data, json.len);
    text[json.len] = 0;
    if (strcmp(text, "null") == 0) {
        return SPRIG_OK; /* kind NONE */
    }
    char *end = NULL;
    errno = 0;
    bool neg = text[0] == '-';
    if (json_integer(text) && neg) {
        long long v = strtoll(text, &end, 10);
        *out = sprig_value_of_i64(v);
    } else if (json_integer(text)) {
        unsigned long long v = strtoull(text, &end, 10);
        *out = v <= INT64_MAX ? sprig_value_of_i64((int64_t)v)
                              : sprig_value_of_u64(v);
    } else {
        *out = sprig_value_of_f64(strtod(text, &end));
    }
    bool digit = (text[neg] >= '0' && text[neg] <= '9');
    if (!digit || !end || *end || errno == ERANGE) {
        out->kind = SPRIG_VALUE_NONE;
        return sprig__err(errno == ERANGE ? SPRIG_ERANGE : SPRIG_EINVAL,
                          "'%s' is not a JSON number or null", text);
    }
    return SPRIG_OK;
}

int
sprig_view_reduce_value(sprig_db *db, const sprig_view_query *q,
                        sprig_value *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = sprig_value_of_bytes((sprig_bytes){NULL, 0});
    out->kind = SPRIG_VALUE_NONE;
    sprig_buf b = {0};
    int rc = sprig_view_reduce(db, q, &b);
    rc = rc ? rc : sprig_value_from_json(sprig_buf_bytes(&b), out);
    sprig_buf_clear(&b);
    return rc;
}
