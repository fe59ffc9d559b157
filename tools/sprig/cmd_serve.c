/*
 * cmd_serve.c -- `sprig serve`: run a Sprig server on the storage at
 * --path, over QUIC (with the storage's certificate, made self-signed on
 * the first start: cmd_cert.c) and WebSockets, until SIGINT or SIGTERM.  The
 * server runs on its own threads; this thread waits for the signal (sigwait,
 * with the signals blocked in every thread) and then shuts the server down
 * gracefully.
 */
#include "cli.h"

#include <sprig/server.h>

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char serve_usage[] =
    "usage: sprig serve [--path DIR] [--ws HOST:PORT] [--quic HOST:PORT]\n"
    "                   [--wss] [--tls-cert FILE --tls-key FILE]\n"
    "                   [--durability MODE]\n"
    "                               [--kv-persistence MODE]\n"
    "                               [--kv-lazy-changes N] [--kv-lazy-ms MS]\n"
    "                               [--allow-origin ORIGIN] [--insecure-open]\n"
    "                               [--cluster FILE [--admin-user NAME\n"
    "                                --admin-password-env VAR]]\n"
    "                               [--no-console]\n"
    "\n"
    "Serve the storage at --path over QUIC (quic://, ALPN sprig/1) and\n"
    "WebSockets (protocol sprig.v1) until interrupted (SIGINT or SIGTERM:\n"
    "requests in flight finish, clients are told the server is going\n"
    "away).\n"
    "\n"
    "  --ws HOST:PORT     WebSocket address (default 127.0.0.1:5646; port 0\n"
    "                     picks a free one, printed at start; PORT or :PORT\n"
    "                     alone listen on 127.0.0.1:PORT; off: none)\n"
    "  --quic HOST:PORT   QUIC (UDP) address (default 127.0.0.1:5645; off:\n"
    "                     none; with --ws HOST:0, a free port).  Without\n"
    "                     --tls-cert, QUIC uses the\n"
    "                     storage's certificate (sprig certificate), made\n"
    "                     self-signed on the first start\n"
    "  --wss              WebSockets over TLS with that same certificate\n"
    "  --tls-cert FILE    PEM certificate chain; with --tls-key: wss:// and\n"
    "  --tls-key FILE     QUIC use it (PEM private key)\n"
    "  --durability MODE  full (default), normal or none\n"
    "  --kv-persistence MODE  immediate (default: a key-value change is as\n"
    "                     durable as --durability says once answered) or\n"
    "                     lazy (answered before it reaches the disk, which\n"
    "                     is flushed after N changes or MS ms, and at exit)\n"
    "  --kv-lazy-changes N  lazy: flush once N changes wait (default 10000;\n"
    "                     0: no count threshold)\n"
    "  --kv-lazy-ms MS    lazy: flush MS ms after the first waiting change\n"
    "                     (default 1000; 0: no time threshold)\n"
    "  --allow-origin ORIGIN  a browser origin (https://app.example) allowed\n"
    "                     to open WebSockets besides the server's own\n"
    "  --cluster FILE     run as a node of a Raft cluster (docs/cluster.md):\n"
    "                     FILE is JSON {\"id\":1,\"raft\":\"HOST:PORT\",\n"
    "                     \"url\":\"ws://HOST:PORT\",\"bootstrap\":true,\n"
    "                     \"peers\":[{\"id\":2,\"raft\":...,\"url\":...}]};\n"
    "                     writes on a follower get 'not the leader'\n"
    "  --admin-user NAME  with --cluster, a new cluster (no user yet): the\n"
    "                     leader makes NAME an administrator (group admins,\n"
    "                     '*' on sprig) through the Raft log, so every node,\n"
    "                     also one added later, has it; give it to every\n"
    "                     node of the first start (drop it afterwards)\n"
    "  --admin-password-env VAR  NAME's password, from variable VAR\n"
    "  --insecure-open    no authentication: every connection may do\n"
    "                     everything (tests and benchmarks only)\n"
    "  --no-console       no web console: a browser opening the WebSocket\n"
    "                     address gets the server's status as text (by\n"
    "                     default it gets the console, a page to log in\n"
    "                     and browse the databases; /health: JSON status)\n"
    "\n"
    "Every request is checked against the permissions of the user its\n"
    "connection logged in as (sprig admin --help); a connection that has\n"
    "not logged in may only log in, and is closed after 10 s.\n"
    "\n"
    "With the global --schema FILE, the schema file is registered and the\n"
    "database --db (default \"default\") is created with it if missing, so\n"
    "clients find it ready.\n"
    "\n"
    "While it runs, the server writes its URL into DIR/serve.url, so a\n"
    "command given --path DIR can say where to reach the storage.\n";

/* --ws as given, made HOST:PORT: "19503" and ":19503" are 127.0.0.1's. */
static int
listen_address(const char *ws, char *out, size_t n)
{
    uint64_t port;
    const char *p = ws[0] == ':' ? ws + 1 : ws;
    if (cli_parse_uint(p, 65535, &port)) {
        snprintf(out, n, "127.0.0.1:%u", (unsigned)port);
    } else if ((size_t)snprintf(out, n, "%s", ws) >= n) {
        return cli_usage(serve_usage, "--ws '%s' is too long", ws);
    }
    return CLI_CONTINUE;
}

/* Try to bind HOST:PORT before the storage is opened (and its directory
 * made), so a port in use fails first, with a hint. */
static int
probe_listen(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host ||
        strcmp(colon + 1, "0") == 0) {
        return CLI_CONTINUE; /* the server reports what is wrong */
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        return CLI_CONTINUE;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0), one = 1, err = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        err = errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    freeaddrinfo(ai);
    if (err == EADDRINUSE) {
        return cli_err(SPRIG_EIO,
                       "listen on %s: address already in use (another "
                       "server?); choose another port with --ws HOST:PORT, "
                       "or --ws 0 for a free one",
                       addr);
    }
    return CLI_CONTINUE;
}

/* DIR/serve.url: where this server is, for `busy` messages (cli.c). */
static void
url_file(const cli *c, const char *url)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/serve.url", c->path);
    if (!url) {
        unlink(file);
        return;
    }
    FILE *f = fopen(file, "w");
    if (f) {
        fprintf(f, "%s\n", url);
        fclose(f);
    }
}

static int
parse_durability(const char *s, sprig_durability *out)
{
    static const char *names[] = {"full", "normal", "none"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (sprig_durability)i;
            return CLI_CONTINUE;
        }
    }
    return cli_usage(serve_usage,
                     "durability '%s' is not full, normal or "
                     "none",
                     s);
}

/* --kv-persistence MODE and the lazy thresholds. */
static int
parse_kv_persistence(const char *mode, const char *changes, const char *ms,
                     sprig_kv_persistence *out)
{
    uint64_t n = 10000, t = 1000;
    if (strcmp(mode, "immediate") == 0) {
        out->mode = SPRIG_KV_IMMEDIATE;
    } else if (strcmp(mode, "lazy") == 0) {
        out->mode = SPRIG_KV_LAZY;
    } else {
        return cli_usage(serve_usage,
                         "kv persistence '%s' is not immediate or lazy", mode);
    }
    if (changes && !cli_parse_uint(changes, UINT32_MAX, &n)) {
        return cli_usage(serve_usage, "--kv-lazy-changes '%s' is not a count",
                         changes);
    }
    if (ms && !cli_parse_uint(ms, UINT32_MAX, &t)) {
        return cli_usage(serve_usage, "--kv-lazy-ms '%s' is not a number", ms);
    }
    out->lazy_changes = (uint32_t)n;
    out->lazy_ms = (uint32_t)t;
    return CLI_CONTINUE;
}

/* How to let someone in: printed while the storage has no user. */
static void
announce_auth(const cli *c, sprig_server *srv)
{
    sprig_auth *a = sprig_server_auth(srv);
    uint64_t users = 0;
    if (!a) {
        printf("  WARNING: --insecure-open: every connection may do "
               "everything\n");
        return;
    }
    if (sprig_auth_user_count(a, &users) == 0 && users > 0) {
        printf("  authentication: on (%llu users)\n",
               (unsigned long long)users);
        return;
    }
    printf("  authentication: on, and no user exists yet: nobody can log "
           "in.\n  Create the first administrator (with the server stopped, "
           "or on a copy):\n"
           "    %s --path %s admin user create admin --password\n"
           "    %s --path %s admin group create admins\n"
           "    %s --path %s admin group grant admins '*' sprig\n"
           "    %s --path %s admin user add-group admin admins\n",
           c->prog, c->path, c->prog, c->path, c->prog, c->path, c->prog,
           c->path);
}

/* Print where the server listens and how to reach it. */
static void
announce(const cli *c, sprig_server *srv, const sprig_server_options *o,
         const char *sha256)
{
    bool tls = o->tls_cert_file != NULL;
    const char *scheme = tls ? "wss" : "ws";
    int port = sprig_server_ws_port(srv), qport = sprig_server_quic_port(srv);
    char url[64];
    if (port >= 0) {
        snprintf(url, sizeof url, "%s://127.0.0.1:%d", scheme, port);
    } else {
        snprintf(url, sizeof url, "quic://127.0.0.1:%d", qport);
    }
    url_file(c, url);
    printf("Sprig %s serving %s\n", sprig_version(), c->path);
    if (qport >= 0) {
        printf("  listening on quic://127.0.0.1:%d (QUIC, ALPN sprig/1)\n",
               qport);
    }
    if (port >= 0) {
        printf("  listening on %s://127.0.0.1:%d (protocol sprig.v1)\n", scheme,
               port);
    }
    if (port >= 0 && !o->no_console) {
        printf("  web console: %s://127.0.0.1:%d/ (open it in a browser)\n",
               tls ? "https" : "http", port);
    }
    announce_auth(c, srv);
    const char *user = sprig_server_auth(srv) ? " --user NAME" : "";
    if (qport >= 0) {
        printf("  try: %s --url quic://127.0.0.1:%d --ca %s%s db list\n",
               c->prog, qport, sha256, user);
    }
    if (port >= 0) {
        printf("  try: %s --url %s://127.0.0.1:%d%s%s%s db list\n", c->prog,
               scheme, port, tls ? " --ca " : "", tls ? sha256 : "", user);
    }
    printf("  stop with Ctrl-C\n");
    fflush(stdout);
}

/* QUIC (or --wss) without --tls-cert: the storage's certificate, made
 * self-signed the first time.  Prints where it is and its fingerprint. */
static int
storage_certificate(cli *c, sprig_server_options *o, bool wss,
                    sprig_cert_info *ci, char *sha256)
{
    if (o->tls_cert_file) {
        return sprig_cert_fingerprint(o->tls_cert_file, sha256);
    }
    if (!o->quic_listen && !wss) {
        return SPRIG_OK;
    }
    if (mkdir(c->path, 0700) != 0 && errno != EEXIST) {
        return cli_err(SPRIG_EIO, "cannot make %s: %s", c->path,
                       strerror(errno));
    }
    int rc = sprig_cert_ensure(c->path, ci);
    if (rc) {
        return rc;
    }
    printf("certificate %s (%s)\n  SHA-256 %s\n", ci->cert_path,
           ci->created ? "made now, self-signed" : "installed", ci->sha256);
    memcpy(sha256, ci->sha256, 65);
    o->quic_cert_file = ci->cert_path;
    o->quic_key_file = ci->key_path;
    if (wss) {
        o->tls_cert_file = ci->cert_path;
        o->tls_key_file = ci->key_path;
    }
    return SPRIG_OK;
}

/* --schema FILE: register it and make sure database --db exists. */
static int
prepare(cli *c, sprig_storage *st)
{
    sprig_schema_def *s = NULL;
    int rc = sprig_schema_load_json(c->schema_file, &s);
    rc = rc ? rc : sprig_storage_register_schema(st, s);
    rc = rc ? rc : sprig_storage_create_database(st, c->dbname, s->name, true);
    sprig_schema_free(s);
    return rc;
}

/* The server: for the storage `so` describes, or (--cluster) for the
 * storage of the cluster node opened into *cl. */
static int
server_new(const sprig_storage_options *so, const sprig_server_options *o,
           const char *cluster, const sigset_t *sigs, sprig_cluster **cl,
           sprig_server **srv)
{
    if (!cluster) {
        return sprig_server_new(so, o, srv);
    }
    int rc = sprig_cluster_open(so, cluster, cl);
    if (rc == 0 && sprig_cluster_joining(*cl)) {
        fprintf(stderr, "sprig: a new node: waiting to be added (sprig "
                        "cluster add ID RAFT-ADDR URL on a member)\n");
    }
    while (rc == 0 && sprig_cluster_joining(*cl)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        if (sigtimedwait(sigs, NULL, &ts) > 0) {
            fprintf(stderr, "sprig: stopped while waiting for the cluster\n");
            rc = SPRIG_ECLOSED;
        }
    }
    /* with authentication the server makes "_admin" if missing: a
     * replicated write, refused until this node has a leader (a new
     * cluster electing one, a new node waiting for `cluster add`) */
    bool said = false;
    while (rc == 0) {
        rc = sprig_server_new_for(sprig_cluster_storage(*cl), o, srv);
        if (rc != SPRIG_ENOTLEADER) {
            break;
        }
        if (!said) {
            fprintf(stderr, "sprig: waiting for the cluster (%s)\n",
                    sprig_errmsg());
            said = true;
        }
        rc = 0;
        struct timespec ts = {0, 200 * 1000 * 1000};
        if (sigtimedwait(sigs, NULL, &ts) > 0) {
            fprintf(stderr, "sprig: stopped while waiting for the cluster\n");
            rc = SPRIG_ECLOSED;
        }
    }
    return rc ? rc : sprig_cluster_attach_server(*cl, *srv);
}

/* --admin-user: the first administrator of a new cluster, through the
 * Raft log (sprig_cluster_bootstrap_admin); a follower waits until the
 * leader's writes reached it.  `user` NULL: nothing to do. */
static int
admin_bootstrap(sprig_cluster *cl, sprig_server *srv, const char *user,
                const char *env, const sigset_t *sigs)
{
    if (!cl || !user) {
        return SPRIG_OK;
    }
    const char *pw = getenv(env); /* checked by cli_cmd_serve */
    int rc;
    while ((rc = sprig_cluster_bootstrap_admin(cl, sprig_server_auth(srv), user,
                                               pw)) == SPRIG_ENOTLEADER ||
           rc == SPRIG_ETIMEDOUT) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        if (sigtimedwait(sigs, NULL, &ts) > 0) {
            fprintf(stderr, "sprig: stopped while waiting for the cluster\n");
            return SPRIG_ECLOSED;
        }
    }
    if (rc == 0) {
        fprintf(stderr, "sprig: administrator '%s' ready\n", user);
    }
    return rc;
}

typedef struct admin_opt {
    const char *user, *env;
} admin_opt;

static int
serve(cli *c, sprig_server_options *o, sprig_durability d,
      const sprig_kv_persistence *kv, bool wss, const char *cluster,
      const admin_opt *adm)
{
    sprig_cert_info ci;
    char sha256[65] = "";
    int crc = storage_certificate(c, o, wss, &ci, sha256);
    if (crc) {
        return crc < 0 ? cli_fail(crc) : crc;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* threads inherit the mask */
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = c->path;
    so.durability = d;
    so.kv_persistence = *kv;
    so.read_only = c->read_only; /* serves reads; writes answer EPERM */
    sprig_server *srv = NULL;
    sprig_cluster *cl = NULL;
    int rc = server_new(&so, o, cluster, &sigs, &cl, &srv);
    rc = rc ? rc : admin_bootstrap(cl, srv, adm->user, adm->env, &sigs);
    if (rc == 0 && c->schema_file) {
        rc = prepare(c, sprig_server_storage(srv));
    }
    rc = rc ? rc : sprig_server_start(srv);
    if (rc) {
        int status = cli_fail(rc);
        sprig_server_free(srv);
        sprig_cluster_close(cl);
        return status;
    }
    announce(c, srv, o, sha256);
    int sig;
    sigwait(&sigs, &sig);
    fprintf(stderr, "sprig: %s: shutting down\n",
            sig == SIGINT ? "interrupted" : "terminated");
    sprig_server_shutdown(srv, 5000);
    url_file(c, NULL);
    sprig_server_free(srv);
    sprig_cluster_close(cl);
    return CLI_OK;
}

int
cli_cmd_serve(cli *c, int argc, char **argv)
{
    sprig_server_options o;
    sprig_server_options_init(&o);
    const char *durability = "full", *kv_mode = "immediate";
    const char *kv_changes = NULL, *kv_ms = NULL;
    bool wss = false;
    const char *cluster = NULL;
    admin_opt adm = {NULL, NULL};
    o.quic_listen = NULL; /* default below */
    static const char *origins[2];
    const cli_opt opts[] = {
        {"--allow-origin", &origins[0], NULL},
        {"--insecure-open", NULL, &o.open_access},
        {"--cluster", &cluster, NULL},
        {"--admin-user", &adm.user, NULL},
        {"--admin-password-env", &adm.env, NULL},
        {"--no-console", NULL, &o.no_console},
        {"--ws", &o.ws_listen, NULL},
        {"--quic", &o.quic_listen, NULL},
        {"--wss", NULL, &wss},
        {"--tls-cert", &o.tls_cert_file, NULL},
        {"--tls-key", &o.tls_key_file, NULL},
        {"--durability", &durability, NULL},
        {"--kv-persistence", &kv_mode, NULL},
        {"--kv-lazy-changes", &kv_changes, NULL},
        {"--kv-lazy-ms", &kv_ms, NULL},
        {NULL, NULL, NULL},
    };
    cli_args a;
    int rc = cli_parse(argc, argv, opts, serve_usage, 0, 0, &a);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (c->url) {
        return cli_usage(serve_usage, "serve serves a local storage: give "
                                      "--path DIR, not --url");
    }
    if (!*c->path || !*c->dbname) {
        return cli_usage(serve_usage, "--%s is empty",
                         *c->path ? "db" : "path");
    }
    if (adm.user && (!cluster || !adm.env || o.open_access)) {
        return cli_usage(serve_usage, "--admin-user goes with --cluster and "
                                      "--admin-password-env, without "
                                      "--insecure-open");
    }
    if (adm.user && (!getenv(adm.env) || !*getenv(adm.env))) {
        return cli_usage(serve_usage,
                         "--admin-password-env: variable '%s' "
                         "is empty or unset",
                         adm.env);
    }
    if (!o.tls_cert_file != !o.tls_key_file) {
        return cli_usage(serve_usage, "--tls-cert and --tls-key go together");
    }
    if (!o.quic_listen) { /* --ws HOST:0 (tests): QUIC on a free port too */
        size_t n = o.ws_listen ? strlen(o.ws_listen) : 0;
        bool any = n >= 2 && !strcmp(o.ws_listen + n - 2, ":0");
        o.quic_listen = any ? "127.0.0.1:0" : "127.0.0.1:5645";
    }
    if (o.quic_listen && !strcmp(o.quic_listen, "off")) {
        o.quic_listen = NULL;
    }
    if (o.ws_listen && !strcmp(o.ws_listen, "off")) {
        o.ws_listen = NULL;
    }
    o.allowed_origins = origins[0] ? origins : NULL;
    sprig_durability d = SPRIG_DURABILITY_FULL;
    if ((rc = parse_durability(durability, &d)) != CLI_CONTINUE) {
        return rc;
    }
    sprig_kv_persistence kv = {SPRIG_KV_IMMEDIATE, 0, 0};
    rc = parse_kv_persistence(kv_mode, kv_changes, kv_ms, &kv);
    char addr[300];
    if (rc == CLI_CONTINUE && o.ws_listen) {
        rc = listen_address(o.ws_listen, addr, sizeof addr);
        o.ws_listen = addr;
    }
    rc = rc == CLI_CONTINUE && o.ws_listen ? probe_listen(o.ws_listen) : rc;
    return rc != CLI_CONTINUE ? rc : serve(c, &o, d, &kv, wss, cluster, &adm);
}
