/*
 * view-examples.c -- views (map/reduce indexes), the counterpart of
 * BonsaiDb's view-examples: a collection of shapes, each with a number of
 * sides, and a view "by-number-of-sides" whose map emits (sides, 1) for
 * every shape and whose reduce sums the ones -- a count.  It queries the
 * view by key, with the source documents, reduces it by key and by key
 * range, groups it, pages through it, and then does the same with a
 * declarative view over the JSON documents (no C code: the kind a schema
 * file declares).  Everything it uses is in <sprig/sprig.h>.
 *
 * Build (outside the Sprig tree, after `make install`):
 *     cc view-examples.c $(pkg-config --cflags --libs sprig) -o view-examples
 * Run:
 *     ./view-examples [DIRECTORY]        (default: view-examples.sprig)
 * Each run starts by deleting the shapes an earlier run left (through the
 * view: sprig_view_delete_docs), so it prints the same every time.
 */
#include <sprig/sprig.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the view in C ----------------------------------------------------------
 *
 * Documents are JSON such as {"sides":3}.  The map function reads the
 * number of sides and emits one mapping: the key is the number, encoded
 * with sprig_key_u64() so keys sort as numbers; the value is a count of 1,
 * also 8 big-endian bytes.  A document can emit any number of mappings.
 */
static int
parse_sides(const sprig_doc *doc, unsigned *sides)
{
    char text[64];
    sprig_bytes c = sprig_doc_contents(doc);
    if (c.len >= sizeof text) {
        return 0;
    }
    memcpy(text, c.data, c.len);
    text[c.len] = 0;
    return sscanf(text, "{\"sides\":%u}", sides) == 1;
}

static int
map_sides(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    unsigned sides;
    uint8_t key[8], one[8];
    (void)udata;
    if (!parse_sides(doc, &sides)) {
        return 0; /* not a shape: no mapping */
    }
    sprig_key_u64(sides, key);
    sprig_key_u64(1, one);
    return sprig_emit(e, (sprig_bytes){key, 8}, (sprig_bytes){one, 8});
}

/* The reduce sums the values.  Without `rereduce` they are the values the
 * map emitted for one key (ones); with it they are earlier sums, which add
 * up the same way -- so one function serves both. */
static int
reduce_count(const sprig_bytes *values, size_t n, bool rereduce, sprig_buf *out,
             void *udata)
{
    uint64_t sum = 0, v;
    uint8_t b[8];
    (void)rereduce;
    (void)udata;
    for (size_t i = 0; i < n; i++) {
        if (sprig_key_decode_u64(values[i], &v) != 0) {
            return SPRIG_ECORRUPT;
        }
        sum += v;
    }
    sprig_key_u64(sum, b);
    return sprig_buf_append(out, b, 8);
}

/* Two views over the same collection: the C one (indexed when queried:
 * the lazy policy, the default) and the same count declared over the JSON
 * field, kept current by every write (eager). */
static const sprig_view_def shape_views[] = {
    {.name = "by-number-of-sides",
     .version = 1,
     .policy = SPRIG_VIEW_LAZY,
     .map = map_sides,
     .reduce = reduce_count},
    {.name = "by-sides-json",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "sides",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def collections[] = {
    {.name = "shapes",
     .id_kind = SPRIG_ID_U64,
     .views = shape_views,
     .n_views = 2},
};
static const sprig_schema_def schema = {
    .name = "view-examples",
    .collections = collections,
    .n_collections = 1,
};

static int
report(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "view-examples: %s: %s: %s\n", what, sprig_strerror(rc),
                sprig_errmsg());
        exit(1);
    }
    return rc;
}

static void
push_shape(sprig_db *db, unsigned sides)
{
    char json[32];
    snprintf(json, sizeof json, "{\"sides\":%u}", sides);
    report(sprig_insert(db, "shapes", NULL, sprig_str(json), NULL),
           "inserting a shape");
}

/* The reduced count of query q (C view: 8 big-endian bytes). */
static uint64_t
count(sprig_db *db, const sprig_view_query *q)
{
    sprig_buf out = {0};
    uint64_t n = 0;
    report(sprig_view_reduce(db, q, &out), "reducing");
    report(sprig_key_decode_u64(sprig_buf_bytes(&out), &n), "decoding");
    sprig_buf_clear(&out);
    return n;
}

static uint64_t
u64_of(sprig_bytes b)
{
    uint64_t v = 0;
    report(sprig_key_decode_u64(b, &v), "decoding");
    return v;
}

static void
c_view(sprig_db *db)
{
    sprig_view_query q;
    sprig_mapping_list *l;
    uint8_t k3[8], k4[8], k5[8];
    sprig_key_u64(3, k3);
    sprig_key_u64(4, k4);
    sprig_key_u64(5, k5);

    /* Query by key: the mappings whose key is 3. */
    sprig_view_query_init(&q, "shapes", "by-number-of-sides");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = (sprig_bytes){k3, 8};
    report(sprig_view_query_mappings(db, &q, &l), "querying");
    printf("Number of triangles: %zu\n", sprig_mapping_list_count(l));
    /* Each mapping has the key, the value and the source document's
     * header (its id and revision). */
    printf("Triangles:\n");
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        sprig_header h = sprig_mapping_list_source(l, i);
        printf("  source id %llu (revision %llu): key %llu, value %llu\n",
               (unsigned long long)u64_of(h.id), (unsigned long long)h.revision,
               (unsigned long long)u64_of(sprig_mapping_list_key(l, i)),
               (unsigned long long)u64_of(sprig_mapping_list_value(l, i)));
    }
    sprig_mapping_list_free(l);

    /* The documents themselves come along with ..._with_docs. */
    report(sprig_view_query_with_docs(db, &q, &l), "querying with docs");
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        const sprig_doc *d = sprig_mapping_list_doc(l, i);
        sprig_bytes c = sprig_doc_contents(d);
        printf("Shape ID %llu is %.*s\n",
               (unsigned long long)u64_of(sprig_doc_header(d).id), (int)c.len,
               (const char *)c.data);
    }
    sprig_mapping_list_free(l);

    /* Reduce: the count over one key, over a key range, over all. */
    q.match.key = (sprig_bytes){k4, 8};
    printf("Number of quads: %llu (expected 2)\n",
           (unsigned long long)count(db, &q));
    q.match.kind = SPRIG_MATCH_RANGE;
    q.match.range.start = (sprig_bound){SPRIG_INCLUDED, {k3, 8}};
    q.match.range.end = (sprig_bound){SPRIG_INCLUDED, {k5, 8}};
    printf("Number of shapes with 3 to 5 sides: %llu (expected 6)\n",
           (unsigned long long)count(db, &q));
    q.match.kind = SPRIG_MATCH_ALL;
    printf("Number of shapes in total: %llu (expected 21)\n",
           (unsigned long long)count(db, &q));
}

static void
grouped_and_paged(sprig_db *db)
{
    sprig_view_query q;
    sprig_mapping_list *l;

    /* Grouped reduce: one count per key, here the four largest keys. */
    sprig_view_query_init(&q, "shapes", "by-number-of-sides");
    q.order = SPRIG_DESC;
    q.limit = 4;
    report(sprig_view_reduce_grouped(db, &q, &l), "grouping");
    printf("Counts of the four largest side numbers:");
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        printf(" %llu:%llu",
               (unsigned long long)u64_of(sprig_mapping_list_key(l, i)),
               (unsigned long long)u64_of(sprig_mapping_list_value(l, i)));
    }
    printf("\n");
    sprig_mapping_list_free(l);

    /* Pagination: pages of 8 mappings, each continuing after the last
     * mapping (key and source id) of the one before. */
    uint8_t after_key[8], after_id[8];
    size_t pages = 0, total = 0, n;
    sprig_view_query_init(&q, "shapes", "by-number-of-sides");
    q.limit = 8;
    do {
        report(sprig_view_query_mappings(db, &q, &l), "paging");
        n = sprig_mapping_list_count(l);
        if (n > 0) {
            memcpy(after_key, sprig_mapping_list_key(l, n - 1).data, 8);
            memcpy(after_id, sprig_mapping_list_source(l, n - 1).id.data, 8);
            q.has_after = true;
            q.after_key = (sprig_bytes){after_key, 8};
            q.after_id = (sprig_bytes){after_id, 8};
            pages++;
            total += n;
        }
        sprig_mapping_list_free(l);
    } while (n == q.limit);
    printf("Paged through %zu mappings in %zu pages\n", total, pages);
}

/* The declarative view: keys are JSON values (sprig_key_from_json encodes
 * a query key; sprig_key_to_json prints one), results are JSON text. */
static void
json_view(sprig_db *db)
{
    sprig_view_query q;
    sprig_buf key = {0}, lo = {0}, hi = {0}, out = {0};
    report(sprig_key_from_json("3", 1, &key), "encoding a key");
    sprig_view_query_init(&q, "shapes", "by-sides-json");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_buf_bytes(&key);
    report(sprig_view_reduce(db, &q, &out), "reducing");
    printf("JSON view: triangles: %.*s\n", (int)out.len, (char *)out.data);
    report(sprig_key_from_json("3", 1, &lo), "encoding a key");
    report(sprig_key_from_json("5", 1, &hi), "encoding a key");
    q.match.kind = SPRIG_MATCH_RANGE;
    q.match.range.start = (sprig_bound){SPRIG_INCLUDED, sprig_buf_bytes(&lo)};
    q.match.range.end = (sprig_bound){SPRIG_INCLUDED, sprig_buf_bytes(&hi)};
    report(sprig_view_reduce(db, &q, &out), "reducing");
    printf("JSON view: shapes with 3 to 5 sides: %.*s\n", (int)out.len,
           (char *)out.data);
    sprig_mapping_list *l;
    q.limit = 3;
    report(sprig_view_reduce_grouped(db, &q, &l), "grouping");
    printf("JSON view: grouped:");
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        sprig_buf k = {0};
        sprig_bytes v = sprig_mapping_list_value(l, i);
        report(sprig_key_to_json(sprig_mapping_list_key(l, i), &k), "key");
        printf(" %.*s=%.*s", (int)k.len, (char *)k.data, (int)v.len,
               (const char *)v.data);
        sprig_buf_clear(&k);
    }
    printf("\n");
    sprig_mapping_list_free(l);
    sprig_buf_clear(&key);
    sprig_buf_clear(&lo);
    sprig_buf_clear(&hi);
    sprig_buf_clear(&out);
}

int
main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "view-examples.sprig";
    sprig_db *db;
    report(sprig_db_open_local(path, &schema, &db), "opening");

    /* Start afresh: delete every document the view maps (all shapes). */
    sprig_view_query all;
    uint64_t deleted;
    sprig_view_query_init(&all, "shapes", "by-number-of-sides");
    report(sprig_view_delete_docs(db, &all, &deleted), "deleting");
    printf("Deleted %llu shapes of an earlier run\n",
           (unsigned long long)deleted);

    /* Seed: shapes with 3 to 20 sides, plus a few more with 3 and 4. */
    push_shape(db, 3);
    for (unsigned sides = 3; sides <= 20; sides++) {
        push_shape(db, sides);
    }
    push_shape(db, 3);
    push_shape(db, 4);

    c_view(db);
    grouped_and_paged(db);
    json_view(db);
    sprig_db_close(db);
    return 0;
}
