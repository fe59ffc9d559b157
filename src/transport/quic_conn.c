/*
 * quic_conn.c -- one QUIC connection as transport.h sees it: messages on
 * its streams, the send queues kept until acknowledged, the timer, close.
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
 * the message stream (the client's first bidirectional stream).  A length
 * over max_message closes the connection with 1009 before its bytes are
 * buffered.
 *
 * Request streams (docs/protocol.md, "QUIC"): a client with per_request
 * puts each message after its first on a new stream, then FIN; a server
 * answers a request that came on one on the same stream (the answer's id
 * names it: frame_id), then FIN, and sends everything else on the message
 * stream.  A stream's state (sprig__qstream) goes when the engine reports
 * it closed.  ACK wait: a server that delivered a request this turn and
 * has nothing to send lets the ACK wait for the answer (ack_waits).
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

/* ---- request streams ----------------------------------------------------- */

/* Bytes waiting to go or to be acknowledged, on every stream. */
static size_t
queued(const sprig__quic_conn *c)
{
    return qbuf_queued(&c->out) + c->sq_bytes;
}

/* The kind and id of a frame ([kind, id, ...] in MessagePack), read
 * without decoding it: the transport needs them only to put an answer on
 * the stream its request came on.  False when it does not look like one
 * (the message then goes on the message stream: clients match answers by
 * id whatever stream they come on). */
static bool
frame_id(const uint8_t *m, size_t n, int *kind, uint32_t *id)
{
    if (n < 3 || ((m[0] & 0xf0) != 0x90 && m[0] != 0xdc && m[0] != 0xdd)) {
        return false;
    }
    size_t i = (m[0] & 0xf0) == 0x90 ? 1 : m[0] == 0xdc ? 3 : 5;
    if (i + 2 > n || m[i] > 3) {
        return false;
    }
    *kind = m[i++];
    uint8_t t = m[i++];
    size_t w = t <= 0x7f   ? 0
               : t == 0xcc ? 1
               : t == 0xcd ? 2
               : t == 0xce ? 4
                           : 9;
    if (w == 9 || i + w > n) {
        return false;
    }
    uint32_t v = w ? 0 : t;
    for (size_t j = 0; j < w; j++) {
        v = v << 8 | m[i + j];
    }
    *id = v;
    return true;
}

static sprig__qstream *
stream_find(sprig__quic_conn *c, int64_t sid)
{
    sprig__qstream *s = c->streams;
    while (s && s->sid != sid) {
        s = s->next;
    }
    return s;
}

static sprig__qstream *
stream_add(sprig__quic_conn *c, int64_t sid)
{
    sprig__qstream *s = sprig__calloc(1, sizeof *s);
    if (s) {
        s->sid = sid;
        s->next = c->streams;
        c->streams = s;
        c->nstreams++;
    }
    return s;
}

static void
stream_free(sprig__quic_conn *c, sprig__qstream *s)
{
    c->sq_bytes -= s->out_len - s->out_acked;
    sprig__free_wiped(s->in.buf, s->in.cap);
    sprig__free(s->out);
    sprig__free(s);
}

/* Unlink and free `s` (closed, or the connection goes). */
static void
stream_remove(sprig__quic_conn *c, sprig__qstream *s)
{
    for (sprig__qstream **p = &c->streams; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            c->nstreams--;
            stream_free(c, s);
            return;
        }
    }
}

/* Where a message sent now goes: a server's answer to a request that came
 * on a request stream goes back on it; a client in per-request mode puts
 * every request after its first on a new stream (the first opens the
 * message stream, which pushes need).  NULL: the message stream. */
static sprig__qstream *
stream_for(sprig__quic_conn *c, const uint8_t *m, size_t n)
{
    int kind;
    uint32_t id;
    if (c->base.client) {
        return c->per_request && c->s0_used ? stream_add(c, -1) : NULL;
    }
    if (!c->streams || !frame_id(m, n, &kind, &id) || kind == 0 || kind == 3) {
        return NULL;
    }
    for (sprig__qstream *s = c->streams; s; s = s->next) {
        if (s->has_id && !s->answered && s->id == id) {
            return s;
        }
    }
    return NULL;
}

/* The whole length-prefixed message `m` into request stream `s`. */
static int
stream_put(sprig__quic_conn *c, sprig__qstream *s, const uint8_t *m, size_t n)
{
    if (!(s->out = sprig__malloc(n + 4))) {
        if (c->base.client) {
            stream_remove(c, s);
        }
        return SPRIG_ENOMEM;
    }
    s->out[0] = (uint8_t)(n >> 24);
    s->out[1] = (uint8_t)(n >> 16);
    s->out[2] = (uint8_t)(n >> 8);
    s->out[3] = (uint8_t)n;
    memcpy(s->out + 4, m, n);
    s->out_len = n + 4;
    s->answered = true;
    c->sq_bytes += n + 4;
    return SPRIG_OK;
}

/* ---- engine callbacks ---------------------------------------------------- */

/* A whole message: to on_message.  A server notes the id of the first
 * request a request stream carries, for its answer. */
static void
deliver(sprig__quic_conn *c, sprig__qstream *s, const uint8_t *m, size_t n)
{
    void *udata;
    const sprig__conn_cbs *cbs = sprig__quic_ep_cbs(c->ep, &udata);
    int kind;
    (void)udata;
    if (s && !s->has_id && !c->base.client && n > 0) {
        s->has_id = frame_id(m, n, &kind, &s->id) && kind == 0;
    }
    if (!c->base.client) {
        c->defer_ack = true; /* a request: its answer may carry the ACK */
    }
    if (cbs->on_message) {
        cbs->on_message(&c->base, m, n, c->base.udata);
    }
}

/* Room for `take` more bytes in `in`; false (a violation noted) when out
 * of memory. */
static bool
in_room(sprig__quic_conn *c, sprig__qin *in, size_t take)
{
    if (in->len + take <= in->cap) {
        return true;
    }
    size_t cap = in->cap ? in->cap : 1024;
    while (cap < in->len + take) {
        cap *= 2;
    }
    uint8_t *p = sprig__realloc_wiped(in->buf, in->len, cap);
    if (!p) {
        c->violation = SPRIG_CLOSE_INTERNAL;
        snprintf(c->violation_reason, sizeof c->violation_reason,
                 "out of memory for a message");
        return false;
    }
    in->buf = p;
    in->cap = cap;
    return true;
}

/* Take stream bytes into the message being assembled in `in`; deliver
 * each whole one.  Stops once the connection is no longer open. */
static void
assemble(sprig__quic_conn *c, sprig__qin *in, sprig__qstream *s,
         const uint8_t *d, size_t n)
{
    size_t max = sprig__quic_ep_opts(c->ep)->max_message;
    while (n > 0 && c->state == SPRIG__QS_OPEN && !c->violation) {
        const uint8_t *h = in->buf;
        size_t want = in->len < 4
                          ? 4
                          : 4 + ((size_t)h[0] << 24 | (size_t)h[1] << 16 |
                                 (size_t)h[2] << 8 | h[3]);
        if (in->len >= 4 && want - 4 > max) {
            c->violation = SPRIG_CLOSE_TOO_BIG;
            snprintf(c->violation_reason, sizeof c->violation_reason,
                     "message of %zu bytes over the limit of %zu", want - 4,
                     max);
            break;
        }
        size_t take = want - in->len < n ? want - in->len : n;
        if (!in_room(c, in, take)) {
            break;
        }
        memcpy(in->buf + in->len, d, take);
        in->len += take;
        d += take;
        n -= take;
        if (in->len == want && (want > 4 || (in->buf[0] | in->buf[1] |
                                             in->buf[2] | in->buf[3]) == 0)) {
            in->len = 0;
            deliver(c, s, in->buf + 4, want - 4); /* maybe empty */
            explicit_bzero(in->buf, want);        /* it may hold a password */
        }
    }
}

/* Stream bytes: the message stream's (sid -1) or a request stream's (a
 * server meets each first here; a client knows its own). */
static int
io_data(void *ctx, int64_t sid, const uint8_t *d, size_t n, bool fin)
{
    sprig__quic_conn *c = ctx;
    (void)fin; /* a request stream ends with its one message */
    if (sid < 0) {
        assemble(c, &c->in, NULL, d, n);
        return 0;
    }
    sprig__qstream *s = stream_find(c, sid);
    if (!s && !c->base.client) {
        if (!(s = stream_add(c, sid))) {
            c->violation = SPRIG_CLOSE_INTERNAL;
            snprintf(c->violation_reason, sizeof c->violation_reason,
                     "out of memory for a stream");
            return 0;
        }
        sprig__quic_ep_count(c->ep, &sprig__quic_ep_stats(c->ep)->req_streams);
    }
    if (s) {
        assemble(c, &s->in, s, d, n);
    }
    return 0;
}

/* Below a quarter of the queue's bound again: on_writable. */
static void
check_writable(sprig__quic_conn *c)
{
    size_t low = sprig__quic_ep_opts(c->ep)->max_send_queue / 4;
    if (c->want_writable && queued(c) <= low && c->state == SPRIG__QS_OPEN) {
        void *udata;
        const sprig__conn_cbs *cbs = sprig__quic_ep_cbs(c->ep, &udata);
        c->want_writable = false;
        if (cbs->on_writable) {
            cbs->on_writable(&c->base, c->base.udata);
        }
    }
}

static void
io_acked(void *ctx, int64_t sid, uint64_t n)
{
    sprig__quic_conn *c = ctx;
    if (sid < 0) {
        c->out.head += (size_t)n;
        c->out.sent -= (size_t)n;
        if (c->out.head == c->out.len) {
            c->out.head = c->out.len = 0;
        }
    } else {
        sprig__qstream *s = stream_find(c, sid);
        if (s && s->out) {
            size_t k = (size_t)n > s->out_len - s->out_acked
                           ? s->out_len - s->out_acked
                           : (size_t)n;
            s->out_acked += k;
            c->sq_bytes -= k;
        }
    }
    check_writable(c);
}

static void
io_stream_closed(void *ctx, int64_t sid)
{
    sprig__quic_conn *c = ctx;
    sprig__qstream *s = stream_find(c, sid);
    if (s) {
        stream_remove(c, s);
    }
    check_writable(c);
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
    io->stream_closed = io_stream_closed;
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
    sprig__free_wiped(c->in.buf, c->in.cap);
    while (c->streams) {
        stream_remove(c, c->streams);
    }
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

/* Client: open a stream for each request waiting for one.  When the
 * server allows none and none is open (a server that takes one stream),
 * the request goes on the message stream instead. */
static int
open_streams(sprig__quic_conn *c)
{
    bool any_open = false;
    for (sprig__qstream *s = c->streams; s; s = s->next) {
        any_open |= s->sid >= 0;
    }
    for (sprig__qstream *s = c->streams, *next; s; s = next) {
        next = s->next;
        if (s->sid >= 0 || sprig__qng_open_stream(c->q, &s->sid) == SPRIG_OK) {
            any_open = true;
            continue;
        }
        s->sid = -1;
        if (any_open || sprig__qng_streams_left(c->q) > 0) {
            continue; /* waits for the server's credit */
        }
        if (qbuf_append(&c->out, s->out, s->out_len) != SPRIG_OK) {
            return SPRIG_ENOMEM;
        }
        stream_remove(c, s);
    }
    return SPRIG_OK;
}

/* What each stream has to write, into `ch` (the message stream first);
 * `own[i]` the request stream of ch[i].  How many. */
static size_t
gather(sprig__quic_conn *c, sprig__qng_chunk *ch, sprig__qstream **own,
       size_t cap)
{
    size_t k = 0, n = c->out.len - c->out.head - c->out.sent;
    ch[k] = (sprig__qng_chunk){.sid = -1};
    ch[k].d = n ? c->out.data + c->out.head + c->out.sent : NULL;
    ch[k].n = n;
    own[k++] = NULL;
    for (sprig__qstream *s = c->streams; s && k < cap; s = s->next) {
        if (s->sid >= 0 && s->out && s->out_sent < s->out_len) {
            ch[k] = (sprig__qng_chunk){.sid = s->sid, .fin = true};
            ch[k].d = s->out + s->out_sent;
            ch[k].n = s->out_len - s->out_sent;
            own[k++] = s;
        }
    }
    return k;
}

/* A server that received a request this loop turn and has nothing to
 * send lets the request's ACK wait for the answer (a worker's, on a later
 * turn), up to SPRIG__QUIC_ACK_WAIT_MS from the first such request, so
 * the answer's datagram carries it instead of an ACK-only one going now.
 * True: wait (the timer, or the answer, flushes). */
static bool
ack_waits(sprig__quic_conn *c, size_t nchunks, const sprig__qng_chunk *ch)
{
    bool req = c->defer_ack;
    c->defer_ack = false;
    if (nchunks > 1 || ch[0].n > 0 || c->state != SPRIG__QS_OPEN ||
        (!req && !c->ack_wait_until)) {
        return false;
    }
    uint64_t now = uv_now(sprig__quic_ep_loop(c->ep));
    if (!c->ack_wait_until) {
        c->ack_wait_until = now + SPRIG__QUIC_ACK_WAIT_MS;
        sprig__quic_ep_count(c->ep, &sprig__quic_ep_stats(c->ep)->ack_waits);
        if (!uv_is_active((uv_handle_t *)&c->timer) ||
            uv_timer_get_due_in(&c->timer) > SPRIG__QUIC_ACK_WAIT_MS) {
            uv_timer_start(&c->timer, on_timer, SPRIG__QUIC_ACK_WAIT_MS, 0);
        }
    }
    return now < c->ack_wait_until;
}

/* Hand the engine what waits on every stream; note what it took.  A
 * server's ACK may wait for its answer instead (ack_waits: returns
 * SPRIG__QNG_OK with nothing written, `*waited` set). */
static int
flush_streams(sprig__quic_conn *c, bool *waited)
{
    sprig__qng_chunk ch[SPRIG__QUIC_REQ_STREAMS + 2];
    sprig__qstream *own[SPRIG__QUIC_REQ_STREAMS + 2];
    if (c->streams && c->base.client && open_streams(c) != SPRIG_OK) {
        c->violation = SPRIG_CLOSE_INTERNAL;
        snprintf(c->violation_reason, sizeof c->violation_reason,
                 "out of memory queueing a request");
        return SPRIG__QNG_OK;
    }
    size_t k = gather(c, ch, own, sizeof ch / sizeof ch[0]);
    if (!c->base.client && ack_waits(c, k, ch)) {
        *waited = true;
        return SPRIG__QNG_OK;
    }
    c->ack_wait_until = 0;
    int rc = sprig__qng_flush(c->q, ch, k, send_dgram, c);
    c->out.sent += ch[0].taken;
    for (size_t i = 1; i < k; i++) {
        own[i]->out_sent += ch[i].taken;
    }
    return rc;
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
    bool waited = false;
    if (flush_streams(c, &waited) == SPRIG__QNG_CLOSED) {
        engine_closed(c);
        return;
    }
    if (waited) {
        return; /* the timer is set for the ACK's wait */
    }
    if (c->state == SPRIG__QS_CLOSING &&
        (queued(c) == 0 || !c->opened ||
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
    c->ack_wait_until = 0; /* an ACK that waited goes now */
    c->defer_ack = false;
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
    if (queued(c) + len + 4 > o->max_send_queue) {
        sprig__quic_close(bc, SPRIG_CLOSE_POLICY, "send queue over its bound");
        return sprig__err(SPRIG_EBUSY, "send queue over %zu bytes: closing",
                          o->max_send_queue);
    }
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 8), (uint8_t)len};
    sprig__qstream *s = stream_for(c, data, len);
    int rc = s                              ? stream_put(c, s, data, len)
             : qbuf_append(&c->out, hdr, 4) ? SPRIG_ENOMEM
                                            : qbuf_append(&c->out, data, len);
    if (rc != SPRIG_OK) {
        return sprig__err(SPRIG_ENOMEM, "out of memory queueing a message");
    }
    c->s0_used |= !s;
    __atomic_add_fetch(&c->messages_sent, 1, __ATOMIC_RELAXED);
    if (queued(c) > o->max_send_queue / 4) {
        c->want_writable = true;
    }
    sprig__quic_ep_dirty(c->ep, c);
    return SPRIG_OK;
}

size_t
sprig__quic_queued(const sprig__conn *bc)
{
    return queued((const sprig__quic_conn *)bc);
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
