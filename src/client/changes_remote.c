/*
 * changes_remote.c -- wake-ups of changes feeds on a remote database.
 *
 * The feed (src/core/changes_api.c) reads the server's transaction log
 * with db.list_executed_transactions; what it needs from here is to learn
 * that something committed.  `watch` makes a changes feed on the server
 * (db.changes_subscribe from "now": `since` 2^64-1) and
 * writes the watch's eventfd whenever one of its "db.changes" pushes
 * arrives; the pushed changes themselves are not used (the feed reads the
 * log, the one source of truth).  The server's feed lives on the
 * connection: when it closes, the eventfd is written once more and the
 * watch stays silent -- the core feed re-reads the log at least every
 * second anyway (SPRIG__CHANGES_RECHECK_MS), so it goes on after the
 * client reconnects, only later.  Permission: the server checks
 * transaction.changes at watch time, as for any feed.
 */
#include "client/client_int.h"

#include <errno.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct remote_watch {
    struct remote_watch *next; /* in the client's list (client lock) */
    sprig_client *client;
    char db[SPRIG_NAME_MAX + 1];
    uint64_t feed; /* the server's number, 0 until it answered */
    int efd;
    bool dead;
};

static void
wake(remote_watch *w)
{
    uint64_t one = 1;
    if (write(w->efd, &one, sizeof one) < 0 && errno != EAGAIN) {
        /* full counter: readable anyway */
    }
}

void
sprig__client_push_changes(sprig_client *c, sprig_bytes payload)
{
    sprig__feed_resp p = {0};
    if (sprig__api_decode(payload, sprig__api_changes_subscribe.resp,
                          sprig__api_changes_subscribe.n_resp, &p) != 0) {
        return; /* a malformed push is dropped */
    }
    for (remote_watch *w = c->watches; w; w = w->next) {
        if (w->feed == p.feed || w->feed == 0) {
            wake(w); /* a watch not answered yet may be this one */
        }
    }
}

void
sprig__client_watches_closed(sprig_client *c)
{
    for (remote_watch *w = c->watches; w; w = w->next) {
        w->dead = true;
        wake(w);
    }
}

static void
unlink_watch(remote_watch *w)
{
    sprig_client *c = w->client;
    pthread_mutex_lock(&c->lock);
    for (remote_watch **p = &c->watches; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

static void
watch_free(remote_watch *w)
{
    close(w->efd);
    sprig__free(w);
}

int
sprig__r_watch(sprig_db *db, int *fd, void **token)
{
    remote_db *rdb = (remote_db *)db;
    int rc;
    remote_watch *w = sprig__calloc(1, sizeof *w);
    if (!w || (w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        sprig__free(w);
        return sprig__err(SPRIG_ENOMEM, "cannot make a changes watch");
    }
    w->client = rdb->client;
    snprintf(w->db, sizeof w->db, "%s", rdb->name);
    pthread_mutex_lock(&w->client->lock);
    w->next = w->client->watches;
    w->client->watches = w;
    pthread_mutex_unlock(&w->client->lock);
    sprig__changes_sub_req req = {w->db, (char *)"", UINT64_MAX, false};
    sprig__feed_resp resp = {0};
    rc = sprig__client_call(w->client, &sprig__api_changes_subscribe, &req,
                            &resp);
    if (rc) {
        unlink_watch(w);
        watch_free(w);
        return rc;
    }
    pthread_mutex_lock(&w->client->lock);
    w->feed = resp.feed;
    pthread_mutex_unlock(&w->client->lock);
    *fd = w->efd;
    *token = w;
    return SPRIG_OK;
}

void
sprig__r_unwatch(sprig_db *db, void *token)
{
    remote_watch *w = token;
    (void)db;
    unlink_watch(w);
    if (!w->dead) {
        sprig__feed_req req = {w->db, w->feed};
        sprig__empty resp = {0};
        sprig__client_call(w->client, &sprig__api_changes_unsubscribe, &req,
                           &resp); /* best effort: it dies with the conn */
    }
    watch_free(w);
}
