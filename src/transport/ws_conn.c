/*
 * ws_conn.c -- one WebSocket connection: socket I/O, the TLS and HTTP
 * phases, wslay framing, the send queue and its batching, keep-alive, close
 * and teardown, and the owner's operations of the transport table
 * (sprig__ws_send, ..., named by ws_tran.c).  Shared by server and client
 * connections (ws_server.c, ws_client.c).
 *
 * Design notes: the states (sprig__conn_state in ws_int.h) and who moves
 * a connection between them.
 *
 *   server:  accept -> sprig__ws_conn_start_server -> TLS -tls_ready-> HTTP
 *            (plain TCP goes straight to HTTP; over max_connections the
 *            HTTP phase answers 503 at once)
 *   client:  CONNECTING -sprig__ws_conn_start_client-> TLS -tls_ready-> HTTP
 *   adopted: ADOPT -on_timer(0)-> HTTP, or OPEN if already upgraded
 *   HTTP  -http_input: upgrade accepted-> OPEN (open_ws: on_open)
 *   HTTP  -refusal, status page, 408 (on_timer)-> finish(graceful)
 *   OPEN  -sprig__conn_close, keepalive (idle), send queue full-> CLOSING
 *   OPEN  -ws_on_msg: the peer's close frame-> CLOSING
 *   OPEN/CLOSING -conn_fail: a protocol violation-> finish(graceful)
 *   CLOSING -pump: close frames both ways-> finish(graceful)
 *   CLOSING -on_timer: close_timeout-> finish(reset)
 *   any   -EOF, socket or TLS error, handshake timeout-> finish(abort)
 *   finish: FINISHING -on_timer(0): on_close-> LINGER (graceful: FIN after
 *           the last write, reads discarded until EOF or close_timeout)
 *           or DEAD
 *   LINGER -EOF, timeout-> DEAD (sprig__ws_conn_destroy) -last close cb-> freed
 *
 * on_close is never called from inside a function the owner called: finish
 * only schedules it, so after sprig__conn_send() or sprig__conn_close()
 * returns, the connection is still there.  Bytes flow in through on_read
 * (-> TLS -> plain_input -> HTTP parser or frame guard + wslay) and out
 * through conn_out (-> plain buffer -> TLS, or straight to the wire buffer)
 * and flush (uv_try_write, the rest in one uv_write).  An owner's send
 * only queues the message in wslay and starts the connection's uv_prepare
 * handle (schedule_flush), so every message sent before the loop next
 * waits leaves in one pump -- one write (answer batching); past
 * SPRIG__WS_WINDOW queued it pumps at once.  wslay's send
 * callback stops taking bytes once SPRIG__WS_WINDOW are waiting beyond
 * what the kernel took, so queued messages stay in wslay's queue (one
 * copy) until the socket drains.
 */
#include "ws_int.h"

#include <stdio.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

/* One read buffer per loop thread: reads are consumed before returning. */
static _Thread_local uint8_t read_buf[65536];

typedef struct write_req {
    uv_write_t req;
    sprig__ws_conn *c;
    void *data;
    size_t len;
} write_req;

static void on_timer(uv_timer_t *t);
static int flush(sprig__ws_conn *c);
static void pump(sprig__ws_conn *c);
static void ws_input(sprig__ws_conn *c, const uint8_t *data, size_t len);

/* ---- birth and death ----------------------------------------------------- */

int
sprig__ws_conn_new(uv_loop_t *loop, sprig__ws_cfg *cfg, sprig__ws_conn **out)
{
    sprig__ws_conn *c = sprig__calloc(1, sizeof *c);
    if (!c) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a connection");
    }
    int r = uv_tcp_init(loop, &c->tcp);
    if (r < 0) {
        sprig__free(c);
        return sprig__err(SPRIG_EIO, "socket: %s", uv_strerror(r));
    }
    uv_timer_init(loop, &c->timer);
    uv_prepare_init(loop, &c->flush_prep);
    c->tcp.data = c->timer.data = c->flush_prep.data = c;
    c->busy = 3; /* the three handles */
    c->base.ops = &sprig__ws_tran;
    snprintf(c->scheme, sizeof c->scheme, "%s", cfg->tls ? "wss" : "ws");
    c->loop = loop;
    c->cfg = cfg;
    cfg->refs++;
    c->base.udata = cfg->udata;
    c->base.client = !cfg->server;
    c->close_code = SPRIG_CLOSE_ABNORMAL;
    c->last_rx = c->last_ping = uv_now(loop);
    *out = c;
    return SPRIG_OK;
}

static void
conn_free(sprig__ws_conn *c)
{
    if (c->ws) {
        wslay_event_context_free(c->ws);
    }
    sprig__tls_free(c->tls);
    sprig__free_wiped(c->msg, c->msg_cap);
    sprig__free(c->http);
    sprig_buf_clear(&c->plain);
    sprig_buf_clear(&c->wire);
    sprig__free(c->adopt_bytes);
    sprig__free(c->host);
    sprig__free(c->host_header);
    sprig__free(c->path);
    sprig__ws_cfg_unref(c->cfg);
    sprig__free(c);
}

void
sprig__ws_conn_unbusy(sprig__ws_conn *c)
{
    if (--c->busy == 0) {
        conn_free(c);
    }
}

static void
on_handle_closed(uv_handle_t *h)
{
    sprig__ws_conn_unbusy(h->data);
}

void
sprig__ws_conn_destroy(sprig__ws_conn *c)
{
    if (c->state == SPRIG__CS_DEAD) {
        return;
    }
    c->state = SPRIG__CS_DEAD;
    if (c->listener) {
        sprig__listener_forget(c->listener, c);
    }
    if (c->resolving) {
        uv_cancel((uv_req_t *)&c->gai);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->flush_prep, on_handle_closed);
    if (!c->reset || c->shutting ||
        uv_tcp_close_reset(&c->tcp, on_handle_closed) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
}

void
sprig__ws_conn_finish(sprig__ws_conn *c, int code, bool graceful,
                      const char *fmt, ...)
{
    if (c->state >= SPRIG__CS_FINISHING) {
        return;
    }
    char why[sizeof c->close_reason]; /* fmt may name c->close_reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    memcpy(c->close_reason, why, sizeof why);
    c->close_code = code;
    c->graceful = graceful;
    c->state = SPRIG__CS_FINISHING;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* Our FIN is out (after every pending write).  If the peer's came already,
 * we are done; otherwise linger until it does or close_timeout passes. */
static void
on_shutdown(uv_shutdown_t *req, int status)
{
    sprig__ws_conn *c = req->data;
    c->shutting = false;
    if (status < 0 || c->eof) {
        sprig__ws_conn_destroy(c);
    }
}

/* FINISHING -> LINGER or DEAD: the last frames out, then on_close. */
static void
finish_now(sprig__ws_conn *c)
{
    if (c->graceful && c->ws) {
        wslay_event_send(c->ws); /* the close frame, if there is room */
    }
    if (c->graceful) {
        sprig__tls_bye(c->tls);
    }
    c->state = SPRIG__CS_LINGER;
    if (flush(c) != SPRIG_OK) {
        c->graceful = false;
    }
    if ((c->opened || c->base.client) && c->cfg->cbs.on_close) {
        c->cfg->cbs.on_close(&c->base, c->close_code, c->close_reason,
                             c->base.udata);
    }
    if (c->state != SPRIG__CS_LINGER || !c->graceful) {
        sprig__ws_conn_destroy(c);
        return;
    }
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        sprig__ws_conn_destroy(c);
        return;
    }
    c->shutting = true;
    uv_timer_start(&c->timer, on_timer, c->cfg->opts.close_timeout_ms, 0);
}

/* ---- writing ------------------------------------------------------------- */

static int
conn_out(sprig__ws_conn *c, const void *data, size_t len)
{
    return sprig_buf_append(c->tls ? &c->plain : &c->wire, data, len);
}

static void
on_written(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    sprig__ws_conn *c = w->c;
    c->inflight -= w->len;
    sprig__free(w->data);
    sprig__free(w);
    if (status < 0 && status != UV_ECANCELED) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false,
                              "write failed: %s", uv_strerror(status));
        return;
    }
    if (c->state != SPRIG__CS_OPEN && c->state != SPRIG__CS_CLOSING) {
        return;
    }
    pump(c);
    size_t low = c->cfg->opts.max_send_queue / 4;
    if (c->want_writable && c->state == SPRIG__CS_OPEN &&
        sprig__ws_queued(&c->base) <= low) {
        c->want_writable = false;
        if (c->cfg->cbs.on_writable) {
            c->cfg->cbs.on_writable(&c->base, c->base.udata);
        }
    }
}

/* Hand what the kernel does not take at once to one uv_write. */
static int
write_rest(sprig__ws_conn *c, size_t off)
{
    write_req *w = sprig__malloc(sizeof *w);
    if (!w) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a write");
    }
    w->c = c;
    w->data = c->wire.data;
    w->len = c->wire.len - off;
    memset(&c->wire, 0, sizeof c->wire);
    uv_buf_t b = uv_buf_init((char *)w->data + off, (unsigned)w->len);
    __atomic_fetch_add(&c->writes, 1, __ATOMIC_RELAXED);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (r < 0) {
        sprig__free(w->data);
        sprig__free(w);
        return sprig__err(SPRIG_EIO, "write failed: %s", uv_strerror(r));
    }
    c->inflight += w->len;
    return SPRIG_OK;
}

/* Encrypt what waits (TLS), then write: straight into the socket when
 * nothing is pending there, the rest through a write request. */
static int
flush(sprig__ws_conn *c)
{
    if (c->tls && c->plain.len) {
        int rc = sprig__tls_send(c->tls, c->plain.data, c->plain.len);
        c->plain.len = 0;
        if (rc) {
            return rc;
        }
    }
    if (!c->wire.len || c->state == SPRIG__CS_DEAD) {
        return SPRIG_OK;
    }
    size_t off = 0;
    if (!c->inflight) {
        uv_buf_t b = uv_buf_init(c->wire.data, (unsigned)c->wire.len);
        /* counted first: the peer may read the bytes before we return */
        __atomic_fetch_add(&c->writes, 1, __ATOMIC_RELAXED);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r < 0 && r != UV_EAGAIN) {
            return sprig__err(SPRIG_EIO, "write failed: %s", uv_strerror(r));
        }
        off = r > 0 ? (size_t)r : 0;
        if (off == c->wire.len) {
            c->wire.len = 0; /* all taken; keep the buffer */
            return SPRIG_OK;
        }
    }
    return write_rest(c, off);
}

/* Move queued frames out of wslay, flush, and see if the close is done.
 * While the kernel takes everything at once no write callback will come,
 * so keep going until wslay's queue is empty or the socket is full. */
static void
pump(sprig__ws_conn *c)
{
    if (c->in_recv || c->state == SPRIG__CS_DEAD) {
        return;
    }
    bool ws_live = c->state == SPRIG__CS_OPEN || c->state == SPRIG__CS_CLOSING;
    for (;;) {
        size_t before = c->wire.len + c->plain.len;
        if (ws_live && c->ws && wslay_event_send(c->ws) != 0) {
            sprig__ws_conn_finish(c, SPRIG_CLOSE_INTERNAL, false,
                                  "cannot send: out of memory");
            return;
        }
        bool progressed = c->wire.len + c->plain.len > before;
        if (flush(c) != SPRIG_OK) {
            sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false, "%s",
                                  sprig_errmsg());
            if (c->state == SPRIG__CS_LINGER) {
                sprig__ws_conn_destroy(c);
            }
            return;
        }
        if (!progressed || !ws_live || c->inflight ||
            !wslay_event_want_write(c->ws)) {
            break;
        }
    }
    if (c->state == SPRIG__CS_CLOSING && wslay_event_get_close_sent(c->ws) &&
        wslay_event_get_close_received(c->ws)) {
        sprig__ws_conn_finish(c, c->close_code, true, "%s", c->close_reason);
    }
}

/* Bytes from the HTTP phase (an answer, a request) straight out. */
static int
send_http(sprig__ws_conn *c, const sprig_buf *b)
{
    int rc = conn_out(c, b->data, b->len);
    return rc ? rc : flush(c);
}

/* ---- wslay callbacks ----------------------------------------------------- */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
           void *ud)
{
    sprig__ws_conn *c = ud;
    if (c->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->in_len ? len : c->in_len;
    memcpy(buf, c->in, n);
    c->in += n;
    c->in_len -= n;
    return (ssize_t)n;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
           int flags, void *ud)
{
    sprig__ws_conn *c = ud;
    size_t used = c->inflight + c->wire.len + c->plain.len;
    if (used >= SPRIG__WS_WINDOW) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < SPRIG__WS_WINDOW - used ? len : SPRIG__WS_WINDOW - used;
    if (conn_out(c, data, n)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)n;
}

static int
ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    return gnutls_rnd(GNUTLS_RND_NONCE, buf, len) < 0 ? -1 : 0;
}

/* Keep a peer's close reason as printable text. */
static void
copy_reason(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    if (n > cap - 1) {
        n = cap - 1;
    }
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i] < 0x20 ? ' ' : (char)src[i];
    }
    dst[n] = '\0';
}

/* The peer's close frame.  If it starts the handshake, its code and
 * reason are what on_close reports; wslay has queued the answer. */
static void
close_received(sprig__ws_conn *c, const struct wslay_event_on_msg_recv_arg *a)
{
    if (c->state != SPRIG__CS_OPEN) {
        return; /* the answer to our close */
    }
    c->close_code = a->status_code ? a->status_code : 1005;
    if (a->msg_length > 2) {
        copy_reason(c->close_reason, sizeof c->close_reason, a->msg + 2,
                    a->msg_length - 2);
    } else {
        snprintf(c->close_reason, sizeof c->close_reason, "%s",
                 a->status_code ? "" : "closed without a status code");
    }
    c->state = SPRIG__CS_CLOSING;
    uv_timer_start(&c->timer, on_timer, c->cfg->opts.close_timeout_ms, 0);
}

/*
 * Data frames are assembled here, not by wslay (no buffering), because a
 * message may carry a password: wslay would keep the unmasked payload in
 * a chunk it frees unwiped, and in its read buffer.  Each chunk is copied
 * into c->msg and wiped where wslay unmasked it (its read buffer, past
 * its read mark: wslay reads those bytes no more); the message is wiped
 * once delivered (the receiver copied what it keeps).  Control frames
 * (close, ping) carry no secret: wslay still buffers them.
 */
static void
ws_on_frame_start(wslay_event_context_ptr ctx,
                  const struct wslay_event_on_frame_recv_start_arg *a, void *ud)
{
    sprig__ws_conn *c = ud;
    (void)ctx;
    c->frame_data = !(a->opcode & 0x8) && !c->msg_oom; /* 0x8-: control */
    if (!c->frame_data) {
        return;
    }
    if (a->opcode != WSLAY_CONTINUATION_FRAME) {
        c->msg_len = 0; /* a new message (the guard checked the order) */
    }
    size_t need = c->msg_len + (size_t)a->payload_length;
    if (need > c->msg_cap) { /* the guard bounded it by max_message */
        uint8_t *p = sprig__realloc_wiped(c->msg, c->msg_len, need);
        if (!p) {
            c->frame_data = false;
            c->msg_oom = true; /* ws_input ends the connection */
            return;
        }
        c->msg = p;
        c->msg_cap = need;
    }
}

static void
ws_on_frame_chunk(wslay_event_context_ptr ctx,
                  const struct wslay_event_on_frame_recv_chunk_arg *a, void *ud)
{
    sprig__ws_conn *c = ud;
    (void)ctx;
    if (!c->frame_data || a->data_length == 0) {
        return;
    }
    if (c->msg_len + a->data_length <= c->msg_cap) {
        memcpy(c->msg + c->msg_len, a->data, a->data_length);
        c->msg_len += a->data_length;
    }
    explicit_bzero((uint8_t *)(uintptr_t)a->data, a->data_length);
}

/* Wipe the delivered message; keep a small buffer for the next one. */
static void
msg_done(sprig__ws_conn *c)
{
    if (c->msg_len) {
        explicit_bzero(c->msg, c->msg_len);
    }
    c->msg_len = 0;
    if (c->msg_cap > 65536) {
        sprig__free(c->msg);
        c->msg = NULL;
        c->msg_cap = 0;
    }
}

static void
ws_on_msg(wslay_event_context_ptr ctx,
          const struct wslay_event_on_msg_recv_arg *a, void *ud)
{
    sprig__ws_conn *c = ud;
    if (a->opcode == WSLAY_BINARY_FRAME) {
        if (c->state == SPRIG__CS_OPEN && !c->msg_oom &&
            c->cfg->cbs.on_message) {
            c->cfg->cbs.on_message(&c->base, c->msg, c->msg_len, c->base.udata);
        }
        msg_done(c);
    } else if (a->opcode == WSLAY_CONNECTION_CLOSE) {
        close_received(c, a);
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .genmask_callback = ws_genmask_cb,
    .on_frame_recv_start_callback = ws_on_frame_start,
    .on_frame_recv_chunk_callback = ws_on_frame_chunk,
    .on_msg_recv_callback = ws_on_msg,
};

/* ---- the WebSocket phase ------------------------------------------------- */

/* Start the timer that pings and watches for silence. */
static void
arm_keepalive(sprig__ws_conn *c)
{
    unsigned ping = c->cfg->opts.ping_interval_ms;
    unsigned idle = c->cfg->opts.idle_timeout_ms, tick = ping;
    if (idle && (!tick || idle / 4 < tick)) {
        tick = idle / 4 ? idle / 4 : 1;
    }
    if (tick) {
        uv_timer_start(&c->timer, on_timer, tick, 0);
    } else {
        uv_timer_stop(&c->timer);
    }
}

/* HTTP -> OPEN: framing starts; on_open. */
static int
open_ws(sprig__ws_conn *c)
{
    size_t max = c->cfg->opts.max_message;
    int r = c->base.client
                ? wslay_event_context_client_init(&c->ws, &ws_callbacks, c)
                : wslay_event_context_server_init(&c->ws, &ws_callbacks, c);
    if (r != 0) {
        c->ws = NULL;
        return sprig__err(SPRIG_ENOMEM, "out of memory for framing");
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, max);
    wslay_event_config_set_no_buffering(c->ws, 1); /* ws_on_frame_start */
    sprig__ws_guard_init(&c->guard, !c->base.client, max);
    if (!c->path) {
        const char *p = c->http && c->http->path[0] ? c->http->path : "/";
        if (!(c->path = sprig__strdup(p))) {
            return sprig__err(SPRIG_ENOMEM, "out of memory for a path");
        }
    }
    sprig__free(c->http);
    c->http = NULL;
    c->state = SPRIG__CS_OPEN;
    c->opened = true;
    if (c->listener) {
        sprig__ws_listener_opened(c->listener, c);
    }
    c->last_rx = c->last_ping = uv_now(c->loop);
    arm_keepalive(c);
    if (c->cfg->cbs.on_open) {
        c->cfg->cbs.on_open(&c->base, c->base.udata);
    }
    return SPRIG_OK;
}

/* OPEN -> CLOSING: queue our close frame. */
static void
start_close(sprig__ws_conn *c, int code, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;
    if (n > SPRIG__WS_REASON_MAX) {
        n = SPRIG__WS_REASON_MAX;
    }
    c->close_code = code;
    copy_reason(c->close_reason, sizeof c->close_reason,
                (const uint8_t *)(reason ? reason : ""), n);
    /* only codes a peer accepts go on the wire (RFC 6455, 7.4) */
    bool sendable = (code >= 1000 && code <= 1011 && code != 1004 &&
                     code != 1005 && code != 1006) ||
                    (code >= 3000 && code <= 4999);
    wslay_event_queue_close(c->ws, (uint16_t)(sendable ? code : 1011),
                            (const uint8_t *)reason, n);
    c->state = SPRIG__CS_CLOSING;
    uv_timer_start(&c->timer, on_timer, c->cfg->opts.close_timeout_ms, 0);
    pump(c);
}

/* A violation by the peer: close frame with `code`, stop reading frames,
 * finish without waiting for an answer. */
static void
conn_fail(sprig__ws_conn *c, int code, const char *reason)
{
    if (c->state == SPRIG__CS_OPEN) {
        start_close(c, code, reason);
    }
    wslay_event_shutdown_read(c->ws);
    sprig__ws_conn_finish(c, code, true, "%s", reason);
}

static void
ws_input(sprig__ws_conn *c, const uint8_t *data, size_t len)
{
    if (c->state != SPRIG__CS_OPEN && c->state != SPRIG__CS_CLOSING) {
        return;
    }
    size_t ok = sprig__ws_guard_scan(&c->guard, data, len);
    c->in = data;
    c->in_len = ok;
    c->in_recv = true;
    int r = wslay_event_recv(c->ws);
    c->in_recv = false;
    c->in_len = 0;
    if (c->state >= SPRIG__CS_FINISHING) {
        return;
    }
    if (c->guard.code) {
        conn_fail(c, c->guard.code, c->guard.reason);
    } else if (c->msg_oom) {
        conn_fail(c, SPRIG_CLOSE_INTERNAL, "out of memory for a message");
    } else if (r != 0) {
        conn_fail(c,
                  r == WSLAY_ERR_NOMEM ? SPRIG_CLOSE_INTERNAL
                                       : SPRIG_CLOSE_PROTOCOL,
                  r == WSLAY_ERR_NOMEM ? "out of memory" : "malformed frame");
    } else {
        pump(c);
    }
}

/* ---- the HTTP phase ------------------------------------------------------ */

/* Answer with an HTTP refusal and linger (server, before upgrade). */
static void
refuse_now(sprig__ws_conn *c, int status, const char *reason)
{
    sprig_buf b = {0};
    int rc = sprig__http_refusal(&b, status, reason);
    if (!rc) {
        rc = send_http(c, &b);
    }
    sprig_buf_clear(&b);
    sprig__ws_conn_finish(c, status, rc == SPRIG_OK, "%s", reason);
}

static int
begin_http_server(sprig__ws_conn *c)
{
    c->http = sprig__malloc(sizeof *c->http);
    if (!c->http) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a request");
    }
    sprig__http_upgrade_init(c->http, false, c->cfg->subprotocol, NULL);
    c->http->check_origin = true;
    c->http->allowed_origins = c->cfg->opts.allowed_origins;
    c->state = SPRIG__CS_HTTP;
    if (c->refuse_full) {
        char why[128];
        snprintf(why, sizeof why, "too many connections (limit %zu)",
                 c->cfg->opts.max_connections);
        refuse_now(c, 503, why);
    }
    return SPRIG_OK;
}

static int
begin_http_client(sprig__ws_conn *c)
{
    sprig_buf req = {0};
    c->http = sprig__malloc(sizeof *c->http);
    int rc = c->http ? sprig__ws_new_key(c->key)
                     : sprig__err(SPRIG_ENOMEM, "out of memory");
    if (!rc) {
        sprig__http_upgrade_init(c->http, true, c->cfg->subprotocol, c->key);
        rc = sprig__http_request(&req, c->host_header, c->path, c->key,
                                 c->cfg->subprotocol);
    }
    if (!rc) {
        rc = send_http(c, &req);
    }
    sprig_buf_clear(&req);
    c->state = SPRIG__CS_HTTP;
    return rc;
}

/* A plain GET or HEAD: the owner's page (tran_opts.http_get). */
static int
answer_page(sprig__ws_conn *c, sprig_buf *out)
{
    char path[SPRIG__HTTP_PATH_MAX + 1];
    snprintf(path, sizeof path, "%s", c->http->path);
    char *q = strchr(path, '?');
    if (q) {
        *q++ = '\0';
    }
    sprig__http_get_req req = {
        .path = path,
        .query = q ? q : "",
        .head = c->http->parser.method == HTTP_HEAD,
    };
    sprig__http_reply rep = {0};
    if (c->cfg->opts.http_get(c->cfg->opts.http_udata, &req, &rep)) {
        rep.status = 500;
    }
    int rc = sprig__http_reply_write(c->http, &rep, out);
    sprig_buf_clear(&rep.owned);
    return rc;
}

static void
server_verdict(sprig__ws_conn *c, int v, const uint8_t *rest, size_t n)
{
    sprig_buf b = {0};
    int rc = v == SPRIG__HTTP_STATUS_PAGE && c->cfg->opts.http_get
                 ? answer_page(c, &b)
                 : sprig__http_answer(c->http, c->cfg->status_body, &b);
    if (!rc) {
        rc = send_http(c, &b);
    }
    sprig_buf_clear(&b);
    if (rc || v != SPRIG__HTTP_UPGRADE) {
        sprig__ws_conn_finish(c, c->http->status, rc == SPRIG_OK, "%s",
                              c->http->reason);
        return;
    }
    if (open_ws(c) != SPRIG_OK) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_INTERNAL, false, "%s",
                              sprig_errmsg());
        return;
    }
    pump(c);
    if (n) {
        ws_input(c, rest, n);
    }
}

static void
client_verdict(sprig__ws_conn *c, int v, const uint8_t *rest, size_t n)
{
    if (v != SPRIG__HTTP_UPGRADE) {
        sprig__ws_conn_finish(c, c->http->status, false, "%s", c->http->reason);
        return;
    }
    if (open_ws(c) != SPRIG_OK) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_INTERNAL, false, "%s",
                              sprig_errmsg());
        return;
    }
    pump(c);
    if (n) {
        ws_input(c, rest, n);
    }
}

static void
http_input(sprig__ws_conn *c, const uint8_t *data, size_t len)
{
    size_t used = 0;
    int v = sprig__http_upgrade_feed(c->http, data, len, &used);
    if (v == SPRIG__HTTP_MORE) {
        return;
    }
    if (c->base.client) {
        client_verdict(c, v, data + used, len - used);
    } else {
        server_verdict(c, v, data + used, len - used);
    }
}

/* Plain bytes from the socket or from TLS.  Nonzero: stop feeding. */
static int
plain_input(void *ctx, const uint8_t *data, size_t len)
{
    sprig__ws_conn *c = ctx;
    if (c->state == SPRIG__CS_HTTP) {
        http_input(c, data, len);
    } else if (c->state == SPRIG__CS_OPEN || c->state == SPRIG__CS_CLOSING) {
        ws_input(c, data, len);
    }
    return c->state >= SPRIG__CS_FINISHING;
}

/* ---- TLS glue ------------------------------------------------------------ */

static int
tls_wire(void *ctx, const uint8_t *data, size_t len)
{
    sprig__ws_conn *c = ctx;
    return sprig_buf_append(&c->wire, data, len) ? -1 : 0;
}

static int
tls_ready(void *ctx)
{
    sprig__ws_conn *c = ctx;
    c->tls_on = true;
    sprig__tls_describe(c->tls, c->tls_version, sizeof c->tls_version,
                        c->tls_cipher, sizeof c->tls_cipher);
    int rc = c->base.client ? begin_http_client(c) : begin_http_server(c);
    if (rc) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_INTERNAL, false, "%s",
                              sprig_errmsg());
    }
    return c->state >= SPRIG__CS_FINISHING;
}

static int
start_tls(sprig__ws_conn *c)
{
    sprig__tls_io io = {c, tls_wire, plain_input, tls_ready};
    int rc = sprig__tls_new(c->cfg->tls, c->host, &io, &c->tls);
    if (rc) {
        return rc;
    }
    c->state = SPRIG__CS_TLS;
    return c->base.client ? sprig__tls_feed(c->tls, NULL, 0) : SPRIG_OK;
}

/* ---- reading ------------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    buf->base = (char *)read_buf;
    buf->len = sizeof read_buf;
}

/* EOF or a read error. */
static void
read_end(sprig__ws_conn *c, int err)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->eof = true;
    const char *why =
        err == UV_EOF ? "the peer closed the connection" : uv_strerror(err);
    if (c->state == SPRIG__CS_LINGER) {
        if (!c->shutting) { /* else on_shutdown ends it, writes done */
            sprig__ws_conn_destroy(c);
        }
    } else if (c->state == SPRIG__CS_HTTP && c->base.client) {
        size_t used;
        int v = sprig__http_upgrade_feed(c->http, NULL, 0, &used);
        client_verdict(c, v, NULL, 0);
    } else if (c->state == SPRIG__CS_OPEN) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false,
                              "%s without a close frame", why);
    } else if (c->state == SPRIG__CS_CLOSING) {
        sprig__ws_conn_finish(c, c->close_code, false, "%s", c->close_reason);
    } else if (c->state < SPRIG__CS_OPEN && c->base.client) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false,
                              "%s during the handshake", why);
    } else if (c->state < SPRIG__CS_OPEN) {
        sprig__ws_conn_destroy(c);
    }
}

/* TLS failed, or the peer ended the TLS session. */
static void
tls_failed(sprig__ws_conn *c, int rc)
{
    if (rc == SPRIG_ECLOSED) {
        read_end(c, UV_EOF);
    } else if (c->opened || c->base.client) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_TLS, false, "%s", sprig_errmsg());
    } else {
        sprig__ws_conn_destroy(c);
    }
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    sprig__ws_conn *c = s->data;
    if (n == 0) {
        return;
    }
    if (n < 0) {
        read_end(c, (int)n);
        return;
    }
    c->last_rx = uv_now(c->loop);
    if (c->state >= SPRIG__CS_FINISHING) {
        return; /* lingering: discard */
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    if (c->tls) {
        int rc = sprig__tls_feed(c->tls, p, (size_t)n);
        if (rc) {
            tls_failed(c, rc);
            return;
        }
    } else {
        plain_input(c, p, (size_t)n);
    }
    explicit_bzero(buf->base, (size_t)n); /* consumed: leave no copy */
    if (c->state < SPRIG__CS_FINISHING) {
        pump(c);
    }
}

/* ---- starting ------------------------------------------------------------ */

int
sprig__ws_conn_start_server(sprig__ws_conn *c)
{
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        return sprig__err(SPRIG_EIO, "read: %s", uv_strerror(r));
    }
    if (c->cfg->opts.handshake_timeout_ms) {
        uv_timer_start(&c->timer, on_timer, c->cfg->opts.handshake_timeout_ms,
                       0);
    }
    return c->cfg->tls ? start_tls(c) : begin_http_server(c);
}

void
sprig__ws_conn_start_client(sprig__ws_conn *c)
{
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    int rc = r < 0         ? sprig__err(SPRIG_EIO, "read: %s", uv_strerror(r))
             : c->cfg->tls ? start_tls(c)
                           : begin_http_client(c);
    if (rc == SPRIG_OK) {
        pump(c);
    } else {
        sprig__ws_conn_finish(c,
                              c->tls ? SPRIG_CLOSE_TLS : SPRIG_CLOSE_ABNORMAL,
                              false, "%s", sprig_errmsg());
    }
}

void
sprig__ws_conn_start_adopt(sprig__ws_conn *c)
{
    c->state = SPRIG__CS_ADOPT;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* ADOPT -> HTTP or OPEN, on the loop. */
static void
adopt_begin(sprig__ws_conn *c)
{
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    int rc = r < 0 ? sprig__err(SPRIG_EIO, "read: %s", uv_strerror(r))
             : c->adopt_upgraded ? open_ws(c)
                                 : begin_http_server(c);
    if (rc) {
        sprig__ws_conn_destroy(c);
        return;
    }
    if (!c->adopt_upgraded && c->cfg->opts.handshake_timeout_ms &&
        c->state == SPRIG__CS_HTTP) {
        uv_timer_start(&c->timer, on_timer, c->cfg->opts.handshake_timeout_ms,
                       0);
    }
    uint8_t *bytes = c->adopt_bytes;
    size_t n = c->adopt_len;
    c->adopt_bytes = NULL;
    if (n) {
        plain_input(c, bytes, n);
    }
    sprig__free(bytes);
    if (c->state < SPRIG__CS_FINISHING) {
        pump(c);
    }
}

/* ---- timers -------------------------------------------------------------- */

static void
handshake_timeout(sprig__ws_conn *c)
{
    unsigned ms = c->base.client ? c->cfg->opts.connect_timeout_ms
                                 : c->cfg->opts.handshake_timeout_ms;
    char why[96];
    snprintf(why, sizeof why, "handshake not complete within %u ms", ms);
    if (c->base.client) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false, "timed out: %s",
                              why);
    } else if (c->state == SPRIG__CS_HTTP) {
        refuse_now(c, 408, why);
    } else {
        sprig__ws_conn_destroy(c);
    }
}

static void
keepalive(sprig__ws_conn *c)
{
    uint64_t now = uv_now(c->loop);
    unsigned idle = c->cfg->opts.idle_timeout_ms;
    unsigned ping = c->cfg->opts.ping_interval_ms;
    if (idle && now - c->last_rx >= idle) {
        char why[64];
        snprintf(why, sizeof why, "idle: nothing received for %u ms", idle);
        start_close(c, SPRIG_CLOSE_GOING_AWAY, why);
        return;
    }
    if (ping && now - c->last_ping >= ping) {
        struct wslay_event_msg m = {WSLAY_PING, NULL, 0};
        wslay_event_queue_msg(c->ws, &m);
        c->last_ping = now;
        pump(c);
    }
    if (c->state == SPRIG__CS_OPEN) {
        arm_keepalive(c);
    }
}

void
sprig__ws_conn_arm_timer(sprig__ws_conn *c, unsigned ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void
on_timer(uv_timer_t *t)
{
    sprig__ws_conn *c = t->data;
    switch (c->state) {
    case SPRIG__CS_ADOPT: adopt_begin(c); break;
    case SPRIG__CS_CONNECTING:
    case SPRIG__CS_TLS:
    case SPRIG__CS_HTTP: handshake_timeout(c); break;
    case SPRIG__CS_OPEN: keepalive(c); break;
    case SPRIG__CS_CLOSING:
        c->reset = true; /* the peer does not answer: do not wait on it */
        sprig__ws_conn_finish(c, c->close_code, false, "%s", c->close_reason);
        break;
    case SPRIG__CS_FINISHING: finish_now(c); break;
    case SPRIG__CS_LINGER: sprig__ws_conn_destroy(c); break;
    case SPRIG__CS_DEAD: break;
    }
}

/* ---- batching ------------------------------------------------------------ */

/* Before the loop waits for I/O again (uv_prepare: after this iteration's
 * callbacks and the next one's timers): everything sent meanwhile leaves
 * now, in one write.  A uv_check handle would not do: the loop may block
 * in poll before running it when the send came from a timer. */
static void
on_flush_prep(uv_prepare_t *h)
{
    sprig__ws_conn *c = h->data;
    uv_prepare_stop(h);
    c->flush_due = false;
    pump(c);
}

/* Write at the end of this loop iteration (once, whatever was sent). */
static void
schedule_flush(sprig__ws_conn *c)
{
    if (!c->flush_due && !c->in_recv) {
        c->flush_due = true;
        uv_prepare_start(&c->flush_prep, on_flush_prep);
    }
}

void
sprig__ws_conn_flush(sprig__ws_conn *c)
{
    if (c->flush_due) {
        uv_prepare_stop(&c->flush_prep);
        c->flush_due = false;
    }
    pump(c);
}

/* ---- the owner's functions (the operations table, ws_tran.c) ------------ */

/* The queue would pass max_send_queue: close with 1008 and fail. */
static int
send_over_bound(sprig__ws_conn *c, size_t q)
{
    char why[96];
    snprintf(why, sizeof why, "send queue over %zu bytes: peer not reading",
             c->cfg->opts.max_send_queue);
    start_close(c, SPRIG_CLOSE_POLICY, why);
    return sprig__err(SPRIG_EBUSY, "%zu bytes queued; closing: %s", q, why);
}

int
sprig__ws_send(sprig__conn *bc, const uint8_t *data, size_t len)
{
    sprig__ws_conn *c = (sprig__ws_conn *)bc;
    const sprig__tran_opts *o = &c->cfg->opts;
    if (c->state != SPRIG__CS_OPEN) {
        return sprig__err(SPRIG_ECLOSED, "the connection is not open");
    }
    if (len > o->max_message) {
        return sprig__err(SPRIG_ETOOBIG,
                          "message of %zu bytes is over "
                          "max_message (%zu)",
                          len, o->max_message);
    }
    size_t q = sprig__ws_queued(bc);
    if (q >= o->max_send_queue || len > o->max_send_queue - q) {
        return send_over_bound(c, q);
    }
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, data, len};
    int r = wslay_event_queue_msg(c->ws, &m);
    if (r != 0) {
        return r == WSLAY_ERR_NOMEM
                   ? sprig__err(SPRIG_ENOMEM, "out of memory queueing")
                   : sprig__err(SPRIG_ECLOSED, "the connection is closing");
    }
    __atomic_fetch_add(&c->messages_sent, 1, __ATOMIC_RELAXED);
    if (sprig__ws_queued(bc) > o->max_send_queue / 4) {
        c->want_writable = true;
    }
    /* Small answers wait for the end of the iteration, to leave in one
     * write; a burst past the window streams out at once, as the socket
     * takes it.  (Inside on_message the read's own pump writes it.) */
    schedule_flush(c);
    if (wslay_event_get_queued_msg_length(c->ws) >= SPRIG__WS_WINDOW) {
        pump(c);
    }
    return SPRIG_OK;
}

size_t
sprig__ws_queued(const sprig__conn *bc)
{
    const sprig__ws_conn *c = (const sprig__ws_conn *)bc;
    size_t q = c->inflight + c->wire.len + c->plain.len;
    return c->ws ? q + wslay_event_get_queued_msg_length(c->ws) : q;
}

void
sprig__ws_close(sprig__conn *bc, int code, const char *reason)
{
    sprig__ws_conn *c = (sprig__ws_conn *)bc;
    if (c->state == SPRIG__CS_OPEN) {
        /* what was sent this iteration goes out ahead of the close frame,
         * which wslay would otherwise send first */
        sprig__ws_conn_flush(c);
        start_close(c, code, reason);
    } else if (c->state < SPRIG__CS_OPEN) {
        sprig__ws_conn_finish(c, code, false, "%s", reason ? reason : "");
    }
}

void
sprig__ws_info(const sprig__conn *bc, sprig_conn_info *out)
{
    const sprig__ws_conn *c = (const sprig__ws_conn *)bc;
    memset(out, 0, sizeof *out);
    snprintf(out->transport, sizeof out->transport, "%s", c->scheme);
    out->tls = c->tls_on;
    snprintf(out->tls_version, sizeof out->tls_version, "%s", c->tls_version);
    snprintf(out->tls_cipher, sizeof out->tls_cipher, "%s", c->tls_cipher);
    snprintf(out->peer, sizeof out->peer, "%s", c->peer);
    out->messages_sent = __atomic_load_n(&c->messages_sent, __ATOMIC_RELAXED);
    out->writes = __atomic_load_n(&c->writes, __ATOMIC_RELAXED);
}

const char *
sprig__ws_path(const sprig__conn *bc)
{
    const sprig__ws_conn *c = (const sprig__ws_conn *)bc;
    return c->path ? c->path : "/";
}

const char *
sprig__ws_peer(const sprig__conn *bc)
{
    return ((const sprig__ws_conn *)bc)->peer;
}
