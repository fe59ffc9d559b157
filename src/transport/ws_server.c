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
 */
#include "ws_int.h"

#include <stdio.h>
#include <unistd.h>

struct sprig__listener {
    uv_tcp_t tcp;
    uv_tcp_t spare; /* accepts-and-closes when out of memory */
    uv_loop_t *loop;
    sprig__ws_cfg *cfg;
    bool has_socket, spare_busy, closed;
    int handles; /* open uv handles; freed at 0 after close */
    int port;
    sprig__conn *conns;
    size_t nconns, nrefusing;
};

/* ---- bookkeeping --------------------------------------------------------- */

static void
track(sprig__listener *l, sprig__conn *c)
{
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
}

void
sprig__listener_forget(sprig__listener *l, sprig__conn *c)
{
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
}

static void
listener_free(sprig__listener *l)
{
    sprig__ws_cfg_unref(l->cfg);
    sprig__free(l);
}

static void
on_listener_handle_closed(uv_handle_t *h)
{
    sprig__listener *l = h->data;
    if (--l->handles == 0 && l->closed) {
        listener_free(l);
    }
}

/* "127.0.0.1:54321" or "[::1]:54321" into c->peer. */
static void
set_peer(sprig__conn *c)
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
    sprig__listener *l = h->data;
    l->spare_busy = false;
    if (l->closed) {
        on_listener_handle_closed(h);
        return;
    }
    uv_tcp_init(l->loop, &l->spare); /* ready for the next time */
}

/* No memory for a connection: take the socket off the queue and close it. */
static void
reject_spare(sprig__listener *l)
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
    sprig__listener *l = server->data;
    sprig__conn *c;
    if (status < 0 || l->closed) {
        return;
    }
    if (sprig__conn_new(l->loop, l->cfg, &c) != SPRIG_OK) {
        reject_spare(l);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        sprig__conn_destroy(c);
        return;
    }
    size_t max = l->cfg->opts.max_connections;
    c->refuse_full = l->nconns >= max;
    if (c->refuse_full && l->nrefusing >= max) {
        c->reset = true;
        sprig__conn_destroy(c);
        return;
    }
    track(l, c);
    uv_tcp_nodelay(&c->tcp, 1);
    set_peer(c);
    if (sprig__conn_start_server(c) != SPRIG_OK) {
        sprig__conn_destroy(c);
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
bind_and_listen(sprig__listener *l, const char *host, int port)
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
                 const sprig__ws_opts *opts, const sprig__conn_cbs *cbs,
                 void *udata, sprig__listener **out)
{
    if (!loop || !cbs || !out || port < 0 || port > 65535) {
        return sprig__err(SPRIG_EINVAL, "listen: loop, callbacks and a port "
                                        "in 0..65535 are needed");
    }
    sprig__listener *l = sprig__calloc(1, sizeof *l);
    if (!l) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a listener");
    }
    l->loop = loop;
    int rc = sprig__ws_cfg_new(opts, cbs, udata, true, &l->cfg);
    if (rc) {
        sprig__free(l);
        return rc;
    }
    if (host) {
        uv_tcp_init(loop, &l->tcp);
        uv_tcp_init(loop, &l->spare);
        l->tcp.data = l->spare.data = l;
        l->has_socket = true;
        l->handles = 2;
        rc = bind_and_listen(l, host, port);
        if (rc) {
            sprig__listener_close(l);
            return rc;
        }
    }
    *out = l;
    return SPRIG_OK;
}

int
sprig__listener_port(const sprig__listener *l)
{
    return l->port;
}

void
sprig__listener_close(sprig__listener *l)
{
    if (!l || l->closed) {
        return;
    }
    l->closed = true;
    while (l->conns) {
        sprig__conn *c = l->conns;
        bool opened = c->opened;
        sprig__listener_forget(l, c);
        if (!opened) {
            sprig__conn_destroy(c);
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
adopt_fail(uv_os_sock_t fd, sprig__conn *c, int rc)
{
    if (c) {
        sprig__conn_destroy(c); /* owns fd when uv_tcp_open succeeded */
    } else {
        close(fd);
    }
    return rc;
}

int
sprig__ws_adopt(sprig__listener *l, uv_os_sock_t fd,
                const uint8_t *already_read, size_t n, bool upgraded,
                sprig__conn **out)
{
    sprig__conn *c = NULL;
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
    int rc = sprig__conn_new(l->loop, l->cfg, &c);
    if (rc) {
        return adopt_fail(fd, NULL, rc);
    }
    int r = uv_tcp_open(&c->tcp, fd);
    if (r < 0) {
        close(fd);
        rc = sprig__err(SPRIG_EIO, "adopt: %s", uv_strerror(r));
        sprig__conn_destroy(c);
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
    sprig__conn_start_adopt(c);
    if (out) {
        *out = c;
    }
    return SPRIG_OK;
}
