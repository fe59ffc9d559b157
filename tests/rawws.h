/*
 * rawws.h -- a raw protocol sprig/1 client for the server tests: the
 * transport's own WebSocket client on the test thread's libuv loop, so a
 * test sends exactly the frames it builds and reads the frames the server
 * sends -- or stops reading (by not running the loop) as a slow client
 * would.  Every wait is bounded.
 */
#ifndef SPRIG_TEST_RAWWS_H
#define SPRIG_TEST_RAWWS_H

#include "testutil.h"

#include "proto/api.h"
#include "proto/envelope.h"
#include "sprig/server.h"
#include "transport/transport.h"

/* Options for a test server on the storage at `dir` (which must outlive
 * them): not durable, listening on 127.0.0.1 at an ephemeral port, 2
 * workers, no pings and no idle timeout.  The caller sets the rest. */
static inline void
rawws_server_options(sprig_storage_options *so, sprig_server_options *o,
                     const char *dir)
{
    sprig_storage_options_init(so);
    so->path = dir;
    so->durability = SPRIG_DURABILITY_NONE;
    sprig_server_options_init(o);
    o->open_access = true; /* tests of other parts: no authentication */
    o->ws_listen = "127.0.0.1:0";
    o->workers = 2;
    o->ping_interval_ms = o->idle_timeout_ms = 0;
}

typedef struct rawmsg {
    struct rawmsg *next;
    size_t len;
    uint8_t data[];
} rawmsg;

typedef struct rawc {
    uv_loop_t *loop;
    sprig__conn *c;
    bool open, closed;
    int code;
    char reason[256];
    rawmsg *head, *tail;
    long received;
} rawc;

static inline void
rawc_on_open(sprig__conn *c, void *ud)
{
    (void)c;
    ((rawc *)ud)->open = true;
}

static inline void
rawc_on_message(sprig__conn *c, const uint8_t *data, size_t len, void *ud)
{
    (void)c;
    rawc *k = ud;
    rawmsg *m = malloc(sizeof *m + len);
    assert_non_null(m);
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    if (k->tail) {
        k->tail->next = m;
    } else {
        k->head = m;
    }
    k->tail = m;
    k->received++;
}

static inline void
rawc_on_close(sprig__conn *c, int code, const char *reason, void *ud)
{
    (void)c;
    rawc *k = ud;
    k->closed = true;
    k->c = NULL;
    k->code = code;
    snprintf(k->reason, sizeof k->reason, "%s", reason);
}

static inline void
rawc_tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until pred(k) or `ms` pass; returns pred(k). */
static inline bool
rawc_run_until(rawc *k, bool (*pred)(const rawc *), int ms)
{
    uv_timer_t t;
    uv_timer_init(k->loop, &t);
    uv_timer_start(&t, rawc_tick, 5, 5);
    uint64_t end = uv_now(k->loop) + (uint64_t)ms;
    while (!(pred && pred(k)) && uv_now(k->loop) < end) {
        uv_run(k->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(k->loop, UV_RUN_NOWAIT);
    return pred && pred(k);
}

static inline bool
rawc_is_open(const rawc *k)
{
    return k->open || k->closed;
}

static inline bool
rawc_is_closed(const rawc *k)
{
    return k->closed;
}

static inline bool
rawc_has_msg(const rawc *k)
{
    return k->head != NULL || k->closed;
}

static inline void
rawc_open(rawc *k, uv_loop_t *loop, int port)
{
    static const sprig__conn_cbs cbs = {rawc_on_open, rawc_on_message,
                                        rawc_on_close, NULL};
    memset(k, 0, sizeof *k);
    k->loop = loop;
    sprig__tran_opts o;
    sprig__tran_opts_init(&o);
    o.ping_interval_ms = 0;
    o.idle_timeout_ms = 0;
    o.close_timeout_ms = 500;
    o.connect_timeout_ms = 5000;
    o.max_message = 64u << 20;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    SPRIG_OK_(sprig__tran_connect(loop, url, &o, &cbs, k, &k->c));
    rawc_run_until(k, rawc_is_open, 5000);
    assert_true(k->open && !k->closed);
}

static inline void
rawc_close(rawc *k)
{
    if (!k->closed) {
        sprig__conn_close(k->c, SPRIG_WS_NORMAL, "done");
        rawc_run_until(k, rawc_is_closed, 5000);
    }
    assert_true(k->closed);
    for (rawmsg *m = k->head, *n; m; m = n) {
        n = m->next;
        free(m);
    }
    k->head = k->tail = NULL;
}

/* The next message from the server within `ms`, or NULL (owned by the
 * caller: free()). */
static inline rawmsg *
rawc_next(rawc *k, int ms)
{
    rawc_run_until(k, rawc_has_msg, ms);
    rawmsg *m = k->head;
    if (m) {
        k->head = m->next;
        if (!k->head) {
            k->tail = NULL;
        }
    }
    return m;
}

/* Send request `id` for row `api` with the request struct `req`. */
static inline void
rawc_request(rawc *k, const sprig__api *api, uint32_t id, const void *req)
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_request(&w, id, NULL, api->name);
    SPRIG_OK_(sprig__api_encode(&w, api->req, api->n_req, req));
    SPRIG_OK_(sprig__mp_wr_status(&w));
    assert_false(k->closed);
    SPRIG_OK_(sprig__conn_send(k->c, b.data, b.len));
    sprig_buf_clear(&b);
}

/* Wait for the answer to request `id` (a response or an error frame) and
 * decode it into *f, whose bytes borrow from the returned message. */
static inline rawmsg *
rawc_answer(rawc *k, uint32_t id, sprig__frame *f)
{
    for (;;) {
        rawmsg *m = rawc_next(k, 10000);
        if (!m) {
            fail_msg("no answer to request %u (closed %d: %d %s)", id,
                     k->closed, k->code, k->reason);
        }
        SPRIG_OK_(sprig__frame_decode((sprig_bytes){m->data, m->len}, f));
        if (f->kind != SPRIG__FRAME_PUSH && f->id == id) {
            return m;
        }
        free(m); /* a push, or another answer: not this one */
    }
}

/* Log in as `user` (auth.password, request id 0xfffffff0) and wait for
 * the answer: later requests run as that user. */
static inline void
rawc_login(rawc *k, const char *user, const char *password)
{
    sprig__auth_password_req r = {.user = (char *)user,
                                  .password = (char *)password};
    rawc_request(k, &sprig__api_auth_password, 0xfffffff0u, &r);
    sprig__frame f;
    rawmsg *m = rawc_answer(k, 0xfffffff0u, &f);
    assert_int_equal(f.kind, SPRIG__FRAME_RESPONSE);
    free(m);
}

#endif
