/*
 * test_server_slow_reader.c -- a remote PubSub subscriber that stops
 * reading, then resumes (regression: it used to receive nothing ever
 * again once more than ~8 MiB of pushes had queued for it, though its
 * connection stayed open).
 *
 * A real server on 127.0.0.1 and a raw ws:// client (rawws.h) that
 * subscribes, then stops reading its socket (its loop does not run) while
 * the server program publishes 175 messages of 64 KiB (11 MiB) through its
 * own storage handle: the connection's send queue passes the high-water
 * mark and the server pauses the pushes (the test checks it did), the
 * subscriber's bounded queue keeping the newest.  The server's send queue
 * bound is 8 MiB (high-water mark 4 MiB), so the kernel's socket buffers
 * on loopback -- up to 4 MiB of send buffer here -- cannot absorb the
 * whole burst and hide the pause.  When the client reads again it must get the
 * backlog that was not dropped -- in order, without duplicates, ending
 * with the last message published -- and then every one of the messages
 * published afterwards.  A second round proves the pause can happen and
 * end again on the same connection.  Every wait is bounded.
 */
#include "testutil.h"

#include "rawws.h"
#include "server/server_int.h" /* the count of pauses */
#include "sprig/server.h"

#define MSG_SIZE (64 * 1024)
#define BACKLOG 175
#define AFTER 20

static const sprig_collection_def cols[] = {{"c", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"slow", cols, 1};

typedef struct fixture {
    sprig_server *srv;
    sprig_db *db; /* the server program's own handle */
    uv_loop_t loop;
    rawc k;
    uint32_t next_id;
    uint64_t sub;
    long next_seq; /* sequence number of the next message published */
    long last_seen;
} fixture;

static void
request(fixture *f, const sprig__api *api, const void *req, void *resp)
{
    uint32_t id = ++f->next_id;
    rawc_request(&f->k, api, id, req);
    sprig__frame fr;
    rawmsg *m = rawc_answer(&f->k, id, &fr);
    assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
    if (resp) {
        SPRIG_OK_(sprig__api_decode(fr.payload, api->resp, api->n_resp, resp));
    }
    free(m);
}

/* Publish `n` messages of MSG_SIZE bytes carrying their sequence number. */
static void
publish(fixture *f, int n)
{
    static uint8_t payload[MSG_SIZE];
    for (int i = 0; i < n; i++) {
        long seq = f->next_seq++;
        memset(payload, (int)(seq & 0xff), sizeof payload);
        memcpy(payload, &seq, sizeof seq);
        SPRIG_OK_(sprig_publish(f->db, sprig_str("t"),
                                (sprig_bytes){payload, sizeof payload}));
    }
}

/* Read pushes until the one numbered `until` arrived (or 10 s of
 * silence); each must come in order, whole.  Returns how many came. */
static long
receive_until(fixture *f, long until)
{
    long got = 0;
    while (f->last_seen < until) {
        rawmsg *m = rawc_next(&f->k, 10000);
        if (!m) {
            fail_msg("message %ld never arrived (last %ld, %ld this round)",
                     until, f->last_seen, got);
        }
        sprig__frame fr;
        SPRIG_OK_(sprig__frame_decode((sprig_bytes){m->data, m->len}, &fr));
        assert_int_equal(fr.kind, SPRIG__FRAME_PUSH);
        sprig__message_push p = {0};
        SPRIG_OK_(sprig__api_decode(fr.payload, sprig__message_push_fields,
                                    sprig__message_push_n, &p));
        assert_int_equal(p.subscriber, f->sub);
        assert_int_equal(p.payload.len, MSG_SIZE);
        long seq;
        memcpy(&seq, p.payload.data, sizeof seq);
        assert_true(seq > f->last_seen); /* in order, no duplicate */
        const uint8_t *b = p.payload.data;
        assert_int_equal(b[MSG_SIZE - 1], (uint8_t)(seq & 0xff));
        f->last_seen = seq;
        got++;
        free(m);
    }
    return got;
}

/* Stop reading, let the server fill the connection, then read again. */
static void
pause_and_resume(fixture *f)
{
    long first = f->next_seq;
    unsigned long pauses = atomic_load(&f->srv->pubsub_pauses);
    publish(f, BACKLOG); /* the client's loop is not running: no reads */
    for (int i = 0; i < 200 && atomic_load(&f->srv->pubsub_pauses) == pauses;
         i++) {
        usleep(10 * 1000); /* the server pushes what fits, then pauses */
    }
    assert_true(atomic_load(&f->srv->pubsub_pauses) > pauses);
    usleep(100 * 1000);
    long got = receive_until(f, first + BACKLOG - 1);
    print_message("backlog: %ld of %d arrived, the last one included\n", got,
                  BACKLOG);
    assert_true(got >= 64); /* what the connection held, at least */
    long after = f->next_seq;
    publish(f, AFTER);
    assert_int_equal(receive_until(f, after + AFTER - 1), AFTER);
}

static void
test_paused_subscriber_resumes(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof f);
    f.last_seen = -1;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/s", tu_tmpdir("slow_reader"));
    sprig_storage_options so;
    sprig_server_options o;
    rawws_server_options(&so, &o, dir);
    o.max_send_queue = 8u << 20;
    SPRIG_OK_(sprig_server_new(&so, &o, &f.srv));
    sprig_storage *st = sprig_server_storage(f.srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "main", "slow", false));
    SPRIG_OK_(sprig_storage_open_database(st, "main", &f.db));
    SPRIG_OK_(sprig_server_start(f.srv));
    uv_loop_init(&f.loop);
    rawc_open(&f.k, &f.loop, sprig_server_ws_port(f.srv));
    sprig__db_req nr = {(char *)"main"};
    sprig__subscriber_resp sr = {0};
    request(&f, &sprig__api_subscriber_new, &nr, &sr);
    f.sub = sr.subscriber;
    sprig__topic_req tr = {f.sub, sprig_str("t")};
    request(&f, &sprig__api_subscribe, &tr, NULL);
    pause_and_resume(&f);
    pause_and_resume(&f); /* and once more on the same connection */
    rawc_close(&f.k);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uv_loop_close(&f.loop);
    sprig_db_close(f.db);
    sprig_server_free(f.srv);
    tu_rmtree(tu_tmpdir("slow_reader"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paused_subscriber_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
