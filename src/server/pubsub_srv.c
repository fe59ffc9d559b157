/*
 * pubsub_srv.c -- PubSub for remote subscribers (loop thread only).
 *
 * A client's subscriber lives on the server as a local sprig_subscriber
 * owned by the session that created it, named by a number unique in that
 * session.  The subscriber's file descriptor is watched by a uv_poll: when
 * messages wait, they are drained into "pubsub.message" pushes on the
 * connection.  When the connection's send queue passes a high-water mark,
 * watching stops (the subscriber's own bounded queue then drops the oldest
 * and counts them) and resumes when the transport says it is writable.
 * The requests that manage subscribers are answered on the loop thread, as
 * they only touch in-memory state; publishing runs on the workers.
 */
#include "server/server_int.h"

#include <stdio.h>

#define HIGH_WATER (8u << 20) /* queued bytes that pause the pushes */

struct sprig__srv_sub {
    sprig__srv_sub *next;
    uint64_t id;
    sprig_subscriber *sub;
    sprig_db *db;
    sprig__session *sess; /* NULL once the session let go of it */
    uv_poll_t poll;
    bool paused;
};

static void
sub_closed(uv_handle_t *h)
{
    sprig__srv_sub *s = h->data;
    sprig_subscriber_free(s->sub);
    sprig_db_close(s->db);
    sprig__free(s);
}

static void
sub_close(sprig__srv_sub *s)
{
    s->sess = NULL;
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
    sprig_buf_free(&b);
    return sess->conn && sprig__conn_queued(sess->conn) < HIGH_WATER;
}

static void
drain(sprig__srv_sub *s)
{
    sprig_message *m;
    while (s->sess && s->sess->conn) {
        if (sprig__conn_queued(s->sess->conn) >= HIGH_WATER) {
            uv_poll_stop(&s->poll);
            s->paused = true;
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

static int
sub_new(sprig__session *sess, const sprig__db_req *r, uint64_t *id)
{
    sprig__srv_sub *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    int rc = sprig_storage_database(sess->srv->st, r->db, &s->db);
    rc = rc ? rc : sprig_subscriber_new(s->db, &s->sub);
    if (rc == 0 && uv_poll_init(&sess->srv->loop, &s->poll,
                                sprig_subscriber_fd(s->sub)) != 0) {
        rc = sprig__err(SPRIG_EIO, "cannot watch a subscriber");
    }
    if (rc) {
        sprig_subscriber_free(s->sub);
        sprig_db_close(s->db);
        sprig__free(s);
        return rc;
    }
    s->poll.data = s;
    s->sess = sess;
    s->id = *id = ++sess->next_sub_id;
    s->next = sess->subs;
    sess->subs = s;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
    return SPRIG_OK;
}

static int
sub_free(sprig__session *sess, uint64_t id)
{
    for (sprig__srv_sub **p = &sess->subs; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            sprig__srv_sub *s = *p;
            *p = s->next;
            sub_close(s);
            return SPRIG_OK;
        }
    }
    return sprig__err(SPRIG_ENOTFOUND,
                      "no subscriber %llu on this "
                      "connection",
                      (unsigned long long)id);
}

static int
topic_op(sprig__session *sess, const sprig__api *api, const sprig__topic_req *r)
{
    sprig__srv_sub *s = find(sess, r->subscriber);
    if (!s) {
        return SPRIG_ENOTFOUND;
    }
    return api == &sprig__api_subscribe ? sprig_subscribe(s->sub, r->topic)
                                        : sprig_unsubscribe(s->sub, r->topic);
}

/* Run a subscriber request; `resp` gets the answer. */
static int
run(sprig__session *sess, const sprig__api *api, void *req, void *resp)
{
    if (api == &sprig__api_subscriber_new) {
        return sub_new(sess, req,
                       &((sprig__subscriber_resp *)resp)->subscriber);
    }
    if (api == &sprig__api_subscriber_free) {
        return sub_free(sess, ((sprig__subscriber_req *)req)->subscriber);
    }
    return topic_op(sess, api, req);
}

bool
sprig__pubsub_handles(const sprig__api *api)
{
    return api == &sprig__api_subscriber_new ||
           api == &sprig__api_subscriber_free || api == &sprig__api_subscribe ||
           api == &sprig__api_unsubscribe;
}

void
sprig__pubsub_request(sprig__session *sess, const sprig__api *api, uint32_t id,
                      sprig_bytes payload)
{
    void *req = sprig__calloc(1, api->req_size);
    void *resp = sprig__calloc(1, api->resp_size);
    int rc = req && resp ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    rc = rc ? rc : sprig__api_decode(payload, api->req, api->n_req, req);
    rc = rc ? rc : run(sess, api, req, resp);
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    if (rc == 0) {
        sprig__frame_response(&w, id);
        sprig__api_encode(&w, api->resp, api->n_resp, resp);
    } else {
        sprig__frame_error(&w, id, rc, sprig_errmsg(), (sprig_bytes){0});
    }
    if (sprig__mp_wr_status(&w) == 0) {
        sprig__conn_send(sess->conn, b.data, b.len);
    }
    sprig_buf_free(&b);
    if (req) {
        sprig__api_free(api->req, api->n_req, req);
    }
    sprig__free(req);
    sprig__free(resp);
}
