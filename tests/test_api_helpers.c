/*
 * test_api_helpers.c -- the C API's conveniences (issue 14 part 2, items
 * 2 and 3) on every placement (apitest.h): sprig_modify() retrying on a
 * real conflict, the lookup by a unique view's key, typed key-value reads
 * with their type-mismatch errors, typed reduce results, u64 ids without
 * scratch arrays, header copies and bulk inserts.
 */
#include "apitest.h"

#include <pthread.h>

/* ---- sprig_modify ----------------------------------------------------------
 */

typedef struct bump {
    sprig_db *db;
    int calls;
    int interfere; /* overwrite the document behind modify's back this
                      many times (a real concurrent writer) */
    int ret;       /* what to return when not 0 */
} bump;

/* Contents are a decimal counter; the new contents are counter + 1. */
static int
bump_fn(const sprig_doc *cur, sprig_buf *out, void *udata)
{
    bump *b = udata;
    b->calls++;
    if (b->ret) {
        return b->ret;
    }
    sprig_bytes c = sprig_doc_contents(cur);
    char text[32] = {0};
    memcpy(text, c.data, c.len < 31 ? c.len : 31);
    long v = strtol(text, NULL, 10);
    if (b->interfere > 0) {
        b->interfere--;
        char other[32];
        snprintf(other, sizeof other, "%ld", v + 100);
        SPRIG_OK_(sprig_overwrite(b->db, "users", sprig_doc_header(cur).id,
                                  sprig_str(other), NULL));
    }
    char next[32];
    int n = snprintf(next, sizeof next, "%ld", v + 1);
    return sprig_buf_append(out, next, (size_t)n);
}

static long
counter(sprig_db *db, const char *id)
{
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "users", sprig_str(id), &d));
    sprig_bytes c = sprig_doc_contents(d);
    char text[32] = {0};
    memcpy(text, c.data, c.len < 31 ? c.len : 31);
    sprig_doc_free(d);
    return strtol(text, NULL, 10);
}

static void
test_modify_retries_on_conflict(void **state)
{
    at_state *s = *state;
    sprig_bytes id = sprig_str("c");
    SPRIG_OK_(sprig_overwrite(s->db, "users", id, sprig_str("0"), NULL));
    sprig_header_buf out;
    bump b = {.db = s->db};
    SPRIG_OK_(sprig_modify(s->db, "users", id, 0, bump_fn, &b, &out));
    assert_int_equal(b.calls, 1);
    assert_int_equal(out.revision, 2);
    assert_int_equal(counter(s->db, "c"), 1);

    /* another writer changes it after each of the first two reads: two
     * conflicts, then the third attempt writes on top of the other's */
    b = (bump){.db = s->db, .interfere = 2};
    SPRIG_OK_(sprig_modify(s->db, "users", id, 3, bump_fn, &b, &out));
    assert_int_equal(b.calls, 3);
    assert_int_equal(counter(s->db, "c"), 202); /* 1 +100 +100 +1 */
    assert_int_equal(out.revision, 5);

    /* out of attempts: the conflict, with the stored header */
    b = (bump){.db = s->db, .interfere = 5};
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_modify(s->db, "users", id, 2, bump_fn, &b, &out));
    assert_int_equal(b.calls, 2);
    const sprig_error_detail *e = sprig_error_info();
    assert_int_equal(e->kind, SPRIG_ERROR_KIND_DOCUMENT);
    assert_true(e->has_header);
    assert_int_equal(e->header.revision, 7);
    assert_non_null(strstr(sprig_errmsg(), "2 attempts"));
    assert_int_equal(counter(s->db, "c"), 402);

    /* a positive return leaves it; a negative one stops with that code */
    b = (bump){.db = s->db, .ret = 1};
    SPRIG_OK_(sprig_modify(s->db, "users", id, 0, bump_fn, &b, &out));
    assert_int_equal(out.revision, 7);
    b = (bump){.db = s->db, .ret = SPRIG_EPERM};
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_modify(s->db, "users", id, 0, bump_fn, &b, NULL));
    assert_int_equal(counter(s->db, "c"), 402);

    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_modify(s->db, "users", sprig_str("no"),
                                               0, bump_fn, &b, NULL));
    assert_int_equal(sprig_error_info()->kind, SPRIG_ERROR_KIND_DOCUMENT);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_modify(s->db, "users", id, 0, NULL, NULL, NULL));
}

typedef struct racer {
    sprig_db *db;
    int n;
    int rc;
} racer;

static void *
race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < r->n && r->rc == 0; i++) {
        bump b = {.db = r->db};
        r->rc = sprig_modify(r->db, "users", sprig_str("race"), 1000, bump_fn,
                             &b, NULL);
    }
    return NULL;
}

static void
test_modify_concurrent_writers_lose_nothing(void **state)
{
    at_state *s = *state;
    SPRIG_OK_(sprig_overwrite(s->db, "users", sprig_str("race"), sprig_str("0"),
                              NULL));
    enum { T = 4, N = 25 };
    pthread_t th[T];
    racer r[T];
    for (int i = 0; i < T; i++) {
        r[i] = (racer){s->db, N, 0};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, 0);
    }
    assert_int_equal(counter(s->db, "race"), T * N);
}

/* ---- lookup by key ---------------------------------------------------------
 */

static void
test_get_by_unique_key(void **state)
{
    at_state *s = *state;
    sprig_bytes a = sprig_str("ann"), b = sprig_str("bob");
    SPRIG_OK_(sprig_insert(s->db, "users", &a, sprig_str("{\"email\":\"a@x\"}"),
                           NULL));
    SPRIG_OK_(sprig_insert(s->db, "users", &b, sprig_str("{\"email\":\"b@x\"}"),
                           NULL));
    sprig_doc *d = NULL;
    SPRIG_OK_(sprig_get_by_json_key(s->db, "users", "by_email", "\"b@x\"", &d));
    AT_BYTES_EQ(sprig_doc_header(d).id, "bob");
    AT_BYTES_EQ(sprig_doc_contents(d), "{\"email\":\"b@x\"}");
    sprig_doc_free(d);

    sprig_key_builder kb = {0};
    SPRIG_OK_(sprig_key_add_str(&kb, "a@x"));
    SPRIG_OK_(
        sprig_get_by_key(s->db, "users", "by_email", sprig_key_bytes(&kb), &d));
    AT_BYTES_EQ(sprig_doc_header(d).id, "ann");
    sprig_doc_free(d);
    sprig_key_builder_clear(&kb);

    SPRIG_EXPECT(
        SPRIG_ENOTFOUND,
        sprig_get_by_json_key(s->db, "users", "by_email", "\"c@x\"", &d));
    assert_null(d);
    const sprig_error_detail *e = sprig_error_info();
    assert_int_equal(e->kind, SPRIG_ERROR_KIND_VIEW);
    assert_string_equal(e->view, "by_email");
    assert_string_equal(e->collection, "users");
    assert_string_equal(e->database, "d");
    assert_true(e->key.len > 0);
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_get_by_json_key(s->db, "users", "nope", "1", &d));
    assert_int_equal(sprig_error_info()->kind, SPRIG_ERROR_KIND_VIEW);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_get_by_json_key(s->db, "users", "by_email", "{", &d));
}

/* ---- typed values ----------------------------------------------------------
 */

static void
test_typed_kv_reads(void **state)
{
    at_state *s = *state;
    sprig_value v = sprig_value_of_i64(-5);
    SPRIG_OK_(sprig_kv_set(s->db, "t", "i", &v, NULL, NULL, NULL));
    v = sprig_value_of_u64(UINT64_MAX);
    SPRIG_OK_(sprig_kv_set(s->db, "t", "bigu", &v, NULL, NULL, NULL));
    v = sprig_value_of_u64(7);
    SPRIG_OK_(sprig_kv_set(s->db, "t", "u", &v, NULL, NULL, NULL));
    v = sprig_value_of_f64(2.5);
    SPRIG_OK_(sprig_kv_set(s->db, "t", "f", &v, NULL, NULL, NULL));
    v = sprig_value_of_bytes(sprig_str("hello"));
    SPRIG_OK_(sprig_kv_set(s->db, "t", "b", &v, NULL, NULL, NULL));

    int64_t i = 1;
    uint64_t u = 1;
    double f = 1;
    sprig_buf b = {0};
    SPRIG_OK_(sprig_kv_get_i64(s->db, "t", "i", &i));
    assert_int_equal(i, -5);
    SPRIG_OK_(sprig_kv_get_i64(s->db, "t", "u", &i)); /* u64 that fits */
    assert_int_equal(i, 7);
    SPRIG_OK_(sprig_kv_get_u64(s->db, "t", "bigu", &u));
    assert_true(u == UINT64_MAX);
    SPRIG_OK_(sprig_kv_get_f64(s->db, "t", "f", &f));
    assert_true(f == 2.5);
    SPRIG_OK_(sprig_kv_get_bytes(s->db, "t", "b", &b));
    AT_BYTES_EQ(sprig_buf_bytes(&b), "hello");

    SPRIG_EXPECT(SPRIG_ERANGE, sprig_kv_get_i64(s->db, "t", "bigu", &i));
    assert_int_equal(i, 0);
    SPRIG_EXPECT(SPRIG_ERANGE, sprig_kv_get_u64(s->db, "t", "i", &u));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_get_i64(s->db, "t", "b", &i));
    assert_string_equal(sprig_errmsg(), "key 'b' holds bytes, not an integer");
    const sprig_error_detail *e = sprig_error_info();
    assert_int_equal(e->kind, SPRIG_ERROR_KIND_KEY);
    assert_string_equal(e->ns, "t");
    AT_BYTES_EQ(e->key, "b");
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_get_f64(s->db, "t", "i", &f));
    assert_string_equal(sprig_errmsg(), "key 'i' holds an i64, not an f64");
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_get_bytes(s->db, "t", "f", &b));
    assert_int_equal(b.len, 0);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get_u64(s->db, "t", "none", &u));
    assert_int_equal(sprig_error_info()->kind, SPRIG_ERROR_KIND_KEY);
    sprig_buf_clear(&b);
}

static void
expect_json_value(const char *json, sprig_value_kind kind, double num)
{
    sprig_value v;
    SPRIG_OK_(sprig_value_from_json(sprig_str(json), &v));
    assert_int_equal(v.kind, kind);
    if (kind == SPRIG_VALUE_I64) {
        assert_true(v.num.i64 == (int64_t)num);
    } else if (kind == SPRIG_VALUE_F64) {
        assert_true(v.num.f64 == num);
    }
}

static void
test_typed_reduce_results(void **state)
{
    at_state *s = *state;
    sprig_view_query q;
    sprig_value v;
    sprig_view_query_init(&q, "msgs", "by_cat");
    SPRIG_OK_(sprig_view_reduce_value(s->db, &q, &v)); /* no mappings */
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, 0);
    sprig_view_query_init(&q, "msgs", "by_cat_max");
    SPRIG_OK_(sprig_view_reduce_value(s->db, &q, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_NONE);

    const char *docs[] = {"{\"cat\":\"a\",\"n\":3}",
                          "{\"cat\":\"a\",\"n\":-10}",
                          "{\"cat\":\"b\",\"n\":4}"};
    for (int i = 0; i < 3; i++) {
        SPRIG_OK_(sprig_insert(s->db, "msgs", NULL, sprig_str(docs[i]), NULL));
    }
    sprig_view_query_init(&q, "msgs", "by_cat");
    SPRIG_OK_(sprig_view_reduce_value(s->db, &q, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, -3);
    sprig_view_query_init(&q, "msgs", "count");
    SPRIG_OK_(sprig_view_reduce_value(s->db, &q, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, 3);
    SPRIG_OK_(sprig_insert(s->db, "msgs", NULL,
                           sprig_str("{\"cat\":\"b\",\"n\":0.5}"), NULL));
    sprig_view_query_init(&q, "msgs", "by_cat_max");
    SPRIG_OK_(sprig_view_reduce_value(s->db, &q, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, 4);
    sprig_view_query_init(&q, "msgs", "by_cat");
    SPRIG_OK_(sprig_view_reduce_value(s->db, &q, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_F64);
    assert_true(v.num.f64 == -2.5);

    /* grouped: each value read the same way */
    sprig_mapping_list *l;
    SPRIG_OK_(sprig_view_reduce_grouped(s->db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 2);
    SPRIG_OK_(sprig_value_from_json(sprig_mapping_list_value(l, 0), &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, -7);
    SPRIG_OK_(sprig_value_from_json(sprig_mapping_list_value(l, 1), &v));
    assert_int_equal(v.kind, SPRIG_VALUE_F64);
    assert_true(v.num.f64 == 4.5);
    sprig_mapping_list_free(l);

    SPRIG_OK_(sprig_value_from_json(sprig_str("9223372036854775807"), &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_true(v.num.i64 == INT64_MAX);
    expect_json_value("-42", SPRIG_VALUE_I64, -42.0);
    SPRIG_OK_(sprig_value_from_json(sprig_str("18446744073709551615"), &v));
    assert_int_equal(v.kind, SPRIG_VALUE_U64);
    assert_true(v.num.u64 == UINT64_MAX);
    expect_json_value("-1e3", SPRIG_VALUE_F64, -1000.0);
    expect_json_value("null", SPRIG_VALUE_NONE, 0);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_value_from_json(sprig_str("\"x\""), &v));
    assert_int_equal(v.kind, SPRIG_VALUE_NONE);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_value_from_json(sprig_str("12abc"), &v));
    SPRIG_EXPECT(SPRIG_ERANGE,
                 sprig_value_from_json(sprig_str("-99999999999999999999"), &v));
}

/* ---- ids, headers, bulk inserts -------------------------------------------
 */

static void
test_u64_ids_and_header_copy(void **state)
{
    at_state *s = *state;
    sprig_header_buf hb;
    SPRIG_OK_(sprig_insert(s->db, "msgs", NULL, sprig_str("x"), NULL));
    SPRIG_OK_(sprig_insert(s->db, "msgs", NULL, sprig_str("y"), &hb));
    sprig_doc *d = NULL;
    SPRIG_OK_(sprig_get(s->db, "msgs", SPRIG_ID_U64(2), &d));
    uint64_t n = 0;
    SPRIG_OK_(sprig_doc_id_u64(d, &n));
    assert_int_equal(n, 2);
    sprig_header h = sprig_doc_header(d);
    SPRIG_OK_(sprig_header_id_u64(&h, &n));
    assert_int_equal(n, 2);

    /* the copy outlives the document it was borrowed from */
    sprig_header_buf copy;
    SPRIG_OK_(sprig_header_copy(&h, &copy));
    sprig_doc_free(d);
    assert_int_equal(copy.revision, hb.revision);
    assert_memory_equal(copy.hash, hb.hash, 16);
    sprig_header ch = sprig_header_of(&copy);
    SPRIG_OK_(sprig_update(s->db, "msgs", &ch, sprig_str("z"), NULL));

    sprig_header bad = {sprig_str("abc"), 1, {0}};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_header_id_u64(&bad, &n));
    static uint8_t big[SPRIG_ID_MAX + 1];
    bad.id = (sprig_bytes){big, sizeof big};
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_header_copy(&bad, &copy));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_header_copy(NULL, &copy));
}

static void
test_insert_many(void **state)
{
    at_state *s = *state;
    enum { N = 100 };
    sprig_bytes contents[N];
    char text[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "doc %d", i);
        contents[i] = sprig_str(text[i]);
    }
    sprig_header_list *hl = NULL;
    SPRIG_OK_(sprig_insert_many(s->db, "msgs", NULL, contents, N, &hl));
    assert_int_equal(sprig_header_list_count(hl), N);
    for (size_t i = 0; i < N; i++) {
        sprig_header h = sprig_header_list_get(hl, i);
        uint64_t id;
        SPRIG_OK_(sprig_header_id_u64(&h, &id));
        assert_int_equal(id, i + 1);
        assert_int_equal(h.revision, 1);
    }
    sprig_header_list_free(hl);
    sprig_doc *d;
    SPRIG_OK_(sprig_get(s->db, "msgs", SPRIG_ID_U64(57), &d));
    AT_BYTES_EQ(sprig_doc_contents(d), "doc 56");
    sprig_doc_free(d);

    /* natural ids, one a duplicate: nothing is inserted */
    sprig_bytes ids[3] = {sprig_str("p"), sprig_str("q"), sprig_str("p")};
    sprig_bytes uc[3] = {sprig_str("{}"), sprig_str("{}"), sprig_str("{}")};
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_insert_many(s->db, "users", ids, uc, 3, &hl));
    assert_null(hl);
    const sprig_error_detail *e = sprig_error_info();
    assert_int_equal(e->kind, SPRIG_ERROR_KIND_DOCUMENT);
    AT_BYTES_EQ(e->id, "p");
    uint64_t count = 9;
    SPRIG_OK_(sprig_count(s->db, "users", NULL, &count));
    assert_int_equal(count, 0);
    SPRIG_OK_(sprig_insert_many(s->db, "users", ids, uc, 2, NULL));
    SPRIG_OK_(sprig_count(s->db, "users", NULL, &count));
    assert_int_equal(count, 2);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert_many(s->db, "users", ids, uc, 0, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        AT_TEST(test_modify_retries_on_conflict),
        AT_TEST(test_modify_concurrent_writers_lose_nothing),
        AT_TEST(test_get_by_unique_key),
        AT_TEST(test_typed_kv_reads),
        AT_TEST(test_typed_reduce_results),
        AT_TEST(test_u64_ids_and_header_copy),
        AT_TEST(test_insert_many),
    };
    return at_run("api_helpers", tests, sizeof tests / sizeof *tests);
}
