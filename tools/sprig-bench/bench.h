/*
 * bench.h -- private header of `sprig-bench`, the load generator for a
 * Sprig server (like redis-benchmark: clients, requests, pipeline depth,
 * operation).  It speaks protocol sprig/1 directly over the transport of
 * src/transport (no client library in between):
 *
 *   main.c     options, the order of the tests, the report (text or CSV)
 *   frames.c   request templates (encoded once, then patched: id, key,
 *              value) and the checks every answer passes
 *   driver.c   the client threads: each runs one libuv loop with its
 *              share of the connections, each connection keeping
 *              `pipeline` requests in flight, answers matched by id
 *   hist.c     a log-linear latency histogram (HDR-style, ~3 % buckets)
 *   tcpping.c  the physical limit: a raw TCP ping-pong on loopback
 *
 * Data is deterministic, so a get can check what it reads: key k of the
 * key-value tests is "key:%012u" (redis-benchmark's "key:__rand_int__"),
 * document k has the 8-byte big-endian id k, and both hold value(k) of
 * `datasize` bytes (bench_value()).  `--load` writes them first.
 */
#ifndef SPRIG_BENCH_H
#define SPRIG_BENCH_H

#include <sprig/sprig.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* ---- hist.c ------------------------------------------------------------ */

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64 * HIST_SUB)

/** Latencies in nanoseconds, counted in log-linear buckets. */
typedef struct hist {
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_add(hist *h, uint64_t ns);
void hist_merge(hist *dst, const hist *src);
/** The value at quantile q (0..1), in ns (a bucket's upper edge). */
uint64_t hist_quantile(const hist *h, double q);

/* ---- frames.c ------------------------------------------------------------ */

typedef enum bench_op {
    OP_KV_SET,    /* kv.set of key k to value(k)                   */
    OP_KV_GET,    /* kv.get of key k: must answer value(k)         */
    OP_DB_GET,    /* db.get of document k: must answer value(k)    */
    OP_DB_INSERT, /* db.apply of one insert (pushed id), value(k)  */
    OP_DB_LOAD,   /* db.apply of LOAD_BATCH overwrites (--load)    */
    OP_COUNT
} bench_op;

#define LOAD_BATCH 100

typedef struct bench_cfg {
    const char *url, *db, *collection, *ns;
    unsigned clients, pipeline, threads;
    uint64_t requests;
    uint32_t datasize, keyspace;
    unsigned timeout_s;
    uint64_t seed;
    bool quiet, csv;
    const char *tt_host; /* --tarantool HOST:PORT: IPROTO, not sprig/1 */
    int tt_port;
    uint32_t tt_space;    /* the space of the documents (--tt-space) */
    const char *pin;      /* --pin SHA256: wss/quic certificate fingerprint */
    const char *user;     /* --user: each connection logs in (auth.password) */
    const char *password; /* from --password-env VAR */
} bench_cfg;

/** A request template: one whole frame, with the offsets of the parts
 *  that change from request to request. */
typedef struct frame_tpl {
    bench_op op;
    sprig_buf buf;    /* the frame                                   */
    size_t id_off;    /* 4 bytes, big-endian (uint32 0xce)           */
    size_t key_off;   /* 12 ASCII digits of "key:%012u", or SIZE_MAX */
    size_t docid_off; /* 8 bytes big-endian id, or SIZE_MAX          */
    size_t val_off;   /* value(k) bytes, or SIZE_MAX                 */
} frame_tpl;

const char *bench_op_name(bench_op op);
/** Parse "kv.set" ...; -1 when unknown. */
int bench_op_parse(const char *s);

/** Write value(k) (`len` bytes) into `out`. */
void bench_value(uint64_t k, uint32_t len, uint8_t *out);
/** Encode the template of `op`; 0 or -1 (message on stderr). */
int frame_tpl_init(frame_tpl *t, bench_op op, const bench_cfg *cfg);
void frame_tpl_free(frame_tpl *t);
/** The request id of the login: the runs' ids stay below it. */
#define BENCH_LOGIN_ID UINT32_MAX
/** The login frame (auth.password as cfg->user, id BENCH_LOGIN_ID); 0 or
 *  -1.  Wipe it (it holds the password) when done. */
int frame_login(sprig_buf *b, const bench_cfg *cfg);
/** Patch request id and item k into the template (in place). */
void frame_tpl_patch(frame_tpl *t, uint32_t id, uint64_t k,
                     const bench_cfg *cfg);

/** Check an answer to a request of `op` for item k.  `scratch` has room
 *  for `datasize` bytes.  0, or -1 with a sentence in `why`. */
int frame_check(bench_op op, uint64_t k, const uint8_t *payload, size_t len,
                const bench_cfg *cfg, uint8_t *scratch, char *why,
                size_t why_len);

/** The offset of the bytes of the bin value `v` in `frame` (found by its
 *  encoding, MessagePack header included), or SIZE_MAX. */
size_t frame_find_bin(const sprig_buf *frame, sprig_bytes v);
/** Position `r` (initialised here) at the value of field `name` of the
 *  MessagePack map in `payload`; 0, or -1 when there is no such field. */
struct sprig__mp_rd;
int frame_field(const uint8_t *payload, size_t len, const char *name,
                struct sprig__mp_rd *r);

/* ---- iproto.c ----------------------------------------------------------- */

/** One IPROTO answer: header fields and the body (borrowed). */
typedef struct iproto_answer {
    uint64_t code, sync;
    sprig_bytes body;
} iproto_answer;

/** The template of a db.get or db.insert request to Tarantool (the sync
 *  plays the request id's part); 0 or -1 (message on stderr). */
int iproto_tpl_init(frame_tpl *t, bench_op op, const bench_cfg *cfg);
/** As frame_tpl_patch, for a template of iproto_tpl_init. */
void iproto_tpl_patch(frame_tpl *t, uint32_t id, uint64_t k,
                      const bench_cfg *cfg);
/** Split the first whole answer off `p`: its length, 0 when incomplete,
 *  -1 when malformed. */
long iproto_split(const uint8_t *p, size_t n, iproto_answer *a);
/** As frame_check, for an IPROTO answer. */
int iproto_check(bench_op op, uint64_t k, const iproto_answer *a,
                 const bench_cfg *cfg, uint8_t *scratch, char *why,
                 size_t why_len);

/* ---- driver.c ------------------------------------------------------------ */

/** What one test (or load) measured. */
typedef struct bench_result {
    uint64_t done, errors;
    uint64_t out_of_order; /* pubsub: messages that overtook an earlier one */
    double seconds;
    hist lat;
    char first_error[256];
} bench_result;

/** Connect `cfg->clients` connections; 0 or -1 (message on stderr). */
int driver_start(const bench_cfg *cfg);
/** Run `n` requests of `op`.  `sequential`: items 0, 1, 2, ... (loading)
 *  instead of random ones.  Returns 0 when the run completed (errors are
 *  counted in `out`), -1 when it could not (connections lost, timeout). */
int driver_run(bench_op op, uint64_t n, bool sequential, bench_result *out);
/** Close the connections and join the threads. */
void driver_stop(void);

/* ---- tcpping.c ----------------------------------------------------------- */

/** Raw TCP ping-pong on 127.0.0.1 with `clients` connections for about
 *  `seconds`; prints round trips per second (CSV row when csv).  Exit
 *  status. */
int tcp_ping(unsigned clients, double seconds, bool csv);

/* ---- pubsub.c, resp.c ---------------------------------------------------- */

/** Messages a subscriber may receive ahead of the first one it has not:
 *  a bound on --window. */
#define PS_RING 8192

/** One connection of a PubSub run: c[0] publishes, the others subscribe. */
typedef struct ps_conn {
    bool pub, ready, dead;
    struct sprig__conn *ws; /* Sprig: the WebSocket connection        */
    uv_tcp_t tcp;           /* Redis: the socket                      */
    uv_connect_t creq;
    sprig_buf in, out;           /* Redis: read and not parsed; to write   */
    uint64_t sub_id;             /* Sprig: the server's subscriber number  */
    uint64_t received;           /* messages 0 ... received-1 all arrived */
    uint64_t seen[PS_RING / 64]; /* which of the next PS_RING arrived */
} ps_conn;

/** The state of the PubSub run (one thread, one loop). */
typedef struct ps_state {
    const bench_cfg *cfg;
    const char *redis_host;
    int redis_port; /* 0: a Sprig server at cfg->url */
    uv_loop_t loop;
    uv_timer_t timer;
    uv_prepare_t flush; /* Redis: writes what each connection queued */
    ps_conn *c;
    unsigned n, n_ready, n_closed, window;
    uint64_t total, published, inflight, t_start, t_end;
    bool started, failed, closing;
    sprig_buf tpl; /* the publish request */
    size_t id_off, pay_off;
    bench_result res;
} ps_state;

/** Run `n` messages from one publisher to cfg->clients subscribers of a
 *  Sprig server (redis_port 0) or of Redis at redis_host:redis_port, at
 *  most cfg->pipeline publishes unanswered and `window` messages not yet
 *  received by all.  Returns 0 when every message reached every
 *  subscriber intact and in order; else -1 (the first error is in
 *  out->first_error). */
int pubsub_run(const bench_cfg *cfg, const char *redis_host, int redis_port,
               uint64_t n, unsigned window, bench_result *out);

/* Called by the protocol halves (pubsub.c for Sprig, resp.c for Redis). */
void ps_ready(ps_conn *c); /* subscribed (or the publisher is open) */
void ps_delivered(ps_conn *c, const uint8_t *data, size_t len);
void ps_publish_answered(int64_t receivers); /* -1: not counted */
void ps_publish_more(void);
void ps_closed(ps_conn *c, int code, const char *reason);
void ps_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Redis: connect `c` (SUBSCRIBE when a subscriber; ps_ready follows);
 *  0 or -1 (message on stderr). */
int resp_connect(ps_conn *c, uv_loop_t *loop, const char *host, int port);
/** Queue bytes on `c` (written by resp_flush_all); 0 or -1. */
int resp_send(ps_conn *c, const uint8_t *data, size_t len);
/** The uv_prepare callback that writes every connection's queue. */
void resp_flush_all(uv_prepare_t *p);
void resp_close(ps_conn *c);
/** The PUBLISH command carrying `payload`, and where the payload is. */
int resp_template(sprig_buf *out, size_t *pay_off, const uint8_t *payload,
                  uint32_t len);
/** The one PubSub run (pubsub.c); read by resp.c on the same thread. */
extern ps_state ps;

/* ---- main.c -------------------------------------------------------------- */

/** Monotonic nanoseconds. */
uint64_t bench_now_ns(void);

#endif
