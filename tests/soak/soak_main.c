/*
 * soak_main.c -- `sprig-soak`, the soak test (soak.h; `make soak` runs it
 * for 60 s with 200 connections, ctest `soak` for 10 s).  It starts the
 * server process on a fresh storage, runs ROUNDS rounds of load (each: the
 * connections connect and log in, run SECONDS/ROUNDS seconds, leave) and
 * after each waits for the server's file descriptors and threads to come
 * back to what they were before any client came, and reads its anonymous
 * memory (RssAnon): the last round must end within a bound of the first
 * (a leak per request or per connection grows it round after round).
 * Then it reads every acknowledged write back through the server, stops
 * the server (which must exit 0: under ASan that includes its leak
 * check), opens the storage locally, reads everything back again and runs
 * the integrity check.  It prints latency quantiles per operation and
 * exits 0 only when every check held.  Seed: SPRIG_SEED or the clock.
 */
#include "soak.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#else
#define SOAK_ASAN 0
#endif
/* ThreadSanitizer's allocator keeps freed memory in per-thread caches and
 * its metadata grows with it: the memory bound is ASan's there too (the
 * TSan stage looks for races; leaks are the normal and ASan runs' job). */
#if defined(__SANITIZE_THREAD__)
#define SOAK_TSAN 1
#else
#define SOAK_TSAN 0
#endif

/* After the last round the server's anonymous memory may exceed the
 * first round's by this much (KiB) or a quarter, whichever is more.
 * ASan's quarantine holds up to 256 MiB of freed memory: wider there. */
#define RSS_SLACK_KB (SOAK_ASAN || SOAK_TSAN ? 320 * 1024 : 32 * 1024)
/* How long the server may take to release a round's connections. */
#define SETTLE_US (20u * 1000000u)

static const char usage[] =
    "usage: sprig-soak [--seconds S] [--clients N] [--subscribers M]\n"
    "                  [--rounds R] [--dir DIR]\n"
    "N connections (default 200, of which M subscribers, default N/10)\n"
    "of mixed load for S seconds (default 60) in R rounds (default 2)\n"
    "against a server on a fresh storage in DIR (default under\n"
    "$SPRIG_TEST_TMP or /tmp); exit 0 when every check held.\n";

typedef struct soak_opts {
    unsigned seconds, clients, subs, rounds;
    const char *dir;
} soak_opts;

static int
parse(int argc, char **argv, soak_opts *o)
{
    static const struct option lo[] = {
        {"seconds", 1, 0, 's'},     {"clients", 1, 0, 'c'},
        {"subscribers", 1, 0, 'm'}, {"rounds", 1, 0, 'r'},
        {"dir", 1, 0, 'd'},         {0, 0, 0, 0}};
    *o = (soak_opts){60, 200, 0, 2, NULL};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        unsigned v = c == 'd' ? 0 : (unsigned)strtoul(optarg, NULL, 10);
        switch (c) {
        case 's': o->seconds = v; break;
        case 'c': o->clients = v; break;
        case 'm': o->subs = v; break;
        case 'r': o->rounds = v; break;
        case 'd': o->dir = optarg; break;
        default: return -1;
        }
    }
    if (!o->subs) {
        o->subs = o->clients / 10 > 1 ? o->clients / 10 : 1;
    }
    return o->clients > o->subs && o->rounds >= 1 && o->seconds >= o->rounds
               ? 0
               : -1;
}

static int
setup(soak *s, const soak_opts *o)
{
    const char *env = getenv("SPRIG_SEED");
    s->seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    s->seconds = o->seconds;
    s->rounds = o->rounds;
    s->subs = o->subs;
    s->workers = o->clients - o->subs;
    s->w = calloc(s->workers, sizeof *s->w);
    s->s = calloc(s->subs, sizeof *s->s);
    if (!s->w || !s->s) {
        return -1;
    }
    for (unsigned i = 0; i < s->workers; i++) {
        s->w[i].idx = i;
        s->w[i].rng = s->seed * 1000003u + i;
    }
    for (unsigned i = 0; i < s->subs; i++) {
        s->s[i].idx = i;
        s->s[i].next = calloc(s->workers, sizeof *s->s[i].next);
        if (!s->s[i].next) {
            return -1;
        }
    }
    return 0;
}

/* ======================================================================
 * The server's figures: peaks while loaded, and after each round.
 * ====================================================================== */

typedef struct soak_figs {
    soak_proc base, peak, after[16];
    pid_t pid;
} soak_figs;

static void
note_peak(soak_figs *f)
{
    soak_proc p;
    if (soak_proc_read(f->pid, &p) == 0) {
        f->peak.rss_kb = p.rss_kb > f->peak.rss_kb ? p.rss_kb : f->peak.rss_kb;
        f->peak.rss_anon_kb = p.rss_anon_kb > f->peak.rss_anon_kb
                                  ? p.rss_anon_kb
                                  : f->peak.rss_anon_kb;
        f->peak.fds = p.fds > f->peak.fds ? p.fds : f->peak.fds;
        f->peak.threads =
            p.threads > f->peak.threads ? p.threads : f->peak.threads;
    }
}

/* Wait until the server's fds and threads are back to the baseline (or
 * SETTLE_US passed); its figures then. */
static soak_proc
settle(const soak_figs *f)
{
    soak_proc p = {0};
    uint64_t end = soak_now_us() + SETTLE_US;
    do {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
        if (soak_proc_read(f->pid, &p) != 0) {
            break;
        }
    } while ((p.fds > f->base.fds || p.threads > f->base.threads) &&
             soak_now_us() < end);
    return p;
}

/* The server's figures once they stop changing (at most 5 s): the
 * baseline, after the warm-up connection left. */
static soak_proc
settle_quiet(pid_t pid)
{
    soak_proc p = {0}, q;
    for (int i = 0; i < 50 && soak_proc_read(pid, &q) == 0; i++) {
        if (i > 0 && q.fds == p.fds && q.threads == p.threads) {
            return q;
        }
        p = q;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    return p;
}

typedef struct monitor_arg {
    soak *s;
    soak_figs *f;
} monitor_arg;

static void *
monitor_main(void *p)
{
    monitor_arg *m = p;
    while (!atomic_load(&m->s->workers_done)) {
        note_peak(m->f);
        struct timespec ts = {0, 250000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int
run_rounds(soak *s, soak_figs *f)
{
    for (unsigned r = 0; r < s->rounds && r < 16; r++) {
        monitor_arg m = {s, f};
        pthread_t t;
        atomic_store(&s->workers_done, false);
        bool mon = pthread_create(&t, NULL, monitor_main, &m) == 0;
        int rc = soak_round(s, s->seconds / s->rounds);
        atomic_store(&s->workers_done, true);
        if (mon) {
            pthread_join(t, NULL);
        }
        if (rc != 0) {
            fprintf(stderr, "soak: round %u could not start its threads\n",
                    r + 1);
            return -1;
        }
        f->after[r] = settle(f);
        printf("soak: round %u done: server RSS %ld KiB (anon %ld), %ld "
               "fds, %ld threads after the clients left\n",
               r + 1, f->after[r].rss_kb, f->after[r].rss_anon_kb,
               f->after[r].fds, f->after[r].threads);
    }
    return 0;
}

/* ======================================================================
 * Checks and the report.
 * ====================================================================== */

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double
quantile_ms(const uint32_t *v, size_t n, double q)
{
    return n ? v[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0 : 0;
}

static void
report_latency(const soak *s)
{
    printf("%-11s %10s %9s %9s %9s %9s\n", "operation", "count", "per s",
           "p50 ms", "p99 ms", "max ms");
    for (int op = 0; op < SOAK_OPS; op++) {
        size_t n = 0;
        for (unsigned i = 0; i < s->workers; i++) {
            n += s->w[i].lat[op].n;
        }
        uint32_t *all = malloc((n ? n : 1) * sizeof *all);
        size_t k = 0;
        for (unsigned i = 0; all && i < s->workers; i++) {
            if (s->w[i].lat[op].n == 0) {
                continue; /* its array may be NULL: no memcpy from it */
            }
            memcpy(all + k, s->w[i].lat[op].us,
                   s->w[i].lat[op].n * sizeof *all);
            k += s->w[i].lat[op].n;
        }
        if (all) {
            qsort(all, n, sizeof *all, cmp_u32);
            printf("%-11s %10zu %9.0f %9.2f %9.2f %9.2f\n",
                   soak_op_name((soak_op)op), n, (double)n / s->seconds,
                   quantile_ms(all, n, 0.5), quantile_ms(all, n, 0.99),
                   n ? all[n - 1] / 1000.0 : 0);
        }
        free(all);
    }
}

static int
check_load(const soak *s)
{
    int bad = 0;
    uint64_t docs = 0, pubs = 0, recv = 0, missed = 0, dropped = 0;
    for (unsigned i = 0; i < s->workers; i++) {
        docs += s->w[i].n_docs;
        pubs += atomic_load(&s->w[i].published);
        if (s->w[i].errors) {
            fprintf(stderr, "soak: FAIL: worker %u: %llu errors, first: %s\n",
                    i, (unsigned long long)s->w[i].errors, s->w[i].first_error);
            bad = -1;
        }
    }
    for (unsigned i = 0; i < s->subs; i++) {
        const soak_sub *u = &s->s[i];
        recv += u->received, missed += u->missed, dropped += u->dropped;
        if (u->errors || u->disorder || u->missed > u->dropped) {
            fprintf(stderr,
                    "soak: FAIL: subscriber %u: %llu errors (%s), "
                    "%llu out of order, %llu missed, %llu dropped\n",
                    i, (unsigned long long)u->errors, u->first_error,
                    (unsigned long long)u->disorder,
                    (unsigned long long)u->missed,
                    (unsigned long long)u->dropped);
            bad = -1;
        }
    }
    printf("soak: %llu documents acknowledged; %llu messages published, "
           "%llu deliveries, %llu missed, %llu dropped by bounded queues\n",
           (unsigned long long)docs, (unsigned long long)pubs,
           (unsigned long long)recv, (unsigned long long)missed,
           (unsigned long long)dropped);
    return bad;
}

static int
check_bounds(const soak *s, const soak_figs *f)
{
    int bad = 0;
    for (unsigned r = 0; r < s->rounds && r < 16; r++) {
        if (f->after[r].fds > f->base.fds ||
            f->after[r].threads > f->base.threads) {
            fprintf(stderr,
                    "soak: FAIL: after round %u the server holds %ld "
                    "fds and %ld threads (before the clients: %ld, %ld)\n",
                    r + 1, f->after[r].fds, f->after[r].threads, f->base.fds,
                    f->base.threads);
            bad = -1;
        }
    }
    long first = f->after[0].rss_anon_kb;
    long last = f->after[(s->rounds < 16 ? s->rounds : 16) - 1].rss_anon_kb;
    long slack = first / 4 > RSS_SLACK_KB ? first / 4 : RSS_SLACK_KB;
    if (last > first + slack) {
        fprintf(stderr,
                "soak: FAIL: server anonymous memory %ld KiB after "
                "the last round, %ld after the first (bound +%ld)\n",
                last, first, slack);
        bad = -1;
    }
    printf("soak: server before: RSS %ld KiB (anon %ld), %ld fds, %ld "
           "threads; peak: RSS %ld KiB (anon %ld), %ld fds, %ld threads\n",
           f->base.rss_kb, f->base.rss_anon_kb, f->base.fds, f->base.threads,
           f->peak.rss_kb, f->peak.rss_anon_kb, f->peak.fds, f->peak.threads);
    return bad;
}

/* Everything acknowledged, read through the server. */
static int
verify_remote(soak *s)
{
    sprig_storage *st;
    sprig_db *db;
    char why[512] = "";
    int rc = soak_connect(s, &st, &db);
    int bad = rc ? -1 : soak_verify(s, db, why, sizeof why);
    if (rc) {
        snprintf(why, sizeof why, "connect: %s", sprig_errmsg());
    }
    if (!rc) {
        sprig_db_close(db);
        sprig_storage_close(st);
    }
    if (bad) {
        fprintf(stderr, "soak: FAIL: read back through the server: %s\n", why);
    }
    return bad;
}

/* The server stopped: everything acknowledged is in the files, and the
 * integrity check finds nothing. */
static int
verify_local(soak *s, const char *dir)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    sprig_storage *st = NULL;
    sprig_db *db = NULL;
    sprig_buf report = {0};
    uint64_t findings = 0;
    char why[512] = "";
    int rc = sprig_storage_open(&so, &st);
    rc = rc ? rc : sprig_storage_open_database(st, SOAK_DB, &db);
    int bad = rc ? -1 : soak_verify(s, db, why, sizeof why);
    sprig_db_close(db);
    rc = rc ? rc : sprig_storage_check(st, &report, &findings);
    if (rc || bad || findings) {
        fprintf(stderr, "soak: FAIL: the storage reopened: %s %s %.*s\n",
                rc ? sprig_errmsg() : "", why, (int)report.len,
                (const char *)report.data);
        bad = -1;
    }
    sprig_buf_clear(&report);
    sprig_storage_close(st);
    return bad;
}

static void
scratch_dir(const soak_opts *o, char *dir, size_t n)
{
    const char *root = getenv("SPRIG_TEST_TMP");
    if (o->dir) {
        snprintf(dir, n, "%s", o->dir);
    } else {
        snprintf(dir, n, "%s/soak.%ld", root && *root ? root : "/tmp",
                 (long)getpid());
    }
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "soak: cannot make %s\n", dir);
        exit(1);
    }
}

static int
run(soak *s, const char *dir)
{
    soak_figs f = {0};
    int port, bad = 0;
    f.pid = soak_server_start(dir, &port);
    if (f.pid < 0) {
        return -1;
    }
    snprintf(s->url, sizeof s->url, "ws://127.0.0.1:%d", port);
    if (soak_warm_up(s) != SPRIG_OK) {
        fprintf(stderr, "soak: FAIL: warm-up: %s\n", sprig_errmsg());
        bad = -1;
    }
    f.base = settle_quiet(f.pid);
    bad |= run_rounds(s, &f);
    bad |= check_load(s);
    bad |= check_bounds(s, &f);
    bad |= verify_remote(s);
    int status = soak_server_stop(f.pid);
    if (status != 0) {
        fprintf(stderr, "soak: FAIL: the server exited with %d\n", status);
        bad = -1;
    }
    bad |= verify_local(s, dir);
    report_latency(s);
    return bad;
}

int
main(int argc, char **argv)
{
    soak_opts o;
    soak s = {0};
    char dir[1024];
    if (parse(argc, argv, &o) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    scratch_dir(&o, dir, sizeof dir);
    if (setup(&s, &o) != 0) {
        fprintf(stderr, "soak: out of memory\n");
        return 1;
    }
    printf("soak: seed %llu (SPRIG_SEED to replay); %u workers + %u "
           "subscribers, %u s in %u rounds, %s; logged in as '%s'\n",
           (unsigned long long)s.seed, s.workers, s.subs, s.seconds, s.rounds,
           SOAK_ASAN   ? "ASan build"
           : SOAK_TSAN ? "TSan build"
                       : "normal build",
           SOAK_USER);
    fflush(stdout);
    int bad = run(&s, dir);
    printf("soak: %s\n", bad ? "FAILED" : "passed");
    if (!bad) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        int rm = system(cmd);
        (void)rm;
    }
    for (unsigned i = 0; i < s.workers; i++) {
        for (int op = 0; op < SOAK_OPS; op++) {
            free(s.w[i].lat[op].us);
        }
    }
    for (unsigned i = 0; i < s.subs; i++) {
        free(s.s[i].next);
    }
    free(s.w);
    free(s.s);
    return bad ? 1 : 0;
}
