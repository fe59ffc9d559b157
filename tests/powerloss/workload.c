/*
 * workload.c -- the power-loss harness's workload and its judge.
 *
 * The workload opens a fresh storage (the run's durability and key-value
 * persistence), registers schema "pl" (collection "a" with an eager
 * declarative view counting its documents by "n", collection "b" with a
 * lazy view by "k"), opens the permission engine (which creates "_admin")
 * and database "app", then runs `steps` steps; step i does, by i % 10:
 *   0-3  T: one transaction in "app": insert a/t<i> and b/t<i>, overwrite
 *        a/latest, and (i >= 40) delete b/t<i-40>;
 *   4-6  K: key-value set k<i> = i in "app" (half with an expiry a day
 *        ahead, so the expiry index is exercised);
 *   7    U: create group g<i>, user u<i> (password p<i>), add it to g<i>;
 *   8    C: create database d<i>, insert a/x there; then (i >= 38) delete
 *        database d<i-30> ('X');
 *   9    D: key-value delete of k<i-5>.
 * After each call returns, a line naming it is written to the
 * acknowledgement log (and fsynced).
 *
 * The judge.  Everything in "app" goes through one command log in issue
 * order, so the state of "app" must be exactly the state after some prefix
 * of its steps: there must be a p such that a/t<i> exists iff i < p (for
 * transaction steps), b/t<i> iff i < p <= i + 40, k<i> iff i < p <= i + 5,
 * each with its exact bytes, and a/latest names the last transaction
 * before p.  That is "never half-applied" for transactions and for lazy
 * key-value writes alike.  The promises: in `full` durability p covers
 * every acknowledged transaction and (immediate persistence) every
 * acknowledged key-value change; with lazy persistence, every key-value
 * change acknowledged before an acknowledged transaction (a durable batch
 * syncs the log, lazy records included).  Databases: the registry must
 * equal some prefix of the create/delete operations, in `full` covering
 * every acknowledged one, and each database created with an acknowledged
 * document holds it; the directories under db/ are exactly the
 * registry's.  Users: in `full`, every acknowledged user logs in with its
 * password.  `normal` and `none` promise no durability on power loss:
 * only the prefix rule, the open and the integrity check are judged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "workload.h"

#include <dirent.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprig/auth.h"

#define DEL_LAG 40 /* a transaction deletes b/t<i - DEL_LAG> */
#define KV_LAG 5   /* step i deletes k<i - KV_LAG> */
#define DB_LAG 30  /* step i deletes database d<i - DB_LAG> */

static const sprig_view_def a_views[] = {
    {"by_n", 1, SPRIG_VIEW_EAGER, NULL, NULL, NULL, "n", NULL,
     SPRIG_REDUCE_COUNT},
};
static const sprig_view_def b_views[] = {
    {"by_k", 1, SPRIG_VIEW_LAZY, NULL, NULL, NULL, "k", "n", SPRIG_REDUCE_SUM},
};
static const sprig_collection_def pl_colls[] = {
    {"a", SPRIG_ID_NATURAL, 0, a_views, 1},
    {"b", SPRIG_ID_NATURAL, 0, b_views, 1},
};
static const sprig_schema_def pl_schema = {"pl", pl_colls, 2};

static char
step_kind(unsigned i)
{
    static const char kinds[] = "TTTTKKKUCD";
    return kinds[i % 10];
}

/* ---- contents ---- */

static size_t
doc_a(unsigned i, char *buf, size_t n)
{
    return (size_t)snprintf(buf, n, "{\"n\":%u,\"k\":\"x%u\"}", i, i);
}

/* b's documents vary from tens of bytes to ~6 KiB (LMDB overflow pages). */
static size_t
doc_b(unsigned i, char *buf, size_t n)
{
    int m = snprintf(buf, n, "{\"n\":%u,\"k\":\"y%u\",\"pad\":\"", i, i % 7);
    size_t pad = (i * 2654435761u) % (i % 3 == 0 ? 6000 : 300);
    for (size_t k = 0; k < pad && (size_t)m + 3 < n; k++) {
        buf[m++] = (char)('a' + (i + k) % 26);
    }
    m += snprintf(buf + m, n - (size_t)m, "\"}");
    return (size_t)m;
}

static void
name_of(char *buf, size_t n, const char *p, unsigned i)
{
    snprintf(buf, n, "%s%u", p, i);
}

static int
open_storage(const char *path, const pl_opts *o, sprig_storage **st)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = path;
    so.durability = o->durability;
    so.initial_map_size = 1u << 20; /* grows: exercises map growth */
    if (o->kv_lazy) {
        so.kv_persistence.mode = SPRIG_KV_LAZY;
        so.kv_persistence.lazy_changes = 16;
        so.kv_persistence.lazy_ms = 30;
    }
    int rc = sprig_storage_open(&so, st);
    if (rc == 0 && (rc = sprig_storage_register_schema(*st, &pl_schema))) {
        sprig_storage_close(*st);
    }
    return rc;
}

/* The reduce of view coll/view over all keys, as a number. */
static int
view_total(sprig_db *db, const char *coll, const char *view, uint64_t *out)
{
    sprig_view_query q;
    sprig_view_query_init(&q, coll, view);
    sprig_buf b = {0};
    int rc = sprig_view_reduce(db, &q, &b);
    char t[32] = "";
    if (rc == 0) {
        snprintf(t, sizeof t, "%.*s", (int)b.len, (const char *)b.data);
    }
    sprig_buf_clear(&b);
    *out = strtoull(t, NULL, 10);
    return rc;
}

/* ---- the workload ---- */

typedef struct work {
    sprig_storage *st;
    sprig_auth *auth;
    sprig_db *app;
    int ack_fd;
} work;

static int
fail(const char *what, unsigned i, int rc)
{
    fprintf(stderr, "powerloss workload: step %u: %s: %s (%s)\n", i, what,
            sprig_strerror(rc), sprig_errmsg());
    return 1;
}

static int
ack(work *w, char kind, unsigned i)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%c %u\n", kind, i);
    return write(w->ack_fd, line, (size_t)n) == n && fsync(w->ack_fd) == 0
               ? 0
               : fail("acknowledgement log", i, SPRIG_EIO);
}

static int
step_txn(work *w, unsigned i)
{
    char ida[32], idb[32], old[32], ca[64], cb[8192], cl[32];
    sprig_txn *t;
    int rc = sprig_txn_new(&t);
    name_of(ida, sizeof ida, "t", i);
    name_of(old, sizeof old, "t", i - DEL_LAG);
    sprig_bytes a = sprig_str(ida), b = sprig_str(ida);
    (void)idb;
    rc = rc ? rc
            : sprig_txn_insert(t, "a", &a,
                               (sprig_bytes){ca, doc_a(i, ca, sizeof ca)});
    rc = rc ? rc
            : sprig_txn_insert(t, "b", &b,
                               (sprig_bytes){cb, doc_b(i, cb, sizeof cb)});
    int ln = snprintf(cl, sizeof cl, "{\"n\":%u}", i);
    rc = rc ? rc
            : sprig_txn_overwrite(t, "a", sprig_str("latest"),
                                  (sprig_bytes){cl, (size_t)ln});
    if (rc == 0 && i >= DEL_LAG) {
        sprig_header h = {sprig_str(old), 1, {0}};
        rc = sprig_txn_delete(t, "b", &h);
    }
    rc = rc ? rc : sprig_txn_apply(w->app, t, NULL);
    sprig_txn_free(t);
    rc = rc ? fail("transaction", i, rc) : ack(w, 'T', i);
    /* now and then the lazy view catches up: an indexing commit */
    uint64_t sum;
    if (rc == 0 && i % 20 == 0 &&
        (rc = view_total(w->app, "b", "by_k", &sum))) {
        rc = fail("lazy view query", i, rc);
    }
    return rc;
}

static int
step_kv(work *w, unsigned i)
{
    char key[32];
    name_of(key, sizeof key, "k", i);
    sprig_value v = sprig_value_of_u64(i);
    sprig_kv_set_opts so = {0};
    so.expire_in_ms = i % 2 ? 86400000u : 0;
    int rc = sprig_kv_set(w->app, "ns", key, &v, &so, NULL, NULL);
    return rc ? fail("kv set", i, rc) : ack(w, 'K', i);
}

static int
step_kv_delete(work *w, unsigned i)
{
    char key[32];
    name_of(key, sizeof key, "k", i - KV_LAG);
    int rc = sprig_kv_delete(w->app, "ns", key, NULL);
    return rc ? fail("kv delete", i, rc) : ack(w, 'D', i);
}

static int
step_user(work *w, unsigned i)
{
    char u[32], g[32], p[32];
    name_of(u, sizeof u, "u", i);
    name_of(g, sizeof g, "g", i);
    name_of(p, sizeof p, "p", i);
    int rc = sprig_auth_group_create(w->auth, NULL, g);
    rc = rc ? rc : sprig_auth_user_create(w->auth, NULL, u, p);
    rc = rc ? rc : sprig_auth_user_group(w->auth, NULL, u, g, true);
    return rc ? fail("user", i, rc) : ack(w, 'U', i);
}

static int
step_db(work *w, unsigned i)
{
    char name[32], c[64];
    name_of(name, sizeof name, "d", i);
    sprig_db *db = NULL;
    int rc = sprig_storage_create_database(w->st, name, "pl", false);
    rc = rc ? rc : sprig_storage_open_database(w->st, name, &db);
    sprig_bytes id = sprig_str("x");
    rc = rc ? rc
            : sprig_insert(db, "a", &id,
                           (sprig_bytes){c, doc_a(i, c, sizeof c)}, NULL);
    sprig_db_close(db);
    rc = rc ? fail("create database", i, rc) : ack(w, 'C', i);
    if (rc == 0 && i >= DB_LAG + 8) {
        name_of(name, sizeof name, "d", i - DB_LAG);
        rc = sprig_storage_delete_database(w->st, name);
        rc = rc ? fail("delete database", i, rc) : ack(w, 'X', i);
    }
    return rc;
}

static int
work_step(work *w, unsigned i)
{
    switch (step_kind(i)) {
    case 'T': return step_txn(w, i);
    case 'K': return step_kv(w, i);
    case 'D': return step_kv_delete(w, i);
    case 'U': return step_user(w, i);
    default: return step_db(w, i);
    }
}

int
pl_work(const char *path, const pl_opts *o, int ack_fd)
{
    work w = {NULL, NULL, NULL, ack_fd};
    sprig_auth_options ao;
    sprig_auth_options_min(&ao);
    int rc = open_storage(path, o, &w.st);
    rc = rc ? rc : sprig_auth_open(w.st, &ao, &w.auth);
    rc = rc ? rc : sprig_storage_create_database(w.st, "app", "pl", false);
    rc = rc ? rc : sprig_storage_open_database(w.st, "app", &w.app);
    if (rc) {
        return fail("opening", 0, rc);
    }
    for (unsigned i = 0; rc == 0 && i < o->steps; i++) {
        rc = work_step(&w, i);
    }
    sprig_db_close(w.app);
    sprig_auth_free(w.auth);
    sprig_storage_close(w.st);
    return rc;
}

bool
pl_ack_parse(const uint8_t *p, size_t n, pl_ack *out)
{
    char line[32];
    if (n == 0 || n >= sizeof line) {
        return false;
    }
    memcpy(line, p, n);
    line[n] = 0;
    return sscanf(line, "%c %u", &out->kind, &out->step) == 2;
}

/* ---- the judge ---- */

typedef struct judge {
    const pl_opts *o;
    const char *path;
    sprig_storage *st;
    bool *a, *b, *k; /* per step: a/t<i>, b/t<i>, k<i> present */
    long latest;     /* a/latest's n, or -1 */
    bool durable;    /* full durability: acknowledgements are promises */
    unsigned app_min, reg_min;
    bool *acked_u, *acked_c;
    unsigned *cidx, *didx; /* the registry's operation indexes */
    bool any_ack;
} judge;

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "powerloss: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 5;
}

/* Is document coll/id present with exactly `want`?  -1: wrong bytes. */
static int
doc_state(sprig_db *db, const char *coll, const char *id, const char *want,
          size_t wn)
{
    sprig_doc *d = NULL;
    int rc = sprig_get(db, coll, sprig_str(id), &d);
    if (rc == SPRIG_ENOTFOUND) {
        return 0;
    }
    sprig_bytes c = rc ? (sprig_bytes){NULL, 0} : sprig_doc_contents(d);
    int r = rc == 0 && c.len == wn && memcmp(c.data, want, wn) == 0 ? 1 : -1;
    if (r < 0) {
        fprintf(stderr, "powerloss: %s/%s: %s\n", coll, id,
                rc ? sprig_errmsg() : "wrong contents");
    }
    sprig_doc_free(d);
    return r;
}

static int
read_kv(sprig_db *db, unsigned i, bool *present)
{
    char key[32];
    name_of(key, sizeof key, "k", i);
    sprig_value v = {0};
    int rc = sprig_kv_get(db, "ns", key, false, &v);
    *present = rc == 0;
    bool ok = rc == SPRIG_ENOTFOUND ||
              (rc == 0 && v.kind == SPRIG_VALUE_U64 && v.num.u64 == i);
    sprig_value_clear(&v);
    return ok ? 0 : bad("k%u: %s", i, rc ? sprig_errmsg() : "wrong value");
}

static int
read_app(judge *j, sprig_db *db)
{
    char id[32], c[8192];
    for (unsigned i = 0; i < j->o->steps; i++) {
        char kind = step_kind(i);
        int s1 = 0, s2 = 0;
        if (kind == 'T') {
            name_of(id, sizeof id, "t", i);
            s1 = doc_state(db, "a", id, c, doc_a(i, c, sizeof c));
            s2 = doc_state(db, "b", id, c, doc_b(i, c, sizeof c));
            j->a[i] = s1 > 0;
            j->b[i] = s2 > 0;
        } else if (kind == 'K' && read_kv(db, i, &j->k[i])) {
            return 5;
        }
        if (s1 < 0 || s2 < 0) {
            return bad("t%u: wrong contents", i);
        }
    }
    sprig_doc *d = NULL;
    int rc = sprig_get(db, "a", sprig_str("latest"), &d);
    j->latest = -1;
    if (rc == 0) {
        sprig_bytes b = sprig_doc_contents(d);
        char t[32];
        snprintf(t, sizeof t, "%.*s", (int)b.len, (const char *)b.data);
        j->latest = sscanf(t, "{\"n\":%ld}", &j->latest) == 1 ? j->latest : -2;
        sprig_doc_free(d);
    }
    return rc && rc != SPRIG_ENOTFOUND ? bad("latest: %s", sprig_errmsg()) : 0;
}

/* The views answer what the documents hold: a/by_n (eager) counts a's
 * documents, b/by_k (lazy: this query indexes what is pending) sums b's
 * "n". */
static int
judge_views(judge *j, sprig_db *db)
{
    uint64_t count = j->latest >= 0, sum = 0, got_count, got_sum;
    for (unsigned i = 0; i < j->o->steps; i++) {
        count += j->a[i];
        sum += j->b[i] ? i : 0;
    }
    int rc = view_total(db, "a", "by_n", &got_count);
    rc = rc ? rc : view_total(db, "b", "by_k", &got_sum);
    if (rc) {
        return bad("view query: %s", sprig_errmsg());
    }
    if (got_count != count || got_sum != sum) {
        return bad("views: a/by_n counts %" PRIu64 " (documents: %" PRIu64
                   "), b/by_k sums %" PRIu64 " (documents: %" PRIu64 ")",
                   got_count, count, got_sum, sum);
    }
    return 0;
}

/* Is "app" exactly as after its first p steps? */
static bool
app_is_prefix(const judge *j, unsigned p)
{
    long last_t = -1;
    for (unsigned i = 0; i < j->o->steps; i++) {
        char kind = step_kind(i);
        bool done = i < p;
        if (kind == 'T') {
            last_t = done ? (long)i : last_t;
            if (j->a[i] != done || j->b[i] != (done && i + DEL_LAG >= p)) {
                return false;
            }
        } else if (kind == 'K' &&
                   j->k[i] != (done && !(i % 10 == 4 && i + KV_LAG < p))) {
            return false;
        }
    }
    return j->latest == last_t;
}

static int
judge_app(judge *j)
{
    sprig_db *db = NULL;
    int rc = sprig_storage_open_database(j->st, "app", &db);
    if (rc == SPRIG_ENOTFOUND) {
        return j->any_ack && j->o->durability == SPRIG_DURABILITY_FULL
                   ? bad("database app lost")
                   : 0;
    }
    if (rc) {
        return bad("opening app: %s", sprig_errmsg());
    }
    rc = read_app(j, db);
    rc = rc ? rc : judge_views(j, db);
    sprig_db_close(db);
    long found = -1;
    for (unsigned p = 0; rc == 0 && p <= j->o->steps; p++) {
        if (app_is_prefix(j, p)) {
            found = p;
            if (p >= j->app_min) {
                return 0;
            }
        }
    }
    if (rc) {
        return rc;
    }
    return found < 0 ? bad("app is no prefix of its steps (half-applied)")
                     : bad("app holds %ld steps, %u were acknowledged durable",
                           found, j->app_min);
}

/* The registry's operations in order: step i (a 'C' step) creates d<i>
 * (op index cidx[i]), then deletes d<i - DB_LAG> (op didx[i - DB_LAG]). */
static unsigned
reg_ops(const judge *j, unsigned *cidx, unsigned *didx)
{
    unsigned op = 0;
    for (unsigned i = 0; i < j->o->steps; i++) {
        cidx[i] = didx[i] = UINT32_MAX;
    }
    for (unsigned i = 0; i < j->o->steps; i++) {
        if (step_kind(i) == 'C') {
            cidx[i] = op++;
            if (i >= DB_LAG + 8) {
                didx[i - DB_LAG] = op++;
            }
        }
    }
    return op;
}

static bool
reg_is_prefix(const judge *j, const bool *exists, const unsigned *cidx,
              const unsigned *didx, unsigned q)
{
    for (unsigned i = 0; i < j->o->steps; i++) {
        if (cidx[i] != UINT32_MAX &&
            exists[i] != (cidx[i] < q && !(didx[i] < q))) {
            return false;
        }
    }
    return true;
}

/* Which d<i> the registry names; 0 or 5 (an unexpected name). */
static int
read_registry(judge *j, bool *exists, size_t *n_dbs)
{
    sprig_database_list *l = NULL;
    if (sprig_storage_list_databases(j->st, &l)) {
        return bad("listing databases: %s", sprig_errmsg());
    }
    int rc = 0;
    *n_dbs = sprig_database_list_count(l);
    for (size_t i = 0; i < *n_dbs; i++) {
        const char *name = sprig_database_list_name(l, i);
        unsigned k;
        if (sscanf(name, "d%u", &k) == 1 && k < j->o->steps) {
            exists[k] = true;
        } else if (strcmp(name, "app") && strcmp(name, SPRIG_AUTH_DB)) {
            rc = bad("unexpected database %s", name);
        }
    }
    sprig_database_list_free(l);
    return rc;
}

/* Each database in the registry opens and holds its document (required
 * when its creation was acknowledged durable). */
static int
judge_db_docs(judge *j, const bool *exists)
{
    for (unsigned i = 0; i < j->o->steps; i++) {
        char name[32], c[64];
        sprig_db *db = NULL;
        if (!exists[i]) {
            continue;
        }
        name_of(name, sizeof name, "d", i);
        if (sprig_storage_open_database(j->st, name, &db)) {
            return bad("opening %s: %s", name, sprig_errmsg());
        }
        int s = doc_state(db, "a", "x", c, doc_a(i, c, sizeof c));
        sprig_db_close(db);
        if (s < 0 || (s == 0 && j->durable && j->acked_c[i])) {
            return bad("%s: document x lost or wrong", name);
        }
    }
    return 0;
}

/* Directories under db/ after the open: exactly the registry's. */
static int
judge_dirs(judge *j, size_t n_dbs)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/db", j->path);
    DIR *d = opendir(p);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        n += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    return n == n_dbs ? 0
                      : bad("%zu database directories, the registry names %zu",
                            n, n_dbs);
}

static int
judge_dbs(judge *j)
{
    unsigned steps = j->o->steps;
    bool *exists = calloc(steps + 1, 1);
    unsigned *cidx = calloc(steps + 1, sizeof *cidx);
    unsigned *didx = calloc(steps + 1, sizeof *didx);
    size_t n_dbs = 0;
    int rc = read_registry(j, exists, &n_dbs);
    unsigned ops = reg_ops(j, cidx, didx);
    long found = -1;
    for (unsigned q = 0; rc == 0 && q <= ops; q++) {
        if (reg_is_prefix(j, exists, cidx, didx, q)) {
            found = q;
            if (q >= j->reg_min) {
                break;
            }
        }
    }
    if (rc == 0 && found < 0) {
        rc = bad("the registry is no prefix of its operations");
    } else if (rc == 0 && (unsigned long)found < j->reg_min) {
        rc = bad("the registry holds %ld operations, %u were acknowledged",
                 found, j->reg_min);
    }
    rc = rc ? rc : judge_db_docs(j, exists);
    rc = rc ? rc : judge_dirs(j, n_dbs);
    free(exists);
    free(cidx);
    free(didx);
    return rc;
}

static int
judge_users(judge *j)
{
    sprig_auth *a = NULL;
    sprig_auth_options ao;
    sprig_auth_options_min(&ao);
    int rc = sprig_auth_open(j->st, &ao, &a);
    if (rc) {
        return bad("opening the permission engine: %s", sprig_errmsg());
    }
    for (unsigned i = 0; rc == 0 && i < j->o->steps; i++) {
        char u[32], p[32];
        sprig_identity *id = NULL;
        if (!j->acked_u[i]) {
            continue;
        }
        name_of(u, sizeof u, "u", i);
        name_of(p, sizeof p, "p", i);
        if (sprig_auth_login_password(a, u, p, &id) != 0) {
            rc = bad("acknowledged user %s cannot log in: %s", u,
                     sprig_errmsg());
        }
        sprig_identity_release(id);
    }
    sprig_auth_free(a);
    return rc;
}

/* What the acknowledgements promise (only `full` promises anything on a
 * power loss). */
static void
promises(judge *j, const pl_ack *acks, size_t n)
{
    j->any_ack = n > 0;
    for (size_t i = 0; j->durable && i < n; i++) {
        unsigned s = acks[i].step;
        switch (acks[i].kind) {
        case 'T': j->app_min = s + 1; break;
        case 'K':
        case 'D': j->app_min = j->o->kv_lazy ? j->app_min : s + 1; break;
        case 'U': j->acked_u[s] = true; break;
        case 'C':
            j->acked_c[s] = true;
            j->reg_min = j->cidx[s] + 1;
            break;
        case 'X': j->reg_min = j->didx[s - DB_LAG] + 1; break;
        }
    }
}

static int
judge_storage(judge *j, const pl_ack *acks, size_t n_acks)
{
    sprig_buf rep = {0};
    uint64_t findings = 0;
    int rc = sprig_storage_check(j->st, &rep, &findings);
    if (rc || findings) {
        fprintf(stderr, "powerloss: check: %s%.*s\n", rc ? sprig_errmsg() : "",
                (int)rep.len, (const char *)rep.data);
        sprig_buf_clear(&rep);
        return 4;
    }
    sprig_buf_clear(&rep);
    reg_ops(j, j->cidx, j->didx);
    promises(j, acks, n_acks);
    rc = judge_app(j);
    rc = rc ? rc : judge_dbs(j);
    return rc ? rc : judge_users(j);
}

int
pl_verify(const char *path, const pl_opts *o, const pl_ack *acks, size_t n_acks)
{
    judge j = {0};
    j.o = o;
    j.path = path;
    j.durable = o->durability == SPRIG_DURABILITY_FULL;
    int rc = open_storage(path, o, &j.st);
    if (rc) {
        fprintf(stderr, "powerloss: open: %s (%s)\n", sprig_strerror(rc),
                sprig_errmsg());
        return rc == SPRIG_ECORRUPT ? 2 : 3;
    }
    size_t n = o->steps + 1;
    j.a = calloc(n, 1);
    j.b = calloc(n, 1);
    j.k = calloc(n, 1);
    j.acked_u = calloc(n, 1);
    j.acked_c = calloc(n, 1);
    j.cidx = calloc(n, sizeof *j.cidx);
    j.didx = calloc(n, sizeof *j.didx);
    rc = judge_storage(&j, acks, n_acks);
    sprig_storage_close(j.st);
    free(j.a);
    free(j.b);
    free(j.k);
    free(j.acked_u);
    free(j.acked_c);
    free(j.cidx);
    free(j.didx);
    return rc;
}
