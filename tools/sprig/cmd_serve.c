/*
 * cmd_serve.c -- `sprig serve`: run a Sprig server on the storage at
 * --path until SIGINT or SIGTERM.  The server runs on its own threads;
 * this thread waits for the signal (sigwait, with the signals blocked in
 * every thread) and then shuts the server down gracefully.
 */
#include "cli.h"

#include <sprig/server.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char serve_usage[] =
    "usage: sprig serve [--path DIR] [--ws HOST:PORT] [--tls-cert FILE\n"
    "                               --tls-key FILE] [--durability MODE]\n"
    "                               [--kv-persistence MODE]\n"
    "                               [--kv-lazy-changes N] [--kv-lazy-ms MS]\n"
    "                               [--allow-origin ORIGIN] [--insecure-open]\n"
    "\n"
    "Serve the storage at --path over WebSockets (protocol sprig.v1) until\n"
    "interrupted (SIGINT or SIGTERM: requests in flight finish, clients are\n"
    "told the server is going away).\n"
    "\n"
    "  --ws HOST:PORT     listen address (default 127.0.0.1:5646; port 0\n"
    "                     picks a free one, printed at start)\n"
    "  --tls-cert FILE    PEM certificate chain; with --tls-key: wss://\n"
    "  --tls-key FILE     PEM private key\n"
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
    "  --insecure-open    no authentication: every connection may do\n"
    "                     everything (tests and benchmarks only)\n"
    "\n"
    "Every request is checked against the permissions of the user its\n"
    "connection logged in as (sprig admin --help); a connection that has\n"
    "not logged in may only log in, and is closed after 10 s.\n"
    "\n"
    "With the global --schema FILE, the schema file is registered and the\n"
    "database --db (default \"default\") is created with it if missing, so\n"
    "clients find it ready.\n";

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
announce(const cli *c, sprig_server *srv, const char *o_cert)
{
    bool tls = o_cert != NULL;
    const char *scheme = tls ? "wss" : "ws";
    int port = sprig_server_ws_port(srv);
    printf("Sprig %s serving %s\n", sprig_version(), c->path);
    printf("  listening on %s://127.0.0.1:%d (protocol sprig.v1)\n", scheme,
           port);
    announce_auth(c, srv);
    printf("  try: %s --url %s://127.0.0.1:%d%s%s%s db list\n", c->prog, scheme,
           port, tls ? " --ca " : "", tls ? o_cert : "",
           sprig_server_auth(srv) ? " --user NAME" : "");
    printf("  stop with Ctrl-C\n");
    fflush(stdout);
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

static int
serve(cli *c, sprig_server_options *o, sprig_durability d,
      const sprig_kv_persistence *kv)
{
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
    sprig_server *srv = NULL;
    int rc = sprig_server_new(&so, o, &srv);
    if (rc == 0 && c->schema_file) {
        rc = prepare(c, sprig_server_storage(srv));
    }
    rc = rc ? rc : sprig_server_start(srv);
    if (rc) {
        int status = cli_fail(rc);
        sprig_server_free(srv);
        return status;
    }
    announce(c, srv, o->tls_cert_file);
    int sig;
    sigwait(&sigs, &sig);
    fprintf(stderr, "sprig: %s: shutting down\n",
            sig == SIGINT ? "interrupted" : "terminated");
    sprig_server_shutdown(srv, 5000);
    sprig_server_free(srv);
    return CLI_OK;
}

int
cli_cmd_serve(cli *c, int argc, char **argv)
{
    sprig_server_options o;
    sprig_server_options_init(&o);
    const char *durability = "full", *kv_mode = "immediate";
    const char *kv_changes = NULL, *kv_ms = NULL;
    static const char *origins[2];
    const cli_opt opts[] = {
        {"--allow-origin", &origins[0], NULL},
        {"--insecure-open", NULL, &o.open_access},
        {"--ws", &o.ws_listen, NULL},
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
    if (!o.tls_cert_file != !o.tls_key_file) {
        return cli_usage(serve_usage, "--tls-cert and --tls-key go together");
    }
    o.allowed_origins = origins[0] ? origins : NULL;
    sprig_durability d = SPRIG_DURABILITY_FULL;
    if ((rc = parse_durability(durability, &d)) != CLI_CONTINUE) {
        return rc;
    }
    sprig_kv_persistence kv = {SPRIG_KV_IMMEDIATE, 0, 0};
    rc = parse_kv_persistence(kv_mode, kv_changes, kv_ms, &kv);
    return rc != CLI_CONTINUE ? rc : serve(c, &o, d, &kv);
}
