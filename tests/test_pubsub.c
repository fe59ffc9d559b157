/*
 * test_pubsub.c -- PubSub (F7): arguments and limits, delivery to every
 * current subscriber of a topic (and to nobody else, nor across
 * databases), subscribe/unsubscribe, publish_to_all, many publisher threads
 * and subscribers with per-publisher order checked message by message (seed
 * printed; SPRIG_SEED=N replays), the bounded queue's overflow rule and
 * drop count, the wake-up fd, blocking and timed recv, and lifetimes: a
 * subscriber keeps its database open, and freeing it unregisters it.
 */
#include "testutil.h"

#include "local/local.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"ps", cols, 1};
static const char *root;
static uint64_t seed;

typedef struct fx {
    sprig_storage *st;
    sprig_db *db, *db2;
} fx;

static int
setup(void **state)
{
    static int n;
    char p[1200];
    snprintf(p, sizeof p, "%s/s%d", root, n++);
    fx *f = calloc(1, sizeof *f);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = p;
    o.durability = SPRIG_DURABILITY_NONE;
    SPRIG_OK_(sprig_storage_open(&o, &f->st));
    SPRIG_OK_(sprig_storage_register_schema(f->st, &schema));
    SPRIG_OK_(sprig_storage_create_database(f->st, "one", "ps", false));
    SPRIG_OK_(sprig_storage_create_database(f->st, "two", "ps", false));
    SPRIG_OK_(sprig_storage_open_database(f->st, "one", &f->db));
    SPRIG_OK_(sprig_storage_open_database(f->st, "two", &f->db2));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx *f = *state;
    sprig_db_close(f->db);
    sprig_db_close(f->db2);
    sprig_storage_close(f->st);
    free(f);
    return 0;
}

static sprig_bytes
b(const char *s)
{
    return sprig_str(s);
}

/* Receive one message now and check its topic and payload. */
static void
expect_msg(sprig_subscriber *s, const char *topic, const char *payload)
{
    sprig_message *m;
    SPRIG_OK_(sprig_subscriber_recv(s, 0, &m));
    assert_true(tu_bytes_eq(sprig_message_topic(m), topic));
    assert_true(tu_bytes_eq(sprig_message_payload(m), payload));
    sprig_message_free(m);
}

static void
expect_none(sprig_subscriber *s)
{
    sprig_message *m = (sprig_message *)1;
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_subscriber_recv(s, 0, &m));
    assert_null(m);
}

static bool
readable(sprig_subscriber *s)
{
    struct pollfd p = {sprig_subscriber_fd(s), POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void
test_arguments(void **state)
{
    fx *f = *state;
    sprig_subscriber *s;
    sprig_message *m;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_subscriber_new(NULL, &s));
    assert_null(s);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_subscriber_new(f->db, NULL));
    SPRIG_OK_(sprig_subscriber_new(f->db, &s));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_subscribe(NULL, b("t")));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_subscribe(s, b("")));
    static char big_topic[SPRIG_TOPIC_MAX + 1];
    memset(big_topic, 't', sizeof big_topic);
    sprig_bytes bt = {big_topic, sizeof big_topic};
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_subscribe(s, bt));
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_unsubscribe(s, bt));
    bt.len--; /* exactly at the limit */
    SPRIG_OK_(sprig_subscribe(s, bt));
    SPRIG_OK_(sprig_publish(f->db, bt, b("edge")));
    SPRIG_OK_(sprig_subscriber_recv(s, 0, &m));
    assert_int_equal(sprig_message_topic(m).len, SPRIG_TOPIC_MAX);
    sprig_message_free(m);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_publish(NULL, b("t"), b("x")));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_publish(f->db, b(""), b("x")));
    sprig_bytes huge = {"x", (size_t)SPRIG_PAYLOAD_MAX + 1}; /* never read */
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_publish(f->db, b("t"), huge));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_publish_to_all(f->db, NULL, 2, b("x")));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_subscriber_recv(s, -2, &m));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_subscriber_recv(s, 0, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_subscriber_set_limits(s, 0, 0));
    assert_int_equal(sprig_subscriber_fd(NULL), -1);
    assert_int_equal(sprig_subscriber_dropped(NULL), 0);
    sprig_subscriber_free(NULL);
    sprig_message_free(NULL);
    assert_int_equal(sprig_message_topic(NULL).len, 0);
    sprig_subscriber_free(s);
}

static void
test_delivery_and_scope(void **state)
{
    fx *f = *state;
    sprig_subscriber *a, *ab, *other, *none;
    SPRIG_OK_(sprig_subscriber_new(f->db, &a));
    SPRIG_OK_(sprig_subscriber_new(f->db, &ab));
    SPRIG_OK_(sprig_subscriber_new(f->db2, &other));
    SPRIG_OK_(sprig_subscriber_new(f->db, &none));
    SPRIG_OK_(sprig_subscribe(a, b("a")));
    SPRIG_OK_(sprig_subscribe(ab, b("a")));
    SPRIG_OK_(sprig_subscribe(ab, b("b")));
    SPRIG_OK_(sprig_subscribe(other, b("a"))); /* same topic, other db */
    uint8_t bin[3] = {0, 0xff, 0};
    SPRIG_OK_(sprig_subscribe(a, (sprig_bytes){bin, 3})); /* any bytes */
    SPRIG_OK_(sprig_publish(f->db, b("a"), b("1")));
    SPRIG_OK_(sprig_publish(f->db, b("b"), b("2")));
    SPRIG_OK_(sprig_publish(f->db, b("c"), b("3"))); /* nobody listens */
    SPRIG_OK_(sprig_publish(f->db, (sprig_bytes){bin, 3}, b("")));
    expect_msg(a, "a", "1");
    sprig_message *m;
    SPRIG_OK_(sprig_subscriber_recv(a, 0, &m));
    assert_int_equal(sprig_message_topic(m).len, 3);
    assert_int_equal(sprig_message_payload(m).len, 0);
    sprig_message_free(m);
    expect_none(a);
    expect_msg(ab, "a", "1");
    expect_msg(ab, "b", "2");
    expect_none(ab);
    expect_none(other);
    expect_none(none);
    /* a second handle on the same database shares its hub */
    sprig_db *again;
    SPRIG_OK_(sprig_storage_open_database(f->st, "one", &again));
    SPRIG_OK_(sprig_publish(again, b("a"), b("4")));
    sprig_db_close(again);
    expect_msg(a, "a", "4");
    SPRIG_OK_(sprig_publish(f->db2, b("a"), b("5")));
    expect_msg(other, "a", "5");
    expect_none(a);
    sprig_subscriber_free(a);
    sprig_subscriber_free(ab);
    sprig_subscriber_free(other);
    sprig_subscriber_free(none);
}

static void
test_unsubscribe(void **state)
{
    fx *f = *state;
    sprig_subscriber *s;
    size_t topics, subs;
    SPRIG_OK_(sprig_subscriber_new(f->db, &s));
    SPRIG_OK_(sprig_subscribe(s, b("t")));
    SPRIG_OK_(sprig_subscribe(s, b("t"))); /* no-op: one copy each */
    SPRIG_OK_(sprig_subscribe(s, b("u")));
    sprig__hub_counts(f->db, &topics, &subs);
    assert_int_equal(topics, 2);
    assert_int_equal(subs, 1);
    SPRIG_OK_(sprig_publish(f->db, b("t"), b("1")));
    SPRIG_OK_(sprig_unsubscribe(s, b("t")));
    SPRIG_OK_(sprig_unsubscribe(s, b("t"))); /* no-op */
    SPRIG_OK_(sprig_unsubscribe(s, b("never")));
    SPRIG_OK_(sprig_publish(f->db, b("t"), b("2")));
    SPRIG_OK_(sprig_publish(f->db, b("u"), b("3")));
    expect_msg(s, "t", "1"); /* queued before: kept */
    expect_msg(s, "u", "3");
    expect_none(s);
    sprig__hub_counts(f->db, &topics, &subs);
    assert_int_equal(topics, 1);
    SPRIG_OK_(sprig_subscribe(s, b("t"))); /* again */
    SPRIG_OK_(sprig_publish(f->db, b("t"), b("4")));
    expect_msg(s, "t", "4");
    sprig_subscriber_free(s);
    sprig__hub_counts(f->db, &topics, &subs);
    assert_int_equal(topics, 0);
    assert_int_equal(subs, 0);
}

static void
test_publish_to_all(void **state)
{
    fx *f = *state;
    sprig_subscriber *s1, *s2;
    SPRIG_OK_(sprig_subscriber_new(f->db, &s1));
    SPRIG_OK_(sprig_subscriber_new(f->db, &s2));
    SPRIG_OK_(sprig_subscribe(s1, b("x")));
    SPRIG_OK_(sprig_subscribe(s1, b("y")));
    SPRIG_OK_(sprig_subscribe(s2, b("y")));
    sprig_bytes topics[3] = {b("x"), b("nobody"), b("y")};
    SPRIG_OK_(sprig_publish_to_all(f->db, topics, 3, b("all")));
    SPRIG_OK_(sprig_publish_to_all(f->db, topics, 0, b("none")));
    expect_msg(s1, "x", "all"); /* one per topic, in the order given */
    expect_msg(s1, "y", "all");
    expect_none(s1);
    expect_msg(s2, "y", "all");
    expect_none(s2);
    sprig_bytes bad[2] = {b("x"), b("")};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_publish_to_all(f->db, bad, 2, b("no")));
    expect_none(s1); /* checked before anything was published */
    sprig_subscriber_free(s1);
    sprig_subscriber_free(s2);
}

/* ---- many publishers, subscribers and topics ------------------------- */

#define PUBS 4
#define PER_PUB 3000
#define NSUBS 48
#define NTOPICS 24

typedef struct pub_arg {
    sprig_db *db;
    int id;
    uint64_t rs;
    uint8_t topic_of[PER_PUB]; /* where message i went; 255: to all */
} pub_arg;

static void
topic_name(char *buf, size_t n, int t)
{
    snprintf(buf, n, "topic/%02d", t);
}

static void *
pub_main(void *p)
{
    pub_arg *a = p;
    char payload[32], t1[16], t2[16];
    for (int i = 0; i < PER_PUB; i++) {
        snprintf(payload, sizeof payload, "%d %d", a->id, i);
        int t = (int)(tu_rand(&a->rs) % NTOPICS);
        topic_name(t1, sizeof t1, t);
        int rc;
        if (i % 10 == 9) { /* also to topic t+1 */
            topic_name(t2, sizeof t2, (t + 1) % NTOPICS);
            sprig_bytes two[2] = {b(t1), b(t2)};
            rc = sprig_publish_to_all(a->db, two, 2, b(payload));
            a->topic_of[i] = (uint8_t)(t + 100);
        } else {
            rc = sprig_publish(a->db, b(t1), b(payload));
            a->topic_of[i] = (uint8_t)t;
        }
        if (rc) {
            return (void *)1;
        }
    }
    return NULL;
}

/* What subscriber `subscribed` must receive from publisher `a`, in order:
 * (message index, topic) pairs; returns how many. */
static int
expected_from(const pub_arg *a, const bool *subscribed, int (*out)[2])
{
    int n = 0;
    for (int i = 0; i < PER_PUB; i++) {
        int t = a->topic_of[i];
        int first = t < 100 ? t : t - 100;
        if (subscribed[first]) {
            out[n][0] = i;
            out[n++][1] = first;
        }
        if (t >= 100 && subscribed[(first + 1) % NTOPICS]) {
            out[n][0] = i;
            out[n++][1] = (first + 1) % NTOPICS;
        }
    }
    return n;
}

/* Drain `s`: exactly the expected messages, each publisher's in order. */
static void
check_subscriber(sprig_subscriber *s, const bool *subscribed,
                 const pub_arg *pubs)
{
    static int want[PUBS][2 * PER_PUB][2];
    int n[PUBS], pos[PUBS] = {0};
    for (int p = 0; p < PUBS; p++) {
        n[p] = expected_from(&pubs[p], subscribed, want[p]);
    }
    sprig_message *m;
    while (sprig_subscriber_recv(s, 0, &m) == 0) {
        char buf[32] = {0}, tn[16];
        sprig_bytes pl = sprig_message_payload(m);
        memcpy(buf, pl.data, pl.len < 31 ? pl.len : 31);
        int p, i;
        assert_int_equal(sscanf(buf, "%d %d", &p, &i), 2);
        assert_true(p >= 0 && p < PUBS && pos[p] < n[p]);
        assert_int_equal(i, want[p][pos[p]][0]);
        topic_name(tn, sizeof tn, want[p][pos[p]][1]);
        assert_true(tu_bytes_eq(sprig_message_topic(m), tn));
        pos[p]++;
        sprig_message_free(m);
    }
    for (int p = 0; p < PUBS; p++) {
        assert_int_equal(pos[p], n[p]);
    }
    assert_int_equal(sprig_subscriber_dropped(s), 0);
}

static void *
churn_main(void *p)
{
    sprig_db *db = p;
    char tn[16];
    for (int i = 0; i < 300; i++) {
        sprig_subscriber *s;
        if (sprig_subscriber_new(db, &s)) {
            return (void *)1;
        }
        topic_name(tn, sizeof tn, i % NTOPICS);
        sprig_subscribe(s, b(tn));
        sprig_subscriber_set_limits(s, 4, 0);
        sprig_subscriber_free(s);
    }
    return NULL;
}

static void
test_many(void **state)
{
    fx *f = *state;
    uint64_t rs = seed;
    sprig_subscriber *subs[NSUBS];
    bool subscribed[NSUBS][NTOPICS] = {{0}};
    char tn[16];
    for (int s = 0; s < NSUBS; s++) {
        SPRIG_OK_(sprig_subscriber_new(f->db, &subs[s]));
        SPRIG_OK_(sprig_subscriber_set_limits(subs[s], 1u << 20, 0));
        for (int t = 0; t < NTOPICS; t++) {
            if (tu_rand(&rs) % 4 == 0) {
                subscribed[s][t] = true;
                topic_name(tn, sizeof tn, t);
                SPRIG_OK_(sprig_subscribe(subs[s], b(tn)));
            }
        }
    }
    static pub_arg pubs[PUBS];
    pthread_t th[PUBS + 1];
    for (int p = 0; p < PUBS; p++) {
        pubs[p] = (pub_arg){f->db, p, seed + (uint64_t)p + 1, {0}};
        assert_int_equal(pthread_create(&th[p], NULL, pub_main, &pubs[p]), 0);
    }
    assert_int_equal(pthread_create(&th[PUBS], NULL, churn_main, f->db), 0);
    for (int p = 0; p <= PUBS; p++) {
        void *r;
        pthread_join(th[p], &r);
        assert_null(r);
    }
    for (int s = 0; s < NSUBS; s++) {
        check_subscriber(subs[s], subscribed[s], pubs);
        sprig_subscriber_free(subs[s]);
    }
    size_t topics, nsubs;
    sprig__hub_counts(f->db, &topics, &nsubs);
    assert_int_equal(topics + nsubs, 0);
}

/* ---- bounded queues and the fd --------------------------------------- */

static void
publish_n(sprig_db *db, const char *topic, int from, int n)
{
    char p[16];
    for (int i = from; i < from + n; i++) {
        snprintf(p, sizeof p, "%09d", i); /* 9 bytes */
        SPRIG_OK_(sprig_publish(db, b(topic), b(p)));
    }
}

static void
expect_seq(sprig_subscriber *s, const char *topic, int from, int to)
{
    char p[16];
    for (int i = from; i < to; i++) {
        snprintf(p, sizeof p, "%09d", i);
        expect_msg(s, topic, p);
    }
    expect_none(s);
}

static void
test_overflow(void **state)
{
    fx *f = *state;
    sprig_subscriber *slow, *fast;
    SPRIG_OK_(sprig_subscriber_new(f->db, &slow));
    SPRIG_OK_(sprig_subscriber_new(f->db, &fast));
    SPRIG_OK_(sprig_subscribe(slow, b("t")));
    SPRIG_OK_(sprig_subscribe(fast, b("t")));
    SPRIG_OK_(sprig_subscriber_set_limits(slow, 10, 0));
    publish_n(f->db, "t", 0, 25);
    assert_int_equal(sprig_subscriber_dropped(slow), 15);
    assert_int_equal(sprig_subscriber_dropped(fast), 0); /* unaffected */
    expect_seq(slow, "t", 15, 25); /* the newest ten, in order */
    expect_seq(fast, "t", 0, 25);
    /* a byte bound: 10 bytes a message ("t" + 9), 35 bytes hold three */
    SPRIG_OK_(sprig_subscriber_set_limits(slow, 100, 35));
    publish_n(f->db, "t", 100, 5);
    assert_int_equal(sprig_subscriber_dropped(slow), 17);
    expect_seq(slow, "t", 102, 105);
    /* one message over the byte bound still fits an empty queue */
    SPRIG_OK_(sprig_subscriber_set_limits(slow, 100, 5));
    publish_n(f->db, "t", 200, 2);
    assert_int_equal(sprig_subscriber_dropped(slow), 18);
    expect_seq(slow, "t", 201, 202);
    /* lowering the bound drops the oldest waiting */
    SPRIG_OK_(sprig_subscriber_set_limits(slow, 100, 0));
    publish_n(f->db, "t", 300, 6);
    SPRIG_OK_(sprig_subscriber_set_limits(slow, 2, 0));
    assert_int_equal(sprig_subscriber_dropped(slow), 22);
    expect_seq(slow, "t", 304, 306);
    sprig_subscriber_free(slow);
    sprig_subscriber_free(fast); /* frees what it never read */
}

static void
test_fd(void **state)
{
    fx *f = *state;
    sprig_subscriber *s;
    SPRIG_OK_(sprig_subscriber_new(f->db, &s));
    assert_true(sprig_subscriber_fd(s) >= 0);
    SPRIG_OK_(sprig_subscribe(s, b("t")));
    assert_false(readable(s));
    publish_n(f->db, "t", 0, 1);
    assert_true(readable(s));
    publish_n(f->db, "t", 1, 2);
    assert_true(readable(s));
    sprig_message *m;
    SPRIG_OK_(sprig_subscriber_recv(s, 0, &m));
    sprig_message_free(m);
    SPRIG_OK_(sprig_subscriber_recv(s, 0, &m));
    sprig_message_free(m);
    assert_true(readable(s)); /* one left */
    SPRIG_OK_(sprig_subscriber_recv(s, 0, &m));
    sprig_message_free(m);
    assert_false(readable(s));
    /* through overflow and a lowered bound */
    SPRIG_OK_(sprig_subscriber_set_limits(s, 3, 0));
    publish_n(f->db, "t", 0, 10);
    assert_true(readable(s));
    expect_seq(s, "t", 7, 10);
    assert_false(readable(s));
    /* a poll loop: wait on the fd, drain, repeat */
    publish_n(f->db, "t", 0, 2);
    struct pollfd p = {sprig_subscriber_fd(s), POLLIN, 0};
    assert_int_equal(poll(&p, 1, 1000), 1);
    expect_seq(s, "t", 0, 2);
    assert_int_equal(poll(&p, 1, 0), 0);
    sprig_subscriber_free(s);
}

typedef struct waiter {
    sprig_subscriber *s;
    int rc;
    char got[16];
} waiter;

static void *
wait_main(void *p)
{
    waiter *w = p;
    sprig_message *m;
    w->rc = sprig_subscriber_recv(w->s, -1, &m);
    if (w->rc == 0) {
        sprig_bytes pl = sprig_message_payload(m);
        memcpy(w->got, pl.data, pl.len < 15 ? pl.len : 15);
        sprig_message_free(m);
    }
    return NULL;
}

static void
test_blocking_recv(void **state)
{
    fx *f = *state;
    sprig_subscriber *s;
    SPRIG_OK_(sprig_subscriber_new(f->db, &s));
    SPRIG_OK_(sprig_subscribe(s, b("t")));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sprig_message *m;
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_subscriber_recv(s, 120, &m));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms =
        (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 115);
    waiter w = {s, -99, {0}};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_main, &w), 0);
    usleep(50000);
    SPRIG_OK_(sprig_publish(f->db, b("t"), b("wake")));
    pthread_join(th, NULL);
    SPRIG_OK_(w.rc);
    assert_string_equal(w.got, "wake");
    publish_n(f->db, "t", 0, 1); /* a timed wait that succeeds at once */
    SPRIG_OK_(sprig_subscriber_recv(s, 5000, &m));
    sprig_message_free(m);
    sprig_subscriber_free(s);
}

/* ---- lifetimes -------------------------------------------------------- */

/* A subscriber keeps its database (and storage) open until freed. */
static void
test_subscriber_keeps_db_open(void **state)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/m1", root);
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(p, &schema, &db));
    sprig_subscriber *s;
    SPRIG_OK_(sprig_subscriber_new(db, &s));
    SPRIG_OK_(sprig_subscribe(s, b("t")));
    SPRIG_OK_(sprig_publish(db, b("t"), b("before close")));
    sprig_db_close(db); /* the storage stays open for the subscriber */
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = p;
    sprig_storage *st;
    SPRIG_EXPECT(SPRIG_EBUSY, sprig_storage_open(&o, &st));
    expect_msg(s, "t", "before close");
    SPRIG_OK_(sprig_subscribe(s, b("u")));
    SPRIG_OK_(sprig_unsubscribe(s, b("t")));
    sprig_subscriber_free(s); /* the last hold: the storage closes */
    SPRIG_OK_(sprig_storage_open(&o, &st));
    sprig_storage_close(st);
}

static void
test_deleted_database(void **state)
{
    fx *f = *state;
    sprig_subscriber *s;
    SPRIG_OK_(sprig_subscriber_new(f->db2, &s));
    SPRIG_OK_(sprig_subscribe(s, b("t")));
    SPRIG_OK_(sprig_storage_delete_database(f->st, "two"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_publish(f->db2, b("t"), b("x")));
    sprig_subscriber *s2;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_subscriber_new(f->db2, &s2));
    expect_none(s);
    sprig_subscriber_free(s);
}

/* ---- out of memory ------------------------------------------------------ */

/* Subscriber creation, subscribing and publishing with the n-th
 * allocation failing: SPRIG_ENOMEM or success, never a crash or a leak;
 * a queue that cannot grow drops the message and counts it. */
static void
test_out_of_memory(void **state)
{
    fx *f = *state;
    sprig_subscriber *s = NULL, *r;
    int rc = SPRIG_ENOMEM;
    for (unsigned long n = 1; rc == SPRIG_ENOMEM; n++) {
        sprig__alloc_fail_after(n);
        rc = sprig_subscriber_new(f->db, &s);
        sprig__alloc_fail_after(0);
        assert_true(rc == SPRIG_OK || (rc == SPRIG_ENOMEM && !s));
    }
    SPRIG_OK_(sprig_subscriber_new(f->db, &r));
    SPRIG_OK_(sprig_subscribe(r, b("t")));
    char name[16];
    for (int t = 0; t < 100; t++) { /* enough topics to grow the table */
        snprintf(name, sizeof name, "t%d", t);
        rc = SPRIG_ENOMEM;
        for (unsigned long n = 1; rc == SPRIG_ENOMEM; n++) {
            sprig__alloc_fail_after(n);
            rc = sprig_subscribe(s, b(name));
            sprig__alloc_fail_after(0);
            assert_true(rc == SPRIG_OK || rc == SPRIG_ENOMEM);
        }
        SPRIG_OK_(rc);
    }
    sprig__alloc_fail_after(1); /* the message itself */
    SPRIG_EXPECT(SPRIG_ENOMEM, sprig_publish(f->db, b("t"), b("lost")));
    sprig__alloc_fail_after(2); /* r's first ring */
    SPRIG_OK_(sprig_publish(f->db, b("t"), b("dropped")));
    sprig__alloc_fail_after(0);
    assert_int_equal(sprig_subscriber_dropped(r), 1);
    expect_none(r);
    assert_false(readable(r));
    SPRIG_OK_(sprig_publish(f->db, b("t"), b("kept")));
    expect_msg(r, "t", "kept");
    size_t topics, subs;
    sprig__hub_counts(f->db, &topics, &subs);
    assert_int_equal(topics, 101); /* t0..t99 and t */
    assert_int_equal(subs, 2);
    sprig_subscriber_free(s);
    sprig_subscriber_free(r);
    sprig__hub_counts(f->db, &topics, &subs);
    assert_int_equal(topics + subs, 0);
}

int
main(void)
{
    root = tu_tmpdir("pubsub");
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_and_scope, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_to_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_recv, setup, teardown),
        cmocka_unit_test(test_subscriber_keeps_db_open),
        cmocka_unit_test_setup_teardown(test_deleted_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
