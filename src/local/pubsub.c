/*
 * pubsub.c -- the PubSub hub of a local database (F7) and its subscribers.
 *
 * One hub per database engine (sprig__ldb), so topics are scoped to their
 * database.  Nothing is persisted.  A subscriber is a `sprig_subscriber`
 * handle (ops table in core.h) holding a bounded queue of messages and an
 * eventfd for poll/epoll users.
 *
 * Design notes.
 *
 * Structures.  The hub maps topic bytes to a `topic` (chained hash table)
 * listing its subscribers; each subscriber lists its topics, so freeing it
 * unregisters it everywhere.  A topic exists while it has subscribers.
 * Both lists change only under the hub's lock held for writing
 * (subscribe, unsubscribe, free); publishers hold it for reading, so they
 * run in parallel and a subscriber cannot vanish under a publisher.
 *
 * Queues.  Each subscriber has its own mutex guarding a ring of message
 * pointers.  A publisher makes one immutable, reference-counted message per
 * topic and appends a reference to each subscriber's ring, taking each
 * subscriber's mutex only for that append: publishing never waits for a
 * slow reader.  One publisher appends its messages in publish order, so
 * every subscriber sees them in that order.  When a message does not fit
 * the queue's bounds (max_msgs, max_bytes), the oldest waiting messages are
 * dropped and counted in `dropped`; if the ring cannot grow (no memory) the
 * new message is the one dropped, and counted.
 *
 * The eventfd is readable exactly while the ring is non-empty: sync_efd()
 * writes 1 when the ring becomes non-empty and reads the counter back to 0
 * when it empties, always under the subscriber's mutex (efd_set mirrors
 * the counter).  recv waits on a condition variable, not the fd.
 *
 * Lifetime.  A subscriber takes a reference on its database engine (like a
 * handle, sprig__storage_retain), so the engine and its hub outlive every
 * subscriber; the hub is freed with the engine, empty by then.
 *
 * Lock order: hub lock, then a subscriber's mutex.
 *
 * Replicated storages (src/local/repl.h, issue 18).  On a storage with a
 * replicator a publish is a command (SPRIG__CMD_PUBLISH) submitted through
 * the seam like any write: the replicator (a Raft node) orders it in the
 * log, and applying the committed entry on each node hands the message to
 * that node's hub (sprig__pubsub_apply), in log order.  The publisher is
 * answered after its own node delivered it.  Other storages deliver at
 * once, as before.
 */
#include "core/cmd.h"
#include "local.h"
#include "repl.h"

#include <errno.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct lsub lsub;

typedef struct topic {
    struct topic *next; /* hash chain */
    uint64_t hash;
    lsub **subs;
    size_t n_subs, cap;
    size_t len;
    uint8_t name[];
} topic;

struct sprig__hub {
    pthread_rwlock_t lock;
    topic **buckets;
    size_t n_buckets, n_topics, n_subs;
};

struct lsub {
    sprig_subscriber base;
    sprig__ldb *ldb;
    /* guarded by the hub lock */
    topic **topics;
    size_t n_topics, cap_topics;
    /* guarded by `lock` */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    sprig_message **ring;
    size_t head, n, cap;
    size_t bytes, max_msgs, max_bytes;
    uint64_t dropped;
    bool efd_set;
    int efd;
};

/* ---- the hub ---------------------------------------------------------- */

int
sprig__hub_new(sprig__hub **out)
{
    sprig__hub *h = sprig__calloc(1, sizeof *h);
    if (h) {
        h->n_buckets = 64;
        h->buckets = sprig__calloc(h->n_buckets, sizeof *h->buckets);
    }
    if (!h || !h->buckets) {
        sprig__free(h);
        return sprig__err(SPRIG_ENOMEM, "out of memory for a PubSub hub");
    }
    pthread_rwlock_init(&h->lock, NULL);
    *out = h;
    return SPRIG_OK;
}

void
sprig__hub_free(sprig__hub *h)
{
    if (!h) {
        return;
    }
    /* every subscriber held the engine, so none is left: no topics */
    for (size_t i = 0; i < h->n_buckets; i++) {
        for (topic *t = h->buckets[i], *next; t; t = next) {
            next = t->next;
            sprig__free(t->subs);
            sprig__free(t);
        }
    }
    pthread_rwlock_destroy(&h->lock);
    sprig__free(h->buckets);
    sprig__free(h);
}

static uint64_t
hash_bytes(sprig_bytes b)
{
    uint64_t x = 0xcbf29ce484222325ull; /* FNV-1a */
    const uint8_t *p = b.data;
    for (size_t i = 0; i < b.len; i++) {
        x = (x ^ p[i]) * 0x100000001b3ull;
    }
    return x;
}

static topic *
find(sprig__hub *h, sprig_bytes name, uint64_t hash)
{
    for (topic *t = h->buckets[hash % h->n_buckets]; t; t = t->next) {
        if (t->hash == hash && t->len == name.len &&
            memcmp(t->name, name.data, name.len) == 0) {
            return t;
        }
    }
    return NULL;
}

/* Double the table when it is fuller than one topic per bucket; a failed
 * allocation only leaves chains longer. */
static void
maybe_grow(sprig__hub *h)
{
    if (h->n_topics < h->n_buckets) {
        return;
    }
    size_t nb = h->n_buckets * 2;
    topic **b = sprig__calloc(nb, sizeof *b);
    if (!b) {
        return;
    }
    for (size_t i = 0; i < h->n_buckets; i++) {
        for (topic *t = h->buckets[i], *next; t; t = next) {
            next = t->next;
            t->next = b[t->hash % nb];
            b[t->hash % nb] = t;
        }
    }
    sprig__free(h->buckets);
    h->buckets = b;
    h->n_buckets = nb;
}

static topic *
topic_add(sprig__hub *h, sprig_bytes name, uint64_t hash)
{
    topic *t = sprig__calloc(1, sizeof *t + name.len);
    if (!t) {
        return NULL;
    }
    t->hash = hash;
    t->len = name.len;
    memcpy(t->name, name.data, name.len);
    maybe_grow(h);
    t->next = h->buckets[hash % h->n_buckets];
    h->buckets[hash % h->n_buckets] = t;
    h->n_topics++;
    return t;
}

static void
topic_remove(sprig__hub *h, topic *t)
{
    for (topic **p = &h->buckets[t->hash % h->n_buckets]; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    h->n_topics--;
    sprig__free(t->subs);
    sprig__free(t);
}

/* Make room for one more element in (arr, n, cap). */
static bool
reserve(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap) {
        return true;
    }
    size_t c = *cap ? *cap * 2 : 4;
    void *p = sprig__realloc(*arr, c * elem);
    if (!p) {
        return false;
    }
    *arr = p;
    *cap = c;
    return true;
}

/* Remove `x` from the pointer array (arr, *n) if present (order is not
 * kept).  Returns whether it was there. */
static bool
ptr_remove(void **arr, size_t *n, const void *x)
{
    for (size_t i = 0; i < *n; i++) {
        if (arr[i] == x) {
            arr[i] = arr[--*n];
            return true;
        }
    }
    return false;
}

/* ---- a subscriber's queue (its mutex held) ---------------------------- */

static void
sync_efd(lsub *s)
{
    uint64_t v = 1;
    if (s->n && !s->efd_set) {
        s->efd_set = write(s->efd, &v, sizeof v) == (ssize_t)sizeof v;
    } else if (!s->n && s->efd_set) {
        s->efd_set = !(read(s->efd, &v, sizeof v) == (ssize_t)sizeof v);
    }
}

static sprig_message *
pop(lsub *s)
{
    sprig_message *m = s->ring[s->head];
    s->head = (s->head + 1) % s->cap;
    s->n--;
    s->bytes -= sprig__message_size(m);
    return m;
}

static void
drop_oldest(lsub *s)
{
    sprig_message_free(pop(s));
    s->dropped++;
}

/* Grow the ring (up to max_msgs), keeping the messages in order. */
static bool
grow_ring(lsub *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    cap = cap < s->max_msgs ? cap : s->max_msgs;
    if (cap <= s->cap) {
        cap = s->cap + 1;
    }
    sprig_message **r = sprig__malloc(cap * sizeof *r);
    if (!r) {
        return false;
    }
    for (size_t i = 0; i < s->n; i++) {
        r[i] = s->ring[(s->head + i) % s->cap];
    }
    sprig__free(s->ring);
    s->ring = r;
    s->cap = cap;
    s->head = 0;
    return true;
}

/* Does a message of `size` bytes need older ones dropped first? */
static bool
over(const lsub *s, size_t size)
{
    return s->n >= s->max_msgs ||
           (s->max_bytes && s->bytes + size > s->max_bytes);
}

static void
deliver(lsub *s, sprig_message *m)
{
    size_t size = sprig__message_size(m);
    pthread_mutex_lock(&s->lock);
    while (s->n > 0 && over(s, size)) {
        drop_oldest(s);
    }
    if (s->n == s->cap && !grow_ring(s)) {
        s->dropped++; /* no memory: this one is lost */
    } else {
        s->ring[(s->head + s->n) % s->cap] = sprig__message_ref(m);
        s->n++;
        s->bytes += size;
        pthread_cond_signal(&s->cond);
    }
    sync_efd(s);
    pthread_mutex_unlock(&s->lock);
}

/* ---- publishing ------------------------------------------------------- */

/* Hand the message to this hub's subscribers of each topic. */
static int
hub_deliver(sprig__hub *h, const sprig_bytes *topics, size_t n,
            sprig_bytes payload)
{
    int rc = SPRIG_OK;
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; i < n && rc == 0; i++) {
        topic *t = find(h, topics[i], hash_bytes(topics[i]));
        if (!t || t->n_subs == 0) {
            continue;
        }
        sprig_message *m = sprig__message_new(topics[i], payload);
        if (!m) {
            rc = SPRIG_ENOMEM;
            break;
        }
        for (size_t j = 0; j < t->n_subs; j++) {
            deliver(t->subs[j], m);
        }
        sprig_message_free(m);
    }
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

/* A replicated storage: the message becomes a command that Raft orders;
 * every node's apply delivers it (sprig__pubsub_apply).  Waits for the
 * local apply, like any write through the seam. */
static int
publish_replicated(sprig__ldb *ldb, const sprig__repl *r,
                   const sprig_bytes *topics, size_t n, sprig_bytes payload)
{
    sprig__cmd c = {.kind = SPRIG__CMD_PUBLISH};
    c.now_ms = sprig__ldb_now(ldb);
    c.topics = topics;
    c.n_topics = n;
    c.payload = payload;
    int rc = sprig__repl_run(r, ldb->name, &c);
    sprig__cmd_clear(&c); /* nothing owned: clears out.value */
    return rc;
}

int
sprig__pubsub_publish(sprig_db *db, const sprig_bytes *topics, size_t n,
                      sprig_bytes payload)
{
    sprig__ldb *ldb = sprig__db_ldb(db);
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    const sprig__repl *r = atomic_load(&ldb->st->repl); /* one load */
    if (r) {
        return publish_replicated(ldb, r, topics, n, payload);
    }
    return hub_deliver(ldb->hub, topics, n, payload);
}

int
sprig__pubsub_apply(sprig__ldb *ldb, const sprig__cmd *cmd)
{
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    return hub_deliver(ldb->hub, cmd->topics, cmd->n_topics, cmd->payload);
}

bool
sprig__pubsub_replicated(const sprig_db *db)
{
    sprig__ldb *ldb = sprig__db_ldb((sprig_db *)db);
    return atomic_load(&ldb->st->repl) != NULL;
}

/* ---- subscriber operations -------------------------------------------- */

static int
subscribe_locked(sprig__hub *h, lsub *s, sprig_bytes name)
{
    uint64_t hash = hash_bytes(name);
    topic *t = find(h, name, hash);
    if (t) {
        for (size_t i = 0; i < t->n_subs; i++) {
            if (t->subs[i] == s) {
                return SPRIG_OK; /* already subscribed */
            }
        }
    } else if (!(t = topic_add(h, name, hash))) {
        return sprig__err(SPRIG_ENOMEM, "out of memory subscribing");
    }
    if (!reserve((void **)&t->subs, t->n_subs, &t->cap, sizeof *t->subs) ||
        !reserve((void **)&s->topics, s->n_topics, &s->cap_topics,
                 sizeof *s->topics)) {
        if (t->n_subs == 0) {
            topic_remove(h, t);
        }
        return sprig__err(SPRIG_ENOMEM, "out of memory subscribing");
    }
    t->subs[t->n_subs++] = s;
    s->topics[s->n_topics++] = t;
    return SPRIG_OK;
}

static int
s_subscribe(sprig_subscriber *base, sprig_bytes name)
{
    lsub *s = (lsub *)base;
    sprig__hub *h = s->ldb->hub;
    pthread_rwlock_wrlock(&h->lock);
    int rc = subscribe_locked(h, s, name);
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

/* Take `s` off topic `t` (hub lock held for writing). */
static void
leave(sprig__hub *h, lsub *s, topic *t)
{
    ptr_remove((void **)t->subs, &t->n_subs, s);
    if (t->n_subs == 0) {
        topic_remove(h, t);
    }
}

static int
s_unsubscribe(sprig_subscriber *base, sprig_bytes name)
{
    lsub *s = (lsub *)base;
    sprig__hub *h = s->ldb->hub;
    pthread_rwlock_wrlock(&h->lock);
    topic *t = find(h, name, hash_bytes(name));
    if (t && ptr_remove((void **)s->topics, &s->n_topics, t)) {
        leave(h, s, t);
    }
    pthread_rwlock_unlock(&h->lock);
    return SPRIG_OK;
}

/* Absolute CLOCK_MONOTONIC time `ms` from now. */
static struct timespec
deadline_in(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int
s_recv(sprig_subscriber *base, int timeout_ms, sprig_message **out)
{
    lsub *s = (lsub *)base;
    struct timespec until = deadline_in(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&s->lock);
    int err = 0;
    while (s->n == 0 && timeout_ms != 0 && err != ETIMEDOUT) {
        err = timeout_ms < 0
                  ? pthread_cond_wait(&s->cond, &s->lock)
                  : pthread_cond_timedwait(&s->cond, &s->lock, &until);
    }
    if (s->n) {
        *out = pop(s);
        sync_efd(s);
    }
    pthread_mutex_unlock(&s->lock);
    if (!*out) {
        return sprig__err(SPRIG_ETIMEDOUT, "no message within %d ms",
                          timeout_ms);
    }
    return SPRIG_OK;
}

static int
s_fd(sprig_subscriber *base)
{
    return ((lsub *)base)->efd;
}

static uint64_t
s_dropped(const sprig_subscriber *base)
{
    lsub *s = (lsub *)base;
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->dropped;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int
s_set_limits(sprig_subscriber *base, size_t max_messages, size_t max_bytes)
{
    lsub *s = (lsub *)base;
    pthread_mutex_lock(&s->lock);
    s->max_msgs = max_messages;
    s->max_bytes = max_bytes;
    while (s->n > max_messages ||
           (max_bytes && s->n > 1 && s->bytes > max_bytes)) {
        drop_oldest(s);
    }
    sync_efd(s);
    pthread_mutex_unlock(&s->lock);
    return SPRIG_OK;
}

static void
s_free(sprig_subscriber *base)
{
    lsub *s = (lsub *)base;
    sprig__ldb *ldb = s->ldb;
    sprig__hub *h = ldb->hub;
    pthread_rwlock_wrlock(&h->lock);
    for (size_t i = 0; i < s->n_topics; i++) {
        leave(h, s, s->topics[i]);
    }
    h->n_subs--;
    pthread_rwlock_unlock(&h->lock);
    while (s->n) {
        sprig_message_free(pop(s));
    }
    sprig__free(s->ring);
    sprig__free(s->topics);
    close(s->efd);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    sprig__free(s);
    sprig__storage_release(ldb->st, ldb, false);
}

static const sprig_subscriber_ops local_sub_ops = {
    .subscribe = s_subscribe,
    .unsubscribe = s_unsubscribe,
    .recv = s_recv,
    .fd = s_fd,
    .dropped = s_dropped,
    .set_limits = s_set_limits,
    .free = s_free,
};

static int
sub_init(lsub *s)
{
    pthread_condattr_t ca;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0) {
        return sprig__err(SPRIG_EIO, "cannot create an eventfd: %s",
                          strerror(errno));
    }
    int err = pthread_condattr_init(&ca);
    err = err ? err : pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    err = err ? err : pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (err || pthread_mutex_init(&s->lock, NULL)) {
        if (!err) {
            pthread_cond_destroy(&s->cond);
        }
        close(s->efd);
        return sprig__err(SPRIG_ENOMEM, "cannot create a subscriber's lock");
    }
    return SPRIG_OK;
}

int
sprig__pubsub_subscriber_new(sprig_db *db, sprig_subscriber **out)
{
    sprig__ldb *ldb = sprig__db_ldb(db);
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    lsub *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a subscriber");
    }
    int rc = sub_init(s);
    if (rc) {
        sprig__free(s);
        return rc;
    }
    s->base.ops = &local_sub_ops;
    s->ldb = ldb;
    s->max_msgs = SPRIG_SUBSCRIBER_QUEUE_MAX;
    s->max_bytes = SPRIG_SUBSCRIBER_QUEUE_BYTES;
    sprig__storage_retain(ldb->st, ldb);
    pthread_rwlock_wrlock(&ldb->hub->lock);
    ldb->hub->n_subs++;
    pthread_rwlock_unlock(&ldb->hub->lock);
    *out = &s->base;
    return SPRIG_OK;
}

/* ---- test seams ------------------------------------------------------- */

void
sprig__hub_counts(sprig_db *db, size_t *topics, size_t *subscribers)
{
    sprig__hub *h = sprig__db_ldb(db)->hub;
    pthread_rwlock_rdlock(&h->lock);
    *topics = h->n_topics;
    *subscribers = h->n_subs;
    pthread_rwlock_unlock(&h->lock);
}
