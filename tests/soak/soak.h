/*
 * soak.h -- private header of `sprig-soak` (tests/soak/), the soak test of
 * issue 17 item 6: many connections of mixed load against a Sprig server
 * in a process of its own, then every acknowledged write read back, the
 * server's memory, file descriptors and threads checked against their
 * bounds after the clients leave, and latency quantiles per operation.
 *
 *   soak_main.c    options, the rounds, the checks, the report
 *   soak_load.c    the load: worker connections (inserts, gets, view
 *                  queries, key-value sets and gets, publishes) and
 *                  subscriber connections; the read-back of acked writes
 *   soak_server.c  the server process (fork: sprig_server_new on a
 *                  storage directory, authentication enforced, one user)
 *                  and its /proc figures
 *
 * What a worker writes is deterministic, so acks are recorded as counts:
 * worker w's documents are "w%04u-%010llu" for 0 .. n_docs-1 with
 * contents soak_doc_body(w, i); its key-value key k holds version
 * kv_ver[k] (0: never set); its PubSub messages carry sequence numbers
 * 0 .. published-1.
 */
#ifndef SPRIG_SOAK_H
#define SPRIG_SOAK_H

#include <sprig/sprig.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SOAK_DB "soak"
#define SOAK_COLL "docs"
#define SOAK_VIEW "by-worker"
#define SOAK_NS "soak"
#define SOAK_TOPIC "soak"
#define SOAK_USER "soak"
#define SOAK_PASSWORD "soak-password"
#define SOAK_KV_KEYS 16

typedef enum soak_op {
    SOAK_OP_INSERT,
    SOAK_OP_GET,
    SOAK_OP_VIEW,
    SOAK_OP_KV_SET,
    SOAK_OP_KV_GET,
    SOAK_OP_PUBLISH,
    SOAK_OPS
} soak_op;

/** Latencies of one operation, in microseconds (a growing array). */
typedef struct soak_lat {
    uint32_t *us;
    size_t n, cap;
} soak_lat;

/** One worker: its acks (what the server answered OK) and latencies.
 *  Written by its thread during a round, read by the main thread after. */
typedef struct soak_worker {
    unsigned idx;
    uint64_t rng;
    uint64_t n_docs;
    uint64_t kv_ver[SOAK_KV_KEYS];
    _Atomic uint64_t published;
    soak_lat lat[SOAK_OPS];
    uint64_t errors;
    char first_error[256];
} soak_worker;

/** One subscriber connection's tally of the messages it received. */
typedef struct soak_sub {
    unsigned idx;
    uint64_t *next; /* per worker: the next sequence number expected */
    uint64_t received, missed, disorder, dropped;
    uint64_t errors;
    char first_error[256];
} soak_sub;

/** The run. */
typedef struct soak {
    char url[64];
    unsigned seconds, rounds, workers, subs;
    uint64_t seed;
    soak_worker *w;
    soak_sub *s;
    atomic_bool stop;         /* workers: the round is over */
    atomic_bool workers_done; /* subscribers: drain, then leave */
    atomic_uint subs_ready;
} soak;

/* ---- soak_load.c --------------------------------------------------------- */

/** Contents of document i of worker w (JSON) into buf; its length. */
size_t soak_doc_body(unsigned w, uint64_t i, char *buf, size_t n);
/** One round: subscribers connect and subscribe, workers run for
 *  `seconds`, subscribers drain.  Errors are counted in the workers and
 *  subscribers; returns 0, or -1 when threads could not be started. */
int soak_round(soak *s, unsigned seconds);
/** Read back every acknowledged write through `db` (any placement):
 *  documents, view counts, key-value values.  0, or -1 with a sentence in
 *  `why`. */
int soak_verify(soak *s, sprig_db *db, char *why, size_t why_len);
/** The name of an operation ("insert", "view query", ...). */
const char *soak_op_name(soak_op op);
/** One connection opens the database on the server (its handle, view
 *  and key-value machinery start) and leaves: what the baseline of the
 *  server's figures is taken after.  A Sprig code. */
int soak_warm_up(soak *s);
/** Connect and log in to s->url and open the soak database. */
int soak_connect(const soak *s, sprig_storage **st, sprig_db **db);

/* ---- soak_server.c ------------------------------------------------------- */

/** Start the server process on storage `dir` (fork); its pid, and the
 *  WebSocket port in *port.  -1 on failure (message on stderr). */
pid_t soak_server_start(const char *dir, int *port);
/** SIGTERM and wait; the exit status (0: clean, also under ASan's leak
 *  check), or -1. */
int soak_server_stop(pid_t pid);

/** What /proc says of a process. */
typedef struct soak_proc {
    long rss_kb, rss_anon_kb, fds, threads;
} soak_proc;

/** Read /proc/PID/status and /proc/PID/fd; 0 or -1. */
int soak_proc_read(pid_t pid, soak_proc *out);

/** Milliseconds of the monotonic clock. */
uint64_t soak_now_us(void);

#endif
