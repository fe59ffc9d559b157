/*
 * test_auth_server.c -- authentication and admission on a real server
 * (ws:// on 127.0.0.1, the permission engine on, argon2id at its minimum):
 *  - an unauthenticated connection may only authenticate: any other row is
 *    SPRIG_EPERM and changes nothing;
 *  - the C client: wrong passwords and unknown users are refused alike; a
 *    right one runs every later call as the user (granted calls pass, the
 *    rest SPRIG_EPERM); a user removed from a group mid-session loses the
 *    access on the next request; token login (challenge-response);
 *  - raw frames: a replayed token response and a stale client time are
 *    refused; several sessions on one connection (the default and named
 *    ones), assume-identity refused without its permission and allowed
 *    with it, log out, a request naming a session the connection does not
 *    have;
 *  - the client logs in again by itself after the server restarts;
 *  - a cross-origin browser upgrade gets HTTP 403, the server's own origin
 *    and no origin pass;
 *  - one address cannot take every connection slot: past the per-address
 *    limit its connections are closed, while another address (127.0.0.2)
 *    still gets in;
 *  - a connection that does not authenticate is closed after the timeout;
 *  - administration over the network (admin.* rows, sprig_client_admin):
 *    a user removed from a group by an admin's request while logged in on
 *    another connection is refused on its next request; users, groups,
 *    grants, passwords, tokens and roles made and changed over the
 *    network take effect at once; a user without the actions is refused;
 *  - no password or token secret appears in any error message the test
 *    saw, nor in any file of the storage (grep over the raw files).
 */
#include "testutil.h"

#include "proto/api.h"
#include "proto/envelope.h"
#include "sprig/auth.h"
#include "sprig/client.h"
#include "sprig/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "sockws.h"

#define PW_ALICE "alice-Secret-pw-1"
#define PW_ADMIN "admin-Secret-pw-2"
#define PW_BOB "bob-Secret-pw-3"
#define PW_CAROL "carol-Secret-pw-4"
#define PW_CAROL2 "carol-Secret-pw-5"

static const sprig_collection_def cols[] = {{"c", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"app", cols, 1};

static const char *root;
static sprig_storage *st;
static sprig_server *srv;
static int port;
static char tok_id[SPRIG_TOKEN_ID_LEN + 1],
    tok_secret[SPRIG_TOKEN_SECRET_LEN + 1];
static char seen[16384]; /* every error message the test saw */
static char net_secret[SPRIG_TOKEN_SECRET_LEN + 1]; /* made over the network */

static void
note(const char *msg)
{
    size_t n = strlen(seen);
    snprintf(seen + n, sizeof seen - n, "%s\n", msg);
}

static void
server_up(int at_port)
{
    sprig_auth_options ao;
    sprig_auth_options_min(&ao);
    sprig_server_options o;
    sprig_server_options_init(&o);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", at_port);
    o.ws_listen = listen;
    o.workers = 2;
    o.auth_options = &ao;
    o.auth_timeout_ms = 1500;
    o.max_connections_per_address = 4;
    SPRIG_OK_(sprig_server_new_for(st, &o, &srv));
    SPRIG_OK_(sprig_server_start(srv));
    port = sprig_server_ws_port(srv);
}

static int
setup(void **state)
{
    (void)state;
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = root;
    SPRIG_OK_(sprig_storage_open(&so, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "app", "app", false));
    server_up(0);
    sprig_auth *a = sprig_server_auth(srv);
    assert_non_null(a);
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "admin", PW_ADMIN));
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "alice", PW_ALICE));
    SPRIG_OK_(sprig_auth_user_create(a, NULL, "bob", PW_BOB));
    SPRIG_OK_(sprig_auth_group_create(a, NULL, "admins"));
    SPRIG_OK_(sprig_auth_group_grant(a, NULL, "admins", "*", "sprig"));
    SPRIG_OK_(sprig_auth_user_group(a, NULL, "admin", "admins", true));
    SPRIG_OK_(sprig_auth_group_create(a, NULL, "readers"));
    SPRIG_OK_(sprig_auth_group_grant(a, NULL, "readers",
                                     "kv.get,document.get,database.open",
                                     "sprig.db.app"));
    SPRIG_OK_(sprig_auth_user_group(a, NULL, "alice", "readers", true));
    SPRIG_OK_(sprig_auth_token_create(a, NULL, "alice", tok_id, tok_secret));
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sprig_server_free(srv);
    sprig_storage_close(st);
    return 0;
}

/* ---- raw frames ------------------------------------------------------------
 */

static uint32_t next_id = 100;

/* Send `api` (session: NULL for nil) and decode the answer into `resp`
 * (zeroed; the caller frees it).  Returns 0 or the error code. */
static int
raw_call(int fd, const uint64_t *session, const sprig__api *api,
         const void *req, void *resp)
{
    static sprig_buf in; /* decoded bytes borrow from it: kept until the
                            next call */
    sprig_buf b = {0};
    in.len = 0;
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    uint32_t id = ++next_id;
    sprig__frame_request(&w, id, session, api->name);
    SPRIG_OK_(sprig__api_encode(&w, api->req, api->n_req, req));
    rw_send(fd, sprig_buf_bytes(&b));
    assert_true(rw_recv(fd, &in));
    sprig__frame f;
    SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&in), &f));
    assert_int_equal(f.id, id);
    int rc = 0;
    if (f.kind == SPRIG__FRAME_ERROR) {
        char msg[600];
        snprintf(msg, sizeof msg, "%.*s", (int)f.message.len,
                 (const char *)f.message.data);
        note(msg);
        rc = f.code;
    } else if (resp) {
        SPRIG_OK_(sprig__api_decode(f.payload, api->resp, api->n_resp, resp));
    }
    sprig_buf_clear(&b);
    return rc;
}

static int
raw_login(int fd, const char *user, const char *pw, uint64_t *session)
{
    sprig__auth_password_req q = {(char *)user, (char *)pw};
    sprig__auth_session_resp r = {0};
    int rc = raw_call(fd, NULL, &sprig__api_auth_password, &q, &r);
    *session = r.session;
    sprig__api_free(sprig__api_auth_password.resp,
                    sprig__api_auth_password.n_resp, &r);
    return rc;
}

static int
raw_kv_get(int fd, const uint64_t *session)
{
    sprig__kv_get_req q = {(char *)"app", (char *)"", (char *)"k", false};
    sprig__kv_value_resp r = {0};
    int rc = raw_call(fd, session, &sprig__api_kv_get, &q, &r);
    sprig_value_clear(&r.value);
    return rc == SPRIG_ENOTFOUND ? 0 : rc; /* reached the store: allowed */
}

/* ---- tests ----------------------------------------------------------------
 */

static void
test_anonymous(void **state)
{
    (void)state;
    int fd = rw_open(port);
    SPRIG_EXPECT(SPRIG_EPERM, raw_kv_get(fd, NULL));
    sprig__db_create_req cq = {(char *)"evil", (char *)"app", false};
    SPRIG_EXPECT(SPRIG_EPERM,
                 raw_call(fd, NULL, &sprig__api_db_create, &cq, NULL));
    sprig__db_name_req dq = {(char *)"app"};
    SPRIG_EXPECT(SPRIG_EPERM,
                 raw_call(fd, NULL, &sprig__api_db_delete, &dq, NULL));
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(st, &l));
    assert_int_equal(sprig_database_list_count(l), 2); /* _admin, app */
    sprig_database_list_free(l);
    sprig__empty e = {0};
    sprig__auth_challenge_resp ch = {0};
    SPRIG_OK_(raw_call(fd, NULL, &sprig__api_auth_challenge, &e, &ch));
    assert_int_equal(ch.nonce.len, 32);
    sprig__api_free(sprig__api_auth_challenge.resp,
                    sprig__api_auth_challenge.n_resp, &ch);
    close(fd);
}

static sprig_client *
client(void)
{
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", port);
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, NULL, &c));
    return c;
}

static int
kv_get(sprig_client *c)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(sprig_client_storage(c), "app", &db);
    if (rc == 0) {
        sprig_value v = {0};
        rc = sprig_kv_get(db, "", "k", false, &v);
        rc = rc == SPRIG_ENOTFOUND ? 0 : rc;
        if (rc) {
            note(sprig_errmsg());
        }
        sprig_value_clear(&v);
        sprig_db_close(db);
    } else {
        note(sprig_errmsg());
    }
    return rc;
}

static void
test_client_password(void **state)
{
    (void)state;
    sprig_client *c = client();
    sprig_storage *cs = sprig_client_storage(c);
    sprig_database_list *l = NULL;
    SPRIG_EXPECT(SPRIG_EPERM, sprig_storage_list_databases(cs, &l));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_client_authenticate_password(c, "alice", "wrong"));
    char wrong[256];
    snprintf(wrong, sizeof wrong, "%s", sprig_errmsg());
    note(wrong);
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_client_authenticate_password(c, "nobody", PW_ALICE));
    assert_string_equal(sprig_errmsg(), wrong);
    note(sprig_errmsg());
    SPRIG_OK_(sprig_client_authenticate_password(c, "alice", PW_ALICE));
    SPRIG_OK_(kv_get(c)); /* granted */
    SPRIG_EXPECT(SPRIG_EPERM, sprig_storage_list_databases(cs, &l));
    note(sprig_errmsg());
    sprig_db *db;
    SPRIG_EXPECT(SPRIG_EPERM, sprig_storage_open_database(cs, "_admin", &db));
    /* mid-session: removed from the group, refused on the next request */
    sprig_auth *a = sprig_server_auth(srv);
    SPRIG_OK_(sprig_auth_user_group(a, NULL, "alice", "readers", false));
    SPRIG_EXPECT(SPRIG_EPERM, kv_get(c));
    SPRIG_OK_(sprig_auth_user_group(a, NULL, "alice", "readers", true));
    SPRIG_OK_(kv_get(c));
    sprig_client_close(c);
}

static void
test_client_token_and_reconnect(void **state)
{
    (void)state;
    sprig_client *c = client();
    char bad[SPRIG_TOKEN_SECRET_LEN + 1];
    snprintf(bad, sizeof bad, "%s", tok_secret);
    bad[5] = bad[5] == 'a' ? 'b' : 'a';
    SPRIG_EXPECT(SPRIG_EPERM, sprig_client_authenticate_token(c, tok_id, bad));
    note(sprig_errmsg());
    SPRIG_OK_(sprig_client_authenticate_token(c, tok_id, tok_secret));
    SPRIG_OK_(kv_get(c));
    /* the server restarts on the same port: the client logs in again */
    int was = port;
    sprig_server_free(srv);
    server_up(was);
    int rc = kv_get(c); /* the first call may meet the dropped connection */
    assert_true(rc == 0 || rc == SPRIG_ECLOSED);
    SPRIG_OK_(kv_get(c));
    sprig_client_close(c);
    /* a password login is replayed the same way */
    c = client();
    SPRIG_OK_(sprig_client_authenticate_password(c, "alice", PW_ALICE));
    sprig_server_free(srv);
    server_up(was);
    rc = kv_get(c);
    assert_true(rc == 0 || rc == SPRIG_ECLOSED);
    SPRIG_OK_(kv_get(c));
    sprig_client_close(c);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A token request answering a fresh challenge, client time `skew` off. */
static void
token_req(int fd, int64_t skew, sprig__auth_token_req *q, uint8_t nonce[32],
          uint8_t mac[32])
{
    sprig__empty e = {0};
    sprig__auth_challenge_resp ch = {0};
    SPRIG_OK_(raw_call(fd, NULL, &sprig__api_auth_challenge, &e, &ch));
    memcpy(nonce, ch.nonce.data, 32);
    q->token = tok_id;
    q->nonce = (sprig_bytes){nonce, 32};
    q->server_ms = ch.server_ms;
    q->client_ms = (uint64_t)((int64_t)now_ms() + skew);
    q->mac = (sprig_bytes){mac, 32};
    SPRIG_OK_(sprig_auth_token_response(tok_id, tok_secret, nonce, q->server_ms,
                                        q->client_ms, mac));
    sprig__api_free(sprig__api_auth_challenge.resp,
                    sprig__api_auth_challenge.n_resp, &ch);
}

static void
test_token_replay_and_stale(void **state)
{
    (void)state;
    int fd = rw_open(port);
    sprig__auth_token_req q;
    uint8_t nonce[32], mac[32];
    sprig__auth_session_resp r = {0};
    token_req(fd, 0, &q, nonce, mac);
    SPRIG_OK_(raw_call(fd, NULL, &sprig__api_auth_token, &q, &r));
    assert_string_equal(r.identity, "alice");
    sprig__api_free(sprig__api_auth_token.resp, sprig__api_auth_token.n_resp,
                    &r);
    /* the same response again, on this or another connection: refused */
    SPRIG_EXPECT(SPRIG_EPERM,
                 raw_call(fd, NULL, &sprig__api_auth_token, &q, NULL));
    int fd2 = rw_open(port);
    SPRIG_EXPECT(SPRIG_EPERM,
                 raw_call(fd2, NULL, &sprig__api_auth_token, &q, NULL));
    /* a client time two minutes off */
    token_req(fd2, -120000, &q, nonce, mac);
    SPRIG_EXPECT(SPRIG_EPERM,
                 raw_call(fd2, NULL, &sprig__api_auth_token, &q, NULL));
    SPRIG_EXPECT(SPRIG_EPERM, raw_kv_get(fd2, NULL)); /* still nobody */
    close(fd);
    close(fd2);
}

static void
test_sessions(void **state)
{
    (void)state;
    int fd = rw_open(port);
    uint64_t sa, sb, sadm;
    SPRIG_OK_(raw_login(fd, "alice", PW_ALICE, &sa));
    SPRIG_OK_(raw_kv_get(fd, NULL)); /* the default: alice */
    SPRIG_OK_(raw_login(fd, "bob", PW_BOB, &sb));
    assert_int_not_equal(sa, sb);
    SPRIG_EXPECT(SPRIG_EPERM, raw_kv_get(fd, NULL)); /* now bob */
    SPRIG_OK_(raw_kv_get(fd, &sa));                  /* alice, named */
    /* bob may not assume alice */
    sprig__auth_assume_req aq = {(char *)"user", (char *)"alice"};
    sprig__auth_session_resp r = {0};
    SPRIG_EXPECT(SPRIG_EPERM,
                 raw_call(fd, NULL, &sprig__api_auth_assume, &aq, NULL));
    /* the admin may */
    SPRIG_OK_(raw_login(fd, "admin", PW_ADMIN, &sadm));
    SPRIG_OK_(raw_call(fd, &sadm, &sprig__api_auth_assume, &aq, &r));
    uint64_t sassumed = r.session;
    assert_string_equal(r.identity, "alice");
    sprig__api_free(sprig__api_auth_assume.resp, sprig__api_auth_assume.n_resp,
                    &r);
    SPRIG_OK_(raw_kv_get(fd, &sassumed));
    sprig__db_name_req dq = {(char *)"app"};
    SPRIG_EXPECT(SPRIG_EPERM,
                 raw_call(fd, &sassumed, &sprig__api_db_delete, &dq, NULL));
    /* log out the assumed session: naming it is refused after */
    sprig__auth_logout_req lq = {sassumed};
    SPRIG_OK_(raw_call(fd, NULL, &sprig__api_auth_logout, &lq, NULL));
    SPRIG_EXPECT(SPRIG_EPROTO, raw_kv_get(fd, &sassumed));
    uint64_t other = 987654;
    SPRIG_EXPECT(SPRIG_EPROTO, raw_kv_get(fd, &other));
    /* log out the default (admin): requests with nil are nobody's */
    lq.session = 0;
    SPRIG_OK_(raw_call(fd, NULL, &sprig__api_auth_logout, &lq, NULL));
    SPRIG_EXPECT(SPRIG_EPERM, raw_kv_get(fd, NULL));
    SPRIG_OK_(raw_kv_get(fd, &sa));
    close(fd);
}

/* Upgrade from `src` (NULL: 127.0.0.1) with `origin` (NULL: none); the
 * status line's code, and the socket in *fd (closed unless wanted). */
static int
upgrade(const char *src, const char *origin, int *fdp)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in me = {.sin_family = AF_INET};
    inet_pton(AF_INET, src ? src : "127.0.0.1", &me.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[512];
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Protocol: sprig.v1\r\n%s%s%s\r\n",
             port, origin ? "Origin: " : "", origin ? origin : "",
             origin ? "\r\n" : "");
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    char head[2048];
    size_t n = 0;
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        if (n >= sizeof head - 1 || !rw_read(fd, head + n, 1)) {
            break;
        }
        n++;
    }
    head[n] = 0;
    int code = n > 12 ? atoi(head + 9) : -1;
    if (fdp) {
        *fdp = fd;
    } else {
        close(fd);
    }
    return code;
}

static void
test_origins(void **state)
{
    (void)state;
    assert_int_equal(upgrade(NULL, "http://evil.example", NULL), 403);
    char own[64];
    snprintf(own, sizeof own, "http://127.0.0.1:%d", port);
    assert_int_equal(upgrade(NULL, own, NULL), 101);
    assert_int_equal(upgrade(NULL, NULL, NULL), 101);
}

static size_t
open_conns(void)
{
    size_t n = 0;
    for (int i = 0; i < 300; i++) {
        SPRIG_OK_(sprig_server_connections(srv, NULL, 0, &n));
        if (n == 0) {
            break;
        }
        usleep(10000);
    }
    return n;
}

static void
test_per_address_limit(void **state)
{
    (void)state;
    assert_int_equal(open_conns(), 0);
    int fds[5];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(upgrade(NULL, NULL, &fds[i]), 101);
    }
    /* the fifth from 127.0.0.1: upgraded, then closed at once */
    assert_int_equal(upgrade(NULL, NULL, &fds[4]), 101);
    sprig_buf b = {0};
    assert_false(rw_recv(fds[4], &b));
    /* another address still gets in and is served */
    int other;
    assert_int_equal(upgrade("127.0.0.2", NULL, &other), 101);
    uint64_t s;
    SPRIG_OK_(raw_login(other, "alice", PW_ALICE, &s));
    SPRIG_OK_(raw_kv_get(other, NULL));
    /* the first four are still open */
    SPRIG_EXPECT(SPRIG_EPERM, raw_kv_get(fds[0], NULL));
    for (int i = 0; i < 5; i++) {
        close(fds[i]);
    }
    close(other);
    sprig_buf_clear(&b);
}

static void
test_auth_timeout(void **state)
{
    (void)state;
    assert_int_equal(open_conns(), 0);
    int idle, authed;
    assert_int_equal(upgrade(NULL, NULL, &idle), 101);
    assert_int_equal(upgrade(NULL, NULL, &authed), 101);
    uint64_t s;
    SPRIG_OK_(raw_login(authed, "alice", PW_ALICE, &s));
    usleep(2500 * 1000);
    sprig_buf b = {0};
    assert_false(rw_recv(idle, &b)); /* closed: not authenticated in time */
    SPRIG_OK_(raw_kv_get(authed, NULL));
    close(idle);
    close(authed);
    sprig_buf_clear(&b);
}

/* One admin change over the network, through client `c`. */
static int
adm(sprig_client *c, sprig_admin_change ch, sprig_admin_token *tok)
{
    int rc = sprig_client_admin(sprig_client_storage(c), &ch, tok);
    if (rc) {
        note(sprig_errmsg());
    }
    return rc;
}

/* Add `name` to `other` over the network (op: SPRIG_ADMIN_USER_GROUP,
 * _USER_ROLE or _ROLE_GROUP). */
static int
adm_add(sprig_client *c, sprig_admin_op op, const char *name, const char *other)
{
    return adm(c,
               (sprig_admin_change){
                   .op = op, .name = name, .other = other, .add = true},
               NULL);
}

/* Group "writers" may open database app and write its documents. */
static int
grant_writers(sprig_client *c)
{
    return adm(c,
               (sprig_admin_change){.op = SPRIG_ADMIN_GROUP_GRANT,
                                    .name = "writers",
                                    .actions = "database.open,document",
                                    .resource = "sprig.db.app"},
               NULL);
}

/* carol's insert of a document into app (her writers' grant). */
static int
carol_writes(sprig_client *c)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(sprig_client_storage(c), "app", &db);
    sprig_bytes id = sprig_str("by-carol");
    rc = rc ? rc : sprig_overwrite(db, "c", id, sprig_str("{}"), NULL);
    if (rc) {
        note(sprig_errmsg());
    }
    sprig_db_close(db);
    return rc;
}

static sprig_client *
logged_in(const char *user, const char *pw)
{
    sprig_client *c = client();
    SPRIG_OK_(sprig_client_authenticate_password(c, user, pw));
    return c;
}

/* The admin.* rows from clients: the admin changes the records while
 * other connections are logged in, and they see it on their next
 * request; a user without the actions is refused. */
static void
test_admin_over_network(void **state)
{
    (void)state;
    sprig_client *adm_c = logged_in("admin", PW_ADMIN);
    sprig_client *alice = logged_in("alice", PW_ALICE);
    SPRIG_OK_(kv_get(alice));
    sprig_admin_change out = {.op = SPRIG_ADMIN_USER_GROUP,
                              .name = "alice",
                              .other = "readers",
                              .add = false};
    SPRIG_OK_(adm(adm_c, out, NULL)); /* alice still logged in elsewhere */
    SPRIG_EXPECT(SPRIG_EPERM, kv_get(alice));
    out.add = true;
    SPRIG_OK_(adm(adm_c, out, NULL));
    SPRIG_OK_(kv_get(alice));
    sprig_client_close(alice);
    /* a new user with a password and a group, made over the network */
    SPRIG_OK_(adm(
        adm_c, (sprig_admin_change){SPRIG_ADMIN_USER_CREATE, "carol", PW_CAROL},
        NULL));
    SPRIG_OK_(adm(adm_c,
                  (sprig_admin_change){SPRIG_ADMIN_GROUP_CREATE, "writers"},
                  NULL));
    SPRIG_OK_(grant_writers(adm_c));
    sprig_client *carol = logged_in("carol", PW_CAROL);
    SPRIG_EXPECT(SPRIG_EPERM, carol_writes(carol));
    SPRIG_OK_(adm_add(adm_c, SPRIG_ADMIN_USER_GROUP, "carol", "writers"));
    SPRIG_OK_(carol_writes(carol));
    /* carol may not administer: refused, nothing changed */
    SPRIG_EXPECT(SPRIG_EPERM,
                 adm_add(carol, SPRIG_ADMIN_USER_GROUP, "carol", "admins"));
    SPRIG_EXPECT(SPRIG_EPERM,
                 adm(carol,
                     (sprig_admin_change){SPRIG_ADMIN_USER_CREATE, "mallory"},
                     NULL));
    /* a new password: the old one stops working */
    SPRIG_OK_(adm(
        adm_c,
        (sprig_admin_change){SPRIG_ADMIN_USER_SET_PASSWORD, "carol", PW_CAROL2},
        NULL));
    sprig_client *c2 = client();
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_client_authenticate_password(c2, "carol", PW_CAROL));
    note(sprig_errmsg());
    SPRIG_OK_(sprig_client_authenticate_password(c2, "carol", PW_CAROL2));
    sprig_client_close(c2);
    /* a token made over the network logs in, until it is deleted */
    sprig_admin_token tok;
    SPRIG_OK_(adm(
        adm_c, (sprig_admin_change){SPRIG_ADMIN_TOKEN_CREATE, "carol"}, &tok));
    snprintf(net_secret, sizeof net_secret, "%s", tok.secret);
    c2 = client();
    SPRIG_OK_(sprig_client_authenticate_token(c2, tok.id, tok.secret));
    sprig_client_close(c2);
    SPRIG_OK_(adm(adm_c, (sprig_admin_change){SPRIG_ADMIN_TOKEN_DELETE, tok.id},
                  NULL));
    c2 = client();
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_client_authenticate_token(c2, tok.id, tok.secret));
    note(sprig_errmsg());
    sprig_client_close(c2);
    /* roles: bob gets readers through one */
    SPRIG_OK_(adm(adm_c,
                  (sprig_admin_change){SPRIG_ADMIN_ROLE_CREATE, "auditors"},
                  NULL));
    SPRIG_OK_(adm_add(adm_c, SPRIG_ADMIN_ROLE_GROUP, "auditors", "readers"));
    sprig_client *bob = logged_in("bob", PW_BOB);
    SPRIG_EXPECT(SPRIG_EPERM, kv_get(bob));
    SPRIG_OK_(adm_add(adm_c, SPRIG_ADMIN_USER_ROLE, "bob", "auditors"));
    SPRIG_OK_(kv_get(bob));
    sprig_client_close(bob);
    /* revoking the group's grant, then deleting carol: her live session
     * loses everything */
    SPRIG_OK_(adm(adm_c,
                  (sprig_admin_change){.op = SPRIG_ADMIN_GROUP_REVOKE,
                                       .name = "writers",
                                       .resource = "sprig.db.app"},
                  NULL));
    SPRIG_EXPECT(SPRIG_EPERM, carol_writes(carol));
    SPRIG_OK_(grant_writers(adm_c));
    SPRIG_OK_(carol_writes(carol));
    SPRIG_OK_(adm(adm_c, (sprig_admin_change){SPRIG_ADMIN_USER_DELETE, "carol"},
                  NULL));
    SPRIG_EXPECT(SPRIG_EPERM, carol_writes(carol));
    sprig_client_close(carol);
    sprig_client_close(adm_c);
}

/* Last: nothing secret in the error messages seen or the storage's files. */
static void
test_no_secrets_leak(void **state)
{
    (void)state;
    const char *secrets[] = {PW_ALICE, PW_ADMIN,  PW_BOB,
                             PW_CAROL, PW_CAROL2, tok_secret};
    for (size_t i = 0; i < 6; i++) {
        assert_null(strstr(seen, secrets[i]));
    }
    assert_int_equal(strlen(net_secret), SPRIG_TOKEN_SECRET_LEN);
    assert_null(strstr(seen, net_secret));
    assert_true(strlen(seen) > 100); /* the test did see refusals */
    sprig_server_free(srv);
    sprig_storage_close(st);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "grep -r -a -q -F -e '%s' -e '%s' -e '%s' -e '%s' -e '%s' "
             "-e '%s' -e '%s' '%s'",
             PW_ALICE, PW_ADMIN, PW_BOB, PW_CAROL, PW_CAROL2, tok_secret,
             net_secret, root);
    assert_int_not_equal(system(cmd), 0);
    /* the check can fail: the same grep finds a user name */
    snprintf(cmd, sizeof cmd, "grep -r -a -q -F -e 'alice' '%s'", root);
    assert_int_equal(system(cmd), 0);
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = root;
    SPRIG_OK_(sprig_storage_open(&so, &st));
    server_up(0);
}

int
main(void)
{
    root = tu_tmpdir("auth_server");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anonymous),
        cmocka_unit_test(test_client_password),
        cmocka_unit_test(test_client_token_and_reconnect),
        cmocka_unit_test(test_token_replay_and_stale),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_per_address_limit),
        cmocka_unit_test(test_auth_timeout),
        cmocka_unit_test(test_admin_over_network),
        cmocka_unit_test(test_no_secrets_leak),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    tu_rmtree(root);
    return rc;
}
