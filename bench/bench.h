/*
 * bench.h -- shared pieces of the local-engine benchmark (bench_local).
 *
 * The benchmark measures Sprig, raw LMDB and SQLite on the same generated
 * documents with the same durability.  Each engine ("peer") implements the
 * `bench_engine` operations below in its own file (eng_sprig.c,
 * eng_lmdb.c, eng_sqlite.c); bench_local.c runs the workloads, times them
 * and checks the outcome; util.c holds the document set, clocks,
 * statistics, thread runner and file helpers.
 *
 * Documents are numbered 1..n ("logical numbers").  Raw LMDB and SQLite
 * store document k under id k; Sprig pushes ids, so it reports the id it
 * was given (in order on an empty database it is k as well).
 *
 * Further workloads live in their own files and use the same runner,
 * results and helpers: wl_view.c (local-view: declarative views against
 * SQLite), wl_kv.c (kv-local: the key-value store against raw LMDB) and
 * wl_pubsub.c (pubsub: in-process fan-out).  wl_cg.c is the callgrind
 * mode (`bench_local --cg ROW SERIES`, driven by bench/callgrind.py): one
 * engine's part of one CPU-bound row with only the measured calls
 * instrumented.  The commerce benchmark (commerce.h) is a program of its
 * own that shares util.c.
 */
#ifndef SPRIG_BENCH_H
#define SPRIG_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the document set --------------------------------------------------- */

/** Pre-generated JSON documents 1..n, ~150 bytes each, all different. */
typedef struct bench_docs {
    char *arena;
    uint32_t *off; /* document k is arena[off[k-1] .. off[k]) */
    uint64_t n;
} bench_docs;

int bench_docs_make(bench_docs *d, uint64_t n, uint64_t seed);
void bench_docs_free(bench_docs *d);
/** Contents of document k (1 <= k <= n). */
const char *bench_doc(const bench_docs *d, uint64_t k, size_t *len);

/* ---- engines ------------------------------------------------------------ */

/** What a multi-threaded insert run reports. */
typedef struct bench_conc {
    double seconds;   /* from all threads ready to the last one done */
    uint64_t retries; /* SQLite: statements retried after SQLITE_BUSY */
    uint64_t batches; /* Sprig: group commits the run took (0: n/a) */
} bench_conc;

typedef struct bench_engine {
    const char *name;
    /** Open (creating) a database in directory `dir`. */
    int (*open)(const char *dir, void **db);
    void (*close)(void *db);
    /** Insert documents first..first+n-1, `per_txn` per transaction.
     *  `ids` (may be NULL) receives the id each document got. */
    int (*insert_batch)(void *db, const bench_docs *d, uint64_t first,
                        uint64_t n, unsigned per_txn, uint64_t *ids);
    /** `threads` threads each insert `per_thread` documents, one durable
     *  transaction each: thread t inserts first + t*per_thread + i.
     *  ids[k - first] receives the id document k got. */
    int (*insert_threads)(void *db, const bench_docs *d, uint64_t first,
                          unsigned threads, uint64_t per_thread, uint64_t *ids,
                          bench_conc *out);
    /** Read ids[0..n-1], copying each document; count those whose length
     *  differs from lens[id] into *bad (a read error fails the call). */
    int (*get_random)(void *db, const uint64_t *ids, size_t n,
                      const uint16_t *lens, uint64_t *bad);
    /** Look up ids[0..n-1] that are absent: each is document id's 8-byte
     *  key followed by one byte 0x80, so it falls between documents id
     *  and id + 1 (a miss inside the table, not past its end); count
     *  those found into *bad.  NULL when the engine has no such row. */
    int (*get_miss)(void *db, const uint64_t *ids, size_t n, uint64_t *bad);
    /** Insert documents 1..n under named ids: random 8-byte keys from
     *  `seed` (new ids landing between stored ones), `per_txn` per
     *  transaction.  NULL when the engine has no such row. */
    int (*insert_named)(void *db, const bench_docs *d, uint64_t n,
                        unsigned per_txn, uint64_t seed);
    /** Read document `id` into buf (for checking, untimed). */
    int (*read)(void *db, uint64_t id, char *buf, size_t cap, size_t *len);
    int (*count)(void *db, uint64_t *n);
} bench_engine;

extern const bench_engine bench_sprig, bench_lmdb, bench_sqlite;

/** Raw LMDB's second read mode: all gets in one long read transaction. */
int bench_lmdb_get_longtxn(void *db, const uint64_t *ids, size_t n,
                           const uint16_t *lens, uint64_t *bad);

/** Largest document a reader must hold (contents are ~150 bytes). */
#define BENCH_DOC_MAX 512

/* ---- results (results.c) ------------------------------------------------ */

#define BENCH_MAX_RUNS 16
#define BENCH_MAX_SERIES 8
#define BENCH_MAX_EXTRA 8

/** The rates of one engine (or one mode of it) over the runs. */
typedef struct bench_series {
    const char *name;
    double v[BENCH_MAX_RUNS];   /* operations per second */
    double cpu[BENCH_MAX_RUNS]; /* process CPU microseconds per operation */
    unsigned n;
} bench_series;

/** Sprig (series 0) against series `peer`; target 0: shown, no target. */
typedef struct bench_ratio {
    unsigned peer;
    double target;
} bench_ratio;

/** A number worth keeping beside the rates (retries, batch sizes, ...). */
typedef struct bench_extra {
    const char *key;
    double v;
} bench_extra;

typedef struct bench_result {
    const char *name, *unit, *durability, *workload;
    /** Results of one family (e.g. "kv-local") that the report shows as
     *  one table; NULL: a section of its own. */
    const char *group;
    bench_series s[BENCH_MAX_SERIES];
    unsigned n_series;
    bench_ratio r[BENCH_MAX_SERIES];
    unsigned n_ratios;
    bench_extra x[BENCH_MAX_EXTRA];
    unsigned n_extra;
    bool failed; /* an engine errored or a check failed */
} bench_result;

typedef struct bench_machine {
    char date[32], kernel[128], cpu[128], versions[128];
    long nproc;
    double fsyncs_per_s;
    uint64_t seed;
    bool quick;
    double seconds; /* the whole run */
} bench_machine;

/** Append one run: `ops` operations in `secs` seconds using `cpu_secs`
 *  of process CPU time (user + system, all threads). */
void bench_push(bench_series *s, double ops, double secs, double cpu_secs);
double bench_median(const bench_series *s);
/** Median of the CPU microseconds per operation. */
double bench_cpu_median(const bench_series *s);
double bench_min(const bench_series *s);
double bench_max(const bench_series *s);
/** Median rate of Sprig over the median rate of the ratio's peer. */
double bench_ratio_of(const bench_result *r, const bench_ratio *q);
void bench_extra_add(bench_result *r, const char *key, double v);
/** Name series `idx` (growing n_series); add a ratio of Sprig (series 0)
 *  against series `peer` (target 0: none). */
void bench_add_series(bench_result *r, unsigned idx, const char *name);
void bench_add_ratio(bench_result *r, unsigned peer, double target);
void bench_result_print(const bench_result *r);
int bench_json_write(const char *path, const bench_machine *m,
                     const bench_result *res, size_t n);

/* ---- the run plan and further workloads --------------------------------- */

/** What every workload needs to know about the run. */
typedef struct bench_plan {
    const char *tmp; /* the run's scratch directory (removed at the end) */
    uint64_t seed;
    unsigned runs;   /* timed runs (at least MIN_RUNS within the budget) */
    unsigned slices; /* turns the engines take within a run */
    double budget;   /* seconds per workload before runs stop early */
    bool quick;      /* bench_smoke: tiny sizes, behaviour checks only */
} bench_plan;

/** Should a workload that started at t0 do run r (0-based) of `runs`?  The
 *  first three always, later ones only within the budget. */
bool bench_another_run(double budget, unsigned r, unsigned runs, double t0);
/** Start of slice s of n items cut into `slices`. */
uint64_t bench_slice_lo(uint64_t n, unsigned s, unsigned slices);
/** v with thousands separators ("1,000,000") into buf. */
const char *bench_thousands(uint64_t v, char *buf, size_t cap);

/* Each fills up to `cap` results and returns how many it filled (failed
 * workloads are marked `failed`, never dropped). */
size_t bench_wl_view(const bench_plan *p, bench_result *res, size_t cap);
size_t bench_wl_kv(const bench_plan *p, bench_result *res, size_t cap);
size_t bench_wl_pubsub(const bench_plan *p, bench_result *res, size_t cap);
/* The codec (wl_vault.c): encryption, compression, both, neither. */
size_t bench_wl_vault(const bench_plan *p, bench_result *res, size_t cap);

/* ---- callgrind mode (wl_cg.c) ------------------------------------------ */

/** Whether bench_local was built with valgrind's callgrind.h (without it
 *  the markers below do nothing and --cg refuses to run). */
bool bench_cg_available(void);
/** Start counting: instrumentation on, callgrind's counters zeroed. */
void bench_cg_begin(void);
/** Stop counting: dump the counters of every thread since
 *  bench_cg_begin() (callgrind.out.*), instrumentation off; print
 *  "cg-ops: OPS" for the driver (bench/callgrind.py). */
void bench_cg_end(uint64_t ops);
/* One engine (`series`, as the series are named in the results) of one
 * row, n operations; 0, or -1 after printing why (unknown row or series,
 * an engine error, a wrong answer). */
int bench_cg_documents(const bench_plan *p, const char *row, const char *series,
                       uint64_t n);
int bench_cg_view(const bench_plan *p, const char *row, const char *series,
                  uint64_t n);
int bench_cg_kv(const bench_plan *p, const char *row, const char *series,
                uint64_t n);

/* Peers' extra entry points for those workloads. */
struct sprig_view_def;
struct sprig_db;
struct sprig_kv_persistence;
struct sqlite3;
/** Open a Sprig database like bench_sprig.open, whose collection "docs"
 *  declares `views` (n may be 0), with key-value persistence `kv` (NULL:
 *  the default, immediate). */
int bench_sprig_open_with(const char *dir, const struct sprig_view_def *views,
                          size_t n, const struct sprig_kv_persistence *kv,
                          void **db);
/** The `sprig_db` handle of a database opened by bench_sprig. */
struct sprig_db *bench_sprig_handle(void *db);
/** Open an SQLite connection with the benchmark's settings (WAL,
 *  synchronous=FULL, busy_timeout) on `path`. */
int bench_sqlite_connect(const char *path, struct sqlite3 **out);

/* ---- helpers ------------------------------------------------------------ */

/** Seconds on the monotonic clock. */
double bench_now(void);
/** CPU seconds (user + system) the process has used so far. */
double bench_cpu(void);

/** Print a failure of `what` to stderr and return -1. */
int bench_fail(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Run fn(arg_i) on `threads` threads, arg_i = args + i * arg_size; all
 *  start together; *seconds is from the first thread starting (past its
 *  set-up) to the last one finishing, by the threads' own clocks.
 *  fn returns 0 or -1; so does this (any thread failing fails it).
 *  `ready` is called by each thread's fn once its set-up is done. */
typedef struct bench_start bench_start;
void bench_ready(bench_start *s);
int bench_threads(unsigned threads, int (*fn)(void *arg, bench_start *s),
                  void *args, size_t arg_size, double *seconds);

/** Remove a directory tree; mkdir -p. */
int bench_rmtree(const char *dir);
int bench_mkdirs(const char *dir);

/** Big-endian u64. */
void bench_put_be64(uint8_t out[8], uint64_t v);
uint64_t bench_get_be64(const uint8_t in[8]);

/** splitmix64: the benchmark's one random generator. */
uint64_t bench_rand(uint64_t *state);

#endif /* SPRIG_BENCH_H */
