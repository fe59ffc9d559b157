/*
 * lin_record.c -- `sprig-lin-record`: records a history of concurrent
 * reads, writes and compare-and-sets on a few registers of a Sprig
 * placement (a server, a URL list of cluster nodes, or a local path), in
 * the JSON-lines format tools/lincheck/lincheck.py checks (issue 18: the
 * Jepsen-style test of the cluster records its history with it).
 *
 * Registers are documents of collection "regs" (u64 ids 1..K) in database
 * "lin" (schema "lincheck", made when missing); a register's value is its
 * document's contents, a decimal integer, absent = null.
 *   read   sprig_get: the value, or null when the document does not exist;
 *   write  sprig_overwrite of a value no one wrote before;
 *   cas    [expected, new]: sprig_get, then, when the value read is
 *          `expected`, sprig_update naming the revision read (or
 *          sprig_insert when `expected` is null): applied only if nobody
 *          wrote in between, so the check and the write are one atomic
 *          step at the update.  A value read other than `expected`, or a
 *          revision conflict, is a "fail" (nothing written).  `expected`
 *          is the value this process last saw for the register.
 * Outcomes: ok; fail when the operation certainly did not apply (a
 * conflict, a refusal, a failed compare, any failed read);
 * info (unknown) when a write or CAS ended in any other error -- a
 * timeout or a lost connection may hide a write that was applied.
 *
 * N client processes (fork), each with its own connection, run M
 * operations each; each process writes its events to its own file with
 * CLOCK_MONOTONIC times (one clock for every process of the machine), and
 * the parent merges them, ordered by time, into OUT.  Randomness is
 * seeded (--seed, else SPRIG_SEED, else the time; printed).
 *
 * Where reads go (--reads): `client` (the default) through the client, so
 * on the node it is connected to (a cluster client follows the leader for
 * writes, and fails over to the next node when a connection drops);
 * `linearizable` likewise with sprig_open_options.linearizable_reads;
 * `any` on a random node of the list each time (one more client per node:
 * reads that are NOT linearizable on a cluster -- the case the checker
 * must catch); `none`: no reads, half writes and half CAS.  Between two
 * operations a process sleeps a random 0.5-1.5 times --interval-ms (0:
 * not at all), so a run can span a fault schedule.
 *
 * usage: sprig-lin-record --url URL[,URL...] --out FILE [--clients N (5)]
 *        [--keys K (3)] [--ops M (200)] [--seed S] [--timeout-ms T (5000)]
 *        [--interval-ms I (0)] [--reads client|none|any|linearizable]
 *        [--user U --password-env VAR]
 * Exit 0 when the history is written (whatever it holds), 1 on a setup
 * error, 2 on a usage error.
 */
#include "procs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Where reads go (--reads). */
typedef enum read_mode {
    READS_CLIENT,       /* through the client: the node it is connected to */
    READS_NONE,         /* no reads: writes and CAS only */
    READS_ANY,          /* a random node of the list each time */
    READS_LINEARIZABLE, /* sprig_open_options.linearizable_reads */
} read_mode;

typedef struct rec_cfg {
    const char *url, *out, *user, *password;
    int clients, keys, ops;
    unsigned timeout_ms, interval_ms;
    read_mode reads;
    uint64_t seed;
} rec_cfg;

#define MAX_NODES 16

static const sprig_collection_def lin_cols[] = {{"regs", SPRIG_ID_U64, 0}};
static const sprig_schema_def lin_schema = {"lincheck", lin_cols, 1};

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
rnd(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void
open_options(const rec_cfg *c, sprig_open_options *o)
{
    sprig_open_options_init(o);
    o->user = c->user;
    o->password = c->password;
    o->connect_timeout_ms = c->timeout_ms;
    o->request_timeout_ms = c->timeout_ms;
    o->linearizable_reads = c->reads == READS_LINEARIZABLE;
}

/* Open `url`'s database "lin" (procs_open_db: retried for up to 30 s). */
static int
open_db(const rec_cfg *c, const char *url, sprig_storage **st, sprig_db **db)
{
    sprig_open_options o;
    open_options(c, &o);
    return procs_open_db(url, &o, "lin", st, db);
}

/* The nodes of a URL list, each a URL of its own (READS_ANY): "ws://a:1,
 * b:2" gives "ws://a:1" and "ws://b:2". */
static int
split_urls(const char *list, char urls[][256], int max)
{
    const char *colon = strstr(list, "://");
    size_t plen = colon ? (size_t)(colon - list) + 3 : 0;
    int n = 0;
    for (const char *s = list; *s && n < max;) {
        size_t len = strcspn(s, ",");
        bool has = len >= 3 && memmem(s, len, "://", 3) != NULL;
        snprintf(urls[n++], 256, "%.*s%.*s", has ? 0 : (int)plen, list,
                 (int)len, s);
        s += len + (s[len] == ',');
    }
    return n;
}

/* ---- one process's operations ----------------------------------------------
 */

/* A register's value: 0 and *present false when absent. */
static int
reg_read(sprig_db *db, int key, int64_t *v, bool *present, sprig_header *h)
{
    sprig_doc *doc;
    *present = false;
    int rc = sprig_get(db, "regs", SPRIG_ID_U64((uint64_t)key), &doc);
    if (rc == SPRIG_ENOTFOUND) {
        return SPRIG_OK;
    }
    if (rc) {
        return rc;
    }
    sprig_bytes b = sprig_doc_contents(doc);
    char text[32];
    snprintf(text, sizeof text, "%.*s", (int)(b.len < 31 ? b.len : 31),
             (const char *)b.data);
    *v = strtoll(text, NULL, 10);
    *present = true;
    if (h) {
        *h = sprig_doc_header(doc); /* its id is re-made by the caller */
        h->id = (sprig_bytes){NULL, 0};
    }
    sprig_doc_free(doc);
    return SPRIG_OK;
}

static void
put_val(FILE *f, bool present, int64_t v)
{
    if (present) {
        fprintf(f, "%" PRId64, v);
    } else {
        fputs("null", f);
    }
}

static void
event(FILE *f, int p, const char *type, const char *fn, int key)
{
    fprintf(f,
            "{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\",\"key\":%d,"
            "\"time\":%" PRIu64 ",\"value\":",
            p, type, fn, key, mono_ns());
}

/* Did a write that ended with `rc` certainly not apply? */
static bool
certainly_not_applied(int rc)
{
    /* not SPRIG_ECONNECT nor SPRIG_ENOTLEADER: on a URL list the client
     * resends a write whose connection was lost, so either may be the
     * last answer after an attempt that was applied */
    return rc == SPRIG_ECONFLICT || rc == SPRIG_EPERM;
}

static void
do_read(FILE *f, sprig_db *db, int p, int key, int64_t *seen, bool *seen_p)
{
    event(f, p, "invoke", "read", key);
    fputs("null}\n", f);
    int64_t v = 0;
    bool present;
    int rc = reg_read(db, key, &v, &present, NULL);
    event(f, p, rc ? "fail" : "ok", "read", key);
    put_val(f, rc == 0 && present, v);
    fputs("}\n", f);
    if (rc == 0) {
        *seen = v;
        *seen_p = present;
    }
}

static void
do_write(FILE *f, sprig_db *db, int p, int key, int64_t v, int64_t *seen,
         bool *seen_p)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRId64, v);
    event(f, p, "invoke", "write", key);
    fprintf(f, "%" PRId64 "}\n", v);
    int rc =
        sprig_overwrite(db, "regs", SPRIG_ID_U64((uint64_t)key),
                        (sprig_bytes){(const uint8_t *)text, (size_t)n}, NULL);
    const char *type = rc == 0                     ? "ok"
                       : certainly_not_applied(rc) ? "fail"
                                                   : "info";
    event(f, p, type, "write", key);
    fprintf(f, "%" PRId64 "}\n", v);
    if (rc == 0) {
        *seen = v;
        *seen_p = true;
    }
}

/* The write of a CAS whose compare passed: insert or update. */
static int
cas_write(sprig_db *db, int key, bool exp_p, const sprig_header *h, int64_t nv)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRId64, nv);
    sprig_bytes contents = {(const uint8_t *)text, (size_t)n};
    uint8_t idbuf[8];
    sprig_bytes id = sprig_id_u64((uint64_t)key, idbuf);
    if (!exp_p) {
        return sprig_insert(db, "regs", &id, contents, NULL);
    }
    sprig_header want = *h;
    want.id = id;
    return sprig_update(db, "regs", &want, contents, NULL);
}

/* A CAS from what this process last saw (*seen, *seen_p), which it then
 * updates: the value its read found, or the new one when applied. */
static void
do_cas(FILE *f, sprig_db *db, int p, int key, int64_t *seen, bool *seen_p,
       int64_t nv)
{
    bool exp_p = *seen_p;
    int64_t exp = *seen;
    event(f, p, "invoke", "cas", key);
    fputc('[', f);
    put_val(f, exp_p, exp);
    fprintf(f, ",%" PRId64 "]}\n", nv);
    int64_t cur = 0;
    bool cur_p;
    sprig_header h;
    int rc = reg_read(db, key, &cur, &cur_p, &h);
    const char *type = "fail"; /* a failed read or compare wrote nothing */
    if (rc == 0 && cur_p == exp_p && (!exp_p || cur == exp)) {
        rc = cas_write(db, key, exp_p, &h, nv);
        type = rc == 0 ? "ok" : certainly_not_applied(rc) ? "fail" : "info";
        cur = nv;
        cur_p = rc == 0 ? true : cur_p;
    }
    if (rc == 0) {
        *seen = cur;
        *seen_p = cur_p;
    }
    event(f, p, type, "cas", key);
    fputc('[', f);
    put_val(f, exp_p, exp);
    fprintf(f, ",%" PRId64 "]}\n", nv);
}

/* A client's handles: the client on the whole list, and with READS_ANY
 * one more per node for the reads. */
typedef struct handles {
    sprig_storage *st, *node_st[MAX_NODES];
    sprig_db *db, *node_db[MAX_NODES];
    int n_nodes;
} handles;

static int
handles_open(const rec_cfg *c, handles *h)
{
    memset(h, 0, sizeof *h);
    int rc = open_db(c, c->url, &h->st, &h->db);
    if (rc || c->reads != READS_ANY) {
        return rc;
    }
    char urls[MAX_NODES][256];
    int n = split_urls(c->url, urls, MAX_NODES);
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = open_db(c, urls[i], &h->node_st[i], &h->node_db[i]);
        h->n_nodes += rc == 0;
    }
    return rc;
}

static void
handles_close(handles *h)
{
    for (int i = 0; i < h->n_nodes; i++) {
        sprig_db_close(h->node_db[i]);
        sprig_storage_close(h->node_st[i]);
    }
    if (h->db) {
        sprig_db_close(h->db);
        sprig_storage_close(h->st);
    }
}

/* The handle a read uses. */
static sprig_db *
read_db(const rec_cfg *c, handles *h, uint64_t *s)
{
    if (c->reads == READS_ANY && h->n_nodes > 0) {
        return h->node_db[rnd(s) % (uint64_t)h->n_nodes];
    }
    return h->db;
}

/* Client process `p`: its events to `path`. */
static int
client_run(const void *cfg, int p, const char *path)
{
    const rec_cfg *c = cfg;
    FILE *f = fopen(path, "w");
    handles h;
    if (!f || handles_open(c, &h) != 0) {
        fprintf(stderr, "sprig-lin-record: client %d: %s\n", p,
                f ? sprig_errmsg() : strerror(errno));
        return 1;
    }
    uint64_t s = c->seed ^ ((uint64_t)(p + 1) * 0x9e3779b97f4a7c15u);
    int64_t seen[64] = {0};
    bool seen_p[64] = {0};
    for (int i = 0; i < c->ops; i++) {
        int key = 1 + (int)(rnd(&s) % (uint64_t)c->keys);
        int64_t v = (int64_t)(p + 1) * 1000000 + i; /* never written before */
        unsigned pick = (unsigned)(rnd(&s) % 4);
        if (c->reads == READS_NONE && pick < 2) {
            pick = 2 + pick; /* half writes, half CAS */
        }
        switch (pick) {
        case 0:
        case 1:
            do_read(f, read_db(c, &h, &s), p, key, &seen[key], &seen_p[key]);
            break;
        case 2: do_write(f, h.db, p, key, v, &seen[key], &seen_p[key]); break;
        default: do_cas(f, h.db, p, key, &seen[key], &seen_p[key], v); break;
        }
        if (c->interval_ms) {
            procs_pause_ms(c->interval_ms / 2 +
                           (unsigned)(rnd(&s) % (c->interval_ms + 1)));
        }
    }
    handles_close(&h);
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- the parent
 * -------------------------------------------------------------- */

static int
parse_reads(const char *v, read_mode *m)
{
    static const char *const names[] = {"client", "none", "any",
                                        "linearizable"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(v, names[i])) {
            *m = (read_mode)i;
            return 0;
        }
    }
    return -1;
}

static int
parse_args(int argc, char **argv, rec_cfg *c)
{
    *c = (rec_cfg){.clients = 5, .keys = 3, .ops = 200, .timeout_ms = 5000};
    const char *env = getenv("SPRIG_SEED");
    c->seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--url")) {
            c->url = v;
        } else if (!strcmp(a, "--out")) {
            c->out = v;
        } else if (!strcmp(a, "--clients")) {
            c->clients = atoi(v);
        } else if (!strcmp(a, "--keys")) {
            c->keys = atoi(v);
        } else if (!strcmp(a, "--ops")) {
            c->ops = atoi(v);
        } else if (!strcmp(a, "--seed")) {
            c->seed = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--timeout-ms")) {
            c->timeout_ms = (unsigned)atoi(v);
        } else if (!strcmp(a, "--interval-ms")) {
            c->interval_ms = (unsigned)atoi(v);
        } else if (!strcmp(a, "--reads")) {
            if (parse_reads(v, &c->reads) != 0) {
                return -1;
            }
        } else if (!strcmp(a, "--user")) {
            c->user = v;
        } else if (!strcmp(a, "--password-env")) {
            c->password = getenv(v);
        } else {
            return -1;
        }
    }
    bool ok = c->url && c->out && c->clients > 0 && c->clients <= 256 &&
              c->keys > 0 && c->keys < 64 && c->ops >= 0;
    return ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
    rec_cfg c;
    if (parse_args(argc, argv, &c) != 0) {
        fprintf(stderr, "usage: sprig-lin-record --url URL[,URL...] --out FILE"
                        " [--clients N] [--keys K (<64)] [--ops M] [--seed S]"
                        " [--timeout-ms T] [--interval-ms I]"
                        " [--reads client|none|any|linearizable]"
                        " [--user U --password-env VAR]\n");
        return 2;
    }
    printf("sprig-lin-record: seed %" PRIu64 " (--seed replays it)\n", c.seed);
    fflush(stdout);
    /* setup: no timeouts, as before (the first node may be electing) */
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.user = c.user;
    o.password = c.password;
    if (procs_setup("sprig-lin-record", c.url, &o, &lin_schema, "lin") != 0) {
        return 1;
    }
    /* merged ordered by time (sort -s on the time field keeps each
     * process's order for equal times) */
    return procs_run("sprig-lin-record", c.out, "p", c.clients, client_run, &c,
                     "sort -s -t: -k6,6n");
}
