/*
 * test_clients_wire.c -- connected clients over the wire (issue 15): the
 * server.clients row through sprig_client_connected_clients(), over ws://
 * and wss:// against a real server with authentication.  The listing is
 * oldest first, names each connection's peer, transport and identity,
 * marks the caller's own connection (and only it) `yours`, counts the
 * requests each sent; a second client appears when it connects and is
 * gone once it closes; a user without `server.clients` is refused; a
 * local storage is no server (EINVAL).  The codec keeps every field and
 * refuses a list longer than its bytes could hold.
 */
#include "placement.h"

#include "proto/api.h"

#include <sys/time.h>

static uint64_t
wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static const sprig_collection_def cols[] = {{"a", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"cw", cols, 1};
static const char *root;

#define BOB_PW "bob-pw"

/* The listing as `st` sees it (at most 8). */
static size_t
listing(sprig_storage *st, sprig_connected_client out[8])
{
    size_t n = 99;
    SPRIG_OK_(sprig_client_connected_clients(st, out, 8, &n));
    assert_true(n <= 8);
    return n;
}

/* A second client of p's server, logged in as "bob". */
static sprig_client *
connect_bob(placement *p, const char *kind)
{
    char url[64], cert[1300], key[1300];
    bool tls = strcmp(kind, "wss") == 0;
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", kind,
             sprig_server_ws_port(p->srv));
    sprig_client_options co;
    sprig_client_options_init(&co);
    if (tls) {
        placement_cert(root, cert, key, sizeof cert);
        co.pinned_cert_path = cert;
    }
    sprig_client *cl;
    SPRIG_OK_(sprig_client_connect(url, &co, &cl));
    SPRIG_OK_(sprig_client_authenticate_password(cl, "bob", BOB_PW));
    return cl;
}

static void
expect_admin_alone(placement *p, const char *kind)
{
    sprig_connected_client l[8];
    size_t n = listing(p->st, l);
    assert_int_equal(n, 1);
    assert_true(l[0].yours);
    assert_string_equal(l[0].identity, PLACEMENT_USER);
    assert_string_equal(l[0].transport, kind);
    assert_true(strncmp(l[0].peer, "127.0.0.1:", 10) == 0);
    assert_int_equal(l[0].sessions, 1);
    assert_true(l[0].requests >= 2); /* the login and this call */
    uint64_t now = wall_ms();
    assert_true(l[0].connected_ms <= now && l[0].connected_ms + 60000 > now);
    sprig_connected_client again[8];
    assert_int_equal(listing(p->st, again), 1);
    assert_int_equal(again[0].id, l[0].id);
    assert_int_equal(again[0].requests, l[0].requests + 1);
}

static void
expect_both(placement *p, sprig_client *bob, const char *kind)
{
    sprig_connected_client l[8];
    size_t n = listing(p->st, l);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].identity, PLACEMENT_USER); /* oldest first */
    assert_true(l[0].yours);
    assert_string_equal(l[1].identity, "bob");
    assert_false(l[1].yours);
    assert_string_equal(l[1].transport, kind);
    assert_true(l[0].id != l[1].id);
    assert_true(l[0].connected_ms <= l[1].connected_ms);
    /* bob may not list: refused, naming the action */
    size_t bn = 7;
    SPRIG_EXPECT(SPRIG_EPERM, sprig_client_connected_clients(
                                  sprig_client_storage(bob), l, 8, &bn));
    assert_non_null(strstr(sprig_errmsg(), "server.clients"));
    assert_int_equal(bn, 0);
    /* granted, bob sees the same two, itself marked */
    SPRIG_OK_(sprig_auth_group_create(p->auth, NULL, "watchers"));
    SPRIG_OK_(sprig_auth_group_grant(p->auth, NULL, "watchers",
                                     "server.clients", "sprig"));
    SPRIG_OK_(sprig_auth_user_group(p->auth, NULL, "bob", "watchers", true));
    assert_int_equal(listing(sprig_client_storage(bob), l), 2);
    assert_false(l[0].yours);
    assert_true(l[1].yours);
    assert_string_equal(l[1].identity, "bob");
    /* cap 0: only the count */
    SPRIG_OK_(sprig_client_connected_clients(p->st, NULL, 0, &n));
    assert_int_equal(n, 2);
}

static void
run_kind(const char *kind)
{
    placement p;
    placement_open(&p, kind, root, &schema);
    SPRIG_OK_(sprig_auth_user_create(p.auth, NULL, "bob", BOB_PW));
    expect_admin_alone(&p, kind);
    sprig_client *bob = connect_bob(&p, kind);
    expect_both(&p, bob, kind);
    sprig_client_close(bob);
    sprig_connected_client l[8];
    size_t n = 2;
    for (int i = 0; i < 500 && n != 1; i++) { /* the close is asynchronous */
        n = listing(p.st, l);
        usleep(n == 1 ? 0 : 10000);
    }
    assert_int_equal(n, 1);
    assert_true(l[0].yours);
    placement_close(&p);
}

static void
test_ws(void **state)
{
    (void)state;
    run_kind("ws");
}

static void
test_wss(void **state)
{
    (void)state;
    run_kind("wss");
}

static void
test_not_a_server(void **state)
{
    (void)state;
    placement p;
    placement_open(&p, "local", root, &schema);
    size_t n = 5;
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_client_connected_clients(p.st, NULL, 0, &n));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_client_connected_clients(p.st, NULL, 1, &n));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_client_connected_clients(NULL, NULL, 0, &n));
    placement_close(&p);
}

/* Encode a list, decode it back; a count past the bytes is refused. */
static void
test_codec(void **state)
{
    (void)state;
    sprig_connected_client in[2] = {{1ull << 60, "10.0.0.1:1", "quic",
                                     1700000000123ull, "role:x", 3,
                                     (1ull << 40) + 5, true},
                                    {7, "[::1]:80", "ws", 1, "", 0, 0, false}};
    sprig__clients_resp r = {{2, in}}, out = {{0}};
    const sprig__api *api = &sprig__api_server_clients;
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    SPRIG_OK_(sprig__api_encode(&w, api->resp, api->n_resp, &r));
    SPRIG_OK_(
        sprig__api_decode(sprig_buf_bytes(&b), api->resp, api->n_resp, &out));
    assert_int_equal(out.clients.n, 2);
    assert_memory_equal(&out.clients.items[0], &in[0], sizeof in[0]);
    assert_memory_equal(&out.clients.items[1], &in[1], sizeof in[1]);
    sprig__api_free(api->resp, api->n_resp, &out);
    /* {"clients": array32 of 2^31 entries} and nothing after */
    static const uint8_t lie[] = {0x81, 0xa7, 'c',  'l',  'i', 'e', 'n',
                                  't',  's',  0xdd, 0x80, 0,   0,   0};
    memset(&out, 0, sizeof out);
    SPRIG_EXPECT(SPRIG_EPROTO, sprig__api_decode((sprig_bytes){lie, sizeof lie},
                                                 api->resp, api->n_resp, &out));
    sprig__api_free(api->resp, api->n_resp, &out);
    sprig_buf_clear(&b);
}

int
main(void)
{
    root = tu_tmpdir("clients_wire");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws),
        cmocka_unit_test(test_wss),
        cmocka_unit_test(test_not_a_server),
        cmocka_unit_test(test_codec),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
