/*
 * changes.c -- wake-ups for the changes feeds of a local database.
 *
 * The feed itself is a cursor over the transaction log (core,
 * changes_api.c); all it needs from the engine is to learn that something
 * committed.  Each feed registers an eventfd with the database's writer;
 * after every batch the leader commits (writer.c, lead), it writes 1 to
 * each registered eventfd.  Batches that changed no document (key-value
 * commands) wake the feeds too: they re-read the log, find nothing and
 * wait again -- cheaper than telling the batches apart here.
 */
#include "local.h"

#include <errno.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct sprig__watch {
    struct sprig__watch *next;
    int efd;
} sprig__watch;

void
sprig__writer_notify(sprig__writer *w)
{
    uint64_t one = 1;
    pthread_mutex_lock(&w->watch_lock);
    for (sprig__watch *x = w->watchers; x; x = x->next) {
        ssize_t n = write(x->efd, &one, sizeof one);
        (void)n; /* full counter: it is readable anyway */
    }
    pthread_mutex_unlock(&w->watch_lock);
}

int
sprig__changes_watch(sprig_db *db, int *fd, void **token)
{
    sprig__ldb *ldb = sprig__db_ldb(db);
    if (!ldb) {
        return sprig__err(SPRIG_EINVAL, "not a local database handle");
    }
    sprig__watch *x = sprig__calloc(1, sizeof *x);
    if (!x) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    x->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (x->efd < 0) {
        sprig__free(x);
        return sprig__err(SPRIG_EIO, "eventfd: %s", strerror(errno));
    }
    sprig__writer *w = &ldb->writer;
    pthread_mutex_lock(&w->watch_lock);
    x->next = w->watchers;
    w->watchers = x;
    pthread_mutex_unlock(&w->watch_lock);
    *fd = x->efd;
    *token = x;
    return SPRIG_OK;
}

void
sprig__changes_unwatch(sprig_db *db, void *token)
{
    sprig__ldb *ldb = sprig__db_ldb(db);
    sprig__watch *x = token;
    if (ldb) {
        sprig__writer *w = &ldb->writer;
        pthread_mutex_lock(&w->watch_lock);
        for (sprig__watch **p = &w->watchers; *p; p = &(*p)->next) {
            if (*p == x) {
                *p = x->next;
                break;
            }
        }
        pthread_mutex_unlock(&w->watch_lock);
    }
    close(x->efd);
    sprig__free(x);
}
