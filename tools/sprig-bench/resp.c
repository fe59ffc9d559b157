/*
 * resp.c -- the Redis half of `sprig-bench --pubsub --redis HOST:PORT`: a
 * raw RESP client over libuv TCP (no client library), for the same run
 * pubsub.c drives against Sprig.  A subscriber sends SUBSCRIBE and then
 * reads ["message", topic, payload] arrays; the publisher sends PUBLISH and
 * reads the integer count of receivers.  Bytes to write are queued per
 * connection and written once per loop turn (a uv_prepare callback, just
 * before the loop waits), so answers produced by one read leave together,
 * as Sprig's transport does with messages sent from a read callback.
 *
 * Parsing is incremental and allocation-free: a reply is only taken once
 * it is whole in the connection's input buffer.  Only the shapes these
 * commands answer with are accepted (a flat array of bulk strings and
 * integers, an integer, a simple string); anything else, or an error
 * reply, ends the run.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESP_MAX 3 /* elements of the arrays we accept */

/** One element of a reply: a bulk string (`s`), or an integer. */
typedef struct resp_el {
    char type; /* '$' bulk, ':' integer, '+' simple, '-' error */
    sprig_bytes s;
    int64_t i;
} resp_el;

typedef struct resp_msg {
    unsigned n; /* elements; 0 for a lone value, in el[0] */
    bool array;
    resp_el el[RESP_MAX];
} resp_msg;

/* An integer line "123\r\n" at p (before e): bytes consumed (the CRLF
 * included), 0 when incomplete, -1 when malformed. */
static long
resp_int(const uint8_t *p, const uint8_t *e, int64_t *v)
{
    const uint8_t *nl = memchr(p, '\n', (size_t)(e - p));
    if (!nl) {
        return e - p > 32 ? -1 : 0;
    }
    const uint8_t *q = p;
    bool neg = q < nl && *q == '-';
    q += neg;
    int64_t x = 0;
    for (; q < nl - 1 && *q >= '0' && *q <= '9' && x < INT64_MAX / 16; q++) {
        x = x * 10 + (*q - '0');
    }
    if (q != nl - 1 || *q != '\r' || q == p + neg) {
        return -1;
    }
    *v = neg ? -x : x;
    return nl + 1 - p;
}

/* One element at p: bytes consumed, 0 when incomplete, -1 malformed. */
static long
resp_elem(const uint8_t *p, const uint8_t *e, resp_el *out)
{
    if (p >= e) {
        return 0;
    }
    out->type = (char)*p;
    if (*p == ':') {
        long n = resp_int(p + 1, e, &out->i);
        return n > 0 ? n + 1 : n;
    }
    if (*p == '+' || *p == '-') {
        const uint8_t *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl) {
            return 0;
        }
        out->s = (sprig_bytes){p + 1, (size_t)(nl - p - 2)};
        return nl + 1 - p;
    }
    if (*p != '$') {
        return -1;
    }
    long h = resp_int(p + 1, e, &out->i);
    if (h <= 0 || out->i < 0 || out->i > (1 << 26)) {
        return h == 0 ? 0 : -1;
    }
    const uint8_t *d = p + 1 + h;
    if (e - d < out->i + 2) {
        return 0;
    }
    out->s = (sprig_bytes){d, (size_t)out->i};
    return d[out->i] == '\r' ? d + out->i + 2 - p : -1;
}

/* One whole reply at p: bytes consumed, 0 when incomplete, -1 bad. */
static long
resp_parse(const uint8_t *p, const uint8_t *e, resp_msg *m)
{
    memset(m, 0, sizeof *m);
    if (p < e && *p != '*') {
        return resp_elem(p, e, &m->el[0]);
    }
    int64_t n;
    long used = p < e ? resp_int(p + 1, e, &n) : 0;
    if (used <= 0 || n < 1 || n > RESP_MAX) {
        return used == 0 ? 0 : -1;
    }
    used++;
    m->array = true;
    m->n = (unsigned)n;
    for (unsigned i = 0; i < m->n; i++) {
        long k = resp_elem(p + used, e, &m->el[i]);
        if (k <= 0) {
            return k;
        }
        used += k;
    }
    return used;
}

static bool
is(sprig_bytes b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

/* Act on one reply. */
static void
resp_handle(ps_conn *c, const resp_msg *m)
{
    const resp_el *el = m->el;
    if (!m->array && el[0].type == '-') {
        ps_fail("Redis error: %.*s", (int)el[0].s.len,
                (const char *)el[0].s.data);
    } else if (c->pub && !m->array && el[0].type == ':') {
        ps_publish_answered(el[0].i);
    } else if (!c->pub && m->array && m->n == 3 && el[0].type == '$' &&
               is(el[0].s, "message") && el[2].type == '$') {
        ps_delivered(c, el[2].s.data, el[2].s.len);
    } else if (!c->pub && m->array && m->n == 3 && el[0].type == '$' &&
               is(el[0].s, "subscribe") && el[2].type == ':') {
        ps_ready(c);
    } else {
        ps_fail("an unexpected Redis reply");
    }
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char chunk[65536]; /* one loop, one thread: used at once */
    (void)h;
    (void)hint;
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ps_conn *c = s->data;
    if (ps.closing || ps.failed) {
        return;
    }
    if (nread < 0) {
        ps_fail("Redis connection lost: %s", uv_strerror((int)nread));
        return;
    }
    if (sprig_buf_append(&c->in, buf->base, (size_t)nread) != 0) {
        ps_fail("out of memory");
        return;
    }
    const uint8_t *p = c->in.data, *e = p + c->in.len;
    resp_msg m;
    long k = 0;
    while (!ps.failed && (k = resp_parse(p, e, &m)) > 0) {
        p += k;
        resp_handle(c, &m);
    }
    if (k < 0) {
        ps_fail("a malformed Redis reply");
    }
    c->in.len = (size_t)(e - p);
    memmove(c->in.data, p, c->in.len);
}

static void
on_connect(uv_connect_t *req, int status)
{
    ps_conn *c = req->data;
    static const char sub[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nbench\r\n";
    if (status < 0) {
        ps_fail("cannot connect to Redis: %s", uv_strerror(status));
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->pub) {
        ps_ready(c);
    } else {
        resp_send(c, (const uint8_t *)sub, sizeof sub - 1);
    }
}

int
resp_connect(ps_conn *c, uv_loop_t *loop, const char *host, int port)
{
    struct sockaddr_in addr;
    if (uv_ip4_addr(host, port, &addr) != 0) {
        fprintf(stderr, "sprig-bench: bad --redis host '%s'\n", host);
        return -1;
    }
    uv_tcp_init(loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr,
                       on_connect) != 0) {
        fprintf(stderr, "sprig-bench: cannot connect to %s:%d\n", host, port);
        uv_close((uv_handle_t *)&c->tcp, NULL);
        return -1;
    }
    return 0;
}

int
resp_send(ps_conn *c, const uint8_t *data, size_t len)
{
    if (sprig_buf_append(&c->out, data, len) != 0) {
        ps_fail("out of memory");
        return -1;
    }
    return 0;
}

static void
on_written(uv_write_t *req, int status)
{
    if (status < 0 && !ps.closing) {
        ps_fail("write to Redis: %s", uv_strerror(status));
    }
    free(req);
}

/* Write what `c` queued: at once if the socket takes it, else copied into
 * a write request (ordered after the ones pending). */
static void
flush_one(ps_conn *c)
{
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    size_t done = n > 0 ? (size_t)n : 0;
    if (n < 0 && n != UV_EAGAIN) {
        ps_fail("write to Redis: %s", uv_strerror(n));
        return;
    }
    if (done < c->out.len) {
        size_t rest = c->out.len - done;
        uv_write_t *req = malloc(sizeof *req + rest);
        if (!req) {
            ps_fail("out of memory");
            return;
        }
        memcpy(req + 1, (uint8_t *)c->out.data + done, rest);
        b = uv_buf_init((char *)(req + 1), (unsigned)rest);
        if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
            free(req);
            ps_fail("write to Redis failed");
            return;
        }
    }
    c->out.len = 0;
}

void
resp_flush_all(uv_prepare_t *p)
{
    (void)p;
    for (unsigned i = 0; i < ps.n && !ps.failed; i++) {
        if (!ps.c[i].dead && ps.c[i].out.len) {
            flush_one(&ps.c[i]);
        }
    }
}

static void
on_closed(uv_handle_t *h)
{
    ps_conn *c = h->data;
    ps_closed(c, 1000, "closed");
}

void
resp_close(ps_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
}

int
resp_template(sprig_buf *out, size_t *pay_off, const uint8_t *payload,
              uint32_t len)
{
    char head[96];
    int hl = snprintf(head, sizeof head,
                      "*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$%u\r\n", len);
    out->len = 0;
    if (sprig_buf_append(out, head, (size_t)hl) != 0 ||
        sprig_buf_append(out, payload, len) != 0 ||
        sprig_buf_append(out, "\r\n", 2) != 0) {
        return -1;
    }
    *pay_off = (size_t)hl;
    return 0;
}
