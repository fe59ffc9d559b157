/*
 * test_views.c -- C views (F4): each update policy (lazy, eager, unique),
 * each access policy, every match kind in both orders with limits and
 * pagination, reduce and grouped reduce with re-reduce, unique violations
 * rolling back the whole transaction, reindexing on a version change,
 * delete_docs, documents fetched with their mappings, C views whose code is
 * not loaded, and argument errors.  Every answer is compared with a
 * brute-force scan of the collection (viewtest.h).
 *
 * Documents are text "CATEGORY VALUE NAME": by_cat maps them to
 * (tuple(CATEGORY), VALUE as 8 big-endian bytes) and sums the values with a
 * C reduce that counts its re-reduce calls.
 */
#include "viewtest.h"

#include <sched.h>
#include <stdatomic.h>

static atomic_int rereduce_calls;
static atomic_int map_fail; /* make the maps fail */

/* "CAT VAL NAME" -> fields (cat "-" emits nothing). */
static bool
parse(const sprig_doc *d, char *cat, unsigned long long *val, char *name)
{
    char buf[256];
    sprig_bytes c = sprig_doc_contents(d);
    if (c.len >= sizeof buf) {
        return false;
    }
    memcpy(buf, c.data, c.len);
    buf[c.len] = 0;
    return sscanf(buf, "%63s %llu %63s", cat, val, name) == 3;
}

static int
map_cat(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    char cat[64], name[64];
    unsigned long long val;
    if (atomic_load(&map_fail)) {
        return SPRIG_EINVAL;
    }
    if (!parse(d, cat, &val, name) || strcmp(cat, "-") == 0) {
        return 0;
    }
    sprig_key_builder kb = {0};
    uint8_t v[8];
    sprig_key_u64(val, v);
    int rc = sprig_key_add_str(&kb, cat);
    rc = rc ? rc : sprig_emit(e, sprig_key_bytes(&kb), (sprig_bytes){v, 8});
    sprig_key_builder_clear(&kb);
    return rc;
}

/* Sum of 8-byte big-endian values; re-reduce sums the sums. */
static int
reduce_sum(const sprig_bytes *vals, size_t n, bool rereduce, sprig_buf *out,
           void *udata)
{
    uint64_t sum = 0, x;
    if (rereduce) {
        atomic_fetch_add(&rereduce_calls, 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (sprig_key_decode_u64(vals[i], &x)) {
            return SPRIG_ECORRUPT;
        }
        sum += x;
    }
    uint8_t b[8];
    sprig_key_u64(sum, b);
    return sprig_buf_append(out, b, 8);
}

static int
map_name(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    char cat[64], name[64];
    unsigned long long val;
    if (!parse(d, cat, &val, name) || strcmp(name, "-") == 0) {
        return 0;
    }
    sprig_key_builder kb = {0};
    int rc = sprig_key_add_str(&kb, name);
    rc = rc ? rc : sprig_emit(e, sprig_key_bytes(&kb), sprig_str(""));
    sprig_key_builder_clear(&kb);
    return rc;
}

/* One mapping per character of the name (duplicates included). */
static int
map_chars(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    char cat[64], name[64];
    unsigned long long val;
    if (!parse(d, cat, &val, name)) {
        return 0;
    }
    for (size_t i = 0; name[i]; i++) {
        sprig_key_builder kb = {0};
        char s[2] = {name[i], 0};
        int rc = sprig_key_add_str(&kb, s);
        rc = rc ? rc : sprig_emit(e, sprig_key_bytes(&kb), sprig_str(name));
        sprig_key_builder_clear(&kb);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

/* Emits a key over SPRIG_KEY_MAX for category "huge". */
static int
map_huge(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    char cat[64], name[64];
    unsigned long long val;
    static uint8_t big[SPRIG_KEY_MAX + 1];
    if (parse(d, cat, &val, name) && strcmp(cat, "huge") == 0) {
        return sprig_emit(e, (sprig_bytes){big, sizeof big}, sprig_str(""));
    }
    return 0;
}

static const sprig_view_def post_views[] = {
    {.name = "by_cat", .version = 1, .map = map_cat, .reduce = reduce_sum},
    {.name = "by_cat_eager",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .map = map_cat,
     .reduce = reduce_sum},
    {.name = "by_name",
     .version = 1,
     .policy = SPRIG_VIEW_UNIQUE,
     .map = map_name},
    {.name = "chars",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .map = map_chars},
    {.name = "count_cat",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .map = map_cat,
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def post_colls[] = {
    {"posts", SPRIG_ID_U64, 0, post_views, 5},
    {"other", SPRIG_ID_NATURAL, 0, NULL, 0},
};
static const sprig_schema_def post_schema = {"blog", post_colls, 2};

static const char *cats[] = {"art", "news", "sport", "tech", "travel"};

static sprig_db *
open_db(const char *tag)
{
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(tu_tmpdir(tag), &post_schema, &db));
    return db;
}

static sprig_header_buf
put(sprig_db *db, const char *cat, unsigned val, const char *name)
{
    char buf[200];
    sprig_header_buf hb;
    snprintf(buf, sizeof buf, "%s %u %s", cat, val, name);
    SPRIG_OK_(sprig_insert(db, "posts", NULL, sprig_str(buf), &hb));
    return hb;
}

/* Insert n posts over the categories with distinct names. */
static void
fill(sprig_db *db, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%03u", i);
        put(db, cats[(i * 7) % 5], i + 1, name);
    }
}

static sprig_map_fn
map_of(const char *view)
{
    return strcmp(view, "by_name") == 0 ? map_name
           : strcmp(view, "chars") == 0 ? map_chars
                                        : map_cat;
}

static void
expect(sprig_db *db, const char *view, vt_ms *out)
{
    sprig_doc_list *docs = vt_all_docs(db, "posts");
    vt_expect_c(docs, map_of(view), NULL, out);
    sprig_doc_list_free(docs);
}

static sprig_mapping_list *
query(sprig_db *db, const sprig_view_query *q)
{
    sprig_mapping_list *l = NULL;
    SPRIG_OK_(sprig_view_query_mappings(db, q, &l));
    return l;
}

/* Each view equals the brute force over the collection. */
static void
check_views(sprig_db *db)
{
    static const char *names[] = {"by_cat", "by_cat_eager", "by_name", "chars",
                                  "count_cat"};
    for (size_t i = 0; i < 5; i++) {
        vt_ms want = {0};
        sprig_view_query q;
        expect(db, names[i], &want);
        sprig_view_query_init(&q, "posts", names[i]);
        sprig_mapping_list *l = query(db, &q);
        vt_check_all(l, &want, names[i]);
        sprig_mapping_list_free(l);
        vt_ms_free(&want);
    }
}

static void
cat_key(const char *cat, sprig_key_builder *kb)
{
    sprig_key_builder_clear(kb);
    memset(kb, 0, sizeof *kb);
    SPRIG_OK_(sprig_key_add_str(kb, cat));
}

/* ---- policies ------------------------------------------------------------ */

static void
test_policies_and_maintenance(void **state)
{
    sprig_db *db = open_db("views-policies");
    fill(db, 40);
    check_views(db);
    /* updates move documents between keys; deletes remove them */
    sprig_doc_list *docs = vt_all_docs(db, "posts");
    for (size_t i = 0; i < sprig_doc_list_count(docs); i += 3) {
        sprig_header h = sprig_doc_header(sprig_doc_list_get(docs, i));
        char buf[64], name[32];
        snprintf(name, sizeof name, "u%03zu", i);
        snprintf(buf, sizeof buf, "%s %zu %s", i % 2 ? "-" : "news", i * 10,
                 name);
        SPRIG_OK_(sprig_update(db, "posts", &h, sprig_str(buf), NULL));
    }
    for (size_t i = 1; i < sprig_doc_list_count(docs); i += 5) {
        sprig_doc *d;
        sprig_header h0 = sprig_doc_header(sprig_doc_list_get(docs, i));
        SPRIG_OK_(sprig_get(db, "posts", h0.id, &d));
        sprig_header h = sprig_doc_header(d);
        SPRIG_OK_(sprig_delete(db, "posts", &h));
        sprig_doc_free(d);
    }
    sprig_doc_list_free(docs);
    check_views(db);
    /* writing identical contents changes nothing */
    sprig_header_buf hb = put(db, "art", 1, "same");
    sprig_header h = sprig_header_of(&hb);
    SPRIG_OK_(sprig_update(db, "posts", &h, sprig_str("art 1 same"), NULL));
    check_views(db);
    sprig_db_close(db);
}

static void
test_lazy_pending_and_access(void **state)
{
    sprig_db *db = open_db("views-access");
    fill(db, 10);
    sprig_view_query q;
    sprig_buf r = {0};
    uint64_t sum;
    sprig_view_query_init(&q, "posts", "by_cat");
    q.access = SPRIG_NO_UPDATE; /* never queried: nothing indexed yet */
    sprig_mapping_list *l = query(db, &q);
    assert_int_equal(sprig_mapping_list_count(l), 0);
    sprig_mapping_list_free(l);
    q.access = SPRIG_UPDATE_BEFORE;
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &sum));
    assert_int_equal(sum, 55);
    /* update-after answers from the index as it stands ... */
    put(db, "art", 100, "late");
    q.access = SPRIG_UPDATE_AFTER;
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &sum));
    assert_int_equal(sum, 55);
    /* ... and the background indexer catches up */
    q.access = SPRIG_NO_UPDATE;
    for (int i = 0; i < 5000 && sum != 155; i++) {
        usleep(2000);
        SPRIG_OK_(sprig_view_reduce(db, &q, &r));
        SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &sum));
    }
    assert_int_equal(sum, 155);
    /* eager views never lag, whatever the access */
    put(db, "art", 1000, "later");
    sprig_view_query_init(&q, "posts", "by_cat_eager");
    q.access = SPRIG_NO_UPDATE;
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &sum));
    assert_int_equal(sum, 1155);
    /* close with the background indexer busy: it stops cleanly */
    for (unsigned i = 0; i < 50; i++) {
        put(db, "news", i, "-");
    }
    sprig_view_query_init(&q, "posts", "by_cat");
    q.access = SPRIG_UPDATE_AFTER;
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    sprig_buf_clear(&r);
    sprig_db_close(db);
}

/* A lazy view's pending documents survive a reopen. */
static void
test_lazy_pending_survives_reopen(void **state)
{
    const char *dir = tu_tmpdir("views-reopen");
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(dir, &post_schema, &db));
    fill(db, 12);
    sprig_db_close(db);
    SPRIG_OK_(sprig_db_open_local(dir, &post_schema, &db));
    check_views(db);
    sprig_db_close(db);
}

/* ---- queries ----------------------------------------------------------------
 */

/* Check one match against the brute force, in both orders, whole and
 * paged with several page sizes. */
static void
check_match(sprig_db *db, const char *view, sprig_view_query *q,
            bool (*in)(const vt_m *, const sprig_view_query *))
{
    vt_ms all = {0}, want = {0};
    expect(db, view, &all);
    for (size_t i = 0; i < all.n; i++) {
        if (in(&all.m[i], q)) {
            vt_ms_push(&want, sprig_buf_bytes(&all.m[i].key),
                       sprig_buf_bytes(&all.m[i].value),
                       sprig_buf_bytes(&all.m[i].id), all.m[i].rev);
        }
    }
    for (int desc = 0; desc < 2; desc++) {
        q->order = desc ? SPRIG_DESC : SPRIG_ASC;
        q->limit = 0;
        q->has_after = false;
        sprig_mapping_list *l = query(db, q);
        vt_check_range(l, &want, 0, want.n, desc, "whole");
        sprig_mapping_list_free(l);
        for (uint32_t page = 1; page <= 7; page += 3) {
            size_t seen = 0;
            q->limit = page;
            q->has_after = false;
            sprig_buf ak = {0}, ai = {0};
            for (;;) {
                l = query(db, q);
                size_t n = sprig_mapping_list_count(l);
                size_t exp = vt_page_len(&want, seen, page, desc);
                vt_check_range(l, &want, desc ? want.n - seen - exp : seen, exp,
                               desc, "page");
                seen += n;
                if (n) {
                    ak.len = ai.len = 0;
                    sprig_bytes k = sprig_mapping_list_key(l, n - 1);
                    sprig_header h = sprig_mapping_list_source(l, n - 1);
                    sprig_buf_append(&ak, k.data, k.len);
                    sprig_buf_append(&ai, h.id.data, h.id.len);
                    q->has_after = true;
                    q->after_key = sprig_buf_bytes(&ak);
                    q->after_id = sprig_buf_bytes(&ai);
                }
                sprig_mapping_list_free(l);
                if (seen == want.n) {
                    break;
                }
            }
            assert_int_equal(seen, want.n);
            sprig_buf_clear(&ak);
            sprig_buf_clear(&ai);
        }
    }
    q->has_after = false;
    q->limit = 0;
    q->order = SPRIG_ASC;
    vt_ms_free(&all);
    vt_ms_free(&want);
}

static bool
in_key(const vt_m *m, const sprig_view_query *q)
{
    return sprig__bytes_cmp(sprig_buf_bytes(&m->key), q->match.key) == 0;
}

static bool
in_keys(const vt_m *m, const sprig_view_query *q)
{
    for (size_t i = 0; i < q->match.n_keys; i++) {
        if (sprig__bytes_cmp(sprig_buf_bytes(&m->key), q->match.keys[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool
in_range(const vt_m *m, const sprig_view_query *q)
{
    return vt_in_range(sprig_buf_bytes(&m->key), &q->match.range);
}

static bool
in_prefix(const vt_m *m, const sprig_view_query *q)
{
    return m->key.len >= q->match.key.len &&
           (!q->match.key.len ||
            memcmp(m->key.data, q->match.key.data, q->match.key.len) == 0);
}

static bool
in_all(const vt_m *m, const sprig_view_query *q)
{
    return true;
}

static void
test_query_kinds(void **state)
{
    sprig_db *db = open_db("views-queries");
    fill(db, 30);
    put(db, "new", 7, "x");   /* a key that prefixes "news" */
    put(db, "newsy", 8, "y"); /* one that "news" prefixes */
    const char *views[] = {"by_cat", "chars"};
    for (size_t vi = 0; vi < 2; vi++) {
        sprig_view_query q;
        sprig_key_builder a = {0}, b = {0}, c = {0};
        sprig_view_query_init(&q, "posts", views[vi]);
        check_match(db, views[vi], &q, in_all);
        cat_key(vi ? "n" : "news", &a);
        q.match.kind = SPRIG_MATCH_KEY;
        q.match.key = sprig_key_bytes(&a);
        check_match(db, views[vi], &q, in_key);
        cat_key(vi ? "zz" : "zzz", &c); /* a key nobody emits */
        sprig_bytes keys[4] = {
            sprig_key_bytes(&a), sprig_key_bytes(&c), sprig_key_bytes(&a), {0}};
        cat_key(vi ? "0" : "art", &b);
        keys[3] = sprig_key_bytes(&b);
        q.match.kind = SPRIG_MATCH_KEYS;
        q.match.keys = keys;
        q.match.n_keys = 4;
        check_match(db, views[vi], &q, in_keys);
        q.match.kind = SPRIG_MATCH_RANGE;
        for (int s = 0; s < 3; s++) {
            for (int e = 0; e < 3; e++) {
                q.match.range.start =
                    (sprig_bound){(sprig_bound_kind)s, sprig_key_bytes(&b)};
                q.match.range.end =
                    (sprig_bound){(sprig_bound_kind)e, sprig_key_bytes(&a)};
                check_match(db, views[vi], &q, in_range);
            }
        }
        /* a range between keys, and an empty one */
        q.match.range.start =
            (sprig_bound){SPRIG_INCLUDED, sprig_key_bytes(&a)};
        q.match.range.end = (sprig_bound){SPRIG_EXCLUDED, sprig_key_bytes(&a)};
        check_match(db, views[vi], &q, in_range);
        q.match.kind = SPRIG_MATCH_PREFIX;
        uint8_t pfx[8];
        memcpy(pfx, sprig_key_bytes(&a).data, vi ? 2 : 4); /* tag + "new" */
        q.match.key = (sprig_bytes){pfx, vi ? 2 : 4};
        check_match(db, views[vi], &q, in_prefix);
        q.match.key = (sprig_bytes){pfx, 0};
        check_match(db, views[vi], &q, in_prefix);
        pfx[0] = 0xFF; /* beyond every key */
        q.match.key = (sprig_bytes){pfx, 1};
        check_match(db, views[vi], &q, in_prefix);
        sprig_key_builder_clear(&a);
        sprig_key_builder_clear(&b);
        sprig_key_builder_clear(&c);
    }
    sprig_db_close(db);
}

static void
test_with_docs(void **state)
{
    sprig_db *db = open_db("views-docs");
    fill(db, 8);
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_view_query_init(&q, "posts", "chars");
    SPRIG_OK_(sprig_view_query_with_docs(db, &q, &l));
    assert_true(sprig_mapping_list_count(l) > 8);
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        const sprig_doc *d = sprig_mapping_list_doc(l, i);
        assert_non_null(d);
        sprig_header h = sprig_doc_header(d),
                     s = sprig_mapping_list_source(l, i);
        assert_int_equal(h.revision, s.revision);
        assert_memory_equal(h.id.data, s.id.data, h.id.len);
        assert_memory_equal(h.hash, s.hash, 16);
        sprig_bytes v = sprig_mapping_list_value(l, i),
                    c = sprig_doc_contents(d);
        assert_true(c.len > v.len);
        assert_memory_equal((const char *)c.data + c.len - v.len, v.data,
                            v.len);
    }
    assert_null(sprig_mapping_list_doc(l, 100000));
    sprig_mapping_list_free(l);
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_null(sprig_mapping_list_doc(l, 0));
    sprig_mapping_list_free(l);
    sprig_db_close(db);
}

/* ---- reduce ----------------------------------------------------------------
 */

static uint64_t
brute_sum(sprig_db *db, const sprig_range *r, size_t *keys)
{
    vt_ms all = {0};
    uint64_t sum = 0, x;
    expect(db, "by_cat", &all);
    *keys = 0;
    for (size_t i = 0; i < all.n; i++) {
        if (!r || vt_in_range(sprig_buf_bytes(&all.m[i].key), r)) {
            SPRIG_OK_(
                sprig_key_decode_u64(sprig_buf_bytes(&all.m[i].value), &x));
            sum += x;
            *keys += i == 0 || vt_bcmp(&all.m[i].key, &all.m[i - 1].key);
        }
    }
    vt_ms_free(&all);
    return sum;
}

static void
test_reduce_and_grouped(void **state)
{
    sprig_db *db = open_db("views-reduce");
    fill(db, 50);
    const char *views[] = {"by_cat", "by_cat_eager"};
    for (size_t vi = 0; vi < 2; vi++) {
        sprig_view_query q;
        sprig_buf r = {0};
        uint64_t got;
        size_t keys;
        sprig_view_query_init(&q, "posts", views[vi]);
        atomic_store(&rereduce_calls, 0);
        SPRIG_OK_(sprig_view_reduce(db, &q, &r));
        SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &got));
        assert_int_equal(got, brute_sum(db, NULL, &keys));
        assert_true(atomic_load(&rereduce_calls) > 0); /* 5 keys combined */
        /* ranges: each bound kind */
        sprig_key_builder a = {0}, b = {0};
        cat_key("art", &a);
        cat_key("sport", &b);
        q.match.kind = SPRIG_MATCH_RANGE;
        for (int s = 0; s < 3; s++) {
            for (int e = 0; e < 3; e++) {
                q.match.range.start =
                    (sprig_bound){(sprig_bound_kind)s, sprig_key_bytes(&a)};
                q.match.range.end =
                    (sprig_bound){(sprig_bound_kind)e, sprig_key_bytes(&b)};
                SPRIG_OK_(sprig_view_reduce(db, &q, &r));
                uint64_t want = brute_sum(db, &q.match.range, &keys);
                if (keys == 0) { /* the C reduce of nothing: sum 0 */
                    assert_int_equal(r.len, 8);
                }
                SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &got));
                assert_int_equal(got, want);
            }
        }
        /* grouped: one entry per key, each the key's sum */
        sprig_view_query_init(&q, "posts", views[vi]);
        sprig_mapping_list *l;
        SPRIG_OK_(sprig_view_reduce_grouped(db, &q, &l));
        assert_int_equal(sprig_mapping_list_count(l), 5);
        for (size_t i = 0; i < 5; i++) {
            sprig_range one = {{SPRIG_INCLUDED, sprig_mapping_list_key(l, i)},
                               {SPRIG_INCLUDED, sprig_mapping_list_key(l, i)}};
            SPRIG_OK_(
                sprig_key_decode_u64(sprig_mapping_list_value(l, i), &got));
            assert_int_equal(got, brute_sum(db, &one, &keys));
            assert_int_equal(sprig_mapping_list_source(l, i).id.len, 0);
        }
        sprig_mapping_list_free(l);
        /* grouped, descending, paged by key */
        q.order = SPRIG_DESC;
        q.limit = 2;
        SPRIG_OK_(sprig_view_reduce_grouped(db, &q, &l));
        assert_int_equal(sprig_mapping_list_count(l), 2);
        sprig_buf last = {0};
        sprig_bytes k = sprig_mapping_list_key(l, 1);
        sprig_buf_append(&last, k.data, k.len);
        sprig_mapping_list_free(l);
        q.has_after = true;
        q.after_key = sprig_buf_bytes(&last);
        q.limit = 0;
        SPRIG_OK_(sprig_view_reduce_grouped(db, &q, &l));
        assert_int_equal(sprig_mapping_list_count(l), 3);
        assert_true(sprig__bytes_cmp(sprig_mapping_list_key(l, 0),
                                     sprig_buf_bytes(&last)) < 0);
        sprig_mapping_list_free(l);
        sprig_buf_clear(&last);
        sprig_key_builder_clear(&a);
        sprig_key_builder_clear(&b);
        sprig_buf_clear(&r);
    }
    sprig_db_close(db);
}

/* Per-key results stay right through additions (re-reduced into the stored
 * result), removals (recomputed) and moves, and the built-in count. */
static void
test_reduce_maintenance(void **state)
{
    sprig_db *db = open_db("views-reduce-maint");
    sprig_key_builder k = {0};
    cat_key("news", &k);
    sprig_view_query q;
    sprig_buf r = {0};
    uint64_t got, sum = 0, n = 0;
    sprig_view_query_init(&q, "posts", "by_cat_eager");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_key_bytes(&k);
    sprig_header_buf hb[20];
    atomic_store(&rereduce_calls, 0);
    for (unsigned i = 0; i < 20; i++) {
        hb[i] = put(db, "news", i + 1, "-");
        sum += i + 1;
    }
    assert_true(atomic_load(&rereduce_calls) >= 19); /* incremental adds */
    for (unsigned i = 0; i < 20; i += 4) { /* move some away, drop some */
        sprig_header h = sprig_header_of(&hb[i]);
        if (i % 8) {
            SPRIG_OK_(
                sprig_update(db, "posts", &h, sprig_str("art 1 -"), NULL));
        } else {
            SPRIG_OK_(sprig_delete(db, "posts", &h));
        }
        sum -= i + 1;
    }
    for (unsigned i = 0; i < 20; i++) {
        n += i % 4 != 0;
    }
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &got));
    assert_int_equal(got, sum);
    sprig_view_query_init(&q, "posts", "count_cat");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_key_bytes(&k);
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    char want[32];
    snprintf(want, sizeof want, "%llu", (unsigned long long)n);
    assert_int_equal(r.len, strlen(want));
    assert_memory_equal(r.data, want, r.len);
    /* a key with no mappings left has no grouped entry */
    sprig_view_query_init(&q, "posts", "count_cat");
    sprig_mapping_list *l;
    SPRIG_OK_(sprig_view_reduce_grouped(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 2); /* art, news */
    sprig_mapping_list_free(l);
    /* reduce over nothing */
    cat_key("none", &k);
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_key_bytes(&k);
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_int_equal(r.len, 1);
    assert_memory_equal(r.data, "0", 1);
    sprig_buf_clear(&r);
    sprig_key_builder_clear(&k);
    sprig_db_close(db);
}

/* ---- unique ----------------------------------------------------------------
 */

static void
test_unique_rollback(void **state)
{
    sprig_db *db = open_db("views-unique");
    sprig_header_buf a = put(db, "art", 1, "alice");
    put(db, "art", 2, "bob");
    uint64_t last;
    SPRIG_OK_(sprig_last_txn_id(db, &last));
    /* a second document with an existing key: SPRIG_EUNIQUE */
    sprig_header_buf hb;
    SPRIG_EXPECT(SPRIG_EUNIQUE, sprig_insert(db, "posts", NULL,
                                             sprig_str("news 9 alice"), &hb));
    /* in a transaction: nothing of it is stored, and the failed op named */
    sprig_txn *t;
    sprig_txn_result *res = NULL;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "posts", NULL, sprig_str("news 3 carol")));
    SPRIG_OK_(sprig_txn_insert(t, "other", &(sprig_bytes){"x", 1},
                               sprig_str("other")));
    SPRIG_OK_(sprig_txn_insert(t, "posts", NULL, sprig_str("news 4 bob")));
    SPRIG_EXPECT(SPRIG_EUNIQUE, sprig_txn_apply(db, t, &res));
    assert_non_null(res);
    assert_int_equal(sprig_txn_result_failed(res), 2);
    assert_int_equal(sprig_txn_result_error(res), SPRIG_EUNIQUE);
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    uint64_t count, now;
    SPRIG_OK_(sprig_count(db, "posts", NULL, &count));
    assert_int_equal(count, 2);
    SPRIG_OK_(sprig_count(db, "other", NULL, &count));
    assert_int_equal(count, 0);
    SPRIG_OK_(sprig_last_txn_id(db, &now));
    assert_int_equal(now, last);
    check_views(db);
    /* a document keeping its own key is fine; handing a key over within
     * one transaction is fine */
    sprig_header h = sprig_header_of(&a);
    SPRIG_OK_(sprig_update(db, "posts", &h, sprig_str("news 5 alice"), &hb));
    h = sprig_header_of(&hb);
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_update(t, "posts", &h, sprig_str("news 5 alicia")));
    SPRIG_OK_(sprig_txn_insert(t, "posts", NULL, sprig_str("art 6 alice")));
    SPRIG_OK_(sprig_txn_apply(db, t, NULL));
    sprig_txn_free(t);
    check_views(db);
    /* the violation is reported by key */
    SPRIG_EXPECT(SPRIG_EUNIQUE, sprig_insert(db, "posts", NULL,
                                             sprig_str("x 1 alicia"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "\"alicia\""));
    sprig_db_close(db);
}

/* ---- map failures, limits
 * ---------------------------------------------------- */

static const sprig_view_def huge_views[] = {
    {.name = "huge", .version = 1, .policy = SPRIG_VIEW_EAGER, .map = map_huge},
};
static const sprig_collection_def huge_colls[] = {
    {"posts", SPRIG_ID_U64, 0, huge_views, 1},
};
static const sprig_schema_def huge_schema = {"huge", huge_colls, 1};

static void
test_map_errors(void **state)
{
    sprig_db *db = open_db("views-maperr");
    put(db, "art", 1, "a");
    /* an eager map failing fails the write: nothing stored */
    atomic_store(&map_fail, 1);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert(db, "posts", NULL, sprig_str("art 2 b"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "map function"));
    atomic_store(&map_fail, 0);
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "posts", NULL, &n));
    assert_int_equal(n, 1);
    check_views(db);
    sprig_db_close(db);
    /* keys over SPRIG_KEY_MAX */
    SPRIG_OK_(sprig_db_open_local(tu_tmpdir("views-huge"), &huge_schema, &db));
    SPRIG_OK_(sprig_insert(db, "posts", NULL, sprig_str("small 1 a"), NULL));
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_insert(db, "posts", NULL, sprig_str("huge 1 a"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "SPRIG_KEY_MAX"));
    sprig_db_close(db);
}

/* A lazy view's map failing fails the query that indexes, and the
 * document stays pending until it works. */
static void
test_lazy_map_error(void **state)
{
    sprig_db *db = open_db("views-lazyerr");
    put(db, "art", 1, "a");
    sprig_view_query q;
    sprig_buf r = {0};
    sprig_view_query_init(&q, "posts", "by_cat");
    atomic_store(&map_fail, 1);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_reduce(db, &q, &r));
    atomic_store(&map_fail, 0);
    uint64_t got;
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    SPRIG_OK_(sprig_key_decode_u64(sprig_buf_bytes(&r), &got));
    assert_int_equal(got, 1);
    sprig_buf_clear(&r);
    sprig_db_close(db);
}

/* ---- versions
 * ---------------------------------------------------------------- */

static int
map_v1(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    return sprig_emit(e, sprig_str("v1"), sprig_doc_contents(d));
}

static int
map_v2(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    int rc = sprig_emit(e, sprig_str("v2"), sprig_doc_contents(d));
    return rc ? rc : sprig_emit(e, sprig_str("v2b"), sprig_str(""));
}

static sprig_schema_def
versioned(sprig_view_def *v, sprig_collection_def *c, unsigned version,
          sprig_map_fn map, sprig_view_policy policy)
{
    *v = (sprig_view_def){
        .name = "ver", .version = version, .policy = policy, .map = map};
    *c = (sprig_collection_def){"docs", SPRIG_ID_U64, 0, v, 1};
    return (sprig_schema_def){"ver", c, 1};
}

static size_t
count_key(sprig_db *db, const char *key)
{
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_view_query_init(&q, "docs", "ver");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_str(key);
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    size_t n = sprig_mapping_list_count(l);
    sprig_mapping_list_free(l);
    return n;
}

static void
test_reindex_on_version_change(void **state)
{
    const char *dir = tu_tmpdir("views-version");
    sprig_view_def v;
    sprig_collection_def c;
    sprig_db *db;
    sprig_schema_def s = versioned(&v, &c, 1, map_v1, SPRIG_VIEW_EAGER);
    SPRIG_OK_(sprig_db_open_local(dir, &s, &db));
    for (int i = 0; i < 2500; i++) { /* more than one rebuild chunk */
        SPRIG_OK_(sprig_insert(db, "docs", NULL, sprig_str("d"), NULL));
    }
    assert_int_equal(count_key(db, "v1"), 2500);
    sprig_db_close(db);
    /* same version, new code: the index is kept (the version decides) */
    s = versioned(&v, &c, 1, map_v2, SPRIG_VIEW_EAGER);
    SPRIG_OK_(sprig_db_open_local(dir, &s, &db));
    assert_int_equal(count_key(db, "v1"), 2500);
    assert_int_equal(count_key(db, "v2"), 0);
    sprig_db_close(db);
    /* a new version: rebuilt from scratch before the open returns */
    s = versioned(&v, &c, 2, map_v2, SPRIG_VIEW_EAGER);
    SPRIG_OK_(sprig_db_open_local(dir, &s, &db));
    assert_int_equal(count_key(db, "v1"), 0);
    assert_int_equal(count_key(db, "v2"), 2500);
    assert_int_equal(count_key(db, "v2b"), 2500);
    sprig_db_close(db);
    /* a policy change rebuilds too, and a lazy view answers right away */
    s = versioned(&v, &c, 2, map_v1, SPRIG_VIEW_LAZY);
    SPRIG_OK_(sprig_db_open_local(dir, &s, &db));
    assert_int_equal(count_key(db, "v1"), 2500);
    sprig_db_close(db);
    /* turning a view unique over duplicate data fails the open */
    s = versioned(&v, &c, 3, map_v1, SPRIG_VIEW_UNIQUE);
    SPRIG_EXPECT(SPRIG_EUNIQUE, sprig_db_open_local(dir, &s, &db));
}

/* ---- delete_docs
 * ------------------------------------------------------------- */

static void
test_delete_docs(void **state)
{
    sprig_db *db = open_db("views-delete");
    fill(db, 30);
    sprig_view_query q;
    sprig_key_builder k = {0};
    uint64_t deleted, n;
    cat_key("news", &k);
    sprig_view_query_init(&q, "posts", "by_cat");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_key_bytes(&k);
    vt_ms before = {0};
    expect(db, "by_cat", &before);
    size_t want = 0;
    for (size_t i = 0; i < before.n; i++) {
        want += sprig__bytes_cmp(sprig_buf_bytes(&before.m[i].key),
                                 sprig_key_bytes(&k)) == 0;
    }
    vt_ms_free(&before);
    SPRIG_OK_(sprig_view_delete_docs(db, &q, &deleted));
    assert_int_equal(deleted, want);
    SPRIG_OK_(sprig_count(db, "posts", NULL, &n));
    assert_int_equal(n, 30 - want);
    SPRIG_OK_(sprig_view_delete_docs(db, &q, &deleted));
    assert_int_equal(deleted, 0);
    check_views(db);
    /* documents with several matching mappings are deleted once */
    sprig_view_query_init(&q, "posts", "chars");
    SPRIG_OK_(sprig_view_delete_docs(db, &q, NULL));
    SPRIG_OK_(sprig_count(db, "posts", NULL, &n));
    assert_int_equal(n, 0);
    check_views(db);
    sprig_key_builder_clear(&k);
    sprig_db_close(db);
}

/* ---- C views without their code
 * ---------------------------------------------- */

static void
test_codeless(void **state)
{
    const char *dir = tu_tmpdir("views-codeless");
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(dir, &post_schema, &db));
    fill(db, 5);
    sprig_db_close(db);
    /* a tool: the storage without the program's schema */
    sprig_storage_options o;
    sprig_storage *st;
    sprig_storage_options_init(&o);
    o.path = dir;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    sprig_schema_list *sl;
    SPRIG_OK_(sprig_storage_list_schemas(st, &sl));
    const sprig_schema_def *s = sprig_schema_list_get(sl, 0);
    assert_int_equal(s->collections[0].n_views, 5);
    assert_string_equal(s->collections[0].views[2].name, "by_name");
    assert_int_equal(s->collections[0].views[2].policy, SPRIG_VIEW_UNIQUE);
    assert_non_null(s->collections[0].views[0].reduce);
    sprig_schema_list_free(sl);
    SPRIG_OK_(sprig_storage_open_database(st, "default", &db));
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_view_query_init(&q, "posts", "by_cat");
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_view_query_mappings(db, &q, &l));
    /* unique views without code refuse writes; others record them */
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_insert(db, "posts", NULL, sprig_str("art 1 z"), NULL));
    SPRIG_OK_(sprig_insert(db, "other", &(sprig_bytes){"k", 1},
                           sprig_str("fine"), NULL));
    sprig_db_close(db);
    sprig_storage_close(st);
    /* back with the code: everything consistent */
    SPRIG_OK_(sprig_db_open_local(dir, &post_schema, &db));
    check_views(db);
    sprig_db_close(db);
}

static const sprig_view_def lazy_only_views[] = {
    {.name = "by_cat", .version = 1, .map = map_cat, .reduce = reduce_sum},
    {.name = "by_cat_eager",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .map = map_cat,
     .reduce = reduce_sum},
};
static const sprig_collection_def lazy_only_colls[] = {
    {"posts", SPRIG_ID_U64, 0, lazy_only_views, 2},
};
static const sprig_schema_def lazy_only_schema = {"lazyonly", lazy_only_colls,
                                                  1};

/* Writes through a tool to lazy and eager C views are indexed when the
 * program comes back. */
static void
test_codeless_writes_caught_up(void **state)
{
    const char *dir = tu_tmpdir("views-codeless2");
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(dir, &lazy_only_schema, &db));
    put(db, "art", 1, "a");
    sprig_db_close(db);
    sprig_storage_options o;
    sprig_storage *st;
    sprig_storage_options_init(&o);
    o.path = dir;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_open_database(st, "default", &db));
    put(db, "art", 2, "b");
    put(db, "news", 3, "c");
    sprig_db_close(db);
    sprig_storage_close(st);
    SPRIG_OK_(sprig_db_open_local(dir, &lazy_only_schema, &db));
    const char *views[] = {"by_cat", "by_cat_eager"};
    for (int i = 0; i < 2; i++) {
        vt_ms want = {0};
        sprig_view_query q;
        expect(db, "by_cat", &want);
        assert_int_equal(want.n, 3);
        sprig_view_query_init(&q, "posts", views[i]);
        q.access = SPRIG_NO_UPDATE; /* eager: caught up at open */
        sprig_mapping_list *l = query(db, &q);
        if (i == 1) {
            vt_check_all(l, &want, views[i]);
        }
        sprig_mapping_list_free(l);
        q.access = SPRIG_UPDATE_BEFORE;
        l = query(db, &q);
        vt_check_all(l, &want, views[i]);
        sprig_mapping_list_free(l);
        vt_ms_free(&want);
    }
    sprig_db_close(db);
}

/* ---- arguments
 * ------------------------------------------------------------------ */

static void
test_arguments(void **state)
{
    sprig_db *db = open_db("views-args");
    sprig_view_query q;
    sprig_mapping_list *l = (void *)1;
    sprig_buf r = {0};
    uint8_t big[SPRIG_KEY_MAX + 1] = {0};
    sprig_view_query_init(&q, "posts", "by_cat");
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(NULL, &q, &l));
    assert_null(l);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, NULL, &l));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_reduce(db, &q, NULL));
    q.view = "nope";
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_view_query_mappings(db, &q, &l));
    q.view = "";
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    sprig_view_query_init(&q, "nope", "by_cat");
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_view_query_mappings(db, &q, &l));
    sprig_view_query_init(&q, "posts", "chars");
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_reduce(db, &q, &r));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_reduce_grouped(db, &q, &l));
    q.match.kind = (sprig_match_kind)99;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = (sprig_bytes){big, sizeof big};
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_view_query_mappings(db, &q, &l));
    q.match.key = (sprig_bytes){NULL, 0};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    q.match.kind = SPRIG_MATCH_KEYS;
    q.match.n_keys = 2;
    q.match.keys = NULL;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    q.match.kind = SPRIG_MATCH_RANGE;
    q.match.range.start.kind = (sprig_bound_kind)7;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    sprig_view_query_init(&q, "posts", "chars");
    q.order = (sprig_order)5;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    q.order = SPRIG_ASC;
    q.access = (sprig_view_access)9;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    q.access = SPRIG_NO_UPDATE;
    q.has_after = true;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_view_query_mappings(db, &q, &l));
    q.after_key = sprig_str("k");
    q.after_id = (sprig_bytes){big, SPRIG_ID_MAX + 1};
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_view_query_mappings(db, &q, &l));
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_view_delete_docs(db, &q, NULL));
    /* bad view definitions are refused at registration */
    sprig_view_def bad[2] = {{.name = "a", .map = map_cat},
                             {.name = "a", .map = map_cat}};
    sprig_collection_def bc = {"c", SPRIG_ID_U64, 0, bad, 2};
    sprig_schema_def bs = {"bad", &bc, 1};
    sprig_db *db2;
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_db_open_local(tu_tmpdir("views-bad"), &bs, &db2));
    bad[1] = (sprig_view_def){.name = "b"}; /* neither map nor json_key */
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_db_open_local(tu_tmpdir("views-bad"), &bs, &db2));
    bad[1] = (sprig_view_def){.name = "b",
                              .map = map_cat,
                              .reduce = reduce_sum,
                              .builtin_reduce = SPRIG_REDUCE_SUM};
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_db_open_local(tu_tmpdir("views-bad"), &bs, &db2));
    bad[1] = (sprig_view_def){
        .name = "b", .map = map_cat, .policy = (sprig_view_policy)8};
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_db_open_local(tu_tmpdir("views-bad"), &bs, &db2));
    sprig_view_query_init(NULL, "x", "y"); /* tolerated */
    sprig_db_close(db);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policies_and_maintenance),
        cmocka_unit_test(test_lazy_pending_and_access),
        cmocka_unit_test(test_lazy_pending_survives_reopen),
        cmocka_unit_test(test_query_kinds),
        cmocka_unit_test(test_with_docs),
        cmocka_unit_test(test_reduce_and_grouped),
        cmocka_unit_test(test_reduce_maintenance),
        cmocka_unit_test(test_unique_rollback),
        cmocka_unit_test(test_map_errors),
        cmocka_unit_test(test_lazy_map_error),
        cmocka_unit_test(test_reindex_on_version_change),
        cmocka_unit_test(test_delete_docs),
        cmocka_unit_test(test_codeless),
        cmocka_unit_test(test_codeless_writes_caught_up),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
