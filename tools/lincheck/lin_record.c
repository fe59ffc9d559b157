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
 * refused connection, a conflict, a failed compare, any failed read);
 * info (unknown) when a write or CAS ended in any other error -- a
 * timeout or a lost connection may hide a write that was applied.
 *
 * N client processes (fork), each with its own connection, run M
 * operations each; each process writes its events to its own file with
 * CLOCK_MONOTONIC times (one clock for every process of the machine), and
 * the parent merges them, ordered by time, into OUT.  Randomness is
 * seeded (--seed, else SPRIG_SEED, else the time; printed).
 *
 * usage: sprig-lin-record --url URL[,URL...] --out FILE [--clients N (5)]
 *        [--keys K (3)] [--ops M (200)] [--seed S] [--timeout-ms T (5000)]
 *        [--user U --password-env VAR]
 * Exit 0 when the history is written (whatever it holds), 1 on a setup
 * error, 2 on a usage error.
 */
#include "sprig/sprig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct rec_cfg {
    const char *url, *out, *user, *password;
    int clients, keys, ops;
    unsigned timeout_ms;
    uint64_t seed;
} rec_cfg;

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

static int
open_db(const rec_cfg *c, sprig_storage **st, sprig_db **db)
{
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.user = c->user;
    o.password = c->password;
    o.connect_timeout_ms = c->timeout_ms;
    o.request_timeout_ms = c->timeout_ms;
    int rc = sprig_open(c->url, &o, st);
    if (rc) {
        return rc;
    }
    rc = sprig_storage_open_database(*st, "lin", db);
    if (rc) {
        sprig_storage_close(*st);
    }
    return rc;
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
    return rc == SPRIG_ECONNECT || rc == SPRIG_ENOTLEADER ||
           rc == SPRIG_ECONFLICT || rc == SPRIG_EPERM;
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
do_write(FILE *f, sprig_db *db, int p, int key, int64_t v)
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

static void
do_cas(FILE *f, sprig_db *db, int p, int key, bool exp_p, int64_t exp,
       int64_t nv)
{
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
    }
    event(f, p, type, "cas", key);
    fputc('[', f);
    put_val(f, exp_p, exp);
    fprintf(f, ",%" PRId64 "]}\n", nv);
}

static int
client_run(const rec_cfg *c, int p, const char *path)
{
    FILE *f = fopen(path, "w");
    sprig_storage *st;
    sprig_db *db;
    if (!f || open_db(c, &st, &db) != 0) {
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
        switch (rnd(&s) % 4) {
        case 0:
        case 1: do_read(f, db, p, key, &seen[key], &seen_p[key]); break;
        case 2: do_write(f, db, p, key, v); break;
        default: do_cas(f, db, p, key, seen_p[key], seen[key], v); break;
        }
    }
    sprig_db_close(db);
    sprig_storage_close(st);
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- the parent
 * -------------------------------------------------------------- */

static int
setup(const rec_cfg *c)
{
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.user = c->user;
    o.password = c->password;
    sprig_storage *st;
    int rc = sprig_open(c->url, &o, &st);
    if (rc == 0) {
        rc = sprig_storage_register_schema(st, &lin_schema);
        rc = rc ? rc
                : sprig_storage_create_database(st, "lin", "lincheck", true);
        sprig_storage_close(st);
    }
    if (rc) {
        fprintf(stderr, "sprig-lin-record: setup: %s\n", sprig_errmsg());
    }
    return rc;
}

/* Merge the clients' files into OUT, ordered by time (sort -s on the
 * time field keeps each file's order for equal times). */
static int
merge(const rec_cfg *c)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd,
                     "cat '%s'.p* | sort -s -t: -k6,6n > '%s' && "
                     "rm -f '%s'.p*",
                     c->out, c->out, c->out);
    if (n >= (int)sizeof cmd || strchr(c->out, '\'')) {
        fprintf(stderr, "sprig-lin-record: bad output path\n");
        return 1;
    }
    return system(cmd) == 0 ? 0 : 1;
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
                        " [--timeout-ms T] [--user U --password-env VAR]\n");
        return 2;
    }
    printf("sprig-lin-record: seed %" PRIu64 " (--seed replays it)\n", c.seed);
    fflush(stdout);
    if (setup(&c) != 0) {
        return 1;
    }
    pid_t pids[256];
    for (int p = 0; p < c.clients; p++) {
        char path[4200];
        snprintf(path, sizeof path, "%s.p%d", c.out, p);
        pids[p] = fork();
        if (pids[p] == 0) {
            _exit(client_run(&c, p, path));
        }
    }
    int failed = 0;
    for (int p = 0; p < c.clients; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    if (failed) {
        fprintf(stderr, "sprig-lin-record: %d client(s) failed\n", failed);
    }
    return merge(&c) || failed ? 1 : 0;
}
