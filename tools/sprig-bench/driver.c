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
    sprig__conn *conn;
    bool open, dead, active;
    slot *slots;
    unsigned inflight;
    uint64_t rng;
} client;

enum { PH_CONNECT, PH_RUN, PH_CLOSE };

struct worker {
    pthread_t th;
    uv_loop_t loop;
    uv_timer_t timer;
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
    frame_tpl_patch(&w->tpl, s->id, k, cfg);
    s->t0 = bench_now_ns();
    if (sprig__conn_send(c->conn, w->tpl.buf.data, w->tpl.buf.len) != 0) {
        note_error(w, "send: %s", sprig_errmsg());
        s->busy = false;
        return false;
    }
    c->inflight++;
    return true;
}

static void
on_open(sprig__conn *conn, void *udata)
{
    client *c = udata;
    c->open = true;
    if (++c->w->n_open == c->w->n) {
        uv_stop(&c->w->loop);
    }
}

static void
on_message(sprig__conn *conn, const uint8_t *data, size_t len, void *udata)
{
    client *c = udata;
    worker *w = c->w;
    sprig__frame f;
    uint64_t now = bench_now_ns();
    if (w->phase != PH_RUN) {
        note_error(w, "an answer outside a run");
        return;
    }
    if (sprig__frame_decode((sprig_bytes){data, len}, &f) != 0) {
        note_error(w, "undecodable answer: %s", sprig_errmsg());
        sprig__conn_close(conn, SPRIG_WS_NORMAL, "bad answer");
        return;
    }
    unsigned si = f.id % g.cfg->pipeline;
    slot *s = &c->slots[si];
    if (f.kind == SPRIG__FRAME_PUSH || !s->busy || s->id != f.id) {
        if (f.kind == SPRIG__FRAME_ERROR) {
            note_error(w, "error frame with unknown id %u: %d: %.*s", f.id,
                       f.code, (int)(f.message.len > 150 ? 150 : f.message.len),
                       (const char *)f.message.data);
        } else {
            note_error(w, "answer of kind %d with unknown id %u", (int)f.kind,
                       f.id);
        }
        sprig__conn_close(conn, SPRIG_WS_NORMAL, "unmatched answer");
        return;
    }
    s->busy = false;
    c->inflight--;
    hist_add(&w->res.lat, now - s->t0);
    if (f.kind == SPRIG__FRAME_ERROR) {
        note_error(w, "%s: error %d: %.*s", bench_op_name(g.op), f.code,
                   (int)(f.message.len > 180 ? 180 : f.message.len),
                   (const char *)f.message.data);
    } else {
        char why[200];
        if (frame_check(g.op, s->k, f.payload.data, f.payload.len, g.cfg,
                        w->scratch, why, sizeof why) != 0) {
            note_error(w, "%s", why);
        } else {
            w->res.done++;
        }
    }
    if (!issue(c, s, si) && c->inflight == 0) {
        client_idle(c);
    }
}

static void
on_close(sprig__conn *conn, int code, const char *reason, void *udata)
{
    client *c = udata;
    worker *w = c->w;
    c->conn = NULL;
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

static const sprig__conn_cbs client_cbs = {on_open, on_message, on_close, NULL};

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
        w->timer.data = w;
        for (unsigned j = 0; j < w->n; j++) {
            client *c = &w->clients[j];
            c->w = w;
            c->rng = cfg->seed ^ (0x9e3779b97f4a7c15ull * (i * 4096 + j + 1));
            c->slots = calloc(cfg->pipeline, sizeof *c->slots);
            if (!c->slots) {
                fprintf(stderr, "sprig-bench: out of memory\n");
                return -1;
            }
            if (sprig__tran_connect(&w->loop, cfg->url, &o, &client_cbs, c,
                                    &c->conn) != 0) {
                fprintf(stderr, "sprig-bench: %s: %s\n", cfg->url,
                        sprig_errmsg());
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
        if (frame_tpl_init(&w->tpl, op, g.cfg) != 0) {
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
            if (w->clients[j].conn) {
                sprig__conn_close(w->clients[j].conn, SPRIG_WS_NORMAL,
                                  "benchmark over");
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
            uv_run(&w->loop, UV_RUN_DEFAULT);
            uv_loop_close(&w->loop);
        }
        for (unsigned j = 0; j < w->n && w->clients; j++) {
            free(w->clients[j].slots);
        }
        free(w->clients);
        free(w->scratch);
    }
    pthread_barrier_destroy(&g.barrier);
    free(g.w);
    g.w = NULL;
}
