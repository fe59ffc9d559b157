/*
 * test_api_edges.c -- edge cases of the C API (issue 14 part 2, item 4) on
 * every placement (apitest.h): sprig_kv_set refuses NaN with SPRIG_EINVAL
 * (through the public API and, on the server placements, in a raw kv.set
 * frame that no client checked); an empty key emitted into a lazy view is
 * refused without leaving the view unqueryable; the transaction log's page
 * size is capped (SPRIG_TXN_LOG_PAGE_MAX) and 0 means the default page.
 */
#include "apitest.h"
#include "rawws.h"

/* Send `req` for row `api` straight to the server of a ws placement (no
 * client-side checks) and expect an error frame with `code`.  Other
 * placements: nothing to do (wss needs TLS; local has no wire). */
static void
raw_expect(at_state *s, const sprig__api *api, const void *req, int code)
{
    if (strcmp(s->p.name, "ws") != 0 && strcmp(s->p.name, "wrapped") != 0) {
        return;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    static rawc k; /* outlives a failed test: the loop may call it */
    rawc_open(&k, &loop, sprig_server_ws_port(s->p.srv));
    rawc_login(&k, PLACEMENT_USER, PLACEMENT_PASSWORD);
    rawc_request(&k, api, 9, req);
    sprig__frame f;
    rawmsg *m = rawc_answer(&k, 9, &f);
    assert_int_equal(f.kind, SPRIG__FRAME_ERROR);
    assert_int_equal(f.code, code);
    free(m);
    rawc_close(&k);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void
test_kv_set_refuses_nan(void **state)
{
    at_state *s = *state;
    sprig_value v = sprig_value_of_f64(NAN), got;
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(s->db, "", "x", &v, NULL, NULL, NULL));
    assert_non_null(strstr(sprig_errmsg(), "NaN"));
    v = sprig_value_of_f64(-NAN);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(s->db, "", "x", &v, NULL, NULL, NULL));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(s->db, "", "x", false, &got));

    /* a stored number is left as it was */
    v = sprig_value_of_f64(1.5);
    SPRIG_OK_(sprig_kv_set(s->db, "", "x", &v, NULL, NULL, NULL));
    v = sprig_value_of_f64(NAN);
    sprig_kv_set_opts so = {.check = SPRIG_KV_ONLY_IF_PRESENT};
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(s->db, "", "x", &v, &so, NULL, NULL));
    double f = 0;
    SPRIG_OK_(sprig_kv_get_f64(s->db, "", "x", &f));
    assert_true(f == 1.5);
    /* infinities are numbers: still stored */
    v = sprig_value_of_f64(INFINITY);
    SPRIG_OK_(sprig_kv_set(s->db, "", "inf", &v, NULL, NULL, NULL));

    /* the server refuses it too, from a peer that did not check */
    sprig__kv_set_req req = {.db = "d", .ns = "", .key = "y"};
    req.value = sprig_value_of_f64(NAN);
    raw_expect(s, &sprig__api_kv_set, &req, SPRIG_EINVAL);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(s->db, "", "y", false, &got));
}

static void
test_empty_emitted_key_keeps_lazy_view_queryable(void **state)
{
    at_state *s = *state;
    const char *docs[] = {"a", "unit", "b"};
    for (int i = 0; i < 3; i++) {
        SPRIG_OK_(sprig_insert(s->db, "units", NULL, sprig_str(docs[i]), NULL));
    }
    __atomic_store_n(&at_unit_emit_rc, 1, __ATOMIC_SEQ_CST);
    sprig_view_query q;
    sprig_view_query_init(&q, "units", "units");
    sprig_mapping_list *l = NULL;
    SPRIG_OK_(sprig_view_query_mappings(s->db, &q, &l));
    assert_int_equal(__atomic_load_n(&at_unit_emit_rc, __ATOMIC_SEQ_CST),
                     SPRIG_EINVAL); /* the empty key was refused */
    assert_int_equal(sprig_mapping_list_count(l), 2);
    AT_BYTES_EQ(sprig_mapping_list_key(l, 0), "a");
    AT_BYTES_EQ(sprig_mapping_list_key(l, 1), "b");
    sprig_mapping_list_free(l);

    /* later queries keep working, and see later documents */
    SPRIG_OK_(sprig_insert(s->db, "units", NULL, sprig_str("c"), NULL));
    SPRIG_OK_(sprig_insert(s->db, "units", NULL, sprig_str("unit"), NULL));
    sprig_value v;
    SPRIG_OK_(sprig_view_reduce_value(s->db, &q, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, 3);
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_str("c");
    SPRIG_OK_(sprig_view_query_mappings(s->db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 1);
    sprig_mapping_list_free(l);
}

static void
test_txn_log_page_cap(void **state)
{
    at_state *s = *state;
    enum { N = SPRIG_TXN_LOG_PAGE_DEFAULT + 5 };
    for (int i = 0; i < N; i++) {
        SPRIG_OK_(sprig_insert(s->db, "msgs", NULL, sprig_str("{}"), NULL));
    }
    sprig_txn_log *log = NULL;
    SPRIG_OK_(sprig_list_executed_txns(s->db, 0, 0, &log));
    assert_int_equal(sprig_txn_log_count(log), SPRIG_TXN_LOG_PAGE_DEFAULT);
    assert_int_equal(sprig_txn_log_id(log, 0), 1);
    sprig_txn_log_free(log);
    SPRIG_OK_(sprig_list_executed_txns(s->db, 0, SPRIG_TXN_LOG_PAGE_MAX, &log));
    assert_int_equal(sprig_txn_log_count(log), N);
    sprig_txn_log_free(log);
    SPRIG_EXPECT(
        SPRIG_ETOOBIG,
        sprig_list_executed_txns(s->db, 0, SPRIG_TXN_LOG_PAGE_MAX + 1, &log));
    assert_null(log);
    assert_non_null(strstr(sprig_errmsg(), "SPRIG_TXN_LOG_PAGE_MAX"));
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_list_executed_txns(s->db, 0, UINT32_MAX, &log));

    /* a peer asking the server for any number of entries is refused */
    sprig__log_req req = {"d", 0, UINT32_MAX};
    raw_expect(s, &sprig__api_log, &req, SPRIG_ETOOBIG);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        AT_TEST(test_kv_set_refuses_nan),
        AT_TEST(test_empty_emitted_key_keeps_lazy_view_queryable),
        AT_TEST(test_txn_log_page_cap),
    };
    return at_run("api_edges", tests, sizeof tests / sizeof *tests);
}
