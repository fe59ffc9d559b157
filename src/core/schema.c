/*
 * schema.c -- name rules and schema definitions: validation, heap copies,
 * and the byte form a storage records so tools can read schemas without the
 * program's code.
 */
#include "core.h"

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
    }
    return SPRIG_OK;
}

int
sprig__schema_copy(const sprig_schema_def *src, sprig_schema_def **out)
{
    *out = NULL;
    size_t size = sizeof(sprig_schema_def) +
                  src->n_collections * sizeof(sprig_collection_def) +
                  strlen(src->name) + 1;
    for (size_t i = 0; i < src->n_collections; i++) {
        size += strlen(src->collections[i].name) + 1;
    }
    uint8_t *mem = sprig__malloc(size);
    if (!mem) {
        return sprig__err(SPRIG_ENOMEM, "out of memory copying a schema");
    }
    sprig_schema_def *s = (sprig_schema_def *)mem;
    sprig_collection_def *cols = (sprig_collection_def *)(s + 1);
    char *strs = (char *)(cols + src->n_collections);
    size_t n = strlen(src->name) + 1;
    memcpy(strs, src->name, n);
    s->name = strs;
    strs += n;
    for (size_t i = 0; i < src->n_collections; i++) {
        cols[i] = src->collections[i];
        n = strlen(src->collections[i].name) + 1;
        memcpy(strs, src->collections[i].name, n);
        cols[i].name = strs;
        strs += n;
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
    size_t n = strlen(s);
    int rc = sprig__buf_put_u32(b, (uint32_t)n);
    return rc ? rc : sprig_buf_append(b, s, n);
}

int
sprig__schema_encode(const sprig_schema_def *s, sprig_buf *out)
{
    int rc = sprig__buf_put_u8(out, 1); /* format version */
    rc = rc ? rc : put_str(out, s->name);
    rc = rc ? rc : sprig__buf_put_u32(out, (uint32_t)s->n_collections);
    for (size_t i = 0; rc == 0 && i < s->n_collections; i++) {
        rc = put_str(out, s->collections[i].name);
        rc = rc ? rc
                : sprig__buf_put_u8(out, (uint8_t)s->collections[i].id_kind);
        rc = rc ? rc : sprig__buf_put_u32(out, s->collections[i].flags);
    }
    return rc;
}

/* Read a length-prefixed name into a NUL-terminated stack copy. */
static int
get_name(sprig__rd *r, char name[SPRIG_NAME_MAX + 1])
{
    uint32_t n;
    const uint8_t *p;
    int rc = sprig__rd_u32(r, &n);
    if (rc == 0 && n > SPRIG_NAME_MAX) {
        rc = sprig__err(SPRIG_ECORRUPT, "stored schema name is too long");
    }
    rc = rc ? rc : sprig__rd_bytes(r, n, &p);
    if (rc == 0) {
        memcpy(name, p, n);
        name[n] = 0;
    }
    return rc;
}

int
sprig__schema_decode(sprig_bytes in, sprig_schema_def **out)
{
    sprig__rd r = {in.data, in.len};
    uint8_t ver;
    uint32_t n;
    char name[SPRIG_NAME_MAX + 1];
    *out = NULL;
    int rc = sprig__rd_u8(&r, &ver);
    if (rc == 0 && ver != 1) {
        return sprig__err(SPRIG_ECORRUPT, "stored schema has format %u", ver);
    }
    rc = rc ? rc : get_name(&r, name);
    rc = rc ? rc : sprig__rd_u32(&r, &n);
    if (rc) {
        return rc;
    }
    if (n > r.left / 9) {
        return sprig__err(SPRIG_ECORRUPT, "stored schema is truncated");
    }
    sprig_collection_def *cols = sprig__calloc(n, sizeof *cols);
    char(*names)[SPRIG_NAME_MAX + 1] = sprig__calloc(n, sizeof *names);
    if (!cols || !names) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory reading a schema");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        uint8_t kind;
        rc = get_name(&r, names[i]);
        rc = rc ? rc : sprig__rd_u8(&r, &kind);
        rc = rc ? rc : sprig__rd_u32(&r, &cols[i].flags);
        cols[i].name = names[i];
        cols[i].id_kind = (sprig_id_kind)kind;
    }
    sprig_schema_def tmp = {name, cols, n};
    if (rc == 0 && sprig__schema_check(&tmp)) {
        char why[256];
        snprintf(why, sizeof why, "%s", sprig_errmsg());
        rc = sprig__err(SPRIG_ECORRUPT, "stored schema '%s' is invalid: %s",
                        name, why);
    }
    rc = rc ? rc : sprig__schema_copy(&tmp, out);
    sprig__free(cols);
    sprig__free(names);
    return rc;
}
