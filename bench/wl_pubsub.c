/*
 * wl_pubsub.c -- the pubsub workload of bench_local: one publisher and
 * PS_SUBS subscribers in one process, each subscriber in its own thread
 * doing blocking receives, all on one topic.
 *
 * Two phases per slice, on fresh subscribers:
 *   burst   the publisher publishes PS_BURST messages as fast as it can;
 *           messages/s = messages / (first publish .. the last subscriber
 *           receiving the last message).  Queues are bounded above the
 *           burst, so nothing may be dropped.
 *   paced   then one message every PS_PERIOD_US µs (a steady 5,000
 *           messages/s, 50,000 deliveries/s, well below saturation); each
 *           delivery's latency is its receive time minus the publish time
 *           in its payload (CLOCK_MONOTONIC): p50 and p99 per run.
 * Payloads are 64 bytes: sequence number, publish time, padding.  Every
 * subscriber checks that it receives every message once, in order.
 *
 * The peer is the least an in-process fan-out must do ("pthread queues"):
 * one reference-counted copy of the message per publish, appended to each
 * subscriber's queue under the subscriber's mutex with a condition
 * variable signal, received under the same mutex.  Sprig's hub does the
 * same plus a topic lookup under a read-write lock and an eventfd kept in
 * step with each queue (for poll/epoll users).  Redis's PUBLISH/SUBSCRIBE,
 * the peer design/bench.md names, works over the network and belongs to
 * the network benchmark.
 */
#include "bench.h"

#include "sprig/sprig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PS_SUBS 10
#define PS_PAYLOAD 64
#define PS_PERIOD_US 200
#define PS_TOPIC "bench"
#define PS_WAIT_MS 10000 /* a message this late counts as lost */

/* ---- the engines ------------------------------------------------------- */

typedef struct ps_engine {
    const char *name;
    int (*open)(const char *dir, void **hub);
    void (*close)(void *hub);
    /** A subscriber of the topic whose queue holds `max_msgs`. */
    int (*sub_new)(void *hub, size_t max_msgs, void **sub);
    /** Messages it dropped (must stay 0). */
    uint64_t (*sub_dropped)(void *sub);
    void (*sub_free)(void *sub);
    int (*publish)(void *hub, const void *payload, size_t len);
    /** Wait for the next message (at most PS_WAIT_MS: then fail); its
     *  payload is borrowed until msg_free(*msg). */
    int (*recv)(void *sub, void **msg, const uint8_t **payload, size_t *len);
    void (*msg_free)(void *msg);
} ps_engine;

/* Sprig: a database's hub through the public API. */

static int
sp_fail(const char *what, int rc)
{
    return bench_fail("sprig", "%s: %s (%s)", what, sprig_strerror(rc),
                      sprig_errmsg());
}

static int
sp_open(const char *dir, void **hub)
{
    return bench_sprig_open_with(dir, NULL, 0, NULL, hub);
}

static void
sp_close(void *hub)
{
    bench_sprig.close(hub);
}

static int
sp_sub_new(void *hub, size_t max_msgs, void **out)
{
    sprig_subscriber *s = NULL;
    int rc = sprig_subscriber_new(bench_sprig_handle(hub), &s);
    rc = rc ? rc : sprig_subscribe(s, sprig_str(PS_TOPIC));
    rc = rc ? rc : sprig_subscriber_set_limits(s, max_msgs, 0);
    if (rc) {
        sprig_subscriber_free(s);
        return sp_fail("subscribe", rc);
    }
    *out = s;
    return 0;
}

static uint64_t
sp_dropped(void *sub)
{
    return sprig_subscriber_dropped(sub);
}

static void
sp_sub_free(void *sub)
{
    sprig_subscriber_free(sub);
}

static int
sp_publish(void *hub, const void *payload, size_t len)
{
    int rc = sprig_publish(bench_sprig_handle(hub), sprig_str(PS_TOPIC),
                           (sprig_bytes){payload, len});
    return rc ? sp_fail("publish", rc) : 0;
}

static int
sp_recv(void *sub, void **msg, const uint8_t **payload, size_t *len)
{
    sprig_message *m = NULL;
    int rc = sprig_subscriber_recv(sub, PS_WAIT_MS, &m);
    if (rc) {
        return sp_fail("recv", rc);
    }
    sprig_bytes b = sprig_message_payload(m);
    *msg = m;
    *payload = b.data;
    *len = b.len;
    return 0;
}

static void
sp_msg_free(void *msg)
{
    sprig_message_free(msg);
}

static const ps_engine ps_sprig = {"sprig",    sp_open,    sp_close,
                                   sp_sub_new, sp_dropped, sp_sub_free,
                                   sp_publish, sp_recv,    sp_msg_free};

/* The baseline: pthread queues. */

typedef struct fmsg {
    atomic_uint refs;
    size_t len;
    uint8_t data[];
} fmsg;

typedef struct fhub fhub;

typedef struct fsub {
    fhub *hub;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    fmsg **ring;
    size_t head, n, cap;
} fsub;

struct fhub {
    pthread_rwlock_t lock;
    fsub *subs[PS_SUBS];
    size_t n;
};

static int
fq_open(const char *dir, void **out)
{
    (void)dir;
    fhub *h = calloc(1, sizeof *h);
    if (!h || pthread_rwlock_init(&h->lock, NULL)) {
        free(h);
        return bench_fail("queues", "out of memory");
    }
    *out = h;
    return 0;
}

static void
fq_close(void *hub)
{
    fhub *h = hub;
    pthread_rwlock_destroy(&h->lock);
    free(h);
}

static int
fq_sub_new(void *hub, size_t max_msgs, void **out)
{
    fhub *h = hub;
    fsub *s = calloc(1, sizeof *s);
    if (!s || h->n == PS_SUBS) {
        free(s);
        return bench_fail("queues", "cannot add a subscriber");
    }
    s->hub = h;
    s->cap = max_msgs;
    s->ring = malloc(max_msgs * sizeof *s->ring);
    if (!s->ring) {
        free(s);
        return bench_fail("queues", "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_rwlock_wrlock(&h->lock);
    h->subs[h->n++] = s;
    pthread_rwlock_unlock(&h->lock);
    *out = s;
    return 0;
}

static uint64_t
fq_dropped(void *sub)
{
    (void)sub;
    return 0; /* the publisher fails instead (a queue never overflows) */
}

static void
fq_msg_free(void *msg)
{
    fmsg *m = msg;
    if (atomic_fetch_sub(&m->refs, 1) == 1) {
        free(m);
    }
}

static void
fq_sub_free(void *sub)
{
    fsub *s = sub;
    fhub *h = s->hub;
    pthread_rwlock_wrlock(&h->lock);
    for (size_t i = 0; i < h->n; i++) {
        if (h->subs[i] == s) {
            h->subs[i] = h->subs[--h->n];
            break;
        }
    }
    pthread_rwlock_unlock(&h->lock);
    for (; s->n; s->n--, s->head = (s->head + 1) % s->cap) {
        fq_msg_free(s->ring[s->head]);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->ring);
    free(s);
}

static int
fq_publish(void *hub, const void *payload, size_t len)
{
    fhub *h = hub;
    fmsg *m = malloc(sizeof *m + len);
    if (!m) {
        return bench_fail("queues", "out of memory");
    }
    memcpy(m->data, payload, len);
    m->len = len;
    int rc = 0;
    pthread_rwlock_rdlock(&h->lock);
    atomic_init(&m->refs, (unsigned)h->n + 1);
    for (size_t i = 0; i < h->n; i++) {
        fsub *s = h->subs[i];
        pthread_mutex_lock(&s->lock);
        if (s->n < s->cap) {
            s->ring[(s->head + s->n++) % s->cap] = m;
            pthread_cond_signal(&s->cond);
        } else {
            fq_msg_free(m);
            rc = bench_fail("queues", "a queue overflowed");
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_rwlock_unlock(&h->lock);
    fq_msg_free(m);
    return rc;
}

static int
fq_recv(void *sub, void **msg, const uint8_t **payload, size_t *len)
{
    fsub *s = sub;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += PS_WAIT_MS / 1000;
    pthread_mutex_lock(&s->lock);
    int err = 0;
    while (s->n == 0 && err == 0) {
        err = pthread_cond_timedwait(&s->cond, &s->lock, &until);
    }
    if (s->n == 0) {
        pthread_mutex_unlock(&s->lock);
        return bench_fail("queues", "no message within %d ms", PS_WAIT_MS);
    }
    fmsg *m = s->ring[s->head];
    s->head = (s->head + 1) % s->cap;
    s->n--;
    pthread_mutex_unlock(&s->lock);
    *msg = m;
    *payload = m->data;
    *len = m->len;
    return 0;
}

static const ps_engine ps_queues = {"queues",   fq_open,    fq_close,
                                    fq_sub_new, fq_dropped, fq_sub_free,
                                    fq_publish, fq_recv,    fq_msg_free};

/* ---- one slice ----------------------------------------------------------- */

typedef struct psub {
    const ps_engine *e;
    void *sub;
    uint64_t burst, total; /* messages of the burst; in all */
    double *lat;           /* paced deliveries' latencies, µs */
    size_t n_lat;
    double burst_done; /* when the burst's last message came */
    atomic_uint *drained;
    uint64_t bad; /* messages out of order, missing or malformed */
} psub;

static void
put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
sub_thread(void *arg, bench_start *st)
{
    psub *s = arg;
    bench_ready(st);
    for (uint64_t want = 0; want < s->total; want++) {
        void *msg;
        const uint8_t *p;
        size_t len;
        if (s->e->recv(s->sub, &msg, &p, &len)) {
            return -1;
        }
        uint64_t t = now_ns();
        if (len != PS_PAYLOAD || get_u64(p) != want) {
            s->bad++;
        } else if (want >= s->burst) {
            s->lat[s->n_lat++] = (double)(t - get_u64(p + 8)) / 1e3;
        }
        s->e->msg_free(msg);
        if (want + 1 == s->burst) {
            s->burst_done = (double)t / 1e9;
            atomic_fetch_add(s->drained, 1);
        }
    }
    return 0;
}

/* The publisher's side of a slice, in its own thread. */
typedef struct ppub {
    const ps_engine *e;
    void *hub;
    uint64_t burst, paced;
    atomic_uint *drained;
    double t0, cpu0, cpu; /* burst start; CPU over the burst */
} ppub;

static int
publish_one(const ppub *p, uint64_t seq)
{
    uint8_t payload[PS_PAYLOAD];
    memset(payload, 'p', sizeof payload);
    put_u64(payload, seq);
    put_u64(payload + 8, now_ns());
    return p->e->publish(p->hub, payload, sizeof payload);
}

static int
pub_thread(void *arg, bench_start *st)
{
    ppub *p = arg;
    bench_ready(st);
    p->cpu0 = bench_cpu();
    p->t0 = bench_now();
    for (uint64_t i = 0; i < p->burst; i++) {
        if (publish_one(p, i)) {
            return -1;
        }
    }
    struct timespec nap = {0, 20000};
    double give_up = bench_now() + PS_WAIT_MS / 1e3;
    while (atomic_load(p->drained) < PS_SUBS) {
        if (bench_now() > give_up) {
            return bench_fail(p->e->name, "the burst never arrived whole");
        }
        nanosleep(&nap, NULL);
    }
    p->cpu = bench_cpu() - p->cpu0;
    uint64_t start = now_ns();
    for (uint64_t j = 0; j < p->paced; j++) {
        uint64_t at = start + j * PS_PERIOD_US * 1000u;
        struct timespec ts = {(time_t)(at / 1000000000u),
                              (long)(at % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (publish_one(p, p->burst + j)) {
            return -1;
        }
    }
    return 0;
}

/* One thread-runner argument: a subscriber or the publisher. */
typedef struct parg {
    bool publisher;
    psub s;
    ppub p;
} parg;

static int
ps_thread(void *arg, bench_start *st)
{
    parg *a = arg;
    return a->publisher ? pub_thread(&a->p, st) : sub_thread(&a->s, st);
}

/* What a slice measured. */
typedef struct pslice {
    double secs, cpu; /* the burst */
    double *lat;      /* latencies appended here */
    size_t n_lat, cap_lat;
} pslice;

static int
ps_slice(const ps_engine *e, void *hub, uint64_t burst, uint64_t paced,
         pslice *out)
{
    parg a[PS_SUBS + 1];
    atomic_uint drained;
    atomic_init(&drained, 0);
    memset(a, 0, sizeof a);
    int rc = 0;
    unsigned made = 0; /* subscribers created */
    while (made < PS_SUBS && rc == 0) {
        psub *s = &a[made].s;
        *s = (psub){.e = e,
                    .burst = burst,
                    .total = burst + paced,
                    .drained = &drained};
        s->lat = paced ? out->lat + out->n_lat + made * paced : NULL;
        rc = e->sub_new(hub, burst + paced + 1, &s->sub);
        made += rc == 0;
    }
    a[PS_SUBS].publisher = true;
    a[PS_SUBS].p = (ppub){e, hub, burst, paced, &drained, 0, 0, 0};
    double ignored;
    rc = rc ? rc
            : bench_threads(PS_SUBS + 1, ps_thread, a, sizeof a[0], &ignored);
    double last = 0;
    for (unsigned i = 0; i < made; i++) {
        psub *s = &a[i].s;
        if (rc == 0 && (s->bad || e->sub_dropped(s->sub))) {
            rc = bench_fail(e->name,
                            "subscriber %u: %llu messages missing or out of "
                            "order, %llu dropped",
                            i, (unsigned long long)s->bad,
                            (unsigned long long)e->sub_dropped(s->sub));
        }
        last = s->burst_done > last ? s->burst_done : last;
    }
    for (unsigned i = 0; i < made; i++) {
        e->sub_free(a[i].s.sub);
    }
    if (rc == 0) {
        out->secs += last - a[PS_SUBS].p.t0;
        out->cpu += a[PS_SUBS].p.cpu;
        out->n_lat += (size_t)PS_SUBS * paced;
    }
    return rc;
}

/* ---- runs ------------------------------------------------------------- */

#define N_PS 2
static const ps_engine *const ps_engines[N_PS] = {&ps_sprig, &ps_queues};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
percentile(const double *sorted, size_t n, double q)
{
    return n ? sorted[(size_t)(q * (double)(n - 1) + 0.5)] : 0;
}

typedef struct psize {
    uint64_t burst, paced; /* per slice */
} psize;

/* Run r: every engine's slices in turn; then its rate and latencies. */
static int
ps_run(const bench_plan *p, psize z, void **hub, unsigned r, bench_result *res,
       bench_series *p50, bench_series *p99)
{
    pslice sl[N_PS];
    int rc = 0;
    size_t cap = (size_t)PS_SUBS * z.paced * p->slices;
    for (unsigned i = 0; i < N_PS; i++) {
        sl[i] =
            (pslice){0, 0, malloc((cap ? cap : 1) * sizeof(double)), 0, cap};
        rc = sl[i].lat ? rc : bench_fail("pubsub", "out of memory");
    }
    for (unsigned s = 0; s < p->slices && rc == 0; s++) {
        for (unsigned k = 0; k < N_PS && rc == 0; k++) {
            unsigned i = (k + s + r) % N_PS;
            rc = ps_slice(ps_engines[i], hub[i], z.burst, z.paced, &sl[i]);
        }
    }
    double msgs = (double)z.burst * p->slices;
    for (unsigned i = 0; i < N_PS && rc == 0; i++) {
        qsort(sl[i].lat, sl[i].n_lat, sizeof(double), cmp_double);
        double a = percentile(sl[i].lat, sl[i].n_lat, 0.5);
        double b = percentile(sl[i].lat, sl[i].n_lat, 0.99);
        bench_push(&res->s[i], msgs, sl[i].secs, sl[i].cpu);
        bench_push(&p50[i], a, 1, 0);
        bench_push(&p99[i], b, 1, 0);
        printf("  %-7s %10.0f msgs/s  (%.2f s, cpu %.2f us/msg); paced: "
               "p50 %.1f us, p99 %.1f us, max %.1f us\n",
               ps_engines[i]->name, msgs / sl[i].secs, sl[i].secs,
               sl[i].cpu * 1e6 / msgs, a, b,
               sl[i].n_lat ? sl[i].lat[sl[i].n_lat - 1] : 0);
    }
    fflush(stdout);
    for (unsigned i = 0; i < N_PS; i++) {
        free(sl[i].lat);
    }
    return rc;
}

static int
ps_runs(const bench_plan *p, psize z, bench_result *res)
{
    void *hub[N_PS] = {NULL};
    bench_series p50[N_PS], p99[N_PS];
    memset(p50, 0, sizeof p50);
    memset(p99, 0, sizeof p99);
    int rc = 0;
    for (unsigned i = 0; i < N_PS && rc == 0; i++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/pubsub-%s", p->tmp, ps_engines[i]->name);
        rc = bench_mkdirs(dir) ? -1 : ps_engines[i]->open(dir, &hub[i]);
    }
    pslice warm = {0, 0, NULL, 0, 0};
    for (unsigned i = 0; i < N_PS && rc == 0; i++) {
        rc = ps_slice(ps_engines[i], hub[i], z.burst / 4 + 1, 0, &warm);
    }
    double t0 = bench_now();
    for (unsigned r = 0;
         rc == 0 && bench_another_run(p->budget, r, p->runs, t0); r++) {
        rc = ps_run(p, z, hub, r, res, p50, p99);
    }
    for (unsigned i = 0; i < N_PS; i++) {
        if (hub[i]) {
            ps_engines[i]->close(hub[i]);
        }
        bench_extra_add(
            res, i == 0 ? "sprig p50 latency us" : "queues p50 latency us",
            bench_median(&p50[i]));
        bench_extra_add(
            res, i == 0 ? "sprig p99 latency us" : "queues p99 latency us",
            bench_median(&p99[i]));
    }
    return rc;
}

size_t
bench_wl_pubsub(const bench_plan *p, bench_result *res, size_t cap)
{
    static char what[200];
    char nb[32], pb[32];
    psize z = {p->quick ? 200 : 25000, p->quick ? 20 : 500};
    if (cap < 1) {
        return 0;
    }
    snprintf(what, sizeof what,
             "1 publisher → %u subscribers (threads, blocking receive), "
             "64-byte messages: bursts of %s, then %s paced at %u/s",
             PS_SUBS, bench_thousands(z.burst * p->slices, nb, sizeof nb),
             bench_thousands(z.paced * p->slices, pb, sizeof pb),
             1000000 / PS_PERIOD_US);
    *res = (bench_result){.name = "pubsub",
                          .unit = "msgs/s",
                          .durability = "in memory (nothing is stored)",
                          .workload = what};
    bench_add_series(res, 0, "sprig");
    bench_add_series(res, 1, "queues");
    bench_add_ratio(res, 1, 0);
    printf("\n-- %s: %s\n", res->name, what);
    res->failed = ps_runs(p, z, res) != 0;
    bench_extra_add(res, "deliveries per message", PS_SUBS);
    return 1;
}
