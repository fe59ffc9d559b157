/*
 * subscriber.c -- a PubSub subscriber over the network.
 *
 * The server holds a real subscriber for this connection and pushes its
 * messages ("pubsub.message" frames).  Here each remote subscriber keeps
 * its own bounded queue, filled by the loop thread and drained by
 * sprig_subscriber_recv(), with an eventfd readable exactly while messages
 * wait -- the same behaviour as a local subscriber, overflow included (the
 * oldest message is dropped and counted).
 *
 * A subscription lives on its connection: when that connection closes,
 * the subscriber is dead -- recv() returns SPRIG_ECLOSED once its queue is
 * empty, and the program makes a new subscriber (after the client
 * reconnects).  That is said plainly rather than losing messages silently.
 */
#include "client/client_int.h"

#include <errno.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct remote_sub {
    sprig_subscriber base;
    remote_sub *next; /* in the client's list (client lock) */
    sprig_client *client;
    char db[SPRIG_NAME_MAX + 1];
    uint64_t id;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    int efd;
    sprig_message **q; /* ring */
    size_t head, n, cap, bytes;
    size_t max_messages, max_bytes;
    uint64_t dropped;
    bool dead;
};

#define RS(s) ((remote_sub *)(s))

/* ---- the loop thread's side -------------------------------------------- */

static void
signal_ready(remote_sub *s)
{
    uint64_t one = 1;
    if (write(s->efd, &one, 8) < 0 && errno != EAGAIN) {
        /* nothing to do: recv still works by the condition variable */
    }
    pthread_cond_broadcast(&s->cond);
}

static void
drop_oldest(remote_sub *s)
{
    sprig_message *m = s->q[s->head];
    s->bytes -= sprig_message_payload(m).len;
    sprig_message_free(m);
    s->head = (s->head + 1) % s->cap;
    s->n--;
    s->dropped++;
}

/* Queue a message (sub lock held); the oldest go when full. */
static void
enqueue(remote_sub *s, sprig_message *m)
{
    size_t len = sprig_message_payload(m).len;
    while (s->n && (s->n >= s->max_messages || s->bytes + len > s->max_bytes)) {
        drop_oldest(s);
    }
    if (s->n == s->cap) {
        s->dropped++;
        sprig_message_free(m);
        return;
    }
    s->q[(s->head + s->n) % s->cap] = m;
    s->n++;
    s->bytes += len;
    signal_ready(s);
}

void
sprig__client_push_message(sprig_client *c, sprig_bytes payload)
{
    sprig__message_push p = {0};
    if (sprig__api_decode(payload, sprig__message_push_fields,
                          sprig__message_push_n, &p) != 0) {
        return; /* a malformed push is dropped */
    }
    for (remote_sub *s = c->subs; s; s = s->next) {
        if (s->id == p.subscriber) {
            sprig_message *m = sprig__message_new(p.topic, p.payload);
            pthread_mutex_lock(&s->lock);
            if (m) {
                enqueue(s, m);
            } else {
                s->dropped++;
            }
            pthread_mutex_unlock(&s->lock);
            break;
        }
    }
}

void
sprig__client_subs_closed(sprig_client *c)
{
    for (remote_sub *s = c->subs; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        s->dead = true;
        signal_ready(s);
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---- operations (any thread) -------------------------------------------- */

static int
topic_call(sprig_subscriber *sub, const sprig__api *api, sprig_bytes topic)
{
    remote_sub *s = RS(sub);
    sprig__topic_req req = {s->id, topic};
    sprig__empty resp = {0};
    pthread_mutex_lock(&s->lock);
    bool dead = s->dead;
    pthread_mutex_unlock(&s->lock);
    if (dead) {
        return sprig__err(SPRIG_ECLOSED, "the subscriber's connection "
                                         "closed; make a new subscriber");
    }
    return sprig__client_call(s->client, api, &req, &resp);
}

static int
rs_subscribe(sprig_subscriber *sub, sprig_bytes topic)
{
    return topic_call(sub, &sprig__api_subscribe, topic);
}

static int
rs_unsubscribe(sprig_subscriber *sub, sprig_bytes topic)
{
    return topic_call(sub, &sprig__api_unsubscribe, topic);
}

/* Take the oldest message (lock held, queue not empty). */
static sprig_message *
pop(remote_sub *s)
{
    sprig_message *m = s->q[s->head];
    s->head = (s->head + 1) % s->cap;
    s->n--;
    s->bytes -= sprig_message_payload(m).len;
    if (s->n == 0 && !s->dead) {
        uint64_t v;
        if (read(s->efd, &v, 8) < 0) { /* reset: not readable any more */
            v = 0;
        }
    }
    return m;
}

static int
wait_message(remote_sub *s, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (s->n == 0 && !s->dead) {
        if (timeout_ms == 0) {
            return SPRIG_ETIMEDOUT;
        }
        int w = timeout_ms < 0
                    ? pthread_cond_wait(&s->cond, &s->lock)
                    : pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (w == ETIMEDOUT && s->n == 0) {
            return SPRIG_ETIMEDOUT;
        }
    }
    return SPRIG_OK;
}

static int
rs_recv(sprig_subscriber *sub, int timeout_ms, sprig_message **out)
{
    remote_sub *s = RS(sub);
    pthread_mutex_lock(&s->lock);
    int rc = wait_message(s, timeout_ms);
    if (rc == 0 && s->n) {
        *out = pop(s);
    } else if (rc == 0) {
        rc = sprig__err(SPRIG_ECLOSED, "the subscriber's connection closed; "
                                       "make a new subscriber");
    } else {
        sprig__err(rc, "no message within %d ms", timeout_ms);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int
rs_fd(sprig_subscriber *sub)
{
    return RS(sub)->efd;
}

static uint64_t
rs_dropped(const sprig_subscriber *sub)
{
    remote_sub *s = RS(sub);
    pthread_mutex_lock(&s->lock);
    uint64_t d = s->dropped;
    pthread_mutex_unlock(&s->lock);
    return d;
}

static int
rs_set_limits(sprig_subscriber *sub, size_t max_messages, size_t max_bytes)
{
    remote_sub *s = RS(sub);
    pthread_mutex_lock(&s->lock);
    s->max_messages = max_messages < s->cap ? max_messages : s->cap;
    s->max_bytes = max_bytes;
    while (s->n > s->max_messages || s->bytes > s->max_bytes) {
        drop_oldest(s);
    }
    pthread_mutex_unlock(&s->lock);
    return SPRIG_OK;
}

static void
unlink_sub(remote_sub *s)
{
    sprig_client *c = s->client;
    pthread_mutex_lock(&c->lock);
    for (remote_sub **p = &c->subs; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

static void
rs_free(sprig_subscriber *sub)
{
    remote_sub *s = RS(sub);
    unlink_sub(s);
    if (!s->dead) {
        sprig__subscriber_req req = {s->id};
        sprig__empty resp = {0};
        sprig__client_call(s->client, &sprig__api_subscriber_free, &req,
                           &resp); /* best effort: it dies with the conn */
    }
    while (s->n) {
        sprig_message_free(pop(s));
    }
    close(s->efd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    sprig__free(s->q);
    sprig__free(s);
}

static const sprig_subscriber_ops remote_sub_ops = {
    .subscribe = rs_subscribe,
    .unsubscribe = rs_unsubscribe,
    .recv = rs_recv,
    .fd = rs_fd,
    .dropped = rs_dropped,
    .set_limits = rs_set_limits,
    .free = rs_free,
};

/* Defaults as a local subscriber's (sprig.h): 4096 messages, 64 MiB. */
#define DEFAULT_MAX_MESSAGES 4096
#define DEFAULT_MAX_BYTES (64u << 20)

static int
sub_alloc(remote_db *db, remote_sub **out)
{
    remote_sub *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    s->cap = s->max_messages = DEFAULT_MAX_MESSAGES;
    s->max_bytes = DEFAULT_MAX_BYTES;
    s->q = sprig__calloc(s->cap, sizeof *s->q);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!s->q || s->efd < 0) {
        if (s->efd >= 0) {
            close(s->efd);
        }
        sprig__free(s->q);
        sprig__free(s);
        return sprig__err(SPRIG_ENOMEM, "cannot make a subscriber");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->lock, NULL);
    s->base.ops = &remote_sub_ops;
    s->client = db->client;
    snprintf(s->db, sizeof s->db, "%s", db->name);
    *out = s;
    return SPRIG_OK;
}

int
sprig__r_subscriber_new(sprig_db *db, sprig_subscriber **out)
{
    remote_db *rdb = (remote_db *)db;
    remote_sub *s = NULL;
    int rc = sub_alloc(rdb, &s);
    if (rc) {
        return rc;
    }
    /* listed once the server made it: no push can come for it before
     * it subscribes to a topic, which needs the id */
    sprig_client *c = rdb->client;
    sprig__db_req req = {rdb->name};
    sprig__subscriber_resp resp = {0};
    rc = sprig__client_call(c, &sprig__api_subscriber_new, &req, &resp);
    if (rc) {
        s->dead = true;
        rs_free(&s->base);
        return rc;
    }
    s->id = resp.subscriber;
    pthread_mutex_lock(&c->lock);
    s->next = c->subs;
    c->subs = s;
    pthread_mutex_unlock(&c->lock);
    *out = &s->base;
    return SPRIG_OK;
}
