/*
 * test_envelope_server.c -- the request envelope of protocol sprig/1 as a
 * real server applies it (docs/protocol.md, "Frames"), over a real
 * connection (tests/rawws.h: a WebSocket client of its own, since these
 * are frames sprig_client never sends).  It proves:
 *  - a request id of 0 is refused with an error frame of id 0 and code -14
 *    naming the problem (id 0 is what an error frame carries when it
 *    answers no request in particular); so is an id over 2^32-1; the
 *    largest id, 2^32-1, is answered with that id;
 *  - a request naming a session is refused, with its own id, until
 *    sessions exist;
 *  - a view query may send nil for the key, keys and range its match kind
 *    does not use, and db.list nil for its range, and is answered as if it
 *    had sent an empty key, no keys, and the whole range;
 *  - after each refusal the same connection keeps serving.
 */
#include "sockws.h"

#include "proto/envelope.h"
#include "sprig/server.h"

static const sprig_view_def views[] = {
    {.name = "by_cat", .version = 1, .json_key = "cat"}};
static const sprig_collection_def cols[] = {
    {"msgs", SPRIG_ID_U64, 0, views, 1}};
static const sprig_schema_def schema = {"env", cols, 1};

static const char *root;
static sprig_server *srv;
static int fd = -1;

static int
setup(void **state)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = root;
    so.durability = SPRIG_DURABILITY_NONE;
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    o.workers = 2;
    SPRIG_OK_(sprig_server_new(&so, &o, &srv));
    sprig_storage *st = sprig_server_storage(srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "d", "env", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    SPRIG_OK_(
        sprig_insert(db, "msgs", NULL, sprig_str("{\"cat\":\"a\"}"), NULL));
    SPRIG_OK_(
        sprig_insert(db, "msgs", NULL, sprig_str("{\"cat\":\"b\"}"), NULL));
    sprig_db_close(db);
    SPRIG_OK_(sprig_server_start(srv));
    fd = rw_open(sprig_server_ws_port(srv));
    return 0;
}

static int
teardown(void **state)
{
    close(fd);
    sprig_server_free(srv);
    return 0;
}

/* Send a request frame [0, id, session, api, payload] encoded by hand,
 * the payload written by `payload` (an empty map when NULL). */
static void
send_request(uint64_t id, const uint64_t *session, const char *api,
             void (*payload)(sprig__mp_wr *))
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__mp_array(&w, 5);
    sprig__mp_u64(&w, SPRIG__FRAME_REQUEST);
    sprig__mp_u64(&w, id);
    if (session) {
        sprig__mp_u64(&w, *session);
    } else {
        sprig__mp_nil(&w);
    }
    sprig__mp_str(&w, api);
    if (payload) {
        payload(&w);
    } else {
        sprig__mp_map(&w, 0);
    }
    SPRIG_OK_(sprig__mp_wr_status(&w));
    rw_send(fd, sprig_buf_bytes(&b));
    sprig_buf_clear(&b);
}

/* The next frame: its kind and id must be these; an error's code must be
 * -14 and its message contain `want`.  Its payload is copied into
 * *payload when not NULL. */
static void
expect_frame(sprig__frame_kind kind, uint32_t id, const char *want,
             sprig_buf *payload)
{
    sprig_buf in = {0};
    assert_true(rw_recv(fd, &in));
    sprig__frame f;
    SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&in), &f));
    char msg[300] = "";
    if (f.kind == SPRIG__FRAME_ERROR) {
        snprintf(msg, sizeof msg, "%.*s", (int)f.message.len,
                 (const char *)f.message.data);
    }
    if (f.kind != kind || f.id != id || (want && !strstr(msg, want)) ||
        (kind == SPRIG__FRAME_ERROR && f.code != SPRIG_EPROTO)) {
        fail_msg("wanted kind %d id %u \"%s\"; got kind %d id %u code %d "
                 "\"%s\"",
                 (int)kind, id, want ? want : "", (int)f.kind, f.id, f.code,
                 msg);
    }
    if (payload) {
        payload->len = 0;
        SPRIG_OK_(sprig_buf_append(payload, f.payload.data, f.payload.len));
    }
    sprig_buf_clear(&in);
}

/* The connection still serves: a well-formed request is answered. */
static void
still_serves(uint32_t id)
{
    send_request(id, NULL, "storage.list_databases", NULL);
    expect_frame(SPRIG__FRAME_RESPONSE, id, NULL, NULL);
}

static void
test_request_ids(void **state)
{
    send_request(0, NULL, "storage.list_databases", NULL);
    expect_frame(SPRIG__FRAME_ERROR, 0, "request id 0 is reserved", NULL);
    still_serves(1);
    send_request(1ull << 32, NULL, "storage.list_databases", NULL);
    expect_frame(SPRIG__FRAME_ERROR, 0, "request id 4294967296 is over 2^32-1",
                 NULL);
    still_serves(2);
    send_request(UINT32_MAX, NULL, "storage.list_databases", NULL);
    expect_frame(SPRIG__FRAME_RESPONSE, UINT32_MAX, NULL, NULL);
    still_serves(3);
}

static void
test_sessions_refused(void **state)
{
    uint64_t session = 12;
    send_request(40, &session, "storage.list_databases", NULL);
    expect_frame(SPRIG__FRAME_ERROR, 40,
                 "request 40 has session 12, but sessions do not exist yet",
                 NULL);
    session = 0;
    send_request(41, &session, "storage.list_databases", NULL);
    expect_frame(SPRIG__FRAME_ERROR, 41, "sessions do not exist yet", NULL);
    still_serves(42);
}

/* view.query on by_cat matching all, with nil key, keys and range. */
static void
query_all_nils(sprig__mp_wr *w)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "d");
    sprig__mp_str(w, "with_docs");
    sprig__mp_bool(w, false);
    sprig__mp_str(w, "query");
    sprig__mp_array(w, 10);
    sprig__mp_str(w, "msgs");
    sprig__mp_str(w, "by_cat");
    sprig__mp_u64(w, SPRIG_MATCH_ALL);
    sprig__mp_nil(w); /* key */
    sprig__mp_nil(w); /* keys */
    sprig__mp_nil(w); /* range */
    sprig__mp_u64(w, SPRIG_ASC);
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, SPRIG_UPDATE_BEFORE);
    sprig__mp_nil(w);
}

/* db.count of msgs with range nil. */
static void
count_nil_range(sprig__mp_wr *w)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "d");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "msgs");
    sprig__mp_str(w, "range");
    sprig__mp_nil(w);
}

/* The number of elements of payload field `name` (an array), or of its
 * value when it is an unsigned integer. */
static uint64_t
field_size(sprig_bytes payload, const char *name)
{
    sprig__mp_rd r;
    uint32_t n, m;
    sprig__mp_rd_init(&r, payload);
    SPRIG_OK_(sprig__mp_read_map(&r, &n));
    for (uint32_t i = 0; i < n; i++) {
        sprig_bytes k;
        SPRIG_OK_(sprig__mp_read_str(&r, &k));
        if (tu_bytes_eq(k, name)) {
            uint64_t v;
            if (sprig__mp_peek(&r) == SPRIG__MP_UINT) {
                SPRIG_OK_(sprig__mp_read_u64(&r, &v));
                return v;
            }
            SPRIG_OK_(sprig__mp_read_array(&r, &m));
            return m;
        }
        SPRIG_OK_(sprig__mp_skip(&r));
    }
    fail_msg("no field %s", name);
    return 0;
}

static void
test_nil_for_unused_fields(void **state)
{
    sprig_buf p = {0};
    send_request(50, NULL, "view.query", query_all_nils);
    expect_frame(SPRIG__FRAME_RESPONSE, 50, NULL, &p);
    assert_int_equal(field_size(sprig_buf_bytes(&p), "mappings"), 2);
    send_request(51, NULL, "db.count", count_nil_range);
    expect_frame(SPRIG__FRAME_RESPONSE, 51, NULL, &p);
    assert_int_equal(field_size(sprig_buf_bytes(&p), "count"), 2);
    still_serves(52);
    sprig_buf_clear(&p);
}

int
main(void)
{
    root = tu_tmpdir("envelope_server");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_sessions_refused),
        cmocka_unit_test(test_nil_for_unused_fields),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed ? 1 : 0;
}
