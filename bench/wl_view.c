/*
 * wl_view.c -- the local-view workloads of bench_local: Sprig's
 * declarative views against SQLite with an index, on the same documents,
 * with the same durability for the load.
 *
 * The documents: JSON of 140-160 bytes, {"id":k,"category":"c123",
 * "price":4567,...}, with VIEW_CATS categories (uniform) and integer
 * prices.  Sprig declares, on collection "docs", the view "by-category"
 * (json_key category, json_value price, SUM) and, for counts,
 * "count-by-category" (json_key category, COUNT).  SQLite holds the same
 * documents as rows items(id INTEGER PRIMARY KEY, category TEXT, price
 * INTEGER, doc BLOB) with an index on category (the program hands SQLite
 * the two fields; Sprig reads them from the JSON).
 *
 *   local-view-insert   load the documents, 1,000 per transaction, FULL
 *                       durability: Sprig with one eager view vs Sprig
 *                       with none (the cost of the view), vs SQLite with
 *                       its index; beside them Sprig with both eager views,
 *                       Sprig with a lazy view (insert + the first query,
 *                       which indexes everything) and SQLite without index
 *   local-view-query    random key queries: the mappings of one category
 *                       (id and price of each document) vs SELECT id, price
 *                       ... WHERE category = ?
 *   local-view-reduce   count and sum over a range of categories: two
 *                       sprig_view_reduce calls vs SELECT count(*),
 *                       sum(price) ... WHERE category BETWEEN ? AND ?
 *   local-view-grouped  the same ranges per category: two
 *                       sprig_view_reduce_grouped calls vs ... GROUP BY
 *
 * Engines take turns slice by slice as in bench_local.c.  Every answer is
 * checked against the truth computed from the generated documents (so
 * Sprig and SQLite also agree with each other), and every loaded database
 * is checked whole (counts, and a grouped reduce over all categories).
 */
#include "bench.h"

#include "sprig/sprig.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_CATS 500     /* distinct categories: c000 .. c499 */
#define VIEW_PER_TXN 1000 /* documents per load transaction */
#define RANGE_MAX 20      /* a range reduce covers 1 .. RANGE_MAX keys */
#define COLL "docs"
#define V_SUM "by-category"
#define V_COUNT "count-by-category"

/* ---- the documents and the truth --------------------------------------- */

typedef struct vdata {
    bench_docs docs;
    uint16_t *cat; /* category of document k (index k) */
    uint32_t *price;
    uint64_t cnt[VIEW_CATS], sum[VIEW_CATS], ids[VIEW_CATS];
    uint64_t n_keys, n_ranges; /* queries per run */
    uint16_t *keys;            /* the key queries' categories */
    uint16_t *lo, *hi;         /* the ranges' first and last categories */
} vdata;

/* What a query answered: mappings/rows (or groups), the sum of their
 * prices, and the sum of their ids (or of the groups' counts). */
typedef struct vsum {
    uint64_t n, sum, ids;
} vsum;

static const char *const letters = "abcdefghijklmnopqrstuvwxyz";

static size_t
make_vdoc(uint64_t k, uint64_t seed, uint16_t cat, uint32_t price, char *out)
{
    uint64_t st = seed ^ (k * 0x9fb21c651e98df25ull);
    uint64_t r = bench_rand(&st);
    size_t target = 140 + (size_t)(r % 21);
    int n = snprintf(out, BENCH_DOC_MAX,
                     "{\"id\":%llu,\"category\":\"c%03u\",\"price\":%u,"
                     "\"user\":\"user%06x\",\"stock\":%u,\"note\":\"",
                     (unsigned long long)k, (unsigned)cat, (unsigned)price,
                     (unsigned)(r >> 40), (unsigned)((r >> 8) % 1000));
    size_t len = (size_t)n;
    while (len + 2 < target) {
        char ch = len % 7 == 0 ? ' ' : letters[bench_rand(&st) % 26];
        out[len++] = ch;
    }
    memcpy(out + len, "\"}", 2);
    return len + 2;
}

static void
vdata_free(vdata *v)
{
    bench_docs_free(&v->docs);
    free(v->cat);
    free(v->price);
    free(v->keys);
    free(v->lo);
    free(v->hi);
}

static int
vdata_make(vdata *v, uint64_t n, uint64_t n_keys, uint64_t n_ranges,
           uint64_t seed)
{
    memset(v, 0, sizeof *v);
    v->docs.off = malloc((n + 1) * sizeof *v->docs.off);
    v->docs.arena = malloc(n * 200 + BENCH_DOC_MAX);
    v->cat = malloc((n + 1) * sizeof *v->cat);
    v->price = malloc((n + 1) * sizeof *v->price);
    v->keys = malloc(n_keys * sizeof *v->keys);
    v->lo = malloc(n_ranges * sizeof *v->lo);
    v->hi = malloc(n_ranges * sizeof *v->hi);
    if (!v->docs.off || !v->docs.arena || !v->cat || !v->price || !v->keys ||
        !v->lo || !v->hi) {
        vdata_free(v);
        return bench_fail("view", "out of memory for %llu documents",
                          (unsigned long long)n);
    }
    uint64_t st = seed ^ 0x5eed0f7e11ull;
    size_t pos = 0;
    v->docs.off[0] = 0;
    for (uint64_t k = 1; k <= n; k++) {
        v->cat[k] = (uint16_t)(bench_rand(&st) % VIEW_CATS);
        v->price[k] = 1 + (uint32_t)(bench_rand(&st) % 9999);
        pos += make_vdoc(k, seed, v->cat[k], v->price[k], v->docs.arena + pos);
        v->docs.off[k] = (uint32_t)pos;
        v->cnt[v->cat[k]]++;
        v->sum[v->cat[k]] += v->price[k];
        v->ids[v->cat[k]] += k;
    }
    v->docs.n = n;
    for (uint64_t i = 0; i < n_keys; i++) {
        v->keys[i] = (uint16_t)(bench_rand(&st) % VIEW_CATS);
    }
    for (uint64_t i = 0; i < n_ranges; i++) {
        unsigned w = 1 + (unsigned)(bench_rand(&st) % RANGE_MAX);
        v->lo[i] = (uint16_t)(bench_rand(&st) % (VIEW_CATS - w + 1));
        v->hi[i] = (uint16_t)(v->lo[i] + w - 1);
    }
    v->n_keys = n_keys;
    v->n_ranges = n_ranges;
    return 0;
}

/* The truth over categories lo..hi: grouped (groups, sums, counts) or not
 * (count, sum). */
static vsum
truth_range(const vdata *v, unsigned lo, unsigned hi, bool grouped)
{
    vsum t = {0, 0, 0};
    for (unsigned c = lo; c <= hi; c++) {
        t.sum += v->sum[c];
        if (grouped) {
            t.n += v->cnt[c] > 0;
            t.ids += v->cnt[c];
        } else {
            t.n += v->cnt[c];
        }
    }
    return t;
}

static int
check_sum(const char *who, const char *what, unsigned q, vsum got, vsum want)
{
    if (got.n == want.n && got.sum == want.sum && got.ids == want.ids) {
        return 0;
    }
    return bench_fail(who,
                      "%s %u answered (%llu, %llu, %llu), expected (%llu, "
                      "%llu, %llu)",
                      what, q, (unsigned long long)got.n,
                      (unsigned long long)got.sum, (unsigned long long)got.ids,
                      (unsigned long long)want.n, (unsigned long long)want.sum,
                      (unsigned long long)want.ids);
}

/* ---- Sprig ------------------------------------------------------------- */

static const sprig_view_def sum_eager = {.name = V_SUM,
                                         .version = 1,
                                         .policy = SPRIG_VIEW_EAGER,
                                         .json_key = "category",
                                         .json_value = "price",
                                         .builtin_reduce = SPRIG_REDUCE_SUM};
static const sprig_view_def both_eager[2] = {
    {.name = V_SUM,
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "category",
     .json_value = "price",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = V_COUNT,
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "category",
     .builtin_reduce = SPRIG_REDUCE_COUNT}};
static const sprig_view_def sum_lazy = {.name = V_SUM,
                                        .version = 1,
                                        .policy = SPRIG_VIEW_LAZY,
                                        .json_key = "category",
                                        .json_value = "price",
                                        .builtin_reduce = SPRIG_REDUCE_SUM};

/* A Sprig database and the scratch of its queries. */
typedef struct vsprig {
    void *pdb;
    sprig_db *db;
    sprig_buf k1, k2;
} vsprig;

static int
vs_fail(const char *what, int rc)
{
    return bench_fail("sprig", "%s: %s (%s)", what, sprig_strerror(rc),
                      sprig_errmsg());
}

static int
vs_open(const char *dir, const sprig_view_def *views, size_t n, void **out)
{
    vsprig *s = calloc(1, sizeof *s);
    if (!s) {
        return bench_fail("sprig", "out of memory");
    }
    if (bench_sprig_open_with(dir, views, n, NULL, &s->pdb)) {
        free(s);
        return -1;
    }
    s->db = bench_sprig_handle(s->pdb);
    *out = s;
    return 0;
}

static void
vs_close(void *db)
{
    vsprig *s = db;
    bench_sprig.close(s->pdb);
    sprig_buf_clear(&s->k1);
    sprig_buf_clear(&s->k2);
    free(s);
}

/* The view key of category c, as an application makes it from JSON. */
static int
cat_key(unsigned c, sprig_buf *out)
{
    char json[16];
    int n = snprintf(json, sizeof json, "\"c%03u\"", c);
    int rc = sprig_key_from_json(json, (size_t)n, out);
    return rc ? vs_fail("key from JSON", rc) : 0;
}

/* A JSON integer (a built-in reduce's answer, a price) as a number. */
static int
json_u64(sprig_bytes b, uint64_t *out)
{
    const char *p = b.data;
    uint64_t v = 0;
    if (b.len == 0) {
        return bench_fail("sprig", "an empty number");
    }
    for (size_t i = 0; i < b.len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return bench_fail("sprig", "'%.*s' is not an integer", (int)b.len,
                              p);
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

static void
range_query(vsprig *s, sprig_view_query *q, const char *view)
{
    sprig_view_query_init(q, COLL, view);
    q->match.kind = SPRIG_MATCH_RANGE;
    q->match.range.start =
        (sprig_bound){SPRIG_INCLUDED, sprig_buf_bytes(&s->k1)};
    q->match.range.end = (sprig_bound){SPRIG_INCLUDED, sprig_buf_bytes(&s->k2)};
}

/* The mappings of view "by-category" for category c. */
static int
vs_key(void *db, unsigned c, vsum *out)
{
    vsprig *s = db;
    sprig_view_query q;
    sprig_mapping_list *l;
    if (cat_key(c, &s->k1)) {
        return -1;
    }
    sprig_view_query_init(&q, COLL, V_SUM);
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_buf_bytes(&s->k1);
    int rc = sprig_view_query_mappings(s->db, &q, &l);
    if (rc) {
        return vs_fail("view query", rc);
    }
    size_t n = sprig_mapping_list_count(l);
    *out = (vsum){n, 0, 0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t id = 0, price = 0;
        rc = sprig_key_decode_u64(sprig_mapping_list_source(l, i).id, &id);
        rc = rc ? vs_fail("decode an id", rc)
                : json_u64(sprig_mapping_list_value(l, i), &price);
        out->sum += price;
        out->ids += id;
    }
    sprig_mapping_list_free(l);
    return rc;
}

/* One reduced value of `view` over the range in s->k1 .. s->k2. */
static int
reduce_one(vsprig *s, const char *view, sprig_buf *buf, uint64_t *out)
{
    sprig_view_query q;
    range_query(s, &q, view);
    int rc = sprig_view_reduce(s->db, &q, buf);
    return rc ? vs_fail("view reduce", rc)
              : json_u64(sprig_buf_bytes(buf), out);
}

/* Count and sum over categories lo..hi: a reduce of each view. */
static int
vs_range(void *db, unsigned lo, unsigned hi, vsum *out)
{
    vsprig *s = db;
    sprig_buf buf = {0};
    *out = (vsum){0, 0, 0};
    int rc = cat_key(lo, &s->k1) || cat_key(hi, &s->k2) ? -1 : 0;
    rc = rc ? rc : reduce_one(s, V_COUNT, &buf, &out->n);
    rc = rc ? rc : reduce_one(s, V_SUM, &buf, &out->sum);
    sprig_buf_clear(&buf);
    return rc;
}

/* Sum the values of a grouped reduce into *total; its length into *n. */
static int
grouped_one(vsprig *s, const char *view, uint64_t *n, uint64_t *total)
{
    sprig_view_query q;
    sprig_mapping_list *l;
    range_query(s, &q, view);
    int rc = sprig_view_reduce_grouped(s->db, &q, &l);
    if (rc) {
        return vs_fail("grouped reduce", rc);
    }
    *n = sprig_mapping_list_count(l);
    for (size_t i = 0; i < *n && rc == 0; i++) {
        uint64_t v = 0;
        rc = json_u64(sprig_mapping_list_value(l, i), &v);
        *total += v;
    }
    sprig_mapping_list_free(l);
    return rc;
}

static int
vs_grouped(void *db, unsigned lo, unsigned hi, vsum *out)
{
    vsprig *s = db;
    uint64_t groups = 0;
    *out = (vsum){0, 0, 0};
    int rc = cat_key(lo, &s->k1) || cat_key(hi, &s->k2) ? -1 : 0;
    rc = rc ? rc : grouped_one(s, V_SUM, &out->n, &out->sum);
    rc = rc ? rc : grouped_one(s, V_COUNT, &groups, &out->ids);
    if (rc == 0 && groups != out->n) {
        rc = bench_fail("sprig", "the views have %llu and %llu groups",
                        (unsigned long long)out->n, (unsigned long long)groups);
    }
    return rc;
}

/* ---- SQLite ------------------------------------------------------------ */

typedef struct vsql {
    sqlite3 *db;
    sqlite3_stmt *ins, *key, *range, *grouped;
} vsql;

static int
sq_fail(sqlite3 *db, const char *what)
{
    return bench_fail("sqlite", "%s: %s", what,
                      db ? sqlite3_errmsg(db) : "out of memory");
}

static void
sq_close(void *db)
{
    vsql *s = db;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->key);
    sqlite3_finalize(s->range);
    sqlite3_finalize(s->grouped);
    sqlite3_close(s->db);
    free(s);
}

static int
sq_prepare(vsql *s, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK
               ? 0
               : sq_fail(s->db, sql);
}

/* Which index the SQLite table has. */
typedef enum { IDX_NONE, IDX_CATEGORY, IDX_COVERING } sqindex;

/* Open (creating) the table in `dir` with index `index`. */
static int
sq_open(const char *dir, sqindex index, void **out)
{
    char path[4300];
    vsql *s = calloc(1, sizeof *s);
    if (!s) {
        return bench_fail("sqlite", "out of memory");
    }
    snprintf(path, sizeof path, "%s/view.sqlite", dir);
    int rc = bench_sqlite_connect(path, &s->db);
    if (rc == 0 &&
        sqlite3_exec(s->db,
                     "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY,"
                     " category TEXT, price INTEGER, doc BLOB);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_fail(s->db, "create table");
    }
    static const char *const indexes[] = {
        "", "CREATE INDEX IF NOT EXISTS items_category ON items(category);",
        "CREATE INDEX IF NOT EXISTS items_covering ON items(category, price);"};
    if (rc == 0 &&
        sqlite3_exec(s->db, indexes[index], NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_fail(s->db, "create index");
    }
    rc = rc ? rc
            : sq_prepare(s,
                         "INSERT INTO items(id, category, price, doc) "
                         "VALUES(?, ?, ?, ?)",
                         &s->ins);
    rc = rc ? rc
            : sq_prepare(s, "SELECT id, price FROM items WHERE category = ?",
                         &s->key);
    rc = rc ? rc
            : sq_prepare(s,
                         "SELECT count(*), sum(price) FROM items "
                         "WHERE category BETWEEN ? AND ?",
                         &s->range);
    rc = rc ? rc
            : sq_prepare(s,
                         "SELECT category, count(*), sum(price) FROM items "
                         "WHERE category BETWEEN ? AND ? GROUP BY category",
                         &s->grouped);
    if (rc) {
        sq_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

static void
bind_cat(sqlite3_stmt *st, int col, unsigned c)
{
    char name[8];
    snprintf(name, sizeof name, "c%03u", c);
    sqlite3_bind_text(st, col, name, -1, SQLITE_TRANSIENT);
}

static int
sq_insert(void *db, const vdata *v, uint64_t first, uint64_t n)
{
    vsql *s = db;
    for (uint64_t done = 0; done < n;) {
        if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
            return sq_fail(s->db, "begin");
        }
        uint64_t end = done + VIEW_PER_TXN < n ? done + VIEW_PER_TXN : n;
        for (; done < end; done++) {
            uint64_t k = first + done;
            size_t len;
            const char *doc = bench_doc(&v->docs, k, &len);
            sqlite3_bind_int64(s->ins, 1, (sqlite3_int64)k);
            bind_cat(s->ins, 2, v->cat[k]);
            sqlite3_bind_int64(s->ins, 3, v->price[k]);
            sqlite3_bind_blob(s->ins, 4, doc, (int)len, SQLITE_STATIC);
            int src = sqlite3_step(s->ins);
            sqlite3_reset(s->ins);
            if (src != SQLITE_DONE) {
                sq_fail(s->db, "insert");
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                return -1;
            }
        }
        if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            return sq_fail(s->db, "commit");
        }
    }
    return 0;
}

/* Step `st` to its end; each row adds to *out through `row`. */
static int
sq_rows(vsql *s, sqlite3_stmt *st, void (*row)(sqlite3_stmt *, vsum *),
        vsum *out)
{
    int src;
    *out = (vsum){0, 0, 0};
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        row(st, out);
    }
    sqlite3_reset(st);
    return src == SQLITE_DONE ? 0 : sq_fail(s->db, "query");
}

static void
key_row(sqlite3_stmt *st, vsum *out)
{
    out->n++;
    out->ids += (uint64_t)sqlite3_column_int64(st, 0);
    out->sum += (uint64_t)sqlite3_column_int64(st, 1);
}

static void
range_row(sqlite3_stmt *st, vsum *out)
{
    out->n += (uint64_t)sqlite3_column_int64(st, 0);
    out->sum += (uint64_t)sqlite3_column_int64(st, 1);
}

static void
grouped_row(sqlite3_stmt *st, vsum *out)
{
    out->n++;
    out->ids += (uint64_t)sqlite3_column_int64(st, 1);
    out->sum += (uint64_t)sqlite3_column_int64(st, 2);
}

static int
sq_key(void *db, unsigned c, vsum *out)
{
    vsql *s = db;
    bind_cat(s->key, 1, c);
    return sq_rows(s, s->key, key_row, out);
}

static int
sq_range(void *db, unsigned lo, unsigned hi, vsum *out)
{
    vsql *s = db;
    bind_cat(s->range, 1, lo);
    bind_cat(s->range, 2, hi);
    return sq_rows(s, s->range, range_row, out);
}

static int
sq_grouped(void *db, unsigned lo, unsigned hi, vsum *out)
{
    vsql *s = db;
    bind_cat(s->grouped, 1, lo);
    bind_cat(s->grouped, 2, hi);
    return sq_rows(s, s->grouped, grouped_row, out);
}

/* ---- the databases of local-view-insert -------------------------------- */

/* One way of loading the documents: a series of local-view-insert. */
typedef struct loader {
    const char *name;            /* series name and directory tag */
    const sprig_view_def *views; /* Sprig: the views declared */
    size_t n_views;
    bool sqlite; /* SQLite, with index `index` */
    sqindex index;
    bool lazy; /* the first query (which indexes) is timed too */
    int query; /* the queries' engine using this database, or -1 */
} loader;

#define N_LOADERS 7
static const loader loaders[N_LOADERS] = {
    {"sprig", &sum_eager, 1, false, IDX_NONE, false, -1},
    {"sprig-noview", NULL, 0, false, IDX_NONE, false, -1},
    {"sqlite", NULL, 0, true, IDX_CATEGORY, false, 1},
    {"sprig-2views", both_eager, 2, false, IDX_NONE, false, 0},
    {"sprig-lazy", &sum_lazy, 1, false, IDX_NONE, true, -1},
    {"sqlite-noindex", NULL, 0, true, IDX_NONE, false, -1},
    {"sqlite-covering", NULL, 0, true, IDX_COVERING, false, 2}};

static void
loader_dir(const bench_plan *p, const loader *l, char *out, size_t cap)
{
    snprintf(out, cap, "%s/view-%s", p->tmp, l->name);
}

static int
loader_open(const bench_plan *p, const loader *l, bool fresh, void **db)
{
    char dir[4200];
    loader_dir(p, l, dir, sizeof dir);
    if (fresh && (bench_rmtree(dir) || bench_mkdirs(dir))) {
        return bench_fail(l->name, "cannot prepare %s", dir);
    }
    return l->sqlite ? sq_open(dir, l->index, db)
                     : vs_open(dir, l->views, l->n_views, db);
}

static void
loader_close(const loader *l, void *db)
{
    if (db) {
        (l->sqlite ? sq_close : vs_close)(db);
    }
}

static int
loader_insert(const loader *l, void *db, const vdata *v, uint64_t first,
              uint64_t n, uint64_t *ids)
{
    if (l->sqlite) {
        return sq_insert(db, v, first, n);
    }
    vsprig *s = db;
    int rc =
        bench_sprig.insert_batch(s->pdb, &v->docs, first, n, VIEW_PER_TXN, ids);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        if (ids[i] != first + i) { /* the queries compare ids with k */
            rc = bench_fail(l->name, "document %llu got id %llu",
                            (unsigned long long)(first + i),
                            (unsigned long long)ids[i]);
        }
    }
    return rc;
}

/* Sprig's whole views: the groups and sums of "by-category" and, with the
 * count view, the sum of its counts (the truth's when there is none). */
static int
vs_whole(vsprig *s, size_t n_views, const vsum *want, vsum *got)
{
    if (n_views == 2) {
        return vs_grouped(s, 0, VIEW_CATS - 1, got);
    }
    *got = *want;
    if (n_views == 0) {
        return 0;
    }
    got->n = got->sum = 0;
    if (cat_key(0, &s->k1) || cat_key(VIEW_CATS - 1, &s->k2)) {
        return -1;
    }
    return grouped_one(s, V_SUM, &got->n, &got->sum);
}

/* The whole database against the truth: its count, and every category's
 * (groups, sums, counts) through a grouped reduce over all of them. */
static int
loader_check(const loader *l, void *db, const vdata *v)
{
    uint64_t count = 0;
    vsum got = {0, 0, 0}, want = truth_range(v, 0, VIEW_CATS - 1, true);
    int rc;
    if (l->sqlite) {
        rc = sq_grouped(db, 0, VIEW_CATS - 1, &got);
        count = got.ids;
    } else {
        rc = bench_sprig.count(((vsprig *)db)->pdb, &count);
        rc = rc ? rc : vs_whole(db, l->n_views, &want, &got);
    }
    if (rc == 0 && count != v->docs.n) {
        rc = bench_fail(l->name, "holds %llu documents, expected %llu",
                        (unsigned long long)count,
                        (unsigned long long)v->docs.n);
    }
    return rc ? rc : check_sum(l->name, "the whole view", 0, got, want);
}

/* ---- local-view-insert ------------------------------------------------- */

typedef struct vctx {
    const bench_plan *p;
    vdata v;
    double lazy_first_s; /* the lazy view's first query, summed over runs */
} vctx;

/* Time the lazy view's first query (it indexes every document). */
static int
lazy_first_query(void *db, double *secs, double *cpu)
{
    vsum out;
    double c0 = bench_cpu(), t0 = bench_now();
    int rc = vs_key(db, 0, &out);
    *secs += bench_now() - t0;
    *cpu += bench_cpu() - c0;
    return rc;
}

/* Run r: every loader loads the documents into a fresh database, slice by
 * slice in a rotating order; then the lazy view's first query. */
static int
insert_run(vctx *x, unsigned r, uint64_t *ids, bench_result *res)
{
    const bench_plan *p = x->p;
    uint64_t n = x->v.docs.n;
    void *db[N_LOADERS] = {NULL};
    double secs[N_LOADERS] = {0}, cpu[N_LOADERS] = {0};
    int rc = 0;
    for (unsigned i = 0; i < N_LOADERS && rc == 0; i++) {
        rc = loader_open(p, &loaders[i], true, &db[i]);
    }
    for (unsigned s = 0; s < p->slices && rc == 0; s++) {
        uint64_t lo = bench_slice_lo(n, s, p->slices);
        uint64_t hi = bench_slice_lo(n, s + 1, p->slices);
        for (unsigned k = 0; k < N_LOADERS && rc == 0; k++) {
            unsigned i = (k + s + r) % N_LOADERS;
            double c0 = bench_cpu(), t0 = bench_now();
            rc = loader_insert(&loaders[i], db[i], &x->v, 1 + lo, hi - lo,
                               ids + lo);
            secs[i] += bench_now() - t0;
            cpu[i] += bench_cpu() - c0;
        }
    }
    for (unsigned i = 0; i < N_LOADERS && rc == 0; i++) {
        if (loaders[i].lazy) {
            double before = secs[i];
            rc = lazy_first_query(db[i], &secs[i], &cpu[i]);
            x->lazy_first_s += secs[i] - before;
        }
    }
    for (unsigned i = 0; i < N_LOADERS && rc == 0; i++) {
        bench_push(&res->s[i], (double)n, secs[i], cpu[i]);
        printf("  %-15s %10.0f docs/s  (%.2f s, cpu %.2f us/doc)\n",
               loaders[i].name, (double)n / secs[i], secs[i],
               cpu[i] * 1e6 / (double)n);
        rc = loader_check(&loaders[i], db[i], &x->v);
    }
    fflush(stdout);
    for (unsigned i = 0; i < N_LOADERS; i++) {
        loader_close(&loaders[i], db[i]);
        char dir[4200];
        loader_dir(p, &loaders[i], dir, sizeof dir);
        if (loaders[i].query < 0) {
            bench_rmtree(dir);
        }
    }
    return rc;
}

static void
wl_insert(vctx *x, bench_result *res)
{
    static char what[160];
    char nb[32];
    uint64_t n = x->v.docs.n;
    snprintf(what, sizeof what,
             "%s JSON documents (%u categories), 1,000 per transaction",
             bench_thousands(n, nb, sizeof nb), VIEW_CATS);
    *res = (bench_result){.name = "local-view-insert",
                          .unit = "docs/s",
                          .durability = "full: Sprig FULL; SQLite WAL "
                                        "synchronous=FULL",
                          .workload = what};
    for (unsigned i = 0; i < N_LOADERS; i++) {
        bench_add_series(res, i, loaders[i].name);
    }
    bench_add_ratio(res, 1, 0.5);
    bench_add_ratio(res, 2, 0);
    printf("\n-- %s: %s\n", res->name, what);
    uint64_t *ids = malloc(n * sizeof *ids);
    res->failed = ids == NULL;
    double t0 = bench_now();
    for (unsigned r = 0;
         !res->failed && bench_another_run(x->p->budget, r, x->p->runs, t0);
         r++) {
        res->failed = insert_run(x, r, ids, res) != 0;
    }
    free(ids);
    unsigned runs = res->s[0].n;
    bench_extra_add(res, "lazy first query s",
                    runs ? x->lazy_first_s / runs : 0);
}

/* ---- the query workloads ------------------------------------------------ */

typedef enum { Q_KEY, Q_RANGE, Q_GROUPED } qkind;

typedef struct qengine {
    const char *name;
    int (*key)(void *db, unsigned c, vsum *out);
    int (*range)(void *db, unsigned lo, unsigned hi, vsum *out);
    int (*grouped)(void *db, unsigned lo, unsigned hi, vsum *out);
} qengine;

/* In the order of the series; loaders[i].query names the database. */
#define N_QUERY 3
static const qengine qengines[N_QUERY] = {
    {"sprig", vs_key, vs_range, vs_grouped},
    {"sqlite", sq_key, sq_range, sq_grouped},
    {"sqlite-covering", sq_key, sq_range, sq_grouped}};

/* Queries lo..hi-1 of kind `k` on engine e, each checked. */
static int
query_slice(const vdata *v, const qengine *e, void *db, qkind k, uint64_t lo,
            uint64_t hi)
{
    static const char *const what[] = {"key query", "range reduce",
                                       "grouped reduce"};
    for (uint64_t i = lo; i < hi; i++) {
        vsum got, want;
        int rc;
        if (k == Q_KEY) {
            unsigned c = v->keys[i];
            rc = e->key(db, c, &got);
            want = (vsum){v->cnt[c], v->sum[c], v->ids[c]};
        } else {
            rc = (k == Q_RANGE ? e->range : e->grouped)(db, v->lo[i], v->hi[i],
                                                        &got);
            want = truth_range(v, v->lo[i], v->hi[i], k == Q_GROUPED);
        }
        if (rc || check_sum(e->name, what[k], (unsigned)i, got, want)) {
            return -1;
        }
    }
    return 0;
}

static int
query_runs(vctx *x, void **db, qkind k, uint64_t n, bench_result *res)
{
    const bench_plan *p = x->p;
    uint64_t warm = n / 10 ? n / 10 : 1;
    for (unsigned e = 0; e < N_QUERY; e++) {
        if (query_slice(&x->v, &qengines[e], db[e], k, 0, warm)) {
            return -1;
        }
    }
    double t0 = bench_now();
    for (unsigned r = 0; bench_another_run(p->budget, r, p->runs, t0); r++) {
        double secs[N_QUERY] = {0}, cpu[N_QUERY] = {0};
        for (unsigned s = 0; s < p->slices; s++) {
            uint64_t lo = bench_slice_lo(n, s, p->slices);
            uint64_t hi = bench_slice_lo(n, s + 1, p->slices);
            for (unsigned j = 0; j < N_QUERY; j++) {
                unsigned e = (j + s + r) % N_QUERY;
                double c0 = bench_cpu(), ts = bench_now();
                if (query_slice(&x->v, &qengines[e], db[e], k, lo, hi)) {
                    return -1;
                }
                secs[e] += bench_now() - ts;
                cpu[e] += bench_cpu() - c0;
            }
        }
        for (unsigned e = 0; e < N_QUERY; e++) {
            bench_push(&res->s[e], (double)n, secs[e], cpu[e]);
            printf("  %-15s %10.0f queries/s  (%.2f s, cpu %.1f us/query)\n",
                   qengines[e].name, (double)n / secs[e], secs[e],
                   cpu[e] * 1e6 / (double)n);
        }
        fflush(stdout);
    }
    return 0;
}

static const char *const query_names[] = {
    "local-view-query", "local-view-reduce", "local-view-grouped"};

static void
wl_query(vctx *x, void **db, qkind k, bench_result *res)
{
    static char what[3][200];
    char nb[32];
    uint64_t n = k == Q_KEY ? x->v.n_keys : x->v.n_ranges;
    uint64_t per_key = x->v.docs.n / VIEW_CATS;
    bench_thousands(n, nb, sizeof nb);
    if (k == Q_KEY) {
        snprintf(what[k], sizeof what[k],
                 "%s random key queries (the mappings of one category, ~%llu "
                 "each) over %llu documents",
                 nb, (unsigned long long)per_key,
                 (unsigned long long)x->v.docs.n);
    } else {
        snprintf(what[k], sizeof what[k],
                 "%s random ranges of 1-%u categories (~%llu documents "
                 "each)%s",
                 nb, RANGE_MAX,
                 (unsigned long long)(per_key * (1 + RANGE_MAX) / 2),
                 k == Q_GROUPED ? ", per category" : ": count and sum");
    }
    *res = (bench_result){.name = query_names[k],
                          .unit = "queries/s",
                          .durability = "reads (data loaded with full)",
                          .workload = what[k]};
    for (unsigned e = 0; e < N_QUERY; e++) {
        bench_add_series(res, e, qengines[e].name);
    }
    bench_add_ratio(res, 1, 2.0);
    bench_add_ratio(res, 2, 0);
    printf("\n-- %s: %s\n", res->name, what[k]);
    res->failed = query_runs(x, db, k, n, res) != 0;
}

static bench_result
not_run(const char *name, const char *unit, const char *why)
{
    return (bench_result){.name = name,
                          .unit = unit,
                          .durability = "",
                          .workload = why,
                          .failed = true};
}

size_t
bench_wl_view(const bench_plan *p, bench_result *res, size_t cap)
{
    static vctx x;
    uint64_t n = p->quick ? 3000 : 100000;
    uint64_t keys = p->quick ? 300 : 10000, ranges = p->quick ? 100 : 500;
    if (cap < 4) {
        return 0;
    }
    x = (vctx){.p = p};
    if (vdata_make(&x.v, n, keys, ranges, p->seed)) {
        res[0] = not_run("local-view-insert", "docs/s", "not run: no memory");
        return 1;
    }
    wl_insert(&x, &res[0]);
    void *db[N_QUERY] = {NULL};
    int rc = res[0].failed ? -1 : 0;
    for (unsigned i = 0; i < N_LOADERS && rc == 0; i++) {
        if (loaders[i].query >= 0) {
            rc = loader_open(p, &loaders[i], false, &db[loaders[i].query]);
        }
    }
    for (qkind k = Q_KEY; k <= Q_GROUPED; k++) {
        if (rc == 0) {
            wl_query(&x, db, k, &res[1 + k]);
        } else {
            res[1 + k] = not_run(query_names[k], "queries/s",
                                 "not run: the load failed");
        }
    }
    for (unsigned i = 0; i < N_LOADERS; i++) {
        if (loaders[i].query >= 0) {
            loader_close(&loaders[i], db[loaders[i].query]);
        }
    }
    vdata_free(&x.v);
    return 4;
}

/* ---- callgrind mode (wl_cg.c) ------------------------------------------ */

static int
cg_view_insert(const bench_plan *p, const vdata *v, const loader *l)
{
    void *db = NULL;
    uint64_t n = v->docs.n;
    uint64_t *ids = malloc(n * sizeof *ids);
    int rc = ids ? loader_open(p, l, true, &db) : bench_fail("cg", "no memory");
    if (rc == 0) {
        bench_cg_begin();
        rc = loader_insert(l, db, v, 1, n, ids);
        bench_cg_end(n);
        rc = rc ? rc : loader_check(l, db, v);
    }
    loader_close(l, db);
    free(ids);
    return rc;
}

static int
cg_view_query(const bench_plan *p, const vdata *v, unsigned e, qkind k)
{
    const loader *l = NULL;
    for (unsigned i = 0; i < N_LOADERS; i++) {
        l = loaders[i].query == (int)e ? &loaders[i] : l;
    }
    void *db = NULL;
    uint64_t n = v->docs.n;
    uint64_t *ids = malloc(n * sizeof *ids);
    int rc = ids ? loader_open(p, l, true, &db) : bench_fail("cg", "no memory");
    rc = rc ? rc : loader_insert(l, db, v, 1, n, ids);
    if (rc == 0) {
        uint64_t q = k == Q_KEY ? v->n_keys : v->n_ranges;
        bench_cg_begin();
        rc = query_slice(v, &qengines[e], db, k, 0, q);
        bench_cg_end(q);
    }
    loader_close(l, db);
    free(ids);
    return rc;
}

/* The row and series asked for, on documents v. */
static int
cg_view_dispatch(const bench_plan *p, const vdata *v, const char *row,
                 const char *series)
{
    for (unsigned i = 0; i < N_LOADERS; i++) {
        if (strcmp(row, "local-view-insert") == 0 &&
            strcmp(series, loaders[i].name) == 0) {
            return cg_view_insert(p, v, &loaders[i]);
        }
    }
    for (qkind k = Q_KEY; k <= Q_GROUPED; k++) {
        for (unsigned e = 0; e < N_QUERY; e++) {
            if (strcmp(row, query_names[k]) == 0 &&
                strcmp(series, qengines[e].name) == 0) {
                return cg_view_query(p, v, e, k);
            }
        }
    }
    return bench_fail("cg", "no row %s with series %s", row, series);
}

int
bench_cg_view(const bench_plan *p, const char *row, const char *series,
              uint64_t n)
{
    static vdata v;
    if (vdata_make(&v, n, n / 10 ? n / 10 : 1, n / 40 ? n / 40 : 1, p->seed)) {
        return -1;
    }
    int rc = cg_view_dispatch(p, &v, row, series);
    vdata_free(&v);
    return rc;
}
