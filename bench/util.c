/*
 * util.c -- helpers of the local benchmark: the generated document set
 * (JSON of 140-160 bytes, different for every document and reproducible
 * from the seed), the monotonic clock, a thread runner that starts all
 * workers together after their set-up, directory helpers, big-endian
 * integers, the splitmix64 random generator, and the pieces of the run
 * plan every workload shares (runs within a budget, slices, numbers).
 */
#include "bench.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t
bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double
bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double
bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

int
bench_fail(const char *what, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench: %s: ", what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

void
bench_put_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t
bench_get_be64(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | in[i];
    }
    return v;
}

/* ---- the run plan ------------------------------------------------------ */

/* The first MIN_RUNS always; after that only while within the time budget,
 * so a slow disk cannot push `make bench` past its ten minutes. */
#define MIN_RUNS 3

bool
bench_another_run(double budget, unsigned r, unsigned runs, double t0)
{
    if (r >= runs) {
        return false;
    }
    if (r < MIN_RUNS || budget <= 0 || bench_now() - t0 < budget) {
        printf(" run %u\n", r + 1);
        return true;
    }
    printf(" (stopping after %u runs: over the %.0f s budget)\n", r, budget);
    return false;
}

uint64_t
bench_slice_lo(uint64_t n, unsigned s, unsigned slices)
{
    return n * s / slices;
}

const char *
bench_thousands(uint64_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t j = 0;
    for (int i = 0; i < n && j + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) {
            buf[j++] = ',';
        }
        buf[j++] = digits[i];
    }
    buf[j] = 0;
    return buf;
}

/* ---- documents ---------------------------------------------------------- */

static const char *const words[] = {
    "alpha", "birch",  "cedar", "delta",   "ember",  "fjord",
    "grove", "harbor", "iris",  "juniper", "kelp",   "lumen",
    "maple", "nectar", "olive", "pine",    "quartz", "river",
    "sprig", "thyme",  "umber", "violet",  "willow", "yarrow"};
static const char *const cities[] = {"Lisbon", "Oslo",   "Kyoto", "Quito",
                                     "Accra",  "Hobart", "Tartu", "Recife"};

#define N_WORDS (sizeof words / sizeof words[0])

/* Write document k into out (at least BENCH_DOC_MAX bytes). */
static size_t
make_doc(uint64_t k, uint64_t seed, char *out)
{
    uint64_t st = seed ^ (k * 0xd1b54a32d192ed03ull);
    uint64_t r = bench_rand(&st);
    size_t target = 140 + (size_t)(r % 21);
    int n = snprintf(
        out, BENCH_DOC_MAX,
        "{\"id\":%llu,\"user\":\"user%06x\",\"age\":%u,\"score\":%u.%02u,"
        "\"active\":%s,\"city\":\"%s\",\"tags\":[\"%s\",\"%s\"],\"bio\":\"",
        (unsigned long long)k, (unsigned)(r >> 40), (unsigned)(18 + r % 70),
        (unsigned)((r >> 8) % 100), (unsigned)((r >> 16) % 100),
        (r >> 24) & 1 ? "true" : "false", cities[(r >> 28) % 8],
        words[(r >> 32) % N_WORDS], words[(r >> 48) % N_WORDS]);
    size_t len = (size_t)n;
    while (len + 2 < target) {
        const char *w = words[bench_rand(&st) % N_WORDS];
        len += (size_t)snprintf(out + len, BENCH_DOC_MAX - len, "%s%s",
                                out[len - 1] == '"' ? "" : " ", w);
    }
    memcpy(out + len, "\"}", 2);
    return len + 2;
}

int
bench_docs_make(bench_docs *d, uint64_t n, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->off = malloc((n + 1) * sizeof *d->off);
    d->arena = malloc(n * 200 + BENCH_DOC_MAX);
    if (!d->off || !d->arena) {
        bench_docs_free(d);
        return bench_fail("documents", "out of memory for %llu documents",
                          (unsigned long long)n);
    }
    size_t pos = 0;
    d->off[0] = 0;
    for (uint64_t k = 1; k <= n; k++) {
        pos += make_doc(k, seed, d->arena + pos);
        d->off[k] = (uint32_t)pos;
    }
    d->n = n;
    return 0;
}

void
bench_docs_free(bench_docs *d)
{
    free(d->arena);
    free(d->off);
    memset(d, 0, sizeof *d);
}

const char *
bench_doc(const bench_docs *d, uint64_t k, size_t *len)
{
    *len = d->off[k] - d->off[k - 1];
    return d->arena + d->off[k - 1];
}

/* ---- threads ------------------------------------------------------------ */

struct bench_start {
    pthread_barrier_t *barrier;
    bool passed;
    int (*fn)(void *arg, bench_start *s);
    void *arg;
    int rc;
    double t0, t1; /* this thread: past the barrier; done */
};

void
bench_ready(bench_start *s)
{
    if (!s->passed) {
        s->passed = true;
        pthread_barrier_wait(s->barrier);
        s->t0 = bench_now();
    }
}

static void *
thread_main(void *p)
{
    bench_start *s = p;
    s->rc = s->fn(s->arg, s);
    bench_ready(s); /* a thread failing in its set-up still meets the rest */
    s->t1 = bench_now();
    return NULL;
}

int
bench_threads(unsigned threads, int (*fn)(void *arg, bench_start *s),
              void *args, size_t arg_size, double *seconds)
{
    pthread_barrier_t barrier;
    bench_start *st = calloc(threads, sizeof *st);
    pthread_t *tid = calloc(threads, sizeof *tid);
    if (!st || !tid) {
        free(st);
        free(tid);
        return bench_fail("threads", "out of memory");
    }
    pthread_barrier_init(&barrier, NULL, threads + 1);
    unsigned started = 0;
    for (; started < threads; started++) {
        st[started] = (bench_start){&barrier, false, fn,
                                    (char *)args + started * arg_size, 0};
        if (pthread_create(&tid[started], NULL, thread_main, &st[started])) {
            break;
        }
    }
    int rc = 0;
    if (started < threads) { /* cannot happen on a sane machine: abort */
        bench_fail("threads", "cannot start thread %u", started);
        exit(1);
    }
    pthread_barrier_wait(&barrier);
    /* From the first thread past the barrier to the last one done, by the
     * workers' own clocks: this thread may run late after the barrier. */
    double t0 = 0, t1 = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        rc |= st[i].rc;
        t0 = i == 0 || st[i].t0 < t0 ? st[i].t0 : t0;
        t1 = st[i].t1 > t1 ? st[i].t1 : t1;
    }
    *seconds = t1 - t0;
    pthread_barrier_destroy(&barrier);
    free(st);
    free(tid);
    return rc ? -1 : 0;
}

/* ---- files -------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int
bench_rmtree(const char *dir)
{
    int rc = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc == 0 || errno == ENOENT ? 0 : -1;
}

int
bench_mkdirs(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n >= sizeof buf) {
        return -1;
    }
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return bench_fail("mkdir", "%s: %s", buf, strerror(errno));
            }
            buf[i] = c;
        }
    }
    return 0;
}
