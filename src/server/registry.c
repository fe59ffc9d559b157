/*
 * registry.c -- the API rows one server serves (src/server).
 *
 * Each server has its own registry: the built-in rows are copied in when
 * the server is made (sprig__registry_init), and more can be added while
 * it runs (sprig__registry_add; the public sprig_server_register_api() of
 * the API platform will call it).  A row is found by name with a binary
 * search over an array kept sorted; the request path then only reads what
 * the row declares (where it runs, its action and resource spec, its
 * handler), so no code anywhere picks a route by comparing rows.
 *
 * Rows are allocated one by one and never move or change once added, so a
 * job may keep a pointer to its row after the lock is released; only the
 * sorted array of pointers grows.  The rwlock makes lookups (the loop
 * thread, workers) and additions (any thread) safe together.
 */
#include "server/server_int.h"

#include <stdio.h>

/* Compare `name` with a row's name as memcmp order (shorter first). */
static int
name_cmp(sprig_bytes name, const char *row)
{
    return sprig__bytes_cmp(name,
                            (sprig_bytes){(const uint8_t *)row, strlen(row)});
}

/* The index of the first row whose name is >= `name` (lock held). */
static size_t
lower_bound(const sprig__registry *r, sprig_bytes name)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (name_cmp(name, r->rows[mid]->api.name) > 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* A row's declarations are usable by the request path. */
static int
check_row(const sprig__api *row, sprig__handler handler)
{
    if (!row || !row->name || !*row->name || !row->action || !handler) {
        return sprig__err(SPRIG_EINVAL, "an API row needs a name, an "
                                        "action and a handler");
    }
    if ((unsigned)row->where > SPRIG__RUN_SUBMIT ||
        sprig__res_segments(row->resource.kind) == 0 || row->req_size == 0 ||
        row->resp_size == 0) {
        return sprig__err(SPRIG_EINVAL,
                          "API row '%s': bad place, resource "
                          "kind or struct size",
                          row->name);
    }
    return sprig__resource_check(row);
}

/* A heap copy of `row` with its own strings. */
static sprig__route *
route_new(const sprig__api *row, sprig__handler handler, void *udata)
{
    size_t ln = strlen(row->name) + 1, la = strlen(row->action) + 1;
    size_t ls = row->summary ? strlen(row->summary) + 1 : 1;
    sprig__route *rt = sprig__calloc(1, sizeof *rt + ln + la + ls);
    if (!rt) {
        return NULL;
    }
    char *p = (char *)(rt + 1);
    rt->api = *row;
    rt->api.name = memcpy(p, row->name, ln);
    rt->api.action = memcpy(p + ln, row->action, la);
    rt->api.summary = memcpy(p + ln + la, row->summary ? row->summary : "", ls);
    rt->handler = handler;
    rt->udata = udata;
    return rt;
}

/* Insert `rt` in order (lock held for writing). */
static int
insert(sprig__registry *r, sprig__route *rt)
{
    sprig_bytes name = {(const uint8_t *)rt->api.name, strlen(rt->api.name)};
    size_t at = lower_bound(r, name);
    if (at < r->n && name_cmp(name, r->rows[at]->api.name) == 0) {
        return sprig__err(SPRIG_EEXIST, "API '%s' exists already",
                          rt->api.name);
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        sprig__route **rows = sprig__realloc(r->rows, cap * sizeof *rows);
        if (!rows) {
            return sprig__err(SPRIG_ENOMEM, "out of memory");
        }
        r->rows = rows;
        r->cap = cap;
    }
    memmove(&r->rows[at + 1], &r->rows[at], (r->n - at) * sizeof *r->rows);
    r->rows[at] = rt;
    r->n++;
    return SPRIG_OK;
}

int
sprig__registry_add(sprig__registry *r, const sprig__api *row,
                    sprig__handler handler, void *udata)
{
    int rc = check_row(row, handler);
    if (rc) {
        return rc;
    }
    sprig__route *rt = route_new(row, handler, udata);
    if (!rt) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    pthread_rwlock_wrlock(&r->lock);
    rc = insert(r, rt);
    pthread_rwlock_unlock(&r->lock);
    if (rc) {
        sprig__free(rt);
    }
    return rc;
}

int
sprig__registry_init(sprig__registry *r)
{
    memset(r, 0, sizeof *r);
    pthread_rwlock_init(&r->lock, NULL);
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < sprig__builtins_n; i++) {
        rc = sprig__registry_add(r, sprig__builtins[i].api,
                                 sprig__builtins[i].handler, NULL);
    }
    return rc;
}

const sprig__route *
sprig__registry_find(sprig__registry *r, sprig_bytes name)
{
    const sprig__route *found = NULL;
    pthread_rwlock_rdlock(&r->lock);
    size_t at = lower_bound(r, name);
    if (at < r->n && name_cmp(name, r->rows[at]->api.name) == 0) {
        found = r->rows[at];
    }
    pthread_rwlock_unlock(&r->lock);
    return found;
}

size_t
sprig__registry_count(sprig__registry *r)
{
    pthread_rwlock_rdlock(&r->lock);
    size_t n = r->n;
    pthread_rwlock_unlock(&r->lock);
    return n;
}

const sprig__route *
sprig__registry_at(sprig__registry *r, size_t i)
{
    pthread_rwlock_rdlock(&r->lock);
    const sprig__route *rt = i < r->n ? r->rows[i] : NULL;
    pthread_rwlock_unlock(&r->lock);
    return rt;
}

void
sprig__registry_free(sprig__registry *r)
{
    for (size_t i = 0; i < r->n; i++) {
        sprig__free(r->rows[i]);
    }
    sprig__free(r->rows);
    r->rows = NULL;
    r->n = r->cap = 0;
    pthread_rwlock_destroy(&r->lock);
}
