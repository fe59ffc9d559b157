/*
 * auth_bench.c -- the cost of permission checks (issue 10), in one run:
 *
 *   1. requests per second, 50 clients over ws:// on loopback, each a
 *      sprig_client doing db.get (reads) or sprig_overwrite (writes: a
 *      one-operation transaction, checked per operation as
 *      document.overwrite on its document) in a loop, against two
 *      servers on the same storage in the same process: one with open
 *      access (no checks) and one checking every request against the
 *      logged-in user's effective permissions, granted through patterns
 *      (sprig.db.a*, among 8 unrelated statements).  The phases alternate
 *      (off, on, off, on, ...) so drift in the machine's load hits both;
 *      the median of each side, the spread (min-max) and their ratio are
 *      reported (target >= 0.95), with the load average before and
 *      after.
 *   2. logins per second with the default argon2id parameters (libsodium
 *      INTERACTIVE: 2 passes over 64 MiB), 8 threads logging in at once
 *      against the default bound of 4 concurrent hashes: accepted logins/s,
 *      refusals (SPRIG_EBUSY) and the peak memory the bound allows.
 *
 * Usage: auth_bench [--quick] [--out FILE.json]
 * --quick: 0.3 s phases, 2 rounds, the cheapest argon2id (the ctest
 * smoke; its numbers mean nothing).
 */
#include "netload.h"
#include "sprig/auth.h"
#include "sprig/client.h"
#include "sprig/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS 50
#define LOGIN_THREADS 8

static const sprig_collection_def cols[] = {{"c", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"b", cols, 1};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This thread's CPU time: the check loop is timed by it, so a loaded
 * machine (other processes on the cores) does not inflate it. */
static double
cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "auth_bench: %s: %s: %s\n", what, sprig_strerror(rc),
                sprig_errmsg());
        exit(1);
    }
}

typedef struct worker {
    sprig_db *db;
    bool write;
    char id[16]; /* a write's document: one per client */
} worker;

/* netload's call: one request of a client. */
static void
one_request(void *p)
{
    worker *w = p;
    if (w->write) {
        check(sprig_overwrite(w->db, "c", sprig_str(w->id),
                              sprig_str("{\"v\":2}"), NULL),
              "overwrite");
    } else {
        sprig_doc *d = NULL;
        check(sprig_get(w->db, "c", sprig_str("doc"), &d), "get");
        sprig_doc_free(d);
    }
}

/* One phase: CLIENTS clients of `url` for `secs`; requests per second. */
static double
phase(const char *url, bool login, bool write, double secs)
{
    sprig_client *c[CLIENTS];
    worker w[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        check(sprig_client_connect(url, NULL, &c[i]), "connect");
        if (login) {
            check(sprig_client_authenticate_password(c[i], "reader", "pw"),
                  "login");
        }
        w[i] = (worker){NULL, write, ""};
        snprintf(w[i].id, sizeof w[i].id, "w%d", i);
        check(sprig_storage_open_database(sprig_client_storage(c[i]), "app",
                                          &w[i].db),
              "open");
    }
    double rate = netload_phase(CLIENTS, one_request, w, sizeof *w, secs);
    for (int i = 0; i < CLIENTS; i++) {
        sprig_db_close(w[i].db);
        sprig_client_close(c[i]);
    }
    return rate;
}

/* One kind of request, checks off and on: each round's rate, medians. */
typedef struct side {
    double off[8], on[8], m_off, m_on, lo_off, hi_off, lo_on, hi_on;
} side;

static void
spread(const double *v, int n, double *lo, double *hi)
{
    *lo = *hi = v[0];
    for (int i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

/* `rounds` alternating rounds (which side goes first alternates too). */
static side
run_side(const char *url_off, const char *url_on, bool write, int rounds,
         double secs)
{
    side s;
    for (int r = 0; r < rounds; r++) {
        if (r % 2) {
            s.on[r] = phase(url_on, true, write, secs);
            s.off[r] = phase(url_off, false, write, secs);
        } else {
            s.off[r] = phase(url_off, false, write, secs);
            s.on[r] = phase(url_on, true, write, secs);
        }
        printf("%s round %d: checks off %.0f req/s, on %.0f req/s\n",
               write ? "write" : "get", r + 1, s.off[r], s.on[r]);
        fflush(stdout);
    }
    spread(s.off, rounds, &s.lo_off, &s.hi_off);
    spread(s.on, rounds, &s.lo_on, &s.hi_on);
    double tmp[8];
    memcpy(tmp, s.off, sizeof tmp);
    s.m_off = netload_median(tmp, rounds);
    memcpy(tmp, s.on, sizeof tmp);
    s.m_on = netload_median(tmp, rounds);
    return s;
}

static void
report(const char *what, const side *s, int rounds, double secs)
{
    printf("requests/s, %d clients, %s over ws://: checks off %.0f "
           "(%.0f-%.0f), on %.0f (%.0f-%.0f) (median, min-max of %d rounds "
           "of %.1f s): ratio %.3f\n",
           CLIENTS, what, s->m_off, s->lo_off, s->hi_off, s->m_on, s->lo_on,
           s->hi_on, rounds, secs, s->m_on / s->m_off);
}

static void
side_json(FILE *f, const side *s)
{
    fprintf(f,
            "{\"off\":%.0f,\"on\":%.0f,\"ratio\":%.4f,\"off_min\":%.0f,"
            "\"off_max\":%.0f,\"on_min\":%.0f,\"on_max\":%.0f}",
            s->m_off, s->m_on, s->m_on / s->m_off, s->lo_off, s->hi_off,
            s->lo_on, s->hi_on);
}

/* The 1-minute load average (the machine is shared: say how busy). */
static double
loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) {
            l = -1;
        }
        fclose(f);
    }
    return l;
}

typedef struct login_arg {
    sprig_auth *a;
    atomic_bool *stop;
    uint64_t ok, busy;
} login_arg;

static void *
login_loop(void *p)
{
    login_arg *l = p;
    while (!atomic_load(l->stop)) {
        sprig_identity *id = NULL;
        int rc = sprig_auth_login_password(l->a, "login", "pw", &id);
        if (rc == 0) {
            l->ok++;
        } else if (rc == SPRIG_EBUSY) {
            l->busy++;
            usleep(1000); /* a client retrying after a moment */
        } else {
            check(rc, "login");
        }
        sprig_identity_release(id);
    }
    return NULL;
}

static sprig_server *
server(sprig_storage *st, sprig_auth *a, bool open)
{
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    o.open_access = open;
    o.auth = open ? NULL : a;
    o.max_connections_per_address = 0; /* 50 clients from 127.0.0.1 */
    sprig_server *srv;
    check(sprig_server_new_for(st, &o, &srv), "server");
    check(sprig_server_start(srv), "start");
    return srv;
}

int
main(int argc, char **argv)
{
    bool quick = false;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        }
    }
    double secs = quick ? 0.3 : 3.0;
    int rounds = quick ? 2 : 5;
    char dir[] = "/tmp/sprig-auth-bench.XXXXXX";
    check(mkdtemp(dir) ? 0 : SPRIG_EIO, "mkdtemp");
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    sprig_storage *st;
    check(sprig_storage_open(&so, &st), "open");
    check(sprig_storage_register_schema(st, &schema), "schema");
    check(sprig_storage_create_database(st, "app", "b", false), "create");
    sprig_db *db;
    check(sprig_storage_open_database(st, "app", &db), "db");
    check(sprig_overwrite(db, "c", sprig_str("doc"), sprig_str("{\"v\":1}"),
                          NULL),
          "put");
    sprig_db_close(db);
    /* the request phases measure the checks, not the logins before them:
     * the reader's hash is made at the cheapest cost; the login phase
     * uses a user hashed at the default cost (or the cheapest: --quick) */
    sprig_auth_options ao, cheap;
    sprig_auth_options_min(&cheap);
    if (quick) {
        ao = cheap;
    } else {
        sprig_auth_options_init(&ao); /* the default argon2id cost */
    }
    sprig_auth *a, *a_login;
    check(sprig_auth_open(st, &cheap, &a), "auth");
    check(sprig_auth_open(st, &ao, &a_login), "auth");
    check(sprig_auth_user_create(a, NULL, "reader", "pw"), "user");
    check(sprig_auth_user_create(a_login, NULL, "login", "pw"), "user");
    /* a realistic set: the granting statement among unrelated ones */
    check(sprig_auth_group_create(a, NULL, "readers"), "group");
    for (int i = 0; i < 8; i++) {
        char res[64];
        snprintf(res, sizeof res, "sprig.db.other%d", i);
        check(sprig_auth_group_grant(a, NULL, "readers", "kv,document", res),
              "grant");
    }
    check(sprig_auth_group_grant(a, NULL, "readers", "database.open",
                                 "sprig.db.app"),
          "grant");
    check(sprig_auth_group_grant(a, NULL, "readers", "document",
                                 "sprig.db.a*.collection.*"),
          "grant");
    check(sprig_auth_user_group(a, NULL, "reader", "readers", true), "add");
    /* the check alone: what each request on the checking server adds */
    sprig_identity *who;
    check(sprig_auth_login_password(a, "reader", "pw", &who), "login");
    int n_checks = quick ? 100000 : 2000000;
    double c0 = cpu_s();
    for (int i = 0; i < n_checks; i++) {
        check(sprig_identity_check(who, "document.get",
                                   "sprig.db.app.collection.c.document.doc"),
              "check");
    }
    double ns_check = (cpu_s() - c0) * 1e9 / n_checks;
    sprig_identity_release(who);
    printf("one permission check (9 statements): %.0f ns of CPU\n", ns_check);
    sprig_server *off = server(st, a, true), *on = server(st, a, false);
    char url_off[64], url_on[64];
    snprintf(url_off, sizeof url_off, "ws://127.0.0.1:%d",
             sprig_server_ws_port(off));
    snprintf(url_on, sizeof url_on, "ws://127.0.0.1:%d",
             sprig_server_ws_port(on));
    double load0 = loadavg();
    side gets = run_side(url_off, url_on, false, rounds, secs);
    side puts = run_side(url_off, url_on, true, rounds, secs);
    double load1 = loadavg();
    sprig_server_free(on);
    sprig_server_free(off);

    atomic_bool stop = false;
    login_arg la[LOGIN_THREADS];
    pthread_t lt[LOGIN_THREADS];
    double t0 = now_s();
    for (int i = 0; i < LOGIN_THREADS; i++) {
        la[i] = (login_arg){a_login, &stop, 0, 0};
        pthread_create(&lt[i], NULL, login_loop, &la[i]);
    }
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&stop, true);
    uint64_t ok = 0, busy = 0;
    for (int i = 0; i < LOGIN_THREADS; i++) {
        pthread_join(lt[i], NULL);
        ok += la[i].ok;
        busy += la[i].busy;
    }
    double el = now_s() - t0;
    printf("load average (1 min) %.1f before, %.1f after\n", load0, load1);
    report("db.get", &gets, rounds, secs);
    report("overwrite (1-op transaction)", &puts, rounds, secs);
    printf("logins/s, argon2id opslimit %llu memlimit %zu MiB, bound %u at "
           "once, %d threads: %.1f accepted/s, %llu refused busy (peak "
           "hashing memory %zu MiB)\n",
           ao.opslimit, ao.memlimit >> 20, ao.max_hashing, LOGIN_THREADS,
           (double)ok / el, (unsigned long long)busy,
           (ao.memlimit >> 20) * ao.max_hashing);
    if (out) {
        FILE *f = fopen(out, "w");
        if (f) {
            fprintf(f,
                    "{\"clients\":%d,\"rounds\":%d,\"seconds\":%.1f,"
                    "\"req_s_off\":%.0f,\"req_s_on\":%.0f,\"ratio\":%.4f,"
                    "\"get\":",
                    CLIENTS, rounds, secs, gets.m_off, gets.m_on,
                    gets.m_on / gets.m_off);
            side_json(f, &gets);
            fprintf(f, ",\"write\":");
            side_json(f, &puts);
            fprintf(f,
                    ",\"load_before\":%.2f,\"load_after\":%.2f,"
                    "\"logins_s\":%.2f,\"login_busy\":%llu,"
                    "\"max_hashing\":%u,\"memlimit_mib\":%zu,"
                    "\"ns_per_check\":%.0f}\n",
                    load0, load1, (double)ok / el, (unsigned long long)busy,
                    ao.max_hashing, ao.memlimit >> 20, ns_check);
            fclose(f);
        }
    }
    sprig_auth_free(a_login);
    sprig_auth_free(a);
    sprig_storage_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "auth_bench: could not remove %s\n", dir);
    }
    return 0;
}
