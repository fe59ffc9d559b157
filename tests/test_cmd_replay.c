/*
 * test_cmd_replay.c -- determinism of write commands: a storage driven
 * through the public API (documents, transactions, key-value changes with
 * relative and absolute expiries, expiry sweeps, increments, admin:
 * schemas, databases created and deleted, synchronous and asynchronous
 * writers) records every committed command through the tap seam, in commit
 * order, encoded.  The recording is then decoded and applied to two fresh
 * storages, each with a different wall clock at apply time (the real clock,
 * and a clock stuck in 1970), and every LMDB table of every environment of
 * the three storages is compared byte for byte.  One thing is excluded as
 * local: empty tables.  A table is created when an engine opens with a
 * schema that names it, and when an engine opens is a local matter (the
 * replay opens a database per command, so it reopens with a schema
 * extended meanwhile, where the recording kept its engine open); an empty
 * table holds no state.  Everything else must match: directory ids are
 * derived from the registry, and no engine writes a clock reading of its
 * own.
 *
 * A replica must not run its own sweeper ahead of the recording (its clock
 * would decide expiries): both replicas' clocks are earlier than every
 * expiry in the recording, so theirs never finds anything due.
 */
#include "testutil.h"

#include "core/cmd.h"
#include "local/local.h"
#include "local/repl.h"

#include <dirent.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t seed;

static const sprig_collection_def colls[] = {{"pushed", SPRIG_ID_U64},
                                             {"named", SPRIG_ID_NATURAL}};
static const sprig_schema_def schema = {"replay", colls, 2};
static const sprig_collection_def colls2[] = {{"pushed", SPRIG_ID_U64},
                                              {"named", SPRIG_ID_NATURAL},
                                              {"extra", SPRIG_ID_NATURAL}};
static const sprig_schema_def schema2 = {"replay", colls2, 3};

/* ---- the recording ------------------------------------------------------ */

typedef struct rec {
    char db[SPRIG_NAME_MAX + 1];
    sprig_buf bytes;
} rec;

static struct {
    pthread_mutex_t lock;
    rec *items;
    size_t n, cap;
} recording = {PTHREAD_MUTEX_INITIALIZER};

static void
tap(void *udata, const char *db, const sprig__cmd *cmd)
{
    (void)udata;
    pthread_mutex_lock(&recording.lock);
    if (recording.n == recording.cap) {
        recording.cap = recording.cap ? 2 * recording.cap : 256;
        recording.items =
            realloc(recording.items, recording.cap * sizeof *recording.items);
    }
    rec *r = &recording.items[recording.n++];
    memset(r, 0, sizeof *r);
    snprintf(r->db, sizeof r->db, "%s", db);
    if (sprig__cmd_encode(cmd, &r->bytes)) {
        recording.n = (size_t)-1 / 2; /* poison: checked by the test */
    }
    pthread_mutex_unlock(&recording.lock);
}

static _Atomic uint64_t test_now = 1800000000000ull; /* 2027 */

static uint64_t
clock_test(void *udata)
{
    (void)udata;
    return atomic_load(&test_now);
}

static uint64_t
clock_1970(void *udata)
{
    (void)udata;
    return 1000000;
}

/* A clock before every expiry test_expiry_decided_by_command sets, so the
 * storage's own sweeper never removes its key between two commands. */
static uint64_t
clock_early(void *udata)
{
    (void)udata;
    return 1000;
}

static sprig_storage *
open_storage(const char *dir, uint64_t (*clock)(void *))
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.durability = SPRIG_DURABILITY_NONE; /* the bytes do not depend on it */
    o.clock_ms = clock;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    return st;
}

/* ---- the workload -------------------------------------------------------- */

static void
docs_work(sprig_db *db, uint64_t *rs)
{
    sprig_header_buf hb[8];
    int nb = 0;
    for (int i = 0; i < 40; i++) {
        char body[64], id[16];
        snprintf(body, sizeof body, "{\"i\":%d,\"r\":%llu}", i,
                 (unsigned long long)(tu_rand(rs) % 1000));
        snprintf(id, sizeof id, "n%llu",
                 (unsigned long long)(tu_rand(rs) % 12));
        sprig_bytes nid = sprig_str(id);
        switch (tu_rand(rs) % 5) {
        case 0:
            if (sprig_insert(db, "pushed", NULL, sprig_str(body),
                             &hb[nb % 8]) == 0) {
                nb++;
            }
            break;
        case 1:
            (void)sprig_insert(db, "named", &nid, sprig_str(body), NULL);
            break;
        case 2:
            SPRIG_OK_(sprig_overwrite(db, "named", nid, sprig_str(body), NULL));
            break;
        case 3:
            if (nb) {
                sprig_header h = sprig_header_of(&hb[(nb - 1) % 8]);
                (void)sprig_delete(db, "pushed", &h); /* may conflict */
            }
            break;
        default: {
            sprig_txn *t;
            SPRIG_OK_(sprig_txn_new(&t));
            SPRIG_OK_(sprig_txn_insert(t, "pushed", NULL, sprig_str(body)));
            SPRIG_OK_(sprig_txn_overwrite(t, "named", nid, sprig_str("{}")));
            sprig_txn_result *res = NULL;
            (void)sprig_txn_apply(db, t, &res);
            sprig_txn_result_free(res);
            sprig_txn_free(t);
        }
        }
        atomic_fetch_add(&test_now, 7);
    }
}

static void
kv_work(sprig_db *db, uint64_t *rs)
{
    for (int i = 0; i < 120; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%llu",
                 (unsigned long long)(tu_rand(rs) % 30));
        sprig_value v = sprig_value_of_u64(tu_rand(rs) % 100);
        sprig_kv_set_opts so = {0};
        sprig_kv_status status;
        switch (tu_rand(rs) % 6) {
        case 0: so.expire_in_ms = 1 + tu_rand(rs) % 400; break;
        case 1:
            so.expire_at_ms = atomic_load(&test_now) + tu_rand(rs) % 300;
            break;
        case 2: so.check = SPRIG_KV_ONLY_IF_VACANT; break;
        case 3:
            (void)sprig_kv_increment(db, "ns", key, &v, true, NULL);
            continue;
        case 4: (void)sprig_kv_delete(db, "ns", key, &status); continue;
        default: so.keep_expiration = true; break;
        }
        (void)sprig_kv_set(db, "ns", key, &v, &so, &status, NULL);
        atomic_fetch_add(&test_now, 1 + tu_rand(rs) % 20);
        if (i % 40 == 39) {
            uint64_t removed;
            SPRIG_OK_(sprig__kv_sweep_now(db, &removed));
        }
    }
}

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int left;
} waiter;

static void
async_done(void *udata, int rc, sprig__cmd *cmd)
{
    waiter *w = udata;
    (void)rc;
    (void)cmd;
    pthread_mutex_lock(&w->lock);
    w->left--;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Asynchronous key-value commands, many in one batch. */
static void
async_work(sprig_db *db)
{
    enum { N = 64 };
    static sprig__cmd c[N];
    static char keys[N][16];
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, N};
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "a%d", i % 20);
        c[i] = (sprig__cmd){.kind = SPRIG__CMD_KV,
                            .ns = "async",
                            .key = keys[i],
                            .now_ms = atomic_load(&test_now)};
        c[i].kv = i % 3 ? SPRIG__KV_INCR : SPRIG__KV_SET;
        c[i].value = sprig_value_of_i64(i);
        SPRIG_OK_(db->ops->submit(db, &c[i], async_done, &w));
    }
    pthread_mutex_lock(&w.lock);
    while (w.left) {
        pthread_cond_wait(&w.cond, &w.lock);
    }
    pthread_mutex_unlock(&w.lock);
    for (int i = 0; i < N; i++) {
        sprig__cmd_clear(&c[i]);
    }
}

static void
record(const char *dir)
{
    uint64_t rs = seed;
    sprig_storage *st = open_storage(dir, clock_test);
    sprig__storage_tap(st, tap, NULL);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "a", "replay", false));
    SPRIG_OK_(sprig_storage_create_database(st, "b", "replay", false));
    sprig_db *a, *b;
    SPRIG_OK_(sprig_storage_open_database(st, "a", &a));
    SPRIG_OK_(sprig_storage_open_database(st, "b", &b));
    docs_work(a, &rs);
    kv_work(a, &rs);
    async_work(a);
    kv_work(b, &rs);
    sprig_db_close(b);
    SPRIG_OK_(sprig_storage_delete_database(st, "b"));
    SPRIG_OK_(sprig_storage_create_database(st, "b", "replay", false));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema2)); /* extends */
    SPRIG_OK_(sprig_storage_open_database(st, "b", &b));
    docs_work(b, &rs);
    atomic_fetch_add(&test_now, 10000); /* everything expired by now */
    uint64_t removed;
    SPRIG_OK_(sprig__kv_sweep_now(a, &removed));
    sprig_db_close(a);
    sprig_db_close(b);
    sprig_storage_close(st);
}

static void
replay(const char *dir, uint64_t (*clock)(void *))
{
    sprig_storage *st = open_storage(dir, clock);
    for (size_t i = 0; i < recording.n; i++) {
        sprig__cmd c;
        rec *r = &recording.items[i];
        SPRIG_OK_(sprig__cmd_decode(sprig_buf_bytes(&r->bytes), &c));
        int rc = sprig__storage_apply(st, r->db, &c);
        /* A database's background sweeper may commit a step while the
         * database is being deleted; its tap can then come after the
         * delete's (the tap orders commands per writer, not across them).
         * Its effects went with the database, so the replica has nothing
         * to apply it to.  Every other command must apply; the byte
         * comparison below still checks the result. */
        if (!(rc == SPRIG_ENOTFOUND && c.kind == SPRIG__CMD_SWEEP)) {
            SPRIG_OK_(rc);
        }
        sprig__cmd_clear(&c);
    }
    sprig_storage_close(st);
}

/* ---- comparing ---------------------------------------------------------- */

#include "storedump.h"

static void
test_replay_is_byte_identical(void **state)
{
    (void)state;
    char base[1024], r[1100], s1[1100], s2[1100];
    snprintf(base, sizeof base, "%s", tu_tmpdir("cmd_replay"));
    snprintf(r, sizeof r, "%s/recorded", base);
    snprintf(s1, sizeof s1, "%s/replica-now", base);
    snprintf(s2, sizeof s2, "%s/replica-1970", base);
    record(r);
    print_message("%zu commands recorded\n", recording.n);
    assert_true(recording.n > 150 && recording.n < 100000);
    replay(s1, NULL);
    replay(s2, clock_1970);
    sprig_buf dr = {0}, d1 = {0}, d2 = {0};
    sd_dump_storage(r, NULL, &dr);
    sd_dump_storage(s1, NULL, &d1);
    sd_dump_storage(s2, NULL, &d2);
    assert_true(dr.len > 1000);
    assert_int_equal(dr.len, d1.len);
    assert_memory_equal(dr.data, d1.data, dr.len);
    assert_int_equal(dr.len, d2.len);
    assert_memory_equal(dr.data, d2.data, dr.len);
    sprig_buf_clear(&dr);
    sprig_buf_clear(&d1);
    sprig_buf_clear(&d2);
    for (size_t i = 0; i < recording.n; i++) {
        sprig_buf_clear(&recording.items[i].bytes);
    }
    free(recording.items);
    tu_rmtree(base);
}

/* The same recording applied at a different time must not change the
 * outcome of a write that meets an expired key: the command's time
 * decides.  (A direct check of what the byte comparison implies.) */
static void
test_expiry_decided_by_command(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cmd_replay_exp");
    sprig_storage *st = open_storage(dir, clock_early);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "a", "replay", false));
    sprig__cmd c = {.kind = SPRIG__CMD_KV,
                    .kv = SPRIG__KV_SET,
                    .ns = "",
                    .key = "k",
                    .now_ms = 5000,
                    .expire_at = 6000};
    c.value = sprig_value_of_u64(1);
    SPRIG_OK_(sprig__storage_apply(st, "a", &c));
    c.kv = SPRIG__KV_SET;
    c.check = SPRIG_KV_ONLY_IF_VACANT;
    c.expire_at = 0;
    c.now_ms = 5999; /* not yet expired by the command's time: not vacant */
    SPRIG_OK_(sprig__storage_apply(st, "a", &c));
    assert_int_equal(c.out.status, SPRIG_KV_NOT_CHANGED);
    c.now_ms = 6000; /* expired by the command's time: vacant */
    SPRIG_OK_(sprig__storage_apply(st, "a", &c));
    assert_int_equal(c.out.status, SPRIG_KV_INSERTED);
    sprig__cmd_clear(&c);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* Commands applied from Raft entries (cluster) in a process that dies
 * without closing (kill -9): the command log's replay at the next open
 * records each entry's index with its effects, as the first apply did,
 * so Raft skips those entries instead of applying them again.  (Before,
 * the log did not carry the index: the replay re-applied the increments
 * and left raft.applied at the last checkpoint, and a cluster node applied
 * the same increments twice.) */
static void
test_raft_index_survives_crash(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cmd_replay_raft");
    enum { N = 20 };
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sprig_storage_options o;
        sprig_storage_options_init(&o); /* full durability: the log */
        o.path = dir;
        sprig_storage *st;
        if (sprig_storage_open(&o, &st) ||
            sprig_storage_register_schema(st, &schema) ||
            sprig_storage_create_database(st, "a", "replay", false)) {
            _exit(2);
        }
        for (uint64_t i = 1; i <= N; i++) {
            sprig__cmd c = {.kind = SPRIG__CMD_KV,
                            .kv = SPRIG__KV_INCR,
                            .ns = "",
                            .key = "n",
                            .now_ms = 1000,
                            .replicated = true,
                            .lazy = true,
                            .raft_index = 100 + i};
            c.value = sprig_value_of_i64(1);
            if (sprig__storage_apply(st, "a", &c)) {
                _exit(3);
            }
        }
        _exit(0); /* no close: as kill -9 */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    uint64_t applied = 0;
    SPRIG_OK_(sprig__storage_raft_applied(st, "a", &applied));
    assert_int_equal(applied, 100 + N);
    sprig_db *db;
    sprig_value v = {0};
    SPRIG_OK_(sprig_storage_open_database(st, "a", &db));
    SPRIG_OK_(sprig_kv_get(db, "", "n", false, &v));
    assert_int_equal(v.num.i64, N); /* each increment once */
    sprig_value_clear(&v);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

int
main(void)
{
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_is_byte_identical),
        cmocka_unit_test(test_expiry_decided_by_command),
        cmocka_unit_test(test_raft_index_survives_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
