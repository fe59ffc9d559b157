/*
 * test_views_random.c -- thousands of random transactions against a
 * collection with six views (lazy and eager C views with a C reduce, a
 * unique C view, eager and lazy declarative views with built-in reduces),
 * every view checked against a brute-force scan of the collection.
 *
 * A model of the collection (id -> contents, revision) predicts the outcome
 * of each transaction -- success, or which operation fails with which error
 * (conflict, not found, unique violation) -- so rolled-back transactions are
 * proved to leave nothing behind.  Transactions have one to four operations
 * (insert, overwrite, update and delete with a right or wrong revision,
 * check) over a small id pool, so conflicts and duplicates are common.
 * Every CHECK_EVERY transactions: the collection equals the model, each view
 * equals the brute force (all mappings), and random queries (key, keys,
 * range, prefix, both orders, limits with pagination), reduces and grouped
 * reduces agree with the brute force.  The database is closed and reopened
 * now and then.  The seed is printed; SPRIG_SEED=N replays a run and
 * SPRIG_VIEW_RANDOM_TXNS sets the number of transactions (default 3000).
 */
#include "viewtest.h"

#define IDS 48
#define CHECK_EVERY 150
#define REOPEN_EVERY 1000

static uint64_t rng;

static uint64_t
rnd(uint64_t n)
{
    return tu_rand(&rng) % n;
}

/* ---- the views --------------------------------------------------------------
 */

/* C maps read the JSON too: (tuple(g), int(v) as 8 bytes). */
static int
map_g(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    sprig_bytes c = sprig_doc_contents(d);
    json_t *root = json_loadb(c.data, c.len, 0, NULL);
    json_t *g = root ? json_object_get(root, "g") : NULL;
    json_t *v = root ? json_object_get(root, "v") : NULL;
    int rc = 0;
    if (json_is_string(g) && json_is_number(v)) {
        sprig_key_builder kb = {0};
        uint8_t b[8];
        sprig_key_u64((uint64_t)(int64_t)json_number_value(v), b);
        rc = sprig_key_add_str(&kb, json_string_value(g));
        rc = rc ? rc : sprig_emit(e, sprig_key_bytes(&kb), (sprig_bytes){b, 8});
        sprig_key_builder_clear(&kb);
    }
    json_decref(root);
    return rc;
}

static int
map_u(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    sprig_bytes c = sprig_doc_contents(d);
    json_t *root = json_loadb(c.data, c.len, 0, NULL);
    json_t *u = root ? json_object_get(root, "u") : NULL;
    int rc = 0;
    if (json_is_integer(u)) {
        uint8_t b[8];
        sprig_key_u64((uint64_t)json_integer_value(u), b);
        rc = sprig_emit(e, (sprig_bytes){b, 8}, sprig_str("u"));
    }
    json_decref(root);
    return rc;
}

static int
reduce_sum(const sprig_bytes *vals, size_t n, bool rereduce, sprig_buf *out,
           void *udata)
{
    uint64_t sum = 0, x;
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

static const sprig_view_def item_views[] = {
    {.name = "lazy_c", .version = 1, .map = map_g, .reduce = reduce_sum},
    {.name = "eager_c",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .map = map_g,
     .reduce = reduce_sum},
    {.name = "uniq", .version = 1, .policy = SPRIG_VIEW_UNIQUE, .map = map_u},
    {.name = "j_sum",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "g",
     .json_value = "v",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = "j_tags",
     .version = 1,
     .json_key = "tags",
     .json_value = "v",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
    {.name = "j_min",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "n,g",
     .json_value = "v",
     .builtin_reduce = SPRIG_REDUCE_MIN},
};
#define NVIEWS 6
static const sprig_collection_def item_colls[] = {
    {"items", SPRIG_ID_NATURAL, 0, item_views, NVIEWS},
};
static const sprig_schema_def item_schema = {"rnd", item_colls, 1};

/* how the brute force computes each view */
static const struct {
    sprig_map_fn map; /* C views */
    const char *paths, *value;
} how[NVIEWS] = {
    {map_g, NULL, NULL}, {map_g, NULL, NULL}, {map_u, NULL, NULL},
    {NULL, "g", "v"},    {NULL, "tags", "v"}, {NULL, "n,g", "v"},
};

static void
expect(sprig_db *db, int vi, vt_ms *out)
{
    sprig_doc_list *docs = vt_all_docs(db, "items");
    if (how[vi].map) {
        vt_expect_c(docs, how[vi].map, NULL, out);
    } else {
        vt_expect_json(docs, how[vi].paths, how[vi].value, out);
    }
    sprig_doc_list_free(docs);
}

/* ---- the model
 * ------------------------------------------------------------------ */

typedef struct mdoc {
    bool exists;
    uint64_t rev;
    char text[160];
} mdoc;

static mdoc model[IDS], sim[IDS];

static void
id_of(int i, char out[8])
{
    snprintf(out, 8, "k%02d", i);
}

static void
random_contents(char *out, size_t n)
{
    static const char *groups[] = {"a", "b", "c", "d", "e"};
    if (rnd(25) == 0) {
        snprintf(out, n, "not json %d", (int)rnd(1000));
        return;
    }
    char u[24] = "", v[32], tags[64];
    if (rnd(3)) {
        snprintf(u, sizeof u, ",\"u\":%d", (int)rnd(60));
    }
    if (rnd(4) == 0) {
        snprintf(v, sizeof v, "%d.%s", (int)rnd(2000) - 1000,
                 rnd(2) ? "5" : "25");
    } else if (rnd(20) == 0) {
        snprintf(v, sizeof v, "\"text\"");
    } else {
        snprintf(v, sizeof v, "%d", (int)rnd(2000) - 1000);
    }
    int nt = (int)rnd(4);
    size_t k = (size_t)snprintf(tags, sizeof tags, "[");
    for (int i = 0; i < nt; i++) {
        k += (size_t)snprintf(tags + k, sizeof tags - k, "%s\"%s\"",
                              i ? "," : "", groups[rnd(5)]);
    }
    snprintf(tags + k, sizeof tags - k, "]");
    if (rnd(10) == 0) {
        snprintf(out, n, "{\"v\":%s,\"tags\":%s%s}", v, tags, u);
    } else {
        snprintf(out, n, "{\"g\":\"%s\",\"v\":%s,\"n\":%d,\"tags\":%s%s}",
                 groups[rnd(5)], v, (int)rnd(4), tags, u);
    }
}

/* The "u" of contents, or -1. */
static int
u_of(const char *text)
{
    const char *p = strstr(text, "\"u\":");
    return p && text[0] == '{' ? atoi(p + 4) : -1;
}

/* Does any other live document of `sim` share doc i's unique key? */
static bool
dup_u(int i)
{
    int u = sim[i].exists ? u_of(sim[i].text) : -1;
    for (int j = 0; u >= 0 && j < IDS; j++) {
        if (j != i && sim[j].exists && u_of(sim[j].text) == u) {
            return true;
        }
    }
    return false;
}

/* One operation, applied to `sim`: its expected error (0: success). */
typedef struct op {
    int kind; /* 0 insert, 1 overwrite, 2 update, 3 delete, 4 check */
    int id;
    bool wrong_rev;
    char text[160];
} op;

static int
simulate(const op *o)
{
    mdoc *d = &sim[o->id];
    if (o->kind == 0 && d->exists) {
        return SPRIG_ECONFLICT;
    }
    if (o->kind >= 2 && !d->exists) {
        return SPRIG_ENOTFOUND;
    }
    if (o->kind >= 2 && o->wrong_rev) {
        return SPRIG_ECONFLICT;
    }
    if (o->kind == 3) {
        d->exists = false;
        return 0;
    }
    if (o->kind == 4) {
        return 0;
    }
    bool changed = !d->exists || strcmp(d->text, o->text) != 0;
    if (changed) {
        d->rev = d->exists ? d->rev + 1 : 1;
        d->exists = true;
        snprintf(d->text, sizeof d->text, "%s", o->text);
        if (dup_u(o->id)) {
            return SPRIG_EUNIQUE;
        }
    }
    return 0;
}

static void
add_op(sprig_txn *t, const op *o)
{
    char id[8];
    id_of(o->id, id);
    sprig_bytes k = sprig_str(id);
    uint64_t rev = sim[o->id].rev; /* as the transaction left it so far */
    sprig_header h = {k, o->wrong_rev ? rev + 1 + rnd(2) : rev, {0}};
    switch (o->kind) {
    case 0:
        SPRIG_OK_(sprig_txn_insert(t, "items", &k, sprig_str(o->text)));
        break;
    case 1:
        SPRIG_OK_(sprig_txn_overwrite(t, "items", k, sprig_str(o->text)));
        break;
    case 2:
        SPRIG_OK_(sprig_txn_update(t, "items", &h, sprig_str(o->text)));
        break;
    case 3: SPRIG_OK_(sprig_txn_delete(t, "items", &h)); break;
    default: SPRIG_OK_(sprig_txn_check(t, "items", k, &h)); break;
    }
}

/* One random transaction, checked against the model's prediction. */
static void
random_txn(sprig_db *db, unsigned *failed)
{
    sprig_txn *t;
    int n = 1 + (int)rnd(rnd(3) ? 2 : 4), want = 0;
    long want_at = -1;
    memcpy(sim, model, sizeof sim);
    SPRIG_OK_(sprig_txn_new(&t));
    for (int i = 0; i < n; i++) {
        op o = {0};
        o.kind = (int)rnd(5);
        o.id = (int)rnd(IDS);
        o.wrong_rev = rnd(6) == 0;
        if (o.kind == 2 && rnd(3) == 0 && sim[o.id].exists) {
            snprintf(o.text, sizeof o.text, "%s", sim[o.id].text);
        } else {
            random_contents(o.text, sizeof o.text);
        }
        add_op(t, &o);
        int rc = want ? 0 : simulate(&o);
        if (rc && !want) {
            want = rc;
            want_at = i;
        }
    }
    sprig_txn_result *res = NULL;
    int rc = sprig_txn_apply(db, t, &res);
    if (rc != want || (want && sprig_txn_result_failed(res) != want_at)) {
        print_message("transaction of %d ops: %d (%s) at %ld, wanted %d at "
                      "%ld\n",
                      n, rc, sprig_errmsg(),
                      res ? sprig_txn_result_failed(res) : -2L, want, want_at);
        fail();
    }
    if (rc == 0) {
        memcpy(model, sim, sizeof model);
    } else {
        ++*failed;
    }
    sprig_txn_result_free(res);
    sprig_txn_free(t);
}

/* ---- checks
 * -------------------------------------------------------------------- */

static void
check_collection(sprig_db *db)
{
    sprig_doc_list *docs = vt_all_docs(db, "items");
    size_t k = 0;
    for (int i = 0; i < IDS; i++) {
        if (!model[i].exists) {
            continue;
        }
        const sprig_doc *d = sprig_doc_list_get(docs, k++);
        assert_non_null(d);
        char id[8];
        id_of(i, id);
        sprig_header h = sprig_doc_header(d);
        assert_true(tu_bytes_eq(h.id, id));
        assert_int_equal(h.revision, model[i].rev);
        assert_true(tu_bytes_eq(sprig_doc_contents(d), model[i].text));
    }
    assert_int_equal(sprig_doc_list_count(docs), k);
    sprig_doc_list_free(docs);
}

/* A random key among the expected ones (or a made-up one). */
static sprig_bytes
some_key(const vt_ms *w)
{
    static const uint8_t none[] = {0x30, 'z', 0};
    if (w->n == 0 || rnd(8) == 0) {
        return (sprig_bytes){none, sizeof none};
    }
    return sprig_buf_bytes(&w->m[rnd(w->n)].key);
}

static bool
matches(const sprig_view_query *q, sprig_bytes k)
{
    switch (q->match.kind) {
    case SPRIG_MATCH_KEY: return sprig__bytes_cmp(k, q->match.key) == 0;
    case SPRIG_MATCH_KEYS:
        for (size_t i = 0; i < q->match.n_keys; i++) {
            if (sprig__bytes_cmp(k, q->match.keys[i]) == 0) {
                return true;
            }
        }
        return false;
    case SPRIG_MATCH_RANGE: return vt_in_range(k, &q->match.range);
    case SPRIG_MATCH_PREFIX:
        return k.len >= q->match.key.len &&
               (!k.len || !memcmp(k.data, q->match.key.data, q->match.key.len));
    default: return true;
    }
}

static void
random_match(sprig_view_query *q, const vt_ms *w, sprig_bytes keys[3])
{
    q->match.kind = (sprig_match_kind)rnd(5);
    q->match.key = some_key(w);
    for (int i = 0; i < 3; i++) {
        keys[i] = some_key(w);
    }
    q->match.keys = keys;
    q->match.n_keys = 1 + rnd(3);
    sprig_bytes a = some_key(w), b = some_key(w);
    if (sprig__bytes_cmp(a, b) > 0 && rnd(4)) {
        sprig_bytes t = a;
        a = b;
        b = t;
    }
    q->match.range.start = (sprig_bound){(sprig_bound_kind)rnd(3), a};
    q->match.range.end = (sprig_bound){(sprig_bound_kind)rnd(3), b};
    if (q->match.kind == SPRIG_MATCH_PREFIX) {
        q->match.key.len = rnd(q->match.key.len + 1);
    }
}

/* Page through q (limit from 1..) and compare with the matched subset. */
static void
check_query(sprig_db *db, sprig_view_query *q, const vt_ms *w)
{
    vt_ms sub = {0};
    for (size_t i = 0; i < w->n; i++) {
        if (matches(q, sprig_buf_bytes(&w->m[i].key))) {
            vt_ms_push(&sub, sprig_buf_bytes(&w->m[i].key),
                       sprig_buf_bytes(&w->m[i].value),
                       sprig_buf_bytes(&w->m[i].id), w->m[i].rev);
        }
    }
    bool desc = rnd(2);
    q->order = desc ? SPRIG_DESC : SPRIG_ASC;
    q->limit = rnd(3) ? 0 : 1 + (uint32_t)rnd(6);
    q->has_after = false;
    size_t seen = 0;
    sprig_buf ak = {0}, ai = {0};
    for (int pages = 0; pages < 1000; pages++) {
        sprig_mapping_list *l;
        SPRIG_OK_(sprig_view_query_mappings(db, q, &l));
        size_t n = sprig_mapping_list_count(l);
        size_t exp =
            q->limit ? vt_page_len(&sub, seen, q->limit, desc) : sub.n - seen;
        vt_check_range(l, &sub, desc ? sub.n - seen - exp : seen, exp, desc,
                       "random query");
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
        if (!q->limit || seen == sub.n) {
            break;
        }
    }
    assert_int_equal(seen, sub.n);
    q->has_after = false;
    sprig_buf_clear(&ak);
    sprig_buf_clear(&ai);
    vt_ms_free(&sub);
}

/* Brute-force reduce of the matched mappings, as the engine prints it. */
static void
brute_reduce(int vi, const sprig_view_query *q, const vt_ms *w,
             const sprig_bytes *only, sprig_buf *out)
{
    uint64_t usum = 0, count = 0, x;
    double sum = 0, min = 0;
    bool any = false;
    for (size_t i = 0; i < w->n; i++) {
        sprig_bytes k = sprig_buf_bytes(&w->m[i].key);
        if (only ? sprig__bytes_cmp(k, *only) != 0 : !matches(q, k)) {
            continue;
        }
        count++;
        if (how[vi].map) {
            SPRIG_OK_(
                sprig_key_decode_u64(sprig_buf_bytes(&w->m[i].value), &x));
            usum += x;
            continue;
        }
        char t[64];
        snprintf(t, sizeof t, "%.*s", (int)w->m[i].value.len,
                 (char *)w->m[i].value.data);
        char *end;
        double d = strtod(t, &end);
        if (end != t && *end == 0) {
            sum += d;
            min = !any || d < min ? d : min;
            any = true;
        }
    }
    char t[64];
    out->len = 0;
    if (how[vi].map) {
        uint8_t b[8];
        sprig_key_u64(usum, b);
        sprig_buf_append(out, b, 8);
        return;
    }
    if (vi == 4) {
        snprintf(t, sizeof t, "%llu", (unsigned long long)count);
    } else if (vi == 5 && !any) {
        snprintf(t, sizeof t, "null");
    } else {
        double d = vi == 5 ? min : sum;
        snprintf(t, sizeof t, d == (double)(long long)d ? "%.0f" : "%.17g", d);
        if (d != (double)(long long)d) {
            for (int p = 15; p <= 17; p++) {
                snprintf(t, sizeof t, "%.*g", p, d);
                if (strtod(t, NULL) == d) {
                    break;
                }
            }
        }
    }
    sprig_buf_append(out, t, strlen(t));
}

static void
check_reduce(sprig_db *db, int vi, sprig_view_query *q, const vt_ms *w)
{
    sprig_buf got = {0}, want = {0};
    SPRIG_OK_(sprig_view_reduce(db, q, &got));
    brute_reduce(vi, q, w, NULL, &want);
    if (got.len != want.len || memcmp(got.data, want.data, got.len)) {
        print_message("view %s reduce: got %.*s, wanted %.*s\n",
                      item_views[vi].name, (int)got.len, (char *)got.data,
                      (int)want.len, (char *)want.data);
        fail();
    }
    sprig_mapping_list *l;
    SPRIG_OK_(sprig_view_reduce_grouped(db, q, &l));
    size_t keys = 0;
    for (size_t i = 0; i < w->n; i++) {
        keys += matches(q, sprig_buf_bytes(&w->m[i].key)) &&
                (i == 0 || vt_bcmp(&w->m[i].key, &w->m[i - 1].key));
    }
    size_t lim = q->limit && q->limit < keys ? q->limit : keys;
    assert_int_equal(sprig_mapping_list_count(l), lim);
    for (size_t i = 0; i < sprig_mapping_list_count(l); i++) {
        sprig_bytes k = sprig_mapping_list_key(l, i);
        brute_reduce(vi, q, w, &k, &want);
        sprig_bytes v = sprig_mapping_list_value(l, i);
        assert_int_equal(v.len, want.len);
        assert_memory_equal(v.data, want.data, v.len);
    }
    sprig_mapping_list_free(l);
    sprig_buf_clear(&got);
    sprig_buf_clear(&want);
}

static void
check_views(sprig_db *db)
{
    check_collection(db);
    for (int vi = 0; vi < NVIEWS; vi++) {
        vt_ms w = {0};
        sprig_view_query q;
        sprig_mapping_list *l;
        expect(db, vi, &w);
        sprig_view_query_init(&q, "items", item_views[vi].name);
        if (rnd(4) == 0) { /* exercise the other accesses too */
            q.access = rnd(2) ? SPRIG_NO_UPDATE : SPRIG_UPDATE_AFTER;
            SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
            sprig_mapping_list_free(l);
            q.access = SPRIG_UPDATE_BEFORE;
        }
        SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
        vt_check_all(l, &w, item_views[vi].name);
        sprig_mapping_list_free(l);
        for (int j = 0; j < 6; j++) {
            sprig_bytes keys[3];
            random_match(&q, &w, keys);
            check_query(db, &q, &w);
            if (vi != 2) {
                check_reduce(db, vi, &q, &w);
            }
        }
        vt_ms_free(&w);
    }
}

static void
test_random(void **state)
{
    uint64_t seed = tu_seed();
    const char *env = getenv("SPRIG_VIEW_RANDOM_TXNS");
    unsigned txns = env ? (unsigned)atoi(env) : 3000, failed = 0;
    const char *dir = tu_tmpdir("views-random");
    sprig_db *db;
    rng = seed ? seed : 1;
    memset(model, 0, sizeof model);
    SPRIG_OK_(sprig_db_open_local(dir, &item_schema, &db));
    for (unsigned i = 1; i <= txns; i++) {
        random_txn(db, &failed);
        if (i % CHECK_EVERY == 0 || i == txns) {
            check_views(db);
        }
        if (i % REOPEN_EVERY == 0) {
            sprig_db_close(db);
            SPRIG_OK_(sprig_db_open_local(dir, &item_schema, &db));
        }
    }
    printf("%u transactions, %u refused as predicted\n", txns, failed);
    assert_true(failed > txns / 10); /* conflicts and duplicates happened */
    sprig_db_close(db);
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
