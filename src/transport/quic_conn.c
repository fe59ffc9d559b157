/*
 * quic_conn.c -- one QUIC connection as transport.h sees it: messages on
 * the stream, the send queue kept until acknowledged, the timer, close.
 *
 * Design notes.  States (sprig__qstate, quic_int.h):
 *
 *   HANDSHAKE -engine ready (handshake done, server verified)-> OPEN
 *             (on_open; a server's messages wait for the client's stream)
 *   OPEN  -sprig__conn_close-> CLOSING (queued messages go out first)
 *   CLOSING -all acknowledged, or close_timeout-> CONNECTION_CLOSE, finish
 *   any   -the engine closed (peer's close, idle timeout, handshake
 *          timeout or failure, stateless reset, a violation)-> finish
 *   finish: FINISHING -timer(0): on_close-> DEAD -timer closed-> freed
 *   (server, the engine closed with a CONNECTION_CLOSE sent or received:
 *   FINISHING -on_close-> LINGER, the closing or draining period of RFC
 *   9000 §10.2: the engine is freed, the ids stay routed here, a late
 *   datagram gets the saved CONNECTION_CLOSE again (closing, rate-limited)
 *   or nothing (draining); -timer(3 x PTO, 1 to 3 s)-> DEAD)
 *
 * Nothing here calls into the engine from inside an engine callback: a
 * message handler that sends only appends to `out`, and one that closes
 * only changes the state and marks the connection dirty; the endpoint's
 * prepare handle flushes dirty connections before the loop next waits, so
 * every message sent in one loop iteration leaves in as few datagrams as
 * fit (answer batching, as for WebSockets).
 *
 * Framing: each message is a 4-byte big-endian length and its bytes, on
 * the one bidirectional stream.  A length over max_message closes the
 * connection with 1009 before its bytes are buffered.
 */
#include "quic_int.h"

#include <stdarg.h>
#include <stdio.h>

static void on_timer(uv_timer_t *t);

/* ---- the send queue ------------------------------------------------------ */

static int
qbuf_append(sprig__qbuf *b, const uint8_t *d, size_t n)
{
    if (n == 0) {
        return SPRIG_OK;
    }
    if (b->len + n > b->cap) {
        if (b->head > 0) { /* drop what was acknowledged */
            memmove(b->data, b->data + b->head, b->len - b->head);
            b->len -= b->head;
            b->head = 0;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            cap *= 2;
        }
        if (cap > b->cap) {
            uint8_t *p = sprig__realloc(b->data, cap);
            if (!p) {
                return SPRIG_ENOMEM;
            }
            b->data = p;
            b->cap = cap;
        }
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
    return SPRIG_OK;
}

static size_t
qbuf_queued(const sprig__qbuf *b)
{
    return b->len - b->head;
}

/* ---- engine callbacks ---------------------------------------------------- */

static void
deliver(sprig__quic_conn *c, const uint8_t *m, size_t n)
{
    void *udata;
    const sprig__conn_cbs *cbs = sprig__quic_ep_cbs(c->ep, &udata);
    (void)udata;
    if (cbs->on_message) {
        cbs->on_message(&c->base, m, n, c->base.udata);
    }
}

/* Take stream bytes into the message being assembled; deliver each whole
 * one.  Stops (returns) once the connection is no longer open. */
static int
io_data(void *ctx, const uint8_t *d, size_t n)
{
    sprig__quic_conn *c = ctx;
    size_t max = sprig__quic_ep_opts(c->ep)->max_message;
    while (n > 0 && c->state == SPRIG__QS_OPEN && !c->violation) {
        size_t want = c->in_len < 4 ? 4
                                    : 4 + ((size_t)c->in[0] << 24 |
                                           (size_t)c->in[1] << 16 |
                                           (size_t)c->in[2] << 8 | c->in[3]);
        if (c->in_len >= 4 && want - 4 > max) {
            c->violation = SPRIG_CLOSE_TOO_BIG;
            snprintf(c->violation_reason, sizeof c->violation_reason,
                     "message of %zu bytes over the limit of %zu", want - 4,
                     max);
            break;
        }
        size_t take = want - c->in_len < n ? want - c->in_len : n;
        if (c->in_len + take > c->in_cap) {
            size_t cap = c->in_cap ? c->in_cap : 1024;
            while (cap < c->in_len + take) {
                cap *= 2;
            }
            uint8_t *p = sprig__realloc_wiped(c->in, c->in_len, cap);
            if (!p) {
                c->violation = SPRIG_CLOSE_INTERNAL;
                snprintf(c->violation_reason, sizeof c->violation_reason,
                         "out of memory for a message");
                break;
            }
            c->in = p;
            c->in_cap = cap;
        }
        memcpy(c->in + c->in_len, d, take);
        c->in_len += take;
        d += take;
        n -= take;
        if (c->in_len == want && want > 4) {
            c->in_len = 0;
            deliver(c, c->in + 4, want - 4);
            explicit_bzero(c->in, want); /* it may hold a password */
        } else if (c->in_len == want && want == 4 && c->in_len >= 4 &&
                   (c->in[0] | c->in[1] | c->in[2] | c->in[3]) == 0) {
            c->in_len = 0;
            deliver(c, c->in + 4, 0); /* an empty message */
        }
    }
    return 0;
}

static void
io_acked(void *ctx, uint64_t n)
{
    sprig__quic_conn *c = ctx;
    c->out.head += (size_t)n;
    c->out.sent -= (size_t)n;
    if (c->out.head == c->out.len) {
        c->out.head = c->out.len = 0;
    }
    size_t low = sprig__quic_ep_opts(c->ep)->max_send_queue / 4;
    if (c->want_writable && qbuf_queued(&c->out) <= low &&
        c->state == SPRIG__QS_OPEN) {
        void *udata;
        const sprig__conn_cbs *cbs = sprig__quic_ep_cbs(c->ep, &udata);
        c->want_writable = false;
        if (cbs->on_writable) {
            cbs->on_writable(&c->base, c->base.udata);
        }
    }
}

static void
io_ready(void *ctx)
{
    sprig__quic_conn *c = ctx;
    if (c->state != SPRIG__QS_HANDSHAKE) {
        return;
    }
    c->state = SPRIG__QS_OPEN;
    c->opened = true;
    sprig__qng_describe(c->q, c->tls_version, sizeof c->tls_version,
                        c->tls_cipher, sizeof c->tls_cipher);
    sprig__quic_ep_opened(c->ep, c);
    void *udata;
    const sprig__conn_cbs *cbs = sprig__quic_ep_cbs(c->ep, &udata);
    if (cbs->on_open) {
        cbs->on_open(&c->base, c->base.udata);
    }
}

static int
io_cid_add(void *ctx, const sprig__qcid *cid)
{
    sprig__quic_conn *c = ctx;
    if (c->ncids >= SPRIG__QUIC_MAX_CIDS) {
        return SPRIG_EBUSY;
    }
    if (sprig__quic_ep_is_server(c->ep) &&
        sprig__quic_ep_cid_add(c->ep, cid, c) != SPRIG_OK) {
        return SPRIG_ENOMEM;
    }
    c->cids[c->ncids++] = *cid;
    return SPRIG_OK;
}

static void
io_cid_remove(void *ctx, const sprig__qcid *cid)
{
    sprig__quic_conn *c = ctx;
    for (int i = 0; i < c->ncids; i++) {
        if (c->cids[i].len == cid->len &&
            memcmp(c->cids[i].data, cid->data, cid->len) == 0) {
            if (sprig__quic_ep_is_server(c->ep)) {
                sprig__quic_ep_cid_remove(c->ep, cid);
            }
            c->cids[i] = c->cids[--c->ncids];
            return;
        }
    }
}

void
sprig__quic_conn_io(sprig__quic_conn *c, sprig__qng_io *io)
{
    io->ctx = c;
    io->data = io_data;
    io->acked = io_acked;
    io->ready = io_ready;
    io->cid_add = io_cid_add;
    io->cid_remove = io_cid_remove;
}

/* ---- life ---------------------------------------------------------------- */

int
sprig__quic_conn_new(sprig__quic_ep *ep, sprig__quic_conn **out)
{
    sprig__quic_conn *c = sprig__calloc(1, sizeof *c);
    if (!c) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a connection");
    }
    c->base.ops = &sprig__quic_tran;
    c->base.client = !sprig__quic_ep_is_server(ep);
    c->ep = ep;
    snprintf(c->scheme, sizeof c->scheme, "quic");
    snprintf(c->path, sizeof c->path, "/");
    uv_timer_init(sprig__quic_ep_loop(ep), &c->timer);
    c->timer.data = c;
    *out = c;
    return SPRIG_OK;
}

void
sprig__quic_conn_attach(sprig__quic_conn *c, sprig__qng *q)
{
    c->q = q;
}

bool
sprig__quic_conn_opened(const sprig__quic_conn *c)
{
    return c->opened;
}

bool
sprig__quic_conn_handshaking(const sprig__quic_conn *c)
{
    return c->state == SPRIG__QS_HANDSHAKE;
}

static void
on_timer_closed(uv_handle_t *h)
{
    sprig__quic_conn *c = h->data;
    sprig__free(c->out.data);
    sprig__free_wiped(c->in, c->in_cap);
    sprig__free(c->close_pkt);
    sprig__free(c);
}

/* Free now: forget it everywhere, close the timer (memory goes after). */
static void
destroy(sprig__quic_conn *c)
{
    c->state = SPRIG__QS_DEAD;
    for (int i = 0; i < c->ncids && sprig__quic_ep_is_server(c->ep); i++) {
        sprig__quic_ep_cid_remove(c->ep, &c->cids[i]);
    }
    c->ncids = 0;
    sprig__quic_ep_forget(c->ep, c); /* a client's endpoint goes too */
    sprig__qng_free(c->q);
    c->q = NULL;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void
sprig__quic_conn_drop(sprig__quic_conn *c)
{
    if (c->state != SPRIG__QS_DEAD) {
        destroy(c);
    }
}

static void
send_dgram(void *ctx, const uint8_t *d, size_t n)
{
    sprig__quic_conn *c = ctx;
    sprig__quic_ep_send(c->ep, &c->remote, d, n);
    __atomic_add_fetch(&c->writes, 1, __ATOMIC_RELAXED);
}

/* End: on_close(code, reason) on the next loop turn.  Later calls are
 * ignored. */
static void
finish(sprig__quic_conn *c, int code, const char *reason)
{
    if (c->state >= SPRIG__QS_FINISHING) {
        return;
    }
    c->state = SPRIG__QS_FINISHING;
    c->close_code = code;
    if (reason != c->close_reason) {
        snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    }
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

void
sprig__quic_conn_fail(sprig__quic_conn *c, int code, const char *fmt, ...)
{
    char reason[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    finish(c, code, reason);
}

/* The engine closed: tell the peer (unless the engine says not to), end. */
static void
engine_closed(sprig__quic_conn *c)
{
    sprig__qng_why why;
    sprig__qng_close_info(c->q, &why);
    sprig__qng_close(c->q, why.code, why.reason, send_dgram, c);
    finish(c, why.code, why.reason);
}

/* Close now with `code`/`reason` (a CONNECTION_CLOSE carrying them). */
static void
close_now(sprig__quic_conn *c, int code, const char *reason)
{
    int wire =
        code == SPRIG_CLOSE_ABNORMAL || code == SPRIG_CLOSE_TLS || code == 1005
            ? SPRIG_CLOSE_INTERNAL
            : code;
    sprig__qng_close(c->q, wire, reason, send_dgram, c);
    finish(c, code, reason);
}

/* Arm the timer for the engine's deadline (or the close timeout). */
static void
arm(sprig__quic_conn *c)
{
    uint64_t ms = sprig__qng_timeout_ms(c->q);
    if (c->state == SPRIG__QS_CLOSING) {
        uint64_t now = uv_now(sprig__quic_ep_loop(c->ep));
        uint64_t left = c->close_deadline > now ? c->close_deadline - now : 0;
        ms = left < ms ? left : ms;
    }
    if (ms == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

void
sprig__quic_conn_flush(sprig__quic_conn *c)
{
    /* c->dirty stays as it is: it says whether c is on the endpoint's
     * list, which only the endpoint changes */
    if (c->state >= SPRIG__QS_FINISHING) {
        return;
    }
    if (!c->q) { /* a client still resolving */
        if (c->state == SPRIG__QS_CLOSING) {
            finish(c, c->close_code, c->close_reason);
        }
        return;
    }
    if (c->violation) {
        close_now(c, c->violation, c->violation_reason);
        return;
    }
    size_t taken = 0;
    size_t n = c->out.len - c->out.head - c->out.sent;
    const uint8_t *p = n ? c->out.data + c->out.head + c->out.sent : NULL;
    if (sprig__qng_flush(c->q, p, n, &taken, send_dgram, c) ==
        SPRIG__QNG_CLOSED) {
        engine_closed(c);
        return;
    }
    c->out.sent += taken;
    if (c->state == SPRIG__QS_CLOSING &&
        (qbuf_queued(&c->out) == 0 || !c->opened ||
         uv_now(sprig__quic_ep_loop(c->ep)) >= c->close_deadline)) {
        close_now(c, c->send_code, c->close_reason);
        return;
    }
    arm(c);
}

/* After on_close, a server connection the engine closed stays for the
 * closing or draining period (RFC 9000 §10.2): its ids keep routing here,
 * so a late packet gets our CONNECTION_CLOSE again (closing) or nothing
 * (draining), not a stateless reset; the engine's memory goes now, the
 * rest when the period ends (on_timer).  False: no period, destroy. */
static bool
linger(sprig__quic_conn *c)
{
    const uint8_t *pkt;
    size_t len;
    uint64_t pto;
    if (!c->q || !sprig__quic_ep_is_server(c->ep) ||
        sprig__qng_linger(c->q, &pkt, &len, &pto) == SPRIG__QNG_LINGER_NONE) {
        return false;
    }
    if (pkt && !(c->close_pkt = sprig__malloc(len))) {
        return false;
    }
    if (!sprig__quic_ep_linger(c->ep, c)) {
        sprig__free(c->close_pkt);
        c->close_pkt = NULL;
        return false;
    }
    if (pkt) {
        memcpy(c->close_pkt, pkt, len);
        c->close_len = len;
    }
    uint64_t ms = 3 * pto;
    ms = ms < SPRIG__QUIC_LINGER_MIN_MS ? SPRIG__QUIC_LINGER_MIN_MS : ms;
    ms = ms > SPRIG__QUIC_LINGER_MAX_MS ? SPRIG__QUIC_LINGER_MAX_MS : ms;
    c->state = SPRIG__QS_LINGER;
    sprig__qng_free(c->q);
    c->q = NULL;
    uv_timer_start(&c->timer, on_timer, ms, 0);
    return true;
}

/* A datagram for a lingering connection: in the closing period, repeat
 * the CONNECTION_CLOSE for the 1st, 2nd, 4th, 8th, ... datagram (a rate
 * that falls as they keep coming), never more than 3 times the bytes
 * that came (no amplification); in the draining period, nothing. */
static void
linger_recv(sprig__quic_conn *c, size_t n, const sprig__qaddr *from)
{
    uint64_t k = ++c->linger_rx;
    if (c->close_pkt && (k & (k - 1)) == 0 && c->close_len <= 3 * n) {
        sprig__quic_ep_send(c->ep, from, c->close_pkt, c->close_len);
        sprig__quic_ep_close_resent(c->ep);
    }
}

static void
on_timer(uv_timer_t *t)
{
    sprig__quic_conn *c = t->data;
    if (c->state == SPRIG__QS_FINISHING) {
        void *udata;
        const sprig__conn_cbs *cbs = sprig__quic_ep_cbs(c->ep, &udata);
        bool tell = c->opened || c->base.client;
        c->state = SPRIG__QS_DEAD;
        if (tell && cbs->on_close) {
            cbs->on_close(&c->base, c->close_code, c->close_reason,
                          c->base.udata);
        }
        if (!linger(c)) {
            destroy(c);
        }
        return;
    }
    if (c->state == SPRIG__QS_LINGER) { /* the period is over */
        destroy(c);
        return;
    }
    if (c->state == SPRIG__QS_DEAD || !c->q) {
        return;
    }
    sprig__quic_ep_timer_fired(c->ep);
    if (sprig__qng_expire(c->q) == SPRIG__QNG_CLOSED) {
        engine_closed(c);
        return;
    }
    sprig__quic_conn_flush(c);
}

void
sprig__quic_conn_recv(sprig__quic_conn *c, const uint8_t *pkt, size_t n,
                      const sprig__qaddr *from)
{
    if (c->state == SPRIG__QS_LINGER) {
        linger_recv(c, n, from);
        return;
    }
    if (c->state >= SPRIG__QS_FINISHING) {
        return;
    }
    if (c->base.client) {
        c->remote = *from;
    }
    if (sprig__qng_read(c->q, sprig__quic_ep_local(c->ep), from, pkt, n) ==
        SPRIG__QNG_CLOSED) {
        engine_closed(c);
        return;
    }
    sprig__quic_ep_dirty(c->ep, c);
}

/* ---- the owner's operations ---------------------------------------------- */

int
sprig__quic_send(sprig__conn *bc, const uint8_t *data, size_t len)
{
    sprig__quic_conn *c = (sprig__quic_conn *)bc;
    const sprig__tran_opts *o = sprig__quic_ep_opts(c->ep);
    if (c->state != SPRIG__QS_OPEN) {
        return sprig__err(SPRIG_ECLOSED, "send: the connection is not open");
    }
    if (len > o->max_message || len > UINT32_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "message of %zu bytes over the "
                          "limit of %zu",
                          len, o->max_message);
    }
    if (qbuf_queued(&c->out) + len + 4 > o->max_send_queue) {
        sprig__quic_close(bc, SPRIG_CLOSE_POLICY, "send queue over its bound");
        return sprig__err(SPRIG_EBUSY, "send queue over %zu bytes: closing",
                          o->max_send_queue);
    }
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 8), (uint8_t)len};
    if (qbuf_append(&c->out, hdr, 4) || qbuf_append(&c->out, data, len)) {
        return sprig__err(SPRIG_ENOMEM, "out of memory queueing a message");
    }
    __atomic_add_fetch(&c->messages_sent, 1, __ATOMIC_RELAXED);
    if (qbuf_queued(&c->out) > o->max_send_queue / 4) {
        c->want_writable = true;
    }
    sprig__quic_ep_dirty(c->ep, c);
    return SPRIG_OK;
}

size_t
sprig__quic_queued(const sprig__conn *bc)
{
    return qbuf_queued(&((const sprig__quic_conn *)bc)->out);
}

void
sprig__quic_close(sprig__conn *bc, int code, const char *reason)
{
    sprig__quic_conn *c = (sprig__quic_conn *)bc;
    if (c->state >= SPRIG__QS_CLOSING) {
        return;
    }
    c->state = SPRIG__QS_CLOSING;
    c->close_code = code;
    c->send_code =
        code == SPRIG_CLOSE_ABNORMAL || code == SPRIG_CLOSE_TLS || code == 1005
            ? SPRIG_CLOSE_INTERNAL
            : code;
    snprintf(c->close_reason, sizeof c->close_reason, "%.123s",
             reason ? reason : "");
    c->close_deadline = uv_now(sprig__quic_ep_loop(c->ep)) +
                        sprig__quic_ep_opts(c->ep)->close_timeout_ms;
    sprig__quic_ep_dirty(c->ep, c);
}

void
sprig__quic_info(const sprig__conn *bc, sprig_conn_info *out)
{
    const sprig__quic_conn *c = (const sprig__quic_conn *)bc;
    memset(out, 0, sizeof *out);
    snprintf(out->transport, sizeof out->transport, "%s", c->scheme);
    out->tls = true;
    snprintf(out->tls_version, sizeof out->tls_version, "%s", c->tls_version);
    snprintf(out->tls_cipher, sizeof out->tls_cipher, "%s", c->tls_cipher);
    snprintf(out->peer, sizeof out->peer, "%s", c->peer);
    out->messages_sent = __atomic_load_n(&c->messages_sent, __ATOMIC_RELAXED);
    out->writes = __atomic_load_n(&c->writes, __ATOMIC_RELAXED);
}

const char *
sprig__quic_path(const sprig__conn *bc)
{
    return ((const sprig__quic_conn *)bc)->path;
}

const char *
sprig__quic_peer(const sprig__conn *bc)
{
    return ((const sprig__quic_conn *)bc)->peer;
}
