/*
 * session.c -- one session per connection (loop thread only).
 *
 * States of a session: OPEN (conn set) -> CLOSED (conn NULL, jobs may still
 * be in flight) -> freed (refs reached 0).  A frame that is malformed, not
 * a request, or names no row of the server's registry is answered with an
 * error frame at once, and the connection stays open.  Otherwise the
 * request runs the one request path (request.c) where its row says:
 *   LOOP         here, now (session state: the subscriber rows);
 *   CACHED_READ  here, now, when the handler needs no more than a cached
 *                database handle; else as WORKER;
 *   WORKER       a job on the worker pool;
 *   SUBMIT       here, now, up to the handler's submit of its command (no
 *                one waits for the commit: the engine's thread encodes the
 *                answer and hands the job back); a worker when the handle
 *                must be opened first.
 * A job is refused (SPRIG_EBUSY) when the connection has `max_inflight`
 * requests in flight already.
 *
 * The write lane keeps a session's writes in the order it sent them: a
 * write that must go to a worker (its database handle is not cached yet,
 * or its row always runs there) holds the lane until it is answered, and
 * the session's later writes wait (parked, as received) behind it, then
 * run in order.  Without it a publish or an insert sent after one that
 * went to a worker could overtake it.  Reads are not held back.
 */
#include "server/server_int.h"

#include <stdio.h>

/* A request waiting for its session's write lane: the message as
 * received. */
typedef struct sprig__parked {
    struct sprig__parked *next;
    size_t len;
    uint8_t data[];
} sprig__parked;

static void
unref(sprig__session *s)
{
    if (--s->refs == 0) {
        while (s->parked) {
            sprig__parked *p = s->parked;
            s->parked = p->next;
            sprig__free(p);
        }
        sprig__free(s);
    }
}

/* Send an error frame now (errors found on the loop thread). */
static void
send_error(sprig__conn *c, uint32_t id, int code, const char *msg)
{
    sprig_buf b = {0};
    sprig__error_frame(&b, id, code, msg, (sprig_bytes){NULL, 0});
    if (b.len) {
        sprig__conn_send(c, b.data, b.len);
    }
    sprig_buf_clear(&b);
}

void
sprig__session_on_open(sprig__conn *c, void *udata)
{
    sprig_server *srv = udata;
    sprig__session *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        sprig__conn_close(c, SPRIG_CLOSE_INTERNAL, "out of memory");
        return;
    }
    s->tag = SPRIG__TAG_SESSION;
    s->srv = srv;
    s->conn = c;
    snprintf(s->peer, sizeof s->peer, "%s", sprig__conn_peer(c));
    s->info.id = ++srv->next_session_id;
    s->info.peer = s->peer;
    sprig_conn_info ci;
    sprig__conn_info(c, &ci);
    snprintf(s->transport, sizeof s->transport, "%s", ci.transport);
    s->info.transport = s->transport;
    s->refs = 1;
    s->opened_ms = uv_now(&srv->loop);
    s->next = srv->sessions;
    if (srv->sessions) {
        srv->sessions->prev = s;
    }
    srv->sessions = s;
    sprig__conn_set_udata(c, s);
    if (sprig__auth_admit(s)) {   /* may close it: on_close cleans up */
        sprig__plat_connected(s); /* the connected hook may refuse it */
    }
}

/* The request's row, or NULL with the error answered. */
static const sprig__route *
route_of(sprig__session *s, const sprig__frame *f)
{
    char msg[160];
    if (f->kind != SPRIG__FRAME_REQUEST) {
        send_error(s->conn, f->id, SPRIG_EPROTO, "a client sends requests");
        return NULL;
    }
    const sprig__route *rt = sprig__registry_find(&s->srv->reg, f->api);
    if (!rt) {
        snprintf(msg, sizeof msg, "unknown API '%.*s'",
                 (int)(f->api.len > 64 ? 64 : f->api.len),
                 (const char *)f->api.data);
        send_error(s->conn, f->id, SPRIG_EPROTO, msg);
        return NULL;
    }
    if (s->srv->state != SRV_RUNNING) {
        send_error(s->conn, f->id, SPRIG_ECLOSED, "the server is stopping");
        return NULL;
    }
    return rt;
}

/* Run the request here, now; false (nothing answered) when the handler
 * asks for a worker (*authorised: the authorise step was passed). */
static bool
run_here(sprig__session *s, const sprig__route *rt, const sprig__frame *f,
         bool *authorised, sprig_identity *who)
{
    sprig__call c = {s->srv, s, rt, f->id, true, NULL};
    c.who = who;
    sprig_buf out = {0};
    if (sprig__request_run(&c, f->payload, authorised, &out) != 0) {
        sprig_buf_clear(&out);
        return false;
    }
    if (out.len) {
        sprig__conn_send(s->conn, out.data, out.len);
    } else {
        send_error(s->conn, f->id, SPRIG_ENOMEM, "out of memory");
    }
    sprig_buf_clear(&out);
    return true;
}

/* A job for the request, counted in flight; NULL with the error
 * answered (too many in flight, out of memory).  The payload is copied
 * only `with_payload`. */
static sprig__job *
new_job(sprig__session *s, const sprig__route *rt, const sprig__frame *f,
        bool with_payload, sprig_identity *who)
{
    if (s->inflight >= s->srv->opts.max_inflight) {
        char msg[96];
        snprintf(msg, sizeof msg, "too many requests in flight (limit %u)",
                 s->srv->opts.max_inflight);
        send_error(s->conn, f->id, SPRIG_EBUSY, msg);
        return NULL;
    }
    sprig__job *j = sprig__calloc(1, sizeof *j);
    if (!j || (with_payload &&
               sprig_buf_append(&j->in, f->payload.data, f->payload.len))) {
        sprig__free(j);
        send_error(s->conn, f->id, SPRIG_ENOMEM, "out of memory");
        return NULL;
    }
    j->sess = s;
    j->route = rt;
    j->id = f->id;
    j->who = sprig_identity_ref(who);
    s->inflight++;
    s->refs++;
    s->srv->jobs_in_flight++;
    return j;
}

/* Make the request a job for `pool`; errors are answered. */
static void
to_worker(sprig__session *s, const sprig__route *rt, const sprig__frame *f,
          bool authorised, sprig_identity *who)
{
    sprig__job *j = new_job(s, rt, f, true, who);
    if (j) {
        j->authorised = authorised;
        j->lane = rt->api.access == SPRIG__WRITE;
        s->lane_busy |= j->lane;
        if (sprig__pool_push_request(&s->srv->pool, j)) {
            sprig__pool_watch(s->srv);
        }
    }
}

/* A SUBMIT row: run the path here with the request's job; the handler
 * submits its command (the engine's thread finishes the job), answers at
 * once (an error), or asks for a worker to open the database. */
static void
run_submit(sprig__session *s, const sprig__route *rt, const sprig__frame *f,
           sprig_identity *who)
{
    sprig__job *j = new_job(s, rt, f, false, who);
    if (!j) {
        return;
    }
    sprig__call c = {s->srv, s, rt, f->id, true, j};
    c.who = who;
    bool authorised = false;
    int rc = sprig__request_run(&c, f->payload, &authorised, &j->out);
    if (rc == SPRIG__EASYNC) {
        return;
    }
    if (rc == SPRIG__EMISS) {
        j->authorised = authorised;
        if (sprig_buf_append(&j->in, f->payload.data, f->payload.len) == 0) {
            j->lane = true; /* a SUBMIT row writes */
            s->lane_busy = true;
            if (sprig__pool_push_request(&s->srv->pool, j)) {
                sprig__pool_watch(s->srv);
            }
            return;
        }
        sprig__error_frame(&j->out, f->id, SPRIG_ENOMEM, "out of memory",
                           (sprig_bytes){NULL, 0});
    }
    sprig__session_job_done(j); /* answered here */
}

/* The identity request `f` runs as (borrowed from the session); false
 * with the error answered when the frame names a session this
 * connection does not have. */
static bool
who_of(sprig__session *s, const sprig__frame *f, sprig_identity **who)
{
    if (sprig__auth_who(s, f->has_session, f->session, who)) {
        return true;
    }
    char msg[128];
    snprintf(msg, sizeof msg,
             "request %u names session %llu, which this connection "
             "does not have",
             f->id, (unsigned long long)f->session);
    send_error(s->conn, f->id, SPRIG_EPROTO, msg);
    return false;
}

/* Run a request where its row says, as `who`. */
static void
dispatch(sprig__session *s, const sprig__route *rt, const sprig__frame *f,
         sprig_identity *who)
{
    bool authorised = false;
    s->requests++;
    switch (rt->api.where) {
    case SPRIG__RUN_LOOP: run_here(s, rt, f, &authorised, who); return;
    case SPRIG__RUN_CACHED_READ:
        if (!run_here(s, rt, f, &authorised, who)) {
            to_worker(s, rt, f, authorised, who);
        }
        return;
    case SPRIG__RUN_SUBMIT: run_submit(s, rt, f, who); return;
    case SPRIG__RUN_WORKER:
    default: to_worker(s, rt, f, false, who); return;
    }
}

/* Keep a write for later, behind the one holding the lane; errors are
 * answered (as many may wait as may be in flight). */
static void
park(sprig__session *s, const sprig__frame *f, const uint8_t *data, size_t len)
{
    if (s->inflight + s->n_parked >= s->srv->opts.max_inflight) {
        char msg[96];
        snprintf(msg, sizeof msg, "too many requests in flight (limit %u)",
                 s->srv->opts.max_inflight);
        send_error(s->conn, f->id, SPRIG_EBUSY, msg);
        return;
    }
    sprig__parked *p = sprig__malloc(sizeof *p + len);
    if (!p) {
        send_error(s->conn, f->id, SPRIG_ENOMEM, "out of memory");
        return;
    }
    p->next = NULL;
    p->len = len;
    memcpy(p->data, data, len);
    if (s->parked_tail) {
        s->parked_tail->next = p;
    } else {
        s->parked = p;
    }
    s->parked_tail = p;
    s->n_parked++;
}

/* Run parked writes, in order, until one takes the lane again. */
static void
unpark(sprig__session *s)
{
    while (s->parked && !s->lane_busy && s->conn) {
        sprig__parked *p = s->parked;
        s->parked = p->next;
        if (!s->parked) {
            s->parked_tail = NULL;
        }
        s->n_parked--;
        sprig__frame f;
        if (sprig__frame_decode((sprig_bytes){p->data, p->len}, &f) == 0) {
            const sprig__route *rt = route_of(s, &f);
            sprig_identity *who = NULL;
            if (rt && who_of(s, &f, &who)) {
                dispatch(s, rt, &f, who);
            }
        }
        sprig__free(p);
    }
}

void
sprig__session_on_message(sprig__conn *c, const uint8_t *data, size_t len,
                          void *udata)
{
    sprig__session *s = udata;
    sprig__frame f;
    if (sprig__frame_decode((sprig_bytes){data, len}, &f) != 0) {
        send_error(c, f.id, SPRIG_EPROTO,
                   sprig_errmsg()); /* 0 unless refused for its session */
        return;
    }
    const sprig__route *rt = route_of(s, &f);
    sprig_identity *who = NULL;
    if (!rt) {
        return;
    }
    if (!who_of(s, &f, &who)) {
        return;
    }
    if (rt->api.access == SPRIG__WRITE && (s->lane_busy || s->parked)) {
        park(s, &f, data, len);
        return;
    }
    dispatch(s, rt, &f, who);
}

void
sprig__session_on_close(sprig__conn *c, int code, const char *reason,
                        void *udata)
{
    (void)c;
    (void)code;
    (void)reason;
    sprig__session *s = udata;
    if (!s || s->tag != SPRIG__TAG_SESSION) {
        return; /* closed before it opened: no session */
    }
    sprig_server *srv = s->srv;
    s->conn = NULL;
    sprig__pubsub_close_all(s);
    sprig__changes_close_all(s);
    sprig__plat_disconnected(s); /* hooks: session_ended..., disconnected */
    sprig__auth_session_closed(s);
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        srv->sessions = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    unref(s);
}

void
sprig__session_on_writable(sprig__conn *c, void *udata)
{
    sprig__session *s = udata;
    (void)c;
    if (s && s->tag == SPRIG__TAG_SESSION) {
        sprig__pubsub_resume(s);
        sprig__changes_resume(s);
    }
}

void
sprig__session_job_done(sprig__job *job)
{
    sprig__session *s = job->sess;
    s->inflight--;
    s->srv->jobs_in_flight--;
    if (job->on_loop) {
        job->on_loop(job); /* e.g. attach a new subscriber */
    }
    if (s->conn && job->out.len) {
        sprig__conn_send(s->conn, job->out.data, job->out.len);
    }
    if (job->lane) {
        s->lane_busy = false;
        unpark(s);
    }
    if (s->subs) {
        sprig__pubsub_resume(s);
        sprig__changes_resume(s);
    }
    unref(s);
    sprig_identity_release(job->who);
    sprig_buf_clear(&job->in);
    sprig_buf_clear(&job->out);
    sprig__free(job);
}

void
sprig__session_close_all(sprig_server *srv)
{
    for (sprig__session *s = srv->sessions; s; s = s->next) {
        if (s->conn) {
            sprig__conn_close(s->conn, SPRIG_CLOSE_GOING_AWAY,
                              "the server is shutting down");
        }
    }
}
