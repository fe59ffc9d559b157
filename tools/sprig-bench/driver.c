/*
 * driver.c -- the client side of sprig-bench: `threads` workers, each a
 * libuv loop holding its share of the WebSocket connections (the
 * transport of src/transport, as the server uses it).
 *
 * A phase (connecting, one test run, closing) runs each loop on its own
 * thread until the phase is over for that loop (uv_stop), then the
 * threads are joined; between phases nothing runs, so the main thread may
 * touch the loops.  In a run, every connection keeps `pipeline` requests
 * in flight: slot i of a connection carries ids i + P, i + 2P, ... so an
 * answer finds its slot by id % P whatever order answers come in, and
 * the slot's next request goes out from the answer's callback (the
 * transport queues messages sent there and writes them together once the
 * bytes read have been handled).  Requests are counted out of one atomic
 * budget shared by all connections, so a run is exactly `n` requests.
 *
 * Every answer is checked (frames.c); an error frame, a failed check, an
 * answer with an unknown id, or a connection lost is an error.  A
 * connection that received an answer it cannot match is closed: its
 * slot's state is unknown.  Each phase has a deadline (--timeout).
 *
 * With --user, each connection logs in (auth.password, BENCH_LOGIN_ID)
 * once it opens, and counts as open when the answer says it did; a login
 * refused as busy (the server hashes only so many passwords at once) is
 * sent again 10 ms later (the worker's login timer).
 *
 * With --tarantool the connections are plain TCP to Tarantool and speak
 * IPROTO (iproto.c): requests are written as they are issued, answers are
 * split off the bytes read and matched by their sync; the rest is the
 * same code.
 */
#include "bench.h"

#include "proto/envelope.h"
#include "transport/transport.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint32_t id; /* the id of the request in flight (or the last one) */
    bool busy;
    uint64_t k;  /* the item it asked for */
    uint64_t t0; /* when it was sent */
} slot;

typedef struct worker worker;

typedef struct client {
    worker *w;
    sprig__conn *conn; /* Sprig */
    uv_tcp_t tcp;      /* Tarantool */
    uv_connect_t creq;
    sprig_buf in; /* Tarantool: bytes read and not yet parsed */
    bool tt_live; /* Tarantool: the socket is not closing */
    int close_code;
    char close_reason[96];
    bool open, dead, active;
    bool login_wait, login_retry; /* --user: answer pending, resend due */
    slot *slots;
    unsigned inflight;
    uint64_t rng;
} client;

enum { PH_CONNECT, PH_RUN, PH_CLOSE };

struct worker {
    pthread_t th;
    uv_loop_t loop;
    uv_timer_t timer;
    uv_timer_t login_timer; /* --user: resends busy logins */
    sprig_buf login;        /* --user: the login frame (wiped at the end) */
    bool loop_ready;
    client *clients;
    unsigned n;
    unsigned n_open, n_closed, active;
    int phase;
    bool failed;
    frame_tpl tpl;
    uint8_t *scratch;
    bench_result res;
    uint64_t t_start, t_end;
};

static struct {
    const bench_cfg *cfg;
    worker *w;
    unsigned nw;
    pthread_barrier_t barrier;
    _Atomic uint64_t issued;
    uint64_t n;
    bench_op op;
    bool sequential;
} g;

static void note_error(worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Count an error; keep the first one's sentence. */
static void
note_error(worker *w, const char *fmt, ...)
{
    w->res.errors++;
    if (!w->res.first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->res.first_error, sizeof w->res.first_error, fmt, ap);
        va_end(ap);
    }
}

static uint64_t
rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* The client is done issuing and has nothing in flight. */
static void
client_idle(client *c)
{
    if (c->active) {
        c->active = false;
        if (--c->w->active == 0) {
            c->w->t_end = bench_now_ns();
            uv_stop(&c->w->loop);
        }
    }
}

/* Send the next request on slot `s`, if the budget allows. */
static int tt_send(client *c, const uint8_t *data, size_t len);

static int
client_send(client *c, const uint8_t *data, size_t len)
{
    if (g.cfg->tt_host) {
        return tt_send(c, data, len);
    }
    return sprig__conn_send(c->conn, data, len);
}

static bool
issue(client *c, slot *s, unsigned si)
{
    worker *w = c->w;
    const bench_cfg *cfg = g.cfg;
    uint64_t i = atomic_fetch_add_explicit(&g.issued, 1, memory_order_relaxed);
    if (i >= g.n) {
        return false;
    }
    uint64_t k;
    if (g.sequential) {
        k = i;
    } else {
        k = rng_next(&c->rng) % cfg->keyspace;
        k += g.op == OP_DB_GET ? 1 : 0; /* document ids start at 1 */
    }
    uint32_t p = cfg->pipeline;
    s->id = s->id + p > UINT32_MAX - p || s->id < p ? p + si : s->id + p;
    s->k = k;
    s->busy = true;
    if (cfg->tt_host) {
        iproto_tpl_patch(&w->tpl, s->id, k, cfg);
    } else {
        frame_tpl_patch(&w->tpl, s->id, k, cfg);
    }
    s->t0 = bench_now_ns();
    if (client_send(c, w->tpl.buf.data, w->tpl.buf.len) != 0) {
        note_error(w, "send: %s", sprig_errmsg());
        s->busy = false;
        return false;
    }
    c->inflight++;
    return true;
}

/* The connection is ready for the runs (opened, and logged in). */
static void
client_ready(client *c)
{
    c->open = true;
    if (++c->w->n_open == c->w->n) {
        uv_stop(&c->w->loop);
    }
}

static void
login_send(client *c)
{
    worker *w = c->w;
    c->login_wait = true;
    c->login_retry = false;
    if (sprig__conn_send(c->conn, w->login.data, w->login.len) != 0) {
        note_error(w, "login: %s", sprig_errmsg());
        w->failed = true;
        uv_stop(&w->loop);
    }
}

static void
on_login_timer(uv_timer_t *t)
{
    worker *w = t->data;
    for (unsigned i = 0; i < w->n; i++) {
        client *c = &w->clients[i];
        if (c->login_retry && c->conn) {
            login_send(c);
        }
    }
}

/* The answer to the login (request id BENCH_LOGIN_ID). */
static void
login_answer(client *c, const sprig__frame *f)
{
    worker *w = c->w;
    c->login_wait = false;
    if (f->kind == SPRIG__FRAME_ERROR && f->code == SPRIG_EBUSY) {
        c->login_retry = true;
        if (!uv_is_active((uv_handle_t *)&w->login_timer)) {
            uv_timer_start(&w->login_timer, on_login_timer, 10, 0);
        }
    } else if (f->kind == SPRIG__FRAME_ERROR) {
        note_error(w, "login as '%s': error %d: %.*s", g.cfg->user, f->code,
                   (int)(f->message.len > 150 ? 150 : f->message.len),
                   (const char *)f->message.data);
        w->failed = true;
        uv_stop(&w->loop);
    } else {
        client_ready(c);
    }
}

static void
on_open(sprig__conn *conn, void *udata)
{
    client *c = udata;
    (void)conn;
    if (g.cfg->user && !g.cfg->tt_host) {
        login_send(c);
    } else {
        client_ready(c);
    }
}

static void client_close(client *c, const char *why);

/* Check the answer `f` (Sprig) or `a` (Tarantool) to slot `s`. */
static void
check_answer(worker *w, const slot *s, const sprig__frame *f,
             const iproto_answer *a)
{
    char why[200];
    int bad;
    if (f && f->kind == SPRIG__FRAME_ERROR) {
        note_error(w, "%s: error %d: %.*s", bench_op_name(g.op), f->code,
                   (int)(f->message.len > 180 ? 180 : f->message.len),
                   (const char *)f->message.data);
        return;
    }
    bad = f ? frame_check(g.op, s->k, f->payload.data, f->payload.len, g.cfg,
                          w->scratch, why, sizeof why)
            : iproto_check(g.op, s->k, a, g.cfg, w->scratch, why, sizeof why);
    if (bad) {
        note_error(w, "%s", why);
    } else {
        w->res.done++;
    }
}

/* The answer to request `id` arrived: check it, count it, issue the
 * slot's next request. */
static void
answered(client *c, uint32_t id, const sprig__frame *f, const iproto_answer *a)
{
    worker *w = c->w;
    uint64_t now = bench_now_ns();
    unsigned si = id % g.cfg->pipeline;
    slot *s = &c->slots[si];
    if ((f && f->kind == SPRIG__FRAME_PUSH) || !s->busy || s->id != id) {
        if (f && f->kind == SPRIG__FRAME_ERROR) {
            note_error(w, "error frame with unknown id %u: %d: %.*s", id,
                       f->code,
                       (int)(f->message.len > 150 ? 150 : f->message.len),
                       (const char *)f->message.data);
        } else {
            note_error(w, "answer with unknown id %u", id);
        }
        client_close(c, "unmatched answer");
        return;
    }
    s->busy = false;
    c->inflight--;
    hist_add(&w->res.lat, now - s->t0);
    check_answer(w, s, f, a);
    if (!issue(c, s, si) && c->inflight == 0) {
        client_idle(c);
    }
}

static void
on_message(sprig__conn *conn, const uint8_t *data, size_t len, void *udata)
{
    client *c = udata;
    worker *w = c->w;
    sprig__frame f;
    bool login = w->phase == PH_CONNECT && c->login_wait;
    if (w->phase != PH_RUN && !login) {
        note_error(w, "an answer outside a run");
        return;
    }
    if (sprig__frame_decode((sprig_bytes){data, len}, &f) != 0) {
        note_error(w, "undecodable answer: %s", sprig_errmsg());
        sprig__conn_close(conn, SPRIG_WS_NORMAL, "bad answer");
        return;
    }
    if (login && f.id == BENCH_LOGIN_ID) {
        login_answer(c, &f);
        return;
    }
    answered(c, f.id, &f, NULL);
}

/* The connection is gone (both kinds). */
static void
closed(client *c, int code, const char *reason)
{
    worker *w = c->w;
    c->dead = true;
    w->n_closed++;
    if (w->phase == PH_CLOSE) {
        if (w->n_closed == w->n) {
            uv_stop(&w->loop);
        }
        return;
    }
    if (!c->open) {
        note_error(w, "cannot connect: %s (%d)", reason, code);
        w->failed = true;
        uv_stop(&w->loop);
        return;
    }
    note_error(w, "connection closed: %s (%d)", reason, code);
    w->failed = true;
    c->inflight = 0;
    client_idle(c);
}

static void
on_close(sprig__conn *conn, int code, const char *reason, void *udata)
{
    client *c = udata;
    c->conn = NULL;
    closed(c, code, reason);
}

static const sprig__conn_cbs client_cbs = {on_open, on_message, on_close, NULL};

/* ---- Tarantool: IPROTO over TCP ------------------------------------------ */

#define TT_GREETING 128

static void
tt_on_closed(uv_handle_t *h)
{
    client *c = h->data;
    closed(c, c->close_code, c->close_reason);
}

/* Close a Tarantool connection; `closed` follows. */
static void
tt_close(client *c, int code, const char *reason)
{
    if (c->tt_live) {
        c->tt_live = false;
        c->close_code = code;
        snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
        uv_close((uv_handle_t *)&c->tcp, tt_on_closed);
    }
}

static void
client_close(client *c, const char *why)
{
    if (g.cfg->tt_host) {
        tt_close(c, SPRIG_WS_NORMAL, why);
    } else if (c->conn) {
        sprig__conn_close(c->conn, SPRIG_WS_NORMAL, why);
    }
}

static void
tt_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static _Thread_local char chunk[65536]; /* consumed before the next */
    (void)h;
    (void)hint;
    *buf = uv_buf_init(chunk, sizeof chunk);
}

/* Take the answers whole in c->in; false when the connection closed. */
static bool
tt_answers(client *c)
{
    const uint8_t *p = c->in.data, *e = p + c->in.len;
    iproto_answer a;
    long k;
    while (c->tt_live && (k = iproto_split(p, (size_t)(e - p), &a)) > 0) {
        p += k;
        if (c->w->phase != PH_RUN) {
            note_error(c->w, "an answer outside a run");
            continue;
        }
        answered(c, (uint32_t)a.sync, NULL, &a);
    }
    if (c->tt_live && k < 0) {
        note_error(c->w, "a malformed IPROTO answer");
        tt_close(c, SPRIG_WS_PROTOCOL, "malformed answer");
    }
    c->in.len = (size_t)(e - p);
    memmove(c->in.data, p, c->in.len);
    return c->tt_live;
}

static void
tt_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    client *c = st->data;
    if (nread < 0) {
        tt_close(c, SPRIG_WS_ABNORMAL, uv_strerror((int)nread));
        return;
    }
    if (sprig_buf_append(&c->in, buf->base, (size_t)nread) != 0) {
        tt_close(c, SPRIG_WS_INTERNAL, "out of memory");
        return;
    }
    if (!c->open) { /* the greeting: 128 bytes, then answers */
        if (c->in.len < TT_GREETING) {
            return;
        }
        c->in.len -= TT_GREETING;
        memmove(c->in.data, (uint8_t *)c->in.data + TT_GREETING, c->in.len);
        on_open(NULL, c);
    }
    (void)tt_answers(c);
}

static void
tt_on_connect(uv_connect_t *req, int status)
{
    client *c = req->data;
    if (status < 0) {
        tt_close(c, SPRIG_WS_ABNORMAL, uv_strerror(status));
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, tt_on_alloc, tt_on_read);
}

static int
tt_connect(worker *w, client *c)
{
    struct sockaddr_in addr;
    if (uv_ip4_addr(g.cfg->tt_host, g.cfg->tt_port, &addr) != 0) {
        fprintf(stderr, "sprig-bench: bad --tarantool host '%s'\n",
                g.cfg->tt_host);
        return -1;
    }
    uv_tcp_init(&w->loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c->creq.data = c;
    c->tt_live = true;
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr,
                       tt_on_connect) != 0) {
        fprintf(stderr, "sprig-bench: cannot connect to %s:%d\n",
                g.cfg->tt_host, g.cfg->tt_port);
        c->tt_live = false;
        uv_close((uv_handle_t *)&c->tcp, NULL);
        return -1;
    }
    return 0;
}

static void
tt_written(uv_write_t *req, int status)
{
    client *c = req->data;
    free(req);
    if (status < 0 && c->tt_live) {
        note_error(c->w, "write: %s", uv_strerror(status));
        tt_close(c, SPRIG_WS_ABNORMAL, uv_strerror(status));
    }
}

/* Write at once what the socket takes; queue a copy of the rest. */
static int
tt_send(client *c, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = c->tt_live ? uv_try_write((uv_stream_t *)&c->tcp, &b, 1) : -1;
    if (n < 0 && n != UV_EAGAIN) {
        return -1;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == len) {
        return 0;
    }
    uv_write_t *req = malloc(sizeof *req + len - done);
    if (!req) {
        return -1;
    }
    memcpy(req + 1, data + done, len - done);
    req->data = c;
    b = uv_buf_init((char *)(req + 1), (unsigned)(len - done));
    if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, tt_written) != 0) {
        free(req);
        return -1;
    }
    return 0;
}

static void
on_deadline(uv_timer_t *t)
{
    worker *w = t->data;
    note_error(w, "timed out after %u s (--timeout)", g.cfg->timeout_s);
    w->failed = true;
    uv_stop(&w->loop);
}

/* Run the worker's loop for the current phase. */
static void *
worker_main(void *arg)
{
    worker *w = arg;
    if (w->phase == PH_RUN) {
        pthread_barrier_wait(&g.barrier);
        w->t_start = w->t_end = bench_now_ns();
        for (unsigned i = 0; i < w->n; i++) {
            client *c = &w->clients[i];
            if (c->dead) {
                continue;
            }
            c->active = true;
            w->active++;
            for (unsigned s = 0; s < g.cfg->pipeline; s++) {
                if (!issue(c, &c->slots[s], s)) {
                    break;
                }
            }
            if (c->inflight == 0) {
                client_idle(c);
            }
        }
        if (w->active == 0) {
            return NULL;
        }
    }
    uint64_t ms = (uint64_t)g.cfg->timeout_s * 1000;
    uv_timer_start(&w->timer, on_deadline, ms, 0);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&w->timer);
    return NULL;
}

/* Run every worker's loop for `phase` on its own thread; 0 or -1. */
static int
phase(int ph)
{
    int rc = 0;
    for (unsigned i = 0; i < g.nw; i++) {
        g.w[i].phase = ph;
        g.w[i].failed = false;
        if (pthread_create(&g.w[i].th, NULL, worker_main, &g.w[i]) != 0) {
            fprintf(stderr, "sprig-bench: cannot start a thread\n");
            exit(1); /* a barrier would wait for it forever */
        }
    }
    for (unsigned i = 0; i < g.nw; i++) {
        pthread_join(g.w[i].th, NULL);
        rc = g.w[i].failed ? -1 : rc;
    }
    return rc;
}

int
driver_start(const bench_cfg *cfg)
{
    g.cfg = cfg;
    g.nw = cfg->threads < cfg->clients ? cfg->threads : cfg->clients;
    g.w = calloc(g.nw, sizeof *g.w);
    if (!g.w || pthread_barrier_init(&g.barrier, NULL, g.nw) != 0) {
        fprintf(stderr, "sprig-bench: out of memory\n");
        return -1;
    }
    sprig__tran_opts o;
    sprig__tran_opts_init(&o);
    o.ping_interval_ms = 0;
    o.idle_timeout_ms = 0;
    o.connect_timeout_ms = cfg->timeout_s * 1000;
    o.tls_pin_sha256 = cfg->pin;
    for (unsigned i = 0; i < g.nw; i++) {
        worker *w = &g.w[i];
        w->n = cfg->clients / g.nw + (i < cfg->clients % g.nw ? 1 : 0);
        w->clients = calloc(w->n, sizeof *w->clients);
        w->scratch = malloc(cfg->datasize ? cfg->datasize : 1);
        if (!w->clients || !w->scratch || uv_loop_init(&w->loop) != 0) {
            fprintf(stderr, "sprig-bench: out of memory\n");
            return -1;
        }
        w->loop_ready = true;
        uv_timer_init(&w->loop, &w->timer);
        uv_timer_init(&w->loop, &w->login_timer);
        w->timer.data = w->login_timer.data = w;
        if (cfg->user && frame_login(&w->login, cfg) != 0) {
            return -1;
        }
        for (unsigned j = 0; j < w->n; j++) {
            client *c = &w->clients[j];
            c->w = w;
            c->rng = cfg->seed ^ (0x9e3779b97f4a7c15ull * (i * 4096 + j + 1));
            c->slots = calloc(cfg->pipeline, sizeof *c->slots);
            if (!c->slots) {
                fprintf(stderr, "sprig-bench: out of memory\n");
                return -1;
            }
            if (cfg->tt_host
                    ? tt_connect(w, c) != 0
                    : sprig__tran_connect(&w->loop, cfg->url, &o, &client_cbs,
                                          c, &c->conn) != 0) {
                if (!cfg->tt_host) {
                    fprintf(stderr, "sprig-bench: %s: %s\n", cfg->url,
                            sprig_errmsg());
                }
                c->dead = true; /* no callback follows */
                w->n_closed++;
                return -1;
            }
        }
    }
    if (phase(PH_CONNECT) != 0) {
        for (unsigned i = 0; i < g.nw; i++) {
            if (g.w[i].res.first_error[0]) {
                fprintf(stderr, "sprig-bench: %s: %s\n", cfg->url,
                        g.w[i].res.first_error);
                break;
            }
        }
        return -1;
    }
    return 0;
}

int
driver_run(bench_op op, uint64_t n, bool sequential, bench_result *out)
{
    memset(out, 0, sizeof *out);
    hist_init(&out->lat);
    g.op = op;
    g.n = n;
    g.sequential = sequential;
    atomic_store(&g.issued, 0);
    for (unsigned i = 0; i < g.nw; i++) {
        worker *w = &g.w[i];
        memset(&w->res, 0, sizeof w->res);
        hist_init(&w->res.lat);
        w->active = 0;
        if ((g.cfg->tt_host ? iproto_tpl_init(&w->tpl, op, g.cfg)
                            : frame_tpl_init(&w->tpl, op, g.cfg)) != 0) {
            return -1;
        }
    }
    int rc = phase(PH_RUN);
    uint64_t t0 = UINT64_MAX, t1 = 0;
    for (unsigned i = 0; i < g.nw; i++) {
        worker *w = &g.w[i];
        frame_tpl_free(&w->tpl);
        t0 = w->t_start < t0 ? w->t_start : t0;
        t1 = w->t_end > t1 ? w->t_end : t1;
        out->done += w->res.done;
        out->errors += w->res.errors;
        hist_merge(&out->lat, &w->res.lat);
        if (!out->first_error[0] && w->res.first_error[0]) {
            memcpy(out->first_error, w->res.first_error,
                   sizeof out->first_error);
        }
    }
    out->seconds = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
    if (out->done + out->errors < n && rc == 0) {
        rc = -1; /* every connection is gone */
    }
    return rc;
}

void
driver_stop(void)
{
    if (!g.w) {
        return;
    }
    bool any = false;
    for (unsigned i = 0; i < g.nw; i++) {
        worker *w = &g.w[i];
        for (unsigned j = 0; j < w->n && w->clients; j++) {
            client *c = &w->clients[j];
            if (c->conn || c->tt_live) {
                client_close(c, "benchmark over");
                any = true;
            }
        }
    }
    if (any) {
        phase(PH_CLOSE);
    }
    for (unsigned i = 0; i < g.nw; i++) {
        worker *w = &g.w[i];
        if (w->loop_ready) {
            uv_close((uv_handle_t *)&w->timer, NULL);
            uv_close((uv_handle_t *)&w->login_timer, NULL);
            uv_run(&w->loop, UV_RUN_DEFAULT);
            uv_loop_close(&w->loop);
        }
        for (unsigned j = 0; j < w->n && w->clients; j++) {
            free(w->clients[j].slots);
            sprig_buf_clear(&w->clients[j].in);
        }
        free(w->clients);
        free(w->scratch);
        if (w->login.data) {
            explicit_bzero(w->login.data, w->login.len);
        }
        sprig_buf_clear(&w->login);
    }
    pthread_barrier_destroy(&g.barrier);
    free(g.w);
    g.w = NULL;
}
