/*
 * db_cache.c -- the server's open database handles.
 *
 * Opening a handle per request costs a storage-lock round trip and an
 * allocation, and the storage lock can be held for long (a database being
 * created, or opened with a view index to rebuild).  So handles stay open
 * here, up to SPRIG__DB_CACHE of them.  The loop thread answers a read only
 * with a handle found here (sprig__db_acquire without may_open); a worker
 * opens and caches the rest.
 *
 * Each cached handle counts the requests using it.  A handle whose
 * database was deleted -- by a client, or by the server program through
 * its own storage handle -- is noticed (the handle's `dropped` operation,
 * through the public ops: any storage) by the next
 * worker that wants it: it leaves the table, is closed at once if unused
 * or moved to `zombies` to be closed by its last release, and a fresh
 * handle takes its place.  The mutex guards the tables only and is never
 * held while a handle is opened or closed, and the loop thread never closes
 * one (the last release of a retired handle there hands the close to a
 * worker).
 */
#include "server/server_int.h"

#include <stdio.h>

static sprig__cached_db *
find(sprig__cached_db *items, size_t n, const char *name, const sprig_db *db)
{
    for (size_t i = 0; i < n; i++) {
        if ((name && strcmp(items[i].name, name) == 0) ||
            (db && items[i].db == db)) {
            return &items[i];
        }
    }
    return NULL;
}

/* Remove `e` from its table of `*n` (lock held). */
static void
take_out(sprig__cached_db *items, size_t *n, sprig__cached_db *e)
{
    *e = items[--*n];
}

/* A stale entry leaves the table (lock held): returns the handle to close
 * now, or NULL when requests still use it (their last release closes it).
 * With no zombie slot free it stays (and the caller opens its own). */
static sprig_db *
retire(sprig__db_cache *c, sprig__cached_db *e)
{
    sprig_db *close_now = NULL;
    if (e->refs == 0) {
        close_now = e->db;
    } else if (c->n_zombies < SPRIG__DB_CACHE) {
        c->zombies[c->n_zombies++] = *e;
    } else {
        return NULL;
    }
    take_out(c->items, &c->n, e);
    return close_now;
}

/* Open a handle and cache it if there is room (worker threads). */
static int
open_and_cache(sprig_server *srv, const char *name, sprig_db **out)
{
    sprig__db_cache *c = &srv->dbs;
    sprig_db *db;
    int rc = sprig_storage_open_database(srv->st, name, &db);
    if (rc) {
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    if (!find(c->items, c->n, name, NULL) && c->n < SPRIG__DB_CACHE) {
        sprig__cached_db *e = &c->items[c->n++];
        snprintf(e->name, sizeof e->name, "%s", name);
        e->db = db;
        e->refs = 1;
    }
    pthread_mutex_unlock(&c->lock);
    *out = db; /* cached or the caller's own: sprig__db_release tells */
    return SPRIG_OK;
}

int
sprig__db_acquire(sprig_server *srv, const char *name, bool may_open,
                  sprig_db **out)
{
    sprig__db_cache *c = &srv->dbs;
    sprig_db *close_now = NULL, *db = NULL;
    pthread_mutex_lock(&c->lock);
    sprig__cached_db *e = find(c->items, c->n, name, NULL);
    if (e && !sprig__db_was_dropped(e->db)) {
        e->refs++;
        db = e->db;
    } else if (e && may_open) {
        close_now = retire(c, e);
    }
    pthread_mutex_unlock(&c->lock);
    sprig_db_close(close_now); /* takes the storage lock: workers only */
    if (db) {
        *out = db;
        return SPRIG_OK;
    }
    return may_open ? open_and_cache(srv, name, out) : SPRIG__EMISS;
}

/* Worker task: close a handle the loop thread let go of last. */
static void
close_task(sprig__job *j)
{
    sprig_db_close(j->attach);
    sprig__free(j);
}

/* Close `db` -- on a worker when called on the loop thread, as closing
 * takes the storage lock. */
static void
close_handle(sprig_server *srv, sprig_db *db, bool on_loop)
{
    sprig__job *j = db && on_loop ? sprig__calloc(1, sizeof *j) : NULL;
    if (!j) {
        sprig_db_close(db); /* a worker, or out of memory */
        return;
    }
    j->task = close_task;
    j->attach = db;
    sprig__run_task(srv, j);
}

void
sprig__db_release(sprig_server *srv, sprig_db *db, bool on_loop)
{
    sprig__db_cache *c = &srv->dbs;
    sprig_db *close_now = db;
    pthread_mutex_lock(&c->lock);
    sprig__cached_db *e = find(c->items, c->n, NULL, db);
    if (e) {
        e->refs--;
        close_now = NULL;
    } else if ((e = find(c->zombies, c->n_zombies, NULL, db))) {
        close_now = --e->refs == 0 ? db : NULL;
        if (close_now) {
            take_out(c->zombies, &c->n_zombies, e);
        }
    }
    pthread_mutex_unlock(&c->lock);
    close_handle(srv, close_now, on_loop);
}

void
sprig__db_cache_clear(sprig_server *srv)
{
    sprig__db_cache *c = &srv->dbs;
    pthread_mutex_lock(&c->lock);
    while (c->n) {
        sprig_db_close(c->items[--c->n].db);
    }
    while (c->n_zombies) {
        sprig_db_close(c->zombies[--c->n_zombies].db);
    }
    pthread_mutex_unlock(&c->lock);
}
