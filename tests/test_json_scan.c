/*
 * test_json_scan.c -- the one-pass JSON scanner of declarative views
 * (src/core/json_scan.c) against the reference: jansson's tree and
 * sprig__jview_map().  Seeded random documents (duplicate keys, escaped
 * keys, nesting, every number form near the 2^53 / 2^63 / double limits,
 * escapes, surrogate pairs, \u0000, raw UTF-8) and byte-level mutations of
 * them (truncations, tricky bytes inserted or replaced) go through both
 * paths for a set of views covering single and multi-key paths, array
 * indexes, array keys and every kind of value: both must agree on whether
 * the document is JSON and emit identical sorted pair lists.  Plus nesting
 * at jansson's depth limit, and fixed cases of each refusal.
 */
#include "testutil.h"

#include "core/view.h"

#include <jansson.h>

/* ---- the views ------------------------------------------------------------
 */

static const sprig_view_def defs[] = {
    {.name = "a", .json_key = "a"},
    {.name = "bc", .json_key = "b.c", .json_value = "v"},
    {.name = "arr", .json_key = "arr", .json_value = "n"},
    {.name = "arr1", .json_key = "arr.1", .json_value = "s"},
    {.name = "multi", .json_key = "a, b.c ,n", .json_value = "obj"},
    {.name = "num", .json_key = "n", .json_value = "arr"},
    {.name = "str", .json_key = "s", .json_value = "s"},
    {.name = "deep", .json_key = "obj.a.b", .json_value = "obj.arr.0"},
    {.name = "idx", .json_key = "0", .json_value = "1"},
    {.name = "miss", .json_key = "v", .json_value = "missing.path"},
    {.name = "esc", .json_key = "k\xc3\xa9y", .json_value = "a"},
};
#define N_VIEWS (sizeof defs / sizeof defs[0])

typedef struct views {
    sprig__jview *jv[N_VIEWS];
    sprig__jscan *scan;
    sprig__jnode nodes[64];
    sprig_emitter em;
    sprig_buf a, b;
} views;

static void
views_open(views *v)
{
    memset(v, 0, sizeof *v);
    for (size_t i = 0; i < N_VIEWS; i++) {
        SPRIG_OK_(sprig__jview_new(&defs[i], &v->jv[i]));
    }
    SPRIG_OK_(sprig__jscan_new((const sprig__jview *const *)v->jv, N_VIEWS,
                               &v->scan));
    assert_non_null(v->scan);
}

static void
views_close(views *v)
{
    for (size_t i = 0; i < N_VIEWS; i++) {
        sprig__jview_free(v->jv[i]);
    }
    sprig__jscan_free(v->scan);
    sprig__emitter_free(&v->em);
    sprig_buf_clear(&v->a);
    sprig_buf_clear(&v->b);
}

/* Sorted pair list of view k into out, and the map's return code. */
static int
emitted(views *v, size_t k, bool tree, json_t *doc, sprig_buf *out)
{
    sprig__emitter_reset(&v->em);
    out->len = 0;
    int rc = tree ? sprig__jview_map(v->jv[k], doc, &v->em)
                  : sprig__jscan_map(v->scan, k, v->nodes, &v->em);
    SPRIG_OK_(sprig__emitter_sorted(&v->em, out));
    return rc;
}

static unsigned long n_valid, n_invalid, n_pairs;

/* Both paths on `doc`: same verdict, same pairs for every view. */
static void
compare(views *v, const char *doc, size_t len)
{
    json_t *tree = NULL;
    SPRIG_OK_(sprig__json_parse((sprig_bytes){doc, len}, &tree));
    bool ok = sprig__jscan_run(v->scan, (sprig_bytes){doc, len}, v->nodes);
    if (ok != (tree != NULL)) {
        print_message("verdicts differ (jansson %s, scanner %s) on %zu "
                      "bytes: %.*s\n",
                      tree ? "valid" : "invalid", ok ? "valid" : "invalid", len,
                      (int)(len > 300 ? 300 : len), doc);
        fail();
    }
    ok ? n_valid++ : n_invalid++;
    for (size_t k = 0; k < N_VIEWS; k++) {
        int ra = emitted(v, k, true, tree, &v->a);
        int rb = emitted(v, k, false, NULL, &v->b);
        if (ra != rb || v->a.len != v->b.len ||
            memcmp(v->a.data, v->b.data, v->a.len) != 0) {
            print_message("view '%s' differs (rc %d vs %d, %zu vs %zu bytes) "
                          "on: %.*s\n",
                          defs[k].name, ra, rb, v->a.len, v->b.len,
                          (int)(len > 300 ? 300 : len), doc);
            fail();
        }
        n_pairs += v->em.n;
    }
    sprig__json_free(tree);
}

/* ---- random documents --------------------------------------------------- */

typedef struct gen {
    uint64_t rs;
    sprig_buf out;
} gen;

static uint64_t
below(gen *g, uint64_t n)
{
    return tu_rand(&g->rs) % n;
}

static void
put(gen *g, const char *s)
{
    SPRIG_OK_(sprig_buf_append(&g->out, s, strlen(s)));
}

static void
ws(gen *g)
{
    static const char *const w[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    put(g, w[below(g, 7)]);
}

static const char *const keys[] = {
    "a",         "b",       "c",       "arr",    "n",       "s",
    "v",         "obj",     "0",       "1",      "\\u0061", "k\xc3\xa9y",
    "k\\u00e9y", "missing", "\\u0000", "x\\\"y", "b\\/c",   ""};

static const char *const numbers[] = {
    "0",
    "-0",
    "1",
    "-1",
    "10",
    "10.5",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "1e3",
    "1E+3",
    "2.5e-3",
    "-0.0",
    "0.1",
    "1e308",
    "1.7976931348623157e308",
    "1.8e308",
    "1e-400",
    "4.9e-324",
    "123456789012345678901234567890e-20",
    "0.000000000000000000000000000001e330",
    "1.0",
    "100000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000.5",
};

static const char *const strings[] = {
    "\"\"",
    "\"plain\"",
    "\"c123\"",
    "\"tab\\there\"",
    "\"q\\\"uote\\\\\"",
    "\"\\u00e9t\\u00C9\"",
    "\"\xc3\xa9t\xc3\xa9\"",
    "\"\\ud83d\\ude00\"",
    "\"\xf0\x9f\x98\x80\"",
    "\"nul\\u0000byte\"",
    "\"\\/slash\"",
    "\"ctl\\u001f\\b\\f\\n\\r\"",
    "\"\xe2\x82\xac\"",
};

/* Tokens jansson refuses, used now and then. */
static const char *const bad_tokens[] = {
    "1e309",
    "-1e400",
    "9223372036854775808",
    "-9223372036854775809",
    "12345678901234567890123",
    "01",
    "1.",
    ".5",
    "-",
    "1e",
    "+1",
    "1.5e+",
    "0x10",
    "\"\\ud83d\"",
    "\"\\ude00\"",
    "\"\\ud83d\\u0041\"",
    "\"bad\\x\"",
    "\"\\u12\"",
    "\"raw\x01\"",
    "\"\xc0\x80\"",
    "\"\xed\xa0\x80\"",
    "\"\xf4\x90\x80\x80\"",
    "\"\xe2\x82\"",
    "\"a\nb\"",
    "nul",
    "True",
};

static void value(gen *g, int depth);

static void
object(gen *g, int depth)
{
    put(g, "{");
    ws(g);
    int n = (int)below(g, 7);
    for (int i = 0; i < n; i++) {
        put(g, i ? "," : "");
        ws(g);
        put(g, "\"");
        size_t nk = sizeof keys / sizeof keys[0];
        put(g, keys[below(g, 4) ? below(g, 8) : below(g, nk)]);
        put(g, "\"");
        ws(g);
        put(g, ":");
        ws(g);
        value(g, depth + 1);
        ws(g);
    }
    put(g, "}");
}

static void
array(gen *g, int depth)
{
    put(g, "[");
    ws(g);
    int n = (int)below(g, 5);
    for (int i = 0; i < n; i++) {
        put(g, i ? "," : "");
        ws(g);
        value(g, depth + 1);
        ws(g);
    }
    put(g, "]");
}

static void
value(gen *g, int depth)
{
    if (below(g, 200) == 0) {
        put(g, bad_tokens[below(g, sizeof bad_tokens / sizeof bad_tokens[0])]);
        return;
    }
    uint64_t r = below(g, depth > 4 ? 6 : 10);
    switch (r) {
    case 0:
    case 1:
        put(g, numbers[below(g, sizeof numbers / sizeof numbers[0])]);
        break;
    case 2:
    case 3:
        put(g, strings[below(g, sizeof strings / sizeof strings[0])]);
        break;
    case 4:
        put(g, (const char *[]){"true", "false", "null"}[below(g, 3)]);
        break;
    case 5: {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)below(g, 2000) - 1000);
        put(g, b);
        break;
    }
    case 6:
    case 7: object(g, depth); break;
    default: array(g, depth); break;
    }
}

/* A random document: mostly an object, sometimes an array or a scalar. */
static void
document(gen *g)
{
    g->out.len = 0;
    ws(g);
    uint64_t r = below(g, 20);
    if (r < 16) {
        object(g, 0);
    } else if (r < 19) {
        array(g, 0);
    } else {
        value(g, 5);
    }
    ws(g);
}

static const uint8_t tricky[] = {'"', '\\', '{',  '}',  '[',  ']',  ',', ':',
                                 0,   0x1f, 0x80, 0xc0, 0xed, 0xf5, 'x', '0',
                                 '-', '.',  'e',  'u',  ' ',  'n',  't'};

/* A byte-level mutation of document d (length n) into m. */
static size_t
mutate(gen *g, const uint8_t *d, size_t n, uint8_t *m)
{
    memcpy(m, d, n);
    size_t at = n ? below(g, n) : 0;
    uint8_t c = tricky[below(g, sizeof tricky)];
    switch (below(g, 3)) {
    case 0: return at; /* truncated */
    case 1:
        if (n) {
            m[at] = c;
        }
        return n;
    default:
        memmove(m + at + 1, m + at, n - at);
        m[at] = c;
        return n + 1;
    }
}

static void
test_random_documents(void **state)
{
    (void)state;
    views v;
    views_open(&v);
    gen g = {tu_seed(), {0}};
    const char *it = getenv("SPRIG_JSON_SCAN_DOCS");
    unsigned long docs = it ? strtoul(it, NULL, 10) : 20000;
    uint8_t *m = NULL;
    size_t cap = 0;
    for (unsigned long i = 0; i < docs; i++) {
        document(&g);
        compare(&v, (const char *)g.out.data, g.out.len);
        if (cap < g.out.len + 1) {
            cap = 2 * (g.out.len + 1);
            m = realloc(m, cap);
            assert_non_null(m);
        }
        for (int k = 0; k < 3; k++) {
            size_t len = mutate(&g, g.out.data, g.out.len, m);
            compare(&v, (const char *)m, len);
        }
    }
    free(m);
    sprig_buf_clear(&g.out);
    print_message("json scan: %lu valid, %lu invalid documents, %lu pairs\n",
                  n_valid, n_invalid, n_pairs);
    assert_true(n_valid > docs / 2 && n_invalid > docs / 2);
    assert_true(n_pairs > docs / 2); /* the views matched often */
    views_close(&v);
}

/* ---- fixed cases ----------------------------------------------------------
 */

static void
check(views *v, const char *doc, bool want_valid)
{
    compare(v, doc, strlen(doc));
    bool ok = sprig__jscan_run(v->scan, sprig_str(doc), v->nodes);
    if (ok != want_valid) {
        print_message("expected %s: %s\n", want_valid ? "valid" : "invalid",
                      doc);
        fail();
    }
}

static void
test_fixed_cases(void **state)
{
    (void)state;
    views v;
    views_open(&v);
    check(&v, "{\"a\":1}", true);
    check(&v, "  [1,2]  ", true);
    check(&v, "1", false); /* top level must be an object or array */
    check(&v, "\"s\"", false);
    check(&v, "", false);
    check(&v, "{\"a\":1} x", false);
    check(&v, "{\"a\":1,}", false);
    check(&v, "[1,]", false);
    check(&v, "{\"a\" 1}", false);
    check(&v, "{\"\\u0000\":1}", false);    /* NUL in a key */
    check(&v, "{\"s\":\"\\u0000\"}", true); /* NUL in a value */
    check(&v, "{\"a\":9223372036854775808}", false);
    check(&v, "{\"a\":-9223372036854775808}", true);
    check(&v, "{\"a\":1e309}", false);
    check(&v, "{\"a\":1e-400}", true);
    check(&v, "{\"a\":01}", false);
    check(&v, "{\"a\":\"\\ud800\"}", false);
    check(&v, "{\"a\":\"\xed\xa0\x80\"}", false);
    check(&v, "{\"a\":tru}", false);
    check(&v, "{\"a\":truex}", false);
    check(&v, "{\"a\":1,\"a\":{\"x\":2}}", true); /* the last one wins */
    check(&v, "{\"b\":{\"c\":1},\"b\":2,\"v\":3}", true);
    check(&v, "{\"\\u0061\":\"escaped key\"}", true);
    check(&v, "{\"arr\":[1,\"x\",[2],{\"a\":1},null,true,2.5],\"n\":7}", true);
    check(&v, "{\"n\":1,\"arr\":{\"b\":[1,{\"c\":2}],\"a\":\"t\"}}", true);
    check(&v, "{\"obj\":{\"a\":{\"b\":\"k\"},\"arr\":[{\"z\":1}]}}", true);
    check(&v, "[\"zero\",{\"one\":1}]", true);
    check(&v, "{\"a\":\"x\",\"k\\u00e9y\":\"y\"}", true);
    views_close(&v);
}

/* Nesting: jansson refuses values deeper than 2048; so must the scanner. */
static void
test_depth_limit(void **state)
{
    (void)state;
    views v;
    views_open(&v);
    for (int d = 2045; d <= 2050; d++) {
        for (int scalar = 0; scalar < 2; scalar++) {
            sprig_buf b = {0};
            for (int i = 0; i < d; i++) {
                SPRIG_OK_(sprig_buf_append(
                    &b, i % 2 ? "[" : "{\"a\":", i % 2 ? 1 : 5));
            }
            if (scalar) {
                SPRIG_OK_(sprig_buf_append(&b, "1", 1));
            } else {
                SPRIG_OK_(sprig_buf_append(&b, "[]", 2));
            }
            for (int i = d - 1; i >= 0; i--) {
                SPRIG_OK_(sprig_buf_append(&b, i % 2 ? "]" : "}", 1));
            }
            compare(&v, (const char *)b.data, b.len);
            sprig_buf_clear(&b);
        }
    }
    views_close(&v);
}

/* More than 64 distinct paths: no scanner (the tree serves). */
static void
test_too_many_paths(void **state)
{
    (void)state;
    sprig_view_def many[33];
    char names[33][16], keys2[33][80];
    sprig__jview *jv[33];
    for (int i = 0; i < 33; i++) {
        snprintf(names[i], sizeof names[i], "v%d", i);
        snprintf(keys2[i], sizeof keys2[i], "k%d", i);
        many[i] = (sprig_view_def){
            .name = names[i], .json_key = keys2[i], .json_value = names[i]};
        SPRIG_OK_(sprig__jview_new(&many[i], &jv[i]));
    }
    sprig__jscan *s = (sprig__jscan *)1;
    SPRIG_OK_(sprig__jscan_new((const sprig__jview *const *)jv, 32, &s));
    assert_non_null(s); /* 64 paths fit */
    assert_int_equal(sprig__jscan_paths(s), 64);
    sprig__jscan_free(s);
    SPRIG_OK_(sprig__jscan_new((const sprig__jview *const *)jv, 33, &s));
    assert_null(s);
    for (int i = 0; i < 33; i++) {
        sprig__jview_free(jv[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_cases),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_too_many_paths),
        cmocka_unit_test(test_random_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
