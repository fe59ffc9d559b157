/*
 * api_bench.c -- what a custom API call costs (issue 12) beside the
 * built-in rows, in one run: round trips per second with 50 clients over
 * ws:// on loopback, each a sprig_client calling in a loop, against one
 * server (open access: the request path without permission checks, the
 * same for every row) for
 *
 *   get         the built-in db.get of one document (answered on the loop
 *               thread from the handle cache)
 *   empty-loop  a custom API whose handler answers at once, run on the
 *               loop thread (SPRIG_API_RUN_LOOP)
 *   empty       the same handler on the worker pool (the default)
 *   incr        a custom API whose handler (on a worker) increments a
 *               key-value counter asynchronously (sprig_api_kv_increment:
 *               submitted to the writer, answered from its completion)
 *   incr-loop   the same handler on the loop thread
 *   incr-sync   a handler on a worker calling sprig_kv_increment (the
 *               worker waits for the commit)
 *   kv.incr     the built-in kv.increment of the same counter (submitted
 *               to the writer, no worker waits)
 *
 * Each round runs every workload for the same time, in an order rotated
 * per round, so drift in the machine's load spreads over all of them; the
 * median and the spread (min..max) of 5 rounds are reported, and the cost
 * of each relative to get (get's rate / its rate: 1.0 = as cheap).
 *
 * Usage: api_bench [--quick] [--out FILE.json]
 * --quick: 0.2 s phases, 2 rounds (the ctest smoke: behaviour, not speed).
 */
#include "netload.h"
#include "sprig/client.h"
#include "sprig/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define API_HAVE_CALLGRIND 1
#endif
#endif

#define CLIENTS 50
#define ROUNDS_MAX 8

static const sprig_collection_def cols[] = {{"c", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"b", cols, 1};

enum {
    W_GET,
    W_EMPTY_LOOP,
    W_EMPTY,
    W_INCR,
    W_INCR_LOOP,
    W_INCR_SYNC,
    W_KV_INCR,
    W_N
};
static const char *const names[W_N] = {
    "get", "empty-loop", "empty", "incr", "incr-loop", "incr-sync", "kv.incr"};
static const char *const apis[W_N] = {
    NULL,         "bench.empty_loop", "bench.empty",
    "bench.incr", "bench.incr_loop",  "bench.incr_sync",
    NULL};

static sprig_db *server_db; /* the counter's database, on the server side */

static void
check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "api_bench: %s: %s: %s\n", what, sprig_strerror(rc),
                sprig_errmsg());
        exit(1);
    }
}

static void
h_empty(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_api_reply(ctx, NULL, 0);
}

/* The asynchronous increment's answer: the new value as text. */
static void
incr_done(sprig_api_ctx *ctx, int rc, const sprig_value *v, void *udata)
{
    (void)udata;
    if (rc) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
        return;
    }
    char out[24];
    int n = snprintf(out, sizeof out, "%lld", (long long)v->num.i64);
    sprig_api_reply(ctx, out, (size_t)n);
}

static void
h_incr(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_value one = sprig_value_of_i64(1);
    int rc = sprig_api_kv_increment(ctx, "app", "", "n", &one, incr_done, NULL);
    if (rc) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
    }
}

static void
h_incr_sync(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_value one = sprig_value_of_i64(1), v = {0};
    int rc = sprig_kv_increment(server_db, "", "n", &one, false, &v);
    if (rc) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
        return;
    }
    char out[24];
    int n = snprintf(out, sizeof out, "%lld", (long long)v.num.i64);
    sprig_api_reply(ctx, out, (size_t)n);
}

typedef struct worker {
    sprig_client *c;
    sprig_db *db;
    int kind;
} worker;

static void
one_call(worker *w)
{
    sprig_buf b = {0};
    sprig_doc *d = NULL;
    sprig_value one = sprig_value_of_i64(1), v = {0};
    switch (w->kind) {
    case W_GET:
        check(sprig_get(w->db, "c", sprig_str("doc"), &d), "get");
        break;
    case W_KV_INCR:
        check(sprig_kv_increment(w->db, "", "n", &one, false, &v), "kv.incr");
        break;
    default: check(sprig_client_call(w->c, apis[w->kind], NULL, 0, &b), "call");
    }
    sprig_doc_free(d);
    sprig_buf_clear(&b);
}

/* netload's call: one call of the client's workload. */
static void
one_call_fn(void *p)
{
    one_call(p);
}

/* One phase of workload `kind` for `secs`: calls per second. */
static double
phase(worker *w, int kind, double secs)
{
    for (int i = 0; i < CLIENTS; i++) {
        w[i].kind = kind;
        one_call(&w[i]); /* warm: the handle cached, the row found */
    }
    return netload_phase(CLIENTS, one_call_fn, w, sizeof *w, secs);
}

/* ---- instruction counts (--cg, under callgrind) --------------------------
 * `api_bench --cg KIND --n N` makes N calls of one workload with
 * CG_CLIENTS clients at once and counts only them (set-up and warm-up
 * uninstrumented; every thread, the server's loop and workers included).
 * `api_bench --callgrind` runs that under valgrind for every workload and
 * prints instructions per call beside the ratios: they do not move with
 * the machine's load. */
#define CG_CLIENTS 8

typedef struct cg_worker {
    worker *w;
    uint64_t n;
} cg_worker;

static void *
cg_work(void *p)
{
    cg_worker *c = p;
    for (uint64_t i = 0; i < c->n; i++) {
        one_call(c->w);
    }
    return NULL;
}

static void
cg_run(worker *w, int kind, uint64_t n)
{
    pthread_t th[CG_CLIENTS];
    cg_worker cw[CG_CLIENTS];
    for (int i = 0; i < CG_CLIENTS; i++) {
        w[i].kind = kind;
        one_call(&w[i]); /* warm */
        cw[i] = (cg_worker){&w[i], n / CG_CLIENTS};
    }
#ifdef API_HAVE_CALLGRIND
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
#endif
    for (int i = 0; i < CG_CLIENTS; i++) {
        pthread_create(&th[i], NULL, cg_work, &cw[i]);
    }
    for (int i = 0; i < CG_CLIENTS; i++) {
        pthread_join(th[i], NULL);
    }
#ifdef API_HAVE_CALLGRIND
    CALLGRIND_DUMP_STATS_AT("api_cg_region");
    CALLGRIND_STOP_INSTRUMENTATION;
#endif
    printf("cg-ops: %llu\n", (unsigned long long)(n / CG_CLIENTS) * CG_CLIENTS);
}

/* Instructions per call of workload `k` (valgrind running --cg), or -1. */
static double
cg_count(const char *self, int k, unsigned n)
{
    char out[] = "/tmp/sprig-api-cg.XXXXXX", cmd[1024], line[256];
    int fd = mkstemp(out);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    snprintf(cmd, sizeof cmd,
             "valgrind -q --tool=callgrind --instr-atstart=no "
             "--callgrind-out-file=%s '%s' --cg %s --n %u >/dev/null 2>&1; "
             "grep -h -E '^(totals|summary):' %s.* | head -1; rm -f %s %s.*",
             out, self, names[k], n, out, out, out);
    FILE *f = popen(cmd, "r");
    double per = -1;
    if (f && fgets(line, sizeof line, f)) {
        per = strtod(strchr(line, ':') + 1, NULL) / (double)n;
    }
    if (f) {
        pclose(f);
    }
    return per;
}

static sprig_server *
server(sprig_storage *st)
{
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    o.open_access = true; /* the path, not the checks (auth_bench) */
    o.max_connections_per_address = 0; /* 50 clients from 127.0.0.1 */
    if (getenv("API_BENCH_WORKERS")) {
        o.workers = (unsigned)atoi(getenv("API_BENCH_WORKERS"));
    }
    sprig_server *srv;
    check(sprig_server_new_for(st, &o, &srv), "server");
    sprig_api_options lo;
    sprig_api_options_init(&lo);
    lo.run = SPRIG_API_RUN_LOOP;
    check(sprig_server_register_api_with(srv, "bench.empty_loop", "bench.call",
                                         h_empty, NULL, &lo),
          "register");
    check(sprig_server_register_api(srv, "bench.empty", "bench.call", h_empty,
                                    NULL),
          "register");
    sprig_api_options wo;
    sprig_api_options_init(&wo);
    wo.write = true;
    check(sprig_server_register_api_with(srv, "bench.incr", "bench.write",
                                         h_incr, NULL, &wo),
          "register");
    check(sprig_server_register_api_with(srv, "bench.incr_sync", "bench.write",
                                         h_incr_sync, NULL, &wo),
          "register");
    wo.run = SPRIG_API_RUN_LOOP;
    check(sprig_server_register_api_with(srv, "bench.incr_loop", "bench.write",
                                         h_incr, NULL, &wo),
          "register");
    check(sprig_server_start(srv), "start");
    return srv;
}

static sprig_storage *
storage(char *dir)
{
    check(mkdtemp(dir) ? 0 : SPRIG_EIO, "mkdtemp");
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    sprig_storage *st;
    check(sprig_storage_open(&so, &st), "open");
    check(sprig_storage_register_schema(st, &schema), "schema");
    check(sprig_storage_create_database(st, "app", "b", false), "create");
    check(sprig_storage_open_database(st, "app", &server_db), "db");
    check(sprig_overwrite(server_db, "c", sprig_str("doc"),
                          sprig_str("{\"v\":1}"), NULL),
          "put");
    return st;
}

static void
write_json(const char *out, double m[W_N], double lo[W_N], double hi[W_N],
           int rounds, double secs)
{
    FILE *f = out ? fopen(out, "w") : NULL;
    if (!f) {
        return;
    }
    fprintf(f, "{\"clients\":%d,\"rounds\":%d,\"seconds\":%.1f", CLIENTS,
            rounds, secs);
    for (int k = 0; k < W_N; k++) {
        fprintf(f,
                ",\"%s\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f,"
                "\"cost_vs_get\":%.3f,\"cost_vs_kv_incr\":%.3f}",
                names[k], m[k], lo[k], hi[k], m[W_GET] / m[k],
                m[W_KV_INCR] / m[k]);
    }
    fprintf(f, "}\n");
    fclose(f);
}

int
main(int argc, char **argv)
{
    bool quick = false, cg_all = false;
    const char *out = NULL, *cg = NULL, *only = NULL;
    unsigned cg_n = 4000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--cg") == 0 && i + 1 < argc) {
            cg = argv[++i];
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            cg_n = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--callgrind") == 0) {
            cg_all = true;
        }
    }
    if (cg_all) {
        double per[W_N];
        for (int k = 0; k < W_N; k++) {
            per[k] = cg_count(argv[0], k, cg_n);
            printf("%-10s %8.0f instructions per call (%.2fx get)\n", names[k],
                   per[k], per[k] / per[W_GET]);
            fflush(stdout);
        }
        return 0;
    }
    double secs = quick ? 0.2 : 2.0;
    int rounds = quick ? 2 : 5;
    char dir[] = "/tmp/sprig-api-bench.XXXXXX";
    sprig_storage *st = storage(dir);
    sprig_server *srv = server(st);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", sprig_server_ws_port(srv));
    worker w[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        check(sprig_client_connect(url, NULL, &w[i].c), "connect");
        check(sprig_storage_open_database(sprig_client_storage(w[i].c), "app",
                                          &w[i].db),
              "open");
    }
    if (cg) {
        for (int k = 0; k < W_N; k++) {
            if (strcmp(names[k], cg) == 0) {
                cg_run(w, k, cg_n);
            }
        }
        rounds = 0;
    }
    double v[W_N][ROUNDS_MAX];
    for (int r = 0; r < rounds; r++) {
        printf("round %d:", r + 1);
        for (int j = 0; j < W_N; j++) {
            int k = (j + r) % W_N; /* rotate the order */
            if (only && strcmp(only, names[k]) != 0) {
                v[k][r] = 1;
                continue;
            }
            v[k][r] = phase(w, k, secs);
        }
        for (int k = 0; k < W_N; k++) {
            printf(" %s %.0f/s", names[k], v[k][r]);
        }
        printf("\n");
        fflush(stdout);
    }
    double m[W_N], lo[W_N], hi[W_N];
    for (int k = 0; cg == NULL && k < W_N; k++) {
        m[k] = netload_median(v[k], rounds);
        lo[k] = v[k][0];
        hi[k] = v[k][rounds - 1];
    }
    for (int k = 0; cg == NULL && k < W_N; k++) {
        printf("%-10s median %8.0f calls/s (%.0f..%.0f), cost vs get %.2fx, "
               "vs kv.incr %.2fx\n",
               names[k], m[k], lo[k], hi[k], m[W_GET] / m[k],
               m[W_KV_INCR] / m[k]);
    }
    if (!cg) {
        printf("%d clients over ws://, %d rounds of %.1f s each\n", CLIENTS,
               rounds, secs);
        write_json(out, m, lo, hi, rounds, secs);
    }
    for (int i = 0; i < CLIENTS; i++) {
        sprig_db_close(w[i].db);
        sprig_client_close(w[i].c);
    }
    sprig_server_free(srv);
    sprig_db_close(server_db);
    sprig_storage_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "api_bench: could not remove %s\n", dir);
    }
    return 0;
}
