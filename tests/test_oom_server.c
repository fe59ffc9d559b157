/*
 * test_oom_server.c -- the out-of-memory sweep along the server's request
 * path (issue 17 item 7): for one row of each kind (where it runs: the
 * loop thread, a cached read, a worker, a write submitted to the writer;
 * reads and writes; server-level, document, view, key-value and PubSub
 * rows, and the login itself), a logged-in connection sends the request
 * with the N-th allocation of the process failing, for N = 1, 2, 3, ...
 * until the request no longer reaches the failure.  The failure lands
 * wherever the server is on that request -- decode, authorise, dispatch,
 * the handler, encode, send.  Each attempt must end cleanly: an answer
 * (the failure was absorbed), an error frame SPRIG_ENOMEM with a message,
 * or the connection closed -- never another code, a hang or a crash; once
 * the connection is gone the gateway's live-allocation count returns to
 * its baseline (nothing leaked; ASan's leak check covers the rest at
 * exit); and the server keeps serving: the next attempt connects and logs
 * in, and after each row a fresh connection reads, writes and queries.
 * The client is a plain blocking socket (sockws.h) that allocates with
 * libc only while a failure is armed, so every failure is the server's.
 */
#include "oomtest.h"
#include "rawws.h"
#include "sockws.h"

#include <sprig/auth.h>

#include <errno.h>
#include <stdatomic.h>

#define MAX_POINTS 3000
#define USER "oom"
#define PASSWORD "oom-password"

/* ======================================================================
 * The server: authentication enforced, one user allowed everything.
 * ====================================================================== */

static const sprig_view_def views[] = {{.name = "by-w",
                                        .version = 1,
                                        .json_key = "w",
                                        .builtin_reduce = SPRIG_REDUCE_COUNT}};
static const sprig_collection_def colls[] = {
    {"docs", SPRIG_ID_NATURAL, 0, views, 1}};
static const sprig_schema_def schema = {"oom", colls, 1};

static struct {
    sprig_server *srv;
    sprig_storage *auth_st;
    sprig_auth *auth;
    int port;
    long live;       /* the gateway's live allocations when idle */
    long first_live; /* ... before the first attempt */
} S;

static void
make_auth(sprig_server_options *o)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.memory_only = true;
    SPRIG_OK_(sprig_storage_open(&so, &S.auth_st));
    sprig_auth_options ao;
    sprig_auth_options_min(&ao);
    SPRIG_OK_(sprig_auth_open(S.auth_st, &ao, &S.auth));
    SPRIG_OK_(sprig_auth_user_create(S.auth, NULL, USER, PASSWORD));
    SPRIG_OK_(sprig_auth_group_create(S.auth, NULL, "all"));
    SPRIG_OK_(sprig_auth_group_grant(S.auth, NULL, "all", "*", "sprig"));
    SPRIG_OK_(sprig_auth_user_group(S.auth, NULL, USER, "all", true));
    o->open_access = false;
    o->auth = S.auth;
}

static void
seed_data(void)
{
    sprig_storage *st = sprig_server_storage(S.srv);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "oom", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    sprig_bytes id = sprig_str("d1");
    SPRIG_OK_(sprig_insert(db, "docs", &id, sprig_str("{\"w\":\"a\"}"), NULL));
    sprig_value v = sprig_value_of_bytes(sprig_str("value"));
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, NULL, NULL, NULL));
    sprig_db_close(db);
}

/* ======================================================================
 * The client side: libc only while armed.
 * ====================================================================== */

/* Read exactly n bytes: 1, 0 when the server closed, -1 on timeout. */
static int
rd(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = recv(fd, (char *)p + got, n - got, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            return 0;
        }
        if (r < 0 && errno == EAGAIN) {
            return -1;
        }
        got += r > 0 ? (size_t)r : 0;
    }
    return 1;
}

/* The next binary message into *out (malloc; caller frees): 1, 0 closed,
 * -1 timeout. */
static int
recv_msg(int fd, uint8_t **out, size_t *len)
{
    for (;;) {
        uint8_t h[2], e[8];
        int r = rd(fd, h, 2);
        if (r != 1) {
            return r;
        }
        uint64_t n = h[1] & 0x7f;
        size_t en = n == 126 ? 2 : n == 127 ? 8 : 0;
        if (en && (r = rd(fd, e, en)) != 1) {
            return r;
        }
        for (size_t i = 0; en && i < en; i++) {
            n = (i ? n : 0) << 8 | e[i];
        }
        uint8_t *p = malloc(n ? (size_t)n : 1);
        assert_non_null(p);
        if ((r = rd(fd, p, (size_t)n)) != 1 || (h[0] & 0x0f) == 0x8) {
            free(p);
            return r == 1 ? 0 : r; /* a close frame: closed */
        }
        if ((h[0] & 0x0f) == 0x2) {
            *out = p;
            *len = (size_t)n;
            return 1;
        }
        free(p);
    }
}

static sprig_buf
encode(const sprig__api *api, uint32_t id, const void *req)
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_request(&w, id, NULL, api->name);
    SPRIG_OK_(sprig__api_encode(&w, api->req, api->n_req, req));
    SPRIG_OK_(sprig__mp_wr_status(&w));
    return b;
}

/* Send a frame (consumed) and expect a response (failures off). */
static void
frame_ok(int fd, sprig_buf b)
{
    rw_send(fd, sprig_buf_bytes(&b));
    sprig_buf_clear(&b);
    uint8_t *m = NULL;
    size_t n = 0;
    assert_int_equal(recv_msg(fd, &m, &n), 1);
    sprig__frame f;
    SPRIG_OK_(sprig__frame_decode((sprig_bytes){m, n}, &f));
    if (f.kind != SPRIG__FRAME_RESPONSE) {
        fail_msg("error %d: %.*s", f.code, (int)f.message.len,
                 (const char *)f.message.data);
    }
    free(m);
}

static void
call_ok(int fd, const sprig__api *api, const void *req)
{
    frame_ok(fd, encode(api, 1, req));
}

static int
login(void)
{
    int fd = rw_open(S.port);
    sprig__auth_password_req r = {USER, PASSWORD};
    call_ok(fd, &sprig__api_auth_password, &r);
    return fd;
}

/* ======================================================================
 * The rows: each encodes its request for attempt n (failures off).
 * ====================================================================== */

typedef struct oom_row {
    const char *name;
    const sprig__api *api;
    sprig_buf (*frame)(unsigned long n);
    bool no_login; /* the request is the login */
} oom_row;

static sprig_buf
f_login(unsigned long n)
{
    (void)n;
    sprig__auth_password_req r = {USER, PASSWORD};
    return encode(&sprig__api_auth_password, 7, &r);
}

static sprig_buf
f_db_list(unsigned long n)
{
    (void)n;
    sprig__empty r = {0};
    return encode(&sprig__api_db_list, 7, &r);
}

static sprig_buf
f_get(unsigned long n)
{
    (void)n;
    sprig__get_req r = {"db", "docs", sprig_str("d1")};
    return encode(&sprig__api_get, 7, &r);
}

static sprig_buf
f_list(unsigned long n)
{
    (void)n;
    sprig__list_req r = {.db = "db", .collection = "docs", .limit = 10};
    return encode(&sprig__api_list, 7, &r);
}

static sprig_buf
f_apply(unsigned long n)
{
    static unsigned long seq; /* a new document each time */
    char id[32], body[64];
    snprintf(id, sizeof id, "n%lu", ++seq);
    snprintf(body, sizeof body, "{\"w\":\"b\",\"n\":%lu}", n);
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    sprig_bytes b = sprig_str(id);
    SPRIG_OK_(sprig_txn_insert(t, "docs", &b, sprig_str(body)));
    sprig__apply_req r = {"db", t};
    sprig_buf f = encode(&sprig__api_apply, 7, &r);
    sprig_txn_free(t);
    return f;
}

static sprig_buf
f_kv_set(unsigned long n)
{
    char val[32];
    snprintf(val, sizeof val, "v%lu", n);
    sprig__kv_set_req r = {.db = "db", .ns = "", .key = "k"};
    r.value = sprig_value_of_bytes(sprig_str(val));
    return encode(&sprig__api_kv_set, 7, &r);
}

static sprig_buf
f_kv_get(unsigned long n)
{
    (void)n;
    sprig__kv_get_req r = {"db", "", "k", false};
    return encode(&sprig__api_kv_get, 7, &r);
}

static sprig_buf
view_frame(const sprig__api *api)
{
    sprig__view_req r = {.db = "db"};
    sprig_view_query_init(&r.query.q, "docs", "by-w");
    r.query.collection = "docs";
    r.query.view = "by-w";
    return encode(api, 7, &r);
}

static sprig_buf
f_view_query(unsigned long n)
{
    (void)n;
    return view_frame(&sprig__api_view_query);
}

static sprig_buf
f_view_reduce(unsigned long n)
{
    (void)n;
    return view_frame(&sprig__api_view_reduce);
}

static sprig_buf
f_publish(unsigned long n)
{
    (void)n;
    sprig_bytes topic = sprig_str("t");
    sprig__publish_req r = {"db", {&topic, 1}, sprig_str("payload")};
    return encode(&sprig__api_publish, 7, &r);
}

static sprig_buf
f_subscriber_new(unsigned long n)
{
    (void)n;
    sprig__db_req r = {"db"};
    return encode(&sprig__api_subscriber_new, 7, &r);
}

static const oom_row rows[] = {
    {"auth.password (worker, login)", &sprig__api_auth_password, f_login, true},
    {"storage.list_databases (worker)", &sprig__api_db_list, f_db_list, false},
    {"db.get (cached read)", &sprig__api_get, f_get, false},
    {"db.list (worker)", &sprig__api_list, f_list, false},
    {"db.apply (submit, write)", &sprig__api_apply, f_apply, false},
    {"kv.set (submit, write)", &sprig__api_kv_set, f_kv_set, false},
    {"kv.get (cached read)", &sprig__api_kv_get, f_kv_get, false},
    {"view.query (worker)", &sprig__api_view_query, f_view_query, false},
    {"view.reduce (worker)", &sprig__api_view_reduce, f_view_reduce, false},
    {"pubsub.publish (loop)", &sprig__api_publish, f_publish, false},
    {"pubsub.subscriber_new (worker)", &sprig__api_subscriber_new,
     f_subscriber_new, false},
};

/* ======================================================================
 * An attempt, and the sweep.
 * ====================================================================== */

/* The live count back to the baseline once the server let go of the
 * connection (its session is freed on the loop thread, a subscriber on a
 * worker): at most 5 s.  CACHE_SLACK: caches the server keeps and frees
 * only when it stops may grow meanwhile -- the pool of read transactions
 * (env.c pool_put) gains a slot when a failure made a reader start a new
 * one.  A leak at one allocation point stays below it: ASan's (and
 * valgrind's) leak check at exit, after sprig_server_free, is what finds
 * those. */
#define CACHE_SLACK 8
static void
expect_no_leak(const oom_row *r, unsigned long n)
{
    for (int i = 0; i < 500 && sprig__alloc_live() > S.live; i++) {
        usleep(10000);
    }
    long live = sprig__alloc_live();
    if (live > S.first_live + CACHE_SLACK) {
        fail_msg("%s, allocation %lu failing: %ld allocations still live "
                 "after the connection closed (baseline %ld)",
                 r->name, n, live, S.first_live);
    }
    S.live = live > S.live ? live : S.live; /* a cache grew: accepted once */
}

/* What came back: an answer, SPRIG_ENOMEM with a message, or a close. */
static void
judge(const oom_row *r, unsigned long n, int got, const uint8_t *m, size_t len,
      bool hit)
{
    if (got < 0) {
        fail_msg("%s, allocation %lu failing: no answer in 5 s and the "
                 "connection still open",
                 r->name, n);
    }
    if (got == 0) {
        if (!hit) {
            fail_msg("%s: the connection closed with no failure", r->name);
        }
        return;
    }
    sprig__frame f;
    SPRIG_OK_(sprig__frame_decode((sprig_bytes){m, len}, &f));
    if (f.kind == SPRIG__FRAME_ERROR &&
        (f.code != SPRIG_ENOMEM || !hit || f.message.len == 0)) {
        fail_msg("%s, allocation %lu failing (%s): error %d %s: %.*s", r->name,
                 n, hit ? "reached" : "not reached", f.code,
                 sprig_strerror(f.code), (int)f.message.len,
                 (const char *)f.message.data);
    }
}

static bool
attempt(const oom_row *r, unsigned long n)
{
    int fd = r->no_login ? rw_open(S.port) : login();
    sprig_buf frame = r->frame(n);
    uint8_t *m = NULL;
    size_t len = 0;
    oom_arm(n);
    rw_send(fd, sprig_buf_bytes(&frame));
    int got = recv_msg(fd, &m, &len);
    bool hit = oom_disarm(n);
    sprig_buf_clear(&frame);
    judge(r, n, got, m, len, hit);
    free(m);
    close(fd);
    expect_no_leak(r, n);
    return hit;
}

/* A fresh connection reads, writes and queries: the server serves. */
static void
still_serving(void)
{
    int fd = login();
    frame_ok(fd, f_get(0));
    frame_ok(fd, f_kv_set(0));
    frame_ok(fd, f_apply(0));
    frame_ok(fd, f_view_reduce(0));
    close(fd);
    expect_no_leak(&rows[0], 0);
}

static void
test_oom_request(void **state)
{
    const oom_row *r = *state;
    unsigned long n = 1;
    while (attempt(r, n)) {
        assert_true(++n < MAX_POINTS);
    }
    still_serving();
    printf("oom server: %-34s %4lu allocation points\n", r->name, n - 1);
}

static int
group_setup(void **state)
{
    (void)state;
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("oom-server"));
    sprig_storage_options so;
    sprig_server_options o;
    rawws_server_options(&so, &o, dir);
    make_auth(&o);
    SPRIG_OK_(sprig_server_new(&so, &o, &S.srv));
    seed_data();
    SPRIG_OK_(sprig_server_start(S.srv));
    S.port = sprig_server_ws_port(S.srv);
    /* warm up: every row once, so caches (the open database, the views)
     * are made before the baseline is read */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int fd = login();
        frame_ok(fd, rows[i].frame(0));
        close(fd);
    }
    usleep(200000);
    S.live = S.first_live = sprig__alloc_live();
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    sprig__alloc_fail_after(0);
    sprig_server_free(S.srv);
    sprig_auth_free(S.auth);
    sprig_storage_close(S.auth_st);
    return 0;
}

#define N_ROWS (sizeof rows / sizeof rows[0])

int
main(void)
{
    if (oom_install()) {
        return 1;
    }
    struct CMUnitTest tests[N_ROWS];
    for (size_t i = 0; i < N_ROWS; i++) {
        tests[i] = (struct CMUnitTest){rows[i].name, test_oom_request, NULL,
                                       NULL, (void *)&rows[i]};
    }
    return cmocka_run_group_tests_name("test_oom_server", tests, group_setup,
                                       group_teardown);
}
