/*
 * soak_load.c -- the load of `sprig-soak` (soak.h).  Each worker is a
 * thread with a connection of its own (the client library, logged in)
 * running a random mix of inserts, gets, view queries, key-value sets and
 * gets and publishes, every answer checked against what the worker itself
 * acknowledged before: a get returns the document's exact contents, the
 * view's count of the worker's documents equals its acknowledged inserts
 * and the last one leads a descending query, a key-value get returns the
 * last acknowledged set.  Each subscriber is a thread with a connection
 * that receives every publish and checks, per publishing worker, that
 * sequence numbers arrive in order with no gaps beyond what its bounded
 * queue reports dropped.  soak_verify() reads every acknowledged write
 * back at the end, over any placement.
 */
#include "soak.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Weights of the mix (out of 100): insert, get, view, kv set, kv get,
 * publish. */
static const unsigned mix[SOAK_OPS] = {30, 25, 10, 15, 12, 8};

static uint64_t
rnd(uint64_t *s)
{ /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
lat_add(soak_lat *l, uint64_t us)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        uint32_t *p = realloc(l->us, cap * sizeof *p);
        if (!p) {
            return; /* a latency not recorded; the load goes on */
        }
        l->us = p;
        l->cap = cap;
    }
    l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void __attribute__((format(printf, 3, 4)))
note_error(uint64_t *errors, char first[256], const char *fmt, ...)
{
    if ((*errors)++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first, 256, fmt, ap);
        va_end(ap);
    }
}

#define W_FAIL(w, ...) note_error(&(w)->errors, (w)->first_error, __VA_ARGS__)

size_t
soak_doc_body(unsigned w, uint64_t i, char *buf, size_t n)
{
    int len =
        snprintf(buf, n, "{\"w\":\"w%04u\",\"i\":%llu,\"pad\":\"%0*llu\"}", w,
                 (unsigned long long)i, 60 + (int)(i % 40),
                 (unsigned long long)i * 7919u);
    return len < 0 ? 0 : (size_t)len;
}

static sprig_bytes
doc_id(unsigned w, uint64_t i, char buf[32])
{
    snprintf(buf, 32, "w%04u-%010llu", w, (unsigned long long)i);
    return sprig_str(buf);
}

static void
kv_name(unsigned w, unsigned k, char buf[32])
{
    snprintf(buf, 32, "w%04u:k%02u", w, k);
}

static size_t
kv_value(unsigned w, unsigned k, uint64_t ver, char *buf, size_t n)
{
    int len =
        snprintf(buf, n, "w%04u:k%02u:v%llu", w, k, (unsigned long long)ver);
    return len < 0 ? 0 : (size_t)len;
}

int
soak_connect(const soak *s, sprig_storage **st, sprig_db **db)
{
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.user = SOAK_USER;
    o.password = SOAK_PASSWORD;
    o.connect_timeout_ms = 60000; /* 200 connect at once on a busy box */
    o.request_timeout_ms = 60000;
    *st = NULL;
    *db = NULL;
    /* the server admits a few logins at once and answers the others
     * SPRIG_EBUSY "try again": what a client does, with a pause */
    uint64_t end = soak_now_us() + 60000000u;
    int rc;
    while ((rc = sprig_open(s->url, &o, st)) == SPRIG_EBUSY &&
           soak_now_us() < end) {
        struct timespec ts = {0,
                              20000000 + (long)(soak_now_us() % 50) * 1000000};
        nanosleep(&ts, NULL);
    }
    rc = rc ? rc : sprig_storage_open_database(*st, SOAK_DB, db);
    if (rc) {
        sprig_storage_close(*st);
        *st = NULL;
    }
    return rc;
}

/* ======================================================================
 * The worker's operations: each returns the call's code after checking
 * what came back (mismatches are noted as errors).
 * ====================================================================== */

static int
op_insert(soak_worker *w, sprig_db *db)
{
    char id[32], body[256];
    sprig_bytes b = doc_id(w->idx, w->n_docs, id);
    size_t n = soak_doc_body(w->idx, w->n_docs, body, sizeof body);
    int rc = sprig_insert(db, SOAK_COLL, &b,
                          (sprig_bytes){(const uint8_t *)body, n}, NULL);
    w->n_docs += rc == SPRIG_OK;
    return rc;
}

static bool
same(sprig_bytes a, const char *b, size_t n)
{
    return a.len == n && memcmp(a.data, b, n) == 0;
}

static int
op_get(soak_worker *w, sprig_db *db)
{
    if (w->n_docs == 0) {
        return op_insert(w, db);
    }
    uint64_t i = rnd(&w->rng) % w->n_docs;
    char id[32], body[256];
    size_t n = soak_doc_body(w->idx, i, body, sizeof body);
    sprig_doc *d = NULL;
    int rc = sprig_get(db, SOAK_COLL, doc_id(w->idx, i, id), &d);
    if (rc == SPRIG_OK && !same(sprig_doc_contents(d), body, n)) {
        W_FAIL(w, "get %s: contents differ from what was acknowledged", id);
    }
    sprig_doc_free(d);
    return rc;
}

/* The view's count of worker w's documents into *out (-1: not a count). */
static int
count_of(unsigned w, sprig_db *db, int64_t *out)
{
    char name[16];
    snprintf(name, sizeof name, "w%04u", w);
    sprig_key_builder kb = {0};
    int rc = sprig_key_add_str(&kb, name);
    sprig_view_query q;
    sprig_view_query_init(&q, SOAK_COLL, SOAK_VIEW);
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_key_bytes(&kb);
    sprig_value v = {0};
    rc = rc ? rc : sprig_view_reduce_value(db, &q, &v);
    *out = v.kind == SPRIG_VALUE_I64 ? v.num.i64 : -1;
    sprig_value_clear(&v);
    sprig_key_builder_clear(&kb);
    return rc;
}

/* The view's count of the worker's documents: its acknowledged inserts. */
static int
view_count(soak_worker *w, sprig_db *db)
{
    int64_t n;
    int rc = count_of(w->idx, db, &n);
    if (rc == SPRIG_OK && (n < 0 || (uint64_t)n != w->n_docs)) {
        W_FAIL(w, "view count of w%04u: %lld, acknowledged %llu", w->idx,
               (long long)n, (unsigned long long)w->n_docs);
    }
    return rc;
}

/* The worker's last acknowledged document leads a descending query. */
static int
view_last(soak_worker *w, sprig_db *db, sprig_bytes key)
{
    sprig_view_query q;
    sprig_view_query_init(&q, SOAK_COLL, SOAK_VIEW);
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = key;
    q.order = SPRIG_DESC;
    q.limit = 3;
    sprig_mapping_list *l = NULL;
    int rc = sprig_view_query_mappings(db, &q, &l);
    char id[32];
    sprig_bytes want = doc_id(w->idx, w->n_docs - 1, id);
    if (rc == SPRIG_OK && w->n_docs > 0 &&
        (sprig_mapping_list_count(l) == 0 ||
         !same(sprig_mapping_list_source(l, 0).id, (const char *)want.data,
               want.len))) {
        W_FAIL(w, "view query of w%04u: %s does not lead", w->idx, id);
    }
    sprig_mapping_list_free(l);
    return rc;
}

static int
op_view(soak_worker *w, sprig_db *db)
{
    if (rnd(&w->rng) % 2) {
        return view_count(w, db);
    }
    char name[16];
    snprintf(name, sizeof name, "w%04u", w->idx);
    sprig_key_builder kb = {0};
    int rc = sprig_key_add_str(&kb, name);
    rc = rc ? rc : view_last(w, db, sprig_key_bytes(&kb));
    sprig_key_builder_clear(&kb);
    return rc;
}

static int
op_kv_set(soak_worker *w, sprig_db *db)
{
    unsigned k = (unsigned)(rnd(&w->rng) % SOAK_KV_KEYS);
    char key[32], val[64];
    kv_name(w->idx, k, key);
    size_t n = kv_value(w->idx, k, w->kv_ver[k] + 1, val, sizeof val);
    sprig_value v = sprig_value_of_bytes((sprig_bytes){(uint8_t *)val, n});
    int rc = sprig_kv_set(db, SOAK_NS, key, &v, NULL, NULL, NULL);
    w->kv_ver[k] += rc == SPRIG_OK;
    return rc;
}

/* A key's value against its last acknowledged version: 0 when right. */
static int
kv_check(unsigned w, unsigned k, uint64_t ver, int rc, const sprig_value *v,
         char *why, size_t why_len)
{
    char key[32], want[64];
    kv_name(w, k, key);
    size_t n = kv_value(w, k, ver, want, sizeof want);
    if (ver == 0 ? rc == SPRIG_ENOTFOUND
                 : rc == SPRIG_OK && v->kind == SPRIG_VALUE_BYTES &&
                       same(v->bytes, want, n)) {
        return 0;
    }
    snprintf(why, why_len, "kv get %s: %d (%s), acknowledged version %llu", key,
             rc, rc ? sprig_errmsg() : "another value",
             (unsigned long long)ver);
    return -1;
}

static int
op_kv_get(soak_worker *w, sprig_db *db)
{
    unsigned k = (unsigned)(rnd(&w->rng) % SOAK_KV_KEYS);
    char key[32], why[256];
    kv_name(w->idx, k, key);
    sprig_value v = {0};
    int rc = sprig_kv_get(db, SOAK_NS, key, false, &v);
    if (kv_check(w->idx, k, w->kv_ver[k], rc, &v, why, sizeof why) != 0) {
        W_FAIL(w, "%s", why);
    }
    sprig_value_clear(&v);
    return rc == SPRIG_ENOTFOUND && w->kv_ver[k] == 0 ? SPRIG_OK : rc;
}

static int
op_publish(soak_worker *w, sprig_db *db)
{
    char msg[48];
    uint64_t seq = atomic_load(&w->published);
    int n =
        snprintf(msg, sizeof msg, "%u %llu", w->idx, (unsigned long long)seq);
    int rc = sprig_publish(db, sprig_str(SOAK_TOPIC),
                           (sprig_bytes){(uint8_t *)msg, (size_t)n});
    if (rc == SPRIG_OK) {
        atomic_store(&w->published, seq + 1);
    }
    return rc;
}

static int (*const ops[SOAK_OPS])(soak_worker *, sprig_db *) = {
    op_insert, op_get, op_view, op_kv_set, op_kv_get, op_publish,
};
static const char *const op_names[SOAK_OPS] = {
    "insert", "get", "view query", "kv set", "kv get", "publish",
};

static soak_op
pick(soak_worker *w)
{
    unsigned r = (unsigned)(rnd(&w->rng) % 100), acc = 0;
    for (int i = 0; i < SOAK_OPS; i++) {
        if (r < (acc += mix[i])) {
            return (soak_op)i;
        }
    }
    return SOAK_OP_INSERT;
}

/* ======================================================================
 * Threads.
 * ====================================================================== */

typedef struct worker_arg {
    soak *s;
    soak_worker *w;
} worker_arg;

static void *
worker_main(void *p)
{
    worker_arg *a = p;
    soak_worker *w = a->w;
    sprig_storage *st;
    sprig_db *db;
    int rc = soak_connect(a->s, &st, &db);
    if (rc) {
        W_FAIL(w, "connect: %s: %s", sprig_strerror(rc), sprig_errmsg());
        return NULL;
    }
    while (!atomic_load(&a->s->stop)) {
        soak_op op = pick(w);
        uint64_t t0 = soak_now_us();
        rc = ops[op](w, db);
        lat_add(&w->lat[op], soak_now_us() - t0);
        if (rc) {
            W_FAIL(w, "%s: %s: %s", op_names[op], sprig_strerror(rc),
                   sprig_errmsg());
        }
    }
    sprig_db_close(db);
    sprig_storage_close(st);
    return NULL;
}

const char *
soak_op_name(soak_op op)
{
    return op_names[op];
}

/* One message: in order per publishing worker, gaps counted as missed. */
static void
sub_take(soak *s, soak_sub *u, const sprig_message *m)
{
    sprig_bytes p = sprig_message_payload(m);
    char text[48];
    unsigned w;
    unsigned long long seq;
    size_t n = p.len < sizeof text - 1 ? p.len : sizeof text - 1;
    memcpy(text, p.data, n);
    text[n] = '\0';
    if (sscanf(text, "%u %llu", &w, &seq) != 2 || w >= s->workers) {
        note_error(&u->errors, u->first_error, "a message not published: %s",
                   text);
        return;
    }
    u->received++;
    if (seq >= u->next[w]) {
        u->missed += seq - u->next[w];
        u->next[w] = seq + 1;
    } else {
        u->disorder++;
    }
}

/* Every acknowledged publish of every worker has arrived. */
static bool
sub_drained(soak *s, soak_sub *u)
{
    for (unsigned i = 0; i < s->workers; i++) {
        if (u->next[i] < atomic_load(&s->w[i].published)) {
            return false;
        }
    }
    return true;
}

/* Receive until the workers are done and everything arrived (or 30 s
 * after they are done). */
static void
sub_loop(soak *s, soak_sub *u, sprig_subscriber *sub)
{
    uint64_t deadline = 0;
    for (;;) {
        sprig_message *m = NULL;
        int rc = sprig_subscriber_recv(sub, 100, &m);
        if (rc == SPRIG_OK) {
            sub_take(s, u, m);
            sprig_message_free(m);
        } else if (rc != SPRIG_ETIMEDOUT) {
            note_error(&u->errors, u->first_error, "recv: %s: %s",
                       sprig_strerror(rc), sprig_errmsg());
            return;
        }
        if (atomic_load(&s->workers_done)) {
            deadline = deadline ? deadline : soak_now_us() + 30000000u;
            if (sub_drained(s, u) || soak_now_us() > deadline) {
                return;
            }
        }
    }
}

static int
sub_session(soak *s, soak_sub *u, sprig_db *db)
{
    sprig_subscriber *sub = NULL;
    int rc = sprig_subscriber_new(db, &sub);
    rc = rc ? rc : sprig_subscribe(sub, sprig_str(SOAK_TOPIC));
    atomic_fetch_add(&s->subs_ready, 1);
    if (rc == SPRIG_OK) {
        sub_loop(s, u, sub);
        u->dropped += sprig_subscriber_dropped(sub);
    }
    sprig_subscriber_free(sub);
    return rc;
}

typedef struct sub_arg {
    soak *s;
    soak_sub *u;
} sub_arg;

static void *
sub_main(void *p)
{
    sub_arg *a = p;
    soak_sub *u = a->u;
    sprig_storage *st;
    sprig_db *db;
    int rc = soak_connect(a->s, &st, &db);
    if (rc) {
        atomic_fetch_add(&a->s->subs_ready, 1);
    } else {
        rc = sub_session(a->s, u, db);
        sprig_db_close(db);
        sprig_storage_close(st);
    }
    if (rc) {
        note_error(&u->errors, u->first_error, "subscriber: %s: %s",
                   sprig_strerror(rc), sprig_errmsg());
    }
    /* what was published and never arrived */
    for (unsigned i = 0; i < a->s->workers && !rc; i++) {
        uint64_t pub = atomic_load(&a->s->w[i].published);
        u->missed += pub > u->next[i] ? pub - u->next[i] : 0;
    }
    return NULL;
}

/* ======================================================================
 * A round.
 * ====================================================================== */

static int
start_subs(soak *s, pthread_t *t, sub_arg *a)
{
    for (unsigned i = 0; i < s->subs; i++) {
        a[i] = (sub_arg){s, &s->s[i]};
        /* a new subscription: sequence numbers from what was published */
        for (unsigned j = 0; j < s->workers; j++) {
            s->s[i].next[j] = atomic_load(&s->w[j].published);
        }
        if (pthread_create(&t[i], NULL, sub_main, &a[i]) != 0) {
            return -1;
        }
    }
    while (atomic_load(&s->subs_ready) < s->subs) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void
sleep_until_stop(unsigned seconds)
{
    uint64_t end = soak_now_us() + (uint64_t)seconds * 1000000u;
    while (soak_now_us() < end) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
}

int
soak_round(soak *s, unsigned seconds)
{
    pthread_t *wt = calloc(s->workers, sizeof *wt);
    pthread_t *st = calloc(s->subs ? s->subs : 1, sizeof *st);
    worker_arg *wa = calloc(s->workers, sizeof *wa);
    sub_arg *sa = calloc(s->subs ? s->subs : 1, sizeof *sa);
    atomic_store(&s->stop, false);
    atomic_store(&s->workers_done, false);
    atomic_store(&s->subs_ready, 0);
    int rc = wt && st && wa && sa ? start_subs(s, st, sa) : -1;
    unsigned started = 0;
    for (; rc == 0 && started < s->workers; started++) {
        wa[started] = (worker_arg){s, &s->w[started]};
        if (pthread_create(&wt[started], NULL, worker_main, &wa[started])) {
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        sleep_until_stop(seconds);
    }
    atomic_store(&s->stop, true);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(wt[i], NULL);
    }
    atomic_store(&s->workers_done, true);
    for (unsigned i = 0; st && i < atomic_load(&s->subs_ready); i++) {
        pthread_join(st[i], NULL);
    }
    free(wt), free(st), free(wa), free(sa);
    return rc;
}

/* ======================================================================
 * Reading back every acknowledged write.
 * ====================================================================== */

#define BATCH 128

static int
verify_batch(unsigned w, uint64_t from, uint64_t n, sprig_db *db, char *why,
             size_t why_len)
{
    char ids[BATCH][32], body[256];
    sprig_bytes b[BATCH];
    for (uint64_t i = 0; i < n; i++) {
        b[i] = doc_id(w, from + i, ids[i]);
    }
    sprig_doc_list *l = NULL;
    int rc = sprig_get_multiple(db, SOAK_COLL, b, (size_t)n, &l);
    if (rc) {
        snprintf(why, why_len, "get_multiple: %s", sprig_errmsg());
        sprig_doc_list_free(l);
        return -1;
    }
    int bad = sprig_doc_list_count(l) == n ? 0 : -1;
    for (uint64_t i = 0; !bad && i < n; i++) {
        size_t len = soak_doc_body(w, from + i, body, sizeof body);
        const sprig_doc *d = sprig_doc_list_get(l, (size_t)i);
        bad = same(sprig_doc_contents(d), body, len) ? 0 : -1;
    }
    if (bad) {
        snprintf(why, why_len,
                 "acknowledged documents of w%04u from %s: "
                 "%zu of %llu read back, or contents differ",
                 w, ids[0], sprig_doc_list_count(l), (unsigned long long)n);
    }
    sprig_doc_list_free(l);
    return bad;
}

static int
verify_worker(soak_worker *w, sprig_db *db, char *why, size_t why_len)
{
    for (uint64_t i = 0; i < w->n_docs; i += BATCH) {
        uint64_t n = w->n_docs - i < BATCH ? w->n_docs - i : BATCH;
        if (verify_batch(w->idx, i, n, db, why, why_len) != 0) {
            return -1;
        }
    }
    for (unsigned k = 0; k < SOAK_KV_KEYS; k++) {
        char key[32];
        kv_name(w->idx, k, key);
        sprig_value v = {0};
        int rc = sprig_kv_get(db, SOAK_NS, key, false, &v);
        int bad = kv_check(w->idx, k, w->kv_ver[k], rc, &v, why, why_len);
        sprig_value_clear(&v);
        if (bad) {
            return -1;
        }
    }
    int64_t n;
    int rc = count_of(w->idx, db, &n);
    if (rc != SPRIG_OK || n < 0 || (uint64_t)n != w->n_docs) {
        snprintf(why, why_len,
                 "view count of w%04u: %lld (%s), acknowledged "
                 "%llu",
                 w->idx, (long long)n, rc ? sprig_errmsg() : "ok",
                 (unsigned long long)w->n_docs);
        return -1;
    }
    return 0;
}

int
soak_verify(soak *s, sprig_db *db, char *why, size_t why_len)
{
    for (unsigned i = 0; i < s->workers; i++) {
        if (verify_worker(&s->w[i], db, why, why_len) != 0) {
            return -1;
        }
    }
    return 0;
}

int
soak_warm_up(soak *s)
{
    sprig_storage *st;
    sprig_db *db;
    int rc = soak_connect(s, &st, &db);
    if (rc) {
        return rc;
    }
    int64_t n;
    sprig_value v = sprig_value_of_bytes(sprig_str("-"));
    sprig_bytes id = sprig_str("warm-up");
    rc = sprig_insert(db, SOAK_COLL, &id, sprig_str("{\"w\":\"-\"}"), NULL);
    rc = rc ? rc : sprig_kv_set(db, SOAK_NS, "warm-up", &v, NULL, NULL, NULL);
    rc = rc ? rc : count_of(0, db, &n);
    rc = rc ? rc : sprig_publish(db, sprig_str("warm-up"), sprig_str("-"));
    sprig_db_close(db);
    sprig_storage_close(st);
    return rc;
}
