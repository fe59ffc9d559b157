/*
 * ws_server.c -- WebSocket listeners: bind, accept, count, adopt.
 *
 * Design notes.  A listener owns a shared configuration (options,
 * callbacks, TLS credentials; ws_int.h) and knows every connection it
 * accepted or adopted, in a list, until that connection is destroyed
 * (sprig__listener_forget).  States of a listener: LISTENING (or
 * adopt-only, without a socket) -> CLOSED by sprig__listener_close(), which
 * drops the connections that have not opened and lets the open ones live
 * on without it; the memory goes when its handles have closed.
 *
 * Admission: a connection over max_connections still gets a TLS handshake
 * and an HTTP answer, 503, so the client learns why; those refusals are
 * bounded too (at most max_connections of them lingering), and past that
 * new sockets are reset at once.  If a connection cannot be allocated the
 * socket is accepted into a spare handle and closed, so the listener never
 * stalls (libuv stops accepting while a connection waits in accept).
 *
 * Listing (sprig__ws_listener_conns, any thread): the list's links change
 * under `lock`, and a connection is listed once it opened
 * (sprig__ws_listener_opened, under the lock, after its TLS state and
 * peer are final); its counters are read atomically.
 */
#include "ws_int.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

struct sprig__ws_listener {
    sprig__listener base; /* first: the operations table */
    pthread_mutex_t lock; /* the list of connections, for listing */
    uv_tcp_t tcp;
    uv_tcp_t spare; /* accepts-and-closes when out of memory */
    uv_loop_t *loop;
    sprig__ws_cfg *cfg;
    bool has_socket, spare_busy, closed;
    int handles; /* open uv handles; freed at 0 after close */
    int port;
    sprig__ws_conn *conns;
    size_t nconns, nrefusing;
};

/* ---- bookkeeping --------------------------------------------------------- */

static void
track(sprig__ws_listener *l, sprig__ws_conn *c)
{
    pthread_mutex_lock(&l->lock);
    c->listener = l;
    c->lprev = NULL;
    c->lnext = l->conns;
    if (l->conns) {
        l->conns->lprev = c;
    }
    l->conns = c;
    if (c->refuse_full) {
        l->nrefusing++;
    } else {
        l->nconns++;
    }
    pthread_mutex_unlock(&l->lock);
}

void
sprig__listener_forget(sprig__ws_listener *l, sprig__ws_conn *c)
{
    pthread_mutex_lock(&l->lock);
    if (c->lprev) {
        c->lprev->lnext = c->lnext;
    } else {
        l->conns = c->lnext;
    }
    if (c->lnext) {
        c->lnext->lprev = c->lprev;
    }
    if (c->refuse_full) {
        l->nrefusing--;
    } else {
        l->nconns--;
    }
    c->listener = NULL;
    c->lprev = c->lnext = NULL;
    c->listed = false;
    pthread_mutex_unlock(&l->lock);
}

void
sprig__ws_listener_opened(sprig__ws_listener *l, sprig__ws_conn *c)
{
    pthread_mutex_lock(&l->lock);
    c->listed = true;
    pthread_mutex_unlock(&l->lock);
}

size_t
sprig__ws_listener_conns(sprig__listener *bl, sprig_conn_info *out, size_t cap)
{
    sprig__ws_listener *l = (sprig__ws_listener *)bl;
    size_t n = 0;
    pthread_mutex_lock(&l->lock);
    for (sprig__ws_conn *c = l->conns; c; c = c->lnext) {
        if (c->listed && n < cap) {
            sprig__ws_info(&c->base, &out[n]);
        }
        n += c->listed;
    }
    pthread_mutex_unlock(&l->lock);
    return n;
}

static void
listener_free(sprig__ws_listener *l)
{
    pthread_mutex_destroy(&l->lock);
    sprig__ws_cfg_unref(l->cfg);
    sprig__free(l);
}

static void
on_listener_handle_closed(uv_handle_t *h)
{
    sprig__ws_listener *l = h->data;
    if (--l->handles == 0 && l->closed) {
        listener_free(l);
    }
}

/* "127.0.0.1:54321" or "[::1]:54321" into c->peer. */
static void
set_peer(sprig__ws_conn *c)
{
    struct sockaddr_storage ss = {0};
    int len = sizeof ss;
    char ip[48] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
        }
    }
    snprintf(c->peer, sizeof c->peer,
             ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

/* ---- accepting ----------------------------------------------------------- */

static void
on_spare_closed(uv_handle_t *h)
{
    sprig__ws_listener *l = h->data;
    l->spare_busy = false;
    if (l->closed) {
        on_listener_handle_closed(h);
        return;
    }
    uv_tcp_init(l->loop, &l->spare); /* ready for the next time */
}

/* No memory for a connection: take the socket off the queue and close it. */
static void
reject_spare(sprig__ws_listener *l)
{
    if (l->spare_busy) {
        return; /* accepting pauses until the spare is back */
    }
    l->spare_busy = true;
    uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&l->spare);
    uv_close((uv_handle_t *)&l->spare, on_spare_closed);
}

static void
on_connection(uv_stream_t *server, int status)
{
    sprig__ws_listener *l = server->data;
    sprig__ws_conn *c;
    if (status < 0 || l->closed) {
        return;
    }
    if (sprig__ws_conn_new(l->loop, l->cfg, &c) != SPRIG_OK) {
        reject_spare(l);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        sprig__ws_conn_destroy(c);
        return;
    }
    size_t max = l->cfg->opts.max_connections;
    c->refuse_full = l->nconns >= max;
    if (c->refuse_full && l->nrefusing >= max) {
        c->reset = true;
        sprig__ws_conn_destroy(c);
        return;
    }
    track(l, c);
    uv_tcp_nodelay(&c->tcp, 1);
    set_peer(c);
    if (sprig__ws_conn_start_server(c) != SPRIG_OK) {
        sprig__ws_conn_destroy(c);
    }
}

/* ---- listening ----------------------------------------------------------- */

static int
parse_host(const char *host, int port, struct sockaddr_storage *ss)
{
    if (!strcmp(host, "localhost")) {
        host = "127.0.0.1";
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) {
        return SPRIG_OK;
    }
    return sprig__err(SPRIG_EINVAL,
                      "listen address \"%s\" is not an IP "
                      "address",
                      host);
}

static int
bind_and_listen(sprig__ws_listener *l, const char *host, int port)
{
    struct sockaddr_storage ss;
    int rc = parse_host(host, port, &ss);
    if (rc) {
        return rc;
    }
    int r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (r == 0) {
        r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    }
    if (r < 0) {
        return sprig__err(SPRIG_EIO, "listen on %s:%d: %s", host, port,
                          uv_strerror(r));
    }
    int len = sizeof ss;
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    l->port = ss.ss_family == AF_INET6
                  ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return SPRIG_OK;
}

int
sprig__ws_listen(uv_loop_t *loop, const char *host, int port,
                 const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                 void *udata, sprig__listener **out)
{
    if (!loop || !cbs || !out || port < 0 || port > 65535) {
        return sprig__err(SPRIG_EINVAL, "listen: loop, callbacks and a port "
                                        "in 0..65535 are needed");
    }
    sprig__ws_listener *l = sprig__calloc(1, sizeof *l);
    if (!l) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a listener");
    }
    l->base.ops = &sprig__ws_tran;
    l->loop = loop;
    int rc = sprig__ws_cfg_new(opts, cbs, udata, true, &l->cfg);
    if (rc) {
        sprig__free(l);
        return rc;
    }
    pthread_mutex_init(&l->lock, NULL);
    if (host) {
        uv_tcp_init(loop, &l->tcp);
        uv_tcp_init(loop, &l->spare);
        l->tcp.data = l->spare.data = l;
        l->has_socket = true;
        l->handles = 2;
        rc = bind_and_listen(l, host, port);
        if (rc) {
            sprig__ws_listener_close(&l->base);
            return rc;
        }
    }
    *out = &l->base;
    return SPRIG_OK;
}

int
sprig__ws_listener_port(const sprig__listener *l)
{
    return ((const sprig__ws_listener *)l)->port;
}

void
sprig__ws_listener_close(sprig__listener *bl)
{
    sprig__ws_listener *l = (sprig__ws_listener *)bl;
    if (!l || l->closed) {
        return;
    }
    l->closed = true;
    while (l->conns) {
        sprig__ws_conn *c = l->conns;
        bool opened = c->opened;
        sprig__listener_forget(l, c);
        if (!opened) {
            sprig__ws_conn_destroy(c);
        }
    }
    if (!l->has_socket) {
        listener_free(l);
        return;
    }
    uv_close((uv_handle_t *)&l->tcp, on_listener_handle_closed);
    if (!l->spare_busy) {
        uv_close((uv_handle_t *)&l->spare, on_listener_handle_closed);
    }
}

/* ---- adopting ------------------------------------------------------------ */

static int
adopt_fail(uv_os_sock_t fd, sprig__ws_conn *c, int rc)
{
    if (c) {
        sprig__ws_conn_destroy(c); /* owns fd when uv_tcp_open succeeded */
    } else {
        close(fd);
    }
    return rc;
}

int
sprig__ws_adopt(sprig__listener *bl, uv_os_sock_t fd,
                const uint8_t *already_read, size_t n, bool upgraded,
                sprig__conn **out)
{
    sprig__ws_listener *l = (sprig__ws_listener *)bl;
    sprig__ws_conn *c = NULL;
    if (!l || l->closed || (n && !already_read)) {
        return adopt_fail(fd, NULL,
                          sprig__err(SPRIG_EINVAL, "adopt: bad "
                                                   "arguments"));
    }
    if (l->nconns >= l->cfg->opts.max_connections) {
        return adopt_fail(fd, NULL,
                          sprig__err(SPRIG_EBUSY,
                                     "adopt: over "
                                     "max_connections (%zu)",
                                     l->cfg->opts.max_connections));
    }
    int rc = sprig__ws_conn_new(l->loop, l->cfg, &c);
    if (rc) {
        return adopt_fail(fd, NULL, rc);
    }
    int r = uv_tcp_open(&c->tcp, fd);
    if (r < 0) {
        close(fd);
        rc = sprig__err(SPRIG_EIO, "adopt: %s", uv_strerror(r));
        sprig__ws_conn_destroy(c);
        return rc;
    }
    if (n && !(c->adopt_bytes = sprig__memdup(already_read, n))) {
        return adopt_fail(fd, c, sprig__err(SPRIG_ENOMEM, "out of memory"));
    }
    c->adopt_len = n;
    c->adopt_upgraded = upgraded;
    track(l, c);
    uv_tcp_nodelay(&c->tcp, 1);
    set_peer(c);
    sprig__ws_conn_start_adopt(c);
    if (out) {
        *out = &c->base;
    }
    return SPRIG_OK;
}
