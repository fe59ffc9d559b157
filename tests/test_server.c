/*
 * test_server.c -- what only a server shows (the behaviour every placement
 * shares is test_conformance.c's).  A real sprig_server on 127.0.0.1 with
 * an ephemeral port, on a scratch storage whose schema the server program
 * registers through sprig_server_storage(), and real sprig_client
 * connections.  It proves:
 *  - two clients see each other's writes at once, and the program that
 *    runs the server sees them through its own storage handle (and the
 *    clients see the program's);
 *  - a client survives a server restart on the same port and storage: the
 *    request after the server went away fails (SPRIG_ECLOSED, or
 *    SPRIG_ECONNECT naming the URL while nothing listens), a later one
 *    reconnects and finds the data intact; without `reconnect` the client
 *    stays closed; connecting to a port nobody serves is SPRIG_ECONNECT;
 *  - limits are refused cleanly: past max_inflight a request gets
 *    SPRIG_EBUSY ("too many requests in flight") while the others succeed
 *    and exactly they are stored; a request over max_frame closes that
 *    connection (1009), its call fails with SPRIG_ECLOSED, nothing of it is
 *    stored, and other clients -- and the same client, reconnected -- carry
 *    on;
 *  - 100 clients at once, each on its own connection and thread, get every
 *    insert acknowledged, and exactly those documents are stored under the
 *    ids they were told;
 *  - shutting the server down while clients are mid-request crashes
 *    nothing, every call ends in success, SPRIG_ECLOSED or SPRIG_ECONNECT,
 *    and every acknowledged write is in the storage afterwards.
 * Random choices (sizes, the shutdown moment) come from the printed seed;
 * SPRIG_SEED replays them.  Every wait is bounded.
 */
#include "testutil.h"

#include "sprig/client.h"
#include "sprig/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

static const sprig_collection_def cols[] = {{"msgs", SPRIG_ID_U64, 0},
                                            {"kv", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"srvtest", cols, 2};

static const char *root;
static uint64_t seed;

/* ---- a server on a scratch storage -------------------------------------- */

typedef struct fixture {
    sprig_server *srv;
    char dir[1200];
    int port;
    char url[64];
} fixture;

typedef struct limits {
    uint32_t max_inflight; /* 0: default */
    size_t max_frame;      /* 0: default */
} limits;

/* Start a server on `f->dir` (set by the caller) and `port` (0: any). */
static void
fx_start(fixture *f, int port, const limits *lim)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = f->dir;
    so.durability = SPRIG_DURABILITY_NONE; /* behaviour, not crash safety */
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.open_access = true; /* tests of other parts: no authentication */
    o.max_connections_per_address = 0; /* a hundred clients from 127.0.0.1 */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    o.ws_listen = listen;
    o.workers = 4;
    o.ping_interval_ms = 0;
    o.idle_timeout_ms = 0;
    if (lim && lim->max_inflight) {
        o.max_inflight = lim->max_inflight;
    }
    if (lim && lim->max_frame) {
        o.max_frame = lim->max_frame;
    }
    SPRIG_OK_(sprig_server_new(&so, &o, &f->srv));
    sprig_storage *st = sprig_server_storage(f->srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "main", "srvtest", true));
    SPRIG_OK_(sprig_server_start(f->srv));
    f->port = sprig_server_ws_port(f->srv);
    assert_true(f->port > 0);
    if (port) {
        assert_int_equal(f->port, port);
    }
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%d", f->port);
}

static void
fx_new(fixture *f, const char *name, const limits *lim)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/%s", root, name);
    fx_start(f, 0, lim);
}

static void
fx_stop(fixture *f)
{
    sprig_server_free(f->srv);
    f->srv = NULL;
}

static sprig_client *
client(const char *url, bool reconnect)
{
    sprig_client_options o;
    sprig_client_options_init(&o);
    o.connect_timeout_ms = 5000;
    o.request_timeout_ms = 20000;
    o.reconnect = reconnect;
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, &o, &c));
    return c;
}

static sprig_db *
open_main(sprig_storage *st)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "main", &db));
    return db;
}

static void
expect_doc(sprig_db *db, const char *coll, sprig_bytes id, const char *want,
           uint64_t rev)
{
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, coll, id, &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), want));
    assert_int_equal(sprig_doc_header(d).revision, rev);
    sprig_doc_free(d);
}

static uint64_t
count(sprig_db *db, const char *coll)
{
    uint64_t n = 0;
    SPRIG_OK_(sprig_count(db, coll, NULL, &n));
    return n;
}

/* A port nobody listens on: bind an ephemeral one and release it. */
static int
unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- (a) two clients and the server program ------------------------------ */

static void
test_shared_writes(void **state)
{
    fixture f;
    fx_new(&f, "shared", NULL);
    sprig_client *ca = client(f.url, true), *cb = client(f.url, true);
    sprig_db *a = open_main(sprig_client_storage(ca));
    sprig_db *b = open_main(sprig_client_storage(cb));
    sprig_db *s = open_main(sprig_server_storage(f.srv));

    /* A writes: B and the server program read it at once */
    sprig_header_buf ha, hb, hs;
    SPRIG_OK_(sprig_insert(a, "msgs", NULL, sprig_str("from A"), &ha));
    sprig_bytes ida = {ha.id, ha.id_len};
    expect_doc(b, "msgs", ida, "from A", 1);
    expect_doc(s, "msgs", ida, "from A", 1);

    /* B writes: A and the server program read it */
    SPRIG_OK_(
        sprig_overwrite(b, "kv", sprig_str("k"), sprig_str("from B"), &hb));
    expect_doc(a, "kv", sprig_str("k"), "from B", 1);
    expect_doc(s, "kv", sprig_str("k"), "from B", 1);

    /* the server program writes directly: both clients read it */
    SPRIG_OK_(
        sprig_insert(s, "kv", &(sprig_bytes){"s", 1}, sprig_str("local"), &hs));
    expect_doc(a, "kv", sprig_str("s"), "local", 1);
    expect_doc(b, "kv", sprig_str("s"), "local", 1);

    /* B updates A's document; A's stale header now conflicts */
    sprig_header e = sprig_header_of(&ha);
    sprig_header_buf out;
    SPRIG_OK_(sprig_update(b, "msgs", &e, sprig_str("B was here"), &out));
    assert_int_equal(out.revision, 2);
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_update(a, "msgs", &e, sprig_str("stale"), &out));
    assert_int_equal(out.revision, 2);
    expect_doc(s, "msgs", ida, "B was here", 2);

    /* the server program deletes; both clients see it gone */
    sprig_header es = sprig_header_of(&hs);
    SPRIG_OK_(sprig_delete(s, "kv", &es));
    sprig_doc *d;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_get(a, "kv", sprig_str("s"), &d));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_get(b, "kv", sprig_str("s"), &d));
    assert_int_equal(count(a, "kv"), 1);
    assert_int_equal(count(b, "msgs"), 1);

    /* one transaction log, whoever wrote */
    uint64_t ta, tb, ts;
    SPRIG_OK_(sprig_last_txn_id(a, &ta));
    SPRIG_OK_(sprig_last_txn_id(b, &tb));
    SPRIG_OK_(sprig_last_txn_id(s, &ts));
    assert_int_equal(ta, 5); /* insert, overwrite, insert, update, delete */
    assert_int_equal(tb, ta);
    assert_int_equal(ts, ta);

    /* storage administration crosses over too */
    sprig_storage *sta = sprig_client_storage(ca);
    SPRIG_OK_(sprig_storage_create_database(sta, "second", "srvtest", false));
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(sprig_server_storage(f.srv), &l));
    assert_int_equal(sprig_database_list_count(l), 2);
    assert_string_equal(sprig_database_list_name(l, 1), "second");
    sprig_database_list_free(l);
    SPRIG_OK_(
        sprig_storage_delete_database(sprig_server_storage(f.srv), "second"));
    sprig_db *gone;
    SPRIG_EXPECT(
        SPRIG_ENOTFOUND,
        sprig_storage_open_database(sprig_client_storage(cb), "second", &gone));

    sprig_db_close(a);
    sprig_db_close(b);
    sprig_db_close(s);
    sprig_client_close(ca);
    sprig_client_close(cb);
    fx_stop(&f);
}

/* ---- (b) reconnecting --------------------------------------------------- */

static void
test_reconnect(void **state)
{
    fixture f;
    fx_new(&f, "reconnect", NULL);
    int port = f.port;
    char url[64];
    snprintf(url, sizeof url, "%s", f.url);
    sprig_client *c = client(url, true), *once = client(url, false);
    sprig_db *db = open_main(sprig_client_storage(c));
    sprig_db *db1 = open_main(sprig_client_storage(once));
    sprig_header_buf h1;
    SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("before"), &h1));
    assert_int_equal(count(db1, "msgs"), 1);

    fx_stop(&f); /* the server goes away */
    int rc = sprig_insert(db, "msgs", NULL, sprig_str("lost"), NULL);
    if (rc != SPRIG_ECLOSED && rc != SPRIG_ECONNECT) {
        fail_msg("after the server stopped: %d (%s)", rc, sprig_errmsg());
    }
    assert_non_null(strstr(sprig_errmsg(), url));
    /* the close is known now: nothing listens, so connecting fails */
    SPRIG_EXPECT(SPRIG_ECONNECT,
                 sprig_insert(db, "msgs", NULL, sprig_str("lost"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "cannot connect to"));
    assert_non_null(strstr(sprig_errmsg(), url));

    /* a new server on the same port and storage */
    fx_start(&f, port, NULL);
    sprig_header_buf h2;
    SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("after"), &h2));
    expect_doc(db, "msgs", (sprig_bytes){h1.id, h1.id_len}, "before", 1);
    uint8_t b2[8];
    assert_memory_equal(h2.id, sprig_id_u64(2, b2).data, 8);
    assert_int_equal(count(db, "msgs"), 2); /* nothing "lost" was stored */

    /* a client without reconnect stays closed */
    rc = sprig_count(db1, "msgs", NULL, &(uint64_t){0});
    assert_int_equal(rc, SPRIG_ECLOSED);
    rc = sprig_count(db1, "msgs", NULL, &(uint64_t){0});
    assert_int_equal(rc, SPRIG_ECLOSED);
    assert_non_null(strstr(sprig_errmsg(), "closed"));

    sprig_db_close(db);
    sprig_db_close(db1);
    sprig_client_close(c);
    sprig_client_close(once);
    fx_stop(&f);

    /* nobody listens: connecting fails and names the URL */
    sprig_client *none;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", unused_port());
    SPRIG_EXPECT(SPRIG_ECONNECT, sprig_client_connect(url, NULL, &none));
    assert_null(none);
    assert_non_null(strstr(sprig_errmsg(), url));
}

/* ---- (c) limits ---------------------------------------------------------- */

#define BUSY_THREADS 16
#define BUSY_PER 25

typedef struct busy_arg {
    sprig_db *db;
    pthread_barrier_t *start;
    int round, t;
    int ok, busy, other;
    int other_rc;
    char busy_msg[200], other_msg[200];
} busy_arg;

static void *
busy_thread(void *p)
{
    busy_arg *a = p;
    char text[64];
    pthread_barrier_wait(a->start);
    for (int i = 0; i < BUSY_PER; i++) {
        snprintf(text, sizeof text, "r%d t%d i%d", a->round, a->t, i);
        int rc = sprig_insert(a->db, "msgs", NULL, sprig_str(text), NULL);
        if (rc == SPRIG_OK) {
            a->ok++;
        } else if (rc == SPRIG_EBUSY) {
            a->busy++;
            snprintf(a->busy_msg, sizeof a->busy_msg, "%s", sprig_errmsg());
        } else {
            a->other++;
            a->other_rc = rc;
            snprintf(a->other_msg, sizeof a->other_msg, "%s", sprig_errmsg());
        }
    }
    return NULL;
}

static void
test_max_inflight(void **state)
{
    fixture f;
    fx_new(&f, "inflight", &(limits){2, 0});
    sprig_client *c = client(f.url, true);
    sprig_db *db = open_main(sprig_client_storage(c));
    sprig_db *local = open_main(sprig_server_storage(f.srv));
    int ok = 0, busy = 0, rounds = 0;
    char busy_msg[200] = "";
    /* the threads pipeline on one connection: the server must refuse some;
     * try a few rounds in case the machine serialises them */
    while (busy == 0 && rounds < 10) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, BUSY_THREADS);
        pthread_t th[BUSY_THREADS];
        busy_arg args[BUSY_THREADS];
        for (int i = 0; i < BUSY_THREADS; i++) {
            args[i] = (busy_arg){db, &start, rounds, i, 0, 0, 0, 0, "", ""};
            assert_int_equal(
                pthread_create(&th[i], NULL, busy_thread, &args[i]), 0);
        }
        for (int i = 0; i < BUSY_THREADS; i++) {
            pthread_join(th[i], NULL);
        }
        pthread_barrier_destroy(&start);
        for (int i = 0; i < BUSY_THREADS; i++) {
            if (args[i].other) {
                fail_msg("thread %d: %d (%s)", i, args[i].other_rc,
                         args[i].other_msg);
            }
            ok += args[i].ok;
            busy += args[i].busy;
            if (args[i].busy) {
                snprintf(busy_msg, sizeof busy_msg, "%s", args[i].busy_msg);
            }
        }
        rounds++;
    }
    print_message("%d rounds: %d stored, %d refused busy\n", rounds, ok, busy);
    assert_true(busy > 0);
    assert_true(ok > 0);
    assert_int_equal(ok + busy, rounds * BUSY_THREADS * BUSY_PER);
    assert_non_null(strstr(busy_msg, "too many requests in flight"));
    assert_non_null(strstr(busy_msg, "limit 2"));
    /* exactly the acknowledged inserts are stored */
    assert_int_equal(count(local, "msgs"), (uint64_t)ok);
    assert_int_equal(count(db, "msgs"), (uint64_t)ok); /* still usable */
    sprig_db_close(db);
    sprig_db_close(local);
    sprig_client_close(c);
    fx_stop(&f);
}

static void
test_max_frame(void **state)
{
    const size_t limit = 64 * 1024;
    fixture f;
    fx_new(&f, "maxframe", &(limits){0, limit});
    sprig_client *ca = client(f.url, true), *cb = client(f.url, true);
    sprig_db *a = open_main(sprig_client_storage(ca));
    sprig_db *b = open_main(sprig_client_storage(cb));
    uint64_t s = seed;
    /* just under the limit (the envelope takes < 100 bytes): accepted */
    size_t fits = limit - 100, over = limit + 1 + tu_rand(&s) % limit;
    char *big = malloc(over);
    memset(big, 'x', over);
    SPRIG_OK_(sprig_overwrite(a, "kv", sprig_str("fits"),
                              (sprig_bytes){big, fits}, NULL));
    /* over it: the server closes A's connection with 1009 */
    int rc = sprig_overwrite(a, "kv", sprig_str("over"),
                             (sprig_bytes){big, over}, NULL);
    if (rc != SPRIG_ECLOSED || !strstr(sprig_errmsg(), "1009")) {
        fail_msg("a %zu-byte document: %d (%s)", over, rc, sprig_errmsg());
    }
    /* B never noticed; A reconnects; nothing of the big one is stored */
    SPRIG_OK_(sprig_overwrite(b, "kv", sprig_str("b"), sprig_str("b"), NULL));
    SPRIG_OK_(sprig_overwrite(a, "kv", sprig_str("a"), sprig_str("a"), NULL));
    sprig_doc *d;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_get(b, "kv", sprig_str("over"), &d));
    SPRIG_OK_(sprig_get(b, "kv", sprig_str("fits"), &d));
    assert_int_equal(sprig_doc_contents(d).len, fits);
    sprig_doc_free(d);
    assert_int_equal(count(a, "kv"), 3);
    free(big);
    sprig_db_close(a);
    sprig_db_close(b);
    sprig_client_close(ca);
    sprig_client_close(cb);
    fx_stop(&f);
}

/* ---- (d) 100 clients at once --------------------------------------------- */

#define CLIENTS 100
#define PER_CLIENT 20

typedef struct many_arg {
    const char *url;
    pthread_barrier_t *start;
    int n;
    int rc, done;
    char msg[256];
    uint8_t ids[PER_CLIENT][8];
} many_arg;

static void *
many_thread(void *p)
{
    many_arg *a = p;
    sprig_client_options o;
    sprig_client_options_init(&o);
    o.request_timeout_ms = 30000;
    /* a hundred handshakes at once: under ThreadSanitizer (make test's
     * TSan stage) on a loaded machine they take longer than the default */
    o.connect_timeout_ms = 30000;
    sprig_client *c = NULL;
    sprig_db *db = NULL;
    pthread_barrier_wait(a->start);
    a->rc = sprig_client_connect(a->url, &o, &c);
    if (a->rc == 0) {
        a->rc =
            sprig_storage_open_database(sprig_client_storage(c), "main", &db);
    }
    for (int i = 0; a->rc == 0 && i < PER_CLIENT; i++) {
        char text[32];
        sprig_header_buf h;
        snprintf(text, sizeof text, "c%03d-%02d", a->n, i);
        a->rc = sprig_insert(db, "msgs", NULL, sprig_str(text), &h);
        if (a->rc == 0) {
            memcpy(a->ids[i], h.id, 8);
            a->done++;
        }
    }
    if (a->rc) {
        snprintf(a->msg, sizeof a->msg, "%s", sprig_errmsg());
    }
    sprig_db_close(db);
    sprig_client_close(c);
    return NULL;
}

static void
test_hundred_clients(void **state)
{
    fixture f;
    fx_new(&f, "hundred", NULL);
    static many_arg args[CLIENTS];
    pthread_t th[CLIENTS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        args[i] = (many_arg){.url = f.url, .start = &start, .n = i};
        assert_int_equal(pthread_create(&th[i], NULL, many_thread, &args[i]),
                         0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&start);
    for (int i = 0; i < CLIENTS; i++) {
        if (args[i].rc || args[i].done != PER_CLIENT) {
            fail_msg("client %d: %d done, %d (%s)", i, args[i].done, args[i].rc,
                     args[i].msg);
        }
    }
    /* exactly the acknowledged documents, under the ids each was told */
    sprig_db *db = open_main(sprig_server_storage(f.srv));
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "msgs", NULL, SPRIG_ASC, 0, &l));
    assert_int_equal(sprig_doc_list_count(l), CLIENTS * PER_CLIENT);
    static bool seen[CLIENTS][PER_CLIENT];
    memset(seen, 0, sizeof seen);
    for (size_t k = 0; k < sprig_doc_list_count(l); k++) {
        const sprig_doc *d = sprig_doc_list_get(l, k);
        sprig_bytes ct = sprig_doc_contents(d);
        unsigned ci, ii;
        char text[32];
        assert_true(ct.len < sizeof text);
        memcpy(text, ct.data, ct.len);
        text[ct.len] = 0;
        assert_int_equal(sscanf(text, "c%3u-%2u", &ci, &ii), 2);
        assert_true(ci < CLIENTS && ii < PER_CLIENT);
        assert_false(seen[ci][ii]);
        seen[ci][ii] = true;
        assert_int_equal(sprig_doc_header(d).id.len, 8);
        assert_memory_equal(sprig_doc_header(d).id.data, args[ci].ids[ii], 8);
    }
    sprig_doc_list_free(l);
    sprig_db_close(db);
    fx_stop(&f);
}

/* ---- (e) shutdown while clients are mid-request -------------------------- */

#define SD_THREADS 8
#define SD_MAX 4000

typedef struct sd_arg {
    const char *url;
    int n;
    volatile int *down; /* set (under sd_lock) once the server is freed */
    int acked, closed, refused, other, fails_after_down;
    int ready; /* connected and opened (or failed to): under sd_lock */
    int other_rc;
    char other_msg[256];
    uint8_t (*ids)[8];
} sd_arg;

static pthread_mutex_t sd_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
sd_thread(void *p)
{
    sd_arg *a = p;
    sprig_client_options o;
    sprig_client_options_init(&o);
    o.connect_timeout_ms = 3000;
    o.request_timeout_ms = 20000;
    sprig_client *c;
    sprig_db *db = NULL;
    int rc = sprig_client_connect(a->url, &o, &c);
    rc = rc ? rc
            : sprig_storage_open_database(sprig_client_storage(c), "main", &db);
    pthread_mutex_lock(&sd_lock);
    a->ready = 1;
    pthread_mutex_unlock(&sd_lock);
    if (rc) {
        a->other++;
        a->other_rc = rc;
        snprintf(a->other_msg, sizeof a->other_msg, "%s", sprig_errmsg());
        return NULL;
    }
    for (int i = 0; i < SD_MAX; i++) {
        pthread_mutex_lock(&sd_lock);
        int down = *a->down;
        pthread_mutex_unlock(&sd_lock);
        if (down && a->fails_after_down >= 3) {
            break;
        }
        char text[32];
        sprig_header_buf h;
        snprintf(text, sizeof text, "t%d-%d", a->n, a->acked);
        rc = sprig_insert(db, "msgs", NULL, sprig_str(text), &h);
        if (rc == SPRIG_OK) {
            memcpy(a->ids[a->acked], h.id, 8);
            pthread_mutex_lock(&sd_lock); /* sd_total reads it meanwhile */
            a->acked++;
            pthread_mutex_unlock(&sd_lock);
            continue;
        }
        a->fails_after_down += down;
        if (rc == SPRIG_ECLOSED) {
            a->closed++;
        } else if (rc == SPRIG_ECONNECT) {
            a->refused++;
        } else {
            a->other++;
            a->other_rc = rc;
            snprintf(a->other_msg, sizeof a->other_msg, "%s", sprig_errmsg());
        }
        if (!down) {
            usleep(2000); /* the server is stopping: do not spin */
        }
    }
    sprig_db_close(db);
    sprig_client_close(c);
    return NULL;
}

/* Writes acknowledged so far; -1 while a thread has not connected yet
 * (a loaded machine can start the last thread late: the shutdown must
 * find every thread connected, or it is not mid-request for that one). */
static int
sd_total(const sd_arg *args)
{
    int n = 0;
    pthread_mutex_lock(&sd_lock);
    for (int i = 0; i < SD_THREADS; i++) {
        n = n < 0 || !args[i].ready ? -1 : n + args[i].acked;
    }
    pthread_mutex_unlock(&sd_lock);
    return n;
}

static void
test_shutdown_mid_request(void **state)
{
    fixture f;
    fx_new(&f, "shutdown", NULL);
    volatile int down = 0;
    static uint8_t ids[SD_THREADS][SD_MAX][8];
    sd_arg args[SD_THREADS];
    pthread_t th[SD_THREADS];
    for (int i = 0; i < SD_THREADS; i++) {
        args[i] = (sd_arg){.url = f.url, .n = i, .down = &down, .ids = ids[i]};
        assert_int_equal(pthread_create(&th[i], NULL, sd_thread, &args[i]), 0);
    }
    /* let them get going, then stop at a moment picked by the seed */
    uint64_t s = seed;
    int want = 50 + (int)(tu_rand(&s) % 200);
    for (int i = 0; i < 6000 && sd_total(args) < want; i++) {
        usleep(5000);
    }
    assert_true(sd_total(args) >= want);
    SPRIG_OK_(sprig_server_shutdown(f.srv, 1000));
    SPRIG_OK_(sprig_server_shutdown(f.srv, 1000)); /* twice is fine */
    fx_stop(&f);
    pthread_mutex_lock(&sd_lock);
    down = 1;
    pthread_mutex_unlock(&sd_lock);
    int acked = 0, closed = 0, refused = 0;
    for (int i = 0; i < SD_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (args[i].other) {
            fail_msg("thread %d: %d (%s)", i, args[i].other_rc,
                     args[i].other_msg);
        }
        assert_true(args[i].fails_after_down >= 3);
        acked += args[i].acked;
        closed += args[i].closed;
        refused += args[i].refused;
    }
    print_message("acknowledged %d, closed %d, refused %d\n", acked, closed,
                  refused);
    assert_true(refused > 0);
    /* every acknowledged write is in the storage */
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = f.dir;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&so, &st));
    sprig_db *db = open_main(st);
    uint64_t n = count(db, "msgs");
    print_message("stored %llu: %llu of them unacknowledged\n",
                  (unsigned long long)n, (unsigned long long)(n - acked));
    /* a graceful shutdown answers every request it ran: a write that was
     * stored was acknowledged (the grace period, 1 s, is ample here) */
    assert_int_equal(n, (uint64_t)acked);
    for (int i = 0; i < SD_THREADS; i++) {
        for (int k = 0; k < args[i].acked; k++) {
            char text[32];
            snprintf(text, sizeof text, "t%d-%d", i, k);
            expect_doc(db, "msgs", (sprig_bytes){ids[i][k], 8}, text, 1);
        }
    }
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* ---- the server's cache of open databases ------------------------------ */

/* The server keeps database handles open between requests, and answers
 * reads from them on its loop thread.  A database deleted and created
 * again by the server program itself, behind the cache's back, must be
 * seen anew: the client reads the new database, never the old one. */
static void
test_recreated_database(void **state)
{
    (void)state;
    fixture f;
    fx_new(&f, "recreate", NULL);
    sprig_client *c = client(f.url, true);
    sprig_db *rdb = open_main(sprig_client_storage(c));
    sprig_bytes k = sprig_str("k");
    SPRIG_OK_(sprig_overwrite(rdb, "kv", k, sprig_str("old"), NULL));
    expect_doc(rdb, "kv", k, "old", 1); /* the handle is cached now */
    for (int round = 0; round < 3; round++) {
        sprig_storage *st = sprig_server_storage(f.srv);
        SPRIG_OK_(sprig_storage_delete_database(st, "main"));
        sprig_doc *d;
        SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_get(rdb, "kv", k, &d));
        SPRIG_OK_(sprig_storage_create_database(st, "main", "srvtest", false));
        SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_get(rdb, "kv", k, &d));
        assert_non_null(strstr(sprig_errmsg(), "no such document"));
        sprig_db *local = open_main(st);
        SPRIG_OK_(sprig_overwrite(local, "kv", k, sprig_str("new"), NULL));
        sprig_db_close(local);
        expect_doc(rdb, "kv", k, "new", 1);
    }
    sprig_db_close(rdb);
    sprig_client_close(c);
    fx_stop(&f);
}

int
main(void)
{
    seed = tu_seed();
    root = tu_tmpdir("server");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_writes),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_max_inflight),
        cmocka_unit_test(test_max_frame),
        cmocka_unit_test(test_hundred_clients),
        cmocka_unit_test(test_shutdown_mid_request),
        cmocka_unit_test(test_recreated_database),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed ? 1 : 0;
}
