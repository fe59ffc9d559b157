/*
 * changes_srv.c -- changes feeds for remote clients (src/server): the
 * handlers of db.changes_subscribe / db.changes_unsubscribe and the
 * "db.changes" pushes (issue 15; docs/protocol.md, "Changes feed").
 *
 * A client's feed is a sprig_changes (src/core/changes_api.c: a cursor over
 * the transaction log, woken by commits) on a database handle of its own,
 * owned by the session that made it.  Opening it may wait on the storage
 * lock, so db.changes_subscribe runs on a worker and the loop thread
 * attaches it to the session before the answer leaves (job->on_loop, as
 * pubsub_srv.c does); the first drain runs from a 0 ms timer, after the
 * answer, so the client knows the feed's number before its first push.
 *
 * Draining (loop thread): changes are read with sprig_changes_next(.., 0,
 * ..) and packed into pushes of whole transactions (about PUSH_CHANGES
 * changes, or a quarter of the high-water mark in bytes, each).  The feed's fd
 * is watched by a uv_poll; when the connection's send queue passes the
 * high-water mark, watching stops -- nothing is read, nothing is dropped,
 * nothing grows: the feed is a position in the log, so a slow follower just
 * falls behind and catches up when the queue drains (sprig__changes_resume).
 */
#include "server/server_int.h"

#include <stdio.h>

#define PUSH_CHANGES 256 /* changes per push (whole transactions) */

typedef struct sprig__srv_feed {
    sprig__owned own; /* first: closed on a worker (sprig__owned_release) */
    struct sprig__srv_feed *next;
    uint64_t id;
    sprig_db *db;
    sprig_changes *feed;
    sprig__session *sess; /* NULL once the session let go of it */
    uv_poll_t poll;
    uv_timer_t start;
    int open_handles; /* poll + timer, until their close callbacks */
    bool paused, failed;
    bool held; /* `ev` was read but not sent yet (it starts a transaction) */
    sprig_change_event ev;
} sprig__srv_feed;

/* Worker (or a failed handler): close the feed and its database handle. */
static void
feed_free(void *obj)
{
    sprig__srv_feed *f = obj;
    sprig_changes_close(f->feed);
    sprig_db_close(f->db);
    sprig__free(f);
}

static void
release(sprig__srv_feed *f)
{
    sprig__owned_release(&f->own);
}

static void
handle_closed(uv_handle_t *h)
{
    sprig__srv_feed *f = h->data;
    if (--f->open_handles == 0) {
        release(f);
    }
}

static void
feed_close(sprig__srv_feed *f)
{
    f->sess = NULL;
    if (f->open_handles == 0) {
        release(f);
        return;
    }
    uv_poll_stop(&f->poll);
    uv_close((uv_handle_t *)&f->poll, handle_closed);
    uv_close((uv_handle_t *)&f->start, handle_closed);
}

/* Append change `ev` to `w` as [collection, id, revision, deleted,
 * contents or nil]. */
static void
put_change(sprig__mp_wr *w, const sprig_change_event *ev)
{
    sprig__mp_array(w, 5);
    sprig__mp_str(w, ev->collection);
    sprig__mp_bin(w, ev->id);
    sprig__mp_u64(w, ev->revision);
    sprig__mp_bool(w, ev->deleted);
    if (ev->has_contents) {
        sprig__mp_bin(w, ev->contents);
    } else {
        sprig__mp_nil(w);
    }
}

/* One entry [txn, ts, changes] made of `n` changes encoded in `chg`. */
static void
put_entry(sprig__mp_wr *w, uint64_t txn, uint64_t ts, uint32_t n,
          const sprig_buf *chg)
{
    sprig__mp_array(w, 3);
    sprig__mp_u64(w, txn);
    sprig__mp_u64(w, ts);
    sprig__mp_array(w, n);
    sprig__mp_raw(w, (sprig_bytes){chg->data, chg->len});
}

/* Bytes after which a push ends (at a transaction's end): a quarter of
 * the high-water mark, so a push never takes the queue over the
 * connection's bound -- unless one transaction alone is that big. */
static size_t
push_bytes(const sprig__srv_feed *f)
{
    return sprig__push_high_water(f->sess) / 4;
}

/* The next change into f->ev (or the held one); false when none waits
 * (or the feed failed: then it is marked and stays silent). */
static bool
next_change(sprig__srv_feed *f)
{
    if (f->held) {
        f->held = false;
        return true;
    }
    int rc = sprig_changes_next(f->feed, 0, &f->ev);
    if (rc && rc != SPRIG_ETIMEDOUT) {
        fprintf(stderr, "sprig serve: changes feed %llu stops: %s\n",
                (unsigned long long)f->id, sprig_errmsg());
        f->failed = true;
    }
    return rc == SPRIG_OK;
}

/* Encode whole transactions, about PUSH_CHANGES changes, into `ents`;
 * returns the number of entries. */
static uint32_t
collect(sprig__srv_feed *f, sprig_buf *ents)
{
    sprig__mp_wr we, wc;
    sprig__mp_wr_init(&we, ents);
    sprig_buf chg = {0};
    uint32_t n_ent = 0, n_chg = 0, total = 0;
    uint64_t txn = 0, ts = 0;
    while (next_change(f)) {
        if (n_chg && f->ev.txn_id != txn) {
            put_entry(&we, txn, ts, n_chg, &chg);
            n_ent++;
            n_chg = 0;
            if (total >= PUSH_CHANGES || ents->len >= push_bytes(f)) {
                f->held = true; /* starts the next push */
                break;
            }
        }
        if (n_chg == 0) {
            chg.len = 0;
            sprig__mp_wr_init(&wc, &chg);
            txn = f->ev.txn_id;
            ts = f->ev.timestamp_ms;
        }
        put_change(&wc, &f->ev);
        n_chg++;
        total++;
    }
    if (n_chg) {
        put_entry(&we, txn, ts, n_chg, &chg);
        n_ent++;
    }
    sprig_buf_clear(&chg);
    return n_ent;
}

/* Build and send one push; false when nothing was waiting. */
static bool
push_changes(sprig__srv_feed *f)
{
    sprig_buf ents = {0}, b = {0};
    uint32_t n = collect(f, &ents);
    if (n) {
        sprig__mp_wr w;
        sprig__mp_wr_init(&w, &b);
        sprig__frame_push(&w, SPRIG__PUSH_CHANGES);
        sprig__mp_map(&w, 2);
        sprig__mp_str(&w, "feed");
        sprig__mp_u64(&w, f->id);
        sprig__mp_str(&w, "entries");
        sprig__mp_array(&w, n);
        sprig__mp_raw(&w, (sprig_bytes){ents.data, ents.len});
        if (sprig__mp_wr_status(&w) == 0) {
            sprig__conn_send(f->sess->conn, b.data, b.len);
        }
    }
    sprig_buf_clear(&ents);
    sprig_buf_clear(&b);
    return n > 0;
}

static void
drain(sprig__srv_feed *f)
{
    while (f->sess && f->sess->conn && !f->failed) {
        if (sprig__conn_queued(f->sess->conn) >=
            sprig__push_high_water(f->sess)) {
            uv_poll_stop(&f->poll);
            f->paused = true;
            return;
        }
        if (!push_changes(f)) {
            break;
        }
    }
    if (f->failed) {
        uv_poll_stop(&f->poll);
    }
}

static void
on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    drain(p->data);
}

static void
on_start(uv_timer_t *t)
{
    drain(t->data);
}

void
sprig__changes_resume(sprig__session *sess)
{
    if (!sess->feeds || !sess->conn ||
        sprig__conn_queued(sess->conn) > sprig__push_high_water(sess) / 2) {
        return;
    }
    for (sprig__srv_feed *f = sess->feeds; f; f = f->next) {
        if (f->paused && !f->failed) {
            f->paused = false;
            uv_poll_start(&f->poll, UV_READABLE, on_readable);
            drain(f);
        }
    }
}

void
sprig__changes_close_all(sprig__session *sess)
{
    for (sprig__srv_feed *f = sess->feeds, *next; f; f = next) {
        next = f->next;
        feed_close(f);
    }
    sess->feeds = NULL;
}

/* Loop thread, before the answer leaves: attach the feed to its session,
 * watch its fd, and drain it once the answer is out (0 ms timer). */
static void
attach(sprig__job *j)
{
    sprig__srv_feed *f = j->attach;
    sprig__session *sess = j->sess;
    uv_loop_t *loop = &sess->srv->loop;
    j->attach = NULL;
    if (!sess->conn) {
        release(f);
        return;
    }
    if (uv_poll_init(loop, &f->poll, sprig_changes_fd(f->feed)) != 0) {
        sprig__error_frame(&j->out, j->id, SPRIG_EIO,
                           "cannot watch a changes feed", (sprig_bytes){0});
        release(f);
        return;
    }
    uv_timer_init(loop, &f->start);
    f->poll.data = f->start.data = f;
    f->open_handles = 2;
    f->sess = sess;
    f->next = sess->feeds;
    sess->feeds = f;
    uv_poll_start(&f->poll, UV_READABLE, on_readable);
    uv_timer_start(&f->start, on_start, 0, 0);
}

int
sprig__changes_subscribe(sprig__call *c, void *rq, void *rs)
{
    const sprig__changes_sub_req *r = rq;
    if (c->on_loop || !c->job) {
        return sprig__err(SPRIG_EINVAL, "changes feeds open on a worker");
    }
    sprig__srv_feed *f = sprig__owned_new(sizeof *f, c->srv, feed_free);
    if (!f) {
        return SPRIG_ENOMEM;
    }
    uint64_t since = r->since;
    int rc = sprig_storage_open_database(c->srv->st, r->db, &f->db);
    if (rc == 0 && since == UINT64_MAX) { /* from now on */
        rc = sprig_last_txn_id(f->db, &since);
    }
    rc = rc ? rc
            : sprig_changes_open(f->db, since, r->collection,
                                 r->contents ? SPRIG_CHANGES_CONTENTS : 0,
                                 &f->feed);
    if (rc) {
        sprig__owned_discard(&f->own);
        return rc;
    }
    f->id = atomic_fetch_add(&c->srv->next_sub_id, 1) + 1;
    c->job->on_loop = attach;
    c->job->attach = f;
    ((sprig__feed_resp *)rs)->feed = f->id;
    return SPRIG_OK;
}

int
sprig__changes_unsubscribe(sprig__call *c, void *rq, void *rs)
{
    const sprig__feed_req *r = rq;
    (void)rs;
    for (sprig__srv_feed **p = &c->sess->feeds; *p; p = &(*p)->next) {
        if ((*p)->id == r->feed) {
            sprig__srv_feed *f = *p;
            *p = f->next;
            feed_close(f);
            return SPRIG_OK;
        }
    }
    return sprig__err(SPRIG_ENOTFOUND,
                      "no changes feed %llu on this "
                      "connection",
                      (unsigned long long)r->feed);
}
