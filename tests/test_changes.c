/*
 * test_changes.c -- the changes feed (issue 15) through sprig.h, on a local
 * storage and through a server over ws:// (the same tests, conformance
 * style): arguments; the backlog in order, one collection's feed,
 * contents (and none once a document changed again), deletions, time-outs
 * and the wake-up fd; the switch from backlog to live under a concurrent
 * writer (every committed id once, in order, each transaction's changes
 * whole); resuming from sprig_changes_last() after the storage or the
 * server restarts; and a slow follower over the wire: a raw client that
 * stops reading while 12 MB of changes commit is neither disconnected nor
 * given anything twice, and gets everything when it reads again.
 */
#include "placement.h"
#include "rawws.h"

#include <poll.h>
#include <pthread.h>

static const sprig_collection_def cols[] = {{"a", SPRIG_ID_U64, 0},
                                            {"b", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"feed", cols, 2};
static const char *root;
static uint64_t seed;

typedef struct fx {
    placement p;
    sprig_db *db;
} fx;

static void
fx_open(fx *f, const char *kind)
{
    placement_open(&f->p, kind, root, &schema);
    SPRIG_OK_(sprig_storage_create_database(f->p.st, "main", "feed", false));
    SPRIG_OK_(sprig_storage_open_database(f->p.st, "main", &f->db));
}

static void
fx_close(fx *f)
{
    sprig_db_close(f->db);
    placement_close(&f->p);
}

static uint64_t
put(sprig_db *db, const char *coll, const char *id, const char *json)
{
    sprig_txn *t;
    sprig_txn_result *r;
    SPRIG_OK_(sprig_txn_new(&t));
    if (id) {
        SPRIG_OK_(sprig_txn_overwrite(t, coll, sprig_str(id), sprig_str(json)));
    } else {
        SPRIG_OK_(sprig_txn_insert(t, coll, NULL, sprig_str(json)));
    }
    SPRIG_OK_(sprig_txn_apply(db, t, &r));
    uint64_t txn = sprig_txn_result_id(r);
    sprig_txn_result_free(r);
    sprig_txn_free(t);
    return txn;
}

static bool
eq(sprig_bytes b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

static void
run_basics(const char *kind)
{
    fx f;
    fx_open(&f, kind);
    sprig_changes *c = NULL;
    sprig_change_event ev;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_changes_open(NULL, 0, NULL, 0, &c));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_changes_open(f.db, 0, NULL, 8, &c));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_changes_next(NULL, 0, &ev));
    assert_int_equal(sprig_changes_fd(NULL), -1);
    uint64_t t1 = put(f.db, "a", NULL, "{\"n\":1}");
    uint64_t t2 = put(f.db, "b", "x", "{\"n\":2}");
    uint64_t t3 = put(f.db, "b", "x", "{\"n\":3}"); /* x changed again */
    /* everything from the start, with contents */
    SPRIG_OK_(sprig_changes_open(f.db, 0, NULL, SPRIG_CHANGES_CONTENTS, &c));
    assert_true(sprig_changes_fd(c) >= 0);
    SPRIG_OK_(sprig_changes_next(c, 0, &ev));
    assert_true(ev.txn_id == t1 && strcmp(ev.collection, "a") == 0);
    assert_true(ev.revision == 1 && !ev.deleted && ev.has_contents);
    assert_true(eq(ev.contents, "{\"n\":1}"));
    assert_true(ev.timestamp_ms > 0);
    SPRIG_OK_(sprig_changes_next(c, 0, &ev));
    assert_true(ev.txn_id == t2 && eq(ev.id, "x") && ev.revision == 1);
    assert_false(ev.has_contents); /* x is at revision 2 by now */
    SPRIG_OK_(sprig_changes_next(c, 0, &ev));
    assert_true(ev.txn_id == t3 && ev.revision == 2 && ev.has_contents);
    assert_int_equal(sprig_changes_last(c), t3);
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_changes_next(c, 0, &ev));
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_changes_next(c, 50, &ev));
    /* live: the fd wakes, a deletion comes without contents */
    sprig_doc *d;
    SPRIG_OK_(sprig_get(f.db, "b", sprig_str("x"), &d));
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    sprig_header h = sprig_doc_header(d);
    SPRIG_OK_(sprig_txn_delete(t, "b", &h));
    SPRIG_OK_(sprig_txn_apply(f.db, t, NULL));
    sprig_txn_free(t);
    sprig_doc_free(d);
    struct pollfd pf = {sprig_changes_fd(c), POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 10000), 1);
    SPRIG_OK_(sprig_changes_next(c, 0, &ev));
    assert_true(ev.deleted && !ev.has_contents && eq(ev.id, "x"));
    assert_int_equal(ev.txn_id, t3 + 1);
    sprig_changes_close(c);
    /* one collection, from t1: b's changes only; a blocking wait */
    SPRIG_OK_(sprig_changes_open(f.db, t1, "b", 0, &c));
    SPRIG_OK_(sprig_changes_next(c, 0, &ev));
    assert_int_equal(ev.txn_id, t2);
    assert_false(ev.has_contents); /* not asked for */
    SPRIG_OK_(sprig_changes_next(c, 0, &ev));
    SPRIG_OK_(sprig_changes_next(c, 0, &ev));
    assert_true(ev.deleted);
    put(f.db, "a", NULL, "{}"); /* not b's */
    uint64_t t6 = put(f.db, "b", "y", "{}");
    SPRIG_OK_(sprig_changes_next(c, 10000, &ev));
    assert_int_equal(ev.txn_id, t6);
    assert_int_equal(sprig_changes_last(c), t6);
    sprig_changes_close(c);
    sprig_changes_close(NULL);
    fx_close(&f);
}

static void
test_basics_local(void **state)
{
    (void)state;
    run_basics("local");
}

static void
test_basics_ws(void **state)
{
    (void)state;
    run_basics("ws");
}

/* ---- backlog -> live under a concurrent writer ------------------------- */

#define WRITES 300

typedef struct writer_arg {
    sprig_db *db;
    uint64_t seed;
    uint32_t ops[WRITES]; /* operations of each transaction */
    uint64_t ids[WRITES];
} writer_arg;

static void *
writer_main(void *p)
{
    writer_arg *w = p;
    uint64_t s = w->seed;
    for (int i = 0; i < WRITES; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t n = 1 + (uint32_t)(s >> 33) % 3;
        sprig_txn *t;
        sprig_txn_result *r;
        SPRIG_OK_(sprig_txn_new(&t));
        for (uint32_t k = 0; k < n; k++) {
            char id[32];
            snprintf(id, sizeof id, "d%d-%u", i, k);
            SPRIG_OK_(k % 2 ? sprig_txn_insert(t, "a", NULL, sprig_str("{}"))
                            : sprig_txn_overwrite(t, "b", sprig_str(id),
                                                  sprig_str("{}")));
        }
        SPRIG_OK_(sprig_txn_apply(w->db, t, &r));
        w->ops[i] = n;
        w->ids[i] = sprig_txn_result_id(r);
        sprig_txn_result_free(r);
        sprig_txn_free(t);
    }
    return NULL;
}

static void
run_switch(const char *kind)
{
    fx f;
    fx_open(&f, kind);
    uint64_t start = put(f.db, "a", NULL, "{}");
    for (int i = 0; i < 40; i++) { /* a backlog */
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        put(f.db, "b", id, "{}");
    }
    writer_arg *w = calloc(1, sizeof *w);
    w->db = f.db;
    w->seed = seed;
    sprig_changes *c;
    SPRIG_OK_(sprig_changes_open(f.db, start, NULL, 0, &c));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_main, w), 0);
    /* read while the writer writes: backlog first, then live */
    uint64_t prev = start, n_in_txn = 0, seen_txns = 0, total = 0;
    uint64_t want_last = start + 40 + WRITES;
    uint32_t *count = calloc(WRITES + 41, sizeof *count);
    while (prev < want_last) {
        sprig_change_event ev;
        SPRIG_OK_(sprig_changes_next(c, 20000, &ev));
        assert_true(ev.txn_id >= prev); /* never back */
        if (ev.txn_id != prev) {
            assert_int_equal(ev.txn_id, prev + 1); /* no gap */
            seen_txns++;
            n_in_txn = 0;
        }
        prev = ev.txn_id;
        count[ev.txn_id - start - 1]++;
        n_in_txn++;
        total++;
    }
    pthread_join(th, NULL);
    sprig_change_event ev;
    int rc;
    while ((rc = sprig_changes_next(c, 0, &ev)) == SPRIG_OK) {
        assert_int_equal(ev.txn_id, want_last); /* the last one's rest */
        count[ev.txn_id - start - 1]++;
    }
    assert_int_equal(rc, SPRIG_ETIMEDOUT);
    assert_int_equal(sprig_changes_last(c), want_last);
    assert_int_equal(seen_txns, 40 + WRITES);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(count[i], 1);
    }
    for (int i = 0; i < WRITES; i++) { /* each transaction whole, once */
        assert_int_equal(w->ids[i], start + 41 + (uint64_t)i);
        assert_int_equal(count[40 + i], w->ops[i]);
    }
    (void)n_in_txn;
    (void)total;
    sprig_changes_close(c);
    free(count);
    free(w);
    fx_close(&f);
}

static void
test_switch_local(void **state)
{
    (void)state;
    run_switch("local");
}

static void
test_switch_ws(void **state)
{
    (void)state;
    run_switch("ws");
}

/* ---- resume after a restart ---------------------------------------------- */

static void
open_server(const char *dir, sprig_server **srv, sprig_client **cl,
            sprig_db **db)
{
    sprig_storage_options so;
    sprig_server_options o;
    rawws_server_options(&so, &o, dir);
    so.durability = SPRIG_DURABILITY_FULL; /* the restart must find it */
    SPRIG_OK_(sprig_server_new(&so, &o, srv));
    SPRIG_OK_(
        sprig_storage_register_schema(sprig_server_storage(*srv), &schema));
    SPRIG_OK_(sprig_storage_create_database(sprig_server_storage(*srv), "main",
                                            "feed", true));
    SPRIG_OK_(sprig_server_start(*srv));
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", sprig_server_ws_port(*srv));
    SPRIG_OK_(sprig_client_connect(url, NULL, cl));
    SPRIG_OK_(
        sprig_storage_open_database(sprig_client_storage(*cl), "main", db));
}

static void
close_server(sprig_server *srv, sprig_client *cl, sprig_db *db)
{
    sprig_db_close(db);
    sprig_client_close(cl);
    sprig_server_free(srv);
}

static void
test_resume_after_restart(void **state)
{
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/restart", root);
    sprig_server *srv;
    sprig_client *cl;
    sprig_db *db;
    open_server(dir, &srv, &cl, &db);
    uint64_t t[6];
    for (int i = 0; i < 3; i++) {
        t[i] = put(db, "a", NULL, "{}");
    }
    sprig_changes *c;
    sprig_change_event ev;
    SPRIG_OK_(sprig_changes_open(db, 0, NULL, 0, &c));
    SPRIG_OK_(sprig_changes_next(c, 10000, &ev));
    SPRIG_OK_(sprig_changes_next(c, 10000, &ev));
    uint64_t last = sprig_changes_last(c);
    assert_int_equal(last, t[1]);
    sprig_changes_close(c);
    close_server(srv, cl, db); /* the server goes away */
    open_server(dir, &srv, &cl, &db);
    for (int i = 3; i < 6; i++) {
        t[i] = put(db, "a", NULL, "{}");
    }
    SPRIG_OK_(sprig_changes_open(db, last, NULL, 0, &c));
    for (int i = 2; i < 6; i++) { /* exactly the rest, in order */
        SPRIG_OK_(sprig_changes_next(c, 10000, &ev));
        assert_int_equal(ev.txn_id, t[i]);
    }
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_changes_next(c, 0, &ev));
    sprig_changes_close(c);
    close_server(srv, cl, db);
}

/* ---- a slow follower over the wire --------------------------------------- */

#define SLOW_TXNS 3000
#define SLOW_DOC 4096

static void
test_slow_follower(void **state)
{
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/slow", root);
    sprig_storage_options so;
    sprig_server_options o;
    rawws_server_options(&so, &o, dir);
    o.max_send_queue = 1u << 20; /* over it, the server would close (1008) */
    sprig_server *srv;
    SPRIG_OK_(sprig_server_new(&so, &o, &srv));
    sprig_storage *st = sprig_server_storage(srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "main", "feed", false));
    SPRIG_OK_(sprig_server_start(srv));
    uv_loop_t loop;
    uv_loop_init(&loop);
    rawc k = {0};
    rawc_open(&k, &loop, sprig_server_ws_port(srv));
    sprig__changes_sub_req rq = {(char *)"main", (char *)"", 0, true};
    rawc_request(&k, &sprig__api_changes_subscribe, 1, &rq);
    sprig__frame fr;
    free(rawc_answer(&k, 1, &fr));
    assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
    /* the client stops reading (its loop does not run) while 12 MB of
     * changes with contents commit */
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "main", &db));
    char *doc = malloc(SLOW_DOC + 1);
    memset(doc, 'x', SLOW_DOC);
    doc[0] = '"';
    doc[SLOW_DOC - 1] = '"';
    doc[SLOW_DOC] = 0;
    for (int i = 0; i < SLOW_TXNS; i++) {
        put(db, "a", NULL, doc);
    }
    /* now read: every transaction once, in order, the connection open */
    uint64_t next = 1;
    while (next <= SLOW_TXNS) {
        rawmsg *m = rawc_next(&k, 20000);
        if (!m) {
            fail_msg("stalled at %llu (closed %d: %d %s)",
                     (unsigned long long)next, k.closed, k.code, k.reason);
        }
        SPRIG_OK_(sprig__frame_decode((sprig_bytes){m->data, m->len}, &fr));
        assert_int_equal(fr.kind, SPRIG__FRAME_PUSH);
        sprig__mp_rd r;
        sprig__mp_rd_init(&r, fr.payload);
        uint32_t nmap, n;
        sprig_bytes key;
        uint64_t v;
        SPRIG_OK_(sprig__mp_read_map(&r, &nmap));
        assert_int_equal(nmap, 2);
        SPRIG_OK_(sprig__mp_read_str(&r, &key)); /* feed */
        SPRIG_OK_(sprig__mp_read_u64(&r, &v));
        SPRIG_OK_(sprig__mp_read_str(&r, &key)); /* entries */
        SPRIG_OK_(sprig__mp_read_array(&r, &n));
        for (uint32_t i = 0; i < n; i++) {
            uint32_t three;
            SPRIG_OK_(sprig__mp_read_array(&r, &three));
            SPRIG_OK_(sprig__mp_read_u64(&r, &v));
            assert_int_equal(v, next); /* no gap, no duplicate */
            next++;
            SPRIG_OK_(sprig__mp_skip(&r)); /* timestamp */
            SPRIG_OK_(sprig__mp_skip(&r)); /* changes */
        }
        free(m);
    }
    assert_false(k.closed);
    free(doc);
    sprig_db_close(db);
    rawc_close(&k);
    uv_run(&loop, UV_RUN_DEFAULT); /* the connection's handles close */
    assert_int_equal(uv_loop_close(&loop), 0);
    sprig_server_free(srv);
}

int
main(void)
{
    root = tu_tmpdir("changes");
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics_local),
        cmocka_unit_test(test_basics_ws),
        cmocka_unit_test(test_switch_local),
        cmocka_unit_test(test_switch_ws),
        cmocka_unit_test(test_resume_after_restart),
        cmocka_unit_test(test_slow_follower),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
