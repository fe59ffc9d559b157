/*
 * pubsub_api.c -- the public PubSub functions (F7) and the message object.
 *
 * Part of src/core, like api.c: publishing dispatches through the database
 * handle's operations table; a `sprig_subscriber` is a handle of its own
 * with a small operations table (sprig_subscriber_ops), so the local hub
 * (src/local/pubsub.c) and a remote client implement the same calls.
 * Arguments are checked here.  Messages are immutable and
 * reference-counted, so one copy of a payload serves every subscriber it
 * reaches, from any thread.
 */
#include "core.h"

#define CHECK_ARG(cond, what)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            return sprig__err(SPRIG_EINVAL, "%s", what);                       \
        }                                                                      \
    } while (0)

/* ---- messages --------------------------------------------------------- */

sprig_message *
sprig__message_new(sprig_bytes topic, sprig_bytes payload)
{
    sprig_message *m = sprig__malloc(sizeof *m + topic.len + payload.len);
    if (!m) {
        sprig__err(SPRIG_ENOMEM, "out of memory for a message");
        return NULL;
    }
    m->refs = 1;
    m->topic_len = topic.len;
    m->payload_len = payload.len;
    if (topic.len) {
        memcpy(m->data, topic.data, topic.len);
    }
    m->payload = m->data + topic.len;
    if (payload.len) {
        memcpy(m->payload, payload.data, payload.len);
    }
    return m;
}

sprig_message *
sprig__message_ref(sprig_message *m)
{
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

size_t
sprig__message_size(const sprig_message *m)
{
    return m->topic_len + m->payload_len;
}

sprig_bytes
sprig_message_topic(const sprig_message *m)
{
    return m ? (sprig_bytes){m->data, m->topic_len} : (sprig_bytes){NULL, 0};
}

sprig_bytes
sprig_message_payload(const sprig_message *m)
{
    return m ? (sprig_bytes){m->payload, m->payload_len}
             : (sprig_bytes){NULL, 0};
}

void
sprig_message_free(sprig_message *m)
{
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        sprig__free(m);
    }
}

/* ---- argument checks -------------------------------------------------- */

static int
check_topic(sprig_bytes topic)
{
    CHECK_ARG(topic.len && topic.data, "topic is empty");
    if (topic.len > SPRIG_TOPIC_MAX) {
        return sprig__err(SPRIG_ETOOBIG, "topic has %zu bytes; the limit is %d",
                          topic.len, SPRIG_TOPIC_MAX);
    }
    return SPRIG_OK;
}

static int
check_payload(sprig_bytes payload)
{
    CHECK_ARG(payload.data || !payload.len, "payload has bytes at NULL");
    if (payload.len > SPRIG_PAYLOAD_MAX) {
        return sprig__err(SPRIG_ETOOBIG,
                          "payload has %zu bytes; the limit is %u", payload.len,
                          (unsigned)SPRIG_PAYLOAD_MAX);
    }
    return SPRIG_OK;
}

/* A placement without PubSub (yet) says so instead of crashing. */
static int
check_supported(sprig_db *db)
{
    if (!db->ops->publish || !db->ops->subscriber_new) {
        return sprig__err(SPRIG_EPROTO,
                          "this database handle does not offer PubSub");
    }
    return SPRIG_OK;
}

/* ---- publishing ------------------------------------------------------- */

int
sprig_publish(sprig_db *db, sprig_bytes topic, sprig_bytes payload)
{
    CHECK_ARG(db, "database handle is NULL");
    int rc = check_supported(db);
    rc = rc ? rc : check_topic(topic);
    rc = rc ? rc : check_payload(payload);
    return rc ? rc : db->ops->publish(db, &topic, 1, payload);
}

int
sprig_publish_to_all(sprig_db *db, const sprig_bytes *topics, size_t n,
                     sprig_bytes payload)
{
    CHECK_ARG(db, "database handle is NULL");
    CHECK_ARG(topics || n == 0, "topics is NULL");
    int rc = check_supported(db);
    rc = rc ? rc : check_payload(payload);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = check_topic(topics[i]);
    }
    if (rc || n == 0) {
        return rc;
    }
    return db->ops->publish(db, topics, n, payload);
}

/* ---- subscribers ------------------------------------------------------ */

int
sprig_subscriber_new(sprig_db *db, sprig_subscriber **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(db, "database handle is NULL");
    int rc = check_supported(db);
    return rc ? rc : db->ops->subscriber_new(db, out);
}

int
sprig_subscribe(sprig_subscriber *s, sprig_bytes topic)
{
    CHECK_ARG(s, "subscriber is NULL");
    int rc = check_topic(topic);
    return rc ? rc : s->ops->subscribe(s, topic);
}

int
sprig_unsubscribe(sprig_subscriber *s, sprig_bytes topic)
{
    CHECK_ARG(s, "subscriber is NULL");
    int rc = check_topic(topic);
    return rc ? rc : s->ops->unsubscribe(s, topic);
}

int
sprig_subscriber_recv(sprig_subscriber *s, int timeout_ms, sprig_message **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(s, "subscriber is NULL");
    CHECK_ARG(timeout_ms >= -1, "timeout_ms is below -1");
    return s->ops->recv(s, timeout_ms, out);
}

int
sprig_subscriber_fd(sprig_subscriber *s)
{
    return s ? s->ops->fd(s) : -1;
}

uint64_t
sprig_subscriber_dropped(const sprig_subscriber *s)
{
    return s ? s->ops->dropped(s) : 0;
}

int
sprig_subscriber_set_limits(sprig_subscriber *s, size_t max_messages,
                            size_t max_bytes)
{
    CHECK_ARG(s, "subscriber is NULL");
    CHECK_ARG(max_messages > 0, "a queue must hold at least one message");
    return s->ops->set_limits(s, max_messages, max_bytes);
}

void
sprig_subscriber_free(sprig_subscriber *s)
{
    if (s) {
        s->ops->free(s);
    }
}
