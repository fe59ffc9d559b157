/*
 * test_cmd_submit.c -- asynchronous submission (sprig_db_ops.submit) and
 * key-value batching: every submitted command completes exactly once,
 * never inside the submit call; pipelined durable writes from many
 * submitters share batches (the writer's statistics say so); a failing
 * key-value change in a batch fails alone; transactions and their errors
 * come back through the callback; a synchronous writer mixes in.
 */
#include "testutil.h"

#include "core/cmd.h"
#include "local/local.h"

#include <pthread.h>
#include <stdatomic.h>

static uint64_t seed;

static const sprig_collection_def colls[] = {{"docs", SPRIG_ID_NATURAL}};
static const sprig_schema_def schema = {"submit", colls, 1};

static _Thread_local bool in_submit; /* set around each submit call */

/* One pipelined submitter: a window of commands in flight. */
typedef struct lane {
    sprig_db *db;
    int id, n, window;
    sprig__cmd *cmds;
    char (*keys)[32];
    atomic_int *calls; /* per command */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int in_flight, failed;
} lane;

typedef struct slot {
    lane *l;
    int i;
} slot;

static void
lane_done(void *udata, int rc, sprig__cmd *cmd)
{
    slot *s = udata;
    lane *l = s->l;
    (void)cmd;
    if (in_submit) {
        l->failed = 1000; /* completed inside a submit call */
    }
    atomic_fetch_add(&l->calls[s->i], 1);
    pthread_mutex_lock(&l->lock);
    l->failed += rc != 0;
    l->in_flight--;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static int
submit(sprig_db *db, sprig__cmd *c, void *udata)
{
    in_submit = true;
    int rc = db->ops->submit(db, c, lane_done, udata);
    in_submit = false;
    return rc;
}

static void *
lane_main(void *arg)
{
    lane *l = arg;
    slot *slots = calloc((size_t)l->n, sizeof *slots);
    for (int i = 0; i < l->n; i++) {
        pthread_mutex_lock(&l->lock);
        while (l->in_flight >= l->window) {
            pthread_cond_wait(&l->cond, &l->lock);
        }
        l->in_flight++;
        pthread_mutex_unlock(&l->lock);
        sprig__cmd *c = &l->cmds[i];
        snprintf(l->keys[i], sizeof l->keys[i], "l%d.k%d", l->id, i);
        *c = (sprig__cmd){.kind = SPRIG__CMD_KV, .kv = SPRIG__KV_SET};
        c->ns = "";
        c->key = l->keys[i];
        c->value = sprig_value_of_i64(i);
        c->now_ms = 1; /* no expiry involved */
        slots[i] = (slot){l, i};
        if (submit(l->db, c, &slots[i])) {
            l->failed++;
        }
    }
    pthread_mutex_lock(&l->lock);
    while (l->in_flight) {
        pthread_cond_wait(&l->cond, &l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    free(slots);
    return NULL;
}

static sprig_db *
open_db(const char *dir, sprig_storage **st)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open(&o, st));
    SPRIG_OK_(sprig_storage_register_schema(*st, &schema));
    SPRIG_OK_(sprig_storage_create_database(*st, "db", "submit", true));
    SPRIG_OK_(sprig_storage_open_database(*st, "db", &db));
    return db;
}

enum { LANES = 16, PER_LANE = 150, WINDOW = 16 };

static void
test_pipelined_shared_batches(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cmd_submit");
    sprig_storage *st;
    sprig_db *db = open_db(dir, &st);
    lane *l = calloc(LANES, sizeof *l);
    pthread_t t[LANES];
    uint64_t b0, r0, b1, r1;
    sprig__db_writer_stats(db, &b0, &r0);
    for (int i = 0; i < LANES; i++) {
        l[i] = (lane){db, i, PER_LANE, WINDOW};
        l[i].cmds = calloc(PER_LANE, sizeof *l[i].cmds);
        l[i].keys = calloc(PER_LANE, sizeof *l[i].keys);
        l[i].calls = calloc(PER_LANE, sizeof *l[i].calls);
        pthread_mutex_init(&l[i].lock, NULL);
        pthread_cond_init(&l[i].cond, NULL);
        pthread_create(&t[i], NULL, lane_main, &l[i]);
    }
    for (int i = 0; i < LANES; i++) {
        pthread_join(t[i], NULL);
    }
    sprig__db_writer_stats(db, &b1, &r1);
    for (int i = 0; i < LANES; i++) {
        assert_int_equal(l[i].failed, 0);
        for (int j = 0; j < PER_LANE; j++) {
            assert_int_equal(atomic_load(&l[i].calls[j]), 1);
            sprig_value v = {0};
            SPRIG_OK_(sprig_kv_get(db, "", l[i].keys[j], false, &v));
            assert_int_equal(v.num.i64, j);
        }
        free(l[i].cmds);
        free(l[i].keys);
        free(l[i].calls);
    }
    uint64_t batches = b1 - b0, requests = r1 - r0;
    print_message("%llu durable requests in %llu batches (%.1f per commit)\n",
                  (unsigned long long)requests, (unsigned long long)batches,
                  (double)requests / (double)batches);
    assert_int_equal(requests, LANES * PER_LANE);
    /* 256 writes in flight: commits must be shared, far beyond the lanes'
     * count of one write each a synchronous API would give. */
    assert_true(requests >= 8 * batches);
    free(l);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* A single waiter for one command. */
typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc;
    char msg[256];
} waiter;

static void
waiter_done(void *udata, int rc, sprig__cmd *cmd)
{
    waiter *w = udata;
    (void)cmd;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    snprintf(w->msg, sizeof w->msg, "%s", rc ? sprig_errmsg() : "");
    w->done++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void
waiter_wait(waiter *w, int n)
{
    pthread_mutex_lock(&w->lock);
    while (w->done < n) {
        pthread_cond_wait(&w->cond, &w->lock);
    }
    pthread_mutex_unlock(&w->lock);
}

static void
test_txn_and_errors(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cmd_submit_txn");
    sprig_storage *st;
    sprig_db *db = open_db(dir, &st);
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    sprig__op op = {.kind = SPRIG__OP_INSERT,
                    .collection = "docs",
                    .has_id = true,
                    .id = sprig_str("a"),
                    .contents = sprig_str("one")};
    sprig_txn_result *res = sprig__txn_result_new(1);
    sprig__cmd c = {.kind = SPRIG__CMD_TXN, .ops = &op, .n_ops = 1};
    c.now_ms = 77;
    c.out.txn = res;
    SPRIG_OK_(db->ops->submit(db, &c, waiter_done, &w));
    waiter_wait(&w, 1);
    assert_int_equal(w.rc, 0);
    assert_int_equal(res->id, 1);
    assert_int_equal(res->headers[0].revision, 1);
    /* the same insert conflicts, through the callback, with its detail */
    SPRIG_OK_(db->ops->submit(db, &c, waiter_done, &w));
    waiter_wait(&w, 2);
    assert_int_equal(w.rc, SPRIG_ECONFLICT);
    assert_non_null(strstr(w.msg, "exists"));
    assert_true(res->has_conflict);
    sprig__cmd_clear(&c); /* the hashes the engine computed */
    sprig_txn_result_free(res);
    /* an admin command is refused at once; done is never called */
    sprig__cmd a = {.kind = SPRIG__CMD_DELETE_DB, .name = "db"};
    SPRIG_EXPECT(SPRIG_EINVAL, db->ops->submit(db, &a, waiter_done, &w));
    assert_int_equal(w.done, 2);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

enum { MIX = 400 };

/* Many sets queued at once with one failing increment among them: the
 * increment fails alone, every set lands; a synchronous writer mixes in. */
static void
test_failing_change_in_batch(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cmd_submit_fail");
    sprig_storage *st;
    sprig_db *db = open_db(dir, &st);
    sprig_value bytes = sprig_value_of_bytes(sprig_str("text"));
    sprig_kv_set_opts so = {0};
    SPRIG_OK_(sprig_kv_set(db, "", "text", &bytes, &so, NULL, NULL));
    uint64_t rs = seed;
    int bad = (int)(tu_rand(&rs) % MIX);
    static sprig__cmd cmds[MIX];
    static char keys[MIX][16];
    static waiter ws[MIX];
    for (int i = 0; i < MIX; i++) {
        sprig__cmd *c = &cmds[i];
        snprintf(keys[i], sizeof keys[i], "m%d", i);
        *c = (sprig__cmd){.kind = SPRIG__CMD_KV,
                          .kv = SPRIG__KV_SET,
                          .ns = "",
                          .key = keys[i],
                          .now_ms = 1};
        c->value = sprig_value_of_u64((uint64_t)i);
        if (i == bad) {
            c->kv = SPRIG__KV_INCR;
            c->key = "text";
        }
        ws[i] = (waiter){PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
        SPRIG_OK_(db->ops->submit(db, c, waiter_done, &ws[i]));
        if (i == MIX / 2) { /* a synchronous write in the middle */
            SPRIG_OK_(sprig_kv_set(db, "", "sync", &bytes, &so, NULL, NULL));
        }
    }
    for (int i = 0; i < MIX; i++) {
        waiter_wait(&ws[i], 1);
        assert_int_equal(ws[i].done, 1);
        assert_int_equal(ws[i].rc, i == bad ? SPRIG_EINVAL : 0);
        sprig_value v = {0};
        if (i != bad) {
            SPRIG_OK_(sprig_kv_get(db, "", keys[i], false, &v));
            assert_int_equal(v.num.u64, (uint64_t)i);
        }
    }
    assert_non_null(strstr(ws[bad].msg, "holds bytes"));
    sprig_value v = {0};
    SPRIG_OK_(sprig_kv_get(db, "", "text", false, &v));
    assert_true(tu_bytes_eq(v.bytes, "text"));
    sprig_value_clear(&v);
    uint64_t records, indexed;
    SPRIG_OK_(sprig__kv_verify(db, &records, &indexed));
    assert_int_equal(records, MIX + 1); /* MIX - 1 sets, text, sync */
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

int
main(void)
{
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_shared_batches),
        cmocka_unit_test(test_txn_and_errors),
        cmocka_unit_test(test_failing_change_in_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
