/*
 * main.c -- `sprig-bench`, a load generator for a Sprig server in the
 * manner of redis-benchmark: CLIENTS connections, REQUESTS requests per
 * test, PIPELINE requests in flight per connection, one test per
 * operation named by -t.  It reports requests per second and latency
 * quantiles (text, -q, or --csv in redis-benchmark's column order plus an
 * error count) and exits non-zero when any answer was an error frame or
 * did not hold what the request must have produced: the same program is
 * the benchmark (bench/bench_net.sh) and a behaviour test (ctest
 * bench_net_smoke).  See bench.h for the parts and the data it uses.
 */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: sprig-bench [-u URL] [-c CLIENTS] [-n REQUESTS] [-P PIPELINE]\n"
    "                   [-t TESTS] [-d DATASIZE] [--db NAME]\n"
    "                   [--collection C] [--keyspace N] [--load WHAT]\n"
    "                   [--threads T] [--seed S] [--timeout SECONDS]\n"
    "                   [--csv | -q]\n"
    "       sprig-bench --pubsub N [-c SUBSCRIBERS] [-P P] [--window W]\n"
    "                   [-d DATASIZE] [-u URL | --redis HOST:PORT] [--csv|-q]\n"
    "       sprig-bench --tcp-ping SECONDS [-c CLIENTS] [--csv]\n"
    "\n"
    "Load a Sprig server (protocol sprig/1 over WebSockets) like\n"
    "redis-benchmark loads Redis, and check every answer.\n"
    "\n"
    "  -u URL            server (default ws://127.0.0.1:5646; also wss://,\n"
    "                    quic://)\n"
    "  --pin SHA256      wss, quic: trust the server certificate with this\n"
    "                    SHA-256 fingerprint (sprig certificate show)\n"
    "  --user NAME       log each connection in as NAME (auth.password)\n"
    "                    before any test, so a server with its permission\n"
    "                    engine on (no --insecure-open) can be measured\n"
    "  --password-env VAR  the password of --user, from environment\n"
    "                    variable VAR\n"
    "  -c CLIENTS        connections (default 50)\n"
    "  -n REQUESTS       requests per test (default 100000)\n"
    "  -P PIPELINE       requests in flight per connection (default 1)\n"
    "  -t TESTS          comma-separated: kv.set, kv.get, db.get, db.insert\n"
    "                    (default kv.set,kv.get)\n"
    "  -d DATASIZE       bytes of each value and document (default 100;\n"
    "                    from 27 bytes a JSON document)\n"
    "  --db NAME         database (default \"default\")\n"
    "  --collection C    collection of db.get and db.insert (default docs)\n"
    "  --ns NS           key-value namespace (default: none)\n"
    "  -r, --keyspace N  keys key:000000000000 ... and documents with u64\n"
    "                    ids 1 ... N (default 100000); random ones are used\n"
    "  --load WHAT       first write every item the gets read: kv, doc or\n"
    "                    kv,doc (untimed); without -t, load only\n"
    "  --threads T       client threads, each with its own event loop\n"
    "                    (default 1)\n"
    "  --seed S          random seed (default: from the clock)\n"
    "  --timeout SECONDS deadline of each phase (default 120)\n"
    "  --csv             one CSV row per test: test, requests/s, latency ms\n"
    "                    avg, min, p50, p95, p99, max, errors\n"
    "  -q                one line per test\n"
    "  --pubsub N        no -t tests: publish N messages from one connection\n"
    "                    to CLIENTS subscribers on connections of their\n"
    "                    own (topic \"bench\"); P publishes unanswered at\n"
    "                    most, W messages (--window, default 64) not yet\n"
    "                    received by all; the rate is messages delivered\n"
    "                    per second, latencies publish -> receive\n"
    "  --redis HOST:PORT with --pubsub: Redis PUBLISH/SUBSCRIBE instead\n"
    "  --tarantool HOST:PORT  the db.get and db.insert tests against\n"
    "                    Tarantool (IPROTO; bench/tarantool_server.lua)\n"
    "  --tt-space ID     Tarantool: the space of the documents (512)\n"
    "  --tcp-ping SECONDS  no server: a raw TCP ping-pong on 127.0.0.1\n"
    "                    (echo thread, CLIENTS connections, 16 bytes): the\n"
    "                    loopback's round trips per second\n"
    "\n"
    "Every answer is checked: gets must return the value the load (or a\n"
    "set) wrote for that item (see value() in tools/sprig-bench/bench.h),\n"
    "sets and inserts must succeed.  Exit status: 0 all answers right, 1\n"
    "some were errors (the first is printed) or the run failed, 2 usage.\n";

uint64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
bad_usage(const char *what, const char *arg)
{
    fprintf(stderr, "sprig-bench: %s '%s'\n%s", what, arg, usage);
    return 2;
}

/* A positive integer option in [lo, hi]. */
static int
number(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static double
ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* The long form of a test's report (neither --csv nor -q). */
static void
report_long(const bench_cfg *cfg, const char *name, const bench_result *r,
            const char *unit)
{
    const hist *h = &r->lat;
    double rps = r->seconds > 0 ? (double)r->done / r->seconds : 0;
    printf("====== %s ======\n", name);
    printf("  %llu %s in %.3f s: %.2f per second\n",
           (unsigned long long)r->done, unit, r->seconds, rps);
    printf("  %u clients, pipeline %u, %u-byte values, keyspace %u, "
           "%u thread%s\n",
           cfg->clients, cfg->pipeline, cfg->datasize, cfg->keyspace,
           cfg->threads, cfg->threads == 1 ? "" : "s");
    printf("  latency (ms): avg %.3f  min %.3f  p50 %.3f  p95 %.3f  "
           "p99 %.3f  max %.3f\n",
           h->count ? ms(h->sum_ns) / (double)h->count : 0,
           h->count ? ms(h->min_ns) : 0, ms(hist_quantile(h, 0.50)),
           ms(hist_quantile(h, 0.95)), ms(hist_quantile(h, 0.99)),
           ms(h->max_ns));
    printf("  errors: %llu\n\n", (unsigned long long)r->errors);
}

/* Report one test: a CSV row (--csv), a line (-q) or a paragraph; the
 * first error on stderr.  For pubsub the rate counts messages
 * delivered (one per subscriber and message). */
static void
report(const bench_cfg *cfg, const char *name, const bench_result *r, int rc)
{
    double rps = r->seconds > 0 ? (double)r->done / r->seconds : 0;
    const hist *h = &r->lat;
    const char *unit = strcmp(name, "pubsub") == 0 ? "messages delivered"
                                                   : "requests answered";
    if (cfg->csv) {
        printf("\"%s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\","
               "\"%.3f\",\"%llu\",\"%llu\"\n",
               name, rps, h->count ? ms(h->sum_ns) / (double)h->count : 0,
               h->count ? ms(h->min_ns) : 0, ms(hist_quantile(h, 0.50)),
               ms(hist_quantile(h, 0.95)), ms(hist_quantile(h, 0.99)),
               ms(h->max_ns), (unsigned long long)r->errors,
               (unsigned long long)r->out_of_order);
    } else if (cfg->quiet) {
        printf("%s: %.2f %s per second, p50=%.3f msec, p99=%.3f msec, "
               "errors %llu\n",
               name, rps, unit, ms(hist_quantile(h, 0.50)),
               ms(hist_quantile(h, 0.99)), (unsigned long long)r->errors);
    } else {
        report_long(cfg, name, r, unit);
    }
    if (r->out_of_order && !cfg->csv) {
        printf("  %llu messages overtook an earlier one (out of publish "
               "order)\n",
               (unsigned long long)r->out_of_order);
    }
    fflush(stdout);
    if (r->errors || rc) {
        fprintf(stderr, "sprig-bench: %s: %llu error%s%s%s%s\n", name,
                (unsigned long long)r->errors, r->errors == 1 ? "" : "s",
                r->first_error[0] ? "; first: " : "", r->first_error,
                rc ? " (run incomplete)" : "");
    }
}

/* Run one test (or load); 0 when every answer was right. */
static int
run(const bench_cfg *cfg, bench_op op, uint64_t n, bool sequential,
    const char *name)
{
    bench_result r;
    int rc = driver_run(op, n, sequential, &r);
    report(cfg, name, &r, rc);
    return rc || r.errors ? 1 : 0;
}

/* Split "HOST:PORT" in place (the colon becomes a NUL); 0 or -1. */
static int
host_port(char *s, int *port)
{
    uint64_t v;
    char *colon = strrchr(s, ':');
    if (!colon || colon == s || number(colon + 1, 1, 65535, &v)) {
        return -1;
    }
    *colon = 0;
    *port = (int)v;
    return 0;
}

static void
csv_header(const bench_cfg *cfg)
{
    if (cfg->csv) {
        printf("\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\","
               "\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\","
               "\"max_latency_ms\",\"errors\",\"out_of_order\"\n");
    }
}

/* --pubsub N [--redis HOST:PORT]: the exit status. */
static int
pubsub(const bench_cfg *cfg, uint64_t n, unsigned window, char *redis)
{
    int port = 0;
    if (redis && host_port(redis, &port) != 0) {
        return bad_usage("bad --redis (HOST:PORT)", redis);
    }
    csv_header(cfg);
    bench_result r;
    int rc = pubsub_run(cfg, redis, port, n, window, &r);
    report(cfg, "pubsub", &r, rc);
    return rc || r.errors ? 1 : 0;
}

static int
parse_tests(char *s, bool want[OP_COUNT])
{
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        int op = bench_op_parse(tok);
        if (op < 0) {
            return bad_usage("unknown test (kv.set, kv.get, db.get, "
                             "db.insert)",
                             tok);
        }
        want[op] = true;
    }
    return 0;
}

enum {
    O_DB = 256,
    O_COLL,
    O_NS,
    O_LOAD,
    O_THREADS,
    O_SEED,
    O_TIMEOUT,
    O_CSV,
    O_PING,
    O_PUBSUB,
    O_REDIS,
    O_WINDOW,
    O_TARANTOOL,
    O_TT_SPACE,
    O_PIN,
    O_USER,
    O_PASSWORD_ENV,
    O_HELP
};

int
main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"db", required_argument, NULL, O_DB},
        {"collection", required_argument, NULL, O_COLL},
        {"ns", required_argument, NULL, O_NS},
        {"keyspace", required_argument, NULL, 'r'},
        {"load", required_argument, NULL, O_LOAD},
        {"threads", required_argument, NULL, O_THREADS},
        {"seed", required_argument, NULL, O_SEED},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"csv", no_argument, NULL, O_CSV},
        {"tcp-ping", required_argument, NULL, O_PING},
        {"pubsub", required_argument, NULL, O_PUBSUB},
        {"redis", required_argument, NULL, O_REDIS},
        {"window", required_argument, NULL, O_WINDOW},
        {"tarantool", required_argument, NULL, O_TARANTOOL},
        {"tt-space", required_argument, NULL, O_TT_SPACE},
        {"pin", required_argument, NULL, O_PIN},
        {"user", required_argument, NULL, O_USER},
        {"password-env", required_argument, NULL, O_PASSWORD_ENV},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    bench_cfg cfg = {.url = "ws://127.0.0.1:5646",
                     .db = "default",
                     .collection = "docs",
                     .ns = "",
                     .clients = 50,
                     .pipeline = 1,
                     .threads = 1,
                     .requests = 100000,
                     .datasize = 100,
                     .keyspace = 100000,
                     .timeout_s = 120,
                     .seed = bench_now_ns(),
                     .tt_space = 512};
    bool want[OP_COUNT] = {false}, any_test = false;
    bool load_kv = false, load_doc = false;
    double ping_s = 0;
    uint64_t pubsub_n = 0, window = 64;
    char *redis = NULL;
    uint64_t v;
    int opt;
    while ((opt = getopt_long(argc, argv, "u:c:n:P:t:d:r:qh", longs, NULL)) !=
           -1) {
        switch (opt) {
        case 'u': cfg.url = optarg; break;
        case O_PIN: cfg.pin = optarg; break;
        case O_USER: cfg.user = optarg; break;
        case O_PASSWORD_ENV:
            if (!(cfg.password = getenv(optarg))) {
                return bad_usage("--password-env: no such variable", optarg);
            }
            break;
        case 'c':
            if (number(optarg, 1, 10000, &v)) {
                return bad_usage("bad -c", optarg);
            }
            cfg.clients = (unsigned)v;
            break;
        case 'n':
            if (number(optarg, 1, UINT64_C(1) << 40, &v)) {
                return bad_usage("bad -n", optarg);
            }
            cfg.requests = v;
            break;
        case 'P':
            if (number(optarg, 1, 255, &v)) {
                return bad_usage("bad -P (1 ... 255)", optarg);
            }
            cfg.pipeline = (unsigned)v;
            break;
        case 't': {
            int rc = parse_tests(optarg, want);
            if (rc) {
                return rc;
            }
            any_test = true;
            break;
        }
        case 'd':
            if (number(optarg, 1, 65536, &v)) {
                return bad_usage("bad -d (1 ... 65536)", optarg);
            }
            cfg.datasize = (uint32_t)v;
            break;
        case 'r':
            if (number(optarg, 1, UINT32_MAX, &v)) {
                return bad_usage("bad --keyspace", optarg);
            }
            cfg.keyspace = (uint32_t)v;
            break;
        case 'q': cfg.quiet = true; break;
        case O_DB: cfg.db = optarg; break;
        case O_COLL: cfg.collection = optarg; break;
        case O_NS: cfg.ns = optarg; break;
        case O_LOAD:
            load_kv = strstr(optarg, "kv") != NULL;
            load_doc = strstr(optarg, "doc") != NULL;
            if (!load_kv && !load_doc) {
                return bad_usage("bad --load (kv, doc or kv,doc)", optarg);
            }
            break;
        case O_THREADS:
            if (number(optarg, 1, 64, &v)) {
                return bad_usage("bad --threads", optarg);
            }
            cfg.threads = (unsigned)v;
            break;
        case O_SEED:
            if (number(optarg, 0, UINT64_MAX, &v)) {
                return bad_usage("bad --seed", optarg);
            }
            cfg.seed = v;
            break;
        case O_TIMEOUT:
            if (number(optarg, 1, 86400, &v)) {
                return bad_usage("bad --timeout", optarg);
            }
            cfg.timeout_s = (unsigned)v;
            break;
        case O_CSV: cfg.csv = true; break;
        case O_PING:
            ping_s = strtod(optarg, NULL);
            if (ping_s <= 0 || ping_s > 3600) {
                return bad_usage("bad --tcp-ping", optarg);
            }
            break;
        case O_PUBSUB:
            if (number(optarg, 1, UINT64_C(1) << 40, &pubsub_n)) {
                return bad_usage("bad --pubsub", optarg);
            }
            break;
        case O_REDIS: redis = optarg; break;
        case O_TARANTOOL:
            if (host_port(optarg, &cfg.tt_port) != 0) {
                return bad_usage("bad --tarantool (HOST:PORT)", optarg);
            }
            cfg.tt_host = optarg;
            break;
        case O_TT_SPACE:
            if (number(optarg, 1, 65535, &v)) {
                return bad_usage("bad --tt-space", optarg);
            }
            cfg.tt_space = (uint32_t)v;
            break;
        case O_WINDOW:
            if (number(optarg, 1, 4096, &window)) {
                return bad_usage("bad --window (1 ... 4096)", optarg);
            }
            break;
        case 'h':
        case O_HELP: fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        return bad_usage("unexpected argument", argv[optind]);
    }
    if (!cfg.user != !cfg.password) {
        return bad_usage("--user and --password-env go together",
                         cfg.user ? cfg.user : "");
    }
    if (cfg.user && (pubsub_n || cfg.tt_host || ping_s > 0)) {
        return bad_usage("--user goes with the -t tests on Sprig", cfg.user);
    }
    if (ping_s > 0) {
        return tcp_ping(cfg.clients, ping_s, cfg.csv);
    }
    if (pubsub_n) {
        return pubsub(&cfg, pubsub_n, (unsigned)window, redis);
    }
    if (!any_test && !load_kv && !load_doc) {
        want[OP_KV_SET] = want[OP_KV_GET] = true;
    }
    csv_header(&cfg);
    if (driver_start(&cfg) != 0) {
        driver_stop();
        return 1;
    }
    int status = 0;
    if (load_kv) {
        status |= run(&cfg, OP_KV_SET, cfg.keyspace, true, "load.kv");
    }
    if (load_doc) {
        uint64_t batches = (cfg.keyspace + LOAD_BATCH - 1) / LOAD_BATCH;
        status |= run(&cfg, OP_DB_LOAD, batches, true, "load.doc");
    }
    for (int op = 0; op < OP_DB_LOAD && status == 0; op++) {
        if (want[op]) {
            status |= run(&cfg, (bench_op)op, cfg.requests, false,
                          bench_op_name((bench_op)op));
        }
    }
    driver_stop();
    return status;
}
