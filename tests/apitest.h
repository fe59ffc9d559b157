/*
 * apitest.h -- what the tests of the C API's conveniences (test_api_*.c,
 * issue 14 part 2) share: one schema, and a driver that runs a suite on
 * every placement (placement.h: local, ws://, wss://, wrapped), each test
 * with a fresh placement and a fresh database "d".
 */
#ifndef SPRIG_APITEST_H
#define SPRIG_APITEST_H

#include "placement.h"

#include <math.h>

/* What sprig_emit answered the last empty key (the map runs in this
 * process on every placement: the server's too). */
static int at_unit_emit_rc = 1;

/* A C map emitting key "" for documents whose contents are "unit", and the
 * contents as a key otherwise (test_api_edges.c: the unit key). */
static int
at_unit_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    (void)udata;
    sprig_bytes c = sprig_doc_contents(doc);
    bool unit = c.len == 4 && memcmp(c.data, "unit", 4) == 0;
    int rc = sprig_emit(e, unit ? sprig_str("") : c, sprig_str("1"));
    if (unit) {
        __atomic_store_n(&at_unit_emit_rc, rc, __ATOMIC_SEQ_CST);
    }
    return rc;
}

static const sprig_view_def at_msg_views[] = {
    {.name = "by_cat",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "cat",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = "by_cat_max",
     .version = 1,
     .policy = SPRIG_VIEW_LAZY,
     .json_key = "cat",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_MAX},
    {.name = "count",
     .version = 1,
     .policy = SPRIG_VIEW_LAZY,
     .json_key = "cat",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_view_def at_user_views[] = {
    {.name = "by_email",
     .version = 1,
     .policy = SPRIG_VIEW_UNIQUE,
     .json_key = "email"},
};
static const sprig_view_def at_unit_views[] = {
    {.name = "units",
     .version = 1,
     .policy = SPRIG_VIEW_LAZY,
     .map = at_unit_map,
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def at_cols[] = {
    {"msgs", SPRIG_ID_U64, 0, at_msg_views, 3},
    {"users", SPRIG_ID_NATURAL, 0, at_user_views, 1},
    {"units", SPRIG_ID_U64, 0, at_unit_views, 1},
};
static const sprig_schema_def at_schema = {"apitest", at_cols, 3};

typedef struct at_state {
    placement p;
    sprig_db *db;
} at_state;

static const char *at_root;
static const char *at_kind; /* the placement of the group running */

static int
at_setup(void **state)
{
    at_state *s = calloc(1, sizeof *s);
    placement_open(&s->p, at_kind, at_root, &at_schema);
    SPRIG_OK_(sprig_storage_create_database(s->p.st, "d", "apitest", false));
    SPRIG_OK_(sprig_storage_open_database(s->p.st, "d", &s->db));
    *state = s;
    return 0;
}

static int
at_teardown(void **state)
{
    at_state *s = *state;
    sprig_db_close(s->db);
    placement_close(&s->p);
    free(s);
    return 0;
}

#define AT_TEST(t) cmocka_unit_test_setup_teardown(t, at_setup, at_teardown)

/* Run `tests` on every placement; the exit status of main. */
static int
at_run(const char *tag, const struct CMUnitTest *tests, size_t n)
{
    at_root = tu_tmpdir(tag);
    const char *kinds[] = {"local", "ws", "wss", "wrapped"};
    int failed = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        at_kind = kinds[i];
        printf("== placement: %s\n", at_kind);
        failed += _cmocka_run_group_tests(at_kind, tests, n, NULL, NULL);
    }
    if (!failed) {
        tu_rmtree(at_root);
    }
    return failed ? 1 : 0;
}

/* Assert bytes equal a string. */
#define AT_BYTES_EQ(b, s)                                                      \
    do {                                                                       \
        sprig_bytes b_ = (b);                                                  \
        assert_int_equal(b_.len, strlen(s));                                   \
        assert_memory_equal(b_.data, (s), b_.len);                             \
    } while (0)

#endif
