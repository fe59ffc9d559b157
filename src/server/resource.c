/*
 * resource.c -- the resource names a request touches (src/server), formed
 * from the row's declared resource spec (proto/api.h): data per row, and
 * this one piece of code for all of them.
 *
 * A name is hierarchical, database first: constant segments ("sprig",
 * "db", "collection", ...) and variable parts taken from the decoded
 * request.  Its canonical string joins the segments with '.', and writes
 * each variable part with every byte outside [A-Za-z0-9_-] as %XX
 * (uppercase hex): '.', '%' and '*' never appear raw inside a part, so
 * binary ids and keys are unambiguous and a pattern may use '*' as a
 * wildcard (docs/protocol.md, "Resource names").  A part that is a list
 * (db.get_multiple's ids, pubsub.publish's topics) makes one resource per
 * element; an empty list makes one, cut before that part.  A transaction
 * (db.apply, kind TXN_OPS) names one document per operation, each with
 * its operation's action (sprig__resource_action).
 */
#include "server/server_int.h"

int
sprig__resource_segment(sprig_buf *out, sprig_bytes seg, bool first)
{
    return sprig__name_segment(out, seg, first);
}

/* The request field a part names ("query.view": field "query", and
 * *sub "view"); NULL when the row has none. */
static const sprig__field *
field_of(const sprig__api *api, const char *ref, const char **sub)
{
    const char *dot = strchr(ref, '.');
    size_t n = dot ? (size_t)(dot - ref) : strlen(ref);
    *sub = dot ? dot + 1 : "";
    for (size_t i = 0; i < api->n_req; i++) {
        const char *f = api->req[i].name;
        if (strlen(f) == n && memcmp(f, ref, n) == 0) {
            return &api->req[i];
        }
    }
    return NULL;
}

static sprig_bytes
str_bytes(const char *s)
{
    return (sprig_bytes){(const uint8_t *)(s ? s : ""), s ? strlen(s) : 0};
}

/* A composite field's part: a schema's name, a query's collection or
 * view, a subscriber's database. */
static int
sub_value(const sprig__field *f, const char *sub, const uint8_t *at,
          sprig__session *sess, sprig_bytes *out)
{
    if (f->type == SPRIG__F_SCHEMA && strcmp(sub, "name") == 0) {
        const sprig_schema_def *s = *(sprig_schema_def *const *)at;
        *out = str_bytes(s ? s->name : NULL);
        return SPRIG_OK;
    }
    if (f->type == SPRIG__F_QUERY) {
        const sprig__query *q = (const sprig__query *)at;
        bool coll = strcmp(sub, "collection") == 0;
        if (coll || strcmp(sub, "view") == 0) {
            *out = str_bytes(coll ? q->q.collection : q->q.view);
            return SPRIG_OK;
        }
    }
    if (f->type == SPRIG__F_U64 && strcmp(sub, "db") == 0 && sess) {
        const char *db = sprig__pubsub_sub_db(sess, *(const uint64_t *)at);
        *out = str_bytes(db);
        return db ? SPRIG_OK : SPRIG_ENOTFOUND;
    }
    return sprig__err(SPRIG_EINVAL, "resource part '%s.%s' is not known",
                      f->name, sub);
}

/* The transaction a TXN_OPS row's part 1 names (NULL: none). */
static const sprig_txn *
txn_of(const sprig__api *api, const void *req)
{
    const char *sub;
    const sprig__field *f = api->resource.kind == SPRIG__RES_TXN_OPS
                                ? field_of(api, api->resource.parts[1], &sub)
                                : NULL;
    if (!f || f->type != SPRIG__F_TXN) {
        return NULL;
    }
    return *(sprig_txn *const *)((const uint8_t *)req + f->offset);
}

/* Part "txn.collection" or "txn.id" of operation `i`; an insert without
 * an id has none (*list 0: the name ends before it). */
static int
txn_value(const sprig__field *f, const char *sub, const uint8_t *at, size_t i,
          sprig_bytes *out, size_t *list)
{
    const sprig_txn *t = *(sprig_txn *const *)at;
    *list = t ? t->n : 0;
    const sprig__op *op = t && i < t->n ? &t->ops[i] : NULL;
    if (strcmp(sub, "collection") == 0) {
        *out = str_bytes(op ? op->collection : NULL);
        return SPRIG_OK;
    }
    if (strcmp(sub, "id") == 0) {
        *out = op && op->has_id ? op->id : (sprig_bytes){NULL, 0};
        *list = op && op->has_id ? SIZE_MAX : 0;
        return SPRIG_OK;
    }
    return sprig__err(SPRIG_EINVAL, "resource part '%s.%s' is not known",
                      f->name, sub);
}

/* The value of part `ref` (element `i` of a list); *list is the list's
 * length, or SIZE_MAX for a single value. */
static int
part_value(const sprig__api *api, const void *req, const char *ref,
           sprig__session *sess, size_t i, sprig_bytes *out, size_t *list)
{
    *list = SIZE_MAX;
    if (strcmp(ref, "$name") == 0) {
        *out = str_bytes(api->name); /* the row's own name (custom APIs) */
        return SPRIG_OK;
    }
    const char *sub;
    const sprig__field *f = field_of(api, ref, &sub);
    if (!f) {
        return sprig__err(SPRIG_EINVAL,
                          "API '%s': resource part '%s' "
                          "names no request field",
                          api->name, ref);
    }
    const uint8_t *at = (const uint8_t *)req + f->offset;
    if (f->type == SPRIG__F_TXN) {
        return txn_value(f, sub, at, i, out, list);
    }
    if (*sub) {
        return sub_value(f, sub, at, sess, out);
    }
    switch (f->type) {
    case SPRIG__F_STR: *out = str_bytes(*(char *const *)at); return SPRIG_OK;
    case SPRIG__F_BYTES: *out = *(const sprig_bytes *)at; return SPRIG_OK;
    case SPRIG__F_BYTES_LIST: {
        const sprig__bytes_list *l = (const sprig__bytes_list *)at;
        *list = l->n;
        *out = i < l->n ? l->items[i] : (sprig_bytes){NULL, 0};
        return SPRIG_OK;
    }
    default:
        return sprig__err(SPRIG_EINVAL,
                          "API '%s': resource part '%s' "
                          "has no string form",
                          api->name, ref);
    }
}

int
sprig__resource_check(const sprig__api *api)
{
    size_t n = sprig__res_segments(api->resource.kind), part, parts = 0;
    for (size_t s = 0; s < n; s++) {
        if (!sprig__res_segment(api->resource.kind, s, &part)) {
            parts = part + 1;
        }
    }
    for (size_t p = 0; p < parts; p++) {
        const char *ref = p < 3 ? api->resource.parts[p] : NULL, *sub;
        if (ref && (strcmp(ref, "$name") == 0 || ref[0] == '=')) {
            continue; /* the row's name; a fixed name (custom APIs) */
        }
        const sprig__field *f = ref ? field_of(api, ref, &sub) : NULL;
        if (!f) {
            return sprig__err(SPRIG_EINVAL,
                              "API '%s': resource part %zu "
                              "names no request field",
                              api->name, p);
        }
        if (strcmp(sub, "db") == 0 && api->where != SPRIG__RUN_LOOP) {
            return sprig__err(SPRIG_EINVAL,
                              "API '%s': '%s' is session "
                              "state, for rows that run on the loop",
                              api->name, ref);
        }
    }
    return SPRIG_OK;
}

int
sprig__resource_count(const sprig__api *api, const void *req, size_t *n)
{
    *n = 1;
    const sprig_txn *t = txn_of(api, req);
    if (t && t->n) {
        *n = t->n; /* one per operation */
        return SPRIG_OK;
    }
    for (size_t p = 0; p < 3 && api->resource.parts[p]; p++) {
        const sprig__field *f;
        const char *sub;
        f = field_of(api, api->resource.parts[p], &sub);
        if (f && f->type == SPRIG__F_BYTES_LIST && !*sub) {
            size_t len =
                ((const sprig__bytes_list *)((const uint8_t *)req + f->offset))
                    ->n;
            *n = len ? len : 1;
        }
    }
    return SPRIG_OK;
}

/* Append a row's name, each of its dot-separated parts one segment
 * (custom APIs: "shop.cart.add" -> ".shop.cart.add"). */
static int
name_segments(sprig_buf *out, const char *name)
{
    int rc = SPRIG_OK;
    while (rc == 0) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        rc = sprig__resource_segment(
            out, (sprig_bytes){(const uint8_t *)name, n}, false);
        if (!dot) {
            break;
        }
        name = dot + 1;
    }
    return rc;
}

/* A custom row with a fixed resource ("=sprig.db.app.keyvalue..n"):
 * that name as given (the registration checked it). */
static int
fixed_name(const char *lit, sprig_buf *out)
{
    return sprig_buf_append(out, lit, strlen(lit))
               ? sprig__err(SPRIG_ENOMEM, "out of memory")
               : SPRIG_OK;
}

const char *
sprig__resource_action(const sprig__api *api, const void *req, size_t i)
{
    const sprig_txn *t = txn_of(api, req);
    return t && i < t->n ? sprig__op_action(t->ops[i].kind) : api->action;
}

int
sprig__resource_name(const sprig__api *api, const void *req,
                     sprig__session *sess, size_t i, sprig_buf *out)
{
    out->len = 0;
    sprig__res_kind kind = api->resource.kind;
    const sprig_txn *t = txn_of(api, req);
    if (kind == SPRIG__RES_TXN_OPS && (!t || t->n == 0)) {
        kind = SPRIG__RES_DATABASE; /* an empty transaction: the database */
    }
    size_t n = sprig__res_segments(kind), part;
    const char *p0 = api->resource.parts[0];
    bool fixed = kind == SPRIG__RES_API && p0 && p0[0] == '=';
    int rc = fixed ? fixed_name(p0 + 1, out) : SPRIG_OK;
    for (size_t s = 0; !fixed && rc == 0 && s < n; s++) {
        const char *lit = sprig__res_segment(kind, s, &part);
        sprig_bytes v = str_bytes(lit);
        size_t list = SIZE_MAX;
        if (!lit) {
            const char *ref = part < 3 ? api->resource.parts[part] : NULL;
            rc = ref ? part_value(api, req, ref, sess, i, &v, &list)
                     : sprig__err(SPRIG_EINVAL,
                                  "API '%s': resource spec "
                                  "lacks part %zu",
                                  api->name, part);
        }
        if (rc || list == 0) {
            break; /* an empty list: the name stops before it */
        }
        const char *ref = lit ? NULL : api->resource.parts[part];
        rc = ref && strcmp(ref, "$name") == 0
                 ? name_segments(out, api->name)
                 : sprig__resource_segment(out, v, s == 0);
    }
    if (rc == 0 && sprig__buf_reserve(out, 1) == 0) {
        ((char *)out->data)[out->len] = 0; /* a C string (not in len) */
    } else if (rc == 0) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    return rc;
}

/* "{ref}": a segment that comes from the request (a pattern's). */
static int
pattern_part(sprig_buf *out, const char *ref, bool first)
{
    const char *dot = first ? "" : ".";
    int rc = sprig_buf_append(out, dot, strlen(dot));
    rc = rc ? rc : sprig_buf_append(out, "{", 1);
    rc = rc ? rc : sprig_buf_append(out, ref, strlen(ref));
    rc = rc ? rc : sprig_buf_append(out, "}", 1);
    return rc ? sprig__err(SPRIG_ENOMEM, "out of memory") : SPRIG_OK;
}

int
sprig__resource_pattern(const sprig__api *api, sprig_buf *out)
{
    out->len = 0;
    sprig__res_kind kind = api->resource.kind;
    size_t n = sprig__res_segments(kind), part;
    const char *p0 = api->resource.parts[0];
    bool fixed = kind == SPRIG__RES_API && p0 && p0[0] == '=';
    int rc = fixed ? fixed_name(p0 + 1, out) : SPRIG_OK;
    for (size_t s = 0; !fixed && rc == 0 && s < n; s++) {
        const char *lit = sprig__res_segment(kind, s, &part);
        const char *ref = lit || part >= 3 ? NULL : api->resource.parts[part];
        if (lit) {
            rc = sprig__resource_segment(out, str_bytes(lit), s == 0);
        } else if (ref && strcmp(ref, "$name") == 0) {
            rc = name_segments(out, api->name);
        } else {
            rc = pattern_part(out, ref ? ref : "?", s == 0);
        }
    }
    if (rc == 0 && sprig__buf_reserve(out, 1) == 0) {
        ((char *)out->data)[out->len] = 0; /* a C string (not in len) */
    } else if (rc == 0) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    return rc;
}
