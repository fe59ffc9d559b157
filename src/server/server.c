/*
 * server.c -- a Sprig server's lifecycle.
 *
 * A server serves a storage it opened (sprig_server_new) or one it
 * borrows (sprig_server_new_for), through the storage's public ops only.
 * States: NEW -> RUNNING (sprig_server_start/run: loop, workers, listener)
 * -> STOPPING (sprig_server_shutdown: the listener closes, new requests
 * are refused, requests in flight finish and are answered -- for up to
 * the grace period -- then every client is told 1001) -> STOPPED (the
 * loop has no handles left and returned).  The loop thread is either a thread
 * of our own (start) or the caller's (run).  Other threads reach the loop only
 * through the two async handles: `done_async` (workers finished jobs) and
 * `stop_async`.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>

static void close_listener(sprig_server *srv);

void
sprig_server_options_init(sprig_server_options *o)
{
    memset(o, 0, sizeof *o);
    o->ws_listen = "127.0.0.1:5646";
    o->max_frame = 16u << 20;
    o->max_inflight = 256;
    o->max_connections = 1024;
    o->max_send_queue = 16u << 20;
    o->ping_interval_ms = 30000;
    o->idle_timeout_ms = 90000;
    o->workers = 16;
    o->max_connections_per_address = 64;
    o->auth_timeout_ms = 10000;
}

/* Split "host:port" (IPv6 as "[::1]:port"). */
static int
parse_listen(const char *s, char **host, int *port)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == s || *end || p < 0 || p > 65535) {
        return sprig__err(SPRIG_EINVAL,
                          "listen address '%s' is not "
                          "host:port",
                          s);
    }
    const char *h = s;
    size_t n = (size_t)(colon - s);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    *host = sprig__malloc(n + 1);
    if (!*host) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    memcpy(*host, h, n);
    (*host)[n] = 0;
    *port = (int)p;
    return SPRIG_OK;
}

/* A server over `st` (not yet set), with its options and registry. */
static int
server_make(const sprig_server_options *o, sprig_server **out)
{
    sprig_server_options defaults;
    sprig_server_options_init(&defaults);
    if (!o) {
        o = &defaults;
    }
    if (!o->tls_cert_file != !o->tls_key_file ||
        !o->quic_cert_file != !o->quic_key_file) {
        return sprig__err(SPRIG_EINVAL, "TLS needs both a certificate and "
                                        "a key file");
    }
    if (o->quic_listen && !o->tls_cert_file && !o->quic_cert_file) {
        return sprig__err(SPRIG_EINVAL,
                          "QUIC needs a certificate (quic_cert_file or "
                          "tls_cert_file; sprig_cert_ensure() makes one)");
    }
    sprig_server *srv = sprig__calloc(1, sizeof *srv);
    if (!srv) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    srv->tag = SPRIG__TAG_SERVER;
    srv->opts = *o;
    srv->ws_port = -1;
    if (!srv->opts.workers) {
        srv->opts.workers = defaults.workers;
    }
    if (!srv->opts.max_inflight) {
        srv->opts.max_inflight = defaults.max_inflight;
    }
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->cond, NULL);
    pthread_cond_init(&srv->sub_cond, NULL);
    pthread_mutex_init(&srv->dbs.lock, NULL);
    int rc = sprig__registry_init(&srv->reg);
    rc = rc ? rc
         : o->ws_listen
             ? parse_listen(o->ws_listen, &srv->ws_host, &srv->ws_port)
             : 0;
    srv->quic_port = -1;
    rc = rc ? rc
         : o->quic_listen
             ? parse_listen(o->quic_listen, &srv->quic_host, &srv->quic_port)
             : 0;
    *out = srv; /* freed by the caller on failure */
    return rc;
}

/* The server has its storage. */
static void
server_set_storage(sprig_server *srv, sprig_storage *st, bool owns)
{
    srv->st = st;
    srv->owns_st = owns;
}

int
sprig_server_new(const sprig_storage_options *so, const sprig_server_options *o,
                 sprig_server **out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "out is NULL");
    }
    *out = NULL;
    sprig_server *srv = NULL;
    sprig_storage *st = NULL;
    int rc = server_make(o, &srv);
    rc = rc ? rc : sprig_storage_open(so, &st);
    if (rc) {
        sprig_server_free(srv);
        return rc;
    }
    server_set_storage(srv, st, true);
    rc = sprig__auth_server_open(srv);
    if (rc) {
        sprig_server_free(srv);
        return rc;
    }
    *out = srv;
    return SPRIG_OK;
}

int
sprig_server_new_for(sprig_storage *st, const sprig_server_options *o,
                     sprig_server **out)
{
    if (!out || !st) {
        return sprig__err(SPRIG_EINVAL, "storage or out is NULL");
    }
    *out = NULL;
    sprig_server *srv = NULL;
    int rc = server_make(o, &srv);
    if (rc) {
        sprig_server_free(srv);
        return rc;
    }
    server_set_storage(srv, st, false);
    rc = sprig__auth_server_open(srv);
    if (rc) {
        sprig_server_free(srv);
        return rc;
    }
    *out = srv;
    return SPRIG_OK;
}

sprig_storage *
sprig_server_storage(sprig_server *srv)
{
    return srv ? srv->st : NULL;
}

int
sprig_server_ws_port(const sprig_server *srv)
{
    return srv && srv->ws ? sprig__listener_port(srv->ws) : -1;
}

int
sprig_server_quic_port(const sprig_server *srv)
{
    return srv && srv->quic ? sprig__listener_port(srv->quic) : -1;
}

static void
close_cb(uv_handle_t *h)
{
    (void)h;
}

/* Tell every client goodbye (once): after the answers in flight went out,
 * or when the grace period ran out. */
static void
close_sessions(sprig_server *srv)
{
    if (!srv->sessions_closed) {
        srv->sessions_closed = true;
        uv_timer_stop(&srv->grace_timer);
        uv_close((uv_handle_t *)&srv->grace_timer, close_cb);
        uv_close((uv_handle_t *)&srv->rescue_timer, close_cb);
        sprig__auth_timer_close(srv);
        sprig__session_close_all(srv);
    }
}

/* While stopping: once nothing is left to answer, say goodbye and close
 * the loop's own handles (the loop then ends when the connections have). */
static void
maybe_finish(sprig_server *srv)
{
    if (srv->state != SRV_STOPPING || srv->jobs_in_flight != 0) {
        return;
    }
    close_sessions(srv);
    pthread_mutex_lock(&srv->lock);
    if (!uv_is_closing((uv_handle_t *)&srv->done_async)) {
        uv_close((uv_handle_t *)&srv->done_async, close_cb);
        uv_close((uv_handle_t *)&srv->stop_async, close_cb);
        srv->done_closed = true;
    }
    pthread_mutex_unlock(&srv->lock);
}

static void
on_rescue(uv_timer_t *t)
{
    sprig_server *srv = t->data;
    if (!sprig__pool_rescue(&srv->pool)) {
        uv_timer_stop(t); /* nothing waits, or no worker sleeps */
    }
}

void
sprig__pool_watch(sprig_server *srv)
{
    if (!uv_is_active((uv_handle_t *)&srv->rescue_timer) &&
        !uv_is_closing((uv_handle_t *)&srv->rescue_timer)) {
        uv_timer_start(&srv->rescue_timer, on_rescue, SPRIG__POOL_RESCUE_MS,
                       SPRIG__POOL_RESCUE_MS);
    }
}

static void
on_grace_over(uv_timer_t *t)
{
    close_sessions(t->data); /* answers still in flight are dropped */
}

static void
on_done(uv_async_t *a)
{
    sprig_server *srv = a->data;
    pthread_mutex_lock(&srv->lock);
    sprig__job *j = srv->done_head;
    srv->done_head = srv->done_tail = NULL;
    pthread_mutex_unlock(&srv->lock);
    while (j) {
        sprig__job *next = j->next;
        if (j->sess) {
            sprig__session_job_done(j);
        } else {
            sprig__plat_loop_job(j); /* a push, listing or adoption */
        }
        j = next;
    }
    maybe_finish(srv);
}

static void
on_stop(uv_async_t *a)
{
    sprig_server *srv = a->data;
    pthread_mutex_lock(&srv->lock);
    srv->state = SRV_STOPPING;
    pthread_mutex_unlock(&srv->lock);
    close_listener(srv);
    uv_timer_start(&srv->grace_timer, on_grace_over,
                   srv->grace_ms > 0 ? (uint64_t)srv->grace_ms : 0, 0);
    maybe_finish(srv);
}

/* The listener goes under the lock: sprig_server_connections() reads it
 * from other threads. */
static void
close_listener(sprig_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    sprig__listener *l = srv->ws, *q = srv->quic;
    srv->ws = srv->quic = NULL;
    pthread_mutex_unlock(&srv->lock);
    sprig__listener_close(l);
    sprig__listener_close(q);
}

int
sprig_server_connections(sprig_server *srv, sprig_conn_info *out, size_t cap,
                         size_t *n)
{
    if (!srv || !n || (cap && !out)) {
        return sprig__err(SPRIG_EINVAL, "server, n (and out when cap > 0) "
                                        "are needed");
    }
    pthread_mutex_lock(&srv->lock);
    *n = srv->ws ? sprig__listener_conns(srv->ws, out, cap) : 0;
    if (srv->quic) { /* QUIC connections after the WebSocket ones */
        size_t used = *n < cap ? *n : cap;
        *n += sprig__listener_conns(srv->quic, out ? out + used : NULL,
                                    cap - used);
    }
    pthread_mutex_unlock(&srv->lock);
    return SPRIG_OK;
}

/* The transport options both listeners share. */
static void
listen_opts(sprig_server *srv, sprig__tran_opts *wo)
{
    sprig__tran_opts_init(wo);
    wo->max_message = srv->opts.max_frame;
    wo->max_connections = srv->opts.max_connections;
    if (srv->opts.max_send_queue) {
        wo->max_send_queue = srv->opts.max_send_queue;
    }
    wo->ping_interval_ms = srv->opts.ping_interval_ms;
    wo->idle_timeout_ms = srv->opts.idle_timeout_ms;
    wo->close_timeout_ms = 2000;
}

static const sprig__conn_cbs session_cbs = {
    .on_open = sprig__session_on_open,
    .on_message = sprig__session_on_message,
    .on_close = sprig__session_on_close,
    .on_writable = sprig__session_on_writable,
};

/* QUIC (issue 11): always TLS, with the QUIC certificate or the
 * WebSocket listener's. */
static int
listen_quic(sprig_server *srv)
{
    sprig__tran_opts wo;
    listen_opts(srv, &wo);
    wo.tls_cert_file = srv->opts.quic_cert_file ? srv->opts.quic_cert_file
                                                : srv->opts.tls_cert_file;
    wo.tls_key_file = srv->opts.quic_cert_file ? srv->opts.quic_key_file
                                               : srv->opts.tls_key_file;
    sprig__listener *l = NULL;
    int rc = sprig__tran_listen(&srv->loop, "quic", srv->quic_host,
                                srv->quic_port, &wo, &session_cbs, srv, &l);
    pthread_mutex_lock(&srv->lock);
    srv->quic = l;
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

static int
listen_ws(sprig_server *srv)
{
    sprig__tran_opts wo;
    sprig__tran_opts_init(&wo);
    wo.max_message = srv->opts.max_frame;
    wo.max_connections = srv->opts.max_connections;
    if (srv->opts.max_send_queue) {
        wo.max_send_queue = srv->opts.max_send_queue;
    }
    wo.ping_interval_ms = srv->opts.ping_interval_ms;
    wo.idle_timeout_ms = srv->opts.idle_timeout_ms;
    wo.tls_cert_file = srv->opts.tls_cert_file;
    wo.tls_key_file = srv->opts.tls_key_file;
    wo.allowed_origins = srv->opts.allowed_origins;
    wo.close_timeout_ms = 2000;
    wo.status_body =
        "Sprig " SPRIG_VERSION_STRING ": ok\nprotocol " SPRIG_SUBPROTOCOL "\n";
    wo.http_get = sprig__server_http_get;
    wo.http_udata = srv;
    static const sprig__conn_cbs cbs = {
        .on_open = sprig__session_on_open,
        .on_message = sprig__session_on_message,
        .on_close = sprig__session_on_close,
        .on_writable = sprig__session_on_writable,
    };
    const char *scheme = wo.tls_cert_file ? "wss" : "ws";
    sprig__listener *l = NULL;
    int rc = sprig__tran_listen(&srv->loop, scheme, srv->ws_host, srv->ws_port,
                                &wo, &cbs, srv, &l);
    pthread_mutex_lock(&srv->lock);
    srv->ws = l;
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

/* Set up the loop, workers and listener on the calling thread. */
static int
setup(sprig_server *srv)
{
    int rc = uv_loop_init(&srv->loop);
    if (rc) {
        return sprig__err(SPRIG_EIO, "cannot make an event loop: %s",
                          uv_strerror(rc));
    }
    srv->loop_ready = true;
    srv->loop_tid = pthread_self();
    srv->loop_tid_set = true;
    srv->started_ns = uv_hrtime();
    uv_async_init(&srv->loop, &srv->done_async, on_done);
    uv_async_init(&srv->loop, &srv->stop_async, on_stop);
    uv_timer_init(&srv->loop, &srv->grace_timer);
    uv_timer_init(&srv->loop, &srv->rescue_timer);
    uv_unref((uv_handle_t *)&srv->rescue_timer); /* keeps no loop alive */
    srv->rescue_timer.data = srv;
    srv->done_async.data = srv->stop_async.data = srv;
    srv->grace_timer.data = srv;
    sprig__auth_timer_start(srv);
    rc = sprig__pool_start(&srv->pool, srv->opts.workers, sprig__dispatch, srv);
    rc = rc ? rc : (srv->ws_host ? listen_ws(srv) : 0);
    rc = rc ? rc : (srv->quic_host ? listen_quic(srv) : 0);
    return rc;
}

/* Undo setup after the loop returned (or setup failed). */
static void
teardown(sprig_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    if (!uv_is_closing((uv_handle_t *)&srv->done_async)) {
        uv_close((uv_handle_t *)&srv->done_async, close_cb);
        uv_close((uv_handle_t *)&srv->stop_async, close_cb);
    }
    srv->done_closed = true;
    pthread_mutex_unlock(&srv->lock);
    if (!uv_is_closing((uv_handle_t *)&srv->grace_timer)) {
        uv_close((uv_handle_t *)&srv->grace_timer, close_cb);
        uv_close((uv_handle_t *)&srv->rescue_timer, close_cb);
    }
    sprig__auth_timer_close(srv);
    close_listener(srv);
    uv_run(&srv->loop, UV_RUN_DEFAULT); /* let close callbacks run */
    sprig__plat_teardown(srv);          /* a worker may wait for a listing */
    sprig__pool_stop(&srv->pool);
    sprig__submit_drain(srv); /* their jobs join the done queue */
    for (sprig__job *j = srv->done_head, *n; j; j = n) {
        n = j->next;
        if (j->sess) {
            sprig__session_job_done(j); /* sessions are closed: just frees */
        } else {
            sprig__plat_loop_job(j);
        }
    }
    srv->done_head = srv->done_tail = NULL;
    uv_loop_close(&srv->loop);
    srv->loop_ready = false;
}

/* Report the start result to whoever waits in sprig_server_start. */
static void
announce(sprig_server *srv, int rc)
{
    pthread_mutex_lock(&srv->lock);
    srv->start_rc = rc;
    snprintf(srv->start_msg, sizeof srv->start_msg, "%s", sprig_errmsg());
    srv->state = rc ? SRV_STOPPED : SRV_RUNNING;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

static int
serve(sprig_server *srv)
{
    int rc = setup(srv);
    announce(srv, rc);
    if (rc == 0) {
        uv_run(&srv->loop, UV_RUN_DEFAULT);
    }
    teardown(srv);
    pthread_mutex_lock(&srv->lock);
    srv->state = SRV_STOPPED;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

static void *
serve_thread(void *arg)
{
    serve(arg);
    return NULL;
}

static int
claim(sprig_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    bool fresh = srv->state == SRV_NEW;
    if (fresh) {
        srv->state = SRV_STOPPED; /* until announce() */
        srv->start_rc = 1;        /* pending */
    }
    pthread_mutex_unlock(&srv->lock);
    return fresh ? 0
                 : sprig__err(SPRIG_EBUSY, "the server was started "
                                           "already");
}

int
sprig_server_start(sprig_server *srv)
{
    int rc = srv ? claim(srv) : sprig__err(SPRIG_EINVAL, "server is NULL");
    if (rc) {
        return rc;
    }
    if (pthread_create(&srv->thread, NULL, serve_thread, srv) != 0) {
        return sprig__err(SPRIG_ENOMEM, "cannot start the server thread");
    }
    srv->threaded = true;
    pthread_mutex_lock(&srv->lock);
    while (srv->start_rc == 1) {
        pthread_cond_wait(&srv->cond, &srv->lock);
    }
    rc = srv->start_rc;
    pthread_mutex_unlock(&srv->lock);
    return rc ? sprig__err(rc, "%s", srv->start_msg) : SPRIG_OK;
}

int
sprig_server_run(sprig_server *srv)
{
    int rc = srv ? claim(srv) : sprig__err(SPRIG_EINVAL, "server is NULL");
    return rc ? rc : serve(srv);
}

int
sprig_server_shutdown(sprig_server *srv, int grace_ms)
{
    if (!srv) {
        return SPRIG_OK;
    }
    pthread_mutex_lock(&srv->lock);
    srv->grace_ms = grace_ms;
    if (srv->state == SRV_RUNNING &&
        !uv_is_closing((uv_handle_t *)&srv->stop_async)) {
        uv_async_send(&srv->stop_async);
    }
    pthread_mutex_unlock(&srv->lock);
    return SPRIG_OK;
}

void
sprig_server_free(sprig_server *srv)
{
    if (!srv) {
        return;
    }
    if (srv->threaded) {
        sprig_server_shutdown(srv, 1000);
        pthread_join(srv->thread, NULL);
    }
    sprig__db_cache_clear(srv); /* no request is in flight any more */
    sprig__auth_server_free(srv);
    if (srv->owns_st) {
        sprig_storage_close(srv->st);
    }
    sprig__registry_free(&srv->reg);
    sprig__api_rows_free(srv);
    sprig__free(srv->ws_host);
    sprig__free(srv->quic_host);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->cond);
    pthread_cond_destroy(&srv->sub_cond);
    pthread_mutex_destroy(&srv->dbs.lock);
    sprig__free(srv);
}
