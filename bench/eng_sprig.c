/*
 * eng_sprig.c -- Sprig through its public API, as an application uses it:
 * a storage with the durability under test (FULL unless told otherwise),
 * default map options, one database of schema "bench" with one collection
 * "docs" of pushed u64 ids, and one `sprig_db` handle shared by every
 * thread.  Batches are one sprig_txn of `per_txn` pushes each; single
 * inserts are sprig_insert(NULL id); a get is sprig_get + sprig_doc_free.
 * The only internal call is the writer's statistics seam, to report how
 * many group commits a concurrent run took.  bench_sprig_open_with()
 * opens the same collection with views (local-view) or another key-value
 * persistence (kv-local).
 */
#include "bench.h"

#include "local/local.h"
#include "sprig/sprig.h"

#include <stdlib.h>
#include <string.h>

#define COLL "docs"

static const sprig_collection_def colls[] = {
    {.name = COLL, .id_kind = SPRIG_ID_U64}};
static const sprig_schema_def schema = {
    .name = "bench", .collections = colls, .n_collections = 1};

typedef struct pdb {
    sprig_storage *st;
    sprig_db *db;
} pdb;

static int
sp_fail(const char *what, int rc)
{
    return bench_fail("sprig", "%s: %s (%s)", what, sprig_strerror(rc),
                      sprig_errmsg());
}

static void
p_close(void *db)
{
    pdb *p = db;
    sprig_db_close(p->db);
    sprig_storage_close(p->st);
    free(p);
}

/* Open (creating) `dir` with `sch` registered and its database "bench";
 * key-value persistence `kv` (NULL: the default). */
static int
open_schema(const char *dir, const sprig_schema_def *sch,
            const sprig_kv_persistence *kv, void **out)
{
    pdb *p = calloc(1, sizeof *p);
    if (!p) {
        return bench_fail("sprig", "out of memory");
    }
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.durability = SPRIG_DURABILITY_FULL;
    /* SPRIG_BENCH_DURABILITY=none|normal: another mode's cost, for a
     * measurement by hand (the rows keep saying "full"; make bench never
     * sets it) */
    const char *d = getenv("SPRIG_BENCH_DURABILITY");
    if (d && strcmp(d, "none") == 0) {
        o.durability = SPRIG_DURABILITY_NONE;
    } else if (d && strcmp(d, "normal") == 0) {
        o.durability = SPRIG_DURABILITY_NORMAL;
    }
    if (kv) {
        o.kv_persistence = *kv;
    }
    int rc = sprig_storage_open(&o, &p->st);
    rc = rc ? rc : sprig_storage_register_schema(p->st, sch);
    rc = rc ? rc : sprig_storage_create_database(p->st, "bench", "bench", true);
    rc = rc ? rc : sprig_storage_open_database(p->st, "bench", &p->db);
    if (rc) {
        sp_fail("open", rc);
        p_close(p);
        return -1;
    }
    *out = p;
    return 0;
}

static int
p_open(const char *dir, void **out)
{
    return open_schema(dir, &schema, NULL, out);
}

int
bench_sprig_open_with(const char *dir, const sprig_view_def *views, size_t n,
                      const sprig_kv_persistence *kv, void **db)
{
    const sprig_collection_def vc[] = {
        {.name = COLL, .id_kind = SPRIG_ID_U64, .views = views, .n_views = n}};
    const sprig_schema_def vs = {
        .name = "bench", .collections = vc, .n_collections = 1};
    return open_schema(dir, &vs, kv, db);
}

sprig_db *
bench_sprig_handle(void *db)
{
    return ((pdb *)db)->db;
}

static uint64_t
header_id(sprig_header h)
{
    uint64_t id = 0;
    return sprig_key_decode_u64(h.id, &id) == 0 ? id : 0;
}

/* Apply one transaction of documents first..first+n-1. */
static int
apply_batch(pdb *p, const bench_docs *d, uint64_t first, uint64_t n,
            uint64_t *ids)
{
    sprig_txn *t;
    sprig_txn_result *res = NULL;
    int rc = sprig_txn_new(&t);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        size_t len;
        const char *doc = bench_doc(d, first + i, &len);
        rc = sprig_txn_insert(t, COLL, NULL, (sprig_bytes){doc, len});
    }
    rc = rc ? rc : sprig_txn_apply(p->db, t, ids ? &res : NULL);
    for (uint64_t i = 0; rc == 0 && ids && i < n; i++) {
        ids[i] = header_id(sprig_txn_result_header(res, i));
    }
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    return rc ? sp_fail("apply a batch", rc) : 0;
}

static int
p_insert_batch(void *db, const bench_docs *d, uint64_t first, uint64_t n,
               unsigned per_txn, uint64_t *ids)
{
    for (uint64_t done = 0; done < n; done += per_txn) {
        uint64_t k = n - done < per_txn ? n - done : per_txn;
        if (apply_batch(db, d, first + done, k, ids ? ids + done : NULL)) {
            return -1;
        }
    }
    return 0;
}

/* Documents 1..n under random named ids, per_txn per transaction: an
 * insert of a new id is a lookup's miss (src/local/miss.c checks it). */
static int
p_insert_named(void *db, const bench_docs *d, uint64_t n, unsigned per_txn,
               uint64_t seed)
{
    pdb *p = db;
    uint64_t st = seed;
    for (uint64_t done = 0; done < n; done += per_txn) {
        uint64_t k = n - done < per_txn ? n - done : per_txn;
        sprig_txn *t;
        int rc = sprig_txn_new(&t);
        for (uint64_t i = 0; rc == 0 && i < k; i++) {
            size_t len;
            uint8_t kb[8];
            const char *doc = bench_doc(d, 1 + done + i, &len);
            sprig_bytes id = sprig_id_u64(bench_rand(&st) >> 1, kb);
            rc = sprig_txn_insert(t, COLL, &id, (sprig_bytes){doc, len});
        }
        rc = rc ? rc : sprig_txn_apply(p->db, t, NULL);
        sprig_txn_free(t);
        if (rc) {
            return sp_fail("insert named ids", rc);
        }
    }
    return 0;
}

typedef struct worker {
    sprig_db *db;
    const bench_docs *d;
    uint64_t first, n;
    uint64_t *ids;
} worker;

static int
insert_worker(void *arg, bench_start *s)
{
    worker *w = arg;
    bench_ready(s);
    for (uint64_t i = 0; i < w->n; i++) {
        size_t len;
        const char *doc = bench_doc(w->d, w->first + i, &len);
        sprig_header_buf hb;
        int rc = sprig_insert(w->db, COLL, NULL, (sprig_bytes){doc, len}, &hb);
        if (rc) {
            return sp_fail("insert", rc);
        }
        w->ids[i] = header_id(sprig_header_of(&hb));
    }
    return 0;
}

static int
p_insert_threads(void *db, const bench_docs *d, uint64_t first,
                 unsigned threads, uint64_t per_thread, uint64_t *ids,
                 bench_conc *out)
{
    pdb *p = db;
    worker *w = calloc(threads, sizeof *w);
    if (!w) {
        return bench_fail("sprig", "out of memory");
    }
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (worker){p->db, d, first + t * per_thread, per_thread,
                        ids + t * per_thread};
    }
    uint64_t b0, b1, r0, r1;
    memset(out, 0, sizeof *out);
    sprig__db_writer_stats(p->db, &b0, &r0);
    int rc = bench_threads(threads, insert_worker, w, sizeof *w, &out->seconds);
    sprig__db_writer_stats(p->db, &b1, &r1);
    out->batches = b1 - b0;
    free(w);
    return rc;
}

static int
p_get_random(void *db, const uint64_t *ids, size_t n, const uint16_t *lens,
             uint64_t *bad)
{
    pdb *p = db;
    for (size_t i = 0; i < n; i++) {
        uint8_t kb[8];
        sprig_doc *doc;
        int rc = sprig_get(p->db, COLL, sprig_id_u64(ids[i], kb), &doc);
        if (rc) {
            return sp_fail("get", rc);
        }
        *bad += sprig_doc_contents(doc).len != lens[ids[i]];
        sprig_doc_free(doc);
    }
    return 0;
}

static int
p_get_miss(void *db, const uint64_t *ids, size_t n, uint64_t *bad)
{
    pdb *p = db;
    for (size_t i = 0; i < n; i++) {
        uint8_t kb[9];
        sprig_id_u64(ids[i], kb);
        kb[8] = 0x80;
        sprig_doc *doc = NULL;
        int rc = sprig_get(p->db, COLL, (sprig_bytes){kb, 9}, &doc);
        if (rc == 0) {
            ++*bad;
            sprig_doc_free(doc);
        } else if (rc != SPRIG_ENOTFOUND) {
            return sp_fail("get a missing id", rc);
        }
    }
    return 0;
}

static int
p_read(void *db, uint64_t id, char *buf, size_t cap, size_t *len)
{
    pdb *p = db;
    uint8_t kb[8];
    sprig_doc *doc;
    int rc = sprig_get(p->db, COLL, sprig_id_u64(id, kb), &doc);
    if (rc) {
        return sp_fail("read", rc);
    }
    sprig_bytes c = sprig_doc_contents(doc);
    *len = c.len;
    memcpy(buf, c.data, c.len < cap ? c.len : cap);
    sprig_doc_free(doc);
    return 0;
}

static int
p_count(void *db, uint64_t *n)
{
    pdb *p = db;
    int rc = sprig_count(p->db, COLL, NULL, n);
    return rc ? sp_fail("count", rc) : 0;
}

const bench_engine bench_sprig = {
    .name = "sprig",
    .open = p_open,
    .close = p_close,
    .insert_batch = p_insert_batch,
    .insert_threads = p_insert_threads,
    .get_random = p_get_random,
    .get_miss = p_get_miss,
    .insert_named = p_insert_named,
    .read = p_read,
    .count = p_count,
};
