/*
 * quic_ep.c -- QUIC endpoints: a UDP socket on the libuv loop and the
 * connections it carries.  A listener's endpoint routes each datagram by
 * its destination connection id (a hash table of every id its connections
 * issued, and the client's original id) and decides, through the engine,
 * what a datagram for no connection gets: version negotiation, a Retry, a
 * stateless reset, a refusal, or a new connection.  A client's endpoint
 * carries its one connection on a connected UDP socket.
 *
 * Design notes.  Admission: past SPRIG__QUIC_RETRY_AFTER handshakes in
 * progress, a new peer gets a Retry and costs nothing until it comes back
 * with the token (so a flood of Initials from spoofed sources creates no
 * state); past max_connections it gets CONNECTION_REFUSED.  Handshakes that
 * stall end at handshake_timeout.  Memory per listener is therefore
 * bounded by max_connections.
 *
 * Lifetime: a listener's endpoint lives until it is closed *and* its last
 * connection is gone (open connections keep using its socket after
 * sprig__listener_close()).  A client's endpoint goes with its connection.
 * Every handle counts in `handles`; the memory goes when the last is
 * closed.  Listing (sprig__quic_listener_conns, any thread) walks the list
 * under `lock`.
 */
#include "quic_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

typedef struct cid_ent {
    struct cid_ent *next;
    sprig__qcid cid;
    sprig__quic_conn *c;
} cid_ent;

struct sprig__quic_ep {
    sprig__listener base; /* first: the operations table (listeners) */
    pthread_mutex_t lock; /* the list of connections, for listing */
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_prepare_t prep;
    bool server, closed, prep_on, udp_open;
    int handles; /* open uv handles and requests; freed at 0 when closed */
    sprig__tran_opts opts;
    char *subprotocol;
    sprig__conn_cbs cbs;
    void *udata;
    sprig__qng_srv *srv;   /* server */
    sprig__tls_cfg *trust; /* client */
    sprig__qaddr local;
    int port;
    sprig__quic_conn *conns, *dirty;
    size_t nconns, nhandshaking, nlinger; /* nconns counts them all */
    cid_ent **buckets;
    size_t nbuckets, ncids;
    uint64_t seed;
    sprig__quic_stats stats;
    /* datagrams waiting for one sendmmsg (out_flush): `nout` of `capout`
     * slots of SPRIG__QUIC_MAX_DGRAM bytes in `obuf` */
    uint8_t *obuf;
    struct mmsghdr *omsg;
    struct iovec *oiov;
    sprig__qaddr *oaddr;
    int nout, capout;
    uint8_t *rbuf; /* server: recvmmsg's buffer (RECV_CHUNKS x 64 KiB) */
    /* client */
    sprig__quic_conn *client;
    uv_getaddrinfo_t gai;
    char host[256];
    int rport;
};

/* One read buffer per loop thread: a datagram is consumed before the next
 * (clients; a listener reads many at once into its own rbuf). */
static _Thread_local uint8_t read_buf[65536];

/* Datagrams a listener reads with one recvmmsg (libuv gives each 64 KiB of
 * the buffer), and the datagrams an endpoint sends with one sendmmsg. */
#define RECV_CHUNKS 16
#define SEND_BATCH_SERVER 64
#define SEND_BATCH_CLIENT 8

/* ---- small accessors ----------------------------------------------------- */

uv_loop_t *
sprig__quic_ep_loop(sprig__quic_ep *ep)
{
    return ep->loop;
}

const sprig__tran_opts *
sprig__quic_ep_opts(const sprig__quic_ep *ep)
{
    return &ep->opts;
}

const sprig__conn_cbs *
sprig__quic_ep_cbs(const sprig__quic_ep *ep, void **udata)
{
    *udata = ep->udata;
    return &ep->cbs;
}

bool
sprig__quic_ep_is_server(const sprig__quic_ep *ep)
{
    return ep->server;
}

const sprig__qaddr *
sprig__quic_ep_local(const sprig__quic_ep *ep)
{
    return &ep->local;
}

sprig__quic_ep *
sprig__quic_listener_ep(sprig__listener *l)
{
    return (sprig__quic_ep *)l;
}

const char *
sprig__quic_alpn(const char *subprotocol)
{
    if (!subprotocol || !strcmp(subprotocol, SPRIG_SUBPROTOCOL) ||
        !strcmp(subprotocol, SPRIG_SUBPROTOCOL_OLD)) {
        return SPRIG_SUBPROTOCOL_OLD; /* QUIC's ALPN is "sprig/1" */
    }
    return subprotocol;
}

/* ---- the connection-id table --------------------------------------------- */

static size_t
cid_hash(const sprig__quic_ep *ep, const sprig__qcid *cid)
{
    uint64_t h = ep->seed ^ 0xcbf29ce484222325ull;
    for (size_t i = 0; i < cid->len; i++) {
        h = (h ^ cid->data[i]) * 0x100000001b3ull;
    }
    h ^= h >> 29;
    return (size_t)(h & (ep->nbuckets - 1));
}

static cid_ent **
cid_slot(sprig__quic_ep *ep, const sprig__qcid *cid)
{
    cid_ent **p = &ep->buckets[cid_hash(ep, cid)];
    while (*p && ((*p)->cid.len != cid->len ||
                  memcmp((*p)->cid.data, cid->data, cid->len) != 0)) {
        p = &(*p)->next;
    }
    return p;
}

static int
cid_grow(sprig__quic_ep *ep)
{
    size_t nb = ep->nbuckets ? ep->nbuckets * 2 : 64;
    cid_ent **b = sprig__calloc(nb, sizeof *b);
    if (!b) {
        return SPRIG_ENOMEM;
    }
    cid_ent **old = ep->buckets;
    size_t on = ep->nbuckets;
    ep->buckets = b;
    ep->nbuckets = nb;
    for (size_t i = 0; i < on; i++) {
        for (cid_ent *e = old[i], *next; e; e = next) {
            next = e->next;
            size_t h = cid_hash(ep, &e->cid);
            e->next = b[h];
            b[h] = e;
        }
    }
    sprig__free(old);
    return SPRIG_OK;
}

int
sprig__quic_ep_cid_add(sprig__quic_ep *ep, const sprig__qcid *cid,
                       sprig__quic_conn *c)
{
    if (ep->ncids >= ep->nbuckets && cid_grow(ep) != SPRIG_OK) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a connection id");
    }
    cid_ent **p = cid_slot(ep, cid);
    if (*p) {
        return sprig__err(SPRIG_EEXIST, "connection id in use");
    }
    cid_ent *e = sprig__calloc(1, sizeof *e);
    if (!e) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a connection id");
    }
    e->cid = *cid;
    e->c = c;
    *p = e;
    __atomic_add_fetch(&ep->ncids, 1, __ATOMIC_RELAXED);
    return SPRIG_OK;
}

void
sprig__quic_ep_cid_remove(sprig__quic_ep *ep, const sprig__qcid *cid)
{
    if (!ep->nbuckets) {
        return;
    }
    cid_ent **p = cid_slot(ep, cid);
    if (*p) {
        cid_ent *e = *p;
        *p = e->next;
        sprig__free(e);
        __atomic_sub_fetch(&ep->ncids, 1, __ATOMIC_RELAXED);
    }
}

static sprig__quic_conn *
cid_find(sprig__quic_ep *ep, const sprig__qcid *cid)
{
    if (!ep->nbuckets) {
        return NULL;
    }
    cid_ent *e = *cid_slot(ep, cid);
    return e ? e->c : NULL;
}

/* ---- lifetime ------------------------------------------------------------ */

static void
ep_free(sprig__quic_ep *ep)
{
    for (size_t i = 0; i < ep->nbuckets; i++) {
        for (cid_ent *e = ep->buckets[i], *n; e; e = n) {
            n = e->next;
            sprig__free(e);
        }
    }
    sprig__free(ep->buckets);
    sprig__free(ep->obuf);
    sprig__free(ep->omsg);
    sprig__free(ep->oiov);
    sprig__free(ep->oaddr);
    sprig__free(ep->rbuf);
    sprig__qng_srv_free(ep->srv);
    if (ep->trust) {
        sprig__tls_cfg_free(ep->trust);
    }
    sprig__free(ep->subprotocol);
    pthread_mutex_destroy(&ep->lock);
    sprig__free(ep);
}

static void
unref(sprig__quic_ep *ep)
{
    if (--ep->handles == 0) {
        ep_free(ep);
    }
}

static void
on_handle_closed(uv_handle_t *h)
{
    unref(h->data);
}

/* Close the socket and the prepare handle: the memory goes after. */
static void out_flush(sprig__quic_ep *ep);

static void
ep_shut(sprig__quic_ep *ep)
{
    if (!uv_is_closing((uv_handle_t *)&ep->udp)) {
        out_flush(ep); /* a CONNECTION_CLOSE may be waiting */
        uv_close((uv_handle_t *)&ep->udp, on_handle_closed);
        uv_close((uv_handle_t *)&ep->prep, on_handle_closed);
    }
}

void
sprig__quic_ep_forget(sprig__quic_ep *ep, sprig__quic_conn *c)
{
    for (sprig__quic_conn **p = &ep->dirty; *p; p = &(*p)->dnext) {
        if (*p == c) {
            *p = c->dnext;
            c->dirty = false;
            break;
        }
    }
    if (ep->client == c) {
        ep->client = NULL;
        ep_shut(ep);
        return;
    }
    pthread_mutex_lock(&ep->lock);
    if (c->lprev) {
        c->lprev->lnext = c->lnext;
    } else if (ep->conns == c) {
        ep->conns = c->lnext;
    }
    if (c->lnext) {
        c->lnext->lprev = c->lprev;
    }
    ep->nconns--;
    if (c->lingering) {
        ep->nlinger--;
    } else if (!c->opened) {
        ep->nhandshaking--;
    }
    c->listed = false;
    pthread_mutex_unlock(&ep->lock);
    if (ep->closed && ep->nconns == 0) {
        ep_shut(ep);
    }
}

bool
sprig__quic_ep_linger(sprig__quic_ep *ep, sprig__quic_conn *c)
{
    if (!ep->server || ep->closed || ep->nlinger >= ep->opts.max_connections) {
        return false;
    }
    pthread_mutex_lock(&ep->lock);
    c->listed = false;
    c->lingering = true;
    ep->nlinger++;
    if (!c->opened) {
        ep->nhandshaking--;
    }
    pthread_mutex_unlock(&ep->lock);
    return true;
}

void
sprig__quic_ep_close_resent(sprig__quic_ep *ep)
{
    __atomic_add_fetch(&ep->stats.closes_resent, 1, __ATOMIC_RELAXED);
}

void
sprig__quic_ep_count(sprig__quic_ep *ep, uint64_t *counter)
{
    (void)ep;
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

sprig__quic_stats *
sprig__quic_ep_stats(sprig__quic_ep *ep)
{
    return &ep->stats;
}

void
sprig__quic_ep_timer_fired(sprig__quic_ep *ep)
{
    __atomic_add_fetch(&ep->stats.timers, 1, __ATOMIC_RELAXED);
}

void
sprig__quic_ep_opened(sprig__quic_ep *ep, sprig__quic_conn *c)
{
    pthread_mutex_lock(&ep->lock);
    c->listed = true;
    if (ep->server) {
        ep->nhandshaking--;
    }
    pthread_mutex_unlock(&ep->lock);
}

/* ---- sending and flushing ------------------------------------------------ */

static void on_prepare(uv_prepare_t *p);

/* Send every datagram waiting, with as few sendmmsg calls as the socket
 * takes them; what it refuses is lost (QUIC retransmits). */
static void
out_flush(sprig__quic_ep *ep)
{
    int fd = -1, done = 0;
    if (ep->nout == 0) {
        return;
    }
    if (ep->udp_open && uv_fileno((uv_handle_t *)&ep->udp, &fd) == 0) {
        while (done < ep->nout) {
            int r =
                sendmmsg(fd, ep->omsg + done, (unsigned)(ep->nout - done), 0);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) { /* full, or an error for the first: skip it */
                done++;
                __atomic_add_fetch(&ep->stats.dropped, 1, __ATOMIC_RELAXED);
                continue;
            }
            done += r;
            __atomic_add_fetch(&ep->stats.sent, (uint64_t)r, __ATOMIC_RELAXED);
            __atomic_add_fetch(&ep->stats.send_calls, 1, __ATOMIC_RELAXED);
        }
    }
    ep->nout = 0;
}

static int
out_alloc(sprig__quic_ep *ep)
{
    int cap = ep->server ? SEND_BATCH_SERVER : SEND_BATCH_CLIENT;
    ep->obuf = sprig__malloc((size_t)cap * SPRIG__QUIC_MAX_DGRAM);
    ep->omsg = sprig__calloc((size_t)cap, sizeof *ep->omsg);
    ep->oiov = sprig__calloc((size_t)cap, sizeof *ep->oiov);
    ep->oaddr = sprig__calloc((size_t)cap, sizeof *ep->oaddr);
    if (!ep->obuf || !ep->omsg || !ep->oiov || !ep->oaddr) {
        return SPRIG_ENOMEM;
    }
    ep->capout = cap;
    return SPRIG_OK;
}

/* The prepare handle runs before the loop next waits for I/O. */
static void
want_prepare(sprig__quic_ep *ep)
{
    if (!ep->prep_on) {
        ep->prep_on = true;
        uv_prepare_start(&ep->prep, on_prepare);
    }
}

/* Datagrams wait in the endpoint's batch and leave together before the
 * loop next waits for I/O (on_prepare), or when the batch is full: the
 * answers of one loop turn cost one sendmmsg, not a sendmsg each. */
void
sprig__quic_ep_send(sprig__quic_ep *ep, const sprig__qaddr *to,
                    const uint8_t *d, size_t n)
{
    if (!ep->udp_open || n > SPRIG__QUIC_MAX_DGRAM) {
        return;
    }
    if (!ep->capout && out_alloc(ep) != SPRIG_OK) {
        __atomic_add_fetch(&ep->stats.dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    if (ep->nout == ep->capout) {
        out_flush(ep);
    }
    int i = ep->nout++;
    uint8_t *slot = ep->obuf + (size_t)i * SPRIG__QUIC_MAX_DGRAM;
    memcpy(slot, d, n);
    ep->oiov[i].iov_base = slot;
    ep->oiov[i].iov_len = n;
    memset(&ep->omsg[i], 0, sizeof ep->omsg[i]);
    ep->omsg[i].msg_hdr.msg_iov = &ep->oiov[i];
    ep->omsg[i].msg_hdr.msg_iovlen = 1;
    if (ep->server) { /* a client's socket is connected */
        ep->oaddr[i] = *to;
        ep->omsg[i].msg_hdr.msg_name = &ep->oaddr[i].ss;
        ep->omsg[i].msg_hdr.msg_namelen = to->len;
    }
    want_prepare(ep);
}

static void
on_prepare(uv_prepare_t *p)
{
    sprig__quic_ep *ep = p->data;
    while (ep->dirty) {
        sprig__quic_conn *c = ep->dirty;
        ep->dirty = c->dnext;
        c->dnext = NULL;
        c->dirty = false;
        sprig__quic_conn_flush(c);
    }
    out_flush(ep);
    uv_prepare_stop(&ep->prep);
    ep->prep_on = false;
}

void
sprig__quic_ep_dirty(sprig__quic_ep *ep, sprig__quic_conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->dnext = ep->dirty;
        ep->dirty = c;
    }
    want_prepare(ep);
}

/* ---- receiving ----------------------------------------------------------- */

static void
reply(sprig__quic_ep *ep, const sprig__qaddr *to, const uint8_t *d, size_t n)
{
    if (n) {
        sprig__quic_ep_send(ep, to, d, n);
    }
}

static void
peer_name(const sprig__qaddr *a, char *out, size_t cap)
{
    char ip[64] = "?";
    int port = 0;
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
        uv_ip6_name(s, ip, sizeof ip);
        port = ntohs(s->sin6_port);
        snprintf(out, cap, "[%s]:%d", ip, port);
    } else {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;
        uv_ip4_name(s, ip, sizeof ip);
        port = ntohs(s->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    }
}

static sprig__qng_cfg
engine_cfg(const sprig__quic_ep *ep)
{
    sprig__qng_cfg cfg = {0};
    cfg.idle_timeout_ms = ep->opts.idle_timeout_ms;
    cfg.ping_interval_ms = ep->opts.ping_interval_ms;
    cfg.handshake_timeout_ms = ep->server ? ep->opts.handshake_timeout_ms
                                          : ep->opts.connect_timeout_ms;
    cfg.alpn = sprig__quic_alpn(ep->opts.subprotocol);
    cfg.host = ep->host;
    cfg.trust = ep->trust;
    return cfg;
}

/* A valid Initial: a new server connection. */
static void
accept_conn(sprig__quic_ep *ep, const sprig__qng_hello *h, const uint8_t *d,
            size_t n, const sprig__qaddr *from)
{
    sprig__quic_conn *c;
    sprig__qng *q;
    sprig__qng_io io;
    if (sprig__quic_conn_new(ep, &c) != SPRIG_OK) {
        return;
    }
    c->remote = *from;
    c->base.udata = ep->udata;
    peer_name(from, c->peer, sizeof c->peer);
    pthread_mutex_lock(&ep->lock);
    c->lnext = ep->conns;
    if (ep->conns) {
        ep->conns->lprev = c;
    }
    ep->conns = c;
    ep->nconns++;
    ep->nhandshaking++;
    pthread_mutex_unlock(&ep->lock);
    sprig__quic_conn_io(c, &io);
    sprig__qng_cfg cfg = engine_cfg(ep);
    if (sprig__qng_server_new(ep->srv, h, &ep->local, from, &cfg, &io, &q)) {
        sprig__quic_conn_drop(c);
        return;
    }
    sprig__quic_conn_attach(c, q);
    sprig__quic_conn_recv(c, d, n, from);
}

void
sprig__quic_ep_datagram(sprig__quic_ep *ep, const uint8_t *d, size_t n,
                        const sprig__qaddr *from)
{
    uint8_t out[SPRIG__QUIC_MAX_DGRAM];
    size_t olen = 0;
    sprig__qcid dcid;
    sprig__qng_hello h;
    if (!ep->server) {
        if (ep->client && ep->client->q) {
            sprig__quic_conn_recv(ep->client, d, n, from);
        }
        return;
    }
    if (!sprig__qng_dcid(d, n, sprig__qng_cid_len(), &dcid)) {
        return;
    }
    sprig__quic_conn *c = cid_find(ep, &dcid);
    if (c) {
        sprig__quic_conn_recv(c, d, n, from);
        return;
    }
    if (ep->closed) {
        return;
    }
    bool retry = ep->nhandshaking >= SPRIG__QUIC_RETRY_AFTER;
    switch (sprig__qng_classify(ep->srv, d, n, from, retry, out, &olen, &h)) {
    case SPRIG__QNG_DROP: return;
    case SPRIG__QNG_RETRY: ep->stats.retries++; break;
    case SPRIG__QNG_RESET: ep->stats.resets++; break;
    case SPRIG__QNG_ACCEPT:
        if (ep->nconns - ep->nlinger >= ep->opts.max_connections) {
            sprig__qng_refuse(&h, out, &olen);
            break;
        }
        accept_conn(ep, &h, d, n, from);
        return;
    default: break;
    }
    reply(ep, from, out, olen);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sprig__quic_ep *ep = h->data;
    (void)suggested;
    if (ep->rbuf) { /* recvmmsg: many datagrams per call */
        *buf = uv_buf_init((char *)ep->rbuf, RECV_CHUNKS * 65536);
        return;
    }
    *buf = uv_buf_init((char *)read_buf, sizeof read_buf);
}

static void
on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
        const struct sockaddr *addr, unsigned flags)
{
    sprig__quic_ep *ep = u->data;
    sprig__qaddr from;
    (void)flags;
    if (nread < 0 && !ep->server && ep->client) {
        sprig__quic_conn_fail(ep->client, SPRIG_CLOSE_ABNORMAL, "%s: %s",
                              ep->client->peer, uv_strerror((int)nread));
        return;
    }
    if (nread <= 0 || !addr) {
        return;
    }
    from.len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in);
    memcpy(&from.ss, addr, from.len);
    sprig__quic_ep_datagram(ep, (const uint8_t *)buf->base, (size_t)nread,
                            &from);
}

/* ---- endpoints ----------------------------------------------------------- */

static int
ep_new(uv_loop_t *loop, bool server, const sprig__tran_opts *o,
       const sprig__conn_cbs *cbs, void *udata, sprig__quic_ep **out)
{
    sprig__tran_opts defaults;
    if (!o) {
        sprig__tran_opts_init(&defaults);
        o = &defaults;
    }
    if (o->max_message == 0 || o->max_send_queue == 0) {
        return sprig__err(SPRIG_EINVAL,
                          "max_message and max_send_queue must be > 0");
    }
    sprig__quic_ep *ep = sprig__calloc(1, sizeof *ep);
    if (!ep) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a QUIC endpoint");
    }
    ep->base.ops = &sprig__quic_tran;
    ep->loop = loop;
    ep->server = server;
    ep->opts = *o;
    ep->cbs = *cbs;
    ep->udata = udata;
    ep->subprotocol = o->subprotocol ? sprig__strdup(o->subprotocol) : NULL;
    ep->opts.subprotocol = ep->subprotocol;
    ep->opts.status_body = NULL;
    ep->opts.tls_cert_file = ep->opts.tls_key_file = NULL;
    ep->opts.tls_ca_file = ep->opts.tls_pin_sha256 = NULL;
    gnutls_rnd(GNUTLS_RND_NONCE, &ep->seed, sizeof ep->seed);
    pthread_mutex_init(&ep->lock, NULL);
    /* a listener reads with recvmmsg: one call for many clients' packets */
    ep->rbuf = server ? sprig__malloc(RECV_CHUNKS * 65536) : NULL;
    uv_udp_init_ex(loop, &ep->udp, ep->rbuf ? UV_UDP_RECVMMSG : 0);
    uv_prepare_init(loop, &ep->prep);
    ep->udp.data = ep->prep.data = ep;
    ep->handles = 2;
    if (o->subprotocol && !ep->subprotocol) {
        ep_shut(ep);
        return sprig__err(SPRIG_ENOMEM, "out of memory for options");
    }
    *out = ep;
    return SPRIG_OK;
}

static int
parse_host(const char *host, int port, sprig__qaddr *a)
{
    if (!strcmp(host, "localhost")) {
        host = "127.0.0.1";
    }
    memset(a, 0, sizeof *a);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&a->ss) == 0) {
        a->len = sizeof(struct sockaddr_in);
        return SPRIG_OK;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&a->ss) == 0) {
        a->len = sizeof(struct sockaddr_in6);
        return SPRIG_OK;
    }
    return sprig__err(SPRIG_EINVAL,
                      "listen address \"%s\" is not an IP "
                      "address",
                      host);
}

/* Bigger socket buffers: a burst of datagrams is not a loss. */
static void
socket_buffers(sprig__quic_ep *ep)
{
    int size = 4 << 20;
    uv_send_buffer_size((uv_handle_t *)&ep->udp, &size);
    size = 4 << 20;
    uv_recv_buffer_size((uv_handle_t *)&ep->udp, &size);
}

static int
local_name(sprig__quic_ep *ep)
{
    int len = sizeof ep->local.ss;
    int r =
        uv_udp_getsockname(&ep->udp, (struct sockaddr *)&ep->local.ss, &len);
    ep->local.len = (socklen_t)len;
    ep->port = ep->local.ss.ss_family == AF_INET6
                   ? ntohs(((struct sockaddr_in6 *)&ep->local.ss)->sin6_port)
                   : ntohs(((struct sockaddr_in *)&ep->local.ss)->sin_port);
    return r;
}

static int
bind_udp(sprig__quic_ep *ep, const char *host, int port)
{
    sprig__qaddr a;
    int rc = parse_host(host, port, &a);
    if (rc) {
        return rc;
    }
    int r = uv_udp_bind(&ep->udp, (struct sockaddr *)&a.ss, 0);
    r = r ? r : uv_udp_recv_start(&ep->udp, alloc_cb, on_recv);
    r = r ? r : local_name(ep);
    if (r < 0) {
        return sprig__err(SPRIG_EIO, "listen on UDP %s:%d: %s", host, port,
                          uv_strerror(r));
    }
    ep->udp_open = true;
    socket_buffers(ep);
    return SPRIG_OK;
}

int
sprig__quic_listen(uv_loop_t *loop, bool tls, const char *host, int port,
                   const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                   void *udata, sprig__listener **out)
{
    sprig__quic_ep *ep;
    (void)tls; /* QUIC is always TLS 1.3 */
    if (!loop || !cbs || !out || !host || port < 0 || port > 65535) {
        return sprig__err(SPRIG_EINVAL, "listen: loop, host, callbacks and a "
                                        "port in 0..65535 are needed");
    }
    sprig__ignore_sigpipe();
    int rc = ep_new(loop, true, opts, cbs, udata, &ep);
    if (rc) {
        return rc;
    }
    rc = sprig__qng_srv_new(opts ? opts->tls_cert_file : NULL,
                            opts ? opts->tls_key_file : NULL,
                            sprig__quic_alpn(ep->opts.subprotocol), &ep->srv);
    rc = rc ? rc : bind_udp(ep, host, port);
    if (rc) {
        ep->closed = true;
        ep_shut(ep);
        return rc;
    }
    *out = &ep->base;
    return SPRIG_OK;
}

int
sprig__quic_listener_port(const sprig__listener *l)
{
    return ((const sprig__quic_ep *)l)->port;
}

void
sprig__quic_listener_close(sprig__listener *l)
{
    sprig__quic_ep *ep = (sprig__quic_ep *)l;
    if (ep->closed) {
        return;
    }
    ep->closed = true;
    sprig__quic_conn *c = ep->conns;
    while (c) { /* handshakes under way and closed connections in their
                 * closing period are dropped; open ones stay */
        sprig__quic_conn *next = c->lnext;
        if (!sprig__quic_conn_opened(c) || c->lingering) {
            sprig__quic_conn_drop(c);
        }
        c = next;
    }
    if (ep->nconns == 0) {
        ep_shut(ep);
    }
}

size_t
sprig__quic_listener_conns(sprig__listener *l, sprig_conn_info *out, size_t cap)
{
    sprig__quic_ep *ep = (sprig__quic_ep *)l;
    size_t n = 0;
    pthread_mutex_lock(&ep->lock);
    for (sprig__quic_conn *c = ep->conns; c; c = c->lnext) {
        if (c->listed && n < cap) {
            sprig__quic_info(&c->base, &out[n]);
        }
        n += c->listed;
    }
    pthread_mutex_unlock(&ep->lock);
    return n;
}

void
sprig__quic_listener_stats(sprig__listener *l, sprig__quic_stats *out)
{
    sprig__quic_ep *ep = (sprig__quic_ep *)l;
    memset(out, 0, sizeof *out);
    out->retries = __atomic_load_n(&ep->stats.retries, __ATOMIC_RELAXED);
    out->resets = __atomic_load_n(&ep->stats.resets, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&ep->stats.dropped, __ATOMIC_RELAXED);
    out->sent = __atomic_load_n(&ep->stats.sent, __ATOMIC_RELAXED);
    out->send_calls = __atomic_load_n(&ep->stats.send_calls, __ATOMIC_RELAXED);
    out->timers = __atomic_load_n(&ep->stats.timers, __ATOMIC_RELAXED);
    out->closes_resent =
        __atomic_load_n(&ep->stats.closes_resent, __ATOMIC_RELAXED);
    out->req_streams =
        __atomic_load_n(&ep->stats.req_streams, __ATOMIC_RELAXED);
    out->ack_waits = __atomic_load_n(&ep->stats.ack_waits, __ATOMIC_RELAXED);
    out->cids = __atomic_load_n(&ep->ncids, __ATOMIC_RELAXED);
    pthread_mutex_lock(&ep->lock);
    out->conns = ep->nconns;
    out->handshaking = ep->nhandshaking;
    out->lingering = ep->nlinger;
    pthread_mutex_unlock(&ep->lock);
}

/* ---- clients ------------------------------------------------------------- */

/* quic://host[:port][/path] or sprig://... */
static int
parse_url(sprig__quic_ep *ep, sprig__quic_conn *c, const char *url)
{
    const char *sep = strstr(url, "://");
    const char *h = sep ? sep + 3 : NULL;
    size_t sl = sep ? (size_t)(sep - url) : 0;
    if (!sep || sl >= sizeof c->scheme) {
        return sprig__err(SPRIG_EINVAL, "bad URL \"%s\"", url);
    }
    snprintf(c->scheme, sizeof c->scheme, "%.*s", (int)sl, url);
    const char *end = h + strcspn(h, "/?#");
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        colon = rb && rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        snprintf(ep->host, sizeof ep->host, "%.*s", rb ? (int)(rb - h - 1) : 0,
                 h + 1);
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *he = colon ? colon : end;
        snprintf(ep->host, sizeof ep->host, "%.*s", (int)(he - h), h);
    }
    char *pe = NULL;
    long port = colon ? strtol(colon + 1, &pe, 10) : SPRIG__QUIC_PORT;
    if (!ep->host[0] || port <= 0 || port > 65535 || (colon && pe != end)) {
        return sprig__err(SPRIG_EINVAL,
                          "bad URL \"%s\" (want quic://host:port or "
                          "sprig://host:port)",
                          url);
    }
    ep->rport = (int)port;
    c->per_request = SPRIG__QUIC_PER_REQUEST;
    if (strstr(end, "streams=request")) {
        c->per_request = true;
    } else if (strstr(end, "streams=one")) {
        c->per_request = false;
    }
    if (*end == '/') {
        snprintf(c->path, sizeof c->path, "%.*s", (int)strcspn(end, "?#"), end);
    } else {
        snprintf(c->path, sizeof c->path, "/");
    }
    snprintf(c->peer, sizeof c->peer, "%.64s:%d", ep->host, ep->rport);
    return SPRIG_OK;
}

/* The first IPv4 address, else the first. */
static const struct addrinfo *
pick(const struct addrinfo *res)
{
    for (const struct addrinfo *a = res; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            return a;
        }
    }
    return res;
}

/* Resolved: bind, connect the socket, start the engine. */
static int
client_start(sprig__quic_ep *ep, const struct addrinfo *a)
{
    sprig__quic_conn *c = ep->client;
    sprig__qaddr any;
    sprig__qng *q;
    sprig__qng_io io;
    memcpy(&c->remote.ss, a->ai_addr, a->ai_addrlen);
    c->remote.len = (socklen_t)a->ai_addrlen;
    ((struct sockaddr_in *)&c->remote.ss)->sin_port =
        htons((uint16_t)ep->rport);
    peer_name(&c->remote, c->peer, sizeof c->peer);
    parse_host(a->ai_family == AF_INET6 ? "::" : "0.0.0.0", 0, &any);
    int r = uv_udp_bind(&ep->udp, (struct sockaddr *)&any.ss, 0);
    r = r ? r : uv_udp_connect(&ep->udp, (struct sockaddr *)&c->remote.ss);
    r = r ? r : uv_udp_recv_start(&ep->udp, alloc_cb, on_recv);
    r = r ? r : local_name(ep);
    if (r < 0) {
        return sprig__err(SPRIG_ECONNECT, "%s: %s", c->peer, uv_strerror(r));
    }
    ep->udp_open = true;
    socket_buffers(ep);
    sprig__quic_conn_io(c, &io);
    sprig__qng_cfg cfg = engine_cfg(ep);
    int rc = sprig__qng_client_new(&ep->local, &c->remote, &cfg, &io, &q);
    if (rc) {
        return rc;
    }
    sprig__quic_conn_attach(c, q);
    sprig__quic_ep_dirty(ep, c); /* the first flight */
    return SPRIG_OK;
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sprig__quic_ep *ep = req->data;
    if (ep->client) {
        if (status < 0 || !res) {
            sprig__quic_conn_fail(ep->client, SPRIG_CLOSE_ABNORMAL,
                                  "cannot resolve %s: %s", ep->host,
                                  uv_strerror(status));
        } else if (client_start(ep, pick(res)) != SPRIG_OK) {
            sprig__quic_conn_fail(ep->client, SPRIG_CLOSE_ABNORMAL, "%s",
                                  sprig_errmsg());
        }
    }
    uv_freeaddrinfo(res);
    unref(ep);
}

static int
client_trust(sprig__quic_ep *ep, const sprig__tran_opts *o)
{
    if (o && o->tls_pin_sha256) { /* the fingerprint alone decides */
        return sprig__tls_cfg_pinned(o->tls_pin_sha256, &ep->trust);
    }
    return sprig__tls_cfg_client(o ? o->tls_ca_file : NULL, &ep->trust);
}

int
sprig__quic_connect(uv_loop_t *loop, const char *url,
                    const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                    void *udata, sprig__conn **out)
{
    sprig__quic_ep *ep;
    sprig__quic_conn *c;
    if (!loop || !url || !cbs || !out) {
        return sprig__err(SPRIG_EINVAL, "connect: loop, URL and callbacks "
                                        "are needed");
    }
    sprig__ignore_sigpipe();
    int rc = ep_new(loop, false, opts, cbs, udata, &ep);
    if (rc) {
        return rc;
    }
    rc = sprig__quic_conn_new(ep, &c);
    if (rc) {
        ep_shut(ep);
        return rc;
    }
    ep->client = c;
    c->base.udata = udata;
    rc = parse_url(ep, c, url);
    rc = rc ? rc : client_trust(ep, opts);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    ep->gai.data = ep;
    int r = rc ? 0
               : uv_getaddrinfo(loop, &ep->gai, on_resolved, ep->host, NULL,
                                &hints);
    if (!rc && r < 0) {
        rc = sprig__err(SPRIG_ECONNECT, "cannot resolve %s: %s", ep->host,
                        uv_strerror(r));
    }
    if (rc) {
        sprig__quic_conn_drop(c); /* shuts the endpoint */
        return rc;
    }
    ep->handles++; /* the resolver request */
    *out = &c->base;
    return SPRIG_OK;
}
