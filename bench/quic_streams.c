/*
 * quic_streams.c -- the QUIC stream mapping measured (issue 11): every
 * message on one stream (`?streams=one`) against a stream per request
 * (`?streams=request`), in one run, through a UDP relay that drops and
 * reorders datagrams (tests/udp_proxy.h) at 0 %, 1 % and 10 %.
 *
 * A real server (sprig_server, QUIC on 127.0.0.1, two workers) and one
 * client connection shared by `--conc` threads, each calling kv.get in a
 * loop: independent requests in flight together on one connection, so a
 * lost packet holds up the answers queued behind it on one stream (head
 * of line) and only its own with a stream per request.  Prints, per
 * mapping and loss: requests/s and the p50 / p99 / max round trip, and
 * writes them to --out (JSON).
 *
 * --cg MAPPING N: no relay, no timing: N requests of 16 threads between
 * CALLGRIND_START/STOP_INSTRUMENTATION, for `valgrind --tool=callgrind
 * --instr-atstart=no` (instructions per request, client and server in one
 * process: the per-stream cost).  `make bench-quic-streams` runs both.
 *
 * usage: quic_streams [--quick] [--seconds S] [--runs N (3)] [--conc K]
 *                     [--out JSON]
 *        quic_streams --cg one|request N
 * Randomness: the relay's, from SPRIG_SEED (printed).
 */
#include "sprig/client.h"
#include "sprig/server.h"

#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#define assert_int_equal(a, b)                                                 \
    do {                                                                       \
        if ((a) != (b)) {                                                      \
            fprintf(stderr, "relay: %s failed\n", #a);                         \
            exit(1);                                                           \
        }                                                                      \
    } while (0)
#include "../tests/udp_proxy.h"

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"q", cols, 1};

static sprig_cert_info cert;
static char root[256];

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
die(const char *what)
{
    fprintf(stderr, "quic_streams: %s: %s\n", what, sprig_errmsg());
    exit(1);
}

static sprig_server *
start_server(void)
{
    char dir[512];
    sprig_storage_options so;
    sprig_server_options o;
    sprig_server *srv;
    snprintf(dir, sizeof dir, "%s/db", root);
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = SPRIG_DURABILITY_NONE;
    sprig_server_options_init(&o);
    o.open_access = true;
    o.max_connections_per_address = 0;
    o.ws_listen = NULL;
    o.quic_listen = "127.0.0.1:0";
    o.quic_cert_file = cert.cert_path;
    o.quic_key_file = cert.key_path;
    o.workers = 2;
    if (sprig_server_new(&so, &o, &srv) != SPRIG_OK) {
        die("server");
    }
    sprig_storage *st = sprig_server_storage(srv);
    sprig_db *db;
    sprig_value v = sprig_value_of_u64(42);
    if (sprig_storage_register_schema(st, &schema) ||
        sprig_storage_create_database(st, "db", "q", true) ||
        sprig_storage_open_database(st, "db", &db) ||
        sprig_kv_set(db, "ns", "k", &v, NULL, NULL, NULL)) {
        die("database");
    }
    sprig_db_close(db);
    if (sprig_server_start(srv) != SPRIG_OK) {
        die("start");
    }
    return srv;
}

static sprig_client *
connect_to(int port, const char *mapping)
{
    char url[128];
    sprig_client_options co;
    sprig_client *c;
    snprintf(url, sizeof url, "quic://127.0.0.1:%d?streams=%s", port, mapping);
    sprig_client_options_init(&co);
    co.pinned_cert_sha256 = cert.sha256;
    co.connect_timeout_ms = 20000;
    co.request_timeout_ms = 60000;
    if (sprig_client_connect(url, &co, &c) != SPRIG_OK) {
        die("connect");
    }
    return c;
}

/* One thread's loop: kv.get until `until` (or `count` calls). */
typedef struct worker {
    sprig_db *db;
    double until;
    long count;
    double *lat;
    size_t n, cap;
    int errors;
} worker;

static void *
run_worker(void *p)
{
    worker *w = p;
    for (long i = 0; w->count ? i < w->count : now_ms() < w->until; i++) {
        sprig_value got;
        double t0 = now_ms();
        if (sprig_kv_get(w->db, "ns", "k", false, &got) != SPRIG_OK ||
            got.num.u64 != 42) {
            w->errors++;
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
        }
        w->lat[w->n++] = now_ms() - t0;
    }
    return NULL;
}

/* `conc` threads on client `c`, for `seconds` or `count` calls each. */
static size_t
load(sprig_client *c, int conc, double seconds, long count, double **lat,
     int *errors)
{
    worker *w = calloc((size_t)conc, sizeof *w);
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    double until = now_ms() + seconds * 1e3;
    size_t total = 0;
    for (int i = 0; i < conc; i++) {
        if (sprig_storage_open_database(sprig_client_storage(c), "db",
                                        &w[i].db) != SPRIG_OK) {
            die("open");
        }
        w[i].until = until;
        w[i].count = count;
        pthread_create(&th[i], NULL, run_worker, &w[i]);
    }
    *errors = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        total += w[i].n;
        *errors += w[i].errors;
    }
    *lat = malloc((total ? total : 1) * sizeof **lat);
    size_t k = 0;
    for (int i = 0; i < conc; i++) {
        memcpy(*lat + k, w[i].lat, w[i].n * sizeof **lat);
        k += w[i].n;
        free(w[i].lat);
        sprig_db_close(w[i].db);
    }
    free(w);
    free(th);
    return total;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    const char *mapping;
    double loss, rps, p50, p99, max;
    size_t n;
    unsigned long dropped;
    int errors;
} result;

static result
measure(sprig_server *srv, const char *mapping, double loss, int conc,
        double seconds, uint64_t seed)
{
    udp_proxy px;
    result r = {mapping, loss, 0, 0, 0, 0, 0, 0, 0};
    double *lat;
    udp_proxy_start(&px, sprig_server_quic_port(srv), loss, loss, seed);
    sprig_client *c = connect_to(px.port, mapping);
    load(c, conc, 0.2, 0, &lat, &r.errors); /* warm: windows, RTT */
    free(lat);
    double t0 = now_ms();
    r.n = load(c, conc, seconds, 0, &lat, &r.errors);
    r.rps = r.n / ((now_ms() - t0) / 1e3);
    qsort(lat, r.n, sizeof *lat, cmp_double);
    if (r.n) {
        r.p50 = lat[r.n / 2];
        r.p99 = lat[r.n * 99 / 100];
        r.max = lat[r.n - 1];
    }
    free(lat);
    sprig_client_close(c);
    udp_proxy_stop(&px);
    r.dropped = atomic_load(&px.dropped);
    return r;
}

static void
rm_root(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    (void)!system(cmd);
}

static int
cg_mode(const char *mapping, long n)
{
    sprig_server *srv = start_server();
    sprig_client *c = connect_to(sprig_server_quic_port(srv), mapping);
    double *lat;
    int errors;
    enum { T = 16 };
    load(c, T, 0, 200 / T, &lat, &errors); /* handshake, streams warm */
    free(lat);
    CALLGRIND_START_INSTRUMENTATION;
    size_t done = load(c, T, 0, n / T, &lat, &errors);
    CALLGRIND_STOP_INSTRUMENTATION;
    free(lat);
    printf("cg %s: %zu requests, %d errors\n", mapping, done, errors);
    sprig_client_close(c);
    sprig_server_free(srv);
    rm_root();
    return errors ? 1 : 0;
}

/* The median of `n` values of field `f` of rs[0..n), and its range. */
static double
median_of(const result *rs, int n, size_t off, double *lo, double *hi)
{
    double v[16];
    for (int i = 0; i < n; i++) {
        v[i] = *(const double *)((const char *)&rs[i] + off);
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *lo = v[0];
    *hi = v[n - 1];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
print_cell(FILE *f, const result *rs, int n, bool json)
{
    double lo[3], hi[3];
    double rps = median_of(rs, n, offsetof(result, rps), &lo[0], &hi[0]);
    double p50 = median_of(rs, n, offsetof(result, p50), &lo[1], &hi[1]);
    double p99 = median_of(rs, n, offsetof(result, p99), &lo[2], &hi[2]);
    if (json) {
        fprintf(f,
                "{\"mapping\": \"%s\", \"loss\": %.2f, \"runs\": %d, "
                "\"rps\": %.0f, \"rps_min\": %.0f, \"rps_max\": %.0f, "
                "\"p50_ms\": %.3f, \"p50_min\": %.3f, \"p50_max\": %.3f, "
                "\"p99_ms\": %.3f, \"p99_min\": %.3f, \"p99_max\": %.3f}",
                rs[0].mapping, rs[0].loss, n, rps, lo[0], hi[0], p50, lo[1],
                hi[1], p99, lo[2], hi[2]);
        return;
    }
    fprintf(f,
            "| %s | %.0f %% | %.0f (%.0f-%.0f) | %.2f (%.2f-%.2f) | %.1f "
            "(%.1f-%.1f) |\n",
            rs[0].mapping, rs[0].loss * 100, rps, lo[0], hi[0], p50, lo[1],
            hi[1], p99, lo[2], hi[2]);
}

static void
write_json(const char *out, uint64_t seed, int conc, double seconds,
           result (*res)[16], int cells, int runs)
{
    FILE *f = fopen(out, "w");
    if (!f) {
        return;
    }
    fprintf(f,
            "{\"bench\": \"quic_streams\", \"seed\": %llu, \"threads\": "
            "%d, \"seconds\": %.2f, \"rows\": [",
            (unsigned long long)seed, conc, seconds);
    for (int i = 0; i < cells; i++) {
        fprintf(f, "%s\n ", i ? "," : "");
        print_cell(f, res[i], runs, true);
    }
    fprintf(f, "\n]}\n");
    fclose(f);
}

typedef struct opts {
    double seconds;
    int conc, runs;
    const char *out;
    bool quick;
} opts;

/* The options into *o; nonzero: exit with it (usage, or --cg done). */
static int
parse_args(int argc, char **argv, opts *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cg") && i + 2 < argc) {
            int rc = cg_mode(argv[i + 1], atol(argv[i + 2]));
            return rc ? rc : -1;
        } else if (!strcmp(argv[i], "--quick")) {
            o->quick = true;
            o->seconds = 0.5;
            o->runs = 1;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            o->seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            o->runs = atoi(argv[++i]);
            o->runs = o->runs < 1 ? 1 : o->runs > 16 ? 16 : o->runs;
        } else if (!strcmp(argv[i], "--conc") && i + 1 < argc) {
            o->conc = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            o->out = argv[++i];
        } else {
            fprintf(stderr, "usage: quic_streams [--quick] [--seconds S] "
                            "[--runs N] [--conc K] [--out JSON] | --cg "
                            "MAPPING N\n");
            return 2;
        }
    }
    return 0;
}

/* Every cell `o->runs` times, the cells interleaved; nonzero when a
 * request failed. */
static int
run_cells(const opts *o, uint64_t seed, result (*res)[16], int cells)
{
    static const char *maps[] = {"one", "request"};
    static const double losses[] = {0.0, 0.01, 0.10};
    sprig_server *srv = start_server();
    int bad = 0;
    printf("%-8s %5s %10s %9s %9s %9s %8s\n", "mapping", "loss", "req/s",
           "p50 ms", "p99 ms", "max ms", "dropped");
    for (int run = 0; run < o->runs; run++) {
        for (int k = 0; k < cells; k++) {
            result r = measure(srv, maps[k % 2], losses[k / 2], o->conc,
                               o->seconds, seed + (uint64_t)run);
            printf("%-8s %4.0f%% %10.0f %9.2f %9.2f %9.2f %8lu%s\n", r.mapping,
                   r.loss * 100, r.rps, r.p50, r.p99, r.max, r.dropped,
                   r.errors ? " ERRORS" : "");
            fflush(stdout);
            bad |= r.errors != 0 || r.n == 0;
            res[k][run] = r;
        }
    }
    sprig_server_free(srv);
    return bad;
}

int
main(int argc, char **argv)
{
    opts o = {3.0, 16, 3, NULL, false};
    static result res[6][16];
    snprintf(root, sizeof root, "/tmp/sprig-quic-streams.%d", (int)getpid());
    if (mkdir(root, 0700) != 0 || sprig_cert_ensure(root, &cert) != SPRIG_OK) {
        die("certificate");
    }
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        rm_root(); /* --cg removed it already: no harm */
        return rc < 0 ? 0 : rc;
    }
    const char *s = getenv("SPRIG_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    printf("seed=%llu (replay with SPRIG_SEED=%llu); %d threads on one "
           "connection, kv.get, %.1f s per cell, %d runs\n",
           (unsigned long long)seed, (unsigned long long)seed, o.conc,
           o.seconds, o.runs);
    int cells = o.quick ? 4 : 6;
    int bad = run_cells(&o, seed, res, cells);
    printf("\nmedian (min-max) of %d runs:\n| mapping | loss | requests/s | "
           "p50 ms | p99 ms |\n|---|---|---|---|---|\n",
           o.runs);
    for (int k = 0; k < cells; k++) {
        print_cell(stdout, res[k], o.runs, false);
    }
    if (o.out) {
        write_json(o.out, seed, o.conc, o.seconds, res, cells, o.runs);
    }
    rm_root();
    return bad;
}
