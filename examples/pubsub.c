/*
 * pubsub.c -- Sprig's publish/subscribe hub, the counterpart of BonsaiDb's
 * pubsub example.  Every database carries a PubSub hub: subscribers
 * subscribe to topics, and whatever is published to a topic reaches every
 * subscriber of it at that moment.  Nothing is stored.
 *
 * A "pinger" thread publishes a numbered "ping" every 50 ms.  A "ponger"
 * thread subscribes to "ping" and answers each of five pings with a "pong"
 * carrying how many pings it still waits for.  The main thread subscribes
 * to "pong" and waits for messages the way an event loop would: poll() on
 * the subscriber's file descriptor, then sprig_subscriber_recv() with no
 * wait.  (The ponger uses a blocking receive instead.)  Pings sent before
 * the ponger subscribed reach nobody, which is why the pinger keeps going.
 *
 * Build (outside the Sprig tree, after `make install`):
 *     cc pubsub.c $(pkg-config --cflags --libs sprig) -lpthread -o pubsub
 * Run:
 *     ./pubsub [DIRECTORY]        (default: pubsub.sprig)
 */
#include <sprig/sprig.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NUMBER_OF_PONGS 5

/* PubSub is independent of stored data: a schema with no collections. */
static const sprig_schema_def schema = {.name = "pubsub"};

static atomic_bool done;

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != 0) {                                                        \
            fprintf(stderr, "pubsub: %s: %s: %s\n", #call,                     \
                    sprig_strerror(rc_), sprig_errmsg());                      \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Payloads are bytes; these carry a number as text. */
static unsigned
payload_number(const sprig_message *m)
{
    char buf[24] = {0};
    sprig_bytes p = sprig_message_payload(m);
    for (size_t i = 0; i < p.len && i < sizeof buf - 1; i++) {
        buf[i] = ((const char *)p.data)[i];
    }
    return (unsigned)strtoul(buf, NULL, 10);
}

static void
publish_number(sprig_db *db, const char *topic, unsigned n)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%u", n);
    CHECK(sprig_publish(db, sprig_str(topic), sprig_str(buf)));
}

static void *
pinger(void *arg)
{
    sprig_db *db = arg;
    for (unsigned ping = 1; !atomic_load(&done); ping++) {
        printf("-> Sending ping %u\n", ping);
        publish_number(db, "ping", ping);
        usleep(50000);
    }
    return NULL;
}

static void *
ponger(void *arg)
{
    sprig_db *db = arg;
    sprig_subscriber *sub;
    CHECK(sprig_subscriber_new(db, &sub));
    CHECK(sprig_subscribe(sub, sprig_str("ping")));
    unsigned remaining = NUMBER_OF_PONGS;
    printf("Ponger started, waiting to respond to %u pings\n", remaining);
    while (remaining > 0) {
        sprig_message *m;
        CHECK(sprig_subscriber_recv(sub, -1, &m)); /* wait for ever */
        printf("<- Received ping, id %u\n", payload_number(m));
        sprig_message_free(m);
        remaining--;
        publish_number(db, "pong", remaining);
    }
    printf("Ponger finished.\n");
    sprig_subscriber_free(sub); /* unsubscribes from everything */
    return NULL;
}

int
main(int argc, char **argv)
{
    sprig_db *db;
    CHECK(
        sprig_db_open_local(argc > 1 ? argv[1] : "pubsub.sprig", &schema, &db));
    sprig_subscriber *sub;
    CHECK(sprig_subscriber_new(db, &sub));
    CHECK(sprig_subscribe(sub, sprig_str("pong")));

    /* Handles may be shared by threads. */
    pthread_t ping_thread, pong_thread;
    pthread_create(&ping_thread, NULL, pinger, db);
    pthread_create(&pong_thread, NULL, ponger, db);

    /* An event loop's view: the fd is readable while messages wait. */
    struct pollfd pfd = {.fd = sprig_subscriber_fd(sub), .events = POLLIN};
    unsigned remaining = NUMBER_OF_PONGS;
    while (remaining > 0 && poll(&pfd, 1, 10000) > 0) {
        sprig_message *m;
        while (remaining > 0 && sprig_subscriber_recv(sub, 0, &m) == 0) {
            remaining = payload_number(m);
            printf("<-- Received pong, pings remaining: %u\n", remaining);
            sprig_message_free(m);
        }
    }
    printf(remaining == 0 ? "Received all pongs.\n" : "Gave up waiting.\n");

    atomic_store(&done, true);
    pthread_join(ping_thread, NULL);
    pthread_join(pong_thread, NULL);
    sprig_subscriber_free(sub);
    sprig_db_close(db);
    return remaining == 0 ? 0 : 1;
}
