/*
 * schema.c -- name rules and schema definitions: validation, heap copies,
 * and the byte form a storage records so tools can read schemas without the
 * program's code.
 */
#include "core.h"
#include "view.h"

#include <stdio.h>

static bool
name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '_') {
        return true;
    }
    return !first && (c == '.' || c == '-');
}

/* [A-Za-z0-9_][A-Za-z0-9._-]*, 1..SPRIG_NAME_MAX bytes. */
static int
check_name(const char *what, const char *name)
{
    if (!name || !*name) {
        return sprig__err(SPRIG_EINVAL, "%s name is empty", what);
    }
    size_t n = strlen(name);
    if (n > SPRIG_NAME_MAX) {
        return sprig__err(SPRIG_EINVAL,
                          "%s name '%.20s...' is longer than "
                          "%d bytes",
                          what, name, SPRIG_NAME_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_char(name[i], i == 0)) {
            return sprig__err(SPRIG_EINVAL,
                              "%s name '%s' has a bad character at %zu "
                              "(allowed: [A-Za-z0-9_][A-Za-z0-9._-]*)",
                              what, name, i);
        }
    }
    return SPRIG_OK;
}

int
sprig__check_db_name(const char *name)
{
    return check_name("database", name);
}

int
sprig__check_coll_name(const char *what, const char *name)
{
    return check_name(what, name);
}

/* ---- views ------------------------------------------------------------ */

int
sprig__codeless_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    return sprig__err(SPRIG_ESCHEMA, "this view's code is not loaded");
}

int
sprig__codeless_reduce(const sprig_bytes *values, size_t n, bool rereduce,
                       sprig_buf *out, void *udata)
{
    return sprig__err(SPRIG_ESCHEMA, "this view's code is not loaded");
}

/* A declarative view's paths and reduce. */
static int
check_decl_view(const char *what, const sprig_view_def *v)
{
    char w[200];
    snprintf(w, sizeof w, "%s json_key", what);
    int rc = sprig__json_paths_check(w, v->json_key, true);
    if (rc == 0 && v->json_value) {
        snprintf(w, sizeof w, "%s json_value", what);
        rc = sprig__json_paths_check(w, v->json_value, false);
    }
    if (rc == 0 && v->reduce) {
        rc = sprig__err(SPRIG_EINVAL,
                        "%s is declarative: it takes a built-in "
                        "reduce, not a reduce function",
                        what);
    }
    if (rc == 0 && !v->json_value && v->builtin_reduce != SPRIG_REDUCE_NONE &&
        v->builtin_reduce != SPRIG_REDUCE_COUNT) {
        rc = sprig__err(SPRIG_EINVAL,
                        "%s: a sum, min or max reduce needs a "
                        "json_value",
                        what);
    }
    return rc;
}

static int
check_view(const sprig_collection_def *c, const sprig_view_def *v)
{
    char what[2 * SPRIG_NAME_MAX + 40];
    int rc = check_name("view", v->name);
    if (rc) {
        return rc;
    }
    snprintf(what, sizeof what, "view '%s' of collection '%s'", v->name,
             c->name);
    if ((unsigned)v->policy > SPRIG_VIEW_UNIQUE) {
        return sprig__err(SPRIG_EINVAL, "%s has an unknown policy %d", what,
                          (int)v->policy);
    }
    if ((unsigned)v->builtin_reduce > SPRIG_REDUCE_MAX) {
        return sprig__err(SPRIG_EINVAL, "%s has an unknown built-in reduce %d",
                          what, (int)v->builtin_reduce);
    }
    if ((v->json_key != NULL) == (v->map != NULL)) {
        return sprig__err(SPRIG_EINVAL,
                          "%s needs a map function or a json_key "
                          "(one of them)",
                          what);
    }
    if (v->reduce && v->builtin_reduce != SPRIG_REDUCE_NONE) {
        return sprig__err(SPRIG_EINVAL,
                          "%s has both a reduce function and a "
                          "built-in reduce",
                          what);
    }
    if (!v->json_key && v->json_value) {
        return sprig__err(SPRIG_EINVAL, "%s has a json_value but no json_key",
                          what);
    }
    return v->json_key ? check_decl_view(what, v) : SPRIG_OK;
}

static int
check_views(const sprig_collection_def *c)
{
    if (c->n_views && !c->views) {
        return sprig__err(SPRIG_EINVAL, "collection '%s' has no view array",
                          c->name);
    }
    if (c->n_views > SPRIG__VIEWS_MAX) {
        return sprig__err(SPRIG_EINVAL,
                          "collection '%s' has %zu views; the "
                          "limit is %d",
                          c->name, c->n_views, SPRIG__VIEWS_MAX);
    }
    for (size_t i = 0; i < c->n_views; i++) {
        int rc = check_view(c, &c->views[i]);
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (strcmp(c->views[j].name, c->views[i].name) == 0) {
                rc = sprig__err(SPRIG_EINVAL,
                                "collection '%s' declares view "
                                "'%s' twice",
                                c->name, c->views[i].name);
            }
        }
        if (rc) {
            return rc;
        }
    }
    return SPRIG_OK;
}

/* ---- schemas ------------------------------------------------------------ */

int
sprig__schema_check(const sprig_schema_def *s)
{
    if (!s) {
        return sprig__err(SPRIG_EINVAL, "schema is NULL");
    }
    int rc = check_name("schema", s->name);
    if (rc) {
        return rc;
    }
    if (s->n_collections && !s->collections) {
        return sprig__err(SPRIG_EINVAL, "schema '%s' has no collection array",
                          s->name);
    }
    for (size_t i = 0; i < s->n_collections; i++) {
        const sprig_collection_def *c = &s->collections[i];
        if ((rc = check_name("collection", c->name))) {
            return rc;
        }
        if (c->id_kind != SPRIG_ID_U64 && c->id_kind != SPRIG_ID_NATURAL) {
            return sprig__err(SPRIG_EINVAL,
                              "collection '%s' has an unknown "
                              "id kind %d",
                              c->name, (int)c->id_kind);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->collections[j].name, c->name) == 0) {
                return sprig__err(SPRIG_EINVAL,
                                  "schema '%s' declares "
                                  "collection '%s' twice",
                                  s->name, c->name);
            }
        }
        if ((rc = check_views(c))) {
            return rc;
        }
    }
    return SPRIG_OK;
}

static size_t
str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copy `s` to *strs (advancing it); NULL stays NULL. */
static const char *
put_s(char **strs, const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    memcpy(*strs, s, n);
    const char *r = *strs;
    *strs += n;
    return r;
}

int
sprig__schema_copy(const sprig_schema_def *src, sprig_schema_def **out)
{
    *out = NULL;
    size_t nv = 0, strsz = str_size(src->name);
    for (size_t i = 0; i < src->n_collections; i++) {
        const sprig_collection_def *c = &src->collections[i];
        strsz += str_size(c->name);
        nv += c->n_views;
        for (size_t j = 0; j < c->n_views; j++) {
            strsz += str_size(c->views[j].name) +
                     str_size(c->views[j].json_key) +
                     str_size(c->views[j].json_value);
        }
    }
    size_t size = sizeof(sprig_schema_def) +
                  src->n_collections * sizeof(sprig_collection_def) +
                  nv * sizeof(sprig_view_def) + strsz;
    uint8_t *mem = sprig__malloc(size);
    if (!mem) {
        return sprig__err(SPRIG_ENOMEM, "out of memory copying a schema");
    }
    sprig_schema_def *s = (sprig_schema_def *)mem;
    sprig_collection_def *cols = (sprig_collection_def *)(s + 1);
    sprig_view_def *views = (sprig_view_def *)(cols + src->n_collections);
    char *strs = (char *)(views + nv);
    s->name = put_s(&strs, src->name);
    for (size_t i = 0; i < src->n_collections; i++) {
        const sprig_collection_def *c = &src->collections[i];
        cols[i] = *c;
        cols[i].name = put_s(&strs, c->name);
        cols[i].views = c->n_views ? views : NULL;
        for (size_t j = 0; j < c->n_views; j++, views++) {
            *views = c->views[j];
            views->name = put_s(&strs, c->views[j].name);
            views->json_key = put_s(&strs, c->views[j].json_key);
            views->json_value = put_s(&strs, c->views[j].json_value);
        }
    }
    s->collections = cols;
    s->n_collections = src->n_collections;
    *out = s;
    return SPRIG_OK;
}

const sprig_collection_def *
sprig__schema_find(const sprig_schema_def *s, const char *name)
{
    for (size_t i = 0; i < s->n_collections; i++) {
        if (strcmp(s->collections[i].name, name) == 0) {
            return &s->collections[i];
        }
    }
    return NULL;
}

static int
put_str(sprig_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    int rc = sprig__buf_put_u32(b, (uint32_t)n);
    return rc ? rc : sprig_buf_append(b, s, n);
}

/* Format 2 adds the views: declarative ones completely, C ones by name,
 * version, policy and whether they reduce (their code cannot be stored). */
static int
put_view(sprig_buf *out, const sprig_view_def *v)
{
    int rc = put_str(out, v->name);
    rc = rc ? rc : sprig__buf_put_u32(out, v->version);
    rc = rc ? rc : sprig__buf_put_u8(out, (uint8_t)v->policy);
    rc = rc ? rc : sprig__buf_put_u8(out, v->json_key ? 1 : 0);
    rc = rc ? rc : sprig__buf_put_u8(out, v->reduce ? 1 : 0);
    rc = rc ? rc : sprig__buf_put_u8(out, (uint8_t)v->builtin_reduce);
    rc = rc ? rc : put_str(out, v->json_key);
    rc = rc ? rc : sprig__buf_put_u8(out, v->json_value ? 1 : 0);
    return rc ? rc : put_str(out, v->json_value);
}

int
sprig__schema_encode(const sprig_schema_def *s, sprig_buf *out)
{
    int rc = sprig__buf_put_u8(out, 2); /* format version */
    rc = rc ? rc : put_str(out, s->name);
    rc = rc ? rc : sprig__buf_put_u32(out, (uint32_t)s->n_collections);
    for (size_t i = 0; rc == 0 && i < s->n_collections; i++) {
        const sprig_collection_def *c = &s->collections[i];
        rc = put_str(out, c->name);
        rc = rc ? rc : sprig__buf_put_u8(out, (uint8_t)c->id_kind);
        rc = rc ? rc : sprig__buf_put_u32(out, c->flags);
        rc = rc ? rc : sprig__buf_put_u32(out, (uint32_t)c->n_views);
        for (size_t j = 0; rc == 0 && j < c->n_views; j++) {
            rc = put_view(out, &c->views[j]);
        }
    }
    return rc;
}

/* Reading a stored schema: strings are copied, NUL-terminated, into
 * `strs`, which has room for all of them (each takes at least one byte
 * more in the input than in the copy: its 4-byte length). */
typedef struct dec {
    sprig__rd r;
    uint8_t ver;
    char *strs;
    size_t used;
} dec;

static int
dec_str(dec *d, size_t max, const char **out)
{
    uint32_t n;
    const uint8_t *p;
    int rc = sprig__rd_u32(&d->r, &n);
    if (rc == 0 && n > max) {
        rc =
            sprig__err(SPRIG_ECORRUPT, "stored schema has a %u-byte string", n);
    }
    rc = rc ? rc : sprig__rd_bytes(&d->r, n, &p);
    if (rc == 0) {
        memcpy(d->strs + d->used, p, n);
        d->strs[d->used + n] = 0;
        *out = d->strs + d->used;
        d->used += n + 1;
    }
    return rc;
}

static int
dec_view(dec *d, sprig_view_def *v)
{
    uint8_t policy, kind, creduce, builtin, has_value;
    const char *key = NULL, *value = NULL;
    int rc = dec_str(d, SPRIG_NAME_MAX, &v->name);
    rc = rc ? rc : sprig__rd_u32(&d->r, &v->version);
    rc = rc ? rc : sprig__rd_u8(&d->r, &policy);
    rc = rc ? rc : sprig__rd_u8(&d->r, &kind);
    rc = rc ? rc : sprig__rd_u8(&d->r, &creduce);
    rc = rc ? rc : sprig__rd_u8(&d->r, &builtin);
    rc = rc ? rc : dec_str(d, SPRIG__JSON_PATH_MAX, &key);
    rc = rc ? rc : sprig__rd_u8(&d->r, &has_value);
    rc = rc ? rc : dec_str(d, SPRIG__JSON_PATH_MAX, &value);
    if (rc) {
        return rc;
    }
    v->policy = (sprig_view_policy)policy;
    v->builtin_reduce = (sprig_builtin_reduce)builtin;
    v->map = kind ? NULL : sprig__codeless_map;
    v->reduce = creduce ? sprig__codeless_reduce : NULL;
    v->json_key = kind ? key : NULL;
    v->json_value = has_value ? value : NULL;
    return SPRIG_OK;
}

static int
dec_collection(dec *d, sprig_collection_def *c)
{
    uint8_t kind = 0;
    uint32_t nv = 0;
    int rc = dec_str(d, SPRIG_NAME_MAX, &c->name);
    rc = rc ? rc : sprig__rd_u8(&d->r, &kind);
    rc = rc ? rc : sprig__rd_u32(&d->r, &c->flags);
    c->id_kind = (sprig_id_kind)kind;
    if (rc == 0 && d->ver >= 2) {
        rc = sprig__rd_u32(&d->r, &nv);
    }
    if (rc == 0 && nv > d->r.left / 20) {
        rc = sprig__err(SPRIG_ECORRUPT, "stored schema is truncated");
    }
    sprig_view_def *views =
        rc == 0 && nv ? sprig__calloc(nv, sizeof *views) : NULL;
    if (rc == 0 && nv && !views) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory reading a schema");
    }
    c->views = views;
    c->n_views = views ? nv : 0;
    for (uint32_t i = 0; rc == 0 && i < nv; i++) {
        rc = dec_view(d, &views[i]);
    }
    return rc;
}

int
sprig__schema_decode(sprig_bytes in, sprig_schema_def **out)
{
    dec d = {{in.data, in.len}, 0, NULL, 0};
    uint32_t n = 0;
    const char *name = "";
    sprig_collection_def *cols = NULL;
    *out = NULL;
    int rc = sprig__rd_u8(&d.r, &d.ver);
    if (rc == 0 && d.ver != 1 && d.ver != 2) {
        return sprig__err(SPRIG_ECORRUPT, "stored schema has format %u", d.ver);
    }
    d.strs = sprig__malloc(in.len + 1);
    if (!d.strs) {
        return sprig__err(SPRIG_ENOMEM, "out of memory reading a schema");
    }
    rc = rc ? rc : dec_str(&d, SPRIG_NAME_MAX, &name);
    rc = rc ? rc : sprig__rd_u32(&d.r, &n);
    if (rc == 0 && n > d.r.left / 9) {
        rc = sprig__err(SPRIG_ECORRUPT, "stored schema is truncated");
    }
    if (rc == 0 && n && !(cols = sprig__calloc(n, sizeof *cols))) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory reading a schema");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_collection(&d, &cols[i]);
    }
    sprig_schema_def tmp = {name, cols, n};
    if (rc == 0 && sprig__schema_check(&tmp)) {
        char why[256];
        snprintf(why, sizeof why, "%s", sprig_errmsg());
        rc = sprig__err(SPRIG_ECORRUPT, "stored schema '%s' is invalid: %s",
                        name, why);
    }
    rc = rc ? rc : sprig__schema_copy(&tmp, out);
    for (uint32_t i = 0; cols && i < n; i++) {
        sprig__free((void *)cols[i].views);
    }
    sprig__free(cols);
    sprig__free(d.strs);
    return rc;
}
