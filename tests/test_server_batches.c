/*
 * test_server_batches.c -- writes the server submits to the engine
 * (rows whose `where` is SUBMIT: kv.set, kv.increment, kv.delete), over
 * real ws:// connections to a real server on 127.0.0.1 with full
 * durability (the plain-socket client of sockws.h).  It proves:
 *  - 50 connections pipelining durable key-value sets (16 in flight each)
 *    and document inserts beside them are all acknowledged, every
 *    acknowledged write is readable afterwards through the server
 *    program's own storage handle, and the writer committed them in
 *    shared batches: its statistics (sprig__db_writer_stats) show at
 *    least 4 requests per batch, which one commit per request can never
 *    show;
 *  - an error of a submitted write comes back as an error frame with its
 *    code and a message naming it (an increment of a bytes value, an
 *    increment that overflows, a document inserted twice, an update at a
 *    wrong revision -- with the result as the detail), and the connection
 *    goes on serving;
 *  - a shutdown with submissions in flight answers each of them or drops
 *    it with the connection, never crashes (ASan: no leak, no use after
 *    free), and every write acknowledged before it is on disk when the
 *    storage is opened again.
 */
#include "testutil.h"

#include "local/local.h"
#include "proto/api.h"
#include "proto/envelope.h"
#include "proto/mp.h"
#include "sockws.h"
#include "sprig/server.h"

#define CONNS 50
#define PIPE 16
#define ROUNDS 6

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"batches", cols, 1};

typedef struct fixture {
    char dir[1100];
    sprig_server *srv;
    int port;
} fixture;

static void
storage_opts(fixture *f, sprig_storage_options *so)
{
    sprig_storage_options_init(so);
    so->path = f->dir;
    so->durability = SPRIG_DURABILITY_FULL;
}

static void
start(fixture *f, const char *tag)
{
    snprintf(f->dir, sizeof f->dir, "%s", tu_tmpdir(tag));
    sprig_storage_options so;
    storage_opts(f, &so);
    char listen[] = "127.0.0.1:0";
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.open_access = true; /* tests of other parts: no authentication */
    o.ws_listen = listen;
    o.workers = 4;
    o.ping_interval_ms = 0;
    o.idle_timeout_ms = 0;
    SPRIG_OK_(sprig_server_new(&so, &o, &f->srv));
    sprig_storage *st = sprig_server_storage(f->srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "main", "batches", true));
    SPRIG_OK_(sprig_server_start(f->srv));
    f->port = sprig_server_ws_port(f->srv);
}

static void
send_set(int fd, uint32_t id, const char *key, const char *val)
{
    sprig__kv_set_req r = {.db = "main", .key = (char *)key};
    r.value.kind = SPRIG_VALUE_BYTES;
    r.value.bytes = sprig_str(val);
    rw_send_req(fd, &sprig__api_kv_set, id, &r);
}

static void
send_insert(int fd, uint32_t id, const char *doc_id, const char *contents)
{
    sprig__apply_req r = {.db = "main"};
    SPRIG_OK_(sprig_txn_new(&r.txn));
    sprig_bytes did = sprig_str(doc_id);
    SPRIG_OK_(sprig_txn_insert(r.txn, "docs", &did, sprig_str(contents)));
    rw_send_req(fd, &sprig__api_apply, id, &r);
    sprig_txn_free(r.txn);
}

/* The next answer on `fd` (false: the connection closed or went
 * silent); its kind, id and code in *f (bytes in `m`). */
static bool
next_answer(int fd, sprig_buf *m, sprig__frame *f)
{
    if (!rw_recv(fd, m)) {
        return false;
    }
    SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(m), f));
    return true;
}

static void
key_of(char *out, size_t n, int conn, int i)
{
    snprintf(out, n, "k-%02d-%04d", conn, i);
}

/* Every answer of one round: `n` responses, in any order of ids. */
static void
expect_answers(int fd, int n)
{
    sprig_buf m = {0};
    for (int i = 0; i < n; i++) {
        sprig__frame f;
        assert_true(next_answer(fd, &m, &f));
        if (f.kind != SPRIG__FRAME_RESPONSE) {
            fail_msg("request %u: error %d %.*s", f.id, f.code,
                     (int)f.message.len, (const char *)f.message.data);
        }
    }
    sprig_buf_clear(&m);
}

static void
check_readable(sprig_db *db)
{
    char key[32], want[48];
    for (int c = 0; c < CONNS; c++) {
        for (int i = 0; i < ROUNDS * PIPE; i++) {
            key_of(key, sizeof key, c, i);
            snprintf(want, sizeof want, "value of %s", key);
            sprig_value v;
            SPRIG_OK_(sprig_kv_get(db, NULL, key, false, &v));
            assert_int_equal(v.kind, SPRIG_VALUE_BYTES);
            assert_int_equal(v.bytes.len, strlen(want));
            assert_memory_equal(v.bytes.data, want, strlen(want));
            sprig_value_clear(&v);
        }
        for (int r = 0; r < ROUNDS; r++) {
            snprintf(key, sizeof key, "d-%02d-%d", c, r);
            sprig_doc *d;
            SPRIG_OK_(sprig_get(db, "docs", sprig_str(key), &d));
            sprig_doc_free(d);
        }
    }
}

/* 50 connections pipeline durable sets and inserts: all acknowledged,
 * all readable, committed in shared batches. */
static void
test_shared_batches(void **state)
{
    (void)state;
    fixture f;
    start(&f, "srv_batches");
    sprig_db *db;
    SPRIG_OK_(
        sprig_storage_open_database(sprig_server_storage(f.srv), "main", &db));
    int fds[CONNS];
    for (int c = 0; c < CONNS; c++) {
        fds[c] = rw_open(f.port);
    }
    uint64_t b0, r0, b1, r1;
    sprig__db_writer_stats(db, &b0, &r0);
    char key[32], val[48];
    for (int r = 0; r < ROUNDS; r++) {
        for (int c = 0; c < CONNS; c++) {
            for (int i = 0; i < PIPE; i++) {
                key_of(key, sizeof key, c, r * PIPE + i);
                snprintf(val, sizeof val, "value of %s", key);
                send_set(fds[c], (uint32_t)(r * PIPE + i + 1), key, val);
            }
            snprintf(key, sizeof key, "d-%02d-%d", c, r);
            send_insert(fds[c], 10000u + (uint32_t)r, key, "{\"n\":1}");
        }
        for (int c = 0; c < CONNS; c++) {
            expect_answers(fds[c], PIPE + 1);
        }
    }
    sprig__db_writer_stats(db, &b1, &r1);
    uint64_t batches = b1 - b0, requests = r1 - r0;
    printf("# %llu requests in %llu batches (%.1f per batch)\n",
           (unsigned long long)requests, (unsigned long long)batches,
           batches ? (double)requests / (double)batches : 0.0);
    assert_true(requests >= (uint64_t)CONNS * ROUNDS * (PIPE + 1));
    assert_true(batches > 0 && batches * 4 <= requests);
    check_readable(db);
    for (int c = 0; c < CONNS; c++) {
        close(fds[c]);
    }
    sprig_db_close(db);
    sprig_server_free(f.srv);
    tu_rmtree(f.dir);
}

/* Send one increment and expect an error frame with `code` whose message
 * contains `word`. */
/* Expect the answer `id` to be an error frame with `code` whose message
 * contains `word`; a conflict's detail (the result) is there. */
static void
expect_error(int fd, uint32_t id, int code, const char *word)
{
    sprig_buf m = {0};
    sprig__frame f;
    assert_true(next_answer(fd, &m, &f));
    assert_int_equal(f.id, id);
    assert_int_equal(f.kind, SPRIG__FRAME_ERROR);
    assert_int_equal(f.code, code);
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)f.message.len,
             (const char *)f.message.data);
    printf("# error %d: %s\n", f.code, msg);
    if (!strstr(msg, word)) {
        fail_msg("error message '%s' does not name '%s'", msg, word);
    }
    if (code == SPRIG_ECONFLICT) {
        assert_true(f.detail.len > 1); /* the result, not nil */
    }
    sprig_buf_clear(&m);
}

/* Send an increment of `key` by `amount` and expect it to fail with
 * `code`, naming `word`. */
static void
expect_incr_error(int fd, uint32_t id, const char *key, sprig_value amount,
                  int code, const char *word)
{
    sprig__kv_incr_req r = {.db = "main", .key = (char *)key, .amount = amount};
    rw_send_req(fd, &sprig__api_kv_incr, id, &r);
    expect_error(fd, id, code, word);
}

/* A transaction updating document `id` expecting `rev`. */
static void
send_update(int fd, uint32_t id, const char *doc_id, uint64_t rev)
{
    sprig__apply_req r = {.db = "main"};
    SPRIG_OK_(sprig_txn_new(&r.txn));
    sprig_header h = {.id = sprig_str(doc_id), .revision = rev};
    SPRIG_OK_(sprig_txn_update(r.txn, "docs", &h, sprig_str("{\"n\":2}")));
    rw_send_req(fd, &sprig__api_apply, id, &r);
    sprig_txn_free(r.txn);
}

/* A submitted write that fails is answered with an error frame naming
 * its cause; the connection keeps serving. */
static void
test_submitted_errors(void **state)
{
    (void)state;
    fixture f;
    start(&f, "srv_batches_err");
    int fd = rw_open(f.port);
    send_set(fd, 1, "text", "not a number");
    expect_answers(fd, 1);
    sprig_value one = {.kind = SPRIG_VALUE_I64, .num.i64 = 1};
    expect_incr_error(fd, 2, "text", one, SPRIG_EINVAL, "text");
    sprig__kv_set_req r = {.db = "main", .key = "big"};
    r.value.kind = SPRIG_VALUE_I64;
    r.value.num.i64 = INT64_MAX;
    rw_send_req(fd, &sprig__api_kv_set, 3, &r);
    expect_answers(fd, 1);
    expect_incr_error(fd, 4, "big", one, SPRIG_ERANGE, "above the range");
    /* documents: inserting an id twice, updating at a wrong revision */
    send_insert(fd, 6, "doc", "{\"n\":1}");
    expect_answers(fd, 1);
    send_insert(fd, 7, "doc", "{\"n\":1}");
    expect_error(fd, 7, SPRIG_ECONFLICT, "already exists");
    send_update(fd, 8, "doc", 99);
    expect_error(fd, 8, SPRIG_ECONFLICT, "revision does not match");
    send_update(fd, 9, "doc", 1);
    expect_answers(fd, 1);
    /* still serving: a good increment */
    sprig__kv_incr_req ok = {.db = "main", .key = "n", .amount = one};
    rw_send_req(fd, &sprig__api_kv_incr, 5, &ok);
    expect_answers(fd, 1);
    close(fd);
    sprig_server_free(f.srv);
    tu_rmtree(f.dir);
}

/* Count the answers on `fd` until it closes: acknowledged sets are
 * marked in `acked` (by request id - 1). */
static void
drain(int fd, bool *acked, int n)
{
    sprig_buf m = {0};
    sprig__frame f;
    while (next_answer(fd, &m, &f)) {
        if (f.kind == SPRIG__FRAME_RESPONSE && f.id >= 1 &&
            f.id <= (uint32_t)n) {
            acked[f.id - 1] = true;
        } else {
            assert_int_equal(f.kind, SPRIG__FRAME_ERROR);
        }
    }
    sprig_buf_clear(&m);
}

/* Shut down with submissions in flight: answered or dropped cleanly, and
 * every acknowledged write survives. */
static void
test_shutdown_in_flight(void **state)
{
    (void)state;
    enum { C = 8, N = 64 };
    fixture f;
    start(&f, "srv_batches_stop");
    int fds[C];
    char key[32], val[48];
    for (int c = 0; c < C; c++) {
        fds[c] = rw_open(f.port);
    }
    static bool acked[C][N];
    memset(acked, 0, sizeof acked);
    for (int c = 0; c < C; c++) {
        for (int i = 0; i < N; i++) {
            key_of(key, sizeof key, c, i);
            snprintf(val, sizeof val, "value of %s", key);
            send_set(fds[c], (uint32_t)i + 1, key, val);
        }
    }
    /* the first answer of each connection, then stop with the rest (and
     * the writes still arriving) in flight */
    sprig_buf m = {0};
    for (int c = 0; c < C; c++) {
        sprig__frame fr;
        assert_true(next_answer(fds[c], &m, &fr));
        assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
        acked[c][fr.id - 1] = true;
    }
    sprig_buf_clear(&m);
    SPRIG_OK_(sprig_server_shutdown(f.srv, 0));
    for (int c = 0; c < C; c++) {
        drain(fds[c], acked[c], N);
        close(fds[c]);
    }
    sprig_server_free(f.srv);
    sprig_storage_options so;
    storage_opts(&f, &so);
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&so, &st));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "main", &db));
    int n_acked = 0;
    for (int c = 0; c < C; c++) {
        for (int i = 0; i < N; i++) {
            key_of(key, sizeof key, c, i);
            sprig_value v;
            int rc = sprig_kv_get(db, NULL, key, false, &v);
            if (acked[c][i]) {
                n_acked++;
                SPRIG_OK_(rc);
            }
            if (rc == 0) {
                sprig_value_clear(&v);
            }
        }
    }
    printf("# %d of %d sets acknowledged before the shutdown\n", n_acked,
           C * N);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(f.dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_batches),
        cmocka_unit_test(test_submitted_errors),
        cmocka_unit_test(test_shutdown_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
