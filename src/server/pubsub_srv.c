/*
 * pubsub_srv.c -- PubSub for remote subscribers (src/server): the handlers
 * of the subscriber rows, and the pushes.
 *
 * A client's subscriber lives on the server as a sprig_subscriber of the
 * server's storage, owned by the session that created it and named by a
 * number unique in the server.  Opening it (a database handle, which may
 * wait on the storage lock) runs on a worker: pubsub.subscriber_new's
 * handler; the loop thread then attaches it to the session (job->on_loop)
 * before the answer leaves.  Closing it (which may wait on the same lock)
 * is a task for a worker too.  subscribe, unsubscribe and subscriber_free
 * touch only session state and run on the loop thread.
 *
 * The subscriber's file descriptor is watched by a uv_poll: when messages
 * wait, they are drained into "pubsub.message" pushes on the connection.
 * When the connection's send queue passes a high-water mark, watching
 * stops (the subscriber's own bounded queue then drops the oldest and
 * counts them); it resumes when the transport reports the queue drained
 * (on_writable), and whenever the session sends anything else and finds
 * the queue low again -- whatever path drained it.
 */
#include "server/server_int.h"

#include <stdio.h>

#define HIGH_WATER (8u << 20) /* queued bytes that pause the pushes */

struct sprig__srv_sub {
    sprig__owned own; /* first: closed on a worker (sprig__owned_release) */
    sprig__srv_sub *next;
    uint64_t id;
    sprig_subscriber *sub;
    sprig_db *db;
    char db_name[SPRIG_NAME_MAX + 1];
    sprig__session *sess; /* NULL once the session let go of it */
    uv_poll_t poll;
    bool polling; /* `poll` initialised */
    bool paused;
};

size_t
sprig__push_high_water(const sprig__session *sess)
{
    size_t bound = sess->srv->opts.max_send_queue / 2;
    return bound && bound < HIGH_WATER ? bound : HIGH_WATER;
}

/* Worker (or a failed handler): close the subscriber and its database
 * handle. */
static void
sub_free(void *obj)
{
    sprig__srv_sub *s = obj;
    sprig_subscriber_free(s->sub);
    sprig_db_close(s->db);
    sprig__free(s);
}

static void
release(sprig__srv_sub *s)
{
    sprig__owned_release(&s->own);
}

static void
sub_closed(uv_handle_t *h)
{
    release(h->data);
}

static void
sub_close(sprig__srv_sub *s)
{
    s->sess = NULL;
    if (!s->polling) {
        release(s);
        return;
    }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sub_closed);
}

/* Encode and send one push; false when the connection is full. */
static bool
push_message(sprig__session *sess, uint64_t id, const sprig_message *m)
{
    sprig__message_push p = {id, sprig_message_topic(m),
                             sprig_message_payload(m)};
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_push(&w, SPRIG__PUSH_MESSAGE);
    if (sprig__api_encode(&w, sprig__message_push_fields, sprig__message_push_n,
                          &p) == 0) {
        sprig__conn_send(sess->conn, b.data, b.len);
    }
    sprig_buf_clear(&b);
    return sess->conn &&
           sprig__conn_queued(sess->conn) < sprig__push_high_water(sess);
}

static void
drain(sprig__srv_sub *s)
{
    sprig_message *m;
    while (s->sess && s->sess->conn) {
        if (sprig__conn_queued(s->sess->conn) >=
            sprig__push_high_water(s->sess)) {
            uv_poll_stop(&s->poll);
            s->paused = true;
            atomic_fetch_add(&s->own.srv->pubsub_pauses, 1);
            return;
        }
        if (sprig_subscriber_recv(s->sub, 0, &m) != 0) {
            return; /* nothing waits */
        }
        bool room = push_message(s->sess, s->id, m);
        sprig_message_free(m);
        if (!room) {
            continue; /* the check at the top pauses */
        }
    }
}

static void
on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    drain(p->data);
}

void
sprig__pubsub_resume(sprig__session *sess)
{
    if (!sess->conn ||
        sprig__conn_queued(sess->conn) > sprig__push_high_water(sess) / 2) {
        return; /* still full: a later drain resumes them */
    }
    for (sprig__srv_sub *s = sess->subs; s; s = s->next) {
        if (s->paused) {
            s->paused = false;
            uv_poll_start(&s->poll, UV_READABLE, on_readable);
            drain(s);
        }
    }
}

void
sprig__pubsub_close_all(sprig__session *sess)
{
    for (sprig__srv_sub *s = sess->subs, *next; s; s = next) {
        next = s->next;
        sub_close(s);
    }
    sess->subs = NULL;
}

static sprig__srv_sub *
find(sprig__session *sess, uint64_t id)
{
    for (sprig__srv_sub *s = sess->subs; s; s = s->next) {
        if (s->id == id) {
            return s;
        }
    }
    sprig__err(SPRIG_ENOTFOUND, "no subscriber %llu on this connection",
               (unsigned long long)id);
    return NULL;
}

const char *
sprig__pubsub_sub_db(sprig__session *sess, uint64_t id)
{
    sprig__srv_sub *s = find(sess, id);
    return s ? s->db_name : NULL;
}

/* Loop thread, before the answer to subscriber_new leaves: attach the
 * subscriber a worker made to its session, or close it again. */
static void
attach(sprig__job *j)
{
    sprig__srv_sub *s = j->attach;
    sprig__session *sess = j->sess;
    j->attach = NULL;
    if (!sess->conn) {
        release(s); /* the client went away meanwhile */
        return;
    }
    if (uv_poll_init(&sess->srv->loop, &s->poll, sprig_subscriber_fd(s->sub)) !=
        0) {
        sprig__error_frame(&j->out, j->id, SPRIG_EIO,
                           "cannot watch a subscriber", (sprig_bytes){0});
        release(s);
        return;
    }
    s->polling = true;
    s->poll.data = s;
    s->sess = sess;
    s->next = sess->subs;
    sess->subs = s;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
}

int
sprig__pubsub_new(sprig__call *c, void *rq, void *rs)
{
    const sprig__db_req *r = rq;
    if (c->on_loop || !c->job) {
        return sprig__err(SPRIG_EINVAL, "subscribers open on a worker");
    }
    sprig__srv_sub *s = sprig__owned_new(sizeof *s, c->srv, sub_free);
    if (!s) {
        return SPRIG_ENOMEM;
    }
    int rc = sprig_storage_open_database(c->srv->st, r->db, &s->db);
    rc = rc ? rc : sprig_subscriber_new(s->db, &s->sub);
    if (rc) {
        sprig__owned_discard(&s->own);
        return rc;
    }
    snprintf(s->db_name, sizeof s->db_name, "%s", r->db);
    s->id = atomic_fetch_add(&c->srv->next_sub_id, 1) + 1;
    c->job->on_loop = attach;
    c->job->attach = s;
    ((sprig__subscriber_resp *)rs)->subscriber = s->id;
    return SPRIG_OK;
}

int
sprig__pubsub_free(sprig__call *c, void *rq, void *rs)
{
    uint64_t id = ((sprig__subscriber_req *)rq)->subscriber;
    (void)rs;
    for (sprig__srv_sub **p = &c->sess->subs; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            sprig__srv_sub *s = *p;
            *p = s->next;
            sub_close(s);
            return SPRIG_OK;
        }
    }
    return sprig__err(SPRIG_ENOTFOUND, "no subscriber %llu on this connection",
                      (unsigned long long)id);
}

int
sprig__pubsub_subscribe(sprig__call *c, void *rq, void *rs)
{
    const sprig__topic_req *r = rq;
    (void)rs;
    sprig__srv_sub *s = find(c->sess, r->subscriber);
    return s ? sprig_subscribe(s->sub, r->topic) : SPRIG_ENOTFOUND;
}

int
sprig__pubsub_unsubscribe(sprig__call *c, void *rq, void *rs)
{
    const sprig__topic_req *r = rq;
    (void)rs;
    sprig__srv_sub *s = find(c->sess, r->subscriber);
    return s ? sprig_unsubscribe(s->sub, r->topic) : SPRIG_ENOTFOUND;
}
