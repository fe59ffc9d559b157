/*
 * test_docs.c -- documents (F2, F3): pushed and natural ids, revisions and
 * hashes, identical contents, every conflict and not-found case, get,
 * get_multiple, list and count over ranges in both orders, the limits on
 * ids and contents, and a randomised run checked against an in-memory model
 * after every step.
 */
#include "testutil.h"

static const sprig_collection_def cols[] = {{"msgs", SPRIG_ID_U64, 0},
                                            {"kv", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"docs", cols, 2};

static const char *root;
static uint64_t seed;

static int
open_db(void **state)
{
    static int n;
    char p[1200];
    snprintf(p, sizeof p, "%s/d%d", root, n++);
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(p, &schema, &db));
    *state = db;
    return 0;
}

static int
close_db(void **state)
{
    sprig_db_close(*state);
    return 0;
}

static sprig_bytes
nid(const char *s)
{
    return sprig_str(s);
}

static void
test_push_and_get(void **state)
{
    sprig_db *db = *state;
    sprig_header_buf h, first;
    for (uint64_t i = 1; i <= 3; i++) {
        SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("hello"), &h));
        uint64_t id;
        SPRIG_OK_(sprig_key_decode_u64((sprig_bytes){h.id, h.id_len}, &id));
        assert_int_equal(id, i);
        assert_int_equal(h.revision, 1);
        if (i == 1) {
            first = h;
        }
    }
    /* the hash is a function of the contents (test_doc_hash.c checks
     * which one) */
    static const uint8_t zero[16];
    assert_memory_equal(h.hash, first.hash, 16);
    assert_memory_not_equal(h.hash, zero, 16);
    sprig_doc *d;
    uint8_t b[8];
    SPRIG_OK_(sprig_get(db, "msgs", sprig_id_u64(2, b), &d));
    sprig_header dh = sprig_doc_header(d);
    assert_int_equal(dh.revision, 1);
    assert_int_equal(dh.id.len, 8);
    assert_memory_equal(dh.id.data, b, 8);
    assert_true(tu_bytes_eq(sprig_doc_contents(d), "hello"));
    sprig_doc_free(d);
    d = (sprig_doc *)1;
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(db, "msgs", sprig_id_u64(9, b), &d));
    assert_null(d);
    /* explicit ids move the push sequence; deleted ids are not reused */
    SPRIG_OK_(
        sprig_insert(db, "msgs", &(sprig_bytes){b, 8}, sprig_str("x"), &h));
    SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("y"), &h));
    assert_memory_equal(h.id, sprig_id_u64(10, b).data, 8);
    sprig_header hh = sprig_header_of(&h);
    SPRIG_OK_(sprig_delete(db, "msgs", &hh));
    SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("z"), &h));
    assert_memory_equal(h.id, sprig_id_u64(11, b).data, 8);
}

static void
test_natural_ids_and_conflicts(void **state)
{
    sprig_db *db = *state;
    sprig_header_buf h1, h2, out;
    SPRIG_OK_(sprig_insert(db, "kv", &(sprig_bytes){"alice", 5},
                           sprig_str("v1"), &h1));
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_insert(db, "kv", &(sprig_bytes){"alice", 5},
                              sprig_str("other"), &out));
    assert_int_equal(out.revision, 1); /* the stored header */
    assert_memory_equal(out.id, "alice", 5);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert(db, "kv", NULL, sprig_str("v"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "natural ids"));

    sprig_header e1 = sprig_header_of(&h1);
    SPRIG_OK_(sprig_update(db, "kv", &e1, sprig_str("v2"), &h2));
    assert_int_equal(h2.revision, 2);
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_update(db, "kv", &e1, sprig_str("v3"), &out));
    assert_int_equal(out.revision, 2);
    assert_memory_equal(out.hash, h2.hash, 16);
    assert_non_null(strstr(sprig_errmsg(), "revision"));
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_delete(db, "kv", &e1));
    /* identical contents make no new revision, and log nothing */
    uint64_t last, last2;
    SPRIG_OK_(sprig_last_txn_id(db, &last));
    sprig_header e2 = sprig_header_of(&h2);
    SPRIG_OK_(sprig_update(db, "kv", &e2, sprig_str("v2"), &out));
    assert_int_equal(out.revision, 2);
    SPRIG_OK_(sprig_overwrite(db, "kv", nid("alice"), sprig_str("v2"), &out));
    assert_int_equal(out.revision, 2);
    SPRIG_OK_(sprig_last_txn_id(db, &last2));
    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_txns(db, last + 1, 0, &log));
    for (size_t i = 0; i < sprig_txn_log_count(log); i++) {
        assert_int_equal(sprig_txn_log_change_count(log, i), 0);
    }
    sprig_txn_log_free(log);
    /* overwrite: new and existing */
    SPRIG_OK_(sprig_overwrite(db, "kv", nid("bob"), sprig_str("b"), &out));
    assert_int_equal(out.revision, 1);
    SPRIG_OK_(sprig_overwrite(db, "kv", nid("alice"), sprig_str("v9"), &out));
    assert_int_equal(out.revision, 3);
    /* delete, then a header from before cannot touch the new document */
    sprig_header e3 = sprig_header_of(&out);
    SPRIG_OK_(sprig_delete(db, "kv", &e3));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_delete(db, "kv", &e3));
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_update(db, "kv", &e3, sprig_str("q"), NULL));
    SPRIG_OK_(sprig_insert(db, "kv", &(sprig_bytes){"alice", 5},
                           sprig_str("reborn"), &out));
    assert_int_equal(out.revision, 1);
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_delete(db, "kv", &e1));
    /* revision-only headers (zero hash) compare the number alone */
    sprig_header bare = {nid("alice"), 1, {0}};
    SPRIG_OK_(sprig_update(db, "kv", &bare, sprig_str("ok"), &out));
    assert_int_equal(out.revision, 2);
}

static void
test_argument_errors(void **state)
{
    sprig_db *db = *state;
    uint8_t big[SPRIG_ID_MAX + 1];
    memset(big, 'i', sizeof big);
    sprig_bytes bid = {big, sizeof big};
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_insert(db, "kv", &bid, sprig_str("x"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "limit"));
    bid.len = SPRIG_ID_MAX;
    SPRIG_OK_(sprig_insert(db, "kv", &bid, sprig_str("x"), NULL));
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "kv", bid, &d));
    sprig_doc_free(d);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert(db, "msgs", &(sprig_bytes){"abc", 3},
                              sprig_str("x"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "8 bytes"));
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_insert(db, "nope", NULL, sprig_str("x"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "'nope' is not in schema"));
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_get(db, "nope", nid("a"), &d));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert(db, "", NULL, sprig_str("x"), NULL));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert(NULL, "kv", NULL, sprig_str("x"), NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_get(db, "kv", (sprig_bytes){"", 0}, &d));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_update(db, "kv", NULL, sprig_str("x"), NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_delete(db, "kv", NULL));
    sprig_range bad = {{7, {0}}, {0, {0}}};
    sprig_doc_list *l;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_list(db, "kv", &bad, SPRIG_ASC, 0, &l));
    sprig_bytes huge = {big, (size_t)SPRIG_CONTENTS_MAX + 1};
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_overwrite(db, "kv", nid("h"), huge, NULL));
}

static void
test_contents_sizes(void **state)
{
    sprig_db *db = *state;
    size_t sizes[] = {0, 1, 4095, 4096, 70000, 3u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint8_t *buf = malloc(sizes[i] + 1);
        for (size_t j = 0; j < sizes[i]; j++) {
            buf[j] = (uint8_t)(j * 31 + i);
        }
        char idc[16];
        snprintf(idc, sizeof idc, "size%zu", i);
        SPRIG_OK_(sprig_overwrite(db, "kv", nid(idc),
                                  (sprig_bytes){buf, sizes[i]}, NULL));
        sprig_doc *d;
        SPRIG_OK_(sprig_get(db, "kv", nid(idc), &d));
        sprig_bytes c = sprig_doc_contents(d);
        assert_int_equal(c.len, sizes[i]);
        if (sizes[i]) {
            assert_memory_equal(c.data, buf, sizes[i]);
        }
        sprig_doc_free(d);
        free(buf);
    }
}

static void
fill_letters(sprig_db *db)
{
    for (char c = 'a'; c <= 'j'; c++) {
        char id[2] = {c, 0};
        SPRIG_OK_(
            sprig_insert(db, "kv", &(sprig_bytes){id, 1}, sprig_str(id), NULL));
    }
}

/* List with a range and check the ids, as a string of letters. */
static void
expect_list(sprig_db *db, sprig_bound s, sprig_bound e, sprig_order o,
            uint32_t limit, const char *want)
{
    sprig_range r = {s, e};
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "kv", &r, o, limit, &l));
    char got[32] = {0};
    for (size_t i = 0; i < sprig_doc_list_count(l); i++) {
        sprig_header h = sprig_doc_header(sprig_doc_list_get(l, i));
        got[i] = *(const char *)h.id.data;
    }
    assert_null(sprig_doc_list_get(l, sprig_doc_list_count(l)));
    sprig_doc_list_free(l);
    assert_string_equal(got, want);
    sprig_header_list *hl;
    SPRIG_OK_(sprig_list_headers(db, "kv", &r, o, limit, &hl));
    assert_int_equal(sprig_header_list_count(hl), strlen(want));
    for (size_t i = 0; i < sprig_header_list_count(hl); i++) {
        sprig_header h = sprig_header_list_get(hl, i);
        assert_int_equal(*(const char *)h.id.data, want[i]);
        assert_int_equal(h.revision, 1);
    }
    sprig_header_list_free(hl);
    if (limit == 0) {
        uint64_t n;
        SPRIG_OK_(sprig_count(db, "kv", &r, &n));
        assert_int_equal(n, strlen(want));
    }
}

#define INC(s) ((sprig_bound){SPRIG_INCLUDED, {s, 1}})
#define EXC(s) ((sprig_bound){SPRIG_EXCLUDED, {s, 1}})
#define UNB ((sprig_bound){SPRIG_UNBOUNDED, {0}})

static void
test_list_ranges(void **state)
{
    sprig_db *db = *state;
    fill_letters(db);
    expect_list(db, UNB, UNB, SPRIG_ASC, 0, "abcdefghij");
    expect_list(db, UNB, UNB, SPRIG_DESC, 0, "jihgfedcba");
    expect_list(db, UNB, UNB, SPRIG_ASC, 3, "abc");
    expect_list(db, UNB, UNB, SPRIG_DESC, 2, "ji");
    expect_list(db, INC("c"), INC("f"), SPRIG_ASC, 0, "cdef");
    expect_list(db, EXC("c"), EXC("f"), SPRIG_ASC, 0, "de");
    expect_list(db, INC("c"), INC("f"), SPRIG_DESC, 0, "fedc");
    expect_list(db, EXC("c"), EXC("f"), SPRIG_DESC, 0, "ed");
    expect_list(db, INC("0"), INC("b"), SPRIG_ASC, 0, "ab");
    expect_list(db, INC("i"), INC("z"), SPRIG_DESC, 0, "ji");
    expect_list(db, INC("x"), UNB, SPRIG_ASC, 0, "");
    expect_list(db, UNB, INC("0"), SPRIG_DESC, 0, "");
    expect_list(db, INC("f"), INC("c"), SPRIG_ASC, 0, "");
    expect_list(db, INC("f"), INC("c"), SPRIG_DESC, 0, "");
    expect_list(db, INC("d"), INC("d"), SPRIG_DESC, 0, "d");
    expect_list(db, EXC("d"), INC("d"), SPRIG_ASC, 0, "");
    expect_list(db, UNB, EXC("c"), SPRIG_DESC, 0, "ba");
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "kv", NULL, &n));
    assert_int_equal(n, 10);
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &n));
    assert_int_equal(n, 0);
}

static void
test_get_multiple(void **state)
{
    sprig_db *db = *state;
    fill_letters(db);
    sprig_bytes ids[] = {nid("c"), nid("zz"), nid("a"), nid("c")};
    sprig_doc_list *l;
    SPRIG_OK_(sprig_get_multiple(db, "kv", ids, 4, &l));
    assert_int_equal(sprig_doc_list_count(l), 3);
    assert_true(tu_bytes_eq(sprig_doc_contents(sprig_doc_list_get(l, 0)), "c"));
    assert_true(tu_bytes_eq(sprig_doc_contents(sprig_doc_list_get(l, 1)), "a"));
    sprig_doc_list_free(l);
    SPRIG_OK_(sprig_get_multiple(db, "kv", NULL, 0, &l));
    assert_int_equal(sprig_doc_list_count(l), 0);
    sprig_doc_list_free(l);
    sprig_doc_list_free(NULL);
}

/* ---- randomised model check ------------------------------------------- */

#define MODEL_IDS 40

typedef struct model {
    bool present[MODEL_IDS];
    uint64_t rev[MODEL_IDS];
    char val[MODEL_IDS][8];
} model;

static void
model_id(int i, char out[4])
{
    snprintf(out, 4, "%02d", i);
}

static void
random_op(sprig_db *db, model *m, uint64_t *s)
{
    int i = (int)(tu_rand(s) % MODEL_IDS), op = (int)(tu_rand(s) % 5);
    char id[4], val[8];
    model_id(i, id);
    snprintf(val, sizeof val, "v%u", (unsigned)(tu_rand(s) % 4));
    sprig_header hdr = {nid(id), m->rev[i], {0}};
    bool stale = tu_rand(s) % 4 == 0;
    if (stale) {
        hdr.revision += 1;
    }
    sprig_header_buf out;
    int rc, want;
    bool same = m->present[i] && strcmp(m->val[i], val) == 0;
    switch (op) {
    case 0:
        rc =
            sprig_insert(db, "kv", &(sprig_bytes){id, 2}, sprig_str(val), &out);
        want = m->present[i] ? SPRIG_ECONFLICT : SPRIG_OK;
        if (rc == 0) {
            m->rev[i] = 1;
        }
        break;
    case 1:
        rc = sprig_overwrite(db, "kv", nid(id), sprig_str(val), &out);
        want = SPRIG_OK;
        m->rev[i] = !m->present[i] ? 1 : m->rev[i] + (same ? 0 : 1);
        break;
    case 2:
        rc = sprig_update(db, "kv", &hdr, sprig_str(val), &out);
        want = !m->present[i] ? SPRIG_ENOTFOUND
                              : (stale ? SPRIG_ECONFLICT : SPRIG_OK);
        if (rc == 0) {
            m->rev[i] += same ? 0 : 1;
        }
        break;
    case 3:
        rc = sprig_delete(db, "kv", &hdr);
        want = !m->present[i] ? SPRIG_ENOTFOUND
                              : (stale ? SPRIG_ECONFLICT : SPRIG_OK);
        if (rc == 0) {
            m->present[i] = false;
        }
        return assert_int_equal(rc, want);
    default: {
        sprig_doc *d;
        rc = sprig_get(db, "kv", nid(id), &d);
        assert_int_equal(rc, m->present[i] ? SPRIG_OK : SPRIG_ENOTFOUND);
        if (rc == 0) {
            assert_true(tu_bytes_eq(sprig_doc_contents(d), m->val[i]));
            assert_int_equal(sprig_doc_header(d).revision, m->rev[i]);
            sprig_doc_free(d);
        }
        return;
    }
    }
    assert_int_equal(rc, want);
    if (rc == 0) {
        m->present[i] = true;
        snprintf(m->val[i], sizeof m->val[i], "%s", val);
        assert_int_equal(out.revision, m->rev[i]);
    }
}

static void
check_model(sprig_db *db, const model *m, uint64_t *s)
{
    char lo[4], hi[4];
    int a = (int)(tu_rand(s) % MODEL_IDS), b = (int)(tu_rand(s) % MODEL_IDS);
    model_id(a, lo);
    model_id(b, hi);
    bool desc = tu_rand(s) & 1;
    sprig_range r = {{SPRIG_INCLUDED, {lo, 2}}, {SPRIG_EXCLUDED, {hi, 2}}};
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "kv", &r, desc ? SPRIG_DESC : SPRIG_ASC, 0, &l));
    size_t k = 0;
    for (int j = 0; j < MODEL_IDS; j++) {
        int i = desc ? MODEL_IDS - 1 - j : j;
        if (!m->present[i] || i < a || i >= b) {
            continue;
        }
        const sprig_doc *d = sprig_doc_list_get(l, k++);
        assert_non_null(d);
        char id[4];
        model_id(i, id);
        assert_memory_equal(sprig_doc_header(d).id.data, id, 2);
        assert_true(tu_bytes_eq(sprig_doc_contents(d), m->val[i]));
    }
    assert_int_equal(k, sprig_doc_list_count(l));
    sprig_doc_list_free(l);
}

static void
test_random_model(void **state)
{
    sprig_db *db = *state;
    model m;
    memset(&m, 0, sizeof m);
    uint64_t s = seed;
    for (int step = 0; step < 3000; step++) {
        random_op(db, &m, &s);
        if (step % 10 == 0) {
            check_model(db, &m, &s);
        }
    }
    uint64_t n, want = 0;
    for (int i = 0; i < MODEL_IDS; i++) {
        want += m.present[i];
    }
    SPRIG_OK_(sprig_count(db, "kv", NULL, &n));
    assert_int_equal(n, want);
}

int
main(void)
{
    seed = tu_seed();
    root = tu_tmpdir("docs");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_and_get, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_natural_ids_and_conflicts, open_db,
                                        close_db),
        cmocka_unit_test_setup_teardown(test_argument_errors, open_db,
                                        close_db),
        cmocka_unit_test_setup_teardown(test_contents_sizes, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_list_ranges, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_get_multiple, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_random_model, open_db, close_db),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        tu_rmtree(root);
    }
    return rc;
}
