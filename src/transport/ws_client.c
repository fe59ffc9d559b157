/*
 * ws_client.c -- client connections: parse the URL, resolve, connect.
 *
 * Design notes.  sprig__ws_connect() returns a connection in CONNECTING
 * with the connect timer running; on_resolved (getaddrinfo, on libuv's
 * thread pool) picks an address, on_connected hands the socket to
 * sprig__ws_conn_start_client (ws_conn.c: TLS, then the upgrade request).
 * Every failure from here on ends in sprig__ws_conn_finish(), so the owner
 * gets exactly one on_close, on a later loop turn.  The first IPv4 address
 * is preferred (a server bound to 127.0.0.1 is reached as "localhost").
 */
#include "ws_int.h"

#include <stdio.h>

/* The parts of a ws:// or wss:// URL. */
typedef struct url_parts {
    bool tls;
    char host[256];
    int port;
    char path[SPRIG__HTTP_PATH_MAX + 1];
} url_parts;

static void
field(const char *url, const struct http_parser_url *u, int f, char *dst,
      size_t cap)
{
    size_t n = u->field_data[f].len < cap - 1 ? u->field_data[f].len : cap - 1;
    memcpy(dst, url + u->field_data[f].off, n);
    dst[n] = '\0';
}

static int
parse_url(const char *url, url_parts *p)
{
    struct http_parser_url u;
    char scheme[8] = "";
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 ||
        !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST))) {
        return sprig__err(SPRIG_EINVAL,
                          "bad URL \"%s\" (want ws://host:port"
                          "/path or wss://...)",
                          url);
    }
    field(url, &u, UF_SCHEMA, scheme, sizeof scheme);
    if (strcasecmp(scheme, "ws") && strcasecmp(scheme, "wss")) {
        return sprig__err(SPRIG_EINVAL, "URL scheme %s: only ws and wss",
                          scheme);
    }
    p->tls = !strcasecmp(scheme, "wss");
    field(url, &u, UF_HOST, p->host, sizeof p->host);
    p->port = u.field_set & (1 << UF_PORT) ? u.port : p->tls ? 443 : 80;
    size_t end = strlen(url);
    if (u.field_set & (1 << UF_FRAGMENT)) {
        end = u.field_data[UF_FRAGMENT].off - 1;
    }
    if (u.field_set & (1 << UF_PATH)) {
        size_t off = u.field_data[UF_PATH].off;
        snprintf(p->path, sizeof p->path, "%.*s", (int)(end - off), url + off);
    } else {
        snprintf(p->path, sizeof p->path, "/");
    }
    return SPRIG_OK;
}

/* "host", "host:port", "[v6]:port" for the Host header. */
static char *
host_header(const url_parts *p)
{
    char buf[300];
    bool v6 = strchr(p->host, ':') != NULL;
    bool dflt = p->port == (p->tls ? 443 : 80);
    if (dflt) {
        snprintf(buf, sizeof buf, v6 ? "[%s]" : "%s", p->host);
    } else {
        snprintf(buf, sizeof buf, v6 ? "[%s]:%d" : "%s:%d", p->host, p->port);
    }
    return sprig__strdup(buf);
}

static void
on_connected(uv_connect_t *req, int status)
{
    sprig__ws_conn *c = req->data;
    if (status == UV_ECANCELED || c->state != SPRIG__CS_CONNECTING) {
        return;
    }
    if (status < 0) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false,
                              "connect to %s: %s", c->peer,
                              uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    sprig__ws_conn_start_client(c);
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

static void
connect_to(sprig__ws_conn *c, const struct addrinfo *a)
{
    char ip[48] = "?";
    if (a->ai_family == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)a->ai_addr;
        s->sin6_port = htons((uint16_t)c->port);
        uv_ip6_name(s, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip, c->port);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)a->ai_addr;
        s->sin_port = htons((uint16_t)c->port);
        uv_ip4_name(s, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, c->port);
    }
    c->connect_req.data = c;
    int r = uv_tcp_connect(&c->connect_req, &c->tcp, a->ai_addr, on_connected);
    if (r < 0) {
        sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false,
                              "connect to %s: %s", c->peer, uv_strerror(r));
    }
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sprig__ws_conn *c = req->data;
    c->resolving = false;
    if (c->state == SPRIG__CS_CONNECTING) {
        if (status < 0 || !res) {
            sprig__ws_conn_finish(c, SPRIG_CLOSE_ABNORMAL, false,
                                  "cannot resolve %s: %s", c->host,
                                  uv_strerror(status));
        } else {
            connect_to(c, pick(res));
        }
    }
    uv_freeaddrinfo(res);
    sprig__ws_conn_unbusy(c);
}

/* Fill a new client connection from the URL; start resolving. */
static int
begin(sprig__ws_conn *c, const url_parts *p)
{
    c->host = sprig__strdup(p->host);
    c->host_header = host_header(p);
    c->path = sprig__strdup(p->path);
    if (!c->host || !c->host_header || !c->path) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a connection");
    }
    c->port = p->port;
    c->state = SPRIG__CS_CONNECTING;
    snprintf(c->peer, sizeof c->peer, "%.64s:%d", p->host, p->port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    int r =
        uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, NULL, &hints);
    if (r < 0) {
        return sprig__err(SPRIG_ECONNECT, "cannot resolve %s: %s", c->host,
                          uv_strerror(r));
    }
    c->resolving = true;
    c->busy++;
    if (c->cfg->opts.connect_timeout_ms) {
        sprig__ws_conn_arm_timer(c, c->cfg->opts.connect_timeout_ms);
    }
    return SPRIG_OK;
}

int
sprig__ws_connect(uv_loop_t *loop, const char *url,
                  const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                  void *udata, sprig__conn **out)
{
    url_parts p;
    sprig__ws_cfg *cfg;
    sprig__ws_conn *c;
    if (!loop || !url || !cbs || !out) {
        return sprig__err(SPRIG_EINVAL, "connect: loop, URL and callbacks "
                                        "are needed");
    }
    int rc = parse_url(url, &p);
    if (!rc) {
        rc = sprig__ws_cfg_new(opts, cbs, udata, false, &cfg);
    }
    if (rc) {
        return rc;
    }
    if (p.tls) {
        rc = opts && opts->tls_pin_sha256
                 ? sprig__tls_cfg_pinned(opts->tls_pin_sha256, &cfg->tls)
                 : sprig__tls_cfg_client(opts ? opts->tls_ca_file : NULL,
                                         &cfg->tls);
    }
    if (!rc) {
        rc = sprig__ws_conn_new(loop, cfg, &c);
    }
    sprig__ws_cfg_unref(cfg); /* the connection holds its own reference */
    if (rc) {
        return rc;
    }
    rc = begin(c, &p);
    if (rc) {
        sprig__ws_conn_destroy(c);
        return rc;
    }
    *out = &c->base;
    return SPRIG_OK;
}
