/*
 * test_api_errors.c -- structured errors (issue 14 part 2, item 1):
 * sprig_error_info() names what a failure is about -- a document, a
 * database, a collection, a view, a schema, a key-value key -- with the
 * names and ids involved and, for conflicts and unique-view violations,
 * the header of the document already there; the same on every placement
 * (apitest.h), so the error frame carries it over ws:// and wss://.
 */
#include "apitest.h"

/* The detail of the last failure, checked to be about `code`/`kind`. */
static const sprig_error_detail *
info_of(int code, sprig_error_kind kind)
{
    const sprig_error_detail *e = sprig_error_info();
    assert_non_null(e);
    if (e->code != code || e->kind != kind) {
        print_message("detail: code %d kind %s (%s), wanted %d %s\n", e->code,
                      sprig_error_kind_name(e->kind), sprig_errmsg(), code,
                      sprig_error_kind_name(kind));
    }
    assert_int_equal(e->code, code);
    assert_int_equal(e->kind, kind);
    return e;
}

static void
test_missing_document_vs_database(void **state)
{
    at_state *s = *state;
    SPRIG_OK_(sprig_overwrite(s->db, "users", sprig_str("ann"),
                              sprig_str("{\"email\":\"a@x\"}"), NULL));
    sprig_doc *doc = NULL;
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(s->db, "users", sprig_str("bob"), &doc));
    const sprig_error_detail *e =
        info_of(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DOCUMENT);
    assert_string_equal(e->database, "d");
    assert_string_equal(e->collection, "users");
    AT_BYTES_EQ(e->id, "bob");
    assert_false(e->has_header);

    /* a missing database: no such name */
    sprig_db *other = NULL;
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_storage_open_database(s->p.st, "zz", &other));
    e = info_of(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DATABASE);
    assert_string_equal(e->database, "zz");
    assert_string_equal(e->collection, "");
    assert_int_equal(e->id.len, 0);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_delete_database(s->p.st, "zz"));
    info_of(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DATABASE);

    /* a database deleted under an open handle: the same code as a missing
     * document, told apart by the kind */
    SPRIG_OK_(sprig_storage_delete_database(s->p.st, "d"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(s->db, "users", sprig_str("ann"), &doc));
    e = info_of(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DATABASE);
    assert_string_equal(e->database, "d");
}

static void
test_collection_view_schema(void **state)
{
    at_state *s = *state;
    sprig_doc *doc = NULL;
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_get(s->db, "nope", sprig_str("x"), &doc));
    const sprig_error_detail *e =
        info_of(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_COLLECTION);
    assert_string_equal(e->collection, "nope");
    assert_string_equal(e->schema, "apitest");
    assert_string_equal(e->database, "d");

    sprig_view_query q;
    sprig_view_query_init(&q, "msgs", "no_view");
    sprig_mapping_list *l = NULL;
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_view_query_mappings(s->db, &q, &l));
    e = info_of(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_VIEW);
    assert_string_equal(e->view, "no_view");
    assert_string_equal(e->collection, "msgs");
    assert_string_equal(e->database, "d");

    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_storage_create_database(
                                    s->p.st, "e", "no_schema", false));
    e = info_of(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_SCHEMA);
    assert_string_equal(e->schema, "no_schema");

    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig_storage_create_database(s->p.st, "d", "apitest", false));
    e = info_of(SPRIG_EEXIST, SPRIG_ERROR_KIND_DATABASE);
    assert_string_equal(e->database, "d");
}

static void
test_conflicts_carry_the_stored_header(void **state)
{
    at_state *s = *state;
    sprig_header_buf h1, h2, out;
    sprig_bytes id = sprig_str("ann");
    SPRIG_OK_(sprig_insert(s->db, "users", &id, sprig_str("{}"), &h1));
    SPRIG_OK_(sprig_overwrite(s->db, "users", id, sprig_str("{\"v\":2}"), &h2));
    assert_int_equal(h2.revision, 2);

    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_insert(s->db, "users", &id, sprig_str("{}"), &out));
    const sprig_error_detail *e =
        info_of(SPRIG_ECONFLICT, SPRIG_ERROR_KIND_DOCUMENT);
    assert_string_equal(e->collection, "users");
    assert_string_equal(e->database, "d");
    AT_BYTES_EQ(e->id, "ann");
    assert_true(e->has_header);
    assert_int_equal(e->header.revision, 2);
    assert_memory_equal(e->header.hash, h2.hash, 16);
    AT_BYTES_EQ(e->header.id, "ann");

    sprig_header stale = sprig_header_of(&h1);
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_update(s->db, "users", &stale, sprig_str("{}"), NULL));
    e = info_of(SPRIG_ECONFLICT, SPRIG_ERROR_KIND_DOCUMENT);
    assert_int_equal(e->header.revision, 2);

    /* in a transaction: the failed operation's collection and id */
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "msgs", NULL, sprig_str("{}")));
    sprig_bytes bob = sprig_str("bob");
    SPRIG_OK_(sprig_txn_check(t, "users", bob, NULL));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_txn_apply(s->db, t, NULL));
    e = info_of(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DOCUMENT);
    assert_string_equal(e->collection, "users");
    assert_string_equal(e->database, "d");
    AT_BYTES_EQ(e->id, "bob");
    sprig_txn_free(t);
}

static void
test_unique_violation_names_the_holder(void **state)
{
    at_state *s = *state;
    sprig_header_buf ann;
    sprig_bytes a = sprig_str("ann"), b = sprig_str("bob");
    SPRIG_OK_(sprig_insert(s->db, "users", &a, sprig_str("{\"email\":\"x@y\"}"),
                           &ann));
    SPRIG_EXPECT(SPRIG_EUNIQUE,
                 sprig_insert(s->db, "users", &b,
                              sprig_str("{\"email\":\"x@y\"}"), NULL));
    const sprig_error_detail *e = info_of(SPRIG_EUNIQUE, SPRIG_ERROR_KIND_VIEW);
    assert_string_equal(e->view, "by_email");
    assert_string_equal(e->collection, "users");
    assert_string_equal(e->database, "d");
    AT_BYTES_EQ(e->id, "bob");
    sprig_buf key = {0};
    SPRIG_OK_(sprig_key_from_json("\"x@y\"", 5, &key));
    assert_int_equal(e->key.len, key.len);
    assert_memory_equal(e->key.data, key.data, key.len);
    sprig_buf_clear(&key);
    assert_true(e->has_header);
    AT_BYTES_EQ(e->header.id, "ann");
    assert_int_equal(e->header.revision, ann.revision);
    assert_memory_equal(e->header.hash, ann.hash, 16);
}

static void
test_kv_key_and_plain_errors(void **state)
{
    at_state *s = *state;
    sprig_value v;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(s->db, "ns1", "k1", false, &v));
    const sprig_error_detail *e =
        info_of(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_KEY);
    assert_string_equal(e->ns, "ns1");
    AT_BYTES_EQ(e->key, "k1");
    assert_string_equal(e->database, "d");
    assert_string_equal(e->collection, "");

    /* a failure about nothing named has no structured detail */
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_get(s->db, "ns1", "", false, &v));
    e = info_of(SPRIG_EINVAL, SPRIG_ERROR_KIND_NONE);
    assert_string_equal(e->database, "");
    assert_false(e->has_header);
    assert_string_equal(sprig_error_kind_name(SPRIG_ERROR_KIND_VIEW), "view");
    assert_string_equal(sprig_error_kind_name((sprig_error_kind)99), "unknown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        AT_TEST(test_missing_document_vs_database),
        AT_TEST(test_collection_view_schema),
        AT_TEST(test_conflicts_carry_the_stored_header),
        AT_TEST(test_unique_violation_names_the_holder),
        AT_TEST(test_kv_key_and_plain_errors),
    };
    return at_run("api_errors", tests, sizeof tests / sizeof *tests);
}
