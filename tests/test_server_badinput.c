/*
 * test_server_badinput.c -- a Sprig server fed what a well-behaved client
 * never sends, at the level of protocol sprig/1 (the WebSocket framing
 * underneath has its own bad-input tests in test_ws.c).  It proves that
 * each of these gets the answer docs/protocol.md promises, and that after
 * each one the server still serves a separate, well-behaved client
 * (a sprig_client doing a write and a read):
 *  - a message that is not a frame (garbage, truncated at every byte, not
 *    an array, a wrong element count or kind, bytes after the frame, an
 *    id over 2^32, nesting deeper than 32, random mutations of valid
 *    frames): an error frame with id 0 (or the frame's id when it could
 *    be read) and code -14 naming the fault, and the connection stays open
 *    and answers the next valid request;
 *  - frames a client must not send (responses, errors, pushes), unknown
 *    API names, fields of the wrong MessagePack type, missing or
 *    duplicated fields, a payload that is not a map: error -14 with the
 *    request's id and a message naming the API or field;
 *  - a frame over max_frame: the connection is closed with 1009;
 *  - WebSocket frames cut short by a peer that goes away, and a request
 *    trickled in a byte at a time (answered all the same);
 *  - plain HTTP on the port: GET gets the 200 status page, POST 405, an
 *    upgrade without (or with another) subprotocol 400 with the reason;
 *  - a client that asks for many large documents and never reads its
 *    socket: the server bounds what it queues for it (the transport's
 *    send queue), drops that connection, and its memory (RssAnon of this
 *    process, sampled throughout) grows by far less than the answers it
 *    was asked for.
 * The garbage and the mutations come from the printed seed (SPRIG_SEED
 * replays them).  Every wait is bounded; servers stop themselves.
 */
#include "testutil.h"

#include "rawws.h"

#include "proto/api.h"
#include "proto/envelope.h"
#include "sprig/client.h"
#include "sprig/server.h"
#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#define KIB 1024
#define MIB (1024 * 1024)
#define MAX_FRAME (64 * KIB)

#if defined(__SANITIZE_ADDRESS__)
/* A small quarantine, so ASan does not hold freed answers (the memory
 * test measures what the server keeps, not what ASan keeps). */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}
#endif

static const sprig_collection_def cols[] = {{"msgs", SPRIG_ID_U64, 0},
                                            {"kv", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"bad", cols, 2};

static const char *root;
static uint64_t seed;

/* ---- the server under attack, and its well-behaved client --------------- */

typedef struct server {
    sprig_server *srv;
    int port;
    char url[64];
    sprig_client *good;
    sprig_db *good_db;
    int probes;
} server;

static server S;

static void
server_start(server *s, const char *name, size_t max_frame)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    sprig_storage_options so;
    sprig_server_options o;
    rawws_server_options(&so, &o, dir);
    o.max_frame = max_frame;
    SPRIG_OK_(sprig_server_new(&so, &o, &s->srv));
    sprig_storage *st = sprig_server_storage(s->srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "main", "bad", true));
    SPRIG_OK_(sprig_server_start(s->srv));
    s->port = sprig_server_ws_port(s->srv);
    snprintf(s->url, sizeof s->url, "ws://127.0.0.1:%d", s->port);
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.request_timeout_ms = 10000;
    SPRIG_OK_(sprig_client_connect(s->url, &co, &s->good));
    SPRIG_OK_(sprig_storage_open_database(sprig_client_storage(s->good), "main",
                                          &s->good_db));
    SPRIG_OK_(sprig_overwrite(s->good_db, "kv", sprig_str("k"), sprig_str("v"),
                              NULL));
}

static void
server_stop(server *s)
{
    sprig_db_close(s->good_db);
    sprig_client_close(s->good);
    sprig_server_free(s->srv);
    memset(s, 0, sizeof *s);
}

/* The separate client still gets its writes and reads served. */
static void
still_serving(server *s)
{
    char key[32], val[32];
    snprintf(key, sizeof key, "probe%d", s->probes);
    snprintf(val, sizeof val, "value %d", s->probes++);
    SPRIG_OK_(sprig_overwrite(s->good_db, "kv", sprig_str(key), sprig_str(val),
                              NULL));
    sprig_doc *d;
    SPRIG_OK_(sprig_get(s->good_db, "kv", sprig_str(key), &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), val));
    sprig_doc_free(d);
}

/* ---- a raw protocol client: the transport's, on the test's own loop ------ */

static uv_loop_t loop;

/* Run the test's loop for `ms` (no client: the loop's own handles). */
static void
spin(int ms)
{
    rawc k = {.loop = &loop};
    rawc_run_until(&k, NULL, ms);
}

static void
rc_open(rawc *k, int port)
{
    rawc_open(k, &loop, port);
}

static void
rc_send(rawc *k, sprig_bytes m)
{
    assert_false(k->closed);
    SPRIG_OK_(sprig__conn_send(k->c, m.data, m.len));
}

/* The next message from the server (owned by the caller: free()). */
static rawmsg *
rc_next(rawc *k)
{
    rawmsg *m = rawc_next(k, 5000);
    if (!m) {
        fail_msg("no answer (closed %d: %d %s)", k->closed, k->code, k->reason);
    }
    return m;
}

/* The structured detail of the last error frame expect_error_ read. */
static sprig__errinfo last_info;

/* The next message must be an error frame (id, code) whose message
 * contains `want` (exactly `want` when `exact`), with no response in its
 * detail (nil, or only the structured error_info). */
static void
expect_error_(rawc *k, uint32_t id, int code, const char *want, bool exact,
              const char *file, int line)
{
    rawmsg *m = rc_next(k);
    sprig__frame f;
    int rc = sprig__frame_decode((sprig_bytes){m->data, m->len}, &f);
    char text[600];
    snprintf(text, sizeof text, "%.*s", (int)f.message.len,
             (const char *)f.message.data);
    sprig__errinfo info;
    bool has_resp = true;
    bool ok = rc == 0 && f.kind == SPRIG__FRAME_ERROR && f.id == id &&
              f.code == code &&
              sprig__detail_errinfo(f.detail, &info, &has_resp) == 0 &&
              !has_resp &&
              (exact ? strcmp(text, want) == 0 : strstr(text, want) != NULL);
    if (!ok) {
        print_message("%s:%d: wanted error id %u code %d \"%s\"; got rc %d "
                      "kind %d id %u code %d \"%s\"\n",
                      file, line, id, code, want, rc, (int)f.kind, f.id, f.code,
                      text);
        free(m);
        fail();
    }
    last_info = info;
    free(m);
}
#define expect_error(k, id, code, want)                                        \
    expect_error_((k), (id), (code), (want), false, __FILE__, __LINE__)
#define expect_error_exact(k, id, code, want)                                  \
    expect_error_((k), (id), (code), (want), true, __FILE__, __LINE__)

/* ---- building frames ----------------------------------------------------- */

typedef struct fb {
    sprig_buf buf;
    sprig__mp_wr w;
} fb;

static sprig__mp_wr *
fb_start(fb *b)
{
    sprig_buf_clear(&b->buf);
    sprig__mp_wr_init(&b->w, &b->buf);
    return &b->w;
}

static sprig_bytes
fb_bytes(fb *b)
{
    SPRIG_OK_(sprig__mp_wr_status(&b->w));
    return sprig_buf_bytes(&b->buf);
}

/* {"db": "main", "collection": "kv", "id": <id>} */
static void
get_payload(sprig__mp_wr *w, const char *id)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "id");
    sprig__mp_bin(w, sprig_str(id));
}

/* A valid db.get of "k" with id `id`. */
static sprig_bytes
get_frame(fb *b, uint32_t id)
{
    sprig__mp_wr *w = fb_start(b);
    sprig__frame_request(w, id, NULL, "db.get");
    get_payload(w, "k");
    return fb_bytes(b);
}

/* The connection still answers a valid request: db.get of "k" is "v". */
static void
still_answers(rawc *k, uint32_t id)
{
    fb b = {0};
    rc_send(k, get_frame(&b, id));
    sprig_buf_clear(&b.buf);
    rawmsg *m = rc_next(k);
    sprig__frame f;
    SPRIG_OK_(sprig__frame_decode((sprig_bytes){m->data, m->len}, &f));
    assert_int_equal(f.kind, SPRIG__FRAME_RESPONSE);
    assert_int_equal(f.id, id);
    sprig__get_resp resp = {0};
    SPRIG_OK_(sprig__api_decode(f.payload, sprig__api_get.resp,
                                sprig__api_get.n_resp, &resp));
    assert_non_null(resp.doc);
    assert_true(tu_bytes_eq(sprig_doc_contents(resp.doc), "v"));
    sprig__api_free(sprig__api_get.resp, sprig__api_get.n_resp, &resp);
    free(m);
}

/* ---- messages that are not frames ---------------------------------------- */

static void
test_not_frames(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    fb b = {0};
    sprig__mp_wr *w;

    rc_send(&k, (sprig_bytes){"\xc1garbage", 8});
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "expected an array, found the reserved byte 0xc1");
    rc_send(&k, (sprig_bytes){"", 0}); /* an empty message */
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "message truncated: expected an array");
    w = fb_start(&b);
    sprig__mp_map(w, 1);
    sprig__mp_str(w, "a");
    sprig__mp_u64(w, 1);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO, "expected an array, found map");
    w = fb_start(&b);
    sprig__mp_str(w, "[0, 1, nil, \"db.get\", {}]");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO, "expected an array, found string");
    still_serving(&S);

    /* arrays that are not frames */
    w = fb_start(&b);
    sprig__mp_array(w, 2);
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 1);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO, "a frame has at least 3 elements");
    w = fb_start(&b);
    sprig__mp_array(w, 3);
    sprig__mp_u64(w, 9);
    sprig__mp_u64(w, 1);
    sprig__mp_nil(w);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO, "unknown frame kind 9");
    w = fb_start(&b);
    sprig__mp_array(w, 3);
    sprig__mp_str(w, "request");
    sprig__mp_u64(w, 1);
    sprig__mp_nil(w);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "expected an integer, found string");
    w = fb_start(&b);
    sprig__mp_array(w, 4);
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 3);
    sprig__mp_nil(w);
    sprig__mp_str(w, "db.get");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "a request frame has 5 elements, not 4");
    still_serving(&S);

    /* a valid frame with a byte after it */
    get_frame(&b, 5);
    sprig__mp_nil(&b.w);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO, "1 bytes after the frame");
    /* ids and sessions of the wrong shape */
    w = fb_start(&b);
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 1ull << 32);
    sprig__mp_nil(w);
    sprig__mp_str(w, "db.get");
    get_payload(w, "k");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "request id 4294967296 is over 2^32-1");
    w = fb_start(&b);
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, 0);
    sprig__mp_i64(w, -1);
    sprig__mp_nil(w);
    sprig__mp_str(w, "db.get");
    get_payload(w, "k");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "expected an unsigned integer, found -1");
    w = fb_start(&b);
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 6);
    sprig__mp_str(w, "session");
    sprig__mp_str(w, "db.get");
    get_payload(w, "k");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "expected an integer, found string");
    w = fb_start(&b);
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 7);
    sprig__mp_nil(w);
    sprig__mp_u64(w, 42); /* api */
    get_payload(w, "k");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "expected a string, found unsigned integer");
    still_answers(&k, 8);
    still_serving(&S);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
}

static void
test_truncated(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    fb b = {0};
    sprig_bytes full = get_frame(&b, 77);
    /* every proper prefix of a valid frame, each its own message */
    for (size_t cut = 1; cut < full.len; cut++) {
        rc_send(&k, (sprig_bytes){full.data, cut});
    }
    for (size_t cut = 1; cut < full.len; cut++) {
        expect_error(&k, 0, SPRIG_EPROTO, "");
    }
    /* a few exactly */
    rc_send(&k, (sprig_bytes){full.data, 1});
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "array claims 5 elements with 0 bytes left");
    rc_send(&k, (sprig_bytes){full.data, 5});
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "array claims 5 elements with 4 bytes left");
    rc_send(&k, (sprig_bytes){full.data, 6});
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "message truncated: 6 bytes wanted, 1 left");
    rc_send(&k, (sprig_bytes){full.data, 11}); /* the payload is missing */
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "message truncated: a value is missing");
    rc_send(&k, (sprig_bytes){full.data, full.len - 1});
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "message truncated: 1 bytes wanted, 0 left");
    /* a payload map that claims more pairs than it holds */
    sprig__mp_wr *w = fb_start(&b);
    sprig__frame_request(w, 79, NULL, "db.get");
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO,
                       "message truncated: a value is missing");
    still_answers(&k, 78);
    still_serving(&S);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
}

static void
test_deep_nesting(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    fb b = {0};
    /* depths around the limit of 32, and one far past it (a stack killer
     * for a naive recursive decoder), as the request's payload */
    const int depths[] = {31, 32, 33, 40, 60000};
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++) {
        sprig__mp_wr *w = fb_start(&b);
        sprig__frame_request(w, 9, NULL, "db.get");
        for (int d = 0; d < depths[i]; d++) {
            sprig__mp_array(w, 1);
        }
        sprig__mp_nil(w);
        rc_send(&k, fb_bytes(&b));
        if (depths[i] <= 32) {
            /* the frame decodes; the payload is no map */
            expect_error_exact(&k, 9, SPRIG_EPROTO,
                               "expected a map, found array");
        } else {
            expect_error_exact(&k, 0, SPRIG_EPROTO, "nesting deeper than 32");
        }
    }
    /* maps nested in a known field */
    sprig__mp_wr *w = fb_start(&b);
    sprig__frame_request(w, 10, NULL, "db.apply");
    sprig__mp_map(w, 1);
    sprig__mp_str(w, "txn");
    for (int d = 0; d < 100; d++) {
        sprig__mp_map(w, 1);
        sprig__mp_str(w, "k");
    }
    sprig__mp_nil(w);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO, "nesting deeper than 32");
    still_answers(&k, 11);
    still_serving(&S);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
}

/* Random bytes that do not start an array: never a frame. */
static void
test_random_garbage(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    uint64_t s = seed;
    uint8_t buf[512];
    for (int i = 0; i < 200; i++) {
        size_t n = 1 + tu_rand(&s) % sizeof buf;
        for (size_t j = 0; j < n; j++) {
            buf[j] = (uint8_t)tu_rand(&s);
        }
        if ((buf[0] >= 0x90 && buf[0] <= 0x9f) || buf[0] == 0xdc ||
            buf[0] == 0xdd) {
            buf[0] = 0xc1;
        }
        rc_send(&k, (sprig_bytes){buf, n});
        expect_error(&k, 0, SPRIG_EPROTO, "expected an array, found ");
    }
    still_answers(&k, 1);
    still_serving(&S);
    rawc_close(&k);
}

/* Valid read-only frames with one byte changed: each gets exactly one
 * well-formed answer, and the connection stays open. */
static void
test_mutations(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    uint64_t s = seed ^ 0x5eed;
    fb b = {0};
    int answers[4] = {0};
    for (int i = 0; i < 300; i++) {
        sprig__mp_wr *w = fb_start(&b);
        if (i % 2) {
            sprig__frame_request(w, 1000 + (uint32_t)i, NULL, "db.count");
            sprig__mp_map(w, 2);
            sprig__mp_str(w, "db");
            sprig__mp_str(w, "main");
            sprig__mp_str(w, "collection");
            sprig__mp_str(w, "kv");
        } else {
            sprig__frame_request(w, 1000 + (uint32_t)i, NULL, "db.get");
            get_payload(w, "k");
        }
        sprig_bytes f = fb_bytes(&b);
        uint8_t *p = (uint8_t *)f.data;
        size_t at = tu_rand(&s) % f.len;
        p[at] = (uint8_t)tu_rand(&s);
        rc_send(&k, f);
        rawmsg *m = rc_next(&k);
        sprig__frame a;
        if (sprig__frame_decode((sprig_bytes){m->data, m->len}, &a) != 0 ||
            (a.kind != SPRIG__FRAME_RESPONSE && a.kind != SPRIG__FRAME_ERROR)) {
            fail_msg("mutation %d (byte %zu): a malformed answer", i, at);
        }
        if (a.kind == SPRIG__FRAME_ERROR &&
            (a.code >= 0 || a.message.len == 0)) {
            fail_msg("mutation %d: error code %d", i, a.code);
        }
        answers[a.kind]++;
        free(m);
    }
    rawc_run_until(&k, NULL, 50);
    assert_null(k.head); /* one answer each, no more */
    print_message("mutations: %d responses, %d errors\n",
                  answers[SPRIG__FRAME_RESPONSE], answers[SPRIG__FRAME_ERROR]);
    assert_true(answers[SPRIG__FRAME_ERROR] > 0);
    still_answers(&k, 1);
    still_serving(&S);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
}

/* ---- frames a server must refuse ---------------------------------------- */

static void
test_wrong_kinds(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    fb b = {0};
    sprig__mp_wr *w = fb_start(&b);
    sprig__frame_response(w, 7);
    sprig__mp_map(w, 0);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 7, SPRIG_EPROTO, "a client sends requests");
    w = fb_start(&b);
    sprig__frame_error(w, 8, SPRIG_ENOTFOUND, "no such thing",
                       (sprig_bytes){NULL, 0});
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 8, SPRIG_EPROTO, "a client sends requests");
    w = fb_start(&b);
    sprig__frame_push(w, "pubsub.message");
    sprig__mp_map(w, 0);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 0, SPRIG_EPROTO, "a client sends requests");
    still_answers(&k, 9);
    still_serving(&S);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
}

static void
test_unknown_api(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    fb b = {0};
    sprig__mp_wr *w = fb_start(&b);
    sprig__frame_request(w, 5, NULL, "db.nope");
    get_payload(w, "k");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 5, SPRIG_EPROTO, "unknown API 'db.nope'");
    w = fb_start(&b);
    sprig__frame_request(w, 6, NULL, "");
    sprig__mp_map(w, 0);
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 6, SPRIG_EPROTO, "unknown API ''");
    /* a long name is cut in the message */
    char name[1001];
    memset(name, 'x', 1000);
    name[1000] = 0;
    w = fb_start(&b);
    sprig__frame_request(w, 7, NULL, name);
    sprig__mp_map(w, 0);
    rc_send(&k, fb_bytes(&b));
    char want[100];
    snprintf(want, sizeof want, "unknown API '%.64s'", name);
    expect_error_exact(&k, 7, SPRIG_EPROTO, want);
    /* a name that is a prefix of a real one, and one with a NUL */
    w = fb_start(&b);
    sprig__frame_request(w, 8, NULL, "db.ge");
    get_payload(w, "k");
    rc_send(&k, fb_bytes(&b));
    expect_error_exact(&k, 8, SPRIG_EPROTO, "unknown API 'db.ge'");
    w = fb_start(&b);
    sprig__mp_array(w, 5);
    sprig__mp_u64(w, 0);
    sprig__mp_u64(w, 9);
    sprig__mp_nil(w);
    sprig__mp_strn(w, "db.get\0x", 8);
    get_payload(w, "k");
    rc_send(&k, fb_bytes(&b));
    expect_error(&k, 9, SPRIG_EPROTO, "unknown API 'db.get");
    still_answers(&k, 10);
    still_serving(&S);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
}

/* One request whose payload the caller writes; expect `want` exactly. */
typedef void (*payload_fn)(sprig__mp_wr *w);

static void
expect_payload_error(rawc *k, uint32_t id, const char *api, payload_fn fn,
                     int code, const char *want)
{
    fb b = {0};
    sprig__mp_wr *w = fb_start(&b);
    sprig__frame_request(w, id, NULL, api);
    fn(w);
    rc_send(k, fb_bytes(&b));
    sprig_buf_clear(&b.buf);
    expect_error_exact(k, id, code, want);
}

/* A db.apply payload of one operation up to the operation's 6 elements,
 * which the caller writes. */
static void
one_op_txn(sprig__mp_wr *w)
{
    sprig__mp_map(w, 2);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "txn");
    sprig__mp_array(w, 1);
    sprig__mp_array(w, 6);
}

static void
p_db_int(sprig__mp_wr *w)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_u64(w, 42);
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "id");
    sprig__mp_bin(w, sprig_str("k"));
}

static void
p_id_array(sprig__mp_wr *w)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "id");
    sprig__mp_array(w, 0);
}

static void
p_txn_map(sprig__mp_wr *w)
{
    sprig__mp_map(w, 2);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "txn");
    sprig__mp_map(w, 0);
}

/* An operation with `kind` of the wrong type. */
static void
p_op_kind_str(sprig__mp_wr *w)
{
    one_op_txn(w);
    sprig__mp_str(w, "insert");
    sprig__mp_str(w, "msgs");
    sprig__mp_nil(w);
    sprig__mp_bin(w, sprig_str("x"));
    sprig__mp_nil(w);
    sprig__mp_nil(w);
}

static void
p_op_kind_unknown(sprig__mp_wr *w)
{
    one_op_txn(w);
    sprig__mp_u64(w, 9);
    sprig__mp_str(w, "msgs");
    sprig__mp_bin(w, sprig_str("x"));
    sprig__mp_bin(w, sprig_str("x"));
    sprig__mp_nil(w);
    sprig__mp_nil(w);
}

static void
p_op_short_hash(sprig__mp_wr *w)
{
    one_op_txn(w);
    sprig__mp_u64(w, 1);
    sprig__mp_str(w, "kv");
    sprig__mp_bin(w, sprig_str("k"));
    sprig__mp_bin(w, sprig_str("x"));
    sprig__mp_u64(w, 1);
    sprig__mp_bin(w, sprig_str("short"));
}

static void
p_update_no_rev(sprig__mp_wr *w)
{
    one_op_txn(w);
    sprig__mp_u64(w, 1);
    sprig__mp_str(w, "kv");
    sprig__mp_bin(w, sprig_str("k"));
    sprig__mp_bin(w, sprig_str("x"));
    sprig__mp_nil(w);
    sprig__mp_nil(w);
}

static void
p_order_negative(sprig__mp_wr *w)
{
    sprig__mp_map(w, 5);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "order");
    sprig__mp_i64(w, -1);
    sprig__mp_str(w, "limit");
    sprig__mp_u64(w, 0);
    sprig__mp_str(w, "headers_only");
    sprig__mp_bool(w, false);
}

static void
p_limit_huge(sprig__mp_wr *w)
{
    sprig__mp_map(w, 5);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "order");
    sprig__mp_u64(w, 0);
    sprig__mp_str(w, "limit");
    sprig__mp_u64(w, 1ull << 40);
    sprig__mp_str(w, "headers_only");
    sprig__mp_f64(w, 1.5);
}

static void
p_range_bad(sprig__mp_wr *w)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "range");
    sprig__mp_array(w, 2);
    sprig__mp_array(w, 2);
    sprig__mp_u64(w, 7);
    sprig__mp_nil(w);
    sprig__mp_array(w, 2);
    sprig__mp_u64(w, 0);
    sprig__mp_nil(w);
}

static void
p_ids_not_bytes(sprig__mp_wr *w)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "ids");
    sprig__mp_array(w, 2);
    sprig__mp_bin(w, sprig_str("k"));
    sprig__mp_bool(w, true);
}

static void
p_schema_bad_kind(sprig__mp_wr *w)
{
    sprig__mp_map(w, 1);
    sprig__mp_str(w, "schema");
    sprig__mp_array(w, 2);
    sprig__mp_str(w, "evil");
    sprig__mp_array(w, 1);
    sprig__mp_array(w, 3);
    sprig__mp_str(w, "c");
    sprig__mp_u64(w, 77);
    sprig__mp_u64(w, 0);
}

static void
p_nul_in_name(sprig__mp_wr *w)
{
    sprig__mp_map(w, 1);
    sprig__mp_str(w, "name");
    sprig__mp_strn(w, "main\0../x", 9);
}

static void
p_not_a_map(sprig__mp_wr *w)
{
    sprig__mp_array(w, 3);
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "kv");
    sprig__mp_bin(w, sprig_str("k"));
}

static void
p_key_not_str(sprig__mp_wr *w)
{
    sprig__mp_map(w, 1);
    sprig__mp_u64(w, 1);
    sprig__mp_str(w, "main");
}

static void
p_duplicate(sprig__mp_wr *w)
{
    sprig__mp_map(w, 4);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "id");
    sprig__mp_bin(w, sprig_str("k"));
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "other");
}

static void
p_missing_id(sprig__mp_wr *w)
{
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, "main");
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, "kv");
    sprig__mp_str(w, "unknown fields are ignored");
    sprig__mp_bin(w, sprig_str("k"));
}

static void
p_empty(sprig__mp_wr *w)
{
    sprig__mp_map(w, 0);
}

static void
test_bad_fields(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    static const struct {
        const char *api;
        payload_fn fn;
        const char *want;
        int code; /* 0: SPRIG_EPROTO */
    } cases[] = {
        {"db.get", p_db_int,
         "field 'db': expected a string, found unsigned integer"},
        {"db.get", p_id_array, "field 'id': expected binary, found array"},
        {"db.apply", p_txn_map, "field 'txn': expected an array, found map"},
        {"db.apply", p_op_kind_str,
         "field 'txn': expected an integer, found string"},
        {"db.apply", p_op_kind_unknown,
         "field 'txn': operation kind 9 is unknown"},
        {"db.apply", p_op_short_hash,
         "field 'txn': an expected hash has 16 bytes"},
        {"db.apply", p_update_no_rev,
         "field 'txn': update and delete need a revision"},
        {"db.list", p_order_negative,
         "field 'order': expected an unsigned integer, found -1"},
        {"db.list", p_limit_huge, "field 'limit': value over 2^32-1"},
        {"db.count", p_range_bad,
         "field 'range': range bound kind 7 is "
         "unknown"},
        {"db.get_multiple", p_ids_not_bytes,
         "field 'ids': expected binary, found bool"},
        {"storage.register_schema", p_schema_bad_kind,
         "field 'schema': collection 'c' has an unknown id kind 77",
         SPRIG_EINVAL},
        {"storage.database", p_nul_in_name,
         "field 'name': a string holds a NUL byte"},
        {"db.get", p_not_a_map, "expected a map, found array"},
        {"db.get", p_key_not_str, "expected a string, found unsigned integer"},
        {"db.get", p_duplicate, "field 'db' appears twice"},
        {"db.get", p_missing_id, "field 'id' is missing"},
        {"db.apply", p_empty, "field 'db' is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        expect_payload_error(&k, 100 + (uint32_t)i, cases[i].api, cases[i].fn,
                             cases[i].code ? cases[i].code : SPRIG_EPROTO,
                             cases[i].want);
        still_serving(&S);
    }
    still_answers(&k, 1);
    /* nothing of the refused writes was stored: "k" plus the probes */
    uint64_t n;
    SPRIG_OK_(sprig_count(S.good_db, "kv", NULL, &n));
    assert_int_equal(n, 1 + (uint64_t)S.probes);
    SPRIG_OK_(sprig_count(S.good_db, "msgs", NULL, &n));
    assert_int_equal(n, 0);
    rawc_close(&k);
}

/* Errors of the database, not of the protocol: the codes of sprig.h. */
/* Send a db.get of id "k" in `db`.`coll` as request `id`. */
static void
send_get(rawc *k, fb *b, uint32_t id, const char *db, const char *coll)
{
    sprig__mp_wr *w = fb_start(b);
    sprig__frame_request(w, id, NULL, "db.get");
    sprig__mp_map(w, 3);
    sprig__mp_str(w, "db");
    sprig__mp_str(w, db);
    sprig__mp_str(w, "collection");
    sprig__mp_str(w, coll);
    sprig__mp_str(w, "id");
    sprig__mp_bin(w, sprig_str("k"));
    rc_send(k, fb_bytes(b));
}

static void
test_bad_names(void **state)
{
    static rawc k; /* outlives a failed test: the loop may call it */
    rc_open(&k, S.port);
    fb b = {0};
    send_get(&k, &b, 1, "../../etc", "kv");
    expect_error(&k, 1, SPRIG_EINVAL, "../../etc");
    send_get(&k, &b, 2, "main", "nope");
    expect_error_exact(&k, 2, SPRIG_ESCHEMA,
                       "collection 'nope' is not in schema 'bad'");
    send_get(&k, &b, 3, "ghost", "kv");
    expect_error(&k, 3, SPRIG_ENOTFOUND, "ghost");
    assert_int_equal(last_info.kind, SPRIG_ERROR_KIND_DATABASE);
    assert_string_equal(last_info.database, "ghost");
    /* a collection name that is not UTF-8 comes back as valid UTF-8 */
    send_get(&k, &b, 4, "main", "\xff\xfe");
    expect_error_exact(&k, 4, SPRIG_ESCHEMA,
                       "collection '\xef\xbf\xbd\xef\xbf\xbd' is not in "
                       "schema 'bad'");
    /* ... and so do the names in its structured detail */
    assert_int_equal(last_info.kind, SPRIG_ERROR_KIND_COLLECTION);
    assert_string_equal(last_info.collection, "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(last_info.schema, "bad");
    assert_string_equal(last_info.database, "main");
    still_answers(&k, 5);
    still_serving(&S);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
}

/* ---- limits -------------------------------------------------------------- */

static void
test_over_max_frame(void **state)
{
    static rawc k, other;
    rc_open(&k, S.port);
    rc_open(&other, S.port);
    fb b = {0};
    sprig__mp_wr *w = fb_start(&b);
    sprig__frame_request(w, 1, NULL, "db.apply");
    one_op_txn(w);
    sprig__mp_u64(w, 0);
    sprig__mp_str(w, "msgs");
    sprig__mp_nil(w);
    static uint8_t big[MAX_FRAME + 1];
    sprig__mp_bin(w, (sprig_bytes){big, sizeof big});
    sprig__mp_nil(w);
    sprig__mp_nil(w);
    rc_send(&k, fb_bytes(&b));
    assert_true(rawc_run_until(&k, rawc_is_closed, 5000));
    assert_int_equal(k.code, SPRIG_WS_TOO_BIG);
    assert_non_null(strstr(k.reason, "limit of 65536"));
    assert_null(k.head); /* no answer: the frame was never read */
    still_answers(&other, 2);
    still_serving(&S);
    uint64_t n;
    SPRIG_OK_(sprig_count(S.good_db, "msgs", NULL, &n));
    assert_int_equal(n, 0);
    sprig_buf_clear(&b.buf);
    rawc_close(&k);
    rawc_close(&other);
}

/* ---- plain HTTP on the port ---------------------------------------------- */

static int
tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {0, 200 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Send `req`, read the whole answer until the server closes (<= 5 s). */
static void
http_exchange(const char *req, char *out, size_t cap)
{
    int fd = tcp_connect(S.port);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL),
                     (ssize_t)strlen(req));
    size_t n = 0;
    bool eof = false;
    for (int waited = 0; waited < 5000 && n + 1 < cap;) {
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r == 0) {
            eof = true;
            break;
        }
        if (r < 0) {
            waited += 200;
            continue;
        }
        n += (size_t)r;
    }
    out[n] = 0;
    close(fd);
    if (!eof) {
        fail_msg("the server kept the connection open: %.200s", out);
    }
}

static void
expect_http(const char *req, const char *status, const char *word)
{
    char out[8192];
    http_exchange(req, out, sizeof out);
    if (strncmp(out, status, strlen(status)) != 0 || !strstr(out, word)) {
        fail_msg("wanted \"%s\" with \"%s\", got: %.400s", status, word, out);
    }
}

static void
test_http(void **state)
{
    expect_http(
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 ",
        "\r\n\r\n{\"name\":\"sprig\",\"version\":\"" SPRIG_VERSION_STRING "\"");
    still_serving(&S);
    expect_http("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 ",
                "\r\n\r\n<!doctype html>"); /* the web console */
    still_serving(&S);
    expect_http("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 405 ", "GET");
    still_serving(&S);
    const char *upgrade = "GET / HTTP/1.1\r\nHost: x\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n%s\r\n";
    char req[1024];
    snprintf(req, sizeof req, upgrade, "");
    expect_http(req, "HTTP/1.1 400 ", "sprig.v1 is required");
    expect_http(req, "HTTP/1.1 400 ", "offered: none");
    still_serving(&S);
    snprintf(req, sizeof req, upgrade, "Sec-WebSocket-Protocol: sprig/2\r\n");
    expect_http(req, "HTTP/1.1 400 ", "sprig.v1 is required");
    still_serving(&S);
    expect_http("BREW /pot HTTP/9.9\r\n\r\n", "HTTP/1.1 ", "\r\n\r\n");
    still_serving(&S);
}

/* ---- a client that never reads ------------------------------------------- */

static long
rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "RssAnon: %ld kB", &kib) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return kib;
}

typedef struct sampler {
    pthread_mutex_t mu;
    bool stop;
    long peak;
} sampler;

static void *
sample(void *p)
{
    sampler *s = p;
    for (;;) {
        long v = rss_anon_kib();
        pthread_mutex_lock(&s->mu);
        s->peak = v > s->peak ? v : s->peak;
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            return NULL;
        }
        usleep(2000);
    }
}

/* A masked binary WebSocket frame (client to server). */
static size_t
ws_frame(uint8_t *out, const void *p, size_t n)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 0;
    out[h++] = 0x82;
    if (n < 126) {
        out[h++] = (uint8_t)(0x80 | n);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    }
    memcpy(out + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) {
        out[h + i] = ((const uint8_t *)p)[i] ^ key[i % 4];
    }
    return h + n;
}

/* A TCP connection upgraded by hand (sprig/1), the 101 head read. */
static int
raw_upgraded(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {0, 200 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char up[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Protocol: sprig/1\r\n\r\n";
    assert_int_equal(send(fd, up, strlen(up), MSG_NOSIGNAL),
                     (ssize_t)strlen(up));
    char head[1024];
    size_t hn = 0;
    while (hn + 1 < sizeof head && !memmem(head, hn, "\r\n\r\n", 4)) {
        ssize_t r = recv(fd, head + hn, 1, 0); /* the head only */
        assert_true(r == 1);
        hn++;
    }
    assert_memory_equal(head, "HTTP/1.1 101 ", 13);
    return fd;
}

/* WebSocket frames cut short: the peer goes away mid-frame, or sends a
 * request a byte at a time (which must still be answered). */
static void
test_truncated_ws(void **state)
{
    fb b = {0};
    uint8_t wire[256];
    sprig_bytes f = get_frame(&b, 5);
    size_t n = ws_frame(wire, f.data, f.len);
    for (size_t cut = 1; cut < n; cut += 7) {
        int fd = raw_upgraded(S.port, 0);
        assert_int_equal(send(fd, wire, cut, MSG_NOSIGNAL), (ssize_t)cut);
        close(fd);
    }
    still_serving(&S);
    int fd = raw_upgraded(S.port, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(send(fd, wire + i, 1, MSG_NOSIGNAL), 1);
        usleep(1000);
    }
    /* the answer: an unmasked binary frame holding response 5 */
    uint8_t in[512];
    size_t got = 0;
    for (int waited = 0; waited < 5000 && got < 2;) {
        ssize_t r = recv(fd, in + got, sizeof in - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else {
            waited += 200;
        }
    }
    assert_true(got >= 2);
    assert_int_equal(in[0], 0x82);
    size_t len = in[1] & 0x7f, h = 2;
    assert_true(len < 126);
    for (int waited = 0; waited < 5000 && got < h + len;) {
        ssize_t r = recv(fd, in + got, sizeof in - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else {
            waited += 200;
        }
    }
    assert_true(got >= h + len);
    sprig__frame fr;
    SPRIG_OK_(sprig__frame_decode((sprig_bytes){in + h, len}, &fr));
    assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
    assert_int_equal(fr.id, 5);
    close(fd);
    sprig_buf_clear(&b.buf);
    still_serving(&S);
}

#define SLOW_DOC (1 * MIB)
#define SLOW_TRIES 5000 /* 2 ms apart */

static void
test_slow_reader(void **state)
{
    /* a server of its own, with the default frame limit (16 MiB) */
    server s2;
    memset(&s2, 0, sizeof s2);
    server_start(&s2, "slow", 16 * MIB);
    char *doc = malloc(SLOW_DOC);
    memset(doc, 'd', SLOW_DOC);
    SPRIG_OK_(sprig_overwrite(s2.good_db, "kv", sprig_str("big"),
                              (sprig_bytes){doc, SLOW_DOC}, NULL));
    free(doc);

    /* upgrade by hand on a socket with a small receive buffer */
    int fd = raw_upgraded(s2.port, 16 * KIB);

    sampler smp = {PTHREAD_MUTEX_INITIALIZER, false, 0};
    long base = rss_anon_kib();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sample, &smp), 0);

    /* ask for the big document again and again, never reading, until the
     * server hangs up (our sends fail) */
    fb b = {0};
    uint8_t wire[256];
    int sent = 0;
    bool refused = false;
    for (int i = 0; i < SLOW_TRIES && !refused; i++) {
        sprig__mp_wr *w = fb_start(&b);
        sprig__frame_request(w, (uint32_t)i + 1, NULL, "db.get");
        get_payload(w, "big");
        sprig_bytes f = fb_bytes(&b);
        size_t n = ws_frame(wire, f.data, f.len);
        ssize_t r = send(fd, wire, n, MSG_NOSIGNAL);
        refused = r < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
        sent += r == (ssize_t)n;
        usleep(2000);
        if (i % 50 == 0) {
            still_serving(&s2);
        }
    }
    sprig_buf_clear(&b.buf);
    /* the server dropped the connection: draining it now ends early */
    size_t got = 0;
    bool eof = false;
    static char sink[256 * KIB];
    for (int waited = 0; waited < 10000 && !eof;) {
        ssize_t r = recv(fd, sink, sizeof sink, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            eof = true;
        } else {
            waited += 200;
        }
    }
    close(fd);
    pthread_mutex_lock(&smp.mu);
    smp.stop = true;
    pthread_mutex_unlock(&smp.mu);
    pthread_join(th, NULL);
    long growth = smp.peak - base;
    print_message("slow reader: %d requests sent, %zu bytes delivered, "
                  "RssAnon %ld -> peak %ld KiB (+%ld MiB)\n",
                  sent, got, base, smp.peak, growth / 1024);
    assert_true(refused);
    assert_true(eof);
    /* far less than the answers asked for (sent x 1 MiB) */
    assert_true(sent >= 100);
    assert_true(got < (size_t)32 * MIB);
    /* what it kept: the send queue bound (64 MiB) plus answers being made
     * by the workers, never the ~sent MiB asked for */
    assert_true(growth < 160 * 1024);
    still_serving(&s2);
    server_stop(&s2);
}

/* ---- the suite ----------------------------------------------------------- */

static int
group_setup(void **state)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    server_start(&S, "main", MAX_FRAME);
    return 0;
}

static int
group_teardown(void **state)
{
    server_stop(&S);
    spin(10);
    for (int i = 0; i < 100 && uv_loop_alive(&loop); i++) {
        spin(10);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

int
main(void)
{
    seed = tu_seed();
    root = tu_tmpdir("server_badinput");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_frames),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_random_garbage),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_wrong_kinds),
        cmocka_unit_test(test_unknown_api),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_over_max_frame),
        cmocka_unit_test(test_truncated_ws),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_slow_reader),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed ? 1 : 0;
}
