/*
 * test_ws.c -- the WebSocket transport end to end on 127.0.0.1: a server
 * on its own loop thread (as in sprig serve), transport clients on the
 * test's loop, and raw blocking sockets for what a well-behaved client
 * never sends.  Every wait has a deadline; servers stop themselves.
 *
 * The server echoes each message, except "close-me" (it closes with 4001)
 * and "flood" (it sends 64 KiB messages until its send queue refuses).
 */
#include "testutil.h"

#include "transport/http_upgrade.h"
#include "transport/transport.h"
#include "transport/ws_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#define MIB (1024 * 1024)

/* ---- a server on its own thread ------------------------------------------ */

typedef struct srv_close {
    int code;
    char reason[128];
} srv_close;

typedef struct srv {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t watchdog, flood_timer;
    sprig__conn *flood_conn;
    pthread_t thread;
    pthread_mutex_t mu;
    void (*fn)(struct srv *, void *);
    void *arg;
    bool done;
    sprig__tran_opts opts;
    sprig__listener *l, *adopt_l;
    uv_tcp_t user_http; /* test_adopt: the user's own HTTP server */
    int port, user_port;
    /* loop thread only */
    sprig__conn *conns[64];
    int nconns;
    /* under mu */
    int opens, closes;
    srv_close log[64];
    char path[64], peer[96];
    int flood_rc, flood_sends;
    size_t flood_max_queued;
    bool stuck;
} srv;

static void
srv_on_open(sprig__conn *c, void *ud)
{
    srv *s = ud;
    if (s->nconns < 64) {
        s->conns[s->nconns++] = c;
    }
    pthread_mutex_lock(&s->mu);
    s->opens++;
    snprintf(s->path, sizeof s->path, "%s", sprig__conn_path(c));
    snprintf(s->peer, sizeof s->peer, "%s", sprig__conn_peer(c));
    pthread_mutex_unlock(&s->mu);
}

static void
srv_flood(srv *s, sprig__conn *c)
{
    static uint8_t chunk[64 * 1024];
    int rc = 0, n = 0;
    size_t maxq = 0;
    while (n < 4000 && (rc = sprig__conn_send(c, chunk, sizeof chunk)) == 0) {
        n++;
        size_t q = sprig__conn_queued(c);
        maxq = q > maxq ? q : maxq;
    }
    pthread_mutex_lock(&s->mu);
    s->flood_rc = rc;
    s->flood_sends = n;
    s->flood_max_queued = maxq;
    pthread_mutex_unlock(&s->mu);
}

/* Flood from a loop callback, not from on_message, as a server answering
 * from its workers would (uv_async): sends then reach the socket at once. */
static void
srv_flood_later(uv_timer_t *t)
{
    srv *s = t->data;
    srv_flood(s, s->flood_conn);
}

#define BURST 200

/* Many small answers from one loop callback (as when the server drains
 * its workers' finished jobs): they must leave in one write. */
static void
srv_burst_later(uv_timer_t *t)
{
    srv *s = t->data;
    uint8_t msg[40];
    for (int i = 0; i < BURST; i++) {
        memset(msg, i, sizeof msg);
        SPRIG_OK_(sprig__conn_send(s->flood_conn, msg, sizeof msg));
    }
}

static void
srv_on_message(sprig__conn *c, const uint8_t *data, size_t len, void *ud)
{
    srv *s = ud;
    if (len == 5 && !memcmp(data, "burst", 5)) {
        s->flood_conn = c;
        uv_timer_start(&s->flood_timer, srv_burst_later, 0, 0);
    } else if (len == 5 && !memcmp(data, "flood", 5)) {
        s->flood_conn = c;
        uv_timer_start(&s->flood_timer, srv_flood_later, 0, 0);
    } else if (len == 8 && !memcmp(data, "close-me", 8)) {
        sprig__conn_close(c, 4001, "server says bye");
    } else {
        sprig__conn_send(c, data, len);
    }
}

static void
srv_on_close(sprig__conn *c, int code, const char *reason, void *ud)
{
    srv *s = ud;
    for (int i = 0; i < s->nconns; i++) {
        if (s->conns[i] == c) {
            s->conns[i] = s->conns[--s->nconns];
            break;
        }
    }
    pthread_mutex_lock(&s->mu);
    if (s->closes < 64) {
        s->log[s->closes].code = code;
        snprintf(s->log[s->closes].reason, sizeof s->log[0].reason, "%s",
                 reason);
    }
    s->closes++;
    pthread_mutex_unlock(&s->mu);
}

static const sprig__conn_cbs srv_cbs = {srv_on_open, srv_on_message,
                                        srv_on_close, NULL};

static void
srv_wake(uv_async_t *a)
{
    srv *s = a->data;
    pthread_mutex_lock(&s->mu);
    if (s->fn && !s->done) {
        s->fn(s, s->arg);
        s->done = true;
    }
    pthread_mutex_unlock(&s->mu);
}

static void *
srv_main(void *arg)
{
    srv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Run fn(s, arg) on the server's loop thread and wait for it. */
static void
srv_call(srv *s, void (*fn)(srv *, void *), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->fn = fn;
    s->arg = arg;
    s->done = false;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&s->mu);
        bool done = s->done;
        pthread_mutex_unlock(&s->mu);
        if (done) {
            return;
        }
        usleep(1000);
    }
    fail_msg("the server loop did not answer");
}

static void
srv_listen(srv *s, void *arg)
{
    int rc = sprig__ws_listen(&s->loop, "127.0.0.1", 0, &s->opts, &srv_cbs, s,
                              &s->l);
    s->port = rc ? -1 : sprig__listener_port(s->l);
    if (rc) {
        print_message("listen: %s\n", sprig_errmsg());
    }
}

/* The default test options: short timeouts, no keep-alive. */
static void
test_opts(sprig__tran_opts *o)
{
    sprig__tran_opts_init(o);
    o->ping_interval_ms = 0;
    o->idle_timeout_ms = 0;
    o->close_timeout_ms = 300;
    o->handshake_timeout_ms = 2000;
    o->connect_timeout_ms = 3000;
    o->status_body = "sprig test server: ok\n";
}

static srv *
srv_start(const sprig__tran_opts *o)
{
    srv *s = calloc(1, sizeof *s);
    assert_non_null(s);
    if (o) {
        s->opts = *o;
    } else {
        test_opts(&s->opts);
    }
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    uv_async_init(&s->loop, &s->wake, srv_wake);
    s->wake.data = s;
    uv_timer_init(&s->loop, &s->watchdog);
    uv_timer_init(&s->loop, &s->flood_timer);
    s->watchdog.data = s->flood_timer.data = s;
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
    srv_call(s, srv_listen, NULL);
    assert_true(s->port > 0);
    return s;
}

static void
print_handle(uv_handle_t *h, void *arg)
{
    print_message("  open handle: %s\n", uv_handle_type_name(h->type));
}

static void
srv_watchdog(uv_timer_t *t)
{
    srv *s = t->data;
    s->stuck = true;
    uv_walk(&s->loop, print_handle, NULL);
    uv_stop(&s->loop);
}

static void
srv_shutdown(srv *s, void *arg)
{
    sprig__listener_close(s->l);
    sprig__listener_close(s->adopt_l);
    if (s->user_port) {
        uv_close((uv_handle_t *)&s->user_http, NULL);
    }
    for (int i = 0; i < s->nconns; i++) {
        sprig__conn_close(s->conns[i], SPRIG_WS_GOING_AWAY, "stopping");
    }
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->flood_timer, NULL);
    uv_timer_start(&s->watchdog, srv_watchdog, 5000, 0);
    uv_unref((uv_handle_t *)&s->watchdog);
}

static void
srv_stop(srv *s)
{
    srv_call(s, srv_shutdown, NULL);
    pthread_join(s->thread, NULL);
    assert_false(s->stuck);
    uv_close((uv_handle_t *)&s->watchdog, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Wait until the server logged `n` closes; returns the n-th (1-based). */
static srv_close
srv_wait_closes(srv *s, int n, int ms)
{
    srv_close out = {0, ""};
    for (int waited = 0; waited <= ms; waited += 5) {
        pthread_mutex_lock(&s->mu);
        int closes = s->closes;
        if (closes >= n && n <= 64) {
            out = s->log[n - 1];
        }
        pthread_mutex_unlock(&s->mu);
        if (closes >= n) {
            return out;
        }
        usleep(5000);
    }
    fail_msg("the server saw %d closes, wanted %d", s->closes, n);
    return out;
}

/* ---- transport clients on the test's loop -------------------------------- */

typedef struct cli {
    sprig__conn *c;
    bool open, closed;
    int code;
    char reason[256];
    /* the echo check */
    size_t total, sent, recvd;
    const size_t *sizes;
    bool bad;
    int msgs;
} cli;

static uint8_t scratch[MIB + 16];

static uint8_t
pattern(size_t i, size_t j)
{
    return (uint8_t)(i * 131 + j * 7 + (j >> 8));
}

static void
cli_send_more(cli *k)
{
    while (k->sent < k->total && sprig__conn_queued(k->c) < 4 * MIB) {
        size_t n = k->sizes[k->sent];
        for (size_t j = 0; j < n; j++) {
            scratch[j] = pattern(k->sent, j);
        }
        SPRIG_OK_(sprig__conn_send(k->c, scratch, n));
        k->sent++;
    }
}

static void
cli_on_open(sprig__conn *c, void *ud)
{
    cli *k = ud;
    k->open = true;
    if (k->total) {
        cli_send_more(k);
    }
}

static void
cli_on_message(sprig__conn *c, const uint8_t *data, size_t len, void *ud)
{
    cli *k = ud;
    k->msgs++;
    if (!k->total) {
        return;
    }
    size_t i = k->recvd++;
    if (i >= k->total || len != k->sizes[i]) {
        k->bad = true;
        return;
    }
    for (size_t j = 0; j < len; j++) {
        if (data[j] != pattern(i, j)) {
            k->bad = true;
            return;
        }
    }
}

static void
cli_on_close(sprig__conn *c, int code, const char *reason, void *ud)
{
    cli *k = ud;
    k->closed = true;
    k->code = code;
    snprintf(k->reason, sizeof k->reason, "%s", reason);
}

static void
cli_on_writable(sprig__conn *c, void *ud)
{
    cli_send_more(ud);
}

static const sprig__conn_cbs cli_cbs = {cli_on_open, cli_on_message,
                                        cli_on_close, cli_on_writable};

static void
tick(uv_timer_t *t)
{
}

/* Run `loop` until pred(arg) or `ms` pass; returns pred(arg). */
static bool
run_until(uv_loop_t *loop, bool (*pred)(const cli *), const cli *arg, int ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uint64_t end = uv_now(loop) + (uint64_t)ms;
    while (!(pred && pred(arg)) && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return pred && pred(arg);
}

static bool
is_open(const cli *k)
{
    return k->open || k->closed;
}

static bool
is_closed(const cli *k)
{
    return k->closed;
}

static bool
echo_done(const cli *k)
{
    return k->recvd >= k->total || k->bad || k->closed;
}

static void
cli_connect(uv_loop_t *loop, const char *scheme, int port,
            const sprig__tran_opts *o, cli *k)
{
    char url[128];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/db", scheme, port);
    SPRIG_OK_(sprig__tran_connect(loop, url, o, &cli_cbs, k, &k->c));
}

/* Connect and wait until open (asserted). */
static void
cli_open(uv_loop_t *loop, int port, const sprig__tran_opts *o, cli *k)
{
    cli_connect(loop, "ws", port, o, k);
    run_until(loop, is_open, k, 5000);
    if (!k->open) {
        print_message("client closed: %d %s\n", k->code, k->reason);
    }
    assert_true(k->open && !k->closed);
}

/* One message and its echo. */
static void
cli_echo_once(uv_loop_t *loop, cli *k, size_t size)
{
    static size_t sz[1];
    sz[0] = size;
    k->sizes = sz;
    k->total = 1;
    k->sent = k->recvd = 0;
    cli_send_more(k);
    run_until(loop, echo_done, k, 5000);
    assert_int_equal(k->recvd, 1);
    assert_false(k->bad);
    k->total = 0;
}

static void
cli_close(uv_loop_t *loop, cli *k)
{
    if (!k->closed) {
        sprig__conn_close(k->c, SPRIG_WS_NORMAL, "bye");
        run_until(loop, is_closed, k, 5000);
    }
    assert_true(k->closed);
}

static void
loop_open(uv_loop_t *loop)
{
    assert_int_equal(uv_loop_init(loop), 0);
}

/* Let every handle of the client loop close, then close the loop. */
static void
loop_finish(uv_loop_t *loop)
{
    run_until(loop, NULL, NULL, 0);
    for (int i = 0; i < 400 && uv_loop_alive(loop); i++) {
        run_until(loop, NULL, NULL, 10);
    }
    if (uv_loop_close(loop) != 0) {
        uv_walk(loop, print_handle, NULL);
        fail_msg("client loop left handles open");
    }
}

/* ---- raw sockets --------------------------------------------------------- */

static int
raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {0, 200 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void
raw_send(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read until `needle` shows (NULL: until EOF) or `ms` pass. */
static size_t
raw_read(int fd, char *buf, size_t cap, const char *needle, int ms, bool *eof)
{
    size_t n = 0;
    *eof = false;
    for (int waited = 0; waited < ms && n + 1 < cap;) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r == 0) {
            *eof = true;
            break;
        }
        if (r < 0) {
            waited += 200; /* SO_RCVTIMEO */
            continue;
        }
        n += (size_t)r;
        buf[n] = '\0';
        if (needle && memmem(buf, n, needle, strlen(needle))) {
            break;
        }
    }
    buf[n] = '\0';
    return n;
}

/* A masked (client) frame, or an unmasked one. */
static size_t
frame(uint8_t *out, int op, bool fin, bool mask, const void *p, size_t n)
{
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        out[h++] = (uint8_t)(m | n);
    } else {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    }
    if (mask) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < n; i++) {
        out[h + i] = ((const uint8_t *)p)[i] ^ (mask ? key[i % 4] : 0);
    }
    return h + n;
}

/* Find the first server frame with opcode `op` in `buf`; its payload. */
static const uint8_t *
find_frame(const uint8_t *buf, size_t n, int op, size_t *len)
{
    size_t off = 0;
    while (off + 2 <= n) {
        size_t plen = buf[off + 1] & 0x7f, h = 2;
        if (plen == 126) {
            plen = ((size_t)buf[off + 2] << 8) | buf[off + 3];
            h = 4;
        }
        if ((buf[off] & 0xf) == op && off + h + plen <= n) {
            *len = plen;
            return buf + off + h;
        }
        off += h + plen;
    }
    return NULL;
}

static const char upgrade_req[] =
    "GET /raw HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: sprig/1\r\n\r\n";

/* A raw socket past the upgrade (asserted). */
static int
raw_upgraded(int port)
{
    char buf[1024];
    bool eof;
    int fd = raw_connect(port);
    raw_send(fd, upgrade_req, strlen(upgrade_req));
    raw_read(fd, buf, sizeof buf, "\r\n\r\n", 3000, &eof);
    assert_memory_equal(buf, "HTTP/1.1 101 ", 13);
    return fd;
}

/* Send `bytes` raw; expect an HTTP answer `status` whose text has `word`,
 * then EOF. */
static void
raw_expect_http(int port, const void *bytes, size_t n, const char *status,
                const char *word)
{
    static char buf[65536];
    bool eof;
    int fd = raw_connect(port);
    raw_send(fd, bytes, n);
    raw_read(fd, buf, sizeof buf, NULL, 3000, &eof);
    close(fd);
    if (strncmp(buf, status, strlen(status)) || !strstr(buf, word) || !eof) {
        print_message("got (eof %d): %.300s\n", eof, buf);
        fail();
    }
}

/* Read until EOF; expect a close frame with `code` and `word`. */
static void
raw_expect_close(int fd, int code, const char *word)
{
    static char buf[65536];
    bool eof;
    size_t n = raw_read(fd, buf, sizeof buf, NULL, 3000, &eof), len;
    const uint8_t *p = find_frame((uint8_t *)buf, n, 8, &len);
    assert_non_null(p);
    assert_true(len >= 2);
    assert_int_equal((p[0] << 8) | p[1], code);
    if (!memmem(p + 2, len - 2, word, strlen(word))) {
        print_message("close reason: %.*s\n", (int)len - 2, p + 2);
        fail();
    }
    assert_true(eof);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_echo_sizes(void **state)
{
    static size_t sizes[200];
    const size_t fixed[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, 1 * MIB};
    uint64_t seed = tu_seed();
    size_t n = 0;
    for (; n < sizeof fixed / sizeof fixed[0]; n++) {
        sizes[n] = fixed[n];
    }
    for (; n < 200; n++) { /* mostly small, some large */
        uint64_t r = tu_rand(&seed);
        sizes[n] = r % 8 ? r % 2000 : (r >> 8) % (256 * 1024);
    }
    srv *s = srv_start(NULL);
    uv_loop_t loop;
    loop_open(&loop);
    sprig__tran_opts o;
    test_opts(&o);
    o.max_send_queue = 8 * MIB; /* on_writable at 2 MiB; we stop at 4 */
    cli k = {0};
    k.sizes = sizes;
    k.total = 200;
    cli_open(&loop, s->port, &o, &k);
    if (!run_until(&loop, echo_done, &k, 30000)) {
        print_message("echo stalled: sent %zu, received %zu, queued %zu\n",
                      k.sent, k.recvd, sprig__conn_queued(k.c));
        fail();
    }
    assert_false(k.bad);
    assert_int_equal(k.recvd, 200);
    assert_string_equal(sprig__conn_path(k.c), "/db");
    assert_true(sprig__conn_is_client(k.c));
    assert_non_null(strstr(sprig__conn_peer(k.c), "127.0.0.1:"));
    cli_close(&loop, &k);
    assert_int_equal(k.code, SPRIG_WS_NORMAL);
    assert_string_equal(k.reason, "bye");
    srv_close sc = srv_wait_closes(s, 1, 3000);
    assert_int_equal(sc.code, SPRIG_WS_NORMAL);
    assert_string_equal(sc.reason, "bye");
    assert_string_equal(s->path, "/db");
    assert_non_null(strstr(s->peer, "127.0.0.1:"));
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_fragmented(void **state)
{
    srv *s = srv_start(NULL);
    uint8_t buf[512];
    size_t n = 0;
    int fd = raw_upgraded(s->port);
    n += frame(buf + n, 2, false, true, "hello ", 6);
    n += frame(buf + n, 9, true, true, "pi", 2); /* ping in between */
    n += frame(buf + n, 0, false, true, "fragmented ", 11);
    n += frame(buf + n, 0, true, true, "world", 5);
    for (size_t i = 0; i < n; i++) { /* one byte at a time */
        raw_send(fd, buf + i, 1);
    }
    char in[512];
    bool eof;
    size_t got = raw_read(fd, in, sizeof in, "world", 3000, &eof), len;
    const uint8_t *pong = find_frame((uint8_t *)in, got, 0xa, &len);
    assert_non_null(pong);
    assert_memory_equal(pong, "pi", 2);
    const uint8_t *msg = find_frame((uint8_t *)in, got, 2, &len);
    assert_non_null(msg);
    assert_int_equal(len, 22);
    assert_memory_equal(msg, "hello fragmented world", 22);
    close(fd);
    srv_close sc = srv_wait_closes(s, 1, 3000);
    assert_int_equal(sc.code, SPRIG_WS_ABNORMAL);
    srv_stop(s);
}

static void
test_keepalive_and_idle(void **state)
{
    sprig__tran_opts so;
    test_opts(&so);
    so.ping_interval_ms = 50;
    so.idle_timeout_ms = 300;
    srv *s = srv_start(&so);
    uv_loop_t loop;
    loop_open(&loop);
    sprig__tran_opts co;
    test_opts(&co);
    co.ping_interval_ms = 50;
    co.idle_timeout_ms = 300;
    cli k = {0};
    cli_open(&loop, s->port, &co, &k);
    /* a silent raw peer: it never answers the pings */
    int fd = raw_upgraded(s->port);
    uint64_t t0 = uv_hrtime();
    run_until(&loop, NULL, NULL, 800); /* pings keep the client alive */
    assert_false(k.closed);
    cli_echo_once(&loop, &k, 1000);
    raw_expect_close(fd, SPRIG_WS_GOING_AWAY, "idle");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms >= 250);
    close(fd);
    srv_close sc = srv_wait_closes(s, 1, 3000);
    assert_int_equal(sc.code, SPRIG_WS_GOING_AWAY);
    assert_non_null(strstr(sc.reason, "idle"));
    cli_close(&loop, &k);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_server_closes(void **state)
{
    srv *s = srv_start(NULL);
    uv_loop_t loop;
    loop_open(&loop);
    cli k = {0};
    cli_open(&loop, s->port, NULL, &k);
    SPRIG_OK_(sprig__conn_send(k.c, (const uint8_t *)"close-me", 8));
    assert_true(run_until(&loop, is_closed, &k, 3000));
    assert_int_equal(k.code, 4001);
    assert_string_equal(k.reason, "server says bye");
    srv_close sc = srv_wait_closes(s, 1, 3000);
    assert_int_equal(sc.code, 4001);
    loop_finish(&loop);
    srv_stop(s);
}

static bool
got_burst(const cli *k)
{
    return k->msgs >= BURST || k->closed;
}

/* The server's one connection, as its listener lists it (any thread). */
static sprig_conn_info
srv_conn_info(srv *s)
{
    sprig_conn_info ci[2];
    size_t n = 0;
    for (int i = 0; i < 400 && n == 0; i++) { /* its 101 went out first */
        if ((n = sprig__listener_conns(s->l, ci, 2)) == 0) {
            usleep(5000);
        }
    }
    assert_int_equal(n, 1);
    return ci[0];
}

/* Answer batching: BURST messages sent from one loop callback leave in one
 * write (two if the kernel took only part), counted by the transport. */
static void
test_batching(void **state)
{
    srv *s = srv_start(NULL);
    uv_loop_t loop;
    loop_open(&loop);
    cli k = {0};
    cli_open(&loop, s->port, NULL, &k);
    sprig_conn_info before = srv_conn_info(s);
    assert_string_equal(before.transport, "ws");
    assert_false(before.tls);
    SPRIG_OK_(sprig__conn_send(k.c, (const uint8_t *)"burst", 5));
    assert_true(run_until(&loop, got_burst, &k, 5000));
    assert_int_equal(k.msgs, BURST);
    sprig_conn_info after = srv_conn_info(s);
    uint64_t writes = after.writes - before.writes;
    print_message("%d messages left in %llu write(s)\n", BURST,
                  (unsigned long long)writes);
    assert_int_equal(after.messages_sent - before.messages_sent, BURST);
    assert_true(writes >= 1 && writes <= 2);
    cli_close(&loop, &k);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_subprotocol_mismatch(void **state)
{
    srv *s = srv_start(NULL);
    uv_loop_t loop;
    loop_open(&loop);
    sprig__tran_opts o;
    test_opts(&o);
    o.subprotocol = "sprig/2";
    cli k = {0};
    cli_connect(&loop, "ws", s->port, &o, &k);
    assert_true(run_until(&loop, is_closed, &k, 3000));
    assert_false(k.open);
    assert_int_equal(k.code, 400);
    assert_non_null(strstr(k.reason, "sprig.v1 is required"));
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
    raw_expect_http(s->port, req, strlen(req), "HTTP/1.1 400 ",
                    "subprotocol sprig.v1 is required; offered: none");
    assert_int_equal(s->opens, 0);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_status_page(void **state)
{
    srv *s = srv_start(NULL);
    const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_expect_http(s->port, get, strlen(get), "HTTP/1.1 200 OK",
                    "\r\n\r\nsprig test server: ok\n");
    const char post[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                        "\r\nabc";
    raw_expect_http(s->port, post, strlen(post), "HTTP/1.1 405 ", "GET");
    srv_stop(s);
}

static void
test_max_message(void **state)
{
    sprig__tran_opts so;
    test_opts(&so);
    so.max_message = 64 * 1024;
    srv *s = srv_start(&so);
    uv_loop_t loop;
    loop_open(&loop);
    cli a = {0}, b = {0};
    cli_open(&loop, s->port, NULL, &a);
    cli_open(&loop, s->port, NULL, &b);
    cli_echo_once(&loop, &b, 1000);
    cli_echo_once(&loop, &a, 64 * 1024); /* exactly the limit */
    SPRIG_OK_(sprig__conn_send(a.c, scratch, 100 * 1024));
    assert_true(run_until(&loop, is_closed, &a, 3000));
    assert_int_equal(a.code, SPRIG_WS_TOO_BIG);
    assert_non_null(strstr(a.reason, "limit of 65536"));
    srv_close sc = srv_wait_closes(s, 1, 3000);
    assert_int_equal(sc.code, SPRIG_WS_TOO_BIG);
    cli_echo_once(&loop, &b, 2000); /* the other connection is fine */
    cli_close(&loop, &b);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_slow_reader(void **state)
{
    sprig__tran_opts so;
    test_opts(&so);
    so.max_send_queue = 1 * MIB;
    srv *s = srv_start(&so);
    uv_loop_t loop;
    loop_open(&loop);
    cli b = {0};
    cli_open(&loop, s->port, NULL, &b);
    int fd = raw_upgraded(s->port); /* and then never reads */
    uint8_t f[64];
    size_t n = frame(f, 2, true, true, "flood", 5);
    raw_send(fd, f, n);
    for (int i = 0; i < 600; i++) {
        pthread_mutex_lock(&s->mu);
        int rc = s->flood_rc;
        pthread_mutex_unlock(&s->mu);
        if (rc) {
            break;
        }
        usleep(5000);
    }
    print_message("flood: %d sends, max queued %zu, rc %d\n", s->flood_sends,
                  s->flood_max_queued, s->flood_rc);
    assert_int_equal(s->flood_rc, SPRIG_EBUSY);
    assert_true(s->flood_max_queued <= 1 * MIB);
    assert_true(s->flood_sends > 16); /* the socket took some first */
    srv_close sc = srv_wait_closes(s, 1, 3000);
    assert_int_equal(sc.code, SPRIG_WS_POLICY);
    assert_non_null(strstr(sc.reason, "not reading"));
    cli_echo_once(&loop, &b, 5000); /* others unaffected */
    close(fd);
    cli_close(&loop, &b);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_max_connections(void **state)
{
    sprig__tran_opts so;
    test_opts(&so);
    so.max_connections = 2;
    srv *s = srv_start(&so);
    uv_loop_t loop;
    loop_open(&loop);
    cli a = {0}, b = {0}, c = {0}, d = {0};
    cli_open(&loop, s->port, NULL, &a);
    cli_open(&loop, s->port, NULL, &b);
    cli_connect(&loop, "ws", s->port, NULL, &c);
    assert_true(run_until(&loop, is_closed, &c, 3000));
    assert_int_equal(c.code, 503);
    assert_non_null(strstr(c.reason, "too many connections (limit 2)"));
    cli_close(&loop, &a);
    srv_wait_closes(s, 1, 3000);
    bool ok = false;
    for (int i = 0; i < 50 && !ok; i++) { /* until a's slot is free */
        memset(&d, 0, sizeof d);
        cli_connect(&loop, "ws", s->port, NULL, &d);
        run_until(&loop, is_open, &d, 3000);
        ok = d.open;
        if (!ok) {
            run_until(&loop, NULL, NULL, 20);
        }
    }
    assert_true(ok);
    cli_echo_once(&loop, &d, 10);
    cli_close(&loop, &b);
    cli_close(&loop, &d);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_handshake_timeout(void **state)
{
    sprig__tran_opts so;
    test_opts(&so);
    so.handshake_timeout_ms = 200;
    srv *s = srv_start(&so);
    uint64_t t0 = uv_hrtime();
    const char part[] = "GET / HTTP/1.1\r\nHost: x\r\n";
    raw_expect_http(s->port, part, strlen(part), "HTTP/1.1 408 ",
                    "within 200 ms");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms >= 150 && ms < 2000);
    srv_stop(s);
}

static void
test_bad_input(void **state)
{
    srv *s = srv_start(NULL);
    uv_loop_t loop;
    loop_open(&loop);
    cli ok = {0};
    cli_open(&loop, s->port, NULL, &ok);
    raw_expect_http(s->port, "GARBAGE\r\n\r\n", 11, "HTTP/1.1 400 ",
                    "malformed");
    const uint8_t hello[] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00};
    raw_expect_http(s->port, hello, sizeof hello, "HTTP/1.1 400 ", "malformed");
    char *big = malloc(12000);
    int n = snprintf(big, 12000, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + n, 'a', 10000);
    raw_expect_http(s->port, big, (size_t)n + 10000, "HTTP/1.1 431 ",
                    "over 8192");
    free(big);
    cli_echo_once(&loop, &ok, 100);
    /* an unmasked frame, a text frame: close with a reason */
    uint8_t f[64];
    int fd = raw_upgraded(s->port);
    raw_send(fd, f, frame(f, 2, true, false, "x", 1));
    raw_expect_close(fd, SPRIG_WS_PROTOCOL, "unmasked");
    close(fd);
    fd = raw_upgraded(s->port);
    raw_send(fd, f, frame(f, 1, true, true, "text", 4));
    raw_expect_close(fd, SPRIG_WS_UNSUPPORTED, "binary only");
    close(fd);
    /* a truncated frame, then the peer goes away */
    fd = raw_upgraded(s->port);
    raw_send(fd, "\x82\xfe\x10", 3);
    close(fd);
    /* garbage after the upgrade */
    fd = raw_upgraded(s->port);
    raw_send(fd, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    raw_expect_close(fd, SPRIG_WS_PROTOCOL, "reserved");
    close(fd);
    srv_close sc = srv_wait_closes(s, 4, 3000);
    (void)sc;
    int seen1006 = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->closes; i++) {
        seen1006 += s->log[i].code == SPRIG_WS_ABNORMAL;
    }
    pthread_mutex_unlock(&s->mu);
    assert_int_equal(seen1006, 1);
    cli_echo_once(&loop, &ok, 100000); /* still serving */
    cli_close(&loop, &ok);
    loop_finish(&loop);
    srv_stop(s);
}

/* Make a self-signed certificate for localhost / 127.0.0.1. */
static void
make_cert(const char *dir, const char *name)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt "
             "ec_paramgen_curve:prime256v1 -nodes -keyout %s/%s.key "
             "-out %s/%s.pem -days 1 -subj /CN=localhost -addext "
             "subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
             dir, name, dir, name);
    assert_int_equal(system(cmd), 0);
}

static void
test_wss(void **state)
{
    const char *dir = tu_tmpdir("ws");
    char cert[1100], key[1100], other[1100];
    make_cert(dir, "server");
    make_cert(dir, "other");
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(other, sizeof other, "%s/other.pem", dir);
    sprig__tran_opts so;
    test_opts(&so);
    so.tls_cert_file = cert;
    so.tls_key_file = key;
    srv *s = srv_start(&so);
    uv_loop_t loop;
    loop_open(&loop);
    /* trusted: echo, large messages included */
    static const size_t sizes[] = {0, 10, 70000, MIB, 5};
    sprig__tran_opts co;
    test_opts(&co);
    co.tls_ca_file = cert;
    cli k = {0};
    k.sizes = sizes;
    k.total = 5;
    cli_connect(&loop, "wss", s->port, &co, &k);
    assert_true(run_until(&loop, echo_done, &k, 20000));
    if (k.closed) {
        print_message("closed: %d %s\n", k.code, k.reason);
    }
    assert_int_equal(k.recvd, 5);
    assert_false(k.bad);
    /* both ends say the connection is encrypted */
    sprig_conn_info ci;
    sprig__conn_info(k.c, &ci);
    assert_string_equal(ci.transport, "wss");
    assert_true(ci.tls);
    assert_int_equal(strncmp(ci.tls_version, "TLS", 3), 0);
    assert_true(ci.tls_cipher[0] != '\0');
    sprig_conn_info sci = srv_conn_info(s);
    assert_true(sci.tls);
    assert_string_equal(sci.transport, "wss");
    assert_string_equal(sci.tls_version, ci.tls_version);
    cli_close(&loop, &k);
    /* by name: wss://localhost */
    char url[128];
    cli n = {0};
    snprintf(url, sizeof url, "wss://localhost:%d/", s->port);
    SPRIG_OK_(sprig__tran_connect(&loop, url, &co, &cli_cbs, &n, &n.c));
    assert_true(run_until(&loop, is_open, &n, 5000) && n.open);
    cli_close(&loop, &n);
    /* trusting another certificate: refused, and why */
    co.tls_ca_file = other;
    cli bad = {0};
    cli_connect(&loop, "wss", s->port, &co, &bad);
    assert_true(run_until(&loop, is_closed, &bad, 5000));
    assert_false(bad.open);
    assert_int_equal(bad.code, SPRIG_WS_TLS);
    assert_non_null(strstr(bad.reason, "TLS: server certificate refused"));
    /* plain ws:// to a TLS port fails cleanly */
    cli plain = {0};
    cli_connect(&loop, "ws", s->port, NULL, &plain);
    assert_true(run_until(&loop, is_closed, &plain, 5000));
    assert_false(plain.open);
    loop_finish(&loop);
    srv_stop(s);
    /* a missing key file: a clear error at listen time */
    sprig__listener *l;
    uv_loop_t l2;
    loop_open(&l2);
    so.tls_key_file = other; /* not a key */
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__ws_listen(&l2, "127.0.0.1", 0, &so,
                                                &srv_cbs, NULL, &l));
    assert_non_null(strstr(sprig_errmsg(), "TLS certificate"));
    loop_finish(&l2);
    tu_rmtree(dir);
}

/* test_adopt: a user's HTTP server that hands each request to Sprig. */
typedef struct user_conn {
    uv_tcp_t tcp;
    srv *s;
    char buf[4096];
    size_t n;
} user_conn;

static void
user_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    user_conn *u = h->data;
    b->base = u->buf + u->n;
    b->len = sizeof u->buf - u->n;
}

static void
user_free(uv_handle_t *h)
{
    free(h->data);
}

static void
user_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    user_conn *u = st->data;
    if (n < 0) {
        uv_close((uv_handle_t *)st, user_free);
        return;
    }
    u->n += (size_t)n;
    if (!memmem(u->buf, u->n, "\r\n\r\n", 4)) {
        return; /* the user's server reads the head itself */
    }
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)st, &fd);
    int mine = dup(fd);
    uv_read_stop(st);
    bool pre = memmem(u->buf, u->n, "GET /pre ", 9) != NULL;
    if (pre) { /* the user's server answers the upgrade itself */
        sprig__http_upgrade hu;
        size_t used;
        sprig_buf ans = {0};
        sprig__http_upgrade_init(&hu, false, "sprig/1", NULL);
        sprig__http_upgrade_feed(&hu, (uint8_t *)u->buf, u->n, &used);
        sprig__http_answer(&hu, NULL, &ans);
        uv_buf_t out = uv_buf_init(ans.data, (unsigned)ans.len);
        uv_try_write(st, &out, 1);
        sprig_buf_clear(&ans);
        memmove(u->buf, u->buf + used, u->n - used);
        u->n -= used;
    }
    sprig__ws_adopt(u->s->adopt_l, mine, (uint8_t *)u->buf, u->n, pre, NULL);
    uv_close((uv_handle_t *)st, user_free);
}

static void
user_accept(uv_stream_t *server, int status)
{
    user_conn *u = calloc(1, sizeof *u);
    u->s = server->data;
    uv_tcp_init(server->loop, &u->tcp);
    u->tcp.data = u;
    uv_accept(server, (uv_stream_t *)&u->tcp);
    uv_read_start((uv_stream_t *)&u->tcp, user_alloc, user_read);
}

static void
user_listen(srv *s, void *arg)
{
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    SPRIG_OK_(sprig__ws_listen(&s->loop, NULL, 0, &s->opts, &srv_cbs, s,
                               &s->adopt_l));
    uv_tcp_init(&s->loop, &s->user_http);
    s->user_http.data = s;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&s->user_http, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&s->user_http, 16, user_accept);
    uv_tcp_getsockname(&s->user_http, (struct sockaddr *)&ss, &len);
    s->user_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void
test_adopt(void **state)
{
    srv *s = srv_start(NULL);
    srv_call(s, user_listen, NULL);
    uv_loop_t loop;
    loop_open(&loop);
    cli k = {0};
    cli_open(&loop, s->user_port, NULL, &k);
    cli_echo_once(&loop, &k, 3000);
    cli_close(&loop, &k);
    srv_close sc = srv_wait_closes(s, 1, 3000);
    assert_int_equal(sc.code, SPRIG_WS_NORMAL);
    assert_string_equal(s->path, "/db");
    /* already upgraded by the user's server */
    char url[128];
    cli p = {0};
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/pre", s->user_port);
    SPRIG_OK_(sprig__tran_connect(&loop, url, NULL, &cli_cbs, &p, &p.c));
    assert_true(run_until(&loop, is_open, &p, 5000) && p.open);
    cli_echo_once(&loop, &p, 70000);
    cli_close(&loop, &p);
    srv_wait_closes(s, 2, 3000);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_many_clients(void **state)
{
    enum { N = 64, MSGS = 10 };
    static size_t sizes[MSGS];
    static cli k[N];
    uint64_t seed = tu_seed();
    for (int i = 0; i < MSGS; i++) {
        sizes[i] = tu_rand(&seed) % 4096;
    }
    srv *s = srv_start(NULL);
    uv_loop_t loop;
    loop_open(&loop);
    memset(k, 0, sizeof k);
    for (int i = 0; i < N; i++) {
        k[i].sizes = sizes;
        k[i].total = MSGS;
        cli_connect(&loop, "ws", s->port, NULL, &k[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_true(run_until(&loop, echo_done, &k[i], 10000));
        assert_false(k[i].bad || k[i].closed);
        assert_int_equal(k[i].recvd, MSGS);
    }
    for (int i = 0; i < N; i++) {
        sprig__conn_close(k[i].c, SPRIG_WS_NORMAL, "done");
    }
    for (int i = 0; i < N; i++) {
        assert_true(run_until(&loop, is_closed, &k[i], 5000));
        assert_int_equal(k[i].code, SPRIG_WS_NORMAL);
    }
    srv_wait_closes(s, N, 5000);
    loop_finish(&loop);
    srv_stop(s);
}

static void
test_connect_failures(void **state)
{
    uv_loop_t loop;
    loop_open(&loop);
    /* a port nobody listens on */
    srv *s = srv_start(NULL);
    int port = s->port;
    srv_stop(s);
    cli k = {0};
    cli_connect(&loop, "ws", port, NULL, &k);
    assert_true(run_until(&loop, is_closed, &k, 3000));
    assert_int_equal(k.code, SPRIG_WS_ABNORMAL);
    assert_non_null(strstr(k.reason, "connect to 127.0.0.1:"));
    /* bad URLs fail at once, with no callback */
    sprig__conn *c;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__tran_connect(&loop, "http://x/", NULL,
                                                   &cli_cbs, &k, &c));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__tran_connect(&loop, "not a url", NULL,
                                                   &cli_cbs, &k, &c));
    /* closing a connection before it opens: on_close, once, later */
    cli early = {0};
    cli_connect(&loop, "ws", port, NULL, &early);
    sprig__conn_close(early.c, SPRIG_WS_NORMAL, "changed my mind");
    assert_false(early.closed);
    assert_true(run_until(&loop, is_closed, &early, 3000));
    assert_string_equal(early.reason, "changed my mind");
    loop_finish(&loop);
}

static int
setup(void **state)
{
    *state = (void *)(intptr_t)sprig__alloc_live();
    return 0;
}

static int
teardown(void **state)
{
    long before = (long)(intptr_t)*state, now = sprig__alloc_live();
    if (now != before) {
        print_message("allocations: %ld before, %ld after\n", before, now);
        return -1;
    }
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fragmented, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_and_idle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subprotocol_mismatch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
