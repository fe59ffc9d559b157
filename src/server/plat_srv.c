/*
 * plat_srv.c -- the API platform's server side beyond custom rows (src/
 * server; issue 12): pushes to clients, the backend hooks, the listing of
 * connected clients, and the HTTP hand-over of a WebSocket connection.
 *
 * Everything that touches sessions runs on the loop thread, which owns
 * them.  A call from another thread becomes a job with no session that
 * goes through the done queue -- the same FIFO as the answers of workers
 * and of asynchronous custom APIs -- so a push that a handler sends before
 * it answers reaches the client before that answer.  On the loop thread
 * itself (a loop handler, a hook) the work is done at once.  The loop
 * runs such a job with sprig__plat_loop_job() (teardown too, when the
 * loop has ended: sessions are gone, so a push reaches nobody, a listing
 * is empty and an adopted socket is closed).
 */
#include "server/server_int.h"

#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

#define REFUSED_CODE SPRIG__CLOSE_REFUSED

static bool
on_loop_thread(const sprig_server *srv)
{
    return srv->loop_tid_set && pthread_equal(srv->loop_tid, pthread_self());
}

static bool
running(sprig_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    bool ok = srv->state == SRV_RUNNING;
    pthread_mutex_unlock(&srv->lock);
    return ok;
}

void
sprig__plat_loop_job(sprig__job *job)
{
    job->on_loop(job); /* it frees the job */
}

/* Hand `job` (no session, on_loop set) to the loop thread, or run it now
 * when this is the loop thread. */
static void
to_loop(sprig_server *srv, sprig__job *job)
{
    if (on_loop_thread(srv)) {
        job->on_loop(job);
    } else {
        sprig__job_finish(srv, job);
    }
}

/* ---- hooks (loop thread) ------------------------------------------------- */

int
sprig_server_set_hooks(sprig_server *srv, const sprig_server_hooks *h)
{
    if (!srv || !h) {
        return sprig__err(SPRIG_EINVAL, "set_hooks: NULL argument");
    }
    pthread_mutex_lock(&srv->lock);
    bool fresh = srv->state == SRV_NEW;
    if (fresh) {
        srv->hooks = *h;
    }
    pthread_mutex_unlock(&srv->lock);
    return fresh ? SPRIG_OK
                 : sprig__err(SPRIG_EBUSY, "hooks are set before the "
                                           "server starts");
}

static uint64_t
wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

bool
sprig__plat_connected(sprig__session *s)
{
    const sprig_server_hooks *h = &s->srv->hooks;
    s->wall_ms = wall_ms();
    char reason[124] = "";
    if (h->connected && h->connected(h->udata, &s->info, &s->user_data, reason,
                                     sizeof reason - 1) != 0) {
        reason[sizeof reason - 1] = 0;
        sprig__conn_close(s->conn, REFUSED_CODE,
                          reason[0] ? reason : "refused");
        return false;
    }
    s->accepted = true;
    return true;
}

void
sprig__plat_authenticated(sprig__session *s, uint64_t id, sprig_identity *who)
{
    const sprig_server_hooks *h = &s->srv->hooks;
    if (s->accepted && h->authenticated) {
        h->authenticated(h->udata, &s->info, s->user_data, id,
                         sprig_identity_name(who));
    }
}

void
sprig__plat_session_ended(sprig__session *s, uint64_t id, sprig_identity *who)
{
    const sprig_server_hooks *h = &s->srv->hooks;
    if (s->accepted && h->session_ended) {
        h->session_ended(h->udata, &s->info, s->user_data, id,
                         sprig_identity_name(who));
    }
}

void
sprig__plat_disconnected(sprig__session *s)
{
    const sprig_server_hooks *h = &s->srv->hooks;
    if (!s->accepted) {
        return; /* refused by the connected hook: it heard of it */
    }
    for (size_t i = 0; i < SPRIG__IDENTS; i++) {
        if (s->idents[i].id) {
            sprig__plat_session_ended(s, s->idents[i].id, s->idents[i].who);
        }
    }
    if (h->disconnected) {
        h->disconnected(h->udata, &s->info, s->user_data);
    }
    s->accepted = false;
}

/* ---- pushes -------------------------------------------------------------- */

typedef struct push {
    sprig_server *srv;
    sprig_push_to to;
    uint64_t client_id;
    char identity[]; /* SPRIG_PUSH_IDENTITY */
} push;

/* Does session `s` have a session of identity `name`? */
static bool
has_identity(const sprig__session *s, const char *name)
{
    for (size_t i = 0; i < SPRIG__IDENTS; i++) {
        sprig_identity *who = s->idents[i].who;
        if (s->idents[i].id && who &&
            strcmp(sprig_identity_name(who), name) == 0) {
            return true;
        }
    }
    return false;
}

static bool
push_matches(const push *p, const sprig__session *s)
{
    switch (p->to) {
    case SPRIG_PUSH_CLIENT: return s->info.id == p->client_id;
    case SPRIG_PUSH_IDENTITY: return has_identity(s, p->identity);
    case SPRIG_PUSH_ALL:
    default: return true;
    }
}

/* Loop thread: send the frame to every matching open connection. */
static void
push_deliver(sprig__job *job)
{
    push *p = job->attach;
    sprig_server *srv = p->srv;
    uint64_t sent = 0;
    for (sprig__session *s = srv->sessions; s; s = s->next) {
        if (s->conn && s->accepted && push_matches(p, s)) {
            sprig__conn_send(s->conn, job->out.data, job->out.len);
            sent++;
        }
    }
    atomic_fetch_add(&srv->push_sent, sent);
    if (sent == 0) {
        atomic_fetch_add(&srv->push_unmatched, 1);
    }
    sprig_buf_clear(&job->out);
    sprig__free(p);
    sprig__free(job);
}

static int
push_check(sprig_server *srv, const sprig_push_target *t, const char *api,
           const void *data, size_t len)
{
    if (!srv || !t || (len && !data) ||
        (unsigned)t->to > (unsigned)SPRIG_PUSH_ALL ||
        (t->to == SPRIG_PUSH_IDENTITY && !t->identity)) {
        return sprig__err(SPRIG_EINVAL, "push: NULL or malformed argument");
    }
    int rc = sprig__api_name_check(api, "push name");
    if (rc == 0 && !running(srv)) {
        rc = sprig__err(SPRIG_ECLOSED, "push: the server is not running");
    }
    return rc;
}

/* The frame [3, api, {"data": bin}] into `out`. */
static int
push_encode(sprig_buf *out, const char *api, const void *data, size_t len)
{
    sprig__custom_req p = {{data, len}, true};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, out);
    sprig__frame_push(&w, api);
    int rc = sprig__api_encode(&w, sprig__api_custom.req,
                               sprig__api_custom.n_req, &p);
    return rc || sprig__mp_wr_status(&w)
               ? sprig__err(SPRIG_ENOMEM, "out of memory")
               : SPRIG_OK;
}

int
sprig_server_push(sprig_server *srv, const sprig_push_target *t,
                  const char *api, const void *data, size_t len)
{
    int rc = push_check(srv, t, api, data, len);
    if (rc) {
        return rc;
    }
    size_t idn = t->to == SPRIG_PUSH_IDENTITY ? strlen(t->identity) + 1 : 1;
    sprig__job *job = sprig__calloc(1, sizeof *job);
    push *p = sprig__calloc(1, sizeof *p + idn);
    if (!job || !p || push_encode(&job->out, api, data, len)) {
        sprig_buf_clear(job ? &job->out : &(sprig_buf){0});
        sprig__free(job);
        sprig__free(p);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    p->srv = srv;
    p->to = t->to;
    p->client_id = t->client_id;
    memcpy(p->identity, t->to == SPRIG_PUSH_IDENTITY ? t->identity : "", idn);
    job->attach = p;
    job->on_loop = push_deliver;
    atomic_fetch_add(&srv->push_queued, 1);
    to_loop(srv, job);
    return SPRIG_OK;
}

int
sprig_server_push_stats(sprig_server *srv, sprig_push_stats *out)
{
    if (!srv || !out) {
        return sprig__err(SPRIG_EINVAL, "push_stats: NULL argument");
    }
    out->queued = atomic_load(&srv->push_queued);
    out->sent = atomic_load(&srv->push_sent);
    out->unmatched = atomic_load(&srv->push_unmatched);
    return SPRIG_OK;
}

/* ---- connected clients --------------------------------------------------- */

typedef struct listing {
    sprig_server *srv;
    sprig_server_client_info *out;
    size_t cap, n;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} listing;

static void
client_info(const sprig__session *s, sprig_server_client_info *o)
{
    memset(o, 0, sizeof *o);
    o->id = s->info.id;
    snprintf(o->peer, sizeof o->peer, "%s", s->peer);
    snprintf(o->transport, sizeof o->transport, "%s", s->transport);
    o->connected_ms = s->wall_ms;
    o->requests = s->requests;
    for (size_t i = 0; i < SPRIG__IDENTS; i++) {
        const sprig__ident *id = &s->idents[i];
        o->sessions += id->id != 0;
        if (id->id && id->id == s->default_ident && id->who) {
            snprintf(o->identity, sizeof o->identity, "%s",
                     sprig_identity_name(id->who));
        }
    }
}

/* Loop thread: fill the listing, oldest first (the list is newest
 * first). */
static void
list_collect(listing *l)
{
    sprig__session *last = NULL;
    l->n = 0;
    for (sprig__session *s = l->srv->sessions; s; s = s->next) {
        last = s;
    }
    for (sprig__session *s = last; s; s = s->prev) {
        if (s->conn && s->accepted) {
            if (l->n < l->cap) {
                client_info(s, &l->out[l->n]);
            }
            l->n++;
        }
    }
}

static void
list_job(sprig__job *job)
{
    listing *l = job->attach;
    list_collect(l);
    sprig__free(job);
    pthread_mutex_lock(&l->lock);
    l->done = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* Queue a listing job for the loop -- unless the done queue is closed
 * (stopping): false.  A queued one is run by the loop, or by teardown
 * before it joins the workers (sprig__plat_teardown), since a worker may
 * be the one waiting for it. */
static bool
list_enqueue(sprig_server *srv, sprig__job *job)
{
    pthread_mutex_lock(&srv->lock);
    bool open = !srv->done_closed;
    if (open) {
        if (srv->done_tail) {
            srv->done_tail->next = job;
        } else {
            srv->done_head = job;
        }
        srv->done_tail = job;
        uv_async_send(&srv->done_async);
    }
    pthread_mutex_unlock(&srv->lock);
    return open;
}

void
sprig__plat_teardown(sprig_server *srv)
{
    sprig__job *mine = NULL, **at = &mine;
    pthread_mutex_lock(&srv->lock);
    sprig__job **p = &srv->done_head;
    srv->done_tail = NULL;
    while (*p) {
        sprig__job *j = *p;
        if (!j->sess && j->on_loop == list_job) {
            *p = j->next; /* take it out */
            j->next = NULL;
            *at = j;
            at = &j->next;
        } else {
            srv->done_tail = j;
            p = &j->next;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    for (sprig__job *j = mine, *n; j; j = n) {
        n = j->next;
        list_job(j); /* sessions are gone: an empty listing */
    }
}

int
sprig_server_connected_clients(sprig_server *srv, sprig_server_client_info *out,
                               size_t cap, size_t *n)
{
    if (!srv || !n || (cap && !out)) {
        return sprig__err(SPRIG_EINVAL, "server, n (and out when cap > 0) "
                                        "are needed");
    }
    listing l = {
        srv,  out, cap, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
        false};
    *n = 0;
    if (on_loop_thread(srv)) {
        list_collect(&l);
        *n = l.n;
        return SPRIG_OK;
    }
    sprig__job *job = running(srv) ? sprig__calloc(1, sizeof *job) : NULL;
    if (!job) {
        return SPRIG_OK; /* not running (or no memory): nobody listed */
    }
    job->attach = &l;
    job->on_loop = list_job;
    if (!list_enqueue(srv, job)) {
        sprig__free(job);
        return SPRIG_OK; /* stopping: nobody listed */
    }
    pthread_mutex_lock(&l.lock);
    while (!l.done) {
        pthread_cond_wait(&l.cond, &l.lock);
    }
    pthread_mutex_unlock(&l.lock);
    *n = l.n;
    return SPRIG_OK;
}

/* ---- HTTP hand-over ------------------------------------------------------ */

typedef struct adoption {
    sprig_server *srv;
    int fd;
    bool upgraded;
    size_t n;
    uint8_t bytes[];
} adoption;

/* Loop thread (or teardown): give the socket to the WebSocket listener,
 * which closes it on any error. */
static void
adopt_job(sprig__job *job)
{
    adoption *a = job->attach;
    sprig_server *srv = a->srv;
    pthread_mutex_lock(&srv->lock);
    sprig__listener *l = srv->ws;
    pthread_mutex_unlock(&srv->lock);
    if (l) {
        sprig__tran_adopt(l, a->fd, a->bytes, a->n, a->upgraded);
    } else {
        close(a->fd); /* stopped meanwhile */
    }
    sprig__free(a);
    sprig__free(job);
}

int
sprig_server_adopt_ws(sprig_server *srv, int fd, const void *already_read,
                      size_t n, bool upgraded)
{
    int rc = !srv || fd < 0 || (n && !already_read)
                 ? sprig__err(SPRIG_EINVAL, "adopt_ws: bad arguments")
             : !running(srv) ? sprig__err(SPRIG_ECLOSED, "adopt_ws: the server "
                                                         "is not running")
             : !srv->ws_host || srv->opts.tls_cert_file
                 ? sprig__err(SPRIG_EINVAL, "adopt_ws: the server has no "
                                            "plain (ws://) WebSocket listener")
                 : SPRIG_OK;
    sprig__job *job = rc ? NULL : sprig__calloc(1, sizeof *job);
    adoption *a = job ? sprig__calloc(1, sizeof *a + n) : NULL;
    if (!a) {
        sprig__free(job);
        if (fd >= 0) {
            close(fd);
        }
        return rc ? rc : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    a->srv = srv;
    a->fd = fd;
    a->upgraded = upgraded;
    a->n = n;
    if (n) {
        memcpy(a->bytes, already_read, n);
    }
    job->attach = a;
    job->on_loop = adopt_job;
    to_loop(srv, job);
    return SPRIG_OK;
}
