/*
 * wl_cg.c -- the callgrind mode of bench_local (`--cg ROW SERIES`, run by
 * bench/callgrind.py under `valgrind --tool=callgrind --instr-atstart=no`):
 * one engine's part of one CPU-bound row, with its set-up uninstrumented
 * and only the measured operations between bench_cg_begin() and
 * bench_cg_end(), which zero callgrind's counters, then dump them (all
 * threads: Sprig's writer thread counts too) into a file the driver
 * reads.  Instruction counts do not move with the machine's load, so they
 * stand beside the time ratios of a shared, noisy machine.  This file
 * holds the markers and the document rows (local-insert-batch,
 * local-get, local-get-miss); wl_view.c and wl_kv.c hold theirs.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#endif
#endif

bool
bench_cg_available(void)
{
#ifdef BENCH_HAVE_CALLGRIND
    return true;
#else
    return false;
#endif
}

void
bench_cg_begin(void)
{
#ifdef BENCH_HAVE_CALLGRIND
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
#endif
}

void
bench_cg_end(uint64_t ops)
{
#ifdef BENCH_HAVE_CALLGRIND
    CALLGRIND_DUMP_STATS_AT("bench_cg_region");
    CALLGRIND_STOP_INSTRUMENTATION;
#endif
    printf("cg-ops: %llu\n", (unsigned long long)ops);
    fflush(stdout);
}

/* The engine named `series` (sprig, lmdb, sqlite), or NULL. */
static const bench_engine *
engine_named(const char *series)
{
    const bench_engine *all[] = {&bench_sprig, &bench_lmdb, &bench_sqlite};
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(all[i]->name, series) == 0) {
            return all[i];
        }
    }
    return NULL;
}

/* n random gets over documents 1..n, each checked for its length. */
static int
cg_gets(const bench_plan *p, const bench_engine *e, void *db,
        const bench_docs *d, uint64_t n)
{
    uint64_t *ids = malloc(n * sizeof *ids), st = p->seed, bad = 0;
    uint16_t *lens = malloc((n + 1) * sizeof *lens);
    int rc = ids && lens ? 0 : bench_fail("cg", "out of memory");
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        size_t len;
        ids[i] = 1 + bench_rand(&st) % n;
        bench_doc(d, i + 1, &len);
        lens[i + 1] = (uint16_t)len;
    }
    if (rc == 0) {
        bench_cg_begin();
        rc = e->get_random(db, ids, n, lens, &bad);
        bench_cg_end(n);
    }
    free(ids);
    free(lens);
    return rc ? rc : bad ? bench_fail(e->name, "wrong lengths") : 0;
}

/* n lookups of absent ids between documents (get_miss). */
static int
cg_misses(const bench_plan *p, const bench_engine *e, void *db, uint64_t n)
{
    uint64_t *ids = malloc(n * sizeof *ids), st = p->seed, bad = 0;
    int rc = ids ? 0 : bench_fail("cg", "out of memory");
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        ids[i] = 1 + bench_rand(&st) % n;
    }
    if (rc == 0) {
        bench_cg_begin();
        rc = e->get_miss(db, ids, n, &bad);
        bench_cg_end(n);
    }
    free(ids);
    return rc ? rc : bad ? bench_fail(e->name, "found absent ids") : 0;
}

/* local-insert-named: n documents under random named ids. */
static int
cg_named(const bench_plan *p, const bench_engine *e, uint64_t n)
{
    bench_docs d;
    char dir[4200];
    void *db = NULL;
    snprintf(dir, sizeof dir, "%s/cg-%s", p->tmp, e->name);
    int rc = bench_docs_make(&d, n + 1, p->seed);
    rc = rc ? rc : bench_mkdirs(dir);
    rc = rc ? rc : e->open(dir, &db);
    if (rc == 0) {
        bench_cg_begin();
        rc = e->insert_named(db, &d, n, 1000, p->seed);
        bench_cg_end(n);
    }
    if (db) {
        e->close(db);
    }
    bench_docs_free(&d);
    return rc;
}

int
bench_cg_documents(const bench_plan *p, const char *row, const char *series,
                   uint64_t n)
{
    const bench_engine *e = engine_named(series);
    if (e && strcmp(row, "local-insert-named") == 0 && e->insert_named) {
        return cg_named(p, e, n);
    }
    bool miss = strcmp(row, "local-get-miss") == 0;
    bool get = miss || strcmp(row, "local-get") == 0;
    if (!e || (!get && strcmp(row, "local-insert-batch") != 0) ||
        (miss && !e->get_miss)) {
        return bench_fail("cg", "no row %s with series %s", row, series);
    }
    bench_docs d;
    char dir[4200];
    void *db = NULL;
    snprintf(dir, sizeof dir, "%s/cg-%s", p->tmp, e->name);
    int rc = bench_docs_make(&d, n, p->seed);
    rc = rc ? rc : bench_mkdirs(dir);
    rc = rc ? rc : e->open(dir, &db);
    if (rc == 0 && get) {
        rc = e->insert_batch(db, &d, 1, n, 1000, NULL);
        rc = rc ? rc : miss ? cg_misses(p, e, db, n) : cg_gets(p, e, db, &d, n);
    } else if (rc == 0) {
        uint64_t count = 0;
        /* SPRIG_BENCH_CG_PER_TXN: another batch size, by hand (single
         * inserts: a commit's fixed cost, e.g. `none`'s log write) */
        const char *pt = getenv("SPRIG_BENCH_CG_PER_TXN");
        unsigned per = pt && atoi(pt) > 0 ? (unsigned)atoi(pt) : 1000;
        bench_cg_begin();
        rc = e->insert_batch(db, &d, 1, n, per, NULL);
        bench_cg_end(n);
        rc = rc ? rc : e->count(db, &count);
        if (rc == 0 && count != n) {
            rc = bench_fail(e->name, "holds %llu documents, not %llu",
                            (unsigned long long)count, (unsigned long long)n);
        }
    }
    if (db) {
        e->close(db);
    }
    bench_docs_free(&d);
    return rc;
}
