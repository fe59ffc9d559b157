/*
 * test_api_platform.c -- the API platform (issue 12) through real servers
 * and clients on loopback: custom APIs over ws://, wss:// and quic://
 * (calls, application errors, a failing handler that leaves the
 * connection serving, asynchronous answers, requests and answers of
 * megabytes, unknown names), 50 clients calling at once over ws://,
 * wss:// and quic://, handlers that block (the pool wakes another
 * worker), asynchronous key-value operations, the server.apis listing
 * per caller, pushes to one
 * client / one identity / all (callbacks, the queue, its counted drops),
 * a custom API denied to an identity without its action, the hooks (a
 * refusing connect hook, the order connect / authenticate / session end /
 * disconnect) with the listing of connected clients, and the HTTP
 * hand-over of a socket accepted by the test's own listener.
 */
#include "placement.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

static const char *root;

/* ---- handlers ------------------------------------------------------------ */

static void
h_echo(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_bytes r = sprig_api_request(ctx);
    sprig_api_reply(ctx, r.data, r.len);
}

static void
h_fail(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_bytes r = sprig_api_request(ctx);
    sprig_api_fail(ctx, SPRIG_EAPI(7), "no thanks: %.*s", (int)r.len,
                   (const char *)r.data);
}

static void
h_bad_code(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_api_fail(ctx, 5, "positive");
}

/* A reply of N bytes (N the request, as text), byte i = i % 251. */
static void
h_big(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_bytes r = sprig_api_request(ctx);
    char num[32] = "";
    memcpy(num, r.data, r.len < 31 ? r.len : 31);
    size_t n = strtoull(num, NULL, 10);
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)(i % 251);
    }
    sprig_api_reply(ctx, b, n);
    free(b);
}

/* Answer from another thread, 20 ms later, with "later:" + request. */
static void *
later_thread(void *arg)
{
    sprig_api_ctx *ctx = arg;
    usleep(20000);
    sprig_bytes r = sprig_api_request(ctx);
    char out[256];
    int n = snprintf(out, sizeof out, "later:%.*s", (int)r.len,
                     (const char *)r.data);
    sprig_api_reply(ctx, out, (size_t)n);
    return NULL;
}

static void
h_async(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, later_thread, ctx), 0);
    pthread_detach(t);
}

/* Who am I: identity name and transport. */
static void
h_whoami(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    char out[256];
    int n =
        snprintf(out, sizeof out, "%s %s %llu", sprig_api_identity_name(ctx),
                 sprig_api_client(ctx)->transport,
                 (unsigned long long)sprig_api_client(ctx)->id);
    sprig_api_reply(ctx, out, (size_t)n);
}

/* Push the request to every client, then answer. */
static void
h_push_all(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_push_target t = {SPRIG_PUSH_ALL, 0, NULL};
    sprig_bytes r = sprig_api_request(ctx);
    int rc = sprig_server_push(sprig_api_server(ctx), &t, "test.pushed", r.data,
                               r.len);
    if (rc) {
        sprig_api_fail(ctx, rc, "push: %s", sprig_errmsg());
    } else {
        sprig_api_reply(ctx, "ok", 2);
    }
}

/* How many clients are connected (asked from a worker). */
static void
h_clients(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    size_t n = 0;
    int rc = sprig_server_connected_clients(sprig_api_server(ctx), NULL, 0, &n);
    char out[32];
    int len = snprintf(out, sizeof out, "%zu", n);
    if (rc) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
    } else {
        sprig_api_reply(ctx, out, (size_t)len);
    }
}

/* Increment key "n" of database "app" through the caller's narrowed
 * storage: the answer is the new value as text. */
static void
h_incr(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_storage *st;
    sprig_db *db = NULL;
    int rc = sprig_api_storage(ctx, &st);
    rc = rc ? rc : sprig_storage_open_database(st, "app", &db);
    sprig_value one = sprig_value_of_i64(1), v = {0};
    rc = rc ? rc : sprig_kv_increment(db, "", "n", &one, false, &v);
    sprig_db_close(db);
    if (rc) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
        return;
    }
    char out[32];
    int n = snprintf(out, sizeof out, "%lld", (long long)v.num.i64);
    sprig_api_reply(ctx, out, (size_t)n);
}

static void
register_all(sprig_server *srv)
{
    sprig_api_options lo;
    sprig_api_options_init(&lo);
    lo.run = SPRIG_API_RUN_LOOP;
    SPRIG_OK_(
        sprig_server_register_api(srv, "test.echo", "test.call", h_echo, NULL));
    SPRIG_OK_(sprig_server_register_api_with(srv, "test.loop_echo", "test.call",
                                             h_echo, NULL, &lo));
    SPRIG_OK_(
        sprig_server_register_api(srv, "test.fail", "test.call", h_fail, NULL));
    SPRIG_OK_(sprig_server_register_api_with(srv, "test.loop_fail", "test.call",
                                             h_fail, NULL, &lo));
    SPRIG_OK_(sprig_server_register_api(srv, "test.bad_code", "test.call",
                                        h_bad_code, NULL));
    SPRIG_OK_(
        sprig_server_register_api(srv, "test.big", "test.call", h_big, NULL));
    SPRIG_OK_(sprig_server_register_api(srv, "test.async", "test.call", h_async,
                                        NULL));
    SPRIG_OK_(sprig_server_register_api_with(srv, "test.loop_async",
                                             "test.call", h_async, NULL, &lo));
    SPRIG_OK_(sprig_server_register_api(srv, "test.whoami", "test.call",
                                        h_whoami, NULL));
    SPRIG_OK_(sprig_server_register_api(srv, "test.push_all", "test.call",
                                        h_push_all, NULL));
    SPRIG_OK_(sprig_server_register_api(srv, "test.clients", "test.call",
                                        h_clients, NULL));
    sprig_api_options wo;
    sprig_api_options_init(&wo);
    wo.write = true;
    SPRIG_OK_(sprig_server_register_api_with(srv, "test.incr", "test.write",
                                             h_incr, NULL, &wo));
}

/* ---- helpers ------------------------------------------------------------- */

/* Call `api` with a string; the answer as a string in `out`. */
static int
call_str(sprig_client *c, const char *api, const char *req, char *out,
         size_t cap)
{
    sprig_buf b = {0};
    int rc = sprig_client_call(c, api, req, strlen(req), &b);
    if (out) {
        snprintf(out, cap, "%.*s", (int)b.len, b.data ? (char *)b.data : "");
    }
    sprig_buf_clear(&b);
    return rc;
}

static void
expect_answer(sprig_client *c, const char *api, const char *req,
              const char *want)
{
    char out[512];
    SPRIG_OK_(call_str(c, api, req, out, sizeof out));
    assert_string_equal(out, want);
}

/* ---- calls over each transport ------------------------------------------- */

static void
calls_over(const char *kind)
{
    static const sprig_schema_def schema = {"apiplat", NULL, 0};
    placement p;
    placement_open(&p, kind, root, &schema);
    register_all(p.srv);
    sprig_client *c = p.client;
    expect_answer(c, "test.echo", "hello", "hello");
    expect_answer(c, "test.loop_echo", "loop", "loop");
    expect_answer(c, "test.echo", "", "");
    /* an application error with its message, then the connection serves */
    char out[512];
    SPRIG_EXPECT(SPRIG_EAPI(7), call_str(c, "test.fail", "x", NULL, 0));
    assert_string_equal(sprig_errmsg(), "no thanks: x");
    SPRIG_EXPECT(SPRIG_EAPI(7), call_str(c, "test.loop_fail", "y", NULL, 0));
    assert_string_equal(sprig_errmsg(), "no thanks: y");
    expect_answer(c, "test.echo", "still here", "still here");
    SPRIG_EXPECT(SPRIG_EINVAL, call_str(c, "test.bad_code", "", NULL, 0));
    assert_non_null(strstr(sprig_errmsg(), "code 5"));
    SPRIG_EXPECT(SPRIG_EPROTO, call_str(c, "test.nope", "", NULL, 0));
    assert_string_equal(sprig_errmsg(), "unknown API 'test.nope'");
    expect_answer(c, "test.async", "a", "later:a");
    expect_answer(c, "test.loop_async", "b", "later:b");
    char want[128];
    snprintf(want, sizeof want, "%s %s", PLACEMENT_USER, kind);
    SPRIG_OK_(call_str(c, "test.whoami", "", out, sizeof out));
    assert_memory_equal(out, want, strlen(want));
    /* megabytes both ways: a 3 MiB echo, a 5 MiB answer */
    size_t n = 3u << 20;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++) {
        big[i] = (uint8_t)(i * 7 + 3);
    }
    sprig_buf b = {0};
    SPRIG_OK_(sprig_client_call(c, "test.echo", big, n, &b));
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, big, n);
    sprig_buf_clear(&b);
    free(big);
    SPRIG_OK_(sprig_client_call(c, "test.big", "5242880", 7, &b));
    assert_int_equal(b.len, 5u << 20);
    for (size_t i = 0; i < b.len; i += 4099) {
        assert_int_equal(((uint8_t *)b.data)[i], i % 251);
    }
    sprig_buf_clear(&b);
    /* a push from a handler arrives before the handler's answer */
    SPRIG_OK_(call_str(c, "test.push_all", "pushed!", out, sizeof out));
    sprig_client_push *pp = NULL;
    SPRIG_OK_(sprig_client_push_next(c, 0, &pp)); /* already there */
    assert_string_equal(pp->api, "test.pushed");
    assert_int_equal(pp->data.len, 7);
    assert_memory_equal(pp->data.data, "pushed!", 7);
    sprig_client_push_free(pp);
    /* the listing has the custom rows beside the built-in ones */
    sprig_server_api_info apis[128];
    size_t na = 0, custom = 0;
    SPRIG_OK_(sprig_server_apis(p.srv, apis, 128, &na));
    for (size_t i = 0; i < na && i < 128; i++) {
        custom += apis[i].custom;
        if (strcmp(apis[i].name, "test.incr") == 0) {
            assert_true(apis[i].write);
            assert_string_equal(apis[i].action, "test.write");
        }
    }
    assert_int_equal(custom, 12);
    assert_true(na > 30);
    placement_close(&p);
}

static void
test_calls_ws(void **state)
{
    (void)state;
    calls_over("ws");
}

static void
test_calls_wss(void **state)
{
    (void)state;
    calls_over("wss");
}

static void
test_calls_quic(void **state)
{
    (void)state;
    calls_over("quic");
}

/* Registration refuses malformed and reserved names and duplicates. */
static void
test_register_errors(void **state)
{
    (void)state;
    static const sprig_schema_def schema = {"apiplat", NULL, 0};
    placement p;
    placement_open(&p, "ws", root, &schema);
    sprig_server *s = p.srv;
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_server_register_api(s, "noauthority", "a", h_echo, 0));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_server_register_api(s, "db.get2", "a", h_echo, 0));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_server_register_api(s, "a..b", "a", h_echo, 0));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_server_register_api(s, "a.b c", "a", h_echo, 0));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_server_register_api(s, "a.b", "", h_echo, 0));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_server_register_api(s, "a.b", "a", 0, 0));
    SPRIG_OK_(sprig_server_register_api(s, "a.b", "a", h_echo, 0));
    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig_server_register_api(s, "a.b", "a", h_echo, 0));
    sprig_push_target t = {SPRIG_PUSH_ALL, 0, NULL};
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_server_push(s, &t, "pubsub.message", 0, 0));
    placement_close(&p);
}

/* ---- a server with users ------------------------------------------------- */

typedef struct authsrv {
    placement p; /* p.auth, p.auth_st */
    sprig_server *srv;
    int port;           /* the ws:// (or wss://) port */
    char url[80];       /* what login() connects to */
    char cert[1300];    /* wss: the certificate clients pin */
    sprig_cert_info qc; /* quic: the certificate (pinned by fingerprint) */
    bool tls, quic;
} authsrv;

/* Listen on `kind` (ws, wss or quic): the options and, once started,
 * the URL login() uses. */
static void
authsrv_transport(authsrv *a, const char *kind, sprig_server_options *o)
{
    a->quic = strcmp(kind, "quic") == 0;
    a->tls = a->quic || strcmp(kind, "wss") == 0;
    static char key[1300];
    if (a->quic) {
        SPRIG_OK_(sprig_cert_ensure(root, &a->qc));
        o->ws_listen = NULL;
        o->quic_listen = "127.0.0.1:0";
        o->quic_cert_file = a->qc.cert_path;
        o->quic_key_file = a->qc.key_path;
    } else if (a->tls) {
        placement_cert(root, a->cert, key, sizeof a->cert);
        o->tls_cert_file = a->cert;
        o->tls_key_file = key;
    }
}

/* alice may call test.*, bob may read key-values only; the server
 * listens on `kind` (ws, wss, quic). */
static void
authsrv_open_on(authsrv *a, const sprig_server_hooks *hooks, const char *kind)
{
    memset(a, 0, sizeof *a);
    sprig_server_options o;
    sprig_server_options_init(&o);
    placement_auth(&a->p, &o);
    sprig_auth *au = a->p.auth;
    SPRIG_OK_(sprig_auth_user_create(au, NULL, "alice", "alice-pw"));
    SPRIG_OK_(sprig_auth_user_create(au, NULL, "bob", "bob-pw"));
    SPRIG_OK_(sprig_auth_group_create(au, NULL, "callers"));
    SPRIG_OK_(
        sprig_auth_group_grant(au, NULL, "callers", "test", "sprig.api.test"));
    SPRIG_OK_(sprig_auth_group_grant(au, NULL, "callers", "kv,database.open",
                                     "sprig.db.app"));
    SPRIG_OK_(sprig_auth_user_group(au, NULL, "alice", "callers", true));
    SPRIG_OK_(sprig_auth_group_create(au, NULL, "readers"));
    SPRIG_OK_(sprig_auth_group_grant(au, NULL, "readers", "test.call",
                                     "sprig.api.test"));
    SPRIG_OK_(sprig_auth_user_group(au, NULL, "bob", "readers", true));
    o.ws_listen = "127.0.0.1:0";
    o.workers = 4;
    o.max_connections_per_address = 0;
    authsrv_transport(a, kind, &o);
    char dir[1300];
    snprintf(dir, sizeof dir, "%s/auth%d", root, rand());
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = SPRIG_DURABILITY_NONE;
    SPRIG_OK_(sprig_server_new(&so, &o, &a->srv));
    static const sprig_schema_def kvs = {.name = "apiplat"};
    sprig_storage *st = sprig_server_storage(a->srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &kvs));
    SPRIG_OK_(sprig_storage_create_database(st, "app", "apiplat", true));
    if (hooks) {
        SPRIG_OK_(sprig_server_set_hooks(a->srv, hooks));
    }
    register_all(a->srv);
    SPRIG_OK_(sprig_server_start(a->srv));
    a->port = sprig_server_ws_port(a->srv);
    snprintf(a->url, sizeof a->url, "%s://127.0.0.1:%d", kind,
             a->quic ? sprig_server_quic_port(a->srv) : a->port);
}

static void
authsrv_open(authsrv *a, const sprig_server_hooks *hooks)
{
    authsrv_open_on(a, hooks, "ws");
}

static void
authsrv_close(authsrv *a)
{
    sprig_server_free(a->srv);
    sprig_auth_free(a->p.auth);
    sprig_storage_close(a->p.auth_st);
}

static sprig_client *
login(authsrv *a, const char *user, const char *pw)
{
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.pinned_cert_path = a->tls && !a->quic ? a->cert : NULL;
    co.pinned_cert_sha256 = a->quic ? a->qc.sha256 : NULL;
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(a->url, &co, &c));
    if (user) {
        SPRIG_OK_(sprig_client_authenticate_password(c, user, pw));
    }
    return c;
}

/* Does server.apis list `name` to `c`?  (It checks the entry's fields.) */
static bool
listed(sprig_client *c, const char *name)
{
    sprig_api_info *l;
    size_t n;
    SPRIG_OK_(sprig_client_apis(sprig_client_storage(c), &l, &n));
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, name) == 0) {
            found = true;
            if (strncmp(name, "test.", 5) == 0) {
                char res[64];
                snprintf(res, sizeof res, "sprig.api.%s", name);
                assert_string_equal(l[i].resource, res);
                assert_true(l[i].custom);
            } else {
                assert_false(l[i].custom);
            }
        }
    }
    assert_true(n > 30);
    sprig_api_info_free(l, n);
    return found;
}

/* A custom API is denied to an identity without its action, allowed to
 * one with it; the narrowed storage checks the caller. */
static void
test_denied(void **state)
{
    (void)state;
    authsrv a;
    authsrv_open(&a, NULL);
    sprig_client *alice = login(&a, "alice", "alice-pw");
    sprig_client *bob = login(&a, "bob", "bob-pw");
    sprig_client *anon = login(&a, NULL, NULL);
    expect_answer(alice, "test.incr", "", "1");
    expect_answer(alice, "test.incr", "", "2");
    SPRIG_EXPECT(SPRIG_EPERM, call_str(bob, "test.incr", "", NULL, 0));
    assert_non_null(strstr(sprig_errmsg(), "test.write"));
    assert_non_null(strstr(sprig_errmsg(), "sprig.api.test.incr"));
    expect_answer(bob, "test.echo", "bob may", "bob may");
    SPRIG_EXPECT(SPRIG_EPERM, call_str(anon, "test.echo", "", NULL, 0));
    /* the counter did not move for bob */
    expect_answer(alice, "test.incr", "", "3");
    /* server.apis lists each caller the custom APIs it may call */
    assert_true(listed(alice, "test.incr") && listed(alice, "test.echo"));
    assert_true(!listed(bob, "test.incr") && listed(bob, "test.echo"));
    assert_true(!listed(anon, "test.echo") && listed(anon, "db.get"));
    sprig_client_close(alice);
    sprig_client_close(bob);
    sprig_client_close(anon);
    authsrv_close(&a);
}

/* ---- pushes -------------------------------------------------------------- */

typedef struct counter {
    pthread_mutex_t lock;
    int n;
    char last[64];
} counter;

static void
on_push(void *udata, const char *api, sprig_bytes data)
{
    counter *k = udata;
    pthread_mutex_lock(&k->lock);
    k->n++;
    snprintf(k->last, sizeof k->last, "%s=%.*s", api, (int)data.len,
             (const char *)data.data);
    pthread_mutex_unlock(&k->lock);
}

/* Wait until `c` has `n` queued pushes (or 5 s). */
static size_t
waiting(sprig_client *c, size_t n)
{
    sprig_client_push_counts st;
    for (int i = 0; i < 1000; i++) {
        SPRIG_OK_(sprig_client_push_stats(c, &st));
        if (st.waiting >= n) {
            break;
        }
        usleep(5000);
    }
    return st.waiting;
}

/* The id the server gave client `c` (through test.whoami). */
static uint64_t
client_id(sprig_client *c)
{
    char out[256];
    SPRIG_OK_(call_str(c, "test.whoami", "", out, sizeof out));
    return strtoull(strrchr(out, ' ') + 1, NULL, 10);
}

static void
push(sprig_server *s, sprig_push_to to, uint64_t id, const char *who,
     const char *msg)
{
    sprig_push_target t = {to, id, who};
    SPRIG_OK_(sprig_server_push(s, &t, "test.note", msg, strlen(msg)));
}

static void
test_push_targets(void **state)
{
    (void)state;
    authsrv a;
    authsrv_open(&a, NULL);
    sprig_client *a1 = login(&a, "alice", "alice-pw");
    sprig_client *a2 = login(&a, "alice", "alice-pw");
    sprig_client *b = login(&a, "bob", "bob-pw");
    uint64_t id_b = client_id(b);
    push(a.srv, SPRIG_PUSH_CLIENT, id_b, NULL, "to bob's connection");
    push(a.srv, SPRIG_PUSH_IDENTITY, 0, "alice", "to alice");
    push(a.srv, SPRIG_PUSH_ALL, 0, NULL, "to all");
    push(a.srv, SPRIG_PUSH_IDENTITY, 0, "carol", "to nobody");
    assert_int_equal(waiting(a1, 2), 2);
    assert_int_equal(waiting(a2, 2), 2);
    assert_int_equal(waiting(b, 2), 2);
    usleep(50000); /* nothing more arrives */
    const char *want_a[] = {"to alice", "to all"};
    const char *want_b[] = {"to bob's connection", "to all"};
    sprig_client *cs[] = {a1, a2, b};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 2; i++) {
            sprig_client_push *p;
            SPRIG_OK_(sprig_client_push_next(cs[k], 1000, &p));
            const char *w = k < 2 ? want_a[i] : want_b[i];
            assert_string_equal(p->api, "test.note");
            assert_int_equal(p->data.len, strlen(w));
            assert_memory_equal(p->data.data, w, strlen(w));
            sprig_client_push_free(p);
        }
        sprig_client_push *p;
        SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_client_push_next(cs[k], 0, &p));
    }
    sprig_push_stats ps;
    SPRIG_OK_(sprig_server_push_stats(a.srv, &ps));
    assert_int_equal(ps.queued, 4);
    assert_int_equal(ps.sent, 1 + 2 + 3);
    assert_int_equal(ps.unmatched, 1);
    /* a callback takes its api's pushes; others still queue */
    counter k = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
    SPRIG_OK_(sprig_client_on_push(b, "test.note", on_push, &k));
    push(a.srv, SPRIG_PUSH_CLIENT, id_b, NULL, "cb");
    SPRIG_OK_(call_str(b, "test.push_all", "q", NULL, 0)); /* test.pushed */
    for (int i = 0; i < 200 && k.n == 0; i++) {
        usleep(5000);
    }
    pthread_mutex_lock(&k.lock);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.last, "test.note=cb");
    pthread_mutex_unlock(&k.lock);
    assert_int_equal(waiting(b, 1), 1);
    sprig_client_push_counts st;
    SPRIG_OK_(sprig_client_push_stats(b, &st));
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.dropped, 0);
    sprig_client_close(a1);
    sprig_client_close(a2);
    sprig_client_close(b);
    authsrv_close(&a);
}

/* A bounded queue drops its oldest pushes and counts them. */
static void
test_push_queue_bound(void **state)
{
    (void)state;
    authsrv a;
    authsrv_open(&a, NULL);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", a.port);
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.max_pushes = 4;
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, &co, &c));
    SPRIG_OK_(sprig_client_authenticate_password(c, "alice", "alice-pw"));
    uint64_t id = client_id(c);
    for (int i = 0; i < 10; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        push(a.srv, SPRIG_PUSH_CLIENT, id, NULL, m);
    }
    sprig_client_push_counts st;
    for (int i = 0; i < 1000; i++) {
        SPRIG_OK_(sprig_client_push_stats(c, &st));
        if (st.received == 10) {
            break;
        }
        usleep(5000);
    }
    assert_int_equal(st.received, 10);
    assert_int_equal(st.dropped, 6);
    assert_int_equal(st.waiting, 4);
    struct pollfd pf = {sprig_client_push_fd(c), POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 0), 1);
    for (int i = 6; i < 10; i++) {
        sprig_client_push *p;
        SPRIG_OK_(sprig_client_push_next(c, 0, &p));
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        assert_memory_equal(p->data.data, m, strlen(m));
        sprig_client_push_free(p);
    }
    assert_int_equal(poll(&pf, 1, 0), 0); /* empty: not readable */
    sprig_client_close(c);
    authsrv_close(&a);
}

/* ---- 50 clients ---------------------------------------------------------- */

typedef struct worker {
    authsrv *a;
    int rounds, fails;
} worker;

static void *
client_thread(void *arg)
{
    worker *w = arg;
    sprig_client *c = login(w->a, "alice", "alice-pw");
    for (int i = 0; i < w->rounds; i++) {
        char req[32], out[64];
        snprintf(req, sizeof req, "r%d", i);
        w->fails += call_str(c, "test.echo", req, out, sizeof out) != 0 ||
                    strcmp(out, req) != 0;
        w->fails += call_str(c, "test.incr", "", NULL, 0) != 0;
    }
    sprig_client_close(c);
    return NULL;
}

static void
fifty_clients(const char *kind)
{
    authsrv a;
    authsrv_open_on(&a, NULL, kind);
    enum { N = 50, R = 10 };
    pthread_t t[N];
    worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){&a, R, 0};
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, &w[i]), 0);
    }
    int fails = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        fails += w[i].fails;
    }
    assert_int_equal(fails, 0);
    sprig_client *c = login(&a, "alice", "alice-pw");
    char want[16];
    snprintf(want, sizeof want, "%d", N * R + 1);
    expect_answer(c, "test.incr", "", want);
    sprig_client_close(c);
    authsrv_close(&a);
}

/* 50 clients calling concurrently (echo and a key-value increment), over
 * each transport: every answer right, the counter at 50 x 10 + 1. */
static void
test_fifty_clients(void **state)
{
    (void)state;
    fifty_clients("ws");
}

static void
test_fifty_clients_wss(void **state)
{
    (void)state;
    fifty_clients("wss");
}

static void
test_fifty_clients_quic(void **state)
{
    (void)state;
    fifty_clients("quic");
}

/* ---- asynchronous key-value ---------------------------------------------- */

/* The answer of an asynchronous key-value operation: the value as text
 * ("-" for none), or "error N" for a failure. */
static void
akv_done(sprig_api_ctx *ctx, int rc, const sprig_value *v, void *udata)
{
    (void)udata;
    char out[128];
    int n;
    if (rc) {
        n = snprintf(out, sizeof out, "error %d", rc);
    } else if (!v) {
        n = snprintf(out, sizeof out, "-");
    } else if (v->kind == SPRIG_VALUE_I64) {
        n = snprintf(out, sizeof out, "%lld", (long long)v->num.i64);
    } else {
        n = snprintf(out, sizeof out, "%.*s", (int)v->bytes.len,
                     (const char *)v->bytes.data);
    }
    sprig_api_reply(ctx, out, (size_t)n);
}

/* "incr", "get", "set:TEXT", "missing", "baddb": one asynchronous
 * key-value operation on database "app" (or "nope"), answered from its
 * completion. */
static void
h_akv(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_bytes r = sprig_api_request(ctx);
    char req[64] = "";
    memcpy(req, r.data, r.len < 63 ? r.len : 63);
    sprig_value one = sprig_value_of_i64(1);
    int rc;
    if (strcmp(req, "incr") == 0) {
        rc = sprig_api_kv_increment(ctx, "app", "a", "n", &one, akv_done, 0);
    } else if (strncmp(req, "set:", 4) == 0) {
        sprig_value v = sprig_value_of_bytes(sprig_str(req + 4));
        rc = sprig_api_kv_set(ctx, "app", "a", "s", &v, akv_done, 0);
    } else if (strcmp(req, "get") == 0) {
        rc = sprig_api_kv_get(ctx, "app", "a", "s", akv_done, 0);
    } else if (strcmp(req, "missing") == 0) {
        rc = sprig_api_kv_get(ctx, "app", "a", "zz", akv_done, 0);
    } else if (strcmp(req, "baddb") == 0) {
        rc = sprig_api_kv_increment(ctx, "nope", NULL, "n", &one, akv_done, 0);
    } else {
        rc = sprig_api_kv_get(ctx, NULL, NULL, "k", akv_done, 0);
    }
    if (rc) {
        sprig_api_fail(ctx, rc, "start: %s", sprig_errmsg());
    }
}

static void
akv_calls(sprig_client *c, const char *api)
{
    char out[128];
    SPRIG_OK_(call_str(c, api, "incr", out, sizeof out));
    long first = strtol(out, NULL, 10);
    for (long i = 1; i <= 20; i++) {
        SPRIG_OK_(call_str(c, api, "incr", out, sizeof out));
        assert_int_equal(strtol(out, NULL, 10), first + i);
    }
    expect_answer(c, api, "set:hello there", "-");
    expect_answer(c, api, "get", "hello there");
    char want[32];
    snprintf(want, sizeof want, "error %d", SPRIG_ENOTFOUND);
    expect_answer(c, api, "missing", want);
    expect_answer(c, api, "baddb", want);
    SPRIG_EXPECT(SPRIG_EINVAL, call_str(c, api, "null", NULL, 0));
    assert_non_null(strstr(sprig_errmsg(), "NULL argument"));
}

/* A handler's asynchronous key-value operations, on a worker and on the
 * loop thread: increments count, a set is read back, a missing key and
 * a missing database reach the callback as errors, a NULL argument is
 * refused at the start.  The first call opens the database on a worker
 * (not cached yet); the rest are submitted. */
static void
test_async_kv(void **state)
{
    (void)state;
    authsrv a;
    authsrv_open(&a, NULL);
    sprig_api_options o;
    sprig_api_options_init(&o);
    o.write = true;
    SPRIG_OK_(sprig_server_register_api_with(a.srv, "test.akv", "test.write",
                                             h_akv, NULL, &o));
    o.run = SPRIG_API_RUN_LOOP;
    SPRIG_OK_(sprig_server_register_api_with(a.srv, "test.akv_loop",
                                             "test.write", h_akv, NULL, &o));
    sprig_client *c = login(&a, "alice", "alice-pw");
    akv_calls(c, "test.akv");
    akv_calls(c, "test.akv_loop");
    sprig_client_close(c);
    authsrv_close(&a);
}

/* ---- handlers that block ------------------------------------------------- */

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
h_sleep(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    usleep(400000);
    sprig_api_reply(ctx, "slept", 5);
}

static void *
sleeper_thread(void *arg)
{
    authsrv *a = arg;
    sprig_client *c = login(a, "alice", "alice-pw");
    expect_answer(c, "test.sleep", "", "slept");
    sprig_client_close(c);
    return NULL;
}

/* Handlers that block their workers do not hold up the requests queued
 * behind them while other workers sleep: the pool wakes only a few
 * workers at once (pool.c), and a job left waiting wakes another.  Three
 * 400 ms handlers on a 4-worker server, then an echo: it is answered long
 * before any of them. */
static void
test_blocked_workers(void **state)
{
    (void)state;
    authsrv a;
    authsrv_open(&a, NULL);
    SPRIG_OK_(sprig_server_register_api(a.srv, "test.sleep", "test.call",
                                        h_sleep, NULL));
    sprig_client *c = login(&a, "alice", "alice-pw");
    expect_answer(c, "test.echo", "warm", "warm");
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, sleeper_thread, &a), 0);
    }
    usleep(100000); /* the sleepers are in their handlers */
    uint64_t t0 = now_ns();
    expect_answer(c, "test.echo", "not blocked", "not blocked");
    uint64_t ms = (now_ns() - t0) / 1000000;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    printf("an echo behind three blocked workers: %llu ms\n",
           (unsigned long long)ms);
    assert_true(ms < 250);
    sprig_client_close(c);
    authsrv_close(&a);
}

/* ---- hooks --------------------------------------------------------------- */

typedef struct hooklog {
    pthread_mutex_t lock;
    char text[2048];
    int refuse_from; /* refuse client ids >= this (0: none) */
} hooklog;

static void
logf_(hooklog *h, const char *fmt, ...)
{
    pthread_mutex_lock(&h->lock);
    size_t n = strlen(h->text);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->text + n, sizeof h->text - n, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&h->lock);
}

static int
hk_connected(void *udata, const sprig_server_client *c, void **data,
             char *reason, size_t cap)
{
    hooklog *h = udata;
    if (h->refuse_from && c->id >= (uint64_t)h->refuse_from) {
        snprintf(reason, cap, "closed for maintenance");
        logf_(h, "refused ");
        return 1;
    }
    *data = h; /* the handlers' client data */
    logf_(h, "connected(%s) ", c->transport);
    return 0;
}

static void
hk_auth(void *udata, const sprig_server_client *c, void *data, uint64_t s,
        const char *who)
{
    (void)c;
    (void)s;
    logf_(udata, "authenticated(%s,%d) ", who, data == udata);
}

static void
hk_ended(void *udata, const sprig_server_client *c, void *data, uint64_t s,
         const char *who)
{
    (void)c;
    (void)s;
    (void)data;
    logf_(udata, "ended(%s) ", who);
}

static void
hk_gone(void *udata, const sprig_server_client *c, void *data)
{
    (void)c;
    logf_(udata, "disconnected(%d) ", data == udata);
}

static void
wait_log(hooklog *h, const char *want)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&h->lock);
        bool ok = strcmp(h->text, want) == 0;
        pthread_mutex_unlock(&h->lock);
        if (ok) {
            return;
        }
        usleep(5000);
    }
    print_message("hook log '%s', wanted '%s'\n", h->text, want);
    fail();
}

static void
test_hooks(void **state)
{
    (void)state;
    hooklog h = {PTHREAD_MUTEX_INITIALIZER, "", 0};
    sprig_server_hooks hooks = {hk_connected, hk_auth, hk_ended, hk_gone, &h};
    authsrv a;
    authsrv_open(&a, &hooks);
    SPRIG_EXPECT(SPRIG_EBUSY, sprig_server_set_hooks(a.srv, &hooks));
    sprig_client *c = login(&a, "alice", "alice-pw");
    wait_log(&h, "connected(ws) authenticated(alice,1) ");
    sprig_server_client_info ci[4];
    size_t n = 0;
    SPRIG_OK_(sprig_server_connected_clients(a.srv, ci, 4, &n));
    assert_int_equal(n, 1);
    assert_string_equal(ci[0].transport, "ws");
    assert_string_equal(ci[0].identity, "alice");
    assert_int_equal(ci[0].sessions, 1);
    assert_non_null(strstr(ci[0].peer, "127.0.0.1:"));
    assert_true(ci[0].connected_ms > 1700000000000ull);
    expect_answer(c, "test.clients", "", "1"); /* asked from a worker */
    sprig_client_close(c);
    wait_log(&h, "connected(ws) authenticated(alice,1) ended(alice) "
                 "disconnected(1) ");
    SPRIG_OK_(sprig_server_connected_clients(a.srv, ci, 4, &n));
    assert_int_equal(n, 0);
    /* a refusing hook: the client sees the reason */
    h.refuse_from = 1;
    h.text[0] = 0;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", a.port);
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.reconnect = false;
    SPRIG_OK_(sprig_client_connect(url, &co, &c));
    int rc = call_str(c, "auth.nothing", "", NULL, 0);
    assert_true(rc == SPRIG_EPERM || rc == SPRIG_ECLOSED);
    if (rc == SPRIG_EPERM) {
        assert_string_equal(sprig_errmsg(), "the server refused the "
                                            "connection: closed for "
                                            "maintenance");
    }
    sprig_client_close(c);
    for (int i = 0; i < 1000 && !strstr(h.text, "refused"); i++) {
        usleep(5000); /* the client may have tried twice: each refused */
    }
    pthread_mutex_lock(&h.lock);
    assert_non_null(strstr(h.text, "refused "));
    assert_null(strstr(h.text, "connected("));
    pthread_mutex_unlock(&h.lock);
    SPRIG_OK_(sprig_server_connected_clients(a.srv, ci, 4, &n));
    assert_int_equal(n, 0);
    authsrv_close(&a);
}

/* A refused client with a request in flight gets the reason. */
static void
test_refused_reason(void **state)
{
    (void)state;
    hooklog h = {PTHREAD_MUTEX_INITIALIZER, "", 1};
    sprig_server_hooks hooks = {hk_connected, NULL, NULL, NULL, &h};
    authsrv a;
    authsrv_open(&a, &hooks);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", a.port);
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, NULL, &c));
    /* reconnects, is refused again while the call waits: EPERM */
    int rc = SPRIG_OK;
    for (int i = 0; i < 5 && rc != SPRIG_EPERM; i++) {
        rc = call_str(c, "test.echo", "", NULL, 0);
    }
    SPRIG_EXPECT(SPRIG_EPERM, rc);
    assert_string_equal(sprig_errmsg(), "the server refused the connection: "
                                        "closed for maintenance");
    sprig_client_close(c);
    authsrv_close(&a);
}

/* Over QUIC too: the connected hook sees "quic", and a refusal's reason
 * reaches the client (CONNECTION_CLOSE of type application, 4001). */
static void
test_refused_quic(void **state)
{
    (void)state;
    hooklog h = {PTHREAD_MUTEX_INITIALIZER, "", 2}; /* the second is refused */
    sprig_server_hooks hooks = {hk_connected, NULL, NULL, NULL, &h};
    sprig_cert_info qc;
    SPRIG_OK_(sprig_cert_ensure(root, &qc));
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = NULL;
    o.quic_listen = "127.0.0.1:0";
    o.quic_cert_file = qc.cert_path;
    o.quic_key_file = qc.key_path;
    o.open_access = true;
    o.workers = 2;
    char dir[1300];
    snprintf(dir, sizeof dir, "%s/quicrefuse", root);
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = SPRIG_DURABILITY_NONE;
    sprig_server *srv;
    SPRIG_OK_(sprig_server_new(&so, &o, &srv));
    SPRIG_OK_(sprig_server_set_hooks(srv, &hooks));
    register_all(srv);
    SPRIG_OK_(sprig_server_start(srv));
    char url[64];
    snprintf(url, sizeof url, "quic://127.0.0.1:%d",
             sprig_server_quic_port(srv));
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.pinned_cert_sha256 = qc.sha256;
    sprig_client *ok, *no;
    SPRIG_OK_(sprig_client_connect(url, &co, &ok));
    expect_answer(ok, "test.echo", "over quic", "over quic");
    wait_log(&h, "connected(quic) ");
    SPRIG_OK_(sprig_client_connect(url, &co, &no));
    int rc = SPRIG_OK;
    for (int i = 0; i < 5 && rc != SPRIG_EPERM; i++) {
        rc = call_str(no, "test.echo", "", NULL, 0);
    }
    SPRIG_EXPECT(SPRIG_EPERM, rc);
    assert_string_equal(sprig_errmsg(), "the server refused the connection: "
                                        "closed for maintenance");
    expect_answer(ok, "test.echo", "still", "still");
    sprig_client_close(no);
    sprig_client_close(ok);
    sprig_server_free(srv);
}

/* ---- HTTP hand-over ------------------------------------------------------ */

typedef struct handover {
    int lfd;
    sprig_server *srv;
    int rc;
} handover;

/* The program's own HTTP server: accept one connection, read the request
 * head, hand it over. */
static void *
handover_thread(void *arg)
{
    handover *h = arg;
    int fd = accept(h->lfd, NULL, NULL);
    char buf[4096];
    size_t n = 0;
    while (fd >= 0 && n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n")) {
            break;
        }
    }
    h->rc = sprig_server_adopt_ws(h->srv, fd, buf, n, false);
    return NULL;
}

static void
test_handover(void **state)
{
    (void)state;
    authsrv a;
    authsrv_open(&a, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    handover h = {lfd, a.srv, 1};
    pthread_t t;
    pthread_create(&t, NULL, handover_thread, &h);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/app/ws", ntohs(sa.sin_port));
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, NULL, &c));
    pthread_join(t, NULL);
    SPRIG_OK_(h.rc);
    SPRIG_OK_(sprig_client_authenticate_password(c, "alice", "alice-pw"));
    expect_answer(c, "test.echo", "handed over", "handed over");
    sprig_server_client_info ci[4];
    size_t n = 0;
    SPRIG_OK_(sprig_server_connected_clients(a.srv, ci, 4, &n));
    assert_int_equal(n, 1);
    assert_string_equal(ci[0].identity, "alice");
    sprig_client_close(c);
    close(lfd);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_server_adopt_ws(a.srv, -1, NULL, 0, false));
    authsrv_close(&a);
}

static int
setup(void **state)
{
    (void)state;
    root = tu_tmpdir("api_platform");
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    tu_rmtree(root);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_ws),
        cmocka_unit_test(test_calls_wss),
        cmocka_unit_test(test_calls_quic),
        cmocka_unit_test(test_register_errors),
        cmocka_unit_test(test_denied),
        cmocka_unit_test(test_push_targets),
        cmocka_unit_test(test_push_queue_bound),
        cmocka_unit_test(test_fifty_clients),
        cmocka_unit_test(test_fifty_clients_wss),
        cmocka_unit_test(test_fifty_clients_quic),
        cmocka_unit_test(test_blocked_workers),
        cmocka_unit_test(test_async_kv),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_refused_reason),
        cmocka_unit_test(test_refused_quic),
        cmocka_unit_test(test_handover),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
