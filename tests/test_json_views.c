/*
 * test_json_views.c -- declarative views over JSON documents (F4) and
 * schema files (F1): key paths into nested objects and arrays, tuple keys,
 * arrays emitting one mapping per element, documents that are not JSON or
 * lack a path emitting nothing, numbers sorting by value with 64-bit
 * integers kept exact, the built-in reduces, the JSON key helpers, schema
 * files with every kind of error naming its line or JSON path, and the
 * stored schema format (version 2 with views, version 1 still read).
 * Views are compared with an independent reading of the documents
 * (viewtest.h).
 */
#include "viewtest.h"

static const sprig_view_def prod_views[] = {
    {.name = "by_cat",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "info.category",
     .json_value = "price",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = "by_brand_cat",
     .version = 1,
     .json_key = " brand.name , info.category ",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
    {.name = "by_tag",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "tags",
     .json_value = "info"},
    {.name = "by_price_min",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "price",
     .json_value = "price",
     .builtin_reduce = SPRIG_REDUCE_MIN},
    {.name = "by_price_max",
     .version = 1,
     .json_key = "price",
     .json_value = "price",
     .builtin_reduce = SPRIG_REDUCE_MAX},
    {.name = "first_tag",
     .version = 1,
     .json_key = "tags.0",
     .json_value = "name"},
};
static const sprig_collection_def prod_colls[] = {
    {"products", SPRIG_ID_NATURAL, 0, prod_views, 6},
};
static const sprig_schema_def prod_schema = {"shop", prod_colls, 1};

/* paths as the brute force reads them (no spaces) */
static const struct {
    const char *view, *paths, *value;
} prod_paths[] = {
    {"by_cat", "info.category", "price"},
    {"by_brand_cat", "brand.name,info.category", NULL},
    {"by_tag", "tags", "info"},
    {"by_price_min", "price", "price"},
    {"by_price_max", "price", "price"},
    {"first_tag", "tags.0", "name"},
};

static const char *prod_docs[] = {
    "{\"name\":\"a\",\"info\":{\"category\":\"books\"},\"price\":12,"
    "\"brand\":{\"name\":\"acme\"},\"tags\":[\"x\",\"y\",\"x\"]}",
    "{\"name\":\"b\",\"info\":{\"category\":\"books\"},\"price\":7.25,"
    "\"brand\":{\"name\":\"zeta\"},\"tags\":[]}",
    "{\"name\":\"c\",\"info\":{\"category\":\"games\"},\"price\":-3,"
    "\"brand\":{\"name\":\"acme\"},\"tags\":[1,2.5,true,null,[1],{}]}",
    "{\"name\":\"d\",\"info\":{\"category\":null},\"price\":\"free\"}",
    "{\"name\":\"e\",\"info\":{\"category\":{\"nested\":1}},\"price\":1}",
    "{\"name\":\"f\",\"info\":\"flat\",\"price\":9007199254740993}",
    "{\"name\":\"g\",\"info\":{\"category\":\"gam\\u0000es\"},\"price\":0.1,"
    "\"brand\":{\"name\":[\"x\"]}}",
    "not json at all",
    "[1,2,3]",
    "{\"name\":\"h\",\"info\":{\"category\":\"\\u00e9t\\u00e9\"},"
    "\"price\":1e300,\"brand\":{\"name\":true},\"tags\":\"solo\"}",
    "{\"name\":\"i\",\"info\":{\"category\":\"books\"},\"price\":-0.0}",
    "",
};

static sprig_db *
open_shop(const char *tag)
{
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(tu_tmpdir(tag), &prod_schema, &db));
    return db;
}

static void
put_doc(sprig_db *db, const char *id, const char *json)
{
    sprig_bytes k = sprig_str(id);
    SPRIG_OK_(sprig_overwrite(db, "products", k, sprig_str(json), NULL));
}

static void
check_view(sprig_db *db, size_t i)
{
    vt_ms want = {0};
    sprig_doc_list *docs = vt_all_docs(db, "products");
    vt_expect_json(docs, prod_paths[i].paths, prod_paths[i].value, &want);
    sprig_doc_list_free(docs);
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_view_query_init(&q, "products", prod_paths[i].view);
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    vt_check_all(l, &want, prod_paths[i].view);
    sprig_mapping_list_free(l);
    vt_ms_free(&want);
}

static void
check_all_views(sprig_db *db)
{
    for (size_t i = 0; i < 6; i++) {
        check_view(db, i);
    }
}

static void
test_nested_tuples_arrays(void **state)
{
    sprig_db *db = open_shop("jv-nested");
    char id[16];
    for (size_t i = 0; i < sizeof prod_docs / sizeof *prod_docs; i++) {
        snprintf(id, sizeof id, "p%02zu", i);
        put_doc(db, id, prod_docs[i]);
    }
    check_all_views(db);
    /* what the brute force expects is what the documents say */
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_view_query_init(&q, "products", "by_tag");
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l),
                     8); /* x x y 1 2.5 t null solo */
    sprig_mapping_list_free(l);
    /* changes move documents */
    put_doc(db, "p00", "{\"info\":{\"category\":\"games\"},\"price\":5}");
    put_doc(db, "p07",
            "{\"info\":{\"category\":\"books\"},\"price\":2,"
            "\"tags\":[\"x\"]}");
    SPRIG_OK_(sprig_delete(db, "products",
                           &(sprig_header){sprig_str("p01"), 1, {0}}));
    check_all_views(db);
    sprig_db_close(db);
}

static void
key_of(const char *json, sprig_buf *out)
{
    out->len = 0;
    SPRIG_OK_(sprig_key_from_json(json, strlen(json), out));
}

/* The key of JSON `json` prints back as `want`. */
static void
roundtrip(const char *json, const char *want)
{
    sprig_buf k = {0}, t = {0};
    key_of(json, &k);
    SPRIG_OK_(sprig_key_to_json(sprig_buf_bytes(&k), &t));
    if (t.len != strlen(want) || memcmp(t.data, want, t.len) != 0) {
        print_message("%s printed as %.*s, wanted %s\n", json, (int)t.len,
                      (char *)t.data, want);
        fail();
    }
    sprig_buf_clear(&k);
    sprig_buf_clear(&t);
}

static void
test_key_json(void **state)
{
    roundtrip("\"books\"", "\"books\"");
    roundtrip("[\"a\", 1, 2.5, true, false, null]",
              "[\"a\",1,2.5,true,false,null]");
    roundtrip("9007199254740993", "9007199254740993"); /* integer element */
    roundtrip("-9223372036854775808", "-9223372036854775808");
    roundtrip("10.0", "10");
    roundtrip("-0.0", "0");
    roundtrip("0.1", "0.1");
    roundtrip("1e300", "1e+300");
    roundtrip("\"tab\\tq\\\"\\u0000\"", "\"tab\\u0009q\\\"\\u0000\"");
    /* numbers sort by value, integers and reals together */
    const char *order[] = {"-1e300",
                           "-9007199254740992",
                           "-3",
                           "-2.5",
                           "0",
                           "0.1",
                           "1",
                           "10",
                           "10.5",
                           "11",
                           "9007199254740992",
                           "1e300",
                           "\"a\""};
    sprig_buf a = {0}, b = {0};
    for (size_t i = 0; i + 1 < sizeof order / sizeof *order; i++) {
        key_of(order[i], &a);
        key_of(order[i + 1], &b);
        if (sprig__bytes_cmp(sprig_buf_bytes(&a), sprig_buf_bytes(&b)) >= 0) {
            print_message("%s does not sort before %s\n", order[i],
                          order[i + 1]);
            fail();
        }
    }
    key_of("10", &a);
    key_of("10.0", &b);
    assert_true(sprig__bytes_cmp(sprig_buf_bytes(&a), sprig_buf_bytes(&b)) ==
                0);
    key_of("9007199254740993", &a); /* exact, not rounded to 2^53 */
    key_of("9007199254740992", &b);
    assert_true(sprig__bytes_cmp(sprig_buf_bytes(&a), sprig_buf_bytes(&b)) !=
                0);
    /* errors */
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_key_from_json("[1]]", 4, &a));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_key_from_json("[[1]]", 5, &a));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_key_from_json("{}", 2, &a));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_key_from_json("[]", 2, &a));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_key_from_json(NULL, 0, &a));
    char big[600];
    memset(big, 'x', sizeof big);
    big[0] = big[sizeof big - 1] = '"';
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_key_from_json(big, sizeof big, &a));
    b.len = 0;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_key_to_json(sprig_str("\x7f"), &b));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_key_to_json(sprig_str(""), &b));
    assert_int_equal(b.len, 0);
    sprig_key_builder kb = {0};
    SPRIG_OK_(sprig_key_add_bytes(&kb, (sprig_bytes){"\x01\xff", 2}));
    SPRIG_OK_(sprig_key_to_json(sprig_key_bytes(&kb), &b));
    assert_int_equal(b.len, strlen("{\"$bytes\":\"01ff\"}"));
    assert_memory_equal(b.data, "{\"$bytes\":\"01ff\"}", b.len);
    sprig_key_builder_clear(&kb);
    sprig_buf_clear(&a);
    sprig_buf_clear(&b);
}

static const sprig_view_def num_views[] = {
    {.name = "n",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k",
     .json_value = "v",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = "min",
     .version = 1,
     .json_key = "k",
     .json_value = "v",
     .builtin_reduce = SPRIG_REDUCE_MIN},
    {.name = "max",
     .version = 1,
     .json_key = "k",
     .json_value = "v",
     .builtin_reduce = SPRIG_REDUCE_MAX},
    {.name = "count",
     .version = 1,
     .json_key = "k",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def num_colls[] = {
    {"nums", SPRIG_ID_U64, 0, num_views, 4},
};
static const sprig_schema_def num_schema = {"nums", num_colls, 1};

static void
expect_reduce(sprig_db *db, const char *view, const char *key_json,
              const char *want)
{
    sprig_view_query q;
    sprig_buf k = {0}, r = {0};
    sprig_view_query_init(&q, "nums", view);
    if (key_json) {
        key_of(key_json, &k);
        q.match.kind = SPRIG_MATCH_KEY;
        q.match.key = sprig_buf_bytes(&k);
    }
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    if (r.len != strlen(want) || memcmp(r.data, want, r.len) != 0) {
        print_message("%s reduce over %s: %.*s, wanted %s\n", view,
                      key_json ? key_json : "all", (int)r.len, (char *)r.data,
                      want);
        fail();
    }
    sprig_buf_clear(&k);
    sprig_buf_clear(&r);
}

static void
insert_json(sprig_db *db, const char *json)
{
    SPRIG_OK_(sprig_insert(db, "nums", NULL, sprig_str(json), NULL));
}

static void
test_numbers_and_reduces(void **state)
{
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(tu_tmpdir("jv-nums"), &num_schema, &db));
    /* 64-bit integers stay exact in keys, values and sums */
    insert_json(db, "{\"k\":\"big\",\"v\":9007199254740993}");
    insert_json(db, "{\"k\":\"big\",\"v\":1}");
    expect_reduce(db, "n", "\"big\"", "9007199254740994");
    expect_reduce(db, "max", "\"big\"", "9007199254740993");
    insert_json(db, "{\"k\":\"huge\",\"v\":9223372036854775807}");
    insert_json(db, "{\"k\":\"huge\",\"v\":9223372036854775807}");
    expect_reduce(db, "n", "\"huge\"", "1.8446744073709552e+19");
    insert_json(db, "{\"k\":\"neg\",\"v\":-9223372036854775807}");
    insert_json(db, "{\"k\":\"neg\",\"v\":-1}");
    expect_reduce(db, "n", "\"neg\"", "-9223372036854775808");
    expect_reduce(db, "min", "\"neg\"", "-9223372036854775807");
    /* mixed integers, reals and non-numbers */
    insert_json(db, "{\"k\":\"mix\",\"v\":10}");
    insert_json(db, "{\"k\":\"mix\",\"v\":0.5}");
    insert_json(db, "{\"k\":\"mix\",\"v\":\"text\"}");
    insert_json(db, "{\"k\":\"mix\"}");
    insert_json(db, "{\"k\":\"mix\",\"v\":-2}");
    expect_reduce(db, "n", "\"mix\"", "8.5");
    expect_reduce(db, "min", "\"mix\"", "-2");
    expect_reduce(db, "max", "\"mix\"", "10");
    expect_reduce(db, "count", "\"mix\"", "5");
    expect_reduce(db, "min", "\"none\"", "null");
    expect_reduce(db, "n", "\"none\"", "0");
    expect_reduce(db, "count", "\"none\"", "0");
    /* values keep their JSON text; a big integer key is found exactly */
    insert_json(db, "{\"k\":9007199254740993,\"v\":{\"a\":[1,\"x\"]}}");
    insert_json(db, "{\"k\":9007199254740992,\"v\":0.1}");
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_buf k = {0};
    key_of("9007199254740993", &k);
    sprig_view_query_init(&q, "nums", "n");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_buf_bytes(&k);
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 1);
    assert_true(
        tu_bytes_eq(sprig_mapping_list_value(l, 0), "{\"a\":[1,\"x\"]}"));
    sprig_mapping_list_free(l);
    /* ranges over numbers include reals between integers */
    insert_json(db, "{\"k\":10,\"v\":1}");
    insert_json(db, "{\"k\":10.5,\"v\":1}");
    insert_json(db, "{\"k\":11,\"v\":1}");
    insert_json(db, "{\"k\":12,\"v\":1}");
    sprig_buf lo = {0}, hi = {0};
    key_of("10", &lo);
    key_of("11", &hi);
    q.match.kind = SPRIG_MATCH_RANGE;
    q.match.range = (sprig_range){{SPRIG_INCLUDED, sprig_buf_bytes(&lo)},
                                  {SPRIG_INCLUDED, sprig_buf_bytes(&hi)}};
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 3);
    sprig_mapping_list_free(l);
    /* grouped counts */
    sprig_view_query_init(&q, "nums", "count");
    SPRIG_OK_(sprig_view_reduce_grouped(db, &q, &l));
    sprig_buf t = {0};
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        t.len = 0;
        SPRIG_OK_(sprig_key_to_json(sprig_mapping_list_key(l, i), &t));
        if (t.len == 5 && memcmp(t.data, "\"mix\"", 5) == 0) {
            assert_true(tu_bytes_eq(sprig_mapping_list_value(l, i), "5"));
        }
    }
    sprig_mapping_list_free(l);
    sprig_buf_clear(&t);
    sprig_buf_clear(&k);
    sprig_buf_clear(&lo);
    sprig_buf_clear(&hi);
    sprig_db_close(db);
}

/* ---- schema files
 * ------------------------------------------------------------- */

static const char good_schema[] =
    "{\n"
    "  \"name\": \"filed\",\n"
    "  \"collections\": [\n"
    "    {\"name\": \"products\", \"id_kind\": \"natural\",\n"
    "     \"views\": [\n"
    "       {\"name\": \"by_cat\", \"version\": 2, \"policy\": \"eager\",\n"
    "        \"json_key\": \"info.category\", \"json_value\": \"price\",\n"
    "        \"reduce\": \"sum\"},\n"
    "       {\"name\": \"by_brand_cat\",\n"
    "        \"json_key\": [\"brand.name\", \"info.category\"],\n"
    "        \"reduce\": \"count\"},\n"
    "       {\"name\": \"unique_name\", \"policy\": \"unique\",\n"
    "        \"json_key\": \"name\"}]},\n"
    "    {\"name\": \"log\"}]\n"
    "}\n";

static const char *
write_file(const char *name, const char *text)
{
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s", tu_tmpdir("jv-files"), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void
test_schema_file_use(void **state)
{
    sprig_schema_def *s;
    SPRIG_OK_(sprig_schema_load_json(write_file("good.json", good_schema), &s));
    assert_string_equal(s->name, "filed");
    assert_int_equal(s->n_collections, 2);
    const sprig_collection_def *c = &s->collections[0];
    assert_int_equal(c->id_kind, SPRIG_ID_NATURAL);
    assert_int_equal(c->n_views, 3);
    assert_int_equal(c->views[0].version, 2);
    assert_int_equal(c->views[0].policy, SPRIG_VIEW_EAGER);
    assert_string_equal(c->views[0].json_key, "info.category");
    assert_string_equal(c->views[0].json_value, "price");
    assert_int_equal(c->views[0].builtin_reduce, SPRIG_REDUCE_SUM);
    assert_string_equal(c->views[1].json_key, "brand.name,info.category");
    assert_int_equal(c->views[1].version, 1);
    assert_int_equal(c->views[1].policy, SPRIG_VIEW_LAZY);
    assert_null(c->views[1].json_value);
    assert_int_equal(s->collections[1].id_kind, SPRIG_ID_U64);
    assert_int_equal(s->collections[1].n_views, 0);
    /* use it: register, create, write, query */
    const char *dir = tu_tmpdir("jv-filed");
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    sprig_storage_options_init(&o);
    o.path = dir;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, s));
    sprig_schema_free(s);
    SPRIG_OK_(sprig_storage_create_database(st, "shop", "filed", false));
    SPRIG_OK_(sprig_storage_open_database(st, "shop", &db));
    SPRIG_OK_(sprig_overwrite(db, "products", sprig_str("a"),
                              sprig_str("{\"name\":\"a\",\"info\":{\"category\""
                                        ":\"books\"},\"price\":3}"),
                              NULL));
    SPRIG_OK_(sprig_overwrite(db, "products", sprig_str("b"),
                              sprig_str("{\"name\":\"b\",\"info\":{\"category\""
                                        ":\"books\"},\"price\":4}"),
                              NULL));
    SPRIG_EXPECT(SPRIG_EUNIQUE,
                 sprig_overwrite(db, "products", sprig_str("c"),
                                 sprig_str("{\"name\":\"a\"}"), NULL));
    sprig_db_close(db);
    sprig_storage_close(st);
    /* a tool opening the storage without the file: the views still work,
     * read back from the stored schema */
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_open_database(st, "shop", &db));
    sprig_view_query q;
    sprig_buf r = {0};
    sprig_view_query_init(&q, "products", "by_cat");
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&r), "7"));
    sprig_view_query_init(&q, "products", "by_brand_cat");
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&r), "0")); /* no brand */
    sprig_buf_clear(&r);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* Loading `text` fails with SPRIG_EINVAL and a message containing `want`. */
static void
bad_schema(const char *text, const char *want)
{
    sprig_schema_def *s = (void *)1;
    int rc = sprig_schema_load_json(write_file("bad.json", text), &s);
    if (rc != SPRIG_EINVAL || !strstr(sprig_errmsg(), want) ||
        !strstr(sprig_errmsg(), "bad.json")) {
        print_message("schema %s\n-> %d %s\n(wanted '%s')\n", text, rc,
                      sprig_errmsg(), want);
        fail();
    }
    assert_null(s);
    rc = sprig_schema_parse_json(text, strlen(text), &s);
    const char *w2 = strncmp(want, "bad.json", 8) == 0 ? want + 8 : want;
    if (rc != SPRIG_EINVAL || !strstr(sprig_errmsg(), w2)) {
        print_message("parsed schema %s\n-> %d %s\n(wanted '%s')\n", text, rc,
                      sprig_errmsg(), want);
        fail();
    }
}

#define VIEWS(v)                                                               \
    "{\"name\":\"s\",\"collections\":[{\"name\":\"c\"},{\"name\":\"d\","       \
    "\"views\":[" v "]}]}"

static void
test_schema_file_errors(void **state)
{
    bad_schema("{\n  \"name\": \"x\",\n  oops\n}", "bad.json:3:");
    bad_schema("{\"name\":\"x\",\"name\":\"y\",\"collections\":[]}", ":1:");
    bad_schema("[1]", "expected an object (the schema)");
    bad_schema("{\"collections\":[]}", "name: missing");
    bad_schema("{\"name\":\"x y\",\"collections\":[]}",
               "name: schema name 'x y' has a bad character");
    bad_schema("{\"name\":\"x\"}", "collections: missing");
    bad_schema("{\"name\":\"x\",\"collections\":{}}",
               "collections: expected an array");
    bad_schema("{\"name\":\"x\",\"collections\":[],\"extra\":1}",
               "extra: unknown field");
    bad_schema("{\"name\":\"x\",\"collections\":[3]}",
               "collections[0]: expected an object");
    bad_schema("{\"name\":\"x\",\"collections\":[{\"name\":5}]}",
               "collections[0].name: expected a string");
    bad_schema("{\"name\":\"x\",\"collections\":[{\"name\":\"a\"},"
               "{\"name\":\"a\"}]}",
               "collections[1].name: collection 'a' is declared twice");
    bad_schema("{\"name\":\"x\",\"collections\":[{\"name\":\"a\","
               "\"id_kind\":\"uuid\"}]}",
               "collections[0].id_kind: \"uuid\" is not one of \"u64\", "
               "\"natural\"");
    bad_schema("{\"name\":\"x\",\"collections\":[{\"name\":\"a\","
               "\"views\":{}}]}",
               "collections[0].views: expected an array");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":7}"),
               "collections[1].views[0].json_key: expected a string or a "
               "non-empty array of strings");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":[]}"),
               "collections[1].views[0].json_key: expected a string");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":[\"a\",\"b,c\"]}"),
               "collections[1].views[0].json_key: element 1: expected a path");
    bad_schema(VIEWS("{\"name\":\"v\"}"),
               "collections[1].views[0].json_key: missing");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a..b\"}"),
               "collections[1].views[0].json_key: path: path 'a..b' has an "
               "empty segment");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a,\"}"),
               "collections[1].views[0].json_key: path has an empty path");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a\",\"json_value\":"
                     "\"b,c\"}"),
               "collections[1].views[0].json_value: path has a ','");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a\",\"jsonkey\":\"b\"}"),
               "collections[1].views[0].jsonkey: unknown field");
    bad_schema(
        VIEWS("{\"name\":\"v\",\"json_key\":\"a\",\"policy\":\"often\"}"),
        "collections[1].views[0].policy: \"often\" is not one of "
        "\"lazy\", \"eager\", \"unique\"");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a\",\"reduce\":\"avg\"}"),
               "collections[1].views[0].reduce: \"avg\" is not one of");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a\",\"reduce\":\"sum\"}"),
               "collections[1].views[0].reduce: \"sum\" needs a json_value");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a\",\"version\":-1}"),
               "collections[1].views[0].version: expected an integer");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a\",\"version\":\"1\"}"),
               "collections[1].views[0].version: expected an integer");
    bad_schema(VIEWS("{\"name\":\"v!\",\"json_key\":\"a\"}"),
               "collections[1].views[0].name: view name 'v!' has a bad "
               "character");
    bad_schema(VIEWS("{\"name\":\"v\",\"json_key\":\"a\"},"
                     "{\"name\":\"v\",\"json_key\":\"b\"}"),
               "collections[1].views[1].name: view 'v' is declared twice");
    bad_schema(VIEWS("7"), "collections[1].views[0]: expected an object");
    /* files that are not there, and arguments */
    sprig_schema_def *s;
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_schema_load_json("/nonexistent/schema.json", &s));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_schema_load_json(NULL, &s));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_schema_load_json("x", NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_schema_parse_json(NULL, 0, &s));
    sprig_schema_free(NULL);
}

/* ---- the stored schema format ---------------------------------------------
 */

static void
test_stored_format(void **state)
{
    /* version 2 round trip, with views */
    sprig_buf enc = {0};
    sprig_schema_def *back;
    SPRIG_OK_(sprig__schema_encode(&prod_schema, &enc));
    assert_int_equal(((uint8_t *)enc.data)[0], 2);
    SPRIG_OK_(sprig__schema_decode(sprig_buf_bytes(&enc), &back));
    assert_int_equal(back->collections[0].n_views, 6);
    for (size_t i = 0; i < 6; i++) {
        const sprig_view_def *a = &prod_views[i],
                             *b = &back->collections[0].views[i];
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->json_key, b->json_key);
        assert_int_equal(a->version, b->version);
        assert_int_equal(a->policy, b->policy);
        assert_int_equal(a->builtin_reduce, b->builtin_reduce);
        assert_int_equal(a->json_value == NULL, b->json_value == NULL);
    }
    sprig__free(back);
    /* truncated input is corrupt, never a crash */
    for (size_t n = 0; n < enc.len; n++) {
        int rc = sprig__schema_decode((sprig_bytes){enc.data, n}, &back);
        assert_int_equal(rc, SPRIG_ECORRUPT);
    }
    sprig_buf_clear(&enc);
    /* version 1 (no views) is still read */
    static const uint8_t v1[] = {1, 0, 0, 0, 1,   's', 0, 0, 0, 1,
                                 0, 0, 0, 1, 'c', 1,   0, 0, 0, 0};
    SPRIG_OK_(sprig__schema_decode((sprig_bytes){v1, sizeof v1}, &back));
    assert_string_equal(back->collections[0].name, "c");
    assert_int_equal(back->collections[0].id_kind, SPRIG_ID_NATURAL);
    assert_int_equal(back->collections[0].n_views, 0);
    sprig__free(back);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_tuples_arrays),
        cmocka_unit_test(test_key_json),
        cmocka_unit_test(test_numbers_and_reduces),
        cmocka_unit_test(test_schema_file_use),
        cmocka_unit_test(test_schema_file_errors),
        cmocka_unit_test(test_stored_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
