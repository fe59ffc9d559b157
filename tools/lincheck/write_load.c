/*
 * write_load.c -- `sprig-write-load`: a write load on a Sprig placement (a
 * URL list of cluster nodes, usually) that records the outcome of every
 * write, for tests that kill nodes under load and then check that no
 * acknowledged write was lost and none applied twice (issue 18:
 * tests/cluster_kill_leader_test.py).
 *
 * N writer processes (fork), each with its own client (the multi-URL
 * client: it follows ENOTLEADER and fails over when a connection drops),
 * loop until the stop file exists (or --ops writes each):
 *   doc   sprig_insert of document (w+1)*1000000+i (u64 ids, unique per
 *         writer and step) into collection "items" of database "load";
 *   incr  sprig_kv_increment of key "ctr<w>" by 1 (one counter per
 *         writer, so its final value is bounded by that writer's counts).
 * Each outcome is one line of OUT:  `doc ID ok|fail|info RC` or
 * `incr W ok|fail|info RC`.  ok: acknowledged; fail: certainly not
 * applied (refused: SPRIG_ECONFLICT, SPRIG_EPERM); info: unknown -- every
 * other error, SPRIG_ECONNECT and SPRIG_ENOTLEADER included: the client
 * resends a write whose connection was lost, so its last answer may follow
 * an attempt that was applied (and SPRIG_EEXIST for a unique id means
 * just that).  After
 * an error a writer sleeps 20 ms (an election takes about a second).
 *
 * usage: sprig-write-load --url URL[,URL...] --out FILE --stop FILE
 *        [--writers N (4)] [--ops M (0: until the stop file)]
 *        [--timeout-ms T (3000)]
 * Exit 0 when every writer ran to the end, 1 on a setup error, 2 usage.
 */
#include "procs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct load_cfg {
    const char *url, *out, *stop;
    int writers, ops;
    unsigned timeout_ms;
} load_cfg;

static const sprig_collection_def load_cols[] = {{"items", SPRIG_ID_U64, 0}};
static const sprig_schema_def load_schema = {"load", load_cols, 1};

/* Only a refusal by the state machine itself is certain: on a URL list
 * the client resends a write whose connection was lost (same request id),
 * so a final SPRIG_ECONNECT or SPRIG_ENOTLEADER may follow an attempt that
 * reached a leader and was applied. */
static bool
certainly_not_applied(int rc)
{
    return rc == SPRIG_ECONFLICT || rc == SPRIG_EPERM;
}

static const char *
outcome(int rc)
{
    return rc == 0 ? "ok" : certainly_not_applied(rc) ? "fail" : "info";
}

/* One step of writer `w`: a document, then an increment. */
static void
step(FILE *f, sprig_db *db, int w, int i)
{
    uint64_t id = (uint64_t)(w + 1) * 1000000u + (uint64_t)i;
    char text[48];
    int n = snprintf(text, sizeof text, "{\"w\":%d,\"i\":%d}", w, i);
    uint8_t idbuf[8];
    sprig_bytes idb = sprig_id_u64(id, idbuf);
    int rc =
        sprig_insert(db, "items", &idb,
                     (sprig_bytes){(const uint8_t *)text, (size_t)n}, NULL);
    fprintf(f, "doc %" PRIu64 " %s %d\n", id, outcome(rc), rc);
    bool failed = rc != 0;
    char key[32];
    snprintf(key, sizeof key, "ctr%d", w);
    sprig_value one = sprig_value_of_i64(1);
    rc = sprig_kv_increment(db, NULL, key, &one, false, NULL);
    fprintf(f, "incr %d %s %d\n", w, outcome(rc), rc);
    fflush(f);
    if (failed || rc != 0) {
        procs_pause_ms(20);
    }
}

static void
open_options(const load_cfg *c, sprig_open_options *o)
{
    sprig_open_options_init(o);
    o->connect_timeout_ms = c->timeout_ms;
    o->request_timeout_ms = c->timeout_ms;
}

/* Writer `w` (a forked process): its outcomes to `path`. */
static int
writer_run(const void *cfg, int w, const char *path)
{
    const load_cfg *c = cfg;
    sprig_open_options o;
    open_options(c, &o);
    FILE *f = fopen(path, "w");
    sprig_storage *st;
    sprig_db *db;
    if (!f || procs_open_db(c->url, &o, "load", &st, &db) != 0) {
        fprintf(stderr, "sprig-write-load: writer %d: %s\n", w,
                f ? sprig_errmsg() : strerror(errno));
        return 1;
    }
    for (int i = 0; c->ops == 0 || i < c->ops; i++) {
        if (c->stop && access(c->stop, F_OK) == 0) {
            break;
        }
        step(f, db, w, i);
    }
    sprig_db_close(db);
    sprig_storage_close(st);
    return fclose(f) == 0 ? 0 : 1;
}

static int
parse_args(int argc, char **argv, load_cfg *c)
{
    *c = (load_cfg){.writers = 4, .timeout_ms = 3000};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--url")) {
            c->url = v;
        } else if (!strcmp(a, "--out")) {
            c->out = v;
        } else if (!strcmp(a, "--stop")) {
            c->stop = v;
        } else if (!strcmp(a, "--writers")) {
            c->writers = atoi(v);
        } else if (!strcmp(a, "--ops")) {
            c->ops = atoi(v);
        } else if (!strcmp(a, "--timeout-ms")) {
            c->timeout_ms = (unsigned)atoi(v);
        } else {
            return -1;
        }
    }
    return c->url && c->out && (c->stop || c->ops > 0) && c->writers > 0 &&
                   c->writers <= 256 && c->ops >= 0
               ? 0
               : -1;
}

int
main(int argc, char **argv)
{
    load_cfg c;
    if (parse_args(argc, argv, &c) != 0) {
        fprintf(stderr, "usage: sprig-write-load --url URL[,URL...] --out FILE"
                        " --stop FILE [--writers N] [--ops M]"
                        " [--timeout-ms T]\n");
        return 2;
    }
    sprig_open_options o;
    open_options(&c, &o);
    if (procs_setup("sprig-write-load", c.url, &o, &load_schema, "load") != 0) {
        return 1;
    }
    return procs_run("sprig-write-load", c.out, "w", c.writers, writer_run, &c,
                     NULL);
}
