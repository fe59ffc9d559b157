/*
 * commerce.c -- bench_commerce, the driver of the commerce benchmark
 * (bench/commerce.py runs it against `sprig serve` and PostgreSQL in the
 * same run; the ctest commerce_smoke runs it for two seconds against a
 * real server).  One invocation measures one server side:
 *
 *   bench_commerce (--sprig ws://HOST:PORT | --pg CONNINFO) [--db NAME]
 *       [--load] [--clients 16] [--seconds 5] [--warmup 1] [--seed N]
 *       [--run R] [--small] [--out FILE.json]
 *
 * It generates the shop from the seed (commerce.h), loads it with --load,
 * connects `clients` clients (one connection and one thread each), runs
 * the operation mix untimed for --warmup seconds, then timed for
 * --seconds: each thread draws its operations from its own generator
 * seeded from the seed, --run and its number, so the sequence is
 * reproducible (SPRIG_SEED or --seed; printed at the start).
 * The mix: 40% product lookups by id, 15% category queries (the
 * category's products with their contents), 20% average rating of a
 * product (sum and count of its ratings), 15% order placements (order +
 * customer update in one transaction), 10% new ratings.  Every answer is
 * checked; after the run, the database must hold exactly the orders and
 * ratings acknowledged and the customers' counters must add up to them.
 * Prints operations per second overall and per kind with p50 / p99
 * latency, and writes them as JSON to --out.  Exit status 0 when every
 * operation and check passed.
 */
#include "bench.h"
#include "commerce.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the data set ------------------------------------------------------ */

static const char *const words[] = {
    "oak",    "linen", "copper", "slate", "amber", "cotton", "walnut",
    "marble", "wool",  "cedar",  "brass", "clay",  "silk",   "birch"};
#define N_WORDS (sizeof words / sizeof words[0])

static uint64_t
mix_seed(uint64_t seed, uint64_t salt, uint64_t k)
{
    uint64_t st =
        seed ^ (salt * 0x9e3779b97f4a7c15ull) ^ (k * 0xd1b54a32d192ed03ull);
    return bench_rand(&st);
}

size_t
cm_product_doc(const cm_data *d, uint64_t p, char *buf)
{
    uint64_t r = mix_seed(d->seed, 1, p);
    int n = snprintf(buf, CM_DOC_MAX,
                     "{\"id\":%" PRIu64 ",\"name\":\"%s %s %s\",\"category\":"
                     "%u,\"price\":%u,\"stock\":%u,\"description\":\"A %s "
                     "thing of %s and %s, made to last.\"}",
                     p, words[r % N_WORDS], words[(r >> 8) % N_WORDS],
                     words[(r >> 16) % N_WORDS], d->category[p - 1],
                     d->price[p - 1], (unsigned)((r >> 24) % 500),
                     words[(r >> 32) % N_WORDS], words[(r >> 40) % N_WORDS],
                     words[(r >> 48) % N_WORDS]);
    return (size_t)n;
}

size_t
cm_category_doc(uint64_t c, char *buf)
{
    return (size_t)snprintf(buf, CM_DOC_MAX,
                            "{\"id\":%" PRIu64 ",\"name\":\"category %" PRIu64
                            "\",\"description\":\"Things of kind %" PRIu64
                            ".\"}",
                            c, c, c);
}

size_t
cm_customer_doc(uint64_t c, uint64_t orders, uint64_t spent, char *buf)
{
    return (size_t)snprintf(
        buf, CM_DOC_MAX,
        "{\"id\":%" PRIu64 ",\"name\":\"Customer %" PRIu64 "\",\"email\":"
        "\"customer%" PRIu64 "@example.com\",\"address\":\"%" PRIu64
        " Market Street\",\"orders\":%" PRIu64 ",\"spent\":%" PRIu64 "}",
        c, c, c, c, orders, spent);
}

size_t
cm_order_doc(uint64_t customer, uint64_t product, unsigned qty, uint64_t total,
             char *buf)
{
    return (size_t)snprintf(buf, CM_DOC_MAX,
                            "{\"customer\":%" PRIu64 ",\"lines\":[{\"product\":"
                            "%" PRIu64 ",\"qty\":%u}],\"total\":%" PRIu64
                            ",\"status\":\"placed\"}",
                            customer, product, qty, total);
}

size_t
cm_rating_doc(uint64_t product, uint64_t customer, unsigned stars, char *buf)
{
    return (size_t)snprintf(buf, CM_DOC_MAX,
                            "{\"product\":%" PRIu64 ",\"customer\":%" PRIu64
                            ",\"rating\":%u,\"review\":\"%s\"}",
                            product, customer, stars,
                            stars >= 4 ? "Would buy again." : "It is fine.");
}

int
cm_customer_counters(const char *doc, size_t len, uint64_t *orders,
                     uint64_t *spent)
{
    char buf[CM_DOC_MAX];
    if (len >= sizeof buf) {
        return -1;
    }
    memcpy(buf, doc, len);
    buf[len] = 0;
    const char *o = strstr(buf, "\"orders\":");
    const char *s = strstr(buf, "\"spent\":");
    if (!o || !s) {
        return -1;
    }
    *orders = strtoull(o + 9, NULL, 10);
    *spent = strtoull(s + 8, NULL, 10);
    return 0;
}

uint64_t
cm_init_rating_customer(const cm_data *d, uint64_t k)
{
    return 1 + mix_seed(d->seed, 4, k) % d->n.customers;
}

static void
data_free(cm_data *d)
{
    free(d->category);
    free(d->price);
    free(d->per_category);
    free(d->init_ratings);
    free(d->init_rating_p);
    free(d->init_rating_s);
}

static int
data_make(cm_data *d, cm_sizes n, uint64_t seed)
{
    *d = (cm_data){.n = n, .seed = seed};
    d->category = calloc(n.products, sizeof *d->category);
    d->price = calloc(n.products, sizeof *d->price);
    d->per_category = calloc(n.categories, sizeof *d->per_category);
    d->init_ratings = calloc(n.products, sizeof *d->init_ratings);
    d->init_rating_p = calloc(n.ratings, sizeof *d->init_rating_p);
    d->init_rating_s = calloc(n.ratings, sizeof *d->init_rating_s);
    if (!d->category || !d->price || !d->per_category || !d->init_ratings ||
        !d->init_rating_p || !d->init_rating_s) {
        data_free(d);
        return bench_fail("commerce", "out of memory");
    }
    for (uint64_t p = 1; p <= n.products; p++) {
        uint64_t r = mix_seed(seed, 2, p);
        d->category[p - 1] = (uint32_t)(1 + r % n.categories);
        d->price[p - 1] = (uint32_t)(100 + (r >> 20) % 20000);
        d->per_category[d->category[p - 1] - 1]++;
    }
    for (uint64_t k = 1; k <= n.ratings; k++) {
        uint64_t r = mix_seed(seed, 3, k);
        d->init_rating_p[k - 1] = 1 + r % n.products;
        d->init_rating_s[k - 1] = (uint8_t)(1 + (r >> 32) % 5);
        d->init_ratings[d->init_rating_p[k - 1] - 1]++;
    }
    return 0;
}

/* ---- the mix ------------------------------------------------------------ */

typedef enum { K_LOOKUP, K_CATEGORY, K_RATING, K_ORDER, K_RATE, N_KINDS } kind;

static const char *const kind_names[N_KINDS] = {
    "product-lookup", "category-query", "rating-query", "order", "rate"};
/* Percent of the operations, in the order of `kind`. */
static const unsigned kind_pct[N_KINDS] = {40, 15, 20, 15, 10};

static kind
pick_kind(uint64_t r)
{
    unsigned x = (unsigned)(r % 100), acc = 0;
    for (unsigned k = 0; k < N_KINDS; k++) {
        acc += kind_pct[k];
        if (x < acc) {
            return (kind)k;
        }
    }
    return K_LOOKUP;
}

/* Latencies of one kind in one thread (microseconds). */
typedef struct lat {
    double *v;
    size_t n, cap;
} lat;

typedef struct worker {
    const cm_backend *b;
    const cm_data *d;
    void *conn;
    uint64_t rng;
    double seconds;
    bool record;
    lat l[N_KINDS];
    uint64_t orders, spent, rates, retries;
} worker;

static int
lat_push(lat *l, double us)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        double *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            return bench_fail("commerce", "out of memory");
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = us;
    return 0;
}

static int
do_rating(worker *w, uint64_t p)
{
    uint64_t count = 0, sum = 0;
    if (w->b->rating(w->conn, p, &count, &sum)) {
        return -1;
    }
    /* Sprig reads the sum, then the count (two calls): a rating landing
     * in between may raise the count only, so these bounds hold anyway */
    uint64_t init = w->d->init_ratings[p - 1];
    if (count < init || sum < init || sum > 5 * count) {
        return bench_fail(w->b->name,
                          "product %" PRIu64 ": %" PRIu64 " ratings summing "
                          "to %" PRIu64 " (at least %u loaded)",
                          p, count, sum, w->d->init_ratings[p - 1]);
    }
    return 0;
}

static int
do_order(worker *w, uint64_t r)
{
    const cm_data *d = w->d;
    uint64_t c = 1 + r % d->n.customers;
    uint64_t p = 1 + (r >> 20) % d->n.products;
    unsigned qty = 1 + (unsigned)((r >> 40) % 3);
    uint64_t total = (uint64_t)d->price[p - 1] * qty;
    if (w->b->order(w->conn, c, p, qty, total, &w->retries)) {
        return -1;
    }
    w->orders++;
    w->spent += total;
    return 0;
}

/* One operation of kind k, its arguments drawn from r. */
static int
do_op(worker *w, kind k, uint64_t r)
{
    const cm_data *d = w->d;
    uint64_t p = 1 + r % d->n.products;
    switch (k) {
    case K_LOOKUP: return w->b->lookup(w->conn, d, p);
    case K_CATEGORY: return w->b->category(w->conn, d, 1 + r % d->n.categories);
    case K_RATING: return do_rating(w, p);
    case K_ORDER: return do_order(w, r);
    case K_RATE:
        if (w->b->rate(w->conn, p, 1 + (r >> 20) % d->n.customers,
                       1 + (unsigned)((r >> 40) % 5))) {
            return -1;
        }
        w->rates++;
        return 0;
    default: return -1;
    }
}

static int
worker_run(void *arg, bench_start *s)
{
    worker *w = arg;
    bench_ready(s);
    double t0 = bench_now(), end = t0 + w->seconds;
    for (double t = t0; t < end;) {
        kind k = pick_kind(bench_rand(&w->rng));
        uint64_t r = bench_rand(&w->rng);
        if (do_op(w, k, r)) {
            return -1;
        }
        double t1 = bench_now();
        if (w->record && lat_push(&w->l[k], (t1 - t) * 1e6)) {
            return -1;
        }
        t = t1;
    }
    return 0;
}

/* ---- options ------------------------------------------------------------ */

typedef struct opts {
    const char *sprig, *pg, *db, *out;
    bool load, small;
    unsigned clients;
    double seconds, warmup;
    uint64_t seed;
    unsigned run; /* varies the threads' operations between runs */
} opts;

static void
usage(void)
{
    fprintf(stderr,
            "usage: bench_commerce (--sprig ws://HOST:PORT | --pg CONNINFO)\n"
            "         [--db NAME] [--load] [--clients N] [--seconds S]\n"
            "         [--warmup S] [--seed N] [--run R] [--small]\n"
            "         [--out FILE.json]\n");
    exit(2);
}

static const char *
str_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        usage();
    }
    return argv[++*i];
}

static double
num_arg(int argc, char **argv, int *i)
{
    char *end;
    double v = strtod(str_arg(argc, argv, i), &end);
    if (*end || v < 0) {
        usage();
    }
    return v;
}

static void
parse_args(int argc, char **argv, opts *o)
{
    const char *env = getenv("SPRIG_SEED");
    *o = (opts){.db = "default", .clients = 16, .seconds = 5, .warmup = 1};
    o->seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--sprig") == 0) {
            o->sprig = str_arg(argc, argv, &i);
        } else if (strcmp(a, "--pg") == 0) {
            o->pg = str_arg(argc, argv, &i);
        } else if (strcmp(a, "--db") == 0) {
            o->db = str_arg(argc, argv, &i);
        } else if (strcmp(a, "--out") == 0) {
            o->out = str_arg(argc, argv, &i);
        } else if (strcmp(a, "--load") == 0) {
            o->load = true;
        } else if (strcmp(a, "--small") == 0) {
            o->small = true;
        } else if (strcmp(a, "--clients") == 0) {
            o->clients = (unsigned)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = num_arg(argc, argv, &i);
        } else if (strcmp(a, "--warmup") == 0) {
            o->warmup = num_arg(argc, argv, &i);
        } else if (strcmp(a, "--run") == 0) {
            o->run = (unsigned)num_arg(argc, argv, &i);
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = (uint64_t)num_arg(argc, argv, &i);
        } else {
            usage();
        }
    }
    if (!o->sprig == !o->pg || o->clients == 0 || o->clients > 256) {
        usage();
    }
}

/* ---- statistics and checks --------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct kstats {
    size_t n;
    double p50, p99; /* milliseconds */
} kstats;

/* Merge the threads' latencies of kind k and take percentiles. */
static int
kind_stats(worker *w, unsigned clients, kind k, kstats *out)
{
    size_t n = 0;
    for (unsigned i = 0; i < clients; i++) {
        n += w[i].l[k].n;
    }
    *out = (kstats){n, 0, 0};
    if (n == 0) {
        return 0;
    }
    double *all = malloc(n * sizeof *all);
    if (!all) {
        return bench_fail("commerce", "out of memory");
    }
    size_t j = 0;
    for (unsigned i = 0; i < clients; i++) {
        memcpy(all + j, w[i].l[k].v, w[i].l[k].n * sizeof *all);
        j += w[i].l[k].n;
    }
    qsort(all, n, sizeof *all, cmp_double);
    out->p50 = all[(n - 1) / 2] / 1000;
    out->p99 = all[(size_t)((double)(n - 1) * 0.99)] / 1000;
    free(all);
    return 0;
}

/* What the threads placed must be what the database holds. */
static int
check_totals(const cm_backend *b, const cm_totals *t0, const cm_totals *t1,
             const worker *w, unsigned clients)
{
    uint64_t orders = 0, spent = 0, rates = 0;
    for (unsigned i = 0; i < clients; i++) {
        orders += w[i].orders;
        spent += w[i].spent;
        rates += w[i].rates;
    }
    printf("  check: %" PRIu64 " orders (%" PRIu64 " cents) and %" PRIu64
           " ratings acknowledged; the database gained %" PRIu64
           " orders, %" PRIu64 " customer orders (%" PRIu64 " cents), %" PRIu64
           " ratings\n",
           orders, spent, rates, t1->orders - t0->orders,
           t1->customer_orders - t0->customer_orders,
           t1->customer_spent - t0->customer_spent, t1->ratings - t0->ratings);
    if (t1->orders - t0->orders != orders ||
        t1->customer_orders - t0->customer_orders != orders ||
        t1->customer_spent - t0->customer_spent != spent ||
        t1->ratings - t0->ratings != rates) {
        return bench_fail(b->name, "the database does not hold what was "
                                   "acknowledged");
    }
    return orders > 0 ? 0 : bench_fail(b->name, "no order was placed");
}

/* ---- the run ------------------------------------------------------------ */

typedef struct run {
    opts o;
    const cm_backend *b;
    cm_data d;
    worker *w;
    double secs;
} run;

static int
connect_all(run *r)
{
    const char *target = r->o.sprig ? r->o.sprig : r->o.pg;
    for (unsigned i = 0; i < r->o.clients; i++) {
        worker *w = &r->w[i];
        w->b = r->b;
        w->d = &r->d;
        w->rng = mix_seed(r->o.seed, 100 + r->o.run, i + 1);
        if (r->b->connect(target, r->o.db, &w->conn) ||
            (r->b->prepare && r->b->prepare(w->conn))) {
            return -1;
        }
    }
    return 0;
}

/* Run the mix on every thread for `secs` (recording latencies or not). */
static int
phase(run *r, double secs, bool record, double *elapsed)
{
    for (unsigned i = 0; i < r->o.clients; i++) {
        r->w[i].seconds = secs;
        r->w[i].record = record;
    }
    return bench_threads(r->o.clients, worker_run, r->w, sizeof *r->w, elapsed);
}

static void
json_write(FILE *f, const run *r, const kstats *ks, uint64_t total,
           uint64_t retries)
{
    fprintf(f,
            "{\"side\": \"%s\", \"clients\": %u, \"seconds\": %.3f, "
            "\"seed\": %" PRIu64 ", \"ops\": %" PRIu64 ", \"ops_per_s\": "
            "%.1f, \"retries\": %" PRIu64 ", \"kinds\": {",
            r->b->name, r->o.clients, r->secs, r->o.seed, total,
            (double)total / r->secs, retries);
    for (unsigned k = 0; k < N_KINDS; k++) {
        fprintf(f,
                "%s\"%s\": {\"n\": %zu, \"per_s\": %.1f, \"p50_ms\": %.3f, "
                "\"p99_ms\": %.3f}",
                k ? ", " : "", kind_names[k], ks[k].n,
                (double)ks[k].n / r->secs, ks[k].p50, ks[k].p99);
    }
    fprintf(f, "}}\n");
}

static int
report(const run *r)
{
    kstats ks[N_KINDS];
    uint64_t total = 0, retries = 0;
    for (unsigned k = 0; k < N_KINDS; k++) {
        if (kind_stats(r->w, r->o.clients, (kind)k, &ks[k])) {
            return -1;
        }
        total += ks[k].n;
    }
    for (unsigned i = 0; i < r->o.clients; i++) {
        retries += r->w[i].retries;
    }
    printf("  %s: %.0f ops/s (%" PRIu64 " ops in %.2f s, %u clients, "
           "%" PRIu64 " order conflicts retried)\n",
           r->b->name, (double)total / r->secs, total, r->secs, r->o.clients,
           retries);
    for (unsigned k = 0; k < N_KINDS; k++) {
        printf("    %-15s %8zu  %8.0f/s  p50 %.2f ms  p99 %.2f ms\n",
               kind_names[k], ks[k].n, (double)ks[k].n / r->secs, ks[k].p50,
               ks[k].p99);
    }
    FILE *f = r->o.out ? fopen(r->o.out, "w") : NULL;
    if (r->o.out && !f) {
        return bench_fail("commerce", "cannot write %s", r->o.out);
    }
    if (f) {
        json_write(f, r, ks, total, retries);
        fclose(f);
    }
    return 0;
}

/* Load (--load), connect, warm up, run timed, check. */
static int
measure(run *r)
{
    void *admin = NULL;
    cm_totals t0, t1;
    const char *target = r->o.sprig ? r->o.sprig : r->o.pg;
    if (r->b->connect(target, r->o.db, &admin)) {
        return -1;
    }
    int rc = r->o.load ? r->b->load(admin, &r->d) : 0;
    rc = rc ? rc : r->b->totals(admin, &t0);
    rc = rc ? rc : connect_all(r);
    double warm;
    if (rc == 0 && r->o.warmup > 0) {
        rc = phase(r, r->o.warmup, false, &warm);
    }
    rc = rc ? rc : phase(r, r->o.seconds, true, &r->secs);
    rc = rc ? rc : r->b->totals(admin, &t1);
    rc = rc ? rc : check_totals(r->b, &t0, &t1, r->w, r->o.clients);
    r->b->close(admin);
    return rc ? rc : report(r);
}

int
main(int argc, char **argv)
{
    static run r;
    parse_args(argc, argv, &r.o);
    r.b = r.o.sprig ? &cm_sprig : cm_postgres;
    if (!r.b) {
        bench_fail("commerce", "built without libpq");
        return 1;
    }
    cm_sizes n = r.o.small ? (cm_sizes){20, 400, 200, 1000}
                           : (cm_sizes){100, 2000, 1000, 10000};
    printf("bench_commerce: %s, %u clients, seed %" PRIu64 ", %" PRIu64
           " products in %" PRIu64 " categories, %" PRIu64 " customers\n",
           r.b->name, r.o.clients, r.o.seed, n.products, n.categories,
           n.customers);
    fflush(stdout);
    r.w = calloc(r.o.clients, sizeof *r.w);
    if (!r.w || data_make(&r.d, n, r.o.seed)) {
        return 1;
    }
    int rc = measure(&r);
    for (unsigned i = 0; i < r.o.clients; i++) {
        if (r.w[i].conn) {
            r.b->close(r.w[i].conn);
        }
        for (unsigned k = 0; k < N_KINDS; k++) {
            free(r.w[i].l[k].v);
        }
    }
    free(r.w);
    data_free(&r.d);
    return rc ? 1 : 0;
}
