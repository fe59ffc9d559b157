/*
 * placement.h -- where a conformance test's storage lives.  The suite
 * (test_conformance.c) is written once against sprig.h and runs against
 * every placement: a local storage, and a real Sprig server on loopback
 * reached through a client over ws://, over wss:// (a TLS listener with
 * a self-signed certificate made by openssl, pinned by the client), and
 * over quic:// (a self-signed certificate made by sprig_cert_ensure(),
 * pinned by its SHA-256 fingerprint), and a local storage with
 * storage-wide encryption and compression on ("vault": every value
 * through the codec's both steps).  Every
 * server placement checks, as it opens, that both ends report the
 * transport it names: TLS for wss (with a version and a cipher), plain for
 * ws (placement_check_transport).  Each
 * placement registers the suite's schema the way a real program would: the
 * local one directly, the server one through the server program's own storage
 * handle.  The server placements check permissions (issue 10): the
 * client logs in as an administrator of a permission engine kept in a
 * memory-only storage of its own (sprig_server_options.auth), so the
 * served storage holds only the suite's databases and schemas.
 * The "cluster" placement (its block is at the end) is three real node
 * processes -- the test program itself in its node mode, a server program
 * embedding Sprig with the test's C view code -- reached through one
 * multi-URL client that logs in as the administrator the nodes bootstrap
 * through the Raft log.
 */
#ifndef SPRIG_PLACEMENT_H
#define SPRIG_PLACEMENT_H

#include "sprig/client.h"
#include "sprig/server.h"
#include "testutil.h"

typedef struct placement {
    const char *name;
    sprig_storage *st; /* what the tests use */
    sprig_storage *local;
    sprig_server *srv;
    sprig_client *client;
    sprig_storage *auth_st; /* the permission engine's own storage */
    sprig_auth *auth;
    char dir[1200];
    /* "cluster": the node processes and their client ports */
    pid_t pids[3];
    int ws_ports[3];
} placement;

/* The administrator the server placements log in as. */
#define PLACEMENT_USER "admin"
#define PLACEMENT_PASSWORD "placement-admin-pw"

/* A permission engine with one administrator (granted everything), lent
 * to the server through `o`. */
static inline void
placement_auth(placement *p, sprig_server_options *o)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.memory_only = true;
    SPRIG_OK_(sprig_storage_open(&so, &p->auth_st));
    sprig_auth_options ao;
    sprig_auth_options_min(&ao);
    SPRIG_OK_(sprig_auth_open(p->auth_st, &ao, &p->auth));
    SPRIG_OK_(sprig_auth_user_create(p->auth, NULL, PLACEMENT_USER,
                                     PLACEMENT_PASSWORD));
    SPRIG_OK_(sprig_auth_group_create(p->auth, NULL, "admins"));
    SPRIG_OK_(sprig_auth_group_grant(p->auth, NULL, "admins", "*", "sprig"));
    SPRIG_OK_(
        sprig_auth_user_group(p->auth, NULL, PLACEMENT_USER, "admins", true));
    o->auth = p->auth;
}

/* the "wrapped" placement (its block is at the end) */
static inline void placement_open_wrapped(placement *p,
                                          const sprig_storage_options *so,
                                          const sprig_schema_def *schema);
static inline void placement_close_wrapped(placement *p);
/* the "cluster" placement (its block is at the end) */
static inline void placement_open_cluster(placement *p,
                                          const sprig_schema_def *schema);
static inline void placement_close_cluster(placement *p);
static inline void placement_cluster_replicated(placement *p);

/* A self-signed certificate for 127.0.0.1 in `root` (made once). */
static inline void
placement_cert(const char *root, char *cert, char *key, size_t n)
{
    snprintf(cert, n, "%s/cert.pem", root);
    snprintf(key, n, "%s/key.pem", root);
    if (access(cert, R_OK) == 0) {
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt "
             "ec_paramgen_curve:prime256v1 -nodes -keyout '%s' -out '%s' "
             "-days 2 -subj /CN=localhost -addext "
             "subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl could not make a certificate\n");
        exit(1);
    }
}

/* The client and the server both say what carries their connection: TLS
 * (with a version and a cipher) for wss, plain for ws. */
static inline void
placement_check_transport(placement *p, bool tls)
{
    sprig_conn_info ci, si[4];
    size_t n = 0;
    const char *want = strncmp(p->name, "quic", 4) == 0 ? "quic" : p->name;
    SPRIG_OK_(sprig_client_info(p->client, &ci));
    assert_string_equal(ci.transport, want);
    assert_int_equal(ci.tls, tls);
    assert_int_equal(ci.tls_version[0] != '\0', tls);
    assert_int_equal(ci.tls_cipher[0] != '\0', tls);
    for (int i = 0; i < 400 && n == 0; i++) { /* the server's side opens */
        SPRIG_OK_(sprig_server_connections(p->srv, si, 4, &n));
        if (n == 0) {
            usleep(5000);
        }
    }
    assert_int_equal(n, 1);
    assert_string_equal(si[0].transport, want);
    assert_int_equal(si[0].tls, tls);
    assert_string_equal(si[0].tls_version, ci.tls_version);
    assert_string_equal(si[0].tls_cipher, ci.tls_cipher);
    if (tls) {
        print_message("%s: %s, %s\n", p->name, ci.tls_version, ci.tls_cipher);
    }
}

/* Out of line: gcc's -Wstring-compare sees through an inlined constant. */
__attribute__((noinline, unused)) static bool
placement_is(const char *kind, const char *name)
{
    return strcmp(kind, name) == 0;
}

static inline void
placement_open(placement *p, const char *kind, const char *root,
               const sprig_schema_def *schema)
{
    static int n;
    memset(p, 0, sizeof *p);
    p->name = kind;
    snprintf(p->dir, sizeof p->dir, "%s/%s%d", root, kind, n++);
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = p->dir;
    so.durability = SPRIG_DURABILITY_NONE; /* behaviour, not crash safety */
    if (strcmp(kind, "wrapped") == 0) {
        placement_open_wrapped(p, &so, schema);
        return;
    }
    if (placement_is(kind, "cluster")) {
        placement_open_cluster(p, schema);
        return;
    }
    bool vault = placement_is(kind, "vault");
    if (vault) { /* local, everything encrypted and compressed (issue 13) */
        so.encrypt = true;
        so.compress = true;
        so.compress_min = 16; /* the suite's small documents compress too */
    }
    if (vault || placement_is(kind, "local")) {
        SPRIG_OK_(sprig_storage_open(&so, &p->local));
        SPRIG_OK_(sprig_storage_register_schema(p->local, schema));
        p->st = p->local;
        if (so.encrypt) { /* the vault exists: values are sealed */
            char vf[1300];
            snprintf(vf, sizeof vf, "%s/vault", p->dir);
            assert_int_equal(access(vf, F_OK), 0);
        }
        return;
    }
    const char *volatile k = kind; /* GCC folds strcmp on inlined names */
    /* "quic-streams": quic:// with a stream per request (issue 11) */
    bool quic = strncmp(k, "quic", 4) == 0;
    bool tls = strcmp(kind, "wss") == 0 || quic;
    char cert[1300], key[1300];
    sprig_cert_info qc;
    sprig_server_options o;
    sprig_server_options_init(&o);
    placement_auth(p, &o);
    o.ws_listen = quic ? NULL : "127.0.0.1:0";
    o.workers = 4;
    if (quic) { /* a certificate made by Sprig, pinned by fingerprint */
        SPRIG_OK_(sprig_cert_ensure(root, &qc));
        o.quic_listen = "127.0.0.1:0";
        o.quic_cert_file = qc.cert_path;
        o.quic_key_file = qc.key_path;
    } else if (tls) {
        placement_cert(root, cert, key, sizeof cert);
        o.tls_cert_file = cert;
        o.tls_key_file = key;
    }
    SPRIG_OK_(sprig_server_new(&so, &o, &p->srv));
    SPRIG_OK_(
        sprig_storage_register_schema(sprig_server_storage(p->srv), schema));
    SPRIG_OK_(sprig_server_start(p->srv));
    char url[96];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", quic ? "quic" : kind,
             quic ? sprig_server_quic_port(p->srv)
                  : sprig_server_ws_port(p->srv),
             quic && strcmp(k, "quic") != 0 ? "?streams=request" : "");
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.pinned_cert_path = tls && !quic ? cert : NULL;
    co.pinned_cert_sha256 = quic ? qc.sha256 : NULL;
    SPRIG_OK_(sprig_client_connect(url, &co, &p->client));
    SPRIG_OK_(sprig_client_authenticate_password(p->client, PLACEMENT_USER,
                                                 PLACEMENT_PASSWORD));
    p->st = sprig_client_storage(p->client);
    placement_check_transport(p, tls);
}

static inline void
placement_close(placement *p)
{
    placement_close_wrapped(p);
    if (p->client && p->pids[0] > 0) {
        placement_cluster_replicated(p);
    }
    if (p->client) {
        sprig_client_close(p->client);
    }
    placement_close_cluster(p);
    if (p->srv) {
        sprig_server_free(p->srv);
    }
    if (p->local) {
        sprig_storage_close(p->local);
    }
    sprig_auth_free(p->auth);
    if (p->auth_st) {
        sprig_storage_close(p->auth_st);
    }
    memset(p, 0, sizeof *p);
}

/* ---- the "wrapped" placement ----------------------------------------------
 * A server over a storage that is not the local type (wrap_storage.h: a
 * thin wrapper forwarding every public op to a local storage), made with
 * sprig_server_new_for(), reached by a client over ws://.  The suite passes
 * through it only if the server uses nothing but the public ops. */
#include "wrap_storage.h"

static inline void
placement_open_wrapped(placement *p, const sprig_storage_options *so,
                       const sprig_schema_def *schema)
{
    sprig_storage *in;
    SPRIG_OK_(sprig_storage_open(so, &in));
    p->local = wrap_storage_new(in); /* closed after the server */
    assert_non_null(p->local);
    sprig_server_options o;
    sprig_server_options_init(&o);
    placement_auth(p, &o);
    o.ws_listen = "127.0.0.1:0";
    o.workers = 4;
    SPRIG_OK_(sprig_server_new_for(p->local, &o, &p->srv));
    assert_ptr_equal(sprig_server_storage(p->srv), p->local);
    SPRIG_OK_(
        sprig_storage_register_schema(sprig_server_storage(p->srv), schema));
    SPRIG_OK_(sprig_server_start(p->srv));
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d",
             sprig_server_ws_port(p->srv));
    SPRIG_OK_(sprig_client_connect(url, NULL, &p->client));
    SPRIG_OK_(sprig_client_authenticate_password(p->client, PLACEMENT_USER,
                                                 PLACEMENT_PASSWORD));
    p->st = sprig_client_storage(p->client);
}

/* The server opened the test's databases through the wrapper. */
static inline void
placement_close_wrapped(placement *p)
{
    if (p->name && strcmp(p->name, "wrapped") == 0 && p->local) {
        assert_true(wrap_storage_opened(p->local) > 0);
    }
}

/* ---- the "cluster" placement ----------------------------------------------
 * Three node processes on loopback, ephemeral ports, each with its own
 * storage and Raft log under the placement's directory, reached by one
 * client over "ws://a,b,c": it connects to the first node that answers
 * and follows SPRIG_ENOTLEADER to the leader, so after its first write it
 * talks to the leader and reads its own writes (reads are local).
 *
 * A node is the test program re-executed in its node mode
 * (placement_node_main): a user's own server program embedding Sprig, as
 * a cluster with C views runs one -- it opens its storage as a cluster
 * node (sprig_cluster_open), registers the schemas of its C views with
 * their code (the test's `node_schemas` callback, given what the setup
 * asked for), serves the storage with authentication ON, and bootstraps
 * the administrator through the Raft log
 * (sprig_cluster_bootstrap_admin): the same calls `sprig serve --cluster
 * --admin-user` makes.  The client logs in as that administrator.  The
 * nodes die with the test process (PR_SET_PDEATHSIG) and are killed with
 * SIGKILL at close, also after a failed test (cmocka runs the teardown). */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <fcntl.h>

/* The node mode's first argument (argv[1]). */
#define PLACEMENT_NODE_ARG "--placement-node"

/* What the setup asks the nodes to register with code ("" none): set
 * before placement_open, passed to the node program's callback. */
static const char *placement_node_views = "";

/* A free loopback TCP port (bound once, released). */
static inline int
placement_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Node i's cluster file (every node listed, bootstrap on all). */
static inline void
placement_cluster_file(placement *p, int i, const int *raft, char *path,
                       size_t n)
{
    snprintf(path, n, "%s/c%d.json", p->dir, i + 1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"id\":%d,\"raft\":\"127.0.0.1:%d\",", i + 1, raft[i]);
    fprintf(f, "\"url\":\"ws://127.0.0.1:%d\",\"bootstrap\":true,\"peers\":[",
            p->ws_ports[i]);
    for (int j = 0, k = 0; j < 3; j++) {
        if (j != i) {
            fprintf(f,
                    "%s{\"id\":%d,\"raft\":\"127.0.0.1:%d\",\"url\":\"ws://"
                    "127.0.0.1:%d\"}",
                    k++ ? "," : "", j + 1, raft[j], p->ws_ports[j]);
        }
    }
    fprintf(f, "]}\n");
    fclose(f);
}

/* Start node i: this program in its node mode, its output in n<i>.log. */
static inline pid_t
placement_spawn_node(placement *p, int i, const char *file)
{
    char path[1300], ws[64], log[1300];
    snprintf(path, sizeof path, "%s/n%d", p->dir, i + 1);
    snprintf(ws, sizeof ws, "127.0.0.1:%d", p->ws_ports[i]);
    snprintf(log, sizeof log, "%s/n%d.log", p->dir, i + 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/proc/self/exe", "sprig-node", PLACEMENT_NODE_ARG, path, ws,
              file, placement_node_views, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The node program's schemas with their C view code: `views` is what the
 * setup asked for.  Returns what sprig_storage_register_schema returns. */
typedef int (*placement_node_schemas_fn)(sprig_storage *st, const char *views);

/* Call `f` until it is not refused for want of a leader (or a leader
 * lost), 60 s at most.  Its last result. */
static inline int
placement_node_retry(int (*f)(void *arg), void *arg)
{
    int rc = -1;
    for (int t = 0; t < 600; t++) {
        rc = f(arg);
        if (rc != SPRIG_ENOTLEADER && rc != SPRIG_ETIMEDOUT) {
            break;
        }
        usleep(100000);
    }
    return rc;
}

typedef struct placement_node {
    sprig_cluster *cl;
    sprig_server *srv;
    sprig_server_options o;
    placement_node_schemas_fn schemas;
    const char *views;
} placement_node;

static inline int
placement_node_schemas(void *arg)
{
    placement_node *n = arg;
    return n->schemas ? n->schemas(sprig_cluster_storage(n->cl), n->views)
                      : SPRIG_OK;
}

static inline int
placement_node_server(void *arg)
{
    placement_node *n = arg; /* the server makes "_admin": a write */
    return sprig_server_new_for(sprig_cluster_storage(n->cl), &n->o, &n->srv);
}

static inline int
placement_node_admin(void *arg)
{
    placement_node *n = arg;
    return sprig_cluster_bootstrap_admin(n->cl, sprig_server_auth(n->srv),
                                         PLACEMENT_USER, PLACEMENT_PASSWORD);
}

/* Open, register, serve (authentication on), bootstrap the admin. */
static inline int
placement_node_start(placement_node *n, const char *path, const char *ws,
                     const char *file)
{
    static sprig_auth_options ao;
    sprig_auth_options_min(&ao); /* cheap hashes: a test */
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = path;
    so.durability = SPRIG_DURABILITY_NONE; /* the Raft log is durable */
    sprig_server_options_init(&n->o);
    n->o.ws_listen = ws;
    n->o.workers = 2;
    n->o.no_console = true;
    n->o.auth_options = &ao;
    n->o.max_connections_per_address = 0;
    int rc = sprig_cluster_open(&so, file, &n->cl);
    rc = rc ? rc : placement_node_retry(placement_node_schemas, n);
    rc = rc ? rc : placement_node_retry(placement_node_server, n);
    rc = rc ? rc : placement_node_retry(placement_node_admin, n);
    rc = rc ? rc : sprig_cluster_attach_server(n->cl, n->srv);
    return rc ? rc : sprig_server_start(n->srv);
}

/* The node mode: `PROG --placement-node PATH HOST:PORT CLUSTER-FILE VIEWS`.
 * Serves until SIGTERM or SIGINT (or its parent dies).  Exit status 0,
 * or 1 with the reason on stderr. */
static inline int
placement_node_main(int argc, char **argv, placement_node_schemas_fn schemas)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s %s PATH HOST:PORT CLUSTER-FILE VIEWS\n",
                argv[0], PLACEMENT_NODE_ARG);
        return 1;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* threads inherit the mask */
    placement_node n = {.schemas = schemas, .views = argv[5]};
    int rc = placement_node_start(&n, argv[2], argv[3], argv[4]);
    if (rc) {
        fprintf(stderr, "node: %s\n", sprig_errmsg());
    } else {
        fprintf(stderr, "node: serving %s\n", argv[3]);
        int sig;
        sigwait(&sigs, &sig);
        sprig_server_shutdown(n.srv, 2000);
    }
    sprig_server_free(n.srv);
    sprig_cluster_close(n.cl);
    return rc ? 1 : 0;
}

/* Register the suite's schema through the client: a write, so it waits
 * for a leader (an election after the start) and leaves the client on
 * the leader.  Its views are declarative: they need no code on the
 * nodes. */
static inline void
placement_cluster_ready(placement *p, const sprig_schema_def *schema)
{
    int rc = -1;
    for (int t = 0; t < 600 && rc != 0; t++) { /* 60 s at most */
        rc = sprig_storage_register_schema(p->st, schema);
        if (rc != 0 && rc != SPRIG_ENOTLEADER && rc != SPRIG_ECONNECT &&
            rc != SPRIG_ECLOSED) {
            break;
        }
        if (rc != 0) {
            usleep(100000);
        }
    }
    if (rc != 0) {
        fail_msg("no leader took the schema: %s", sprig_errmsg());
    }
}

/* A client of `url` logged in as the administrator (the servers may still
 * be starting: 30 s at most). */
static inline sprig_client *
placement_cluster_client(const char *url)
{
    sprig_client *c = NULL;
    int rc = -1;
    for (int t = 0; t < 300 && rc != 0; t++) {
        rc = sprig_client_connect(url, NULL, &c);
        if (rc != 0) {
            usleep(100000);
        }
    }
    SPRIG_OK_(rc);
    SPRIG_OK_(sprig_client_authenticate_password(c, PLACEMENT_USER,
                                                 PLACEMENT_PASSWORD));
    return c;
}

static inline void
placement_open_cluster(placement *p, const sprig_schema_def *schema)
{
    assert_int_equal(mkdir(p->dir, 0755), 0);
    int raft[3];
    for (int i = 0; i < 3; i++) {
        raft[i] = placement_free_port();
        p->ws_ports[i] = placement_free_port();
    }
    char url[256];
    for (int i = 0; i < 3; i++) {
        char file[1300];
        placement_cluster_file(p, i, raft, file, sizeof file);
        p->pids[i] = placement_spawn_node(p, i, file);
    }
    snprintf(url, sizeof url, "ws://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             p->ws_ports[0], p->ws_ports[1], p->ws_ports[2]);
    p->client = placement_cluster_client(url);
    p->st = sprig_client_storage(p->client);
    placement_cluster_ready(p, schema);
}

/* The names of the databases `st` lists, one string. */
static inline void
placement_db_names(sprig_storage *st, char *out, size_t n)
{
    sprig_database_list *l;
    out[0] = 0;
    if (sprig_storage_list_databases(st, &l) != 0) {
        snprintf(out, n, "(error: %s)", sprig_errmsg());
        return;
    }
    for (size_t i = 0; i < sprig_database_list_count(l); i++) {
        size_t at = strlen(out);
        snprintf(out + at, n - at, "%s ", sprig_database_list_name(l, i));
    }
    sprig_database_list_free(l);
}

/* Every node lists the databases the suite left on the leader (a
 * follower may lag a heartbeat or so: reads are local): the suite really
 * ran through a replicated cluster. */
static inline void
placement_cluster_replicated(placement *p)
{
    char want[1024], got[1024];
    placement_db_names(p->st, want, sizeof want);
    for (int i = 0; i < 3; i++) {
        char url[64];
        snprintf(url, sizeof url, "ws://127.0.0.1:%d", p->ws_ports[i]);
        sprig_client *c = placement_cluster_client(url);
        for (int t = 0; t < 100; t++) {
            placement_db_names(sprig_client_storage(c), got, sizeof got);
            if (strcmp(got, want) == 0) {
                break;
            }
            usleep(100000);
        }
        sprig_client_close(c);
        if (strcmp(got, want) != 0) {
            fail_msg("node %d lists '%s', the leader '%s'", i + 1, got, want);
        }
    }
}

static inline void
placement_close_cluster(placement *p)
{
    for (int i = 0; i < 3; i++) {
        if (p->pids[i] > 0) {
            kill(p->pids[i], SIGKILL);
            waitpid(p->pids[i], NULL, 0);
            p->pids[i] = 0;
        }
    }
}

#endif
