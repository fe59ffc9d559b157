/*
 * tcpping.c -- `sprig-bench --tcp-ping SECONDS`: the loopback's physical
 * limit for request/answer traffic.  An echo server (one libuv loop on its
 * own thread, like a single-threaded server) and `clients` connections on
 * the calling thread's loop, each sending a 16-byte message and waiting
 * for its echo before sending the next (unpipelined).  Nothing is parsed,
 * nothing is stored: what is left is two syscalls and a wake-up on each
 * side per round trip, which bounds what any server on this machine can
 * answer unpipelined with the client on the same cores.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define PING_LEN 16

typedef struct echo_srv {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    int port;
} echo_srv;

typedef struct ping_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    size_t got;
    bool connected;
    struct ping_state *st;
} ping_conn;

typedef struct ping_state {
    uv_loop_t loop;
    uv_timer_t timer;
    ping_conn *conns;
    unsigned n, connected, live;
    bool over, failed;
    uint64_t trips, t0, t1;
} ping_state;

static char ping_msg[PING_LEN] = "sprig-bench ping";
static char echo_buf[65536];
static char client_buf[65536];

static void
on_alloc_echo(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(echo_buf, sizeof echo_buf);
}

static void
free_handle(uv_handle_t *h)
{
    free(h);
}

static void
on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void
on_echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        uv_close((uv_handle_t *)s, free_handle);
        return;
    }
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    int w = n ? uv_try_write(s, &out, 1) : 0;
    if (w < 0 && w != UV_EAGAIN) {
        uv_close((uv_handle_t *)s, free_handle);
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    if (done < (size_t)n) { /* the rest through a copy */
        struct {
            uv_write_t req;
            char data[];
        } *wr = malloc(sizeof *wr + (size_t)n - done);
        if (!wr) {
            uv_close((uv_handle_t *)s, free_handle);
            return;
        }
        memcpy(wr->data, b->base + done, (size_t)n - done);
        uv_buf_t rest = uv_buf_init(wr->data, (unsigned)((size_t)n - done));
        uv_write(&wr->req, s, &rest, 1, on_written);
    }
}

static void
on_echo_conn(uv_stream_t *l, int status)
{
    if (status < 0) {
        return;
    }
    uv_tcp_t *c = malloc(sizeof *c);
    if (!c) {
        return;
    }
    uv_tcp_init(l->loop, c);
    c->data = NULL; /* freed on close (close_any) */
    if (uv_accept(l, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, free_handle);
        return;
    }
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, on_alloc_echo, on_echo_read);
}

static void
close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, h->type == UV_TCP && h->data == NULL ? free_handle : NULL);
    }
}

static void
on_echo_stop(uv_async_t *a)
{
    uv_walk(a->loop, close_any, NULL);
}

static void *
echo_main(void *arg)
{
    echo_srv *e = arg;
    uv_run(&e->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- the clients --------------------------------------------------------- */

static void
on_alloc_client(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(client_buf, sizeof client_buf);
}

static void
send_ping(ping_conn *c)
{
    uv_buf_t b = uv_buf_init(ping_msg, PING_LEN);
    if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != PING_LEN) {
        c->st->failed = true; /* 16 bytes on an idle socket: never short */
        uv_stop(&c->st->loop);
    }
}

static void
conn_done(ping_conn *c)
{
    if (--c->st->live == 0) {
        c->st->t1 = bench_now_ns();
        uv_stop(&c->st->loop);
    }
}

static void
on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    ping_conn *c = s->data;
    ping_state *st = c->st;
    if (n < 0) {
        st->failed = true;
        uv_stop(&st->loop);
        return;
    }
    c->got += (size_t)n;
    while (c->got >= PING_LEN) {
        c->got -= PING_LEN;
        st->trips++;
        if (st->over) {
            conn_done(c);
        } else {
            send_ping(c);
        }
    }
}

static void
on_connected(uv_connect_t *req, int status)
{
    ping_conn *c = req->data;
    ping_state *st = c->st;
    if (status < 0) {
        fprintf(stderr, "sprig-bench: tcp-ping connect: %s\n",
                uv_strerror(status));
        st->failed = true;
        uv_stop(&st->loop);
        return;
    }
    c->connected = true;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc_client, on_client_read);
    if (++st->connected == st->n) {
        uv_stop(&st->loop);
    }
}

static void
on_over(uv_timer_t *t)
{
    ping_state *st = t->data;
    st->over = true;
}

int
tcp_ping(unsigned clients, double seconds, bool csv)
{
    echo_srv e = {0};
    ping_state st = {0};
    pthread_t th;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_loop_init(&e.loop);
    uv_tcp_init(&e.loop, &e.listener);
    e.listener.data = &e; /* not freed by close_any */
    uv_async_init(&e.loop, &e.stop, on_echo_stop);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&e.listener, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&e.listener, 1024, on_echo_conn) != 0 ||
        uv_tcp_getsockname(&e.listener, (struct sockaddr *)&bound, &blen)) {
        fprintf(stderr, "sprig-bench: tcp-ping: cannot listen\n");
        return 1;
    }
    e.port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    if (pthread_create(&th, NULL, echo_main, &e) != 0) {
        return 1;
    }
    uv_loop_init(&st.loop);
    st.n = clients;
    st.conns = calloc(clients, sizeof *st.conns);
    uv_ip4_addr("127.0.0.1", e.port, &addr);
    for (unsigned i = 0; st.conns && i < clients; i++) {
        ping_conn *c = &st.conns[i];
        c->st = &st;
        uv_tcp_init(&st.loop, &c->tcp);
        c->tcp.data = c->connect.data = c;
        uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr,
                       on_connected);
    }
    if (st.conns) {
        uv_run(&st.loop, UV_RUN_DEFAULT); /* until all connected */
    }
    if (st.conns && !st.failed) {
        uv_timer_init(&st.loop, &st.timer);
        st.timer.data = &st;
        uv_timer_start(&st.timer, on_over, (uint64_t)(seconds * 1000), 0);
        st.live = clients;
        st.t0 = bench_now_ns();
        for (unsigned i = 0; i < clients; i++) {
            send_ping(&st.conns[i]);
        }
        uv_run(&st.loop, UV_RUN_DEFAULT); /* until every one finished */
        uv_close((uv_handle_t *)&st.timer, NULL);
    }
    for (unsigned i = 0; st.conns && i < clients; i++) {
        uv_close((uv_handle_t *)&st.conns[i].tcp, NULL);
    }
    uv_run(&st.loop, UV_RUN_DEFAULT);
    uv_loop_close(&st.loop);
    free(st.conns);
    uv_async_send(&e.stop);
    pthread_join(th, NULL);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    uv_loop_close(&e.loop);
    if (!st.conns || st.failed || st.t1 <= st.t0) {
        fprintf(stderr, "sprig-bench: tcp-ping failed\n");
        return 1;
    }
    double rate = (double)st.trips / ((double)(st.t1 - st.t0) / 1e9);
    if (csv) {
        printf("\"tcp.ping\",\"%.2f\",\"%u\"\n", rate, clients);
    } else {
        printf("tcp.ping: %.0f round trips per second (%u connections, "
               "16-byte messages, echo server on one thread)\n",
               rate, clients);
    }
    return 0;
}
