/*
 * error.c -- result codes, their names, and the per-thread error detail.
 *
 * Bottom of src/core.  Every layer reports a failure by calling sprig__err()
 * with a code and a sentence; the public sprig_errmsg() reads it back on the
 * same thread.  A failure about something named (a document, a database, a
 * collection, a view, a schema, a key-value key) also fills the structured
 * detail that sprig_error_info() returns: sprig__err() clears it, the
 * sprig__errinfo_*() setters fill it, and sprig__err_save()/_load() carry
 * both across threads.
 */
#include "core.h"

#include <stdio.h>

static _Thread_local char errmsg_buf[512];
static _Thread_local sprig__errinfo errinfo;
static _Thread_local sprig_error_detail errdetail;

const char *
sprig_version(void)
{
    return SPRIG_VERSION_STRING;
}

const char *
sprig_strerror(int rc)
{
    switch (rc) {
    case SPRIG_OK: return "ok";
    case SPRIG_ENOTFOUND: return "not found";
    case SPRIG_ECONFLICT: return "conflict";
    case SPRIG_EEXIST: return "already exists";
    case SPRIG_EINVAL: return "invalid argument";
    case SPRIG_ESCHEMA: return "schema mismatch";
    case SPRIG_EUNIQUE: return "unique key violation";
    case SPRIG_ETOOBIG: return "too big";
    case SPRIG_ENOMEM: return "out of memory";
    case SPRIG_EIO: return "I/O error";
    case SPRIG_EFULL: return "storage full";
    case SPRIG_ECORRUPT: return "corrupt data";
    case SPRIG_EPERM: return "permission denied";
    case SPRIG_EAUTH: return "authentication failed";
    case SPRIG_EPROTO: return "protocol error";
    case SPRIG_ECLOSED: return "closed";
    case SPRIG_ETIMEDOUT: return "timed out";
    case SPRIG_ECONNECT: return "connection failed";
    case SPRIG_EBUSY: return "busy";
    case SPRIG_ENOTLEADER: return "not the leader";
    case SPRIG_ERANGE: return "out of range";
    default: /* -30000..-39999: a custom API's own (sprig/server.h) */
        return rc <= -30000 && rc >= -39999 ? "application error"
                                            : "unknown error";
    }
}

const char *
sprig_errmsg(void)
{
    return errmsg_buf;
}

/* Forget the structured detail: a new failure of code `rc`. */
static void
errinfo_reset(int rc)
{
    errinfo.code = rc;
    errinfo.kind = SPRIG_ERROR_KIND_NONE;
    errinfo.database[0] = errinfo.schema[0] = 0;
    errinfo.collection[0] = errinfo.view[0] = errinfo.ns[0] = 0;
    errinfo.key_len = errinfo.id_len = 0;
    errinfo.has_header = false;
}

int
sprig__err(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
    va_end(ap);
    errinfo_reset(rc);
    return rc;
}

int
sprig__err_in_db(int rc, const char *db)
{
    char named[SPRIG_NAME_MAX + 16], old[sizeof errmsg_buf];
    if (rc != SPRIG_ECORRUPT || !db || !*db) {
        return rc;
    }
    snprintf(named, sizeof named, "'%s'", db);
    if (strstr(errmsg_buf, named)) {
        return rc;
    }
    memcpy(old, errmsg_buf, sizeof old);
    snprintf(errmsg_buf, sizeof errmsg_buf, "database '%s': %.*s", db,
             (int)(sizeof errmsg_buf - sizeof named - 16), old);
    return rc;
}

int
sprig__err_about(int rc, sprig_error_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
    va_end(ap);
    errinfo_reset(rc);
    errinfo.kind = kind;
    return rc;
}

sprig__errinfo *
sprig__errinfo_get(void)
{
    return &errinfo;
}

static void
set_str(char *dst, size_t cap, const char *s)
{
    if (s) {
        snprintf(dst, cap, "%s", s);
    }
}

void
sprig__errinfo_database(const char *name)
{
    set_str(errinfo.database, sizeof errinfo.database, name);
}

void
sprig__errinfo_schema(const char *name)
{
    set_str(errinfo.schema, sizeof errinfo.schema, name);
}

void
sprig__errinfo_collection(const char *name)
{
    set_str(errinfo.collection, sizeof errinfo.collection, name);
}

void
sprig__errinfo_view(const char *name)
{
    set_str(errinfo.view, sizeof errinfo.view, name);
}

void
sprig__errinfo_ns(const char *ns)
{
    set_str(errinfo.ns, sizeof errinfo.ns, ns);
}

static uint32_t
set_bytes(uint8_t *dst, size_t cap, sprig_bytes b)
{
    size_t n = b.data ? (b.len < cap ? b.len : cap) : 0;
    if (n) {
        memcpy(dst, b.data, n);
    }
    return (uint32_t)n;
}

void
sprig__errinfo_key(sprig_bytes key)
{
    errinfo.key_len = set_bytes(errinfo.key, sizeof errinfo.key, key);
}

void
sprig__errinfo_id(sprig_bytes id)
{
    errinfo.id_len = set_bytes(errinfo.id, sizeof errinfo.id, id);
}

void
sprig__errinfo_header(const sprig_header_buf *h)
{
    errinfo.has_header = h != NULL;
    if (h) {
        errinfo.header = *h;
    }
}

void
sprig__errinfo_context(const char *database, const char *collection,
                       const sprig_bytes *id)
{
    int k = errinfo.kind;
    if (k == SPRIG_ERROR_KIND_NONE || k == SPRIG_ERROR_KIND_SCHEMA) {
        return;
    }
    if (!errinfo.database[0]) {
        sprig__errinfo_database(database);
    }
    bool in_coll = k == SPRIG_ERROR_KIND_DOCUMENT ||
                   k == SPRIG_ERROR_KIND_COLLECTION ||
                   k == SPRIG_ERROR_KIND_VIEW;
    if (in_coll && !errinfo.collection[0]) {
        sprig__errinfo_collection(collection);
    }
    if (k == SPRIG_ERROR_KIND_DOCUMENT && !errinfo.id_len && id) {
        sprig__errinfo_id(*id);
    }
}

void
sprig__err_save(sprig__errsave *s)
{
    snprintf(s->msg, sizeof s->msg, "%s", errmsg_buf);
    s->info = errinfo;
}

int
sprig__err_load(int rc, const sprig__errsave *s)
{
    snprintf(errmsg_buf, sizeof errmsg_buf, "%s", s->msg);
    errinfo = s->info;
    errinfo.code = rc;
    return rc;
}

void
sprig__errinfo_set(const sprig__errinfo *info)
{
    errinfo = *info;
}

const sprig_error_detail *
sprig_error_info(void)
{
    sprig_error_detail *d = &errdetail;
    const sprig__errinfo *e = &errinfo;
    d->code = e->code;
    d->kind = (sprig_error_kind)e->kind;
    d->database = e->database;
    d->schema = e->schema;
    d->collection = e->collection;
    d->view = e->view;
    d->ns = e->ns;
    d->key = (sprig_bytes){e->key, e->key_len};
    d->id = (sprig_bytes){e->id, e->id_len};
    d->has_header = e->has_header;
    d->header = e->has_header ? sprig_header_of(&e->header)
                              : (sprig_header){{NULL, 0}, 0, {0}};
    return d;
}

const char *
sprig_error_kind_name(sprig_error_kind kind)
{
    static const char *const names[] = {
        "none", "document", "database", "collection", "view", "schema", "key"};
    unsigned k = (unsigned)kind;
    return k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}
