/*
 * test_server_order.c -- one connection's writes run in the order it sent
 * them, even when the first ones reach a server whose database handle is
 * not cached yet (they go to a worker while later ones could run on the
 * loop thread or on another worker).  Over a real ws:// connection (the
 * plain-socket client of sockws.h) to a real server on 127.0.0.1, on a
 * fresh server each round, so every round starts cold:
 *  - PIPE key-value sets of one key, values 1..PIPE, sent without waiting,
 *    each asking for the previous value: set i must find i-1 (a set that
 *    overtook another finds a later or an earlier value);
 *  - PIPE publishes to one topic, payloads 1..PIPE, sent without waiting:
 *    a subscriber of the server program's own storage receives them in
 *    that order.
 *  - a database created and written at once: the write, sent right behind
 *    the create, finds the database (the create runs on a worker; the
 *    write, not finding the new database's handle cached, went to
 *    another worker and ran first: SPRIG_ENOTFOUND).
 * Without the session's write lane (src/server/session.c) the last fails
 * in the first round; the first two are rarer races (a publish overtaking
 * one that went to a worker was seen 93 times in 900 on a loaded machine).
 */
#include "testutil.h"

#include "proto/api.h"
#include "proto/envelope.h"
#include "proto/mp.h"
#include "sockws.h"
#include "sprig/server.h"
#include "wrap_storage.h"

#define PIPE 200
#define ROUNDS 5
#define BURST 10
#define GAP_US 300

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"order", cols, 1};

/* A server on the local storage at `dir`, or (`wrapped`) on a wrapper of
 * it that opens database handles slowly and offers no submission, so
 * every write of the server runs on a worker (wrap_storage.h). */
static sprig_server *
start(const char *dir, bool wrapped, int *port)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = SPRIG_DURABILITY_NONE;
    char listen[] = "127.0.0.1:0";
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = listen;
    o.workers = 4;
    o.max_inflight = 2 * PIPE;
    o.open_access = true; /* ordering, not permissions, is tested here */
    o.ping_interval_ms = o.idle_timeout_ms = 0;
    sprig_server *srv;
    if (wrapped) {
        sprig_storage *in;
        SPRIG_OK_(sprig_storage_open(&so, &in));
        sprig_storage *w = wrap_storage_new(in);
        atomic_store(&((wrap_storage *)w)->open_delay_us, 2000);
        SPRIG_OK_(sprig_server_new_for(w, &o, &srv));
    } else {
        SPRIG_OK_(sprig_server_new(&so, &o, &srv));
    }
    sprig_storage *st = sprig_server_storage(srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    for (int i = 0; i < 2; i++) {
        int rc = sprig_storage_create_database(st, i ? "pub" : "main", "order",
                                               true);
        assert_true(rc == 0 || rc == SPRIG_EEXIST);
    }
    SPRIG_OK_(sprig_server_start(srv));
    *port = sprig_server_ws_port(srv);
    return srv;
}

/* Sets 1..PIPE of key "seq" (round r's values are r*PIPE + i), sent at
 * once; each answer's previous value must be the one before it. */
static void
sets_in_order(int fd, int r)
{
    for (uint32_t i = 1; i <= PIPE; i++) {
        sprig__kv_set_req q = {.db = "main", .key = "seq"};
        q.value.kind = SPRIG_VALUE_I64;
        q.value.num.i64 = (int64_t)r * PIPE + i;
        q.return_previous = true;
        rw_send_req(fd, &sprig__api_kv_set, i, &q);
        if (i % BURST == 0) {
            usleep(GAP_US); /* let the first ones reach the workers */
        }
    }
    sprig_buf m = {0};
    int out_of_order = 0;
    for (int n = 0; n < PIPE; n++) {
        sprig__frame f;
        assert_true(rw_recv(fd, &m));
        SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&m), &f));
        assert_int_equal(f.kind, SPRIG__FRAME_RESPONSE);
        sprig__kv_set_resp rs = {0};
        SPRIG_OK_(sprig__api_decode(f.payload, sprig__api_kv_set.resp,
                                    sprig__api_kv_set.n_resp, &rs));
        int64_t want = (int64_t)r * PIPE + f.id - 1;
        bool none = rs.previous.kind == SPRIG_VALUE_NONE;
        if (r == 0 && f.id == 1) {
            assert_true(none); /* the key's first set */
        } else if (none || rs.previous.num.i64 != want) {
            out_of_order++;
        }
        sprig__api_free(sprig__api_kv_set.resp, sprig__api_kv_set.n_resp, &rs);
    }
    sprig_buf_clear(&m);
    assert_int_equal(out_of_order, 0);
}

/* A database created and written at once (the write sent right behind
 * the create, without waiting): the write finds the database. */
static void
create_then_write(int fd, int r)
{
    char name[32];
    snprintf(name, sizeof name, "new%d", r);
    sprig__db_create_req c = {.name = name, .schema = "order"};
    rw_send_req(fd, &sprig__api_db_create, 1, &c);
    sprig__kv_set_req q = {.db = name, .key = "k"};
    q.value.kind = SPRIG_VALUE_I64;
    q.value.num.i64 = r;
    rw_send_req(fd, &sprig__api_kv_set, 2, &q);
    sprig_buf m = {0};
    for (int n = 0; n < 2; n++) {
        sprig__frame f;
        assert_true(rw_recv(fd, &m));
        SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&m), &f));
        if (f.kind != SPRIG__FRAME_RESPONSE) {
            fail_msg("request %u: error %d %.*s", f.id, f.code,
                     (int)f.message.len, (const char *)f.message.data);
        }
    }
    sprig_buf_clear(&m);
}

/* Publishes 1..PIPE to topic "t", sent at once, reach a subscriber in
 * that order. */
static void
publishes_in_order(int fd, sprig_subscriber *sub)
{
    char body[PIPE][16];
    for (uint32_t i = 1; i <= PIPE; i++) {
        snprintf(body[i - 1], sizeof body[0], "%u", i);
        sprig_bytes topic = sprig_str("t");
        sprig__publish_req q = {.db = "pub", .payload = sprig_str(body[i - 1])};
        q.topics.items = &topic;
        q.topics.n = 1;
        rw_send_req(fd, &sprig__api_publish, PIPE + i, &q);
        if (i % BURST == 0) {
            usleep(GAP_US);
        }
    }
    int out_of_order = 0;
    for (uint32_t i = 1; i <= PIPE; i++) {
        sprig_message *msg = NULL;
        SPRIG_OK_(sprig_subscriber_recv(sub, 5000, &msg));
        sprig_bytes p = sprig_message_payload(msg);
        if (p.len != strlen(body[i - 1]) ||
            memcmp(p.data, body[i - 1], p.len) != 0) {
            out_of_order++;
        }
        sprig_message_free(msg);
    }
    sprig_buf m = {0};
    for (int n = 0; n < PIPE; n++) { /* every publish was answered */
        sprig__frame f;
        assert_true(rw_recv(fd, &m));
        SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&m), &f));
        assert_int_equal(f.kind, SPRIG__FRAME_RESPONSE);
    }
    sprig_buf_clear(&m);
    assert_int_equal(out_of_order, 0);
}

static void
rounds(bool wrapped)
{
    const char *dir = tu_tmpdir(wrapped ? "order-wrapped" : "order");
    for (int r = 0; r < ROUNDS; r++) {
        int port;
        sprig_server *srv = start(dir, wrapped, &port);
        sprig_db *db; /* of "pub": "main" stays closed until the sets */
        SPRIG_OK_(
            sprig_storage_open_database(sprig_server_storage(srv), "pub", &db));
        sprig_subscriber *sub;
        SPRIG_OK_(sprig_subscriber_new(db, &sub));
        SPRIG_OK_(sprig_subscribe(sub, sprig_str("t")));
        int fd = rw_open(port);
        create_then_write(fd, r);
        sets_in_order(fd, r);
        publishes_in_order(fd, sub);
        close(fd);
        sprig_subscriber_free(sub);
        sprig_db_close(db);
        SPRIG_OK_(sprig_server_shutdown(srv, 1000));
        sprig_storage *st = sprig_server_storage(srv);
        sprig_server_free(srv);
        if (wrapped) {
            sprig_storage_close(st); /* sprig_server_new_for: ours */
        }
    }
}

static void
test_writes_keep_their_order_from_a_cold_start(void **state)
{
    (void)state;
    rounds(false);
}

/* Every write runs on a worker, four of them: without the lane the sets
 * and publishes of one connection would run in any order. */
static void
test_writes_keep_their_order_on_workers(void **state)
{
    (void)state;
    rounds(true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_keep_their_order_from_a_cold_start),
        cmocka_unit_test(test_writes_keep_their_order_on_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
