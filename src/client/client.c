/*
 * client.c -- the client's connection and calls (see client_int.h).
 *
 * Connection states: DOWN -> CONNECTING (a call, or sprig_client_connect,
 * wants the connection) -> OPEN (the upgrade finished: the outbox is sent)
 * -> DOWN again when it closes.  When a connection attempt fails, every
 * queued call fails with SPRIG_ECONNECT; when an open connection drops,
 * the calls sent on it fail with SPRIG_ECLOSED, and the next call starts
 * a new connection (options.reconnect), which logs in again with the
 * credentials of the last login before it sends anything else
 * (auth_client.c).  Given a list of nodes (cluster_client.c), a failed
 * attempt tries the next node until each was tried once, and a dropped
 * connection moves on to the next node; following a leader closes the
 * connection once its calls are answered ("switching") and reconnects.
 */
#include "client/client_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
sprig_client_options_init(sprig_client_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 5000;
    o->request_timeout_ms = 30000;
    o->reconnect = true;
    o->max_frame = 64u << 20;
}

/* ---- the loop thread ---------------------------------------------------- */

/* Finish a call (lock held) and wake its caller. */
static void
finish(sprig__call *call, int rc, const char *msg)
{
    call->rc = rc;
    call->done = true;
    if (msg) {
        snprintf(call->msg, sizeof call->msg, "%s", msg);
    }
    if (call->on_done) {
        call->on_done(call->owner, call); /* an internal call */
        return;
    }
    pthread_cond_signal(&call->cond);
}

/* Fail every call of a list (lock held). */
static void
fail_list(sprig__call **list, int rc, const char *msg)
{
    for (sprig__call *c = *list, *next; c; c = next) {
        next = c->next;
        c->next = NULL;
        finish(c, rc, msg);
    }
    *list = NULL;
}

/* Send the outbox (lock held, connection open). */
static void
flush_outbox(sprig_client *c)
{
    while (c->outbox && !c->switching) {
        sprig__call *call = c->outbox;
        c->outbox = call->next;
        call->next = c->waiting;
        c->waiting = call;
        if (sprig__conn_send(c->conn, call->frame.data, call->frame.len)) {
            break; /* the transport closes the connection: on_close fails it */
        }
    }
    if (!c->outbox) {
        c->outbox_tail = NULL;
    }
}

static void
on_open(sprig__conn *conn, void *udata)
{
    sprig_client *c = udata;
    pthread_mutex_lock(&c->lock);
    sprig__conn_info(conn, &c->info);
    c->state = CL_OPEN;
    c->connected_once = true;
    c->generation++;
    c->connect_rc = 0;
    c->tries = 0;
    pthread_cond_broadcast(&c->state_cond);
    if (c->switching) { /* opened to the old node: go to the leader */
        sprig__conn_close(conn, SPRIG_CLOSE_NORMAL, "following the leader");
    } else if (!sprig__client_reauth_begin(c)) {
        flush_outbox(c);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Take the waiting call with `id` out of the list (lock held). */
static sprig__call *
take_waiting(sprig_client *c, uint32_t id)
{
    for (sprig__call **p = &c->waiting; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            sprig__call *call = *p;
            *p = call->next;
            call->next = NULL;
            return call;
        }
    }
    return NULL; /* timed out and gone: the answer is dropped */
}

static void
on_message(sprig__conn *conn, const uint8_t *data, size_t len, void *udata)
{
    sprig_client *c = udata;
    sprig__frame f;
    if (sprig__frame_decode((sprig_bytes){data, len}, &f) != 0 ||
        f.kind == SPRIG__FRAME_REQUEST) {
        sprig__conn_close(conn, SPRIG_CLOSE_PROTOCOL, "malformed frame");
        return;
    }
    if (f.kind == SPRIG__FRAME_PUSH) {
        if (f.api.len == strlen(SPRIG__PUSH_MESSAGE) &&
            memcmp(f.api.data, SPRIG__PUSH_MESSAGE, f.api.len) == 0) {
            pthread_mutex_lock(&c->lock);
            sprig__client_push_message(c, f.payload);
            pthread_mutex_unlock(&c->lock);
        } else if (f.api.len == strlen(SPRIG__PUSH_CHANGES) &&
                   memcmp(f.api.data, SPRIG__PUSH_CHANGES, f.api.len) == 0) {
            pthread_mutex_lock(&c->lock);
            sprig__client_push_changes(c, f.payload);
            pthread_mutex_unlock(&c->lock);
        } else {
            sprig__client_push_custom(c, f.api, f.payload); /* its own lock */
        }
        return;
    }
    pthread_mutex_lock(&c->lock);
    sprig__call *call = take_waiting(c, f.id);
    if (call) {
        sprig_bytes body =
            f.kind == SPRIG__FRAME_RESPONSE ? f.payload : f.detail;
        int rc = sprig_buf_append(&call->answer, body.data, body.len);
        char msg[512];
        snprintf(msg, sizeof msg, "%.*s", (int)f.message.len,
                 (const char *)f.message.data);
        if (rc) {
            finish(call, SPRIG_ENOMEM, "out of memory reading an answer");
        } else {
            finish(call, f.kind == SPRIG__FRAME_RESPONSE ? 0 : f.code, msg);
        }
    }
    if (c->switching && !c->waiting && c->conn) { /* answered: follow */
        sprig__conn_close(conn, SPRIG_CLOSE_NORMAL, "following the leader");
    }
    pthread_mutex_unlock(&c->lock);
}

/* A connection attempt failed (lock held): true when another node is
 * being tried (the wake-up starts it), false when every node was tried. */
static bool
try_other_node(sprig_client *c)
{
    if (c->switching) { /* the attempt was to the node being left */
        c->switching = false;
    } else if (c->tries + 1 < c->n_urls) {
        c->tries++;
        sprig__client_next_node(c);
    } else {
        c->tries = 0;
        return false;
    }
    uv_async_send(&c->wake);
    return true;
}

/* Every node refused (lock held): fail what waits for a connection. */
static void
connect_failed(sprig_client *c, const char *why)
{
    char msg[512];
    if (c->n_urls > 1) {
        snprintf(msg, sizeof msg,
                 "cannot connect to any of the %zu nodes "
                 "(the last: %s)",
                 c->n_urls, why);
    } else {
        snprintf(msg, sizeof msg, "%s", why);
    }
    c->connect_rc = SPRIG_ECONNECT;
    snprintf(c->connect_msg, sizeof c->connect_msg, "%s", msg);
    fail_list(&c->waiting, SPRIG_ECONNECT, msg);
    fail_list(&c->outbox, SPRIG_ECONNECT, msg);
    c->outbox_tail = NULL;
}

static void
on_close(sprig__conn *conn, int code, const char *reason, void *udata)
{
    sprig_client *c = udata;
    char msg[400];
    (void)conn;
    pthread_mutex_lock(&c->lock);
    bool was_open = c->state == CL_OPEN;
    c->conn = NULL;
    c->state = CL_DOWN;
    if (was_open && code == SPRIG__CLOSE_REFUSED) { /* the connect hook */
        snprintf(msg, sizeof msg, "the server refused the connection: %s",
                 reason);
        fail_list(&c->waiting, SPRIG_EPERM, msg);
        sprig__client_subs_closed(c);
    } else if (was_open) {
        snprintf(msg, sizeof msg, "connection to %s closed (%d: %s)", c->url,
                 code, reason);
        fail_list(&c->waiting, SPRIG_ECLOSED, msg);
        sprig__client_subs_closed(c);
        sprig__client_watches_closed(c);
        if (!c->switching && c->n_urls > 1) {
            sprig__client_next_node(c); /* fail over */
        }
    } else {
        snprintf(msg, sizeof msg, "cannot connect to %s (%d: %s)", c->url, code,
                 reason);
        if (!try_other_node(c)) {
            connect_failed(c, msg);
        }
    }
    if (was_open) {
        c->switching = false;
    }
    if (c->outbox && !c->closing) {
        uv_async_send(&c->wake); /* calls queued meanwhile: reconnect */
    }
    pthread_cond_broadcast(&c->state_cond);
    pthread_mutex_unlock(&c->lock);
}

static const sprig__conn_cbs client_cbs = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

/* Start connecting (lock held, state DOWN). */
static void
start_connect(sprig_client *c)
{
    sprig__tran_opts wo;
    sprig__tran_opts_init(&wo);
    wo.connect_timeout_ms = c->opts.connect_timeout_ms;
    wo.tls_ca_file = c->opts.pinned_cert_path;
    wo.tls_pin_sha256 = c->opts.pinned_cert_sha256;
    wo.max_message = c->opts.max_frame;
    wo.close_timeout_ms = 1000;
    c->state = CL_CONNECTING;
    int rc =
        sprig__tran_connect(&c->loop, c->url, &wo, &client_cbs, c, &c->conn);
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot connect to %s: %s", c->url,
                 sprig_errmsg());
        c->state = CL_DOWN;
        if (!try_other_node(c)) {
            connect_failed(c, msg);
        }
        pthread_cond_broadcast(&c->state_cond);
    }
}

static void
close_cb(uv_handle_t *h)
{
    (void)h;
}

static void
on_wake(uv_async_t *a)
{
    sprig_client *c = a->data;
    pthread_mutex_lock(&c->lock);
    if (c->closing) {
        if (c->conn) {
            sprig__conn_close(c->conn, SPRIG_CLOSE_NORMAL, "client closing");
        }
        uv_close((uv_handle_t *)&c->wake, close_cb);
    } else if (c->state == CL_OPEN && c->switching) {
        if (!c->waiting) {
            sprig__conn_close(c->conn, SPRIG_CLOSE_NORMAL,
                              "following the leader");
        }
    } else if (c->state == CL_OPEN && !c->authing) {
        flush_outbox(c);
    } else if (c->state == CL_DOWN && (c->outbox || c->connect_rc == 1)) {
        start_connect(c);
    }
    pthread_mutex_unlock(&c->lock);
}

static void *
loop_thread(void *arg)
{
    sprig_client *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- calls (any thread) -------------------------------------------------- */

static void
deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Remove `call` from whichever list holds it (lock held). */
static void
withdraw(sprig_client *c, sprig__call *call)
{
    sprig__call **lists[2] = {&c->outbox, &c->waiting};
    for (int i = 0; i < 2; i++) {
        for (sprig__call **p = lists[i]; *p; p = &(*p)->next) {
            if (*p == call) {
                *p = call->next;
                break;
            }
        }
    }
    c->outbox_tail = NULL;
    for (sprig__call *p = c->outbox; p; p = p->next) {
        c->outbox_tail = p;
    }
}

/* Queue the call, wake the loop and wait for its end (lock held). */
static int
wait_call(sprig_client *c, sprig__call *call)
{
    if (c->closing) {
        return sprig__err(SPRIG_ECLOSED, "the client is closed");
    }
    if (c->state == CL_DOWN && !c->opts.reconnect && c->connected_once) {
        return sprig__err(SPRIG_ECLOSED, "the connection is closed");
    }
    if (c->outbox_tail) {
        c->outbox_tail->next = call;
    } else {
        c->outbox = call;
    }
    c->outbox_tail = call;
    uv_async_send(&c->wake);
    struct timespec ts;
    deadline(&ts, c->opts.request_timeout_ms);
    while (!call->done) {
        int w = c->opts.request_timeout_ms
                    ? pthread_cond_timedwait(&call->cond, &c->lock, &ts)
                    : pthread_cond_wait(&call->cond, &c->lock);
        if (w == ETIMEDOUT && !call->done) {
            withdraw(c, call);
            return sprig__err(SPRIG_ETIMEDOUT,
                              "no answer from %s within "
                              "%u ms",
                              c->url, c->opts.request_timeout_ms);
        }
    }
    return call->rc ? sprig__err(call->rc, "%s", call->msg) : SPRIG_OK;
}

static int
call_init(sprig__call *call)
{
    memset(call, 0, sizeof *call);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&call->cond, &ca);
    pthread_condattr_destroy(&ca);
    return rc ? sprig__err(SPRIG_ENOMEM, "cannot make a condition") : 0;
}

/* The request frame; a write's carries its request id (cluster_client.c),
 * a read's "lin": true when the client's reads are linearizable (but for
 * logging in, which any node answers). */
static int
encode_request(sprig_client *c, sprig__call *call, const sprig__api *api,
               const void *req)
{
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &call->frame);
    sprig__frame_request(&w, call->id, NULL, api->name);
    if (api->access != SPRIG__WRITE) {
        bool lin = c->opts.linearizable_reads &&
                   !(api->action && strcmp(api->action, "authenticate") == 0);
        return lin ? sprig__api_encode_lin(&w, api->req, api->n_req, req)
                   : sprig__api_encode(&w, api->req, api->n_req, req);
    }
    uint8_t rid[SPRIG__RID_LEN];
    sprig__client_rid_next(c, rid);
    return sprig__api_encode_rid(&w, api->req, api->n_req, req, rid);
}

/* Lock held: the call is to be sent once more (same frame, same id). */
static void
call_reset(sprig__call *call)
{
    call->done = false;
    call->rc = 0;
    call->msg[0] = '\0';
    call->next = NULL;
    sprig_buf_clear(&call->answer);
}

/* Lock held: wait `ms`, letting the loop thread work meanwhile. */
static void
backoff(sprig_client *c, unsigned ms)
{
    pthread_mutex_unlock(&c->lock);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&c->lock);
}

/* Lock held, the call ended with `rc`: may the same frame go once more?
 * SPRIG_ENOTLEADER (the write was not proposed): to the leader it names,
 * or, when none is known yet (an election), to the same node after a
 * pause -- unless following is off (the option no_follow, or its alias
 * SPRIG_NO_FOLLOW=1 in the environment: a diagnostic, which node leads,
 * as tests/cluster_nodes_test.sh finds out).  On a cluster (several
 * URLs), a call whose connection was lost (SPRIG_ECLOSED, SPRIG_ECONNECT)
 * or that a node answered "outcome unknown" (SPRIG_ETIMEDOUT: leadership
 * was lost before it committed): after a pause, on the node the client
 * moved on to.  A write's retry carries the same request id, so the
 * cluster applies it once (docs/cluster.md). */
static bool
should_retry(sprig_client *c, sprig__call *call, int rc, unsigned attempt)
{
    const char *off = getenv("SPRIG_NO_FOLLOW");
    bool follow = !c->opts.no_follow && !(off && strcmp(off, "1") == 0);
    unsigned pause = 50u << (attempt < 4 ? attempt : 4); /* to 800 ms */
    if (!call->done || c->closing) {
        return false; /* our own time limit, or closing */
    }
    if (rc == SPRIG_ENOTLEADER) {
        char url[256];
        if (!follow) {
            return false;
        }
        if (sprig__leader_hint(call->msg, url, sizeof url)) {
            if (attempt > 0) { /* a node may name a leader that died */
                backoff(c, pause);
            }
            return sprig__client_follow(c, url) == 0;
        }
        backoff(c, pause);
        return true;
    }
    bool lost =
        rc == SPRIG_ECLOSED || rc == SPRIG_ECONNECT || rc == SPRIG_ETIMEDOUT;
    if (!lost || c->n_urls < 2 || !c->opts.reconnect) {
        return false;
    }
    backoff(c, pause);
    return true;
}

/* Lock held: send the call and wait; retried as should_retry says, at
 * most SPRIG__CALL_TRIES times in all (about 10 s of pauses: a leader's
 * loss is noticed after an election timeout, 1 to 2 s by default, and a
 * new one elected in another). */
#define SPRIG__CALL_TRIES 16u
static int
send_call(sprig_client *c, sprig__call *call)
{
    int rc = wait_call(c, call);
    for (unsigned a = 1; rc && a < SPRIG__CALL_TRIES; a++) {
        if (!should_retry(c, call, rc, a - 1)) {
            break;
        }
        call_reset(call);
        rc = wait_call(c, call);
    }
    return rc;
}

int
sprig__client_call(sprig_client *c, const sprig__api *api, const void *req,
                   void *resp)
{
    sprig__call call;
    int rc = call_init(&call);
    if (rc) {
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    call.id = c->next_id++;
    c->next_id += c->next_id == 0; /* ids are 1 to 2^32-1: 0 is reserved */
    pthread_mutex_unlock(&c->lock);
    rc = encode_request(c, &call, api, req);
    if (rc == 0) {
        pthread_mutex_lock(&c->lock);
        rc = send_call(c, &call);
        pthread_mutex_unlock(&c->lock);
    }
    bool failed_here = rc && call.done && call.rc == rc; /* an error frame */
    sprig__errsave saved;
    bool has_resp = false;
    if (failed_here) {
        sprig__err_save(&saved);
        if (sprig__detail_errinfo(sprig_buf_bytes(&call.answer), &saved.info,
                                  &has_resp) != 0) {
            memset(&saved.info, 0, sizeof saved.info); /* no usable detail */
        }
    }
    bool decode = rc == 0 || (api->resp_on_error && failed_here && has_resp);
    if (decode && call.answer.len) {
        int drc = sprig__api_decode(sprig_buf_bytes(&call.answer), api->resp,
                                    api->n_resp, resp);
        rc = rc ? rc : drc;
    }
    if (failed_here) {
        sprig__err_load(rc, &saved);
    }
    if (sprig__api_secret(api)) { /* a password or a token secret */
        sprig__wipe_buf(&call.frame);
        sprig__wipe_buf(&call.answer);
    }
    sprig_buf_clear(&call.frame);
    sprig_buf_clear(&call.answer);
    pthread_cond_destroy(&call.cond);
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

/* Connect now and wait for the outcome. */
static int
first_connect(sprig_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->connect_rc = 1; /* wanted */
    uv_async_send(&c->wake);
    while (c->connect_rc == 1) {
        pthread_cond_wait(&c->state_cond, &c->lock);
    }
    int rc = c->connect_rc;
    pthread_mutex_unlock(&c->lock);
    return rc ? sprig__err(rc, "%s", c->connect_msg) : SPRIG_OK;
}

int
sprig_client_connect(const char *url, const sprig_client_options *o,
                     sprig_client **out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "out is NULL");
    }
    *out = NULL;
    char **urls;
    size_t n_urls;
    int rc = sprig__client_urls_parse(url, &urls, &n_urls);
    sprig_client *c = rc ? NULL : sprig__calloc(1, sizeof *c);
    if (rc || !c) {
        if (!rc) {
            sprig__client_urls_free(urls, n_urls);
        }
        return rc ? rc : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    c->urls = urls;
    c->n_urls = n_urls;
    c->url = urls[0];
    sprig__client_rid_init(c);
    if (o) {
        c->opts = *o;
    } else {
        sprig_client_options_init(&c->opts);
    }
    c->next_id = 1;
    c->storage.base.ops = &sprig__remote_storage_ops;
    c->storage.client = c;
    if (sprig__client_pushes_new(c)) {
        sprig__client_urls_free(c->urls, c->n_urls);
        sprig__free(c);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->state_cond, NULL);
    uv_loop_init(&c->loop);
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    if (pthread_create(&c->thread, NULL, loop_thread, c) != 0) {
        uv_close((uv_handle_t *)&c->wake, close_cb);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        sprig__client_pushes_free(c);
        sprig__client_urls_free(c->urls, c->n_urls);
        sprig__free(c);
        return sprig__err(SPRIG_ENOMEM, "cannot start the client thread");
    }
    rc = first_connect(c);
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", sprig_errmsg());
        sprig_client_close(c);
        return sprig__err(rc, "%s", msg);
    }
    *out = c;
    return SPRIG_OK;
}

sprig_storage *
sprig_client_storage(sprig_client *c)
{
    return c ? &c->storage.base : NULL;
}

/* The remote storage's operations, but close closes the client. */
static sprig_storage_ops owning_ops;
static pthread_once_t owning_once = PTHREAD_ONCE_INIT;

static void
owning_close(sprig_storage *st)
{
    if (st) {
        sprig_client_close(((remote_storage *)st)->client);
    }
}

static void
owning_ops_init(void)
{
    owning_ops = sprig__remote_storage_ops;
    owning_ops.close = owning_close;
}

sprig_client *
sprig__client_of(sprig_storage *st)
{
    pthread_once(&owning_once, owning_ops_init);
    bool remote =
        st && (st->ops == &sprig__remote_storage_ops || st->ops == &owning_ops);
    return remote ? ((remote_storage *)st)->client : NULL;
}

sprig_storage *
sprig_client_storage_owning(sprig_client *c)
{
    if (!c) {
        return NULL;
    }
    pthread_once(&owning_once, owning_ops_init);
    c->storage.base.ops = &owning_ops;
    return &c->storage.base;
}

int
sprig_client_info(sprig_client *c, sprig_conn_info *out)
{
    if (!c || !out) {
        return sprig__err(SPRIG_EINVAL, "client and out are needed");
    }
    pthread_mutex_lock(&c->lock);
    bool open = c->state == CL_OPEN;
    if (open) {
        *out = c->info;
    }
    pthread_mutex_unlock(&c->lock);
    return open ? SPRIG_OK
                : sprig__err(SPRIG_ECLOSED, "not connected to %s", c->url);
}

void
sprig_client_close(sprig_client *c)
{
    if (!c) {
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    fail_list(&c->outbox, SPRIG_ECLOSED, "the client is closed");
    fail_list(&c->waiting, SPRIG_ECLOSED, "the client is closed");
    c->outbox_tail = NULL;
    uv_async_send(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    uv_loop_close(&c->loop);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->state_cond);
    sprig__client_auth_free(c);
    sprig__client_pushes_free(c);
    sprig__client_urls_free(c->urls, c->n_urls);
    sprig__free(c);
}

void
sprig__client_flush(sprig_client *c)
{
    flush_outbox(c);
}

void
sprig__client_fail_list(sprig__call **list, int rc, const char *msg)
{
    fail_list(list, rc, msg);
}
