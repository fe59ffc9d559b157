/*
 * tran.c -- the table of transports by URL scheme, and the functions the
 * layers above call, each dispatching through the connection's or the
 * listener's operations table (transport.h).  Adding a transport (QUIC) is
 * one row here and one operations table beside ws_tran.c.
 */
#include "core/core.h"
#include "transport/transport.h"
#include "quic_int.h"
#include "ws_int.h"

#include <stdio.h>
#include <strings.h>

static const sprig__tran_scheme schemes[] = {
    {"ws", false, &sprig__ws_tran},
    {"wss", true, &sprig__ws_tran},
    {"quic", true, &sprig__quic_tran},
    {"sprig", true, &sprig__quic_tran}, /* BonsaiDb's name for it */
};
#define NSCHEMES (sizeof schemes / sizeof schemes[0])

const sprig__tran_scheme *
sprig__tran_find(const char *scheme)
{
    for (size_t i = 0; scheme && i < NSCHEMES; i++) {
        if (!strcasecmp(scheme, schemes[i].scheme)) {
            return &schemes[i];
        }
    }
    return NULL;
}

/* "ws, wss" into `out`. */
static void
known_schemes(char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NSCHEMES && n < cap; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "",
                              schemes[i].scheme);
    }
}

const sprig__tran_scheme *
sprig__tran_for_url(const char *url)
{
    char scheme[16], known[64];
    const char *sep = url ? strstr(url, "://") : NULL;
    size_t n = sep ? (size_t)(sep - url) : 0;
    known_schemes(known, sizeof known);
    if (!sep || n == 0 || n >= sizeof scheme) {
        sprig__err(SPRIG_EINVAL, "URL '%s' has no scheme:// (known: %s)",
                   url ? url : "(null)", known);
        return NULL;
    }
    memcpy(scheme, url, n);
    scheme[n] = '\0';
    const sprig__tran_scheme *t = sprig__tran_find(scheme);
    if (!t) {
        sprig__err(SPRIG_EINVAL,
                   "URL scheme '%s' is not a transport Sprig "
                   "knows (known: %s)",
                   scheme, known);
    }
    return t;
}

int
sprig__tran_listen(uv_loop_t *loop, const char *scheme, const char *host,
                   int port, const sprig__tran_opts *opts,
                   const sprig__conn_cbs *cbs, void *udata,
                   sprig__listener **out)
{
    const sprig__tran_scheme *t = sprig__tran_find(scheme);
    if (!t) {
        char known[64];
        known_schemes(known, sizeof known);
        return sprig__err(SPRIG_EINVAL,
                          "cannot listen on scheme '%s' "
                          "(known: %s)",
                          scheme ? scheme : "(null)", known);
    }
    return t->ops->listen(loop, t->tls, host, port, opts, cbs, udata, out);
}

int
sprig__listener_port(const sprig__listener *l)
{
    return l->ops->listener_port(l);
}

void
sprig__listener_close(sprig__listener *l)
{
    if (l) {
        l->ops->listener_close(l);
    }
}

size_t
sprig__listener_conns(sprig__listener *l, sprig_conn_info *out, size_t cap)
{
    return l->ops->listener_conns(l, out, cap);
}

int
sprig__tran_connect(uv_loop_t *loop, const char *url,
                    const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                    void *udata, sprig__conn **out)
{
    const sprig__tran_scheme *t = sprig__tran_for_url(url);
    return t ? t->ops->connect(loop, url, opts, cbs, udata, out) : SPRIG_EINVAL;
}

int
sprig__conn_send(sprig__conn *c, const uint8_t *data, size_t len)
{
    if (!data && len) {
        return sprig__err(SPRIG_EINVAL, "send: no data");
    }
    return c->ops->send(c, data, len);
}

size_t
sprig__conn_queued(const sprig__conn *c)
{
    return c->ops->queued(c);
}

void
sprig__conn_close(sprig__conn *c, int code, const char *reason)
{
    c->ops->close(c, code, reason);
}

void
sprig__conn_info(const sprig__conn *c, sprig_conn_info *out)
{
    c->ops->info(c, out);
}

void
sprig__conn_set_udata(sprig__conn *c, void *udata)
{
    c->udata = udata;
}

void *
sprig__conn_udata(const sprig__conn *c)
{
    return c->udata;
}

const char *
sprig__conn_peer(const sprig__conn *c)
{
    return c->ops->peer(c);
}

const char *
sprig__conn_path(const sprig__conn *c)
{
    return c->ops->path(c);
}

bool
sprig__conn_is_client(const sprig__conn *c)
{
    return c->client;
}
