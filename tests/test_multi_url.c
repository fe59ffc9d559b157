/*
 * test_multi_url.c -- clients given several node URLs (issue 18, the
 * client side of a cluster; src/client/cluster_client.c), against real
 * servers on loopback:
 *
 *  - a list whose first node is down connects to the second (through
 *    sprig_open() and sprig_client_connect(), with a scheme-less second
 *    element taking the first one's scheme), and a list of dead nodes
 *    fails with SPRIG_ECONNECT naming how many were tried;
 *  - the node in use stopped: the client, logged in, moves to the next
 *    node, logs in there again by itself, and the next request works;
 *  - SPRIG_ENOTLEADER naming "leader is node N at URL": a server that
 *    answers so (a custom API failing with that code and message, as a
 *    follower will) sends the client to the named node, where the same
 *    request is answered, as the same user, transparently, also with 8
 *    threads' calls refused at once; a second ENOTLEADER is not followed
 *    again (one retry);
 *  - request ids: a write's payload carries "rid" (16 bytes), which a
 *    server decoding the row ignores.
 * Real ENOTLEADER from `sprig serve --cluster` is tested by
 * tests/cluster_client_test.sh once the cluster exists.
 */
#include "testutil.h"

#include "proto/api.h"
#include "sprig/auth.h"
#include "sprig/client.h"
#include "sprig/server.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"multi", cols, 1};
static const char *root;

#define USER "admin"
#define PASSWORD "multi-url-pw"

/* A server with its own storage and permission engine (one administrator,
 * the same on every node) and database "app". */
typedef struct node {
    sprig_server *srv;
    sprig_storage *auth_st;
    sprig_auth *auth;
    int port;
    char url[64];
} node;

static void
node_auth(node *n, sprig_server_options *o)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.memory_only = true;
    SPRIG_OK_(sprig_storage_open(&so, &n->auth_st));
    sprig_auth_options ao;
    sprig_auth_options_min(&ao);
    SPRIG_OK_(sprig_auth_open(n->auth_st, &ao, &n->auth));
    SPRIG_OK_(sprig_auth_user_create(n->auth, NULL, USER, PASSWORD));
    SPRIG_OK_(sprig_auth_group_create(n->auth, NULL, "admins"));
    SPRIG_OK_(sprig_auth_group_grant(n->auth, NULL, "admins", "*", "sprig"));
    SPRIG_OK_(sprig_auth_user_group(n->auth, NULL, USER, "admins", true));
    o->auth = n->auth;
}

static void
node_start(node *n, const char *tag)
{
    static int count;
    char dir[1200];
    memset(n, 0, sizeof *n);
    snprintf(dir, sizeof dir, "%s/%s%d", root, tag, count++);
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = SPRIG_DURABILITY_NONE;
    sprig_server_options o;
    sprig_server_options_init(&o);
    node_auth(n, &o);
    o.ws_listen = "127.0.0.1:0";
    o.quic_listen = NULL;
    o.workers = 2;
    SPRIG_OK_(sprig_server_new(&so, &o, &n->srv));
    sprig_storage *st = sprig_server_storage(n->srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "app", "multi", true));
    SPRIG_OK_(sprig_server_start(n->srv));
    n->port = sprig_server_ws_port(n->srv);
    snprintf(n->url, sizeof n->url, "ws://127.0.0.1:%d", n->port);
}

static void
node_stop(node *n)
{
    if (n->srv) {
        sprig_server_free(n->srv);
    }
    sprig_auth_free(n->auth);
    if (n->auth_st) {
        sprig_storage_close(n->auth_st);
    }
    memset(n, 0, sizeof *n);
}

/* A loopback port nothing listens on (bound, then closed). */
static int
dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The port of the node the client is connected to. */
static int
peer_port(sprig_client *c)
{
    sprig_conn_info info;
    SPRIG_OK_(sprig_client_info(c, &info));
    const char *colon = strrchr(info.peer, ':');
    assert_non_null(colon);
    return atoi(colon + 1);
}

/* Write and read back key `key` = `v` through the client's storage. */
static void
kv_roundtrip(sprig_storage *st, const char *key, int64_t v)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    sprig_value val = sprig_value_of_i64(v);
    SPRIG_OK_(sprig_kv_set(db, "t", key, &val, NULL, NULL, NULL));
    int64_t got = 0;
    SPRIG_OK_(sprig_kv_get_i64(db, "t", key, &got));
    assert_true(got == v);
    sprig_db_close(db);
}

static void
test_first_node_down(void **state)
{
    (void)state;
    node b;
    node_start(&b, "b");
    char list[200];
    int dead = dead_port();
    /* the second element without a scheme takes the first one's */
    snprintf(list, sizeof list, "ws://127.0.0.1:%d, 127.0.0.1:%d", dead,
             b.port);
    sprig_open_options oo;
    sprig_open_options_init(&oo);
    oo.user = USER;
    oo.password = PASSWORD;
    sprig_storage *st;
    SPRIG_OK_(sprig_open(list, &oo, &st));
    kv_roundtrip(st, "k", 1);
    sprig_storage_close(st);

    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(list, NULL, &c));
    assert_int_equal(peer_port(c), b.port);
    sprig_client_close(c);

    /* every node dead: SPRIG_ECONNECT saying how many were tried */
    snprintf(list, sizeof list, "ws://127.0.0.1:%d,ws://127.0.0.1:%d", dead,
             dead_port());
    SPRIG_EXPECT(SPRIG_ECONNECT, sprig_client_connect(list, NULL, &c));
    assert_non_null(strstr(sprig_errmsg(), "any of the 2 nodes"));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_client_connect("ws://a:1,,b:2", NULL, &c));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_client_connect("ws://a:1,nope://b:2", NULL, &c));
    node_stop(&b);
}

/* Wait (at most 10 s) until the client has seen its connection close. */
static void
wait_closed(sprig_client *c)
{
    sprig_conn_info info;
    for (int i = 0; i < 1000 && sprig_client_info(c, &info) == 0; i++) {
        usleep(10000);
    }
    SPRIG_EXPECT(SPRIG_ECLOSED, sprig_client_info(c, &info));
}

static void
test_failover_on_stop(void **state)
{
    (void)state;
    node a, b;
    node_start(&a, "a");
    node_start(&b, "b");
    char list[200];
    snprintf(list, sizeof list, "%s,%s", a.url, b.url);
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(list, NULL, &c));
    SPRIG_OK_(sprig_client_authenticate_password(c, USER, PASSWORD));
    assert_int_equal(peer_port(c), a.port);
    kv_roundtrip(sprig_client_storage(c), "before", 1);

    node_stop(&a); /* the node in use goes away */
    wait_closed(c);
    /* the next request goes to b, logged in again as USER (b refuses
     * anonymous writes: a missing login would fail with SPRIG_EPERM) */
    kv_roundtrip(sprig_client_storage(c), "after", 2);
    assert_int_equal(peer_port(c), b.port);
    sprig_client_close(c);
    node_stop(&b);
}

/* ---- following the leader --------------------------------------------- */

typedef struct role {
    const char *leader_url; /* NULL: this node is the leader */
    int calls;
} role;

/* "test.put": a follower refuses as a cluster follower does; the leader
 * answers with the caller's identity. */
static void
put_handler(sprig_api_ctx *ctx, void *udata)
{
    role *r = udata;
    __atomic_add_fetch(&r->calls, 1, __ATOMIC_SEQ_CST);
    if (r->leader_url) {
        sprig_api_fail(ctx, SPRIG_ENOTLEADER,
                       "this node is not the leader: leader is node 2 at %s",
                       r->leader_url);
        return;
    }
    const char *who = sprig_api_identity_name(ctx);
    sprig_api_reply(ctx, who ? who : "", who ? strlen(who) : 0);
}

static void *
put_thread(void *arg)
{
    sprig_client *c = arg;
    sprig_buf out = {0};
    intptr_t rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++) {
        rc = sprig_client_call(c, "test.put", "z", 1, &out);
        sprig_buf_clear(&out);
    }
    return (void *)rc;
}

/* Many threads' calls refused at once on the follower: each follows (the
 * connection is closed once every call on it is answered), none fails. */
static void
concurrent_follow(const node *f, role *fr, role *lr)
{
    int f_before = fr->calls;
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(f->url, NULL, &c));
    SPRIG_OK_(sprig_client_authenticate_password(c, USER, PASSWORD));
    int before = lr->calls;
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, put_thread, c), 0);
    }
    for (int i = 0; i < 8; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_int_equal((intptr_t)rc, 0);
    }
    assert_int_equal(lr->calls - before, 8 * 20);
    /* once followed, calls go to the leader: at most each thread's first
     * call met the follower */
    assert_true(fr->calls - f_before >= 1 && fr->calls - f_before <= 8);
    sprig_client_close(c);
}

static void
test_follow_leader(void **state)
{
    (void)state;
    node f, l;
    node_start(&f, "follower");
    node_start(&l, "leader");
    role fr = {l.url, 0}, lr = {NULL, 0};
    SPRIG_OK_(sprig_server_register_api(f.srv, "test.put", "test.put",
                                        put_handler, &fr));
    SPRIG_OK_(sprig_server_register_api(l.srv, "test.put", "test.put",
                                        put_handler, &lr));
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(f.url, NULL, &c)); /* the follower only */
    SPRIG_OK_(sprig_client_authenticate_password(c, USER, PASSWORD));
    sprig_buf out = {0};
    SPRIG_OK_(sprig_client_call(c, "test.put", "x", 1, &out));
    assert_int_equal(out.len, strlen(USER)); /* logged in again there */
    assert_memory_equal(out.data, USER, out.len);
    assert_int_equal(fr.calls, 1);
    assert_int_equal(lr.calls, 1);
    assert_int_equal(peer_port(c), l.port);
    kv_roundtrip(sprig_client_storage(c), "on-leader", 3);
    sprig_buf_clear(&out);

    /* the leader now names the follower: one retry, not a ping-pong */
    lr.leader_url = f.url;
    SPRIG_EXPECT(SPRIG_ENOTLEADER,
                 sprig_client_call(c, "test.put", "y", 1, &out));
    assert_int_equal(lr.calls, 2);
    assert_int_equal(fr.calls, 2);
    lr.leader_url = NULL;
    concurrent_follow(&f, &fr, &lr);
    sprig_client_close(c);
    node_stop(&f);
    node_stop(&l);
}

/* ---- request ids ----------------------------------------------------------
 */

static void
test_request_ids(void **state)
{
    (void)state;
    assert_true(sprig__api_kv_set.access == SPRIG__WRITE);
    sprig__kv_set_req req = {0};
    req.db = (char *)"app";
    req.ns = (char *)"t";
    req.key = (char *)"k";
    req.value = sprig_value_of_i64(1);
    uint8_t rid[16], got[16];
    for (int i = 0; i < 16; i++) {
        rid[i] = (uint8_t)(0xa0 + i);
    }
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    SPRIG_OK_(sprig__api_encode_rid(&w, sprig__api_kv_set.req,
                                    sprig__api_kv_set.n_req, &req, rid));
    assert_int_equal(sprig__api_request_rid(sprig_buf_bytes(&b), got), 1);
    assert_memory_equal(got, rid, 16);
    /* a server decoding the row ignores the field */
    sprig__kv_set_req back = {0};
    SPRIG_OK_(sprig__api_decode(sprig_buf_bytes(&b), sprig__api_kv_set.req,
                                sprig__api_kv_set.n_req, &back));
    assert_string_equal(back.key, "k");
    sprig__api_free(sprig__api_kv_set.req, sprig__api_kv_set.n_req, &back);
    sprig_buf_clear(&b);
    /* without the field: 0 */
    sprig__mp_wr_init(&w, &b);
    SPRIG_OK_(sprig__api_encode(&w, sprig__api_kv_set.req,
                                sprig__api_kv_set.n_req, &req));
    assert_int_equal(sprig__api_request_rid(sprig_buf_bytes(&b), got), 0);
    sprig_buf_clear(&b);
}

int
main(void)
{
    root = tu_tmpdir("multi_url");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_node_down),
        cmocka_unit_test(test_failover_on_stop),
        cmocka_unit_test(test_follow_leader),
        cmocka_unit_test(test_request_ids),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(root);
    return rc;
}
