/*
 * bench_local.c -- `make bench` for the local engine: Sprig against raw
 * LMDB and SQLite (WAL) in the same run, on the same generated documents,
 * with the same durability (full: every commit reaches the disk).
 *
 * Workloads (docs/benchmarks.md explains each and its target):
 *   local-insert-batch       N documents, 1,000 per transaction
 *   local-insert-durable     single-document transactions, 1 thread
 *   local-insert-concurrent  8 threads of single-document transactions
 *   local-get                random gets by id over the batch's data
 *   local-get-miss           random gets of absent ids between them
 *   local-view-*             declarative views vs SQLite (wl_view.c)
 *   kv-*                     the key-value store vs raw LMDB (wl_kv.c)
 *   pubsub                   1 publisher -> 10 subscribers (wl_pubsub.c)
 *   local-codec-*            encryption, compression, both, neither
 *                            (wl_vault.c)
 * plus the disk's fsyncs per second as the physical limit.  `--only`
 * picks some of them (insert, get, view, kv, pubsub, codec; get needs
 * insert).
 * Every workload warms up, then runs several times; within a run the work
 * is cut into slices and the engines take turns slice by slice, in a
 * rotating order, so the noise of a shared machine falls on all of them
 * alike.  The report is the median and the spread over the runs.  Every
 * run is checked: counts match and acknowledged documents read back intact
 * (all of them, or an even sample for the big batch; the other workloads
 * check their own answers), so `--quick` doubles as the bench_smoke test.
 * Data lives in a temporary directory under --dir, removed at the end.
 * The exit status is 0 unless a workload failed; missing a target is
 * reported, not an error.
 */
#include "bench.h"

#include "sprig/sprig.h"

#include <errno.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_TMP_DIR
#define BENCH_TMP_DIR "/tmp"
#endif

#define N_ENGINES 3
#define CHECK_SAMPLES 20000 /* documents read back after a big batch */
#define MAX_RESULTS 32

typedef struct opts {
    uint64_t n;          /* local-insert-batch documents */
    unsigned per_txn;    /* documents per batch transaction */
    unsigned batch_runs; /* runs of the big batch */
    unsigned slices;     /* turns the engines take within a run */
    double budget;       /* seconds per workload before runs stop early */
    unsigned runs;       /* runs of the other workloads */
    uint64_t durable;    /* single-document transactions, 1 thread */
    unsigned threads;    /* local-insert-concurrent threads */
    uint64_t per_thread; /* ... and documents per thread */
    uint64_t gets;       /* random gets per run */
    uint64_t seed;
    double fsync_secs;
    bool quick;
    unsigned new_runs; /* runs of the view, kv and pubsub workloads */
    bool sized;        /* --durable or --per-thread given: no auto-size */
    const char *out, *dir, *only;
    const char *cg_row, *cg_series; /* --cg: callgrind mode (wl_cg.c) */
} opts;

typedef struct ctx {
    opts o;
    char tmp[4096];
    bench_docs docs;
    const bench_engine *eng[N_ENGINES];
} ctx;

static const char *const durability_full =
    "full: Sprig FULL; LMDB default flags (fsync data, then meta); "
    "SQLite WAL synchronous=FULL";

/* ---- options ------------------------------------------------------------ */

static void
usage(void)
{
    fprintf(stderr,
            "usage: bench_local [--quick] [--out FILE.json] [--seed N]\n"
            "         [--dir DIR] [--n DOCS] [--batch-runs R] [--runs R]\n"
            "         [--slices S] [--budget SECONDS] [--durable N]\n"
            "         [--threads T] [--per-thread N] [--gets N]\n"
            "         [--new-runs R] [--only insert,get,view,kv,pubsub]\n"
            "       bench_local --cg ROW SERIES [--n OPS] [--seed N] [--dir "
            "DIR]\n"
            "         (under valgrind --tool=callgrind --instr-atstart=no: "
            "bench/callgrind.py)\n");
    exit(2);
}

static void
defaults(opts *o, bool quick)
{
    *o = (opts){.n = 1000000,
                .per_txn = 1000,
                .batch_runs = 5,
                .slices = 10,
                .runs = 5,
                .durable = 5000,
                .threads = 8,
                .per_thread = 1000,
                .gets = 1000000,
                .seed = (uint64_t)time(NULL),
                .fsync_secs = 1.0,
                .new_runs = 5,
                .budget = 100,
                .dir = BENCH_TMP_DIR};
    if (quick) {
        o->n = 3000;
        o->batch_runs = o->runs = o->new_runs = 1;
        o->slices = 3;
        o->durable = 100;
        o->per_thread = 25;
        o->gets = 20000;
        o->fsync_secs = 0.05;
        o->quick = true;
    }
}

static uint64_t
num_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        usage();
    }
    char *end;
    unsigned long long v = strtoull(argv[++*i], &end, 10);
    if (*end || v == 0) {
        usage();
    }
    return v;
}

static void
parse_args(int argc, char **argv, opts *o)
{
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        quick |= strcmp(argv[i], "--quick") == 0;
    }
    defaults(o, quick);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            continue;
        } else if (strcmp(a, "--out") == 0 && i + 1 < argc) {
            o->out = argv[++i];
        } else if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
            o->dir = argv[++i];
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = num_arg(argc, argv, &i);
        } else if (strcmp(a, "--n") == 0) {
            o->n = num_arg(argc, argv, &i);
        } else if (strcmp(a, "--batch-runs") == 0) {
            o->batch_runs = (unsigned)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--budget") == 0) {
            o->budget = (double)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--slices") == 0) {
            o->slices = (unsigned)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--runs") == 0) {
            o->runs = (unsigned)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--durable") == 0) {
            o->durable = num_arg(argc, argv, &i);
            o->sized = true;
        } else if (strcmp(a, "--threads") == 0) {
            o->threads = (unsigned)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--per-thread") == 0) {
            o->per_thread = num_arg(argc, argv, &i);
            o->sized = true;
        } else if (strcmp(a, "--gets") == 0) {
            o->gets = num_arg(argc, argv, &i);
        } else if (strcmp(a, "--new-runs") == 0) {
            o->new_runs = (unsigned)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc) {
            o->only = argv[++i];
        } else if (strcmp(a, "--cg") == 0 && i + 2 < argc) {
            o->cg_row = argv[++i];
            o->cg_series = argv[++i];
        } else {
            usage();
        }
    }
    if (o->runs > BENCH_MAX_RUNS || o->batch_runs > BENCH_MAX_RUNS ||
        o->new_runs > BENCH_MAX_RUNS) {
        usage();
    }
}

/* ---- machine ------------------------------------------------------------ */

/* 4 KB write + fdatasync in a loop for `secs`: the disk's commit limit. */
static double
fsync_probe(const char *dir, double secs)
{
    char path[4200], buf[4096];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) {
        bench_fail("fsync probe", "%s: %s", path, strerror(errno));
        return 0;
    }
    memset(buf, 'x', sizeof buf);
    unsigned long n = 0;
    double t0 = bench_now(), t = t0;
    while (t - t0 < secs) {
        if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf ||
            fdatasync(fd) != 0) {
            bench_fail("fsync probe", "%s", strerror(errno));
            break;
        }
        n++;
        t = bench_now();
    }
    close(fd);
    unlink(path);
    return t > t0 ? (double)n / (t - t0) : 0;
}

/* Copy s into out (cap bytes), dropping characters JSON would escape. */
static void
plain_copy(char *out, size_t cap, const char *s)
{
    size_t j = 0;
    for (; *s && j + 1 < cap; s++) {
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20) {
            out[j++] = *s;
        }
    }
    out[j] = 0;
}

static void
cpu_model(char *out, size_t cap)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    plain_copy(out, cap, "unknown");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            line[strcspn(line, "\n")] = 0;
            plain_copy(out, cap, colon + 2);
            break;
        }
    }
    if (f) {
        fclose(f);
    }
}

static void
machine_info(bench_machine *m, const opts *o)
{
    struct utsname u;
    char kernel[400];
    time_t now = time(NULL);
    memset(m, 0, sizeof *m);
    strftime(m->date, sizeof m->date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    if (uname(&u) == 0) {
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release,
                 u.machine);
        plain_copy(m->kernel, sizeof m->kernel, kernel);
    }
    cpu_model(m->cpu, sizeof m->cpu);
    m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    m->seed = o->seed;
    m->quick = o->quick;
    snprintf(m->versions, sizeof m->versions,
             "Sprig %s, LMDB %d.%d.%d, SQLite %s", sprig_version(),
             MDB_VERSION_MAJOR, MDB_VERSION_MINOR, MDB_VERSION_PATCH,
             sqlite3_libversion());
}

/* ---- engines and checks ------------------------------------------------- */

static void
engine_dir(const ctx *c, const char *tag, const bench_engine *e, char *out,
           size_t cap)
{
    snprintf(out, cap, "%s/%s-%s", c->tmp, tag, e->name);
}

/* Open engine e on an empty directory `tag`. */
static int
open_fresh(const ctx *c, const char *tag, const bench_engine *e, void **db)
{
    char dir[4200];
    engine_dir(c, tag, e, dir, sizeof dir);
    if (bench_rmtree(dir) || bench_mkdirs(dir)) {
        return bench_fail(e->name, "cannot prepare %s", dir);
    }
    return e->open(dir, db);
}

static void
remove_dir(const ctx *c, const char *tag, const bench_engine *e)
{
    char dir[4200];
    engine_dir(c, tag, e, dir, sizeof dir);
    bench_rmtree(dir);
}

/* Document first+i was acknowledged as ids[i]: does it read back intact? */
static int
check_doc(const ctx *c, const bench_engine *e, void *db, uint64_t k,
          uint64_t id)
{
    char buf[BENCH_DOC_MAX];
    size_t len = 0, want_len;
    const char *want = bench_doc(&c->docs, k, &want_len);
    if (e->read(db, id, buf, sizeof buf, &len)) {
        return bench_fail(e->name, "document %llu (id %llu) unreadable",
                          (unsigned long long)k, (unsigned long long)id);
    }
    if (len != want_len || memcmp(buf, want, len) != 0) {
        return bench_fail(e->name, "document %llu (id %llu) differs",
                          (unsigned long long)k, (unsigned long long)id);
    }
    return 0;
}

/* The database holds `total` documents, and documents first..first+n-1
 * (every `stride`-th, and the last) read back under their ids. */
static int
check_inserted(const ctx *c, const bench_engine *e, void *db,
               const uint64_t *ids, uint64_t first, uint64_t n, uint64_t stride,
               uint64_t total)
{
    uint64_t count = 0;
    if (e->count(db, &count)) {
        return -1;
    }
    if (count != total) {
        return bench_fail(e->name, "holds %llu documents, expected %llu",
                          (unsigned long long)count, (unsigned long long)total);
    }
    for (uint64_t i = 0; i < n; i += stride) {
        if (check_doc(c, e, db, first + i, ids[i])) {
            return -1;
        }
    }
    return n ? check_doc(c, e, db, first + n - 1, ids[n - 1]) : 0;
}

/* ---- runs made of interleaved slices ------------------------------------ */

/* One run of a workload.  The work is cut into slices and the engines take
 * turns slice by slice (the order rotating), so a disk or a CPU that slows
 * down for a while slows every engine alike; each engine's rate is its
 * operations over the sum of its slices' times. */
typedef struct run_state {
    void *db[N_ENGINES];
    uint64_t *ids[N_ENGINES]; /* the id each document was acknowledged as */
    double secs[N_ENGINES], cpu[N_ENGINES];
    uint64_t batches, retries; /* Sprig's commits; SQLite's busy retries */
} run_state;

static void
run_close(const ctx *c, run_state *rs, const char *remove_tag)
{
    for (unsigned i = 0; i < N_ENGINES; i++) {
        if (rs->db[i]) {
            c->eng[i]->close(rs->db[i]);
        }
        if (remove_tag) {
            remove_dir(c, remove_tag, c->eng[i]);
        }
        free(rs->ids[i]);
    }
    memset(rs, 0, sizeof *rs);
}

/* Open every engine on an empty directory `tag`, with room for n ids. */
static int
run_open(const ctx *c, run_state *rs, const char *tag, uint64_t n)
{
    memset(rs, 0, sizeof *rs);
    for (unsigned i = 0; i < N_ENGINES; i++) {
        rs->ids[i] = malloc((n ? n : 1) * sizeof *rs->ids[i]);
        if (!rs->ids[i] || open_fresh(c, tag, c->eng[i], &rs->db[i])) {
            run_close(c, rs, NULL);
            return bench_fail("run", "cannot open the engines");
        }
    }
    return 0;
}

/* Push each engine's rate for this run, print it, and check the data:
 * documents first..first+n-1 (every `stride`-th) and `total` in all. */
static int
run_finish(const ctx *c, run_state *rs, bench_result *res, uint64_t first,
           uint64_t n, uint64_t stride, uint64_t total)
{
    int rc = 0;
    for (unsigned i = 0; i < N_ENGINES; i++) {
        const bench_engine *e = c->eng[i];
        bench_push(&res->s[i], (double)n, rs->secs[i], rs->cpu[i]);
        printf("  %-7s %10.0f docs/s  (%.2f s, cpu %.2f us/doc", e->name,
               (double)n / rs->secs[i], rs->secs[i],
               rs->cpu[i] * 1e6 / (double)n);
        if (e == &bench_sprig && rs->batches) {
            printf(", %.2f docs/commit", (double)n / (double)rs->batches);
        }
        printf(")\n");
        rc = rc ? rc
                : check_inserted(c, e, rs->db[i], rs->ids[i], first, n, stride,
                                 total);
    }
    fflush(stdout);
    return rc;
}

/* ---- local-insert-batch -------------------------------------------------- */

/* One untimed small batch per engine, in a scratch directory. */
static int
batch_warmup(const ctx *c, uint64_t n)
{
    for (unsigned i = 0; i < N_ENGINES; i++) {
        const bench_engine *e = c->eng[i];
        void *db;
        int rc = open_fresh(c, "warm", e, &db);
        if (rc == 0) {
            rc = e->insert_batch(db, &c->docs, 1, n, c->o.per_txn, NULL);
            e->close(db);
        }
        remove_dir(c, "warm", e);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* Run r: load documents 1..n into every engine's "batch-<engine>", slice
 * by slice.  The last run's databases stay for local-get. */
static int
batch_run(const ctx *c, unsigned r, bench_result *res)
{
    const opts *o = &c->o;
    run_state rs;
    if (run_open(c, &rs, "batch", o->n)) {
        return -1;
    }
    int rc = 0;
    for (unsigned s = 0; s < o->slices && rc == 0; s++) {
        uint64_t lo = bench_slice_lo(o->n, s, o->slices);
        uint64_t hi = bench_slice_lo(o->n, s + 1, o->slices);
        for (unsigned k = 0; k < N_ENGINES && rc == 0; k++) {
            unsigned i = (k + s + r) % N_ENGINES;
            double c0 = bench_cpu(), t0 = bench_now();
            rc = c->eng[i]->insert_batch(rs.db[i], &c->docs, 1 + lo, hi - lo,
                                         o->per_txn, rs.ids[i] + lo);
            rs.secs[i] += bench_now() - t0;
            rs.cpu[i] += bench_cpu() - c0;
        }
    }
    uint64_t stride =
        o->quick || o->n < CHECK_SAMPLES ? 1 : o->n / CHECK_SAMPLES;
    rc = rc ? rc : run_finish(c, &rs, res, 1, o->n, stride, o->n);
    run_close(c, &rs, NULL);
    return rc;
}

static void
wl_batch(const ctx *c, bench_result *res)
{
    const opts *o = &c->o;
    static char what[128];
    char nb[32];
    snprintf(what, sizeof what, "%s documents, %u per transaction",
             bench_thousands(o->n, nb, sizeof nb), o->per_txn);
    *res = (bench_result){.name = "local-insert-batch",
                          .unit = "docs/s",
                          .durability = durability_full,
                          .workload = what};
    bench_add_series(res, 0, "sprig");
    bench_add_series(res, 1, "lmdb");
    bench_add_series(res, 2, "sqlite");
    /* issue 9 / design/bench.md: >= 0.8x raw LMDB, >= 1.5x SQLite */
    bench_add_ratio(res, 1, 0.8);
    bench_add_ratio(res, 2, 1.5);
    printf("\n-- %s: %s\n", res->name, what);
    res->failed = batch_warmup(c, o->n / 20 ? o->n / 20 : 1) != 0;
    double t0 = bench_now();
    for (unsigned r = 0;
         !res->failed && bench_another_run(o->budget, r, o->batch_runs, t0);
         r++) {
        res->failed = batch_run(c, r, res) != 0;
    }
}

/* ---- local-insert-durable / local-insert-concurrent -------------------- */

/* Run r: `threads` x `per` single-document transactions per engine, slice
 * by slice, after an untimed warm-up of `warm` per thread, on fresh
 * databases. */
static int
single_run(const ctx *c, unsigned r, unsigned threads, uint64_t per,
           uint64_t warm, bench_result *res)
{
    uint64_t n = threads * per, first = 1 + threads * warm;
    unsigned slices = c->o.slices;
    run_state rs;
    bench_conc cs;
    if (run_open(c, &rs, "single", n > first ? n : first)) {
        return -1;
    }
    int rc = 0;
    for (unsigned i = 0; i < N_ENGINES && rc == 0; i++) {
        rc = c->eng[i]->insert_threads(rs.db[i], &c->docs, 1, threads, warm,
                                       rs.ids[i], &cs);
    }
    for (unsigned s = 0; s < slices && rc == 0; s++) {
        uint64_t lo = bench_slice_lo(per, s, slices);
        uint64_t cnt = bench_slice_lo(per, s + 1, slices) - lo;
        for (unsigned k = 0; k < N_ENGINES && rc == 0 && cnt; k++) {
            unsigned i = (k + s + r) % N_ENGINES;
            double c0 = bench_cpu();
            rc = c->eng[i]->insert_threads(rs.db[i], &c->docs,
                                           first + threads * lo, threads, cnt,
                                           rs.ids[i] + threads * lo, &cs);
            rs.secs[i] += cs.seconds;
            rs.cpu[i] += bench_cpu() - c0;
            rs.batches += cs.batches;
            rs.retries += cs.retries;
        }
    }
    rc = rc ? rc : run_finish(c, &rs, res, first, n, 1, first - 1 + n);
    res->x[0].v += (double)rs.retries;
    res->x[1].v += (double)rs.batches;
    run_close(c, &rs, "single");
    return rc;
}

static void
wl_single(const ctx *c, bench_result *res, unsigned threads, uint64_t per)
{
    static char what[2][128];
    bool conc = threads > 1;
    char nb[32];
    snprintf(what[conc], sizeof what[conc],
             "%u thread%s × %s single-document transactions", threads,
             conc ? "s" : "", bench_thousands(per, nb, sizeof nb));
    *res = (bench_result){.name = conc ? "local-insert-concurrent"
                                       : "local-insert-durable",
                          .unit = "docs/s",
                          .durability = durability_full,
                          .workload = what[conc]};
    bench_add_series(res, 0, "sprig");
    bench_add_series(res, 1, "lmdb");
    bench_add_series(res, 2, "sqlite");
    /* issue 9: >= 1.2x SQLite WAL FULL from one thread (raw LMDB shown
     * beside it), >= 6x from 8 threads (group commit) */
    bench_add_ratio(res, 1, 0);
    bench_add_ratio(res, 2, conc ? 6.0 : 1.2);
    bench_extra_add(res, "sqlite_busy_retries", 0);
    bench_extra_add(res, "sprig_commits", 0);
    printf("\n-- %s: %s\n", res->name, what[conc]);
    uint64_t warm = per / 20 ? per / 20 : 1;
    double t0 = bench_now();
    for (unsigned r = 0;
         !res->failed && bench_another_run(c->o.budget, r, c->o.runs, t0);
         r++) {
        res->failed = single_run(c, r, threads, per, warm, res) != 0;
    }
    double docs = (double)threads * (double)per * (double)res->s[0].n;
    bench_extra_add(res, "sprig_docs_per_commit",
                    res->x[1].v > 0 ? docs / res->x[1].v : 0);
}

/* ---- local-get ------------------------------------------------------------
 */

typedef struct get_set {
    uint64_t *ids;  /* the random sequence */
    uint16_t *lens; /* length of document k, by k */
} get_set;

static int
get_set_make(const ctx *c, get_set *g)
{
    uint64_t st = c->o.seed;
    g->ids = malloc(c->o.gets * sizeof *g->ids);
    g->lens = malloc((c->o.n + 1) * sizeof *g->lens);
    if (!g->ids || !g->lens) {
        return bench_fail("get", "out of memory");
    }
    for (uint64_t i = 0; i < c->o.gets; i++) {
        g->ids[i] = 1 + bench_rand(&st) % c->o.n;
    }
    for (uint64_t k = 1; k <= c->o.n; k++) {
        size_t len;
        bench_doc(&c->docs, k, &len);
        g->lens[k] = (uint16_t)len;
    }
    g->lens[0] = 0;
    return 0;
}

typedef int (*get_fn)(void *db, const uint64_t *ids, size_t n,
                      const uint16_t *lens, uint64_t *bad);

/* The four ways of reading: series index, engine index, function. */
typedef struct reader {
    const char *name;
    unsigned series, engine;
    get_fn fn;
} reader;

#define N_READERS 4

static void
readers_of(const ctx *c, reader *rd)
{
    rd[0] = (reader){"sprig", 0, 0, c->eng[0]->get_random};
    rd[1] = (reader){"lmdb", 1, 1, c->eng[1]->get_random};
    rd[2] = (reader){"lmdb-longtxn", 3, 1, bench_lmdb_get_longtxn};
    rd[3] = (reader){"sqlite", 2, 2, c->eng[2]->get_random};
}

/* Gets ids[0..n-1] with `rd`, adding the time taken to *secs, *cpu. */
static int
get_slice(const reader *rd, void *db, const get_set *g, uint64_t lo, uint64_t n,
          double *secs, double *cpu)
{
    uint64_t bad = 0;
    double c0 = bench_cpu(), t0 = bench_now();
    int rc = rd->fn(db, g->ids + lo, n, g->lens, &bad);
    *secs += bench_now() - t0;
    *cpu += bench_cpu() - c0;
    if (rc == 0 && bad) {
        rc = bench_fail(rd->name, "%llu gets returned the wrong length",
                        (unsigned long long)bad);
    }
    return rc;
}

/* Run r over the whole sequence, slice by slice, readers taking turns. */
static int
get_run(const ctx *c, void **dbs, const get_set *g, unsigned r,
        bench_result *res)
{
    reader rd[N_READERS];
    double secs[N_READERS] = {0}, cpu[N_READERS] = {0};
    uint64_t n = c->o.gets;
    int rc = 0;
    readers_of(c, rd);
    for (unsigned s = 0; s < c->o.slices && rc == 0; s++) {
        uint64_t lo = bench_slice_lo(n, s, c->o.slices);
        uint64_t hi = bench_slice_lo(n, s + 1, c->o.slices);
        for (unsigned k = 0; k < N_READERS && rc == 0; k++) {
            unsigned j = (k + s + r) % N_READERS;
            rc = get_slice(&rd[j], dbs[rd[j].engine], g, lo, hi - lo, &secs[j],
                           &cpu[j]);
        }
    }
    for (unsigned j = 0; j < N_READERS && rc == 0; j++) {
        bench_push(&res->s[rd[j].series], (double)n, secs[j], cpu[j]);
        printf("  %-13s %10.0f gets/s  (%.2f s, cpu %.2f us/get)\n", rd[j].name,
               (double)n / secs[j], secs[j], cpu[j] * 1e6 / (double)n);
    }
    fflush(stdout);
    return rc;
}

/* An untimed pass over a tenth of the sequence with every reader, then the
 * timed runs. */
static int
get_runs(const ctx *c, void **dbs, const get_set *g, bench_result *res)
{
    reader rd[N_READERS];
    double secs = 0, cpu = 0;
    uint64_t warm = c->o.gets / 10 ? c->o.gets / 10 : 1;
    readers_of(c, rd);
    for (unsigned j = 0; j < N_READERS; j++) {
        if (get_slice(&rd[j], dbs[rd[j].engine], g, 0, warm, &secs, &cpu)) {
            return -1;
        }
    }
    double t0 = bench_now();
    for (unsigned r = 0; bench_another_run(c->o.budget, r, c->o.runs, t0);
         r++) {
        if (get_run(c, dbs, g, r, res)) {
            return -1;
        }
    }
    return 0;
}

static void
wl_get(const ctx *c, bench_result *res)
{
    static char what[128];
    char gb[32], nb[32];
    snprintf(
        what, sizeof what, "%s random gets by id over %s documents, seed %llu",
        bench_thousands(c->o.gets, gb, sizeof gb),
        bench_thousands(c->o.n, nb, sizeof nb), (unsigned long long)c->o.seed);
    *res = (bench_result){.name = "local-get",
                          .unit = "gets/s",
                          .durability = "reads (data written with full)",
                          .workload = what};
    bench_add_series(res, 0, "sprig");
    bench_add_series(res, 1, "lmdb");
    bench_add_series(res, 2, "sqlite");
    bench_add_series(res, 3, "lmdb-longtxn");
    bench_add_ratio(res, 1, 0.7);
    bench_add_ratio(res, 2, 2.0);
    bench_add_ratio(res, 3, 0);
    printf("\n-- %s: %s\n", res->name, what);
    get_set g = {NULL, NULL};
    void *dbs[N_ENGINES] = {NULL};
    int rc = get_set_make(c, &g);
    for (unsigned i = 0; rc == 0 && i < N_ENGINES; i++) {
        char dir[4200];
        engine_dir(c, "batch", c->eng[i], dir, sizeof dir);
        rc = c->eng[i]->open(dir, &dbs[i]);
    }
    rc = rc ? rc : get_runs(c, dbs, &g, res);
    for (unsigned i = 0; i < N_ENGINES; i++) {
        if (dbs[i]) {
            c->eng[i]->close(dbs[i]);
        }
    }
    free(g.ids);
    free(g.lens);
    res->failed = rc != 0;
}

/* ---- local-get-miss --------------------------------------------------------
 */

/* One timed pass of each engine with a get_miss over the sequence's ids,
 * engines taking turns by run. */
static int
miss_run(const ctx *c, void **dbs, const get_set *g, unsigned r,
         bench_result *res)
{
    for (unsigned k = 0; k < 2; k++) {
        unsigned j = (k + r) % 2;
        uint64_t bad = 0;
        double c0 = bench_cpu(), t0 = bench_now();
        int rc = c->eng[j]->get_miss(dbs[j], g->ids, c->o.gets, &bad);
        double secs = bench_now() - t0, cpu = bench_cpu() - c0;
        if (rc || bad) {
            return rc ? rc : bench_fail(c->eng[j]->name, "found absent ids");
        }
        bench_push(&res->s[j], (double)c->o.gets, secs, cpu);
        printf("  %-13s %10.0f misses/s  (%.2f s, cpu %.2f us/miss)\n",
               c->eng[j]->name, (double)c->o.gets / secs, secs,
               cpu * 1e6 / (double)c->o.gets);
    }
    fflush(stdout);
    return 0;
}

/* Lookups of absent ids between the batch's documents (bench.h
 * get_miss): Sprig's miss checks both neighbours' CRCs (src/local/miss.c),
 * raw LMDB answers a plain mdb_get miss. */
static void
wl_get_miss(const ctx *c, bench_result *res)
{
    static char what[128];
    char gb[32], nb[32];
    snprintf(what, sizeof what,
             "%s random gets of absent ids between %s documents, seed %llu",
             bench_thousands(c->o.gets, gb, sizeof gb),
             bench_thousands(c->o.n, nb, sizeof nb),
             (unsigned long long)c->o.seed);
    *res = (bench_result){.name = "local-get-miss",
                          .unit = "misses/s",
                          .durability = "reads (data written with full)",
                          .workload = what};
    bench_add_series(res, 0, "sprig");
    bench_add_series(res, 1, "lmdb");
    bench_add_ratio(res, 1, 0);
    printf("\n-- %s: %s\n", res->name, what);
    get_set g = {NULL, NULL};
    void *dbs[2] = {NULL, NULL};
    int rc = get_set_make(c, &g);
    for (unsigned i = 0; rc == 0 && i < 2; i++) {
        char dir[4200];
        engine_dir(c, "batch", c->eng[i], dir, sizeof dir);
        rc = c->eng[i]->open(dir, &dbs[i]);
    }
    double t0 = bench_now();
    for (unsigned r = 0;
         rc == 0 && bench_another_run(c->o.budget, r, c->o.runs, t0); r++) {
        rc = miss_run(c, dbs, &g, r, res);
    }
    for (unsigned i = 0; i < 2; i++) {
        if (dbs[i]) {
            c->eng[i]->close(dbs[i]);
        }
    }
    free(g.ids);
    free(g.lens);
    res->failed = rc != 0;
}

/* ---- main ------------------------------------------------------------------
 */

static int
setup(ctx *c)
{
    c->eng[0] = &bench_sprig;
    c->eng[1] = &bench_lmdb;
    c->eng[2] = &bench_sqlite;
    snprintf(c->tmp, sizeof c->tmp, "%s/bench-XXXXXX", c->o.dir);
    if (bench_mkdirs(c->o.dir) || !mkdtemp(c->tmp)) {
        return bench_fail("setup", "cannot create a directory in %s", c->o.dir);
    }
    return 0;
}

/* The documents of the document workloads. */
static int
make_docs(ctx *c)
{
    uint64_t need = c->o.n;
    uint64_t conc = (uint64_t)c->o.threads * (c->o.per_thread + 50);
    need = need > conc ? need : conc;
    need = need > c->o.durable + 300 ? need : c->o.durable + 300;
    return bench_docs_make(&c->docs, need, c->o.seed);
}

static void
print_header(const ctx *c, const bench_machine *m)
{
    printf("bench_local: %s\n", m->versions);
    printf("machine: %ld cpus, %s, %s\n", m->nproc, m->kernel, m->cpu);
    printf("seed: %llu%s\n", (unsigned long long)c->o.seed,
           c->o.quick ? "  (quick)" : "");
    printf("disk: %.0f fsyncs/s (4 KB pwrite + fdatasync loop)\n",
           m->fsyncs_per_s);
    printf("data: %s\n", c->tmp);
}

/* Is workload family `name` among --only's comma-separated names? */
static bool
wanted(const opts *o, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = o->only; p && *p; p += strcspn(p, ",")) {
        p += *p == ',';
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0)) {
            return true;
        }
    }
    return o->only == NULL;
}

/* The local document workloads: results res[0..4] (--only insert, get). */
static size_t
wl_documents(ctx *c, bench_result *res)
{
    size_t n = 0;
    if (!wanted(&c->o, "insert")) {
        return 0;
    }
    if (make_docs(c)) {
        res[0] = (bench_result){.name = "local-insert-batch",
                                .unit = "docs/s",
                                .durability = "",
                                .workload = "not run: no memory for documents",
                                .failed = true};
        return 1;
    }
    wl_batch(c, &res[n++]);
    wl_single(c, &res[n++], 1, c->o.durable);
    wl_single(c, &res[n++], c->o.threads, c->o.per_thread);
    if (!wanted(&c->o, "get")) {
        return n;
    }
    if (!res[0].failed) {
        wl_get(c, &res[n++]);
        wl_get_miss(c, &res[n++]);
    } else {
        res[n++] = (bench_result){.name = "local-get",
                                  .unit = "gets/s",
                                  .durability = "",
                                  .workload = "not run: the batch failed",
                                  .failed = true};
    }
    return n;
}

/* The fsync-bound workloads shrink on a slow disk (a shared machine's can
 * fall to a few hundred fsyncs per second) so `make bench` keeps to its
 * ten minutes: each engine's run of single-document transactions takes
 * about 1.5 s at the disk's rate, between 500 and 5,000 documents from
 * one thread and 100 and 1,000 per thread from 8.  Rates are per second,
 * so the ratios do not depend on it; the workload line says the size. */
static void
size_to_disk(opts *o, double fsyncs_per_s)
{
    if (o->quick || o->sized || fsyncs_per_s <= 0) {
        return;
    }
    double one = fsyncs_per_s * 1.5, per = fsyncs_per_s / 3;
    o->durable = one < 500          ? 500
                 : one > o->durable ? o->durable
                                    : (uint64_t)one;
    o->per_thread = per < 100             ? 100
                    : per > o->per_thread ? o->per_thread
                                          : (uint64_t)per;
    if (o->durable < 5000 || o->per_thread < 1000) {
        printf("slow disk: %llu single-document transactions from 1 thread, "
               "%llu per thread from %u\n",
               (unsigned long long)o->durable,
               (unsigned long long)o->per_thread, o->threads);
    }
}

/* --cg ROW SERIES: count the instructions of one engine's part of one
 * row, n = --n operations (bench/callgrind.py runs this under valgrind). */
static int
callgrind_mode(ctx *c)
{
    const char *row = c->o.cg_row, *series = c->o.cg_series;
    bench_plan plan = {
        .tmp = c->tmp, .seed = c->o.seed, .runs = 1, .slices = 1};
    int rc;
    if (!bench_cg_available()) {
        return bench_fail("cg", "built without valgrind/callgrind.h");
    }
    if (strcmp(row, "local-insert-batch") == 0 ||
        strcmp(row, "local-get") == 0 || strcmp(row, "local-get-miss") == 0 ||
        strcmp(row, "local-insert-named") == 0) {
        rc = bench_cg_documents(&plan, row, series, c->o.n);
    } else if (strncmp(row, "local-view-", 11) == 0) {
        rc = bench_cg_view(&plan, row, series, c->o.n);
    } else {
        rc = bench_cg_kv(&plan, row, series, c->o.n);
    }
    bench_rmtree(c->tmp);
    return rc ? 1 : 0;
}

int
main(int argc, char **argv)
{
    static ctx c;
    static bench_result res[MAX_RESULTS];
    bench_machine m;
    double t0 = bench_now();
    parse_args(argc, argv, &c.o);
    machine_info(&m, &c.o);
    if (setup(&c)) {
        return 1;
    }
    if (c.o.cg_row) {
        return callgrind_mode(&c);
    }
    m.fsyncs_per_s = fsync_probe(c.tmp, c.o.fsync_secs);
    size_to_disk(&c.o, m.fsyncs_per_s);
    print_header(&c, &m);
    size_t n = wl_documents(&c, res);
    bench_docs_free(&c.docs);
    bench_plan plan = {.tmp = c.tmp,
                       .seed = c.o.seed,
                       .runs = c.o.new_runs,
                       .slices = c.o.quick ? 2 : 4,
                       .budget = c.o.budget / 2,
                       .quick = c.o.quick};
    if (wanted(&c.o, "view")) {
        n += bench_wl_view(&plan, res + n, MAX_RESULTS - n);
    }
    if (wanted(&c.o, "kv")) {
        n += bench_wl_kv(&plan, res + n, MAX_RESULTS - n);
    }
    if (wanted(&c.o, "pubsub")) {
        n += bench_wl_pubsub(&plan, res + n, MAX_RESULTS - n);
    }
    if (wanted(&c.o, "codec")) {
        n += bench_wl_vault(&plan, res + n, MAX_RESULTS - n);
    }
    bench_rmtree(c.tmp);
    m.seconds = bench_now() - t0;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        bench_result_print(&res[i]);
        failed |= res[i].failed;
    }
    printf("\nphysical: %.0f fsyncs/s; total %.0f s\n", m.fsyncs_per_s,
           m.seconds);
    if (c.o.out && bench_json_write(c.o.out, &m, res, n)) {
        return 1;
    }
    return failed ? 1 : 0;
}
