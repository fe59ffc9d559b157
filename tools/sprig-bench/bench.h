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
/** Patch request id and item k into the template (in place). */
void frame_tpl_patch(frame_tpl *t, uint32_t id, uint64_t k,
                     const bench_cfg *cfg);

/** Check an answer to a request of `op` for item k.  `scratch` has room
 *  for `datasize` bytes.  0, or -1 with a sentence in `why`. */
int frame_check(bench_op op, uint64_t k, const uint8_t *payload, size_t len,
                const bench_cfg *cfg, uint8_t *scratch, char *why,
                size_t why_len);

/* ---- driver.c ------------------------------------------------------------ */

/** What one test (or load) measured. */
typedef struct bench_result {
    uint64_t done, errors;
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

/* ---- main.c -------------------------------------------------------------- */

/** Monotonic nanoseconds. */
uint64_t bench_now_ns(void);

#endif
