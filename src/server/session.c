/*
 * session.c -- one session per WebSocket connection (loop thread only).
 *
 * States of a session: OPEN (conn set) -> CLOSED (conn NULL, jobs may still
 * be in flight) -> freed (refs reached 0).  A frame becomes a job unless it
 * is malformed, not a request, names an unknown API, or the connection has
 * `max_inflight` requests in flight already: each of those is answered with
 * an error frame at once, and the connection stays open.  Reads that
 * never wait (sprig__dispatch_inline) are answered here at once instead.
 */
#include "server/server_int.h"

#include <stdio.h>

static void
unref(sprig__session *s)
{
    if (--s->refs == 0) {
        sprig__free(s);
    }
}

/* Send an error frame now (errors found on the loop thread). */
static void
send_error(sprig__conn *c, uint32_t id, int code, const char *msg)
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_error(&w, id, code, msg, (sprig_bytes){NULL, 0});
    if (sprig__mp_wr_status(&w) == 0) {
        sprig__conn_send(c, b.data, b.len);
    }
    sprig_buf_free(&b);
}

void
sprig__session_on_open(sprig__conn *c, void *udata)
{
    sprig_server *srv = udata;
    sprig__session *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        sprig__conn_close(c, SPRIG_WS_INTERNAL, "out of memory");
        return;
    }
    s->tag = SPRIG__TAG_SESSION;
    s->srv = srv;
    s->conn = c;
    s->refs = 1;
    s->next = srv->sessions;
    if (srv->sessions) {
        srv->sessions->prev = s;
    }
    srv->sessions = s;
    sprig__conn_set_udata(c, s);
}

/* Check a frame and make it a job; 0, or the error already answered. */
static int
admit(sprig__session *s, const sprig__frame *f, sprig__job **out)
{
    char msg[160];
    if (f->kind != SPRIG__FRAME_REQUEST) {
        send_error(s->conn, f->id, SPRIG_EPROTO, "a client sends requests");
        return SPRIG_EPROTO;
    }
    const sprig__api *api = sprig__api_find(f->api);
    if (!api) {
        snprintf(msg, sizeof msg, "unknown API '%.*s'",
                 (int)(f->api.len > 64 ? 64 : f->api.len),
                 (const char *)f->api.data);
        send_error(s->conn, f->id, SPRIG_EPROTO, msg);
        return SPRIG_EPROTO;
    }
    if (s->srv->state != SRV_RUNNING) {
        send_error(s->conn, f->id, SPRIG_ECLOSED, "the server is stopping");
        return SPRIG_ECLOSED;
    }
    if (s->inflight >= s->srv->opts.max_inflight) {
        snprintf(msg, sizeof msg, "too many requests in flight (limit %u)",
                 s->srv->opts.max_inflight);
        send_error(s->conn, f->id, SPRIG_EBUSY, msg);
        return SPRIG_EBUSY;
    }
    sprig__job *j = sprig__calloc(1, sizeof *j);
    if (!j || sprig_buf_append(&j->in, f->payload.data, f->payload.len)) {
        sprig__free(j);
        send_error(s->conn, f->id, SPRIG_ENOMEM, "out of memory");
        return SPRIG_ENOMEM;
    }
    j->sess = s;
    j->api = api;
    j->id = f->id;
    *out = j;
    return SPRIG_OK;
}

/* Answer a read on the loop thread if dispatch.c takes it; true if so. */
static bool
answer_now(sprig__session *s, const sprig__api *api, const sprig__frame *f)
{
    sprig_buf out = {0};
    if (!sprig__dispatch_inline(s->srv, api, f->id, f->payload, &out)) {
        return false;
    }
    if (out.len) {
        sprig__conn_send(s->conn, out.data, out.len);
    } else {
        send_error(s->conn, f->id, SPRIG_ENOMEM, "out of memory");
    }
    sprig_buf_free(&out);
    return true;
}

void
sprig__session_on_message(sprig__conn *c, const uint8_t *data, size_t len,
                          void *udata)
{
    sprig__session *s = udata;
    sprig__frame f;
    sprig__job *job;
    if (sprig__frame_decode((sprig_bytes){data, len}, &f) != 0) {
        send_error(c, f.id, SPRIG_EPROTO,
                   sprig_errmsg()); /* 0 unless refused for its session */
        return;
    }
    const sprig__api *api = sprig__api_find(f.api);
    if (f.kind == SPRIG__FRAME_REQUEST && api && sprig__pubsub_handles(api) &&
        s->srv->state == SRV_RUNNING) {
        sprig__pubsub_request(s, api, f.id, f.payload);
        return;
    }
    if (f.kind == SPRIG__FRAME_REQUEST && api && s->srv->state == SRV_RUNNING &&
        answer_now(s, api, &f)) {
        return;
    }
    if (admit(s, &f, &job) != 0) {
        return;
    }
    s->inflight++;
    s->refs++;
    s->srv->jobs_in_flight++;
    bool kv_write = api == &sprig__api_kv_set || api == &sprig__api_kv_incr ||
                    api == &sprig__api_kv_delete;
    sprig__pool_push(
        kv_write && s->srv->kv_lane ? &s->srv->lane : &s->srv->pool, job);
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
    }
}

void
sprig__session_job_done(sprig__job *job)
{
    sprig__session *s = job->sess;
    s->inflight--;
    s->srv->jobs_in_flight--;
    if (s->conn && job->out.len) {
        sprig__conn_send(s->conn, job->out.data, job->out.len);
    }
    unref(s);
    sprig_buf_free(&job->in);
    sprig_buf_free(&job->out);
    sprig__free(job);
}

void
sprig__session_close_all(sprig_server *srv)
{
    for (sprig__session *s = srv->sessions; s; s = s->next) {
        if (s->conn) {
            sprig__conn_close(s->conn, SPRIG_WS_GOING_AWAY,
                              "the server is shutting down");
        }
    }
}
