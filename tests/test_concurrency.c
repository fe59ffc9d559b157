/*
 * test_concurrency.c -- eight threads sharing one sprig_db handle lose
 * nothing and see only consistent states.  (a) Concurrent pushes get
 * distinct ids 1..8K and every acknowledged document reads back exactly.
 * (b) Eight threads incrementing one counter with get -> update(header) ->
 * retry on SPRIG_ECONFLICT lose no increment: the final value and revision
 * are exact.  (c) Mixed transactions, some conflicting or failing on
 * purpose, some racing: each failed one leaves nothing behind, and the log
 * holds exactly one entry per success, with consecutive ids, naming exactly
 * its documents and revisions.  (d) Group commit batches: eight threads
 * doing durable single-document inserts are answered in fewer commits than
 * requests, one thread in exactly one commit per request (through the
 * sprig__db_writer_stats seam).  (e) Readers running beside transferring
 * writers always see a constant sum and an even count of revisions, in
 * sprig_get_multiple and sprig_list alike.  Worker threads never call
 * cmocka; they record their first failure, which the main thread asserts.
 * Randomness is seeded (seed=N printed, SPRIG_SEED=N replays).
 */
#include "reltest.h"

#include <pthread.h>

#define THREADS 8

static const sprig_collection_def conc_colls[] = {
    {"pushed", SPRIG_ID_U64, 0},
    {"docs", SPRIG_ID_NATURAL, 0},
};
static const sprig_schema_def conc_schema = {"conc", conc_colls, 2};

typedef struct fixture {
    char dir[512];
    sprig_storage *st;
    sprig_db *db;
    uint64_t seed;
} fixture;

/* ---- workers ----------------------------------------------------------- */

typedef struct worker {
    pthread_t tid;
    sprig_db *db;
    unsigned t;
    uint64_t rng;
    char err[320]; /* the first failure, empty if none */
    void *arg;     /* the test's shared state */
    void *out;     /* the test's per-thread results */
    uint64_t n_conflicts, n_reads;
} worker;

/* Record a failure; returns false so callers can `return fail(...)`. */
static bool
worker_fail(worker *w, int line, const char *what, int rc)
{
    if (w->err[0]) {
        return false;
    }
    if (rc) {
        snprintf(w->err, sizeof w->err, "thread %u, line %d: %s: %s (%s)", w->t,
                 line, what, sprig_strerror(rc), sprig_errmsg());
    } else {
        snprintf(w->err, sizeof w->err, "thread %u, line %d: %s", w->t, line,
                 what);
    }
    return false;
}

#define WFAIL(w, what, rc) worker_fail((w), __LINE__, (what), (rc))

typedef void *(*worker_fn)(void *);

/* Run `fn` on n threads over `db` and assert that none failed. */
static void
run_workers(worker *ws, unsigned n, sprig_db *db, uint64_t seed, worker_fn fn,
            void *arg)
{
    for (unsigned i = 0; i < n; i++) {
        ws[i].db = db;
        ws[i].t = i;
        ws[i].rng = seed * 31 + i;
        ws[i].arg = arg;
        assert_int_equal(pthread_create(&ws[i].tid, NULL, fn, &ws[i]), 0);
    }
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(pthread_join(ws[i].tid, NULL), 0);
    }
    for (unsigned i = 0; i < n; i++) {
        if (ws[i].err[0]) {
            fail_msg("%s", ws[i].err);
        }
    }
}

/* ---- fixture ------------------------------------------------------------ */

static int
open_fixture(void **state, sprig_durability durability)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    rt_scratch(f->dir, sizeof f->dir, "concurrency");
    SPRIG_OK_(rt_storage_open(f->dir, durability, 0, 0, &f->st));
    SPRIG_OK_(sprig_storage_register_schema(f->st, &conc_schema));
    SPRIG_OK_(sprig_storage_create_database(f->st, "db", "conc", false));
    SPRIG_OK_(sprig_storage_open_database(f->st, "db", &f->db));
    f->seed = tu_seed();
    *state = f;
    return 0;
}

static int
setup_full(void **state)
{
    return open_fixture(state, SPRIG_DURABILITY_FULL);
}

static int
setup_none(void **state)
{
    return open_fixture(state, SPRIG_DURABILITY_NONE);
}

static int
teardown(void **state)
{
    fixture *f = *state;
    sprig_db_close(f->db);
    sprig_storage_close(f->st);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

static uint64_t
last_txid(sprig_db *db)
{
    uint64_t id;
    SPRIG_OK_(sprig_last_txn_id(db, &id));
    return id;
}

/* Parse a document's decimal contents. */
static bool
doc_number(const sprig_doc *d, long long *out)
{
    char num[32] = {0};
    sprig_bytes c = sprig_doc_contents(d);
    if (c.len == 0 || c.len >= sizeof num) {
        return false;
    }
    memcpy(num, c.data, c.len);
    char *end;
    *out = strtoll(num, &end, 10);
    return *end == 0;
}

/* ======================================================================
 * (a) concurrent pushes
 * ====================================================================== */

#define PUSH_K 300

static void
push_contents(char *buf, size_t n, unsigned t, unsigned i)
{
    snprintf(buf, n, "pushed by thread %u, number %u", t, i);
}

static void *
push_worker(void *arg)
{
    worker *w = arg;
    uint64_t *ids = w->out;
    for (unsigned i = 0; i < PUSH_K; i++) {
        char body[64];
        sprig_header_buf hb;
        push_contents(body, sizeof body, w->t, i);
        int rc = sprig_insert(w->db, "pushed", NULL, sprig_str(body), &hb);
        if (rc || hb.id_len != 8 || hb.revision != 1) {
            WFAIL(w, "pushing", rc);
            return NULL;
        }
        ids[i] = sprig__get_u64be(hb.id);
    }
    return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void
test_push(void **state)
{
    fixture *f = *state;
    worker ws[THREADS] = {0};
    uint64_t *ids = calloc(THREADS * PUSH_K, sizeof *ids);
    assert_non_null(ids);
    for (unsigned t = 0; t < THREADS; t++) {
        ws[t].out = ids + t * PUSH_K;
    }
    run_workers(ws, THREADS, f->db, f->seed, push_worker, NULL);
    uint64_t n;
    SPRIG_OK_(sprig_count(f->db, "pushed", NULL, &n));
    assert_int_equal(n, THREADS * PUSH_K);
    for (unsigned t = 0; t < THREADS; t++) { /* each ack reads back */
        for (unsigned i = 0; i < PUSH_K; i++) {
            char body[64];
            uint8_t kb[8];
            push_contents(body, sizeof body, t, i);
            rt_assert_doc(f->db, "pushed",
                          sprig_id_u64(ids[t * PUSH_K + i], kb), body,
                          strlen(body));
        }
    }
    qsort(ids, THREADS * PUSH_K, sizeof *ids, cmp_u64);
    for (unsigned i = 0; i < THREADS * PUSH_K; i++) {
        assert_int_equal(ids[i], i + 1); /* distinct, and no id skipped */
    }
    assert_int_equal(last_txid(f->db), THREADS * PUSH_K);
    free(ids);
}

/* ======================================================================
 * (b) one shared counter, no lost update
 * ====================================================================== */

#define COUNTER_M 150

/* One increment: get, update with the header read, retry on conflict. */
static bool
increment(worker *w, sprig_bytes id)
{
    for (;;) {
        sprig_doc *d = NULL;
        long long v;
        int rc = sprig_get(w->db, "docs", id, &d);
        if (rc || !doc_number(d, &v)) {
            sprig_doc_free(d);
            return WFAIL(w, "reading the counter", rc);
        }
        sprig_header h = sprig_doc_header(d);
        char body[32];
        snprintf(body, sizeof body, "%lld", v + 1);
        rc = sprig_update(w->db, "docs", &h, sprig_str(body), NULL);
        sprig_doc_free(d);
        if (rc == SPRIG_OK) {
            return true;
        }
        if (rc != SPRIG_ECONFLICT) {
            return WFAIL(w, "updating the counter", rc);
        }
        w->n_conflicts++;
    }
}

static void *
counter_worker(void *arg)
{
    worker *w = arg;
    for (unsigned i = 0; i < COUNTER_M && increment(w, sprig_str("counter"));
         i++) {
    }
    return NULL;
}

static void
test_counter(void **state)
{
    fixture *f = *state;
    sprig_bytes id = sprig_str("counter");
    SPRIG_OK_(sprig_insert(f->db, "docs", &id, sprig_str("0"), NULL));
    uint64_t first = last_txid(f->db);
    worker ws[THREADS] = {0};
    run_workers(ws, THREADS, f->db, f->seed, counter_worker, NULL);
    sprig_doc *d = NULL;
    long long v;
    SPRIG_OK_(sprig_get(f->db, "docs", id, &d));
    assert_true(doc_number(d, &v));
    assert_int_equal(v, THREADS * COUNTER_M);
    assert_int_equal(sprig_doc_header(d).revision, THREADS * COUNTER_M + 1);
    sprig_doc_free(d);
    assert_int_equal(last_txid(f->db), first + THREADS * COUNTER_M);
    uint64_t conflicts = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        conflicts += ws[t].n_conflicts;
    }
    printf("counter: %u increments, %" PRIu64 " conflicts retried\n",
           THREADS * COUNTER_M, conflicts);
}

/* ======================================================================
 * (c) mixed transactions, some failing on purpose
 * ====================================================================== */

#define MIXED_N 300

enum mixed_kind {
    MIX_GOOD,      /* insert x; overwrite own.t; check hot: always ok */
    MIX_RACE,      /* insert x; update hot with a fresh header: ok/conflict */
    MIX_STALE,     /* insert x; update hot with a wrong revision: conflict */
    MIX_DUPLICATE, /* insert x; insert own.t again: conflict */
    MIX_MISSING,   /* insert x; delete a missing document: not found */
    MIX_KINDS
};

typedef struct mixed_rec {
    int kind, rc;
    uint64_t txid;
    uint64_t second_rev; /* the revision op 1 made (own.t or hot) */
} mixed_rec;

static sprig_bytes
x_id(char *buf, size_t n, unsigned t, unsigned i)
{
    snprintf(buf, n, "x.%u.%u", t, i);
    return sprig_str(buf);
}

static sprig_bytes
own_id(char *buf, size_t n, unsigned t)
{
    snprintf(buf, n, "own.%u", t);
    return sprig_str(buf);
}

/* The stored header of `id` into hb (for racing or stale updates). */
static int
read_header(sprig_db *db, sprig_bytes id, sprig_header_buf *hb)
{
    sprig_doc *d = NULL;
    int rc = sprig_get(db, "docs", id, &d);
    if (rc == 0) {
        sprig_header h = sprig_doc_header(d);
        sprig__header_set(hb, &h);
    }
    sprig_doc_free(d);
    return rc;
}

/* Op 1 of a mixed transaction of `kind`. */
static int
mixed_second(worker *w, sprig_txn *t, int kind, unsigned i)
{
    char own[32], body[32];
    sprig_header_buf hb;
    snprintf(body, sizeof body, "%u", i);
    int rc = SPRIG_OK;
    switch (kind) {
    case MIX_GOOD:
        rc = sprig_txn_overwrite(t, "docs", own_id(own, sizeof own, w->t),
                                 sprig_str(body));
        return rc ? rc : sprig_txn_check(t, "docs", sprig_str("hot"), NULL);
    case MIX_RACE:
    case MIX_STALE:
        rc = read_header(w->db, sprig_str("hot"), &hb);
        if (kind == MIX_STALE) {
            hb.revision += 1000000;
        }
        if (rc == 0) { /* unique contents: equal ones make no revision */
            sprig_header h = sprig_header_of(&hb);
            snprintf(body, sizeof body, "hot by %u/%u", w->t, i);
            rc = sprig_txn_update(t, "docs", &h, sprig_str(body));
        }
        return rc;
    case MIX_DUPLICATE: {
        sprig_bytes id = own_id(own, sizeof own, w->t);
        return sprig_txn_insert(t, "docs", &id, sprig_str(body));
    }
    default: {
        sprig_header h = {sprig_str("missing"), 1, {0}};
        return sprig_txn_delete(t, "docs", &h);
    }
    }
}

/* Did the transaction end as its kind demands?  Failures name op 1. */
static bool
mixed_expected(int kind, int rc, const sprig_txn_result *res)
{
    int want = SPRIG_ECONFLICT;
    if (kind == MIX_GOOD || (kind == MIX_RACE && rc == SPRIG_OK)) {
        want = SPRIG_OK;
    } else if (kind == MIX_MISSING) {
        want = SPRIG_ENOTFOUND;
    }
    if (rc != want) {
        return false;
    }
    if (rc == SPRIG_OK) {
        return sprig_txn_result_failed(res) == -1;
    }
    sprig_header h;
    return sprig_txn_result_failed(res) == 1 &&
           sprig_txn_result_error(res) == rc &&
           (rc != SPRIG_ECONFLICT || sprig_txn_result_conflict(res, &h) == 0);
}

static bool
mixed_one(worker *w, unsigned i, mixed_rec *rec)
{
    char xid[32], body[48];
    sprig_txn *t = NULL;
    sprig_txn_result *res = NULL;
    rec->kind = (int)rt_below(&w->rng, MIX_KINDS);
    snprintf(body, sizeof body, "x of thread %u, txn %u", w->t, i);
    sprig_bytes id = x_id(xid, sizeof xid, w->t, i);
    int rc = sprig_txn_new(&t);
    rc = rc ? rc : sprig_txn_insert(t, "docs", &id, sprig_str(body));
    rc = rc ? rc : mixed_second(w, t, rec->kind, i);
    if (rc) {
        sprig_txn_free(t);
        return WFAIL(w, "building a transaction", rc);
    }
    rec->rc = sprig_txn_apply(w->db, t, &res);
    bool ok = mixed_expected(rec->kind, rec->rc, res);
    if (ok && rec->rc == SPRIG_OK) {
        rec->txid = sprig_txn_result_id(res);
        rec->second_rev = sprig_txn_result_header(res, 1).revision;
    }
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    return ok ? true : WFAIL(w, "a mixed transaction ended wrongly", rec->rc);
}

static void *
mixed_worker(void *arg)
{
    worker *w = arg;
    mixed_rec *recs = w->out;
    for (unsigned i = 0; i < MIXED_N && mixed_one(w, i, &recs[i]); i++) {
    }
    return NULL;
}

/* The log entry of a successful mixed transaction names x and op 1. */
static void
assert_mixed_entry(const sprig_txn_log *l, size_t e, unsigned t, unsigned i,
                   const mixed_rec *r)
{
    char xid[32], second[32];
    x_id(xid, sizeof xid, t, i);
    if (r->kind == MIX_GOOD) {
        own_id(second, sizeof second, t);
    } else {
        snprintf(second, sizeof second, "hot");
    }
    assert_int_equal(sprig_txn_log_change_count(l, e), 2);
    sprig_change c0, c1;
    SPRIG_OK_(sprig_txn_log_change(l, e, 0, &c0));
    SPRIG_OK_(sprig_txn_log_change(l, e, 1, &c1));
    if (c0.id.len != strlen(xid) || memcmp(c0.id.data, xid, c0.id.len)) {
        sprig_change tmp = c0; /* the log may list them in any order */
        c0 = c1;
        c1 = tmp;
    }
    assert_string_equal(c0.collection, "docs");
    assert_int_equal(c0.id.len, strlen(xid));
    assert_memory_equal(c0.id.data, xid, c0.id.len);
    assert_int_equal(c0.revision, 1);
    assert_false(c0.deleted);
    assert_string_equal(c1.collection, "docs");
    assert_int_equal(c1.id.len, strlen(second));
    assert_memory_equal(c1.id.data, second, c1.id.len);
    assert_int_equal(c1.revision, r->second_rev);
    assert_false(c1.deleted);
}

/* Each success has exactly one entry, at its id; nothing else is logged. */
static void
assert_mixed_log(sprig_db *db, uint64_t first, mixed_rec *recs, uint64_t succ)
{
    size_t *seen = calloc(succ + 1, sizeof *seen);
    assert_non_null(seen);
    for (unsigned t = 0; t < THREADS; t++) {
        for (unsigned i = 0; i < MIXED_N; i++) {
            const mixed_rec *r = &recs[t * MIXED_N + i];
            if (r->rc == SPRIG_OK) {
                assert_true(r->txid > first && r->txid <= first + succ);
                assert_int_equal(seen[r->txid - first], 0);
                seen[r->txid - first] = 1 + t * MIXED_N + i;
            }
        }
    }
    uint64_t next = first + 1;
    for (;;) {
        sprig_txn_log *l = NULL;
        SPRIG_OK_(sprig_list_executed_txns(db, next, 500, &l));
        size_t n = sprig_txn_log_count(l);
        for (size_t e = 0; e < n; e++, next++) {
            assert_int_equal(sprig_txn_log_id(l, e), next);
            size_t who = seen[next - first] - 1;
            assert_mixed_entry(l, e, (unsigned)(who / MIXED_N),
                               (unsigned)(who % MIXED_N), &recs[who]);
        }
        sprig_txn_log_free(l);
        if (n == 0) {
            break;
        }
    }
    assert_int_equal(next - 1, first + succ);
    assert_int_equal(last_txid(db), first + succ);
    free(seen);
}

/* Successful x documents exist exactly; failed ones left nothing. */
static uint64_t
assert_mixed_docs(sprig_db *db, const mixed_rec *recs, uint64_t *races)
{
    uint64_t succ = 0;
    *races = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        int last_good = -1;
        uint64_t goods = 0;
        for (unsigned i = 0; i < MIXED_N; i++) {
            const mixed_rec *r = &recs[t * MIXED_N + i];
            char xid[32], body[48];
            snprintf(body, sizeof body, "x of thread %u, txn %u", t, i);
            if (r->rc == SPRIG_OK) {
                rt_assert_doc(db, "docs", x_id(xid, sizeof xid, t, i), body,
                              strlen(body));
                succ++;
                *races += r->kind == MIX_RACE;
                goods += r->kind == MIX_GOOD;
                last_good = r->kind == MIX_GOOD ? (int)i : last_good;
            } else {
                rt_assert_no_doc(db, "docs", x_id(xid, sizeof xid, t, i));
            }
        }
        char own[32], body[32];
        snprintf(body, sizeof body, "own");
        if (last_good >= 0) {
            snprintf(body, sizeof body, "%d", last_good);
        }
        rt_assert_doc(db, "docs", own_id(own, sizeof own, t), body,
                      strlen(body));
        sprig_doc *d = NULL;
        SPRIG_OK_(sprig_get(db, "docs", own_id(own, sizeof own, t), &d));
        assert_int_equal(sprig_doc_header(d).revision, 1 + goods);
        sprig_doc_free(d);
    }
    return succ;
}

static void
mixed_seed_docs(sprig_db *db)
{
    sprig_bytes hot = sprig_str("hot");
    SPRIG_OK_(sprig_insert(db, "docs", &hot, sprig_str("start"), NULL));
    for (unsigned t = 0; t < THREADS; t++) {
        char own[32];
        sprig_bytes id = own_id(own, sizeof own, t);
        SPRIG_OK_(sprig_insert(db, "docs", &id, sprig_str("own"), NULL));
    }
}

static void
test_mixed(void **state)
{
    fixture *f = *state;
    mixed_seed_docs(f->db);
    uint64_t first = last_txid(f->db);
    mixed_rec *recs = calloc(THREADS * MIXED_N, sizeof *recs);
    assert_non_null(recs);
    worker ws[THREADS] = {0};
    for (unsigned t = 0; t < THREADS; t++) {
        ws[t].out = recs + t * MIXED_N;
    }
    run_workers(ws, THREADS, f->db, f->seed, mixed_worker, NULL);
    uint64_t races, succ = assert_mixed_docs(f->db, recs, &races);
    sprig_doc *d = NULL;
    SPRIG_OK_(sprig_get(f->db, "docs", sprig_str("hot"), &d));
    assert_int_equal(sprig_doc_header(d).revision, 1 + races);
    sprig_doc_free(d);
    uint64_t n;
    SPRIG_OK_(sprig_count(f->db, "docs", NULL, &n));
    assert_int_equal(n, 1 + THREADS + succ);
    assert_mixed_log(f->db, first, recs, succ);
    printf("mixed: %u transactions, %" PRIu64 " committed\n", THREADS * MIXED_N,
           succ);
    free(recs);
}

/* ======================================================================
 * (d) group commit batches
 * ====================================================================== */

#define BATCH_N 100

static void *
insert_worker(void *arg)
{
    worker *w = arg;
    for (unsigned i = 0; i < BATCH_N; i++) {
        char id[32];
        snprintf(id, sizeof id, "d.%u.%u", w->t, i);
        sprig_bytes b = sprig_str(id);
        int rc = sprig_insert(w->db, "docs", &b, sprig_str("durable"), NULL);
        if (rc) {
            WFAIL(w, "inserting", rc);
            return NULL;
        }
    }
    return NULL;
}

/* Run `threads` inserters; return the batches and requests they cost. */
static void
measure_batches(sprig_db *db, uint64_t seed, unsigned threads,
                uint64_t *batches, uint64_t *requests)
{
    uint64_t b0, r0, b1, r1;
    worker ws[THREADS] = {0};
    sprig__db_writer_stats(db, &b0, &r0);
    run_workers(ws, threads, db, seed, insert_worker, NULL);
    sprig__db_writer_stats(db, &b1, &r1);
    *batches = b1 - b0;
    *requests = r1 - r0;
}

static void
test_group_commit(void **state)
{
    fixture *f = *state;
    sprig_db *solo = NULL;
    uint64_t batches, requests;
    measure_batches(f->db, f->seed, THREADS, &batches, &requests);
    printf("group commit: 8 threads, %" PRIu64 " requests in %" PRIu64
           " commits\n",
           requests, batches);
    assert_int_equal(requests, THREADS * BATCH_N);
    assert_true(batches < requests);
    assert_true(batches > 0);
    uint64_t n;
    SPRIG_OK_(sprig_count(f->db, "docs", NULL, &n));
    assert_int_equal(n, THREADS * BATCH_N);
    SPRIG_OK_(sprig_storage_create_database(f->st, "solo", "conc", false));
    SPRIG_OK_(sprig_storage_open_database(f->st, "solo", &solo));
    measure_batches(solo, f->seed, 1, &batches, &requests);
    sprig_db_close(solo);
    assert_int_equal(requests, BATCH_N);
    assert_int_equal(batches, BATCH_N); /* one writer: one commit each */
}

/* ======================================================================
 * (e) consistent snapshots beside writers
 * ====================================================================== */

#define ACCOUNTS 10
#define START_BALANCE 100
#define TRANSFERS 500
#define WRITERS 4

typedef struct bank {
    atomic_int writers_left;
} bank;

static sprig_bytes
acct_id(char *buf, size_t n, unsigned i)
{
    snprintf(buf, n, "acct%u", i);
    return sprig_str(buf);
}

/* One transfer between two accounts, retried until it commits. */
static bool
transfer(worker *w)
{
    unsigned from = (unsigned)rt_below(&w->rng, ACCOUNTS);
    unsigned to =
        (from + 1 + (unsigned)rt_below(&w->rng, ACCOUNTS - 1)) % ACCOUNTS;
    long long amount = 1 + (long long)rt_below(&w->rng, 20);
    for (;;) {
        char ida[16], idb[16], ba[32], bb[32];
        sprig_bytes ids[2] = {acct_id(ida, sizeof ida, from),
                              acct_id(idb, sizeof idb, to)};
        sprig_doc_list *l = NULL;
        long long va, vb;
        int rc = sprig_get_multiple(w->db, "docs", ids, 2, &l);
        if (rc || sprig_doc_list_count(l) != 2 ||
            !doc_number(sprig_doc_list_get(l, 0), &va) ||
            !doc_number(sprig_doc_list_get(l, 1), &vb)) {
            sprig_doc_list_free(l);
            return WFAIL(w, "reading two accounts", rc);
        }
        sprig_header ha = sprig_doc_header(sprig_doc_list_get(l, 0));
        sprig_header hb = sprig_doc_header(sprig_doc_list_get(l, 1));
        snprintf(ba, sizeof ba, "%lld", va - amount);
        snprintf(bb, sizeof bb, "%lld", vb + amount);
        sprig_txn *t = NULL;
        rc = sprig_txn_new(&t);
        rc = rc ? rc : sprig_txn_update(t, "docs", &ha, sprig_str(ba));
        rc = rc ? rc : sprig_txn_update(t, "docs", &hb, sprig_str(bb));
        rc = rc ? rc : sprig_txn_apply(w->db, t, NULL);
        sprig_txn_free(t);
        sprig_doc_list_free(l);
        if (rc == SPRIG_OK) {
            return true;
        }
        if (rc != SPRIG_ECONFLICT) {
            return WFAIL(w, "transferring", rc);
        }
        w->n_conflicts++;
    }
}

static void *
transfer_worker(void *arg)
{
    worker *w = arg;
    bank *b = w->arg;
    for (unsigned i = 0; i < TRANSFERS && transfer(w); i++) {
    }
    atomic_fetch_sub(&b->writers_left, 1);
    return NULL;
}

/* One snapshot holds every account, sums to the total, and shows an even
 * number of changes (each transfer changes two accounts). */
static bool
snapshot_ok(worker *w, const sprig_doc_list *l)
{
    long long sum = 0, v;
    uint64_t revs = 0;
    if (sprig_doc_list_count(l) != ACCOUNTS) {
        return WFAIL(w, "a snapshot misses accounts", 0);
    }
    for (size_t i = 0; i < ACCOUNTS; i++) {
        const sprig_doc *d = sprig_doc_list_get(l, i);
        if (!doc_number(d, &v)) {
            return WFAIL(w, "an account is malformed", 0);
        }
        sum += v;
        revs += sprig_doc_header(d).revision - 1;
    }
    if (sum != ACCOUNTS * START_BALANCE || revs % 2) {
        return WFAIL(w, "a snapshot is inconsistent", 0);
    }
    return true;
}

static void *
reader_worker(void *arg)
{
    worker *w = arg;
    bank *b = w->arg;
    char idbuf[ACCOUNTS][16];
    sprig_bytes ids[ACCOUNTS];
    for (unsigned i = 0; i < ACCOUNTS; i++) {
        ids[i] = acct_id(idbuf[i], sizeof idbuf[i], i);
    }
    bool ok = true;
    while (ok && (atomic_load(&b->writers_left) > 0 || w->n_reads < 10)) {
        sprig_doc_list *l = NULL;
        bool by_list = w->n_reads % 2;
        int rc = by_list ? sprig_list(w->db, "docs", NULL, SPRIG_ASC, 0, &l)
                         : sprig_get_multiple(w->db, "docs", ids, ACCOUNTS, &l);
        ok = rc == SPRIG_OK ? snapshot_ok(w, l) : WFAIL(w, "reading", rc);
        sprig_doc_list_free(l);
        w->n_reads++;
    }
    return NULL;
}

static void *
bank_worker(void *arg)
{
    worker *w = arg;
    return w->t < WRITERS ? transfer_worker(w) : reader_worker(w);
}

static void
test_snapshots(void **state)
{
    fixture *f = *state;
    for (unsigned i = 0; i < ACCOUNTS; i++) {
        char id[16], body[16];
        snprintf(body, sizeof body, "%d", START_BALANCE);
        sprig_bytes b = acct_id(id, sizeof id, i);
        SPRIG_OK_(sprig_insert(f->db, "docs", &b, sprig_str(body), NULL));
    }
    bank bk = {WRITERS};
    worker ws[2 * WRITERS] = {0};
    run_workers(ws, 2 * WRITERS, f->db, f->seed, bank_worker, &bk);
    uint64_t reads = 0;
    for (unsigned t = WRITERS; t < 2 * WRITERS; t++) {
        assert_true(ws[t].n_reads >= 10);
        reads += ws[t].n_reads;
    }
    sprig_doc_list *l = NULL;
    SPRIG_OK_(sprig_list(f->db, "docs", NULL, SPRIG_ASC, 0, &l));
    worker check = {0};
    assert_true(snapshot_ok(&check, l));
    uint64_t revs = 0;
    for (size_t i = 0; i < ACCOUNTS; i++) {
        revs += sprig_doc_header(sprig_doc_list_get(l, i)).revision - 1;
    }
    assert_int_equal(revs, 2 * WRITERS * TRANSFERS);
    sprig_doc_list_free(l);
    printf("snapshots: %u transfers, %" PRIu64 " consistent reads\n",
           WRITERS * TRANSFERS, reads);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_counter, setup_none, teardown),
        cmocka_unit_test_setup_teardown(test_mixed, setup_none, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup_full,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshots, setup_none, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
