/*
 * schema_json.c -- schema files: a schema (collections, id kinds,
 * declarative views) read from JSON, so a database can be used from the CLI
 * or a server without compiled schema code.
 *
 * The format (every field but the names optional):
 *
 *   {"name": "shop",
 *    "collections": [
 *      {"name": "products", "id_kind": "u64" | "natural",
 *       "encrypted": true | false,      (SPRIG_COLL_ENCRYPTED)
 *       "views": [
 *         {"name": "by-category", "version": 1,
 *          "policy": "lazy" | "eager" | "unique",
 *          "json_key": "category"  or  ["category", "brand.name"],
 *          "json_value": "price",
 *          "reduce": "none" | "count" | "sum" | "min" | "max"}]}]}
 *
 * Design notes.  Errors name where the fault is: syntax errors the line and
 * column (jansson's json_error_t), everything else the JSON path of the
 * field ("collections[1].views[0].json_key: expected a string or an array
 * of strings").  Unknown fields are errors, so a typo never silently drops
 * a setting.  The result is built in temporary arrays and copied into one
 * allocation (sprig__schema_copy), which sprig_schema_free() releases.
 */
#include "view.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

typedef struct sctx {
    const char *src; /* file name for messages */
    char path[160];  /* JSON path of the value being read */
} sctx;

static int bad(const sctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* SPRIG_EINVAL: "<src>: <path>.<field>: <what>". */
static int
bad(const sctx *c, const char *field, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char at[200];
    snprintf(at, sizeof at, "%s%s%s", c->path, *c->path && field ? "." : "",
             field ? field : "");
    if (!*at) {
        return sprig__err(SPRIG_EINVAL, "%s: %s", c->src, what);
    }
    return sprig__err(SPRIG_EINVAL, "%s: %s: %s", c->src, at, what);
}

/* Every key of object `o` is one of `known` (NULL-terminated). */
static int
only_known(const sctx *c, json_t *o, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++) {
            ok = strcmp(k, known[i]) == 0;
        }
        if (!ok) {
            return bad(c, k, "unknown field");
        }
    }
    return SPRIG_OK;
}

/* A required or optional string field; *out NULL when absent. */
static int
get_string(const sctx *c, json_t *o, const char *field, bool required,
           const char **out)
{
    json_t *v = json_object_get(o, field);
    *out = NULL;
    if (!v) {
        return required ? bad(c, field, "missing") : SPRIG_OK;
    }
    if (!json_is_string(v)) {
        return bad(c, field, "expected a string");
    }
    *out = json_string_value(v);
    return SPRIG_OK;
}

/* Map a string field through `names` (index = enum value). */
static int
get_enum(const sctx *c, json_t *o, const char *field, const char *const *names,
         size_t n, int *out)
{
    const char *s;
    int rc = get_string(c, o, field, false, &s);
    if (rc || !s) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (int)i;
            return SPRIG_OK;
        }
    }
    char list[120] = "";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s\"%s\"", i ? ", " : "",
                 names[i]);
    }
    return bad(c, field, "\"%s\" is not one of %s", s, list);
}

/* The detail just recorded, restated as the fault of `field`. */
static int
rewrap(const sctx *c, const char *field)
{
    char why[256];
    snprintf(why, sizeof why, "%s", sprig_errmsg());
    return bad(c, field, "%s", why);
}

/* A name field checked against the name rules. */
static int
get_name(const sctx *c, json_t *o, const char *what, const char **out)
{
    int rc = get_string(c, o, "name", true, out);
    if (rc == 0 && sprig__check_coll_name(what, *out)) {
        rc = rewrap(c, "name");
    }
    return rc;
}

/* json_key: a string of comma-separated paths, or an array of paths,
 * joined into `buf`. */
static int
get_json_key(const sctx *c, json_t *o, char *buf, size_t cap)
{
    json_t *v = json_object_get(o, "json_key");
    if (!v) {
        return bad(c, "json_key", "missing");
    }
    if (json_is_string(v)) {
        if (json_string_length(v) >= cap) {
            return bad(c, "json_key", "longer than %zu bytes", cap - 1);
        }
        snprintf(buf, cap, "%s", json_string_value(v));
        return SPRIG_OK;
    }
    if (!json_is_array(v) || json_array_size(v) == 0) {
        return bad(c, "json_key",
                   "expected a string or a non-empty array "
                   "of strings");
    }
    size_t i, len = 0;
    json_t *e;
    buf[0] = 0;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || strchr(json_string_value(e), ',')) {
            return bad(c, "json_key",
                       "element %zu: expected a path "
                       "(a string without ',')",
                       i);
        }
        int n = snprintf(buf + len, cap - len, "%s%s", i ? "," : "",
                         json_string_value(e));
        if (n < 0 || (size_t)n >= cap - len) {
            return bad(c, "json_key", "longer than %zu bytes", cap - 1);
        }
        len += (size_t)n;
    }
    return SPRIG_OK;
}

static const char *const view_fields[] = {
    "name", "version", "policy", "json_key", "reduce", "json_value", NULL};
static const char *const policies[] = {"lazy", "eager", "unique"};
static const char *const reduces[] = {"none", "count", "sum", "min", "max"};

static int
get_version(const sctx *c, json_t *o, unsigned *out)
{
    json_t *v = json_object_get(o, "version");
    *out = 1;
    if (!v) {
        return SPRIG_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > UINT32_MAX) {
        return bad(c, "version", "expected an integer from 0 to %u",
                   UINT32_MAX);
    }
    *out = (unsigned)json_integer_value(v);
    return SPRIG_OK;
}

/* One view; its strings point into the JSON tree or `keybuf`. */
static int
read_view(sctx *c, json_t *o, sprig_view_def *v, char *keybuf, size_t cap)
{
    int policy = 0, reduce = 0;
    if (!json_is_object(o)) {
        return bad(c, NULL, "expected an object");
    }
    int rc = only_known(c, o, view_fields);
    rc = rc ? rc : get_name(c, o, "view", &v->name);
    rc = rc ? rc : get_version(c, o, &v->version);
    rc = rc ? rc : get_enum(c, o, "policy", policies, 3, &policy);
    rc = rc ? rc : get_json_key(c, o, keybuf, cap);
    if (rc == 0 && sprig__json_paths_check("path", keybuf, true)) {
        rc = rewrap(c, "json_key");
    }
    rc = rc ? rc : get_string(c, o, "json_value", false, &v->json_value);
    if (rc == 0 && v->json_value &&
        sprig__json_paths_check("path", v->json_value, false)) {
        rc = rewrap(c, "json_value");
    }
    rc = rc ? rc : get_enum(c, o, "reduce", reduces, 5, &reduce);
    if (rc == 0 && reduce > SPRIG_REDUCE_COUNT && !v->json_value) {
        rc = bad(c, "reduce", "\"%s\" needs a json_value", reduces[reduce]);
    }
    v->policy = (sprig_view_policy)policy;
    v->builtin_reduce = (sprig_builtin_reduce)reduce;
    v->json_key = keybuf;
    return rc;
}

/* The path prefix `c->path` while reading element `i` of `field`. */
static size_t
path_push(sctx *c, const char *field, size_t i)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "%s%s[%zu]", old ? "." : "",
             field, i);
    return old;
}

typedef struct build {
    sprig_collection_def *cols;
    sprig_view_def *views; /* all collections' views */
    char *keys;            /* SPRIG__JSON_PATH_MAX + 1 per view */
    size_t n_views;
} build;

static int
read_views(sctx *c, json_t *arr, build *b, sprig_collection_def *col)
{
    col->views = b->views + b->n_views;
    col->n_views = json_array_size(arr);
    for (size_t i = 0; i < col->n_views; i++) {
        size_t old = path_push(c, "views", i);
        sprig_view_def *v = &b->views[b->n_views];
        char *kb = b->keys + b->n_views++ * (SPRIG__JSON_PATH_MAX + 1);
        int rc = read_view(c, json_array_get(arr, i), v, kb,
                           SPRIG__JSON_PATH_MAX + 1);
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (strcmp(col->views[j].name, v->name) == 0) {
                rc = bad(c, "name", "view '%s' is declared twice", v->name);
            }
        }
        c->path[old] = 0;
        if (rc) {
            return rc;
        }
    }
    return SPRIG_OK;
}

static const char *const coll_fields[] = {"name", "id_kind", "encrypted",
                                          "views", NULL};
static const char *const id_kinds[] = {"u64", "natural"};

static int
read_collection(sctx *c, json_t *o, build *b, size_t i)
{
    sprig_collection_def *col = &b->cols[i];
    int kind = 0;
    if (!json_is_object(o)) {
        return bad(c, NULL, "expected an object");
    }
    int rc = only_known(c, o, coll_fields);
    rc = rc ? rc : get_name(c, o, "collection", &col->name);
    rc = rc ? rc : get_enum(c, o, "id_kind", id_kinds, 2, &kind);
    col->id_kind = (sprig_id_kind)kind;
    json_t *enc = json_object_get(o, "encrypted");
    if (rc == 0 && enc && !json_is_boolean(enc)) {
        rc = bad(c, "encrypted", "expected true or false");
    }
    col->flags = enc && json_is_true(enc) ? SPRIG_COLL_ENCRYPTED : 0;
    for (size_t j = 0; rc == 0 && j < i; j++) {
        if (strcmp(b->cols[j].name, col->name) == 0) {
            rc = bad(c, "name", "collection '%s' is declared twice", col->name);
        }
    }
    json_t *views = json_object_get(o, "views");
    if (rc == 0 && views && !json_is_array(views)) {
        rc = bad(c, "views", "expected an array");
    }
    if (rc == 0 && views && json_array_size(views) > SPRIG__VIEWS_MAX) {
        rc = bad(c, "views", "more than %d views", SPRIG__VIEWS_MAX);
    }
    return rc || !views ? rc : read_views(c, views, b, col);
}

static size_t
count_views(json_t *cols)
{
    size_t n = 0, i;
    json_t *col;
    json_array_foreach(cols, i, col)
    {
        json_t *v = json_is_object(col) ? json_object_get(col, "views") : NULL;
        n += json_is_array(v) ? json_array_size(v) : 0;
    }
    return n;
}

static int
read_collections(sctx *c, json_t *cols, const char *name,
                 sprig_schema_def **out)
{
    size_t n = json_array_size(cols);
    size_t nv = count_views(cols);
    build b = {sprig__calloc(n ? n : 1, sizeof *b.cols),
               sprig__calloc(nv ? nv : 1, sizeof *b.views),
               sprig__malloc((nv ? nv : 1) * (SPRIG__JSON_PATH_MAX + 1)), 0};
    int rc = b.cols && b.views && b.keys
                 ? 0
                 : sprig__err(SPRIG_ENOMEM, "out of memory reading a schema");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t old = path_push(c, "collections", i);
        rc = read_collection(c, json_array_get(cols, i), &b, i);
        c->path[old] = 0;
    }
    sprig_schema_def s = {name, b.cols, n};
    if (rc == 0 && sprig__schema_check(&s)) {
        char why[256];
        snprintf(why, sizeof why, "%s", sprig_errmsg());
        rc = sprig__err(SPRIG_EINVAL, "%s: %s", c->src, why);
    }
    rc = rc ? rc : sprig__schema_copy(&s, out);
    sprig__free(b.cols);
    sprig__free(b.views);
    sprig__free(b.keys);
    return rc;
}

static const char *const schema_fields[] = {"name", "collections", NULL};

static int
read_schema(sctx *c, json_t *root, sprig_schema_def **out)
{
    const char *name = NULL;
    if (!json_is_object(root)) {
        return bad(c, NULL, "expected an object (the schema)");
    }
    int rc = only_known(c, root, schema_fields);
    rc = rc ? rc : get_name(c, root, "schema", &name);
    json_t *cols = json_object_get(root, "collections");
    if (rc == 0 && !json_is_array(cols)) {
        rc = bad(c, "collections", cols ? "expected an array" : "missing");
    }
    return rc ? rc : read_collections(c, cols, name, out);
}

static int
load(sctx *c, json_t *root, json_error_t *err, sprig_schema_def **out)
{
    if (!root) {
        if (json_error_code(err) == json_error_out_of_memory) {
            return sprig__err(SPRIG_ENOMEM, "out of memory reading '%s'",
                              c->src);
        }
        return sprig__err(SPRIG_EINVAL, "%s:%d:%d: %s", c->src, err->line,
                          err->column, err->text);
    }
    int rc = read_schema(c, root, out);
    json_decref(root);
    return rc;
}

int
sprig_schema_parse_json(const char *text, size_t len, sprig_schema_def **out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "out is NULL");
    }
    *out = NULL;
    if (!text) {
        return sprig__err(SPRIG_EINVAL, "schema text is NULL");
    }
    sctx c = {"schema", ""};
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    return load(&c, root, &err, out);
}

int
sprig_schema_load_json(const char *path, sprig_schema_def **out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "out is NULL");
    }
    *out = NULL;
    if (!path || !*path) {
        return sprig__err(SPRIG_EINVAL, "schema file path is empty");
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return sprig__err(e == ENOENT ? SPRIG_ENOTFOUND : SPRIG_EIO,
                          "cannot open schema file '%s': %s", path,
                          strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return sprig__err(SPRIG_EINVAL,
                          "schema file '%s' is a directory, not a file", path);
    }
    sctx c = {path, ""};
    json_error_t err;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
    fclose(f);
    return load(&c, root, &err, out);
}

void
sprig_schema_free(sprig_schema_def *s)
{
    sprig__free(s);
}
