/*
 * bench_bgverify.c -- what the page verification costs on a large
 * database (issue 17, item 3; src/local/bgverify.c): the open, the
 * background walk of the tables past the open's budget, the integrity
 * check, and the foreground's reads while the walk runs against after.
 * `make bench-bgverify` runs it (docs/reliability.md has the figures).
 *
 * A storage of one database, one collection of ~1 KiB JSON documents up
 * to --mb MiB (default 1024), is made in --dir (kept: a second run reuses
 * it) and closed.  Then, in one run, each a fresh open of that storage
 * (the page cache is warm for every row: the file was just written or
 * read):
 *   open (budget)   sprig_storage_open + the database's open with the
 *                   default budget (256 MiB): what an open costs now
 *   open (all)      the same with the budget unlimited: what verifying
 *                   everything at open would cost
 *   walk            from the open to sprig_storage_verify_wait's answer,
 *                   nothing else running
 *   get during      random gets by id, one thread, while the walk runs
 *   get after       the same, as long again, once it finished
 *   get no walk     the same from a fresh open with nothing to walk (the
 *                   peer of `during`: the map faults in as gets go)
 *   check           sprig_storage_check (everything, documents too)
 * Writes JSON with --out FILE.  --quick: 16 MiB with a 4 MiB budget (the
 * ctest smoke; behaviour, not speed).
 */
#include "local/local.h"
#include "sprig/sprig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"bench", cols, 1};

typedef struct opts {
    const char *dir, *out;
    unsigned long mb;
    uint64_t budget; /* 0: the default */
} opts;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_bgverify: %s: %s: %s\n", what, sprig_strerror(rc),
            sprig_errmsg());
    exit(1);
}

static void
id_of(char *id, size_t cap, uint64_t i)
{
    snprintf(id, cap, "%010llu", (unsigned long long)i);
}

static sprig_storage *
open_st(const char *dir)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.durability = SPRIG_DURABILITY_NORMAL;
    sprig_storage *st;
    int rc = sprig_storage_open(&o, &st);
    rc = rc ? rc : sprig_storage_register_schema(st, &schema);
    if (rc) {
        die("open", rc);
    }
    return st;
}

/* One transaction of documents [from, to) of ~1 KiB. */
static void
fill_txn(sprig_db *db, uint64_t from, uint64_t to, uint64_t *rng)
{
    char id[24], body[1100];
    sprig_txn *t;
    int rc = sprig_txn_new(&t);
    for (uint64_t i = from; rc == 0 && i < to; i++) {
        int n = snprintf(body, sizeof body, "{\"i\":%llu,\"pad\":\"",
                         (unsigned long long)i);
        while (n < 900) { /* ~940 bytes stored: 4 per page */
            *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
            body[n++] = (char)('a' + (*rng >> 33) % 26);
        }
        n += snprintf(body + n, sizeof body - (size_t)n, "\"}");
        id_of(id, sizeof id, i);
        rc = sprig_txn_overwrite(t, "docs", sprig_str(id),
                                 (sprig_bytes){body, (size_t)n});
    }
    rc = rc ? rc : sprig_txn_apply(db, t, NULL);
    sprig_txn_free(t);
    if (rc) {
        die("fill", rc);
    }
}

/* The storage in o->dir with `n` documents, made unless it is there. */
static void
make(const opts *o, uint64_t n)
{
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/bench.done", o->dir);
    if (stat(p, &sb) == 0) {
        return;
    }
    double t0 = now_s();
    sprig_storage *st = open_st(o->dir);
    sprig_db *db;
    int rc = sprig_storage_create_database(st, "big", "bench", true);
    rc = rc ? rc : sprig_storage_open_database(st, "big", &db);
    if (rc) {
        die("create", rc);
    }
    uint64_t rng = 42;
    for (uint64_t i = 0; i < n; i += 2000) {
        fill_txn(db, i, i + 2000 < n ? i + 2000 : n, &rng);
    }
    sprig_db_close(db);
    sprig_storage_close(st);
    FILE *f = fopen(p, "w");
    if (f) {
        fclose(f);
    }
    printf("made %llu documents in %.1f s\n", (unsigned long long)n,
           now_s() - t0);
}

/* Open the storage and its database with the open's budget `budget`;
 * the seconds it took. */
static double
open_db(const char *dir, uint64_t budget, sprig_storage **st, sprig_db **db)
{
    sprig__verify_open_bytes_set(budget);
    double t0 = now_s();
    *st = open_st(dir);
    int rc = sprig_storage_open_database(*st, "big", db);
    if (rc) {
        die("open database", rc);
    }
    return now_s() - t0;
}

/* Random gets for `secs` seconds, or while `while_walk` until the walk
 * ends (*secs then gets how long); gets/s. */
static double
gets(sprig_storage *st, sprig_db *db, uint64_t n, double *secs, bool while_walk,
     uint64_t *rng)
{
    char id[24];
    uint64_t ops = 0;
    double t0 = now_s(), t = t0;
    for (;;) {
        for (int k = 0; k < 256; k++, ops++) {
            *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
            id_of(id, sizeof id, (*rng >> 17) % n);
            sprig_doc *d;
            int rc = sprig_get(db, "docs", sprig_str(id), &d);
            if (rc) {
                die("get", rc);
            }
            sprig_doc_free(d);
        }
        t = now_s();
        if (while_walk) {
            int rc = sprig_storage_verify_wait(st, 0, NULL);
            if (rc != SPRIG_ETIMEDOUT) {
                if (rc) {
                    die("walk", rc);
                }
                break;
            }
        } else if (t - t0 >= *secs) {
            break;
        }
    }
    *secs = t - t0;
    return (double)ops / *secs;
}

static void
run(const opts *o)
{
    uint64_t n = (uint64_t)o->mb * 1024 * 1024 / 1060;
    make(o, n);
    sprig_storage *st;
    sprig_db *db;
    sprig_verify_progress p;
    uint64_t budget = o->budget ? o->budget : SPRIG__VERIFY_OPEN_BYTES;
    /* a first open warms the page cache for every row */
    open_db(o->dir, UINT64_MAX - 1, &st, &db);
    sprig_db_close(db);
    sprig_storage_close(st);
    double open_all = open_db(o->dir, UINT64_MAX - 1, &st, &db);
    sprig_db_close(db);
    sprig_storage_close(st);
    double open_b = open_db(o->dir, budget, &st, &db);
    double t0 = now_s();
    int rc = sprig_storage_verify_wait(st, -1, &p);
    double walk = now_s() - t0; /* from the open's return */
    if (rc) {
        die("walk", rc);
    }
    sprig_db_close(db);
    sprig_storage_close(st);
    uint64_t rng = 7;
    double during_s = 0, after_s;
    open_db(o->dir, budget, &st, &db);
    double during = gets(st, db, n, &during_s, true, &rng);
    after_s = during_s < 1 ? 1 : during_s;
    double after = gets(st, db, n, &after_s, false, &rng);
    sprig_db_close(db);
    sprig_storage_close(st);
    /* the peer of `during`: a fresh open (its map faulted in as the gets
     * go, as during the walk) with nothing to walk */
    double none_s = after_s;
    open_db(o->dir, UINT64_MAX - 1, &st, &db);
    double none = gets(st, db, n, &none_s, false, &rng);
    sprig_db_close(db);
    uint64_t findings;
    t0 = now_s();
    rc = sprig_storage_check(st, NULL, &findings);
    double check = now_s() - t0;
    if (rc || findings) {
        die("check", rc ? rc : SPRIG_ECORRUPT);
    }
    sprig_storage_close(st);
    printf("documents %llu (~%lu MiB), open budget %llu MiB\n"
           "open (budget)   %8.3f s\n"
           "open (all)      %8.3f s\n"
           "walk            %8.3f s  (%llu tables, %llu pages)\n"
           "get during      %8.0f /s  (%.2f s)\n"
           "get after       %8.0f /s  (%.2f s)\n"
           "get no walk     %8.0f /s  (%.2f s, a fresh open)\n"
           "check           %8.3f s\n",
           (unsigned long long)n, o->mb, (unsigned long long)(budget >> 20),
           open_b, open_all, walk, (unsigned long long)p.tables_done,
           (unsigned long long)p.pages, during, during_s, after, after_s, none,
           none_s, check);
    FILE *f = o->out ? fopen(o->out, "w") : NULL;
    if (f) {
        fprintf(f,
                "{\"documents\": %llu, \"mib\": %lu, \"open_budget_s\": %.4f,"
                " \"open_all_s\": %.4f, \"walk_s\": %.4f, \"walk_pages\": "
                "%llu, \"get_during_per_s\": %.0f, \"get_after_per_s\": "
                "%.0f, \"get_no_walk_per_s\": %.0f, \"check_s\": %.4f}\n",
                (unsigned long long)n, o->mb, open_b, open_all, walk,
                (unsigned long long)p.pages, during, after, none, check);
        fclose(f);
    }
}

static void
usage(void)
{
    fprintf(stderr, "usage: bench_bgverify [--quick] [--dir DIR] [--mb N] "
                    "[--out FILE.json]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    opts o = {.dir = NULL, .out = NULL, .mb = 1024, .budget = 0};
    char tmp[4096];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            o.mb = 16;
            o.budget = 4u << 20;
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            o.dir = argv[++i];
        } else if (!strcmp(argv[i], "--mb") && i + 1 < argc) {
            o.mb = strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            o.out = argv[++i];
        } else {
            usage();
        }
    }
    bool temp = !o.dir;
    if (temp) {
        mkdir(BENCH_TMP_DIR, 0755);
        snprintf(tmp, sizeof tmp, "%s/bgverify.%d", BENCH_TMP_DIR,
                 (int)getpid());
        o.dir = tmp;
    }
    run(&o);
    if (temp) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_bgverify: cannot remove %s\n", tmp);
        }
    }
    return 0;
}
