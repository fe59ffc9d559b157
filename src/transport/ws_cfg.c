/*
 * ws_cfg.c -- transport options: defaults, checks, and the configuration a
 * listener shares with its connections (or a client connection owns).
 *
 * Design notes.  A configuration is created once (sprig__ws_cfg_new),
 * copying the strings it keeps and loading the TLS files then, so callers'
 * option structs and files may change afterwards.  It is reference-counted
 * on the loop thread: the listener holds one reference and each connection
 * one, so open connections outlive sprig__listener_close().
 */
#include "ws_int.h"

#include <pthread.h>
#include <signal.h>

void
sprig__tran_opts_init(sprig__tran_opts *o)
{
    memset(o, 0, sizeof *o);
    o->subprotocol = SPRIG_WS_SUBPROTOCOL;
    o->max_message = 16u << 20;
    o->max_send_queue = 64u << 20;
    o->ping_interval_ms = 30000;
    o->idle_timeout_ms = 90000;
    o->handshake_timeout_ms = 10000;
    o->close_timeout_ms = 5000;
    o->max_connections = 1024;
    o->connect_timeout_ms = 10000;
}

static void
ignore_sigpipe_once(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
        !(sa.sa_flags & SA_SIGINFO)) {
        signal(SIGPIPE, SIG_IGN);
    }
}

void
sprig__ignore_sigpipe(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ignore_sigpipe_once);
}

/* A subprotocol is one token of visible ASCII (RFC 6455, 4.1). */
static bool
subprotocol_ok(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (*s < 0x21 || *s > 0x7e || *s == ',') {
            return false;
        }
    }
    return true;
}

static int
opts_check(const sprig__tran_opts *o, bool server)
{
    if (o->subprotocol && !subprotocol_ok(o->subprotocol)) {
        return sprig__err(SPRIG_EINVAL, "subprotocol \"%s\" is not a token",
                          o->subprotocol);
    }
    if (o->max_message == 0 || o->max_send_queue == 0) {
        return sprig__err(SPRIG_EINVAL,
                          "max_message and max_send_queue must be > 0");
    }
    if (server && !o->tls_cert_file != !o->tls_key_file) {
        return sprig__err(SPRIG_EINVAL, "TLS needs both a certificate file "
                                        "and a key file");
    }
    return SPRIG_OK;
}

int
sprig__ws_cfg_new(const sprig__tran_opts *o, const sprig__conn_cbs *cbs,
                  void *udata, bool server, sprig__ws_cfg **out)
{
    sprig__ignore_sigpipe(); /* a vanished peer is an error, not a kill */
    sprig__tran_opts defaults;
    if (!o) {
        sprig__tran_opts_init(&defaults);
        o = &defaults;
    }
    int rc = opts_check(o, server);
    if (rc) {
        return rc;
    }
    sprig__ws_cfg *cfg = sprig__calloc(1, sizeof *cfg);
    if (!cfg) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for options");
    }
    cfg->refs = 1;
    cfg->server = server;
    cfg->opts = *o;
    cfg->cbs = *cbs;
    cfg->udata = udata;
    cfg->subprotocol = o->subprotocol ? sprig__strdup(o->subprotocol) : NULL;
    cfg->status_body = o->status_body ? sprig__strdup(o->status_body) : NULL;
    cfg->opts.subprotocol = cfg->subprotocol;
    cfg->opts.status_body = cfg->status_body;
    cfg->opts.tls_cert_file = cfg->opts.tls_key_file = NULL;
    cfg->opts.tls_ca_file = NULL; /* files are read now, not kept */
    if ((o->subprotocol && !cfg->subprotocol) ||
        (o->status_body && !cfg->status_body)) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory for options");
    } else if (server && o->tls_cert_file) {
        rc =
            sprig__tls_cfg_server(o->tls_cert_file, o->tls_key_file, &cfg->tls);
    }
    if (rc) {
        sprig__ws_cfg_unref(cfg);
        return rc;
    }
    *out = cfg;
    return SPRIG_OK;
}

void
sprig__ws_cfg_unref(sprig__ws_cfg *cfg)
{
    if (!cfg || --cfg->refs > 0) {
        return;
    }
    sprig__tls_cfg_free(cfg->tls);
    sprig__free(cfg->subprotocol);
    sprig__free(cfg->status_body);
    sprig__free(cfg);
}
