/*
 * cluster_load.c -- the load generator of the cluster benchmark (issue 18;
 * bench/cluster/bench_cluster.py drives it): committed writes per second
 * and their latency, N writes in flight, against etcd 3.4 or a Sprig
 * cluster, the same workload on both.
 *
 * Each of N threads owns one connection and makes one write at a time
 * (so N writes are in flight): a put of key "bench/<thread>/<i mod 1000>"
 * with a 100-byte value.
 *   etcd:  etcd's v3 HTTP/JSON gateway (grpc-gateway in the etcd server
 *          itself, POST /v3/kv/put, keys and values base64), HTTP/1.1 with
 *          keep-alive over one TCP connection per thread: a write is
 *          answered once the Raft entry is committed and applied.  The
 *          gateway costs a JSON<->protobuf translation and a loopback gRPC
 *          hop inside etcd per request beside native gRPC.
 *   sprig: sprig_open() of the URL list (the multi-URL client, following
 *          the leader), sprig_kv_set() in database "bench".
 * --first-write MS: tries of one write, a new one every 50 ms (each on its
 * own connection, at most 256 at once), until one succeeds; prints the
 * wall-clock time of the first success; the driver subtracts the time it
 * killed the leader (failover time, to within the 50 ms step).
 * --leader 1 (sprig): one write through the multi-URL client, then the
 * address of the node it landed on -- the leader, since the client
 * follows SPRIG_ENOTLEADER's hint.
 *
 * Output: one JSON object on stdout.
 */
#include "sprig/client.h"
#include "sprig/sprig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct cfg {
    const char *etcd;  /* comma list of http://host:port */
    const char *sprig; /* URL list */
    const char *user, *password;
    int inflight;
    double seconds;
    int first_write_ms;
    bool leader;
} cfg;

typedef struct worker {
    const cfg *c;
    int index;
    double *lat; /* ms */
    size_t n, cap;
    long errors;
    char err[256];
} worker;

static volatile int stop_flag;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
record(worker *w, double ms)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
        if (!w->lat) {
            fprintf(stderr, "cluster_load: out of memory\n");
            exit(1);
        }
    }
    w->lat[w->n++] = ms;
}

/* ---- etcd over HTTP/JSON ------------------------------------------------- */

static void
b64(const char *in, size_t n, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        v |= i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? (unsigned char)in[i + 2] : 0;
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Connect to "http://host:port"; -1 on failure. */
static int
http_connect(const char *url, int timeout_ms)
{
    char host[64];
    int port;
    if (sscanf(url, "http://%63[^:]:%d", host, &port) != 2) {
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read one HTTP response (Content-Length or chunked); 0 when its status
 * is 200 and its body names no error. */
static int
http_read(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char *body = NULL;
    long want = -1;
    for (;;) {
        if (len + 1 >= cap) {
            return -1;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0) {
            return -1;
        }
        len += (size_t)r;
        buf[len] = '\0';
        if (!body && (body = strstr(buf, "\r\n\r\n")) != NULL) {
            body += 4;
            char *cl = strcasestr(buf, "content-length:");
            want = cl && cl < body ? atol(cl + 15) : -2; /* -2 chunked */
        }
        if (body && want >= 0 && (long)(len - (size_t)(body - buf)) >= want) {
            break;
        }
        if (body && want == -2 && strstr(body, "\r\n0\r\n\r\n")) {
            break;
        }
    }
    bool ok = strncmp(buf, "HTTP/1.1 200", 12) == 0 && !strstr(body, "\"error");
    return ok ? 0 : -1;
}

static int
etcd_put(int fd, int thread, long i)
{
    char key[64], kb[100], val[101], vb[160], req[600], resp[8192];
    snprintf(key, sizeof key, "bench/%d/%ld", thread, i % 1000);
    memset(val, 'v', 100);
    val[100] = '\0';
    b64(key, strlen(key), kb);
    b64(val, 100, vb);
    char body[400];
    int bl = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}",
                      kb, vb);
    int n = snprintf(req, sizeof req,
                     "POST /v3/kv/put HTTP/1.1\r\nHost: etcd\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     bl, body);
    if (write(fd, req, (size_t)n) != n) {
        return -1;
    }
    return http_read(fd, resp, sizeof resp);
}

/* The first URL of a comma list, or the i-th (round robin). */
static void
nth_url(const char *list, int i, char *out, size_t cap)
{
    int count = 1;
    for (const char *p = list; *p; p++) {
        count += *p == ',';
    }
    i %= count;
    const char *s = list;
    while (i-- > 0) {
        s = strchr(s, ',') + 1;
    }
    size_t n = strcspn(s, ",");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

static void *
etcd_worker(void *arg)
{
    worker *w = arg;
    char url[128];
    nth_url(w->c->etcd, 0, url, sizeof url); /* the leader, first */
    int fd = http_connect(url, 5000);
    if (fd < 0) {
        snprintf(w->err, sizeof w->err, "cannot connect to %s", url);
        return NULL;
    }
    for (long i = 0; !stop_flag; i++) {
        double t0 = now_s();
        if (etcd_put(fd, w->index, i) != 0) {
            w->errors++;
            close(fd);
            fd = http_connect(url, 5000);
            if (fd < 0) {
                break;
            }
            continue;
        }
        record(w, (now_s() - t0) * 1e3);
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

/* ---- sprig ------------------------------------------------------------------
 */

static const sprig_collection_def bench_cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def bench_schema = {"clusterbench", bench_cols, 1};

static int
sprig_connect(const cfg *c, unsigned timeout_ms, sprig_storage **st,
              sprig_db **db)
{
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.user = c->user;
    o.password = c->password;
    o.connect_timeout_ms = timeout_ms;
    o.request_timeout_ms = timeout_ms;
    int rc = sprig_open(c->sprig, &o, st);
    if (rc) {
        return rc;
    }
    rc = sprig_storage_open_database(*st, "bench", db);
    if (rc) {
        sprig_storage_close(*st);
    }
    return rc;
}

static int
sprig_put(sprig_db *db, int thread, long i)
{
    char key[64], val[100];
    snprintf(key, sizeof key, "bench/%d/%ld", thread, i % 1000);
    memset(val, 'v', sizeof val);
    sprig_value v = sprig_value_of_bytes((sprig_bytes){(uint8_t *)val, 100});
    return sprig_kv_set(db, "b", key, &v, NULL, NULL, NULL);
}

static void *
sprig_worker(void *arg)
{
    worker *w = arg;
    sprig_storage *st;
    sprig_db *db;
    if (sprig_connect(w->c, 5000, &st, &db) != 0) {
        snprintf(w->err, sizeof w->err, "%s", sprig_errmsg());
        return NULL;
    }
    for (long i = 0; !stop_flag; i++) {
        double t0 = now_s();
        if (sprig_put(db, w->index, i) != 0) {
            w->errors++;
            snprintf(w->err, sizeof w->err, "%s", sprig_errmsg());
            continue;
        }
        record(w, (now_s() - t0) * 1e3);
    }
    sprig_db_close(db);
    sprig_storage_close(st);
    return NULL;
}

/* Register the schema and create database "bench" (once). */
static int
sprig_setup(const cfg *c)
{
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.user = c->user;
    o.password = c->password;
    sprig_storage *st;
    int rc = sprig_open(c->sprig, &o, &st);
    if (rc == 0) {
        rc = sprig_storage_register_schema(st, &bench_schema);
        rc = rc ? rc
                : sprig_storage_create_database(st, "bench", "clusterbench",
                                                true);
        sprig_storage_close(st);
    }
    if (rc) {
        fprintf(stderr, "cluster_load: setup: %s\n", sprig_errmsg());
    }
    return rc;
}

/* ---- the runs
 * ---------------------------------------------------------------- */

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int
run_load(const cfg *c)
{
    worker *ws = calloc((size_t)c->inflight, sizeof *ws);
    pthread_t *ts = calloc((size_t)c->inflight, sizeof *ts);
    double t0 = now_s();
    for (int i = 0; i < c->inflight; i++) {
        ws[i].c = c;
        ws[i].index = i;
        pthread_create(&ts[i], NULL, c->etcd ? etcd_worker : sprig_worker,
                       &ws[i]);
    }
    usleep((useconds_t)(c->seconds * 1e6));
    stop_flag = 1;
    size_t total = 0;
    long errors = 0;
    for (int i = 0; i < c->inflight; i++) {
        pthread_join(ts[i], NULL);
        total += ws[i].n;
        errors += ws[i].errors;
    }
    double secs = now_s() - t0;
    double *all = malloc((total + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < c->inflight; i++) {
        memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
        k += ws[i].n;
    }
    qsort(all, total, sizeof *all, cmp_d);
    printf("{\"system\":\"%s\",\"inflight\":%d,\"writes\":%zu,\"seconds\":%.3f,"
           "\"writes_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"errors\":%ld,\"error\":\"%s\"}\n",
           c->etcd ? "etcd" : "sprig", c->inflight, total, secs,
           (double)total / secs, total ? all[total / 2] : 0.0,
           total ? all[(size_t)((double)total * 0.99)] : 0.0, errors,
           ws[0].err);
    for (int i = 0; i < c->inflight; i++) {
        free(ws[i].lat);
    }
    free(all);
    free(ws);
    free(ts);
    return total ? 0 : 1;
}

/* --first-write: tries started every 50 ms, each on its own connection
 * with a long time limit, so that a try stuck on a node that still waits
 * for the dead leader does not delay the measurement: the first try to
 * succeed ends it. */
typedef struct first_state {
    const cfg *c;
    pthread_mutex_t lock;
    int live, tries;
    double first_ok; /* wall clock, 0 until a try succeeded */
} first_state;

typedef struct first_try {
    first_state *fs;
    int attempt;
} first_try;

static double
wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
try_write(const cfg *c, int attempt)
{
    if (c->etcd) {
        char url[128];
        nth_url(c->etcd, attempt, url, sizeof url);
        int fd = http_connect(url, 5000);
        int rc = fd < 0 ? -1 : etcd_put(fd, 999, attempt);
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    sprig_storage *st;
    sprig_db *db;
    int rc = sprig_connect(c, 5000, &st, &db);
    if (rc == 0) {
        rc = sprig_put(db, 999, attempt);
        sprig_db_close(db);
        sprig_storage_close(st);
    }
    return rc;
}

static void *
first_try_thread(void *arg)
{
    first_try *t = arg;
    first_state *fs = t->fs;
    int rc = try_write(fs->c, t->attempt);
    double at = wall_s();
    pthread_mutex_lock(&fs->lock);
    if (rc == 0 && (fs->first_ok == 0 || at < fs->first_ok)) {
        fs->first_ok = at;
    }
    fs->live--;
    pthread_mutex_unlock(&fs->lock);
    free(t);
    return NULL;
}

static int
run_first_write(const cfg *c)
{
    first_state fs = {.c = c};
    pthread_mutex_init(&fs.lock, NULL);
    double t0 = now_s();
    for (;;) {
        pthread_mutex_lock(&fs.lock);
        bool done = fs.first_ok != 0 || now_s() - t0 > c->first_write_ms / 1e3;
        bool room = fs.live < 256;
        fs.live += room && !done;
        int attempt = fs.tries;
        fs.tries += room && !done;
        pthread_mutex_unlock(&fs.lock);
        if (done) {
            break;
        }
        first_try *t = room ? malloc(sizeof *t) : NULL;
        pthread_t th;
        if (t) {
            *t = (first_try){&fs, attempt};
            pthread_create(&th, NULL, first_try_thread, t);
            pthread_detach(th);
        }
        usleep(50000);
    }
    pthread_mutex_lock(&fs.lock);
    if (fs.first_ok != 0) {
        printf("{\"system\":\"%s\",\"first_ok_unix\":%.6f,\"tries\":%d}\n",
               c->etcd ? "etcd" : "sprig", fs.first_ok, fs.tries);
    } else {
        printf("{\"system\":\"%s\",\"first_ok_unix\":null,\"tries\":%d}\n",
               c->etcd ? "etcd" : "sprig", fs.tries);
    }
    int rc = fs.first_ok != 0 ? 0 : 1;
    pthread_mutex_unlock(&fs.lock);
    fflush(stdout);
    _exit(rc); /* tries still stuck are abandoned with the process */
}

/* One write, then the node the client is connected to. */
static int
run_leader(const cfg *c)
{
    sprig_client *cl;
    sprig_db *db = NULL;
    int rc = sprig_client_connect(c->sprig, NULL, &cl);
    if (rc == 0 && c->user) {
        rc = sprig_client_authenticate_password(cl, c->user, c->password);
    }
    rc = rc ? rc
            : sprig_storage_open_database(sprig_client_storage(cl), "bench",
                                          &db);
    rc = rc ? rc : sprig_put(db, 998, 0);
    sprig_conn_info info;
    rc = rc ? rc : sprig_client_info(cl, &info);
    if (rc == 0) {
        printf("{\"peer\":\"%s\"}\n", info.peer);
    } else {
        printf("{\"peer\":null,\"error\":\"%s\"}\n", sprig_errmsg());
    }
    if (db) {
        sprig_db_close(db);
    }
    sprig_client_close(cl); /* NULL when the connection failed */
    return rc ? 1 : 0;
}

int
main(int argc, char **argv)
{
    cfg c = {.inflight = 1, .seconds = 5};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--etcd")) {
            c.etcd = v;
        } else if (!strcmp(a, "--sprig")) {
            c.sprig = v;
        } else if (!strcmp(a, "--user")) {
            c.user = v;
        } else if (!strcmp(a, "--password-env")) {
            c.password = getenv(v);
        } else if (!strcmp(a, "--inflight")) {
            c.inflight = atoi(v);
        } else if (!strcmp(a, "--seconds")) {
            c.seconds = atof(v);
        } else if (!strcmp(a, "--first-write")) {
            c.first_write_ms = atoi(v);
        } else if (!strcmp(a, "--leader")) {
            c.leader = atoi(v) != 0;
        }
    }
    if (!c.etcd == !c.sprig || c.inflight < 1) {
        fprintf(stderr, "usage: cluster_load (--etcd URLS | --sprig URLS "
                        "[--user U --password-env VAR]) [--inflight N] "
                        "[--seconds S] [--first-write MS]\n");
        return 2;
    }
    if (c.first_write_ms) {
        return run_first_write(&c);
    }
    if (c.sprig && sprig_setup(&c) != 0) {
        return 1;
    }
    return c.leader && c.sprig ? run_leader(&c) : run_load(&c);
}
